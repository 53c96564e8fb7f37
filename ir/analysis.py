"""Per-node and per-graph work counts: MACs, parameters, bytes.

Counting conventions
--------------------
* **MACs**: one per multiply-accumulate, nothing else.

  - Conv (also ConvInteger, QLinearConv, contrib FusedConv), grouped, depthwise and
    dilated alike: ``N*K*P*Q... * (C/group)*R*S...`` = output elements x weight elements
    per output channel. Dilation changes the receptive field, not the count.
  - ConvTranspose: ``N * C_in * H_in*W_in... * (K/group)*R*S...`` = input elements x
    weight elements per input channel.
  - Gemm: ``M*N*K``. MatMul (also MatMulInteger, QLinearMatMul, FusedMatMul), batched
    and broadcast alike (attention's Q.K^T and P.V): output elements x inner dim.
  - Einsum: see :mod:`symbiote.ir.einsum`: 0 for one operand, the product of all distinct
    index sizes for two, the sum over a left-to-right pairwise contraction for more.
  - Attention (ONNX opset 23, default domain): its two matmuls,
    ``batch * q_heads * q_len * total_len * (head_size + v_head_size)`` (``total_len`` =
    past + kv length; grouped-query K/V heads are shared, so q_heads count). The mask,
    softcap and softmax are vector work, not MACs.
  - LSTM / GRU / RNN: over the whole sequence, all gates, both directions:
    ``seq * batch * directions * gates * H * (I + H)`` with 4 gates for LSTM, 3 for GRU,
    1 for RNN (bias adds and the element-wise gate math are not MACs).
  - Element-wise, activation, normalization, pooling, reduction and data-movement ops
    count 0 MACs; they show up in bytes.
* **params**: elements of the node's weight constants: constant inputs that are not
  integer shape/axes/pads/indices arguments (int32/int64/bool tensors), not scalars, and
  not the shape-like arguments of data-movement ops (Reshape targets, Resize scales...),
  not BatchNormalization's running mean/variance (buffers, as torchvision counts), and
  not a recurrent cell's sequence lengths or initial states.
  Quantized int8/uint8 weights count. In :func:`graph_stats` a constant shared by several
  nodes counts once.
* **bytes_read / bytes_written**: the sizes of the node's distinct input / output tensors
  (elements x bytes per element of their dtype; int4 counts one byte per element).
  Unknown shapes count 0.
* **control flow** (If / Loop / Scan, :mod:`symbiote.ir.control_flow`): the node counts
  the work of the body it is costed as (an If: the taken branch, or the dearer one by MACs
  then bytes; a Loop/Scan with a static trip count: the body times the trip count): its
  MACs and bytes are the body's totals times the repeat count, its params the body's
  weights (an outer weight a body reads counts once in the graph). A node that cannot be
  costed (a Loop whose trip count is not static) counts its own inputs and outputs and is
  listed under ``opaque``. ``GraphStats.control_flow`` holds one note per control-flow
  node (nested ones included) saying how it was costed; ``subgraph_ops`` counts the ops
  of every body, costed or not, by ONNX op type; opaque ops inside analysed bodies count
  in ``opaque`` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from symbiote.errors import ShapeError
from symbiote.ir import control_flow, ops
from symbiote.ir.graph import Graph, Node, Value

_NOT_WEIGHT_DTYPES = frozenset({"int64", "int32", "bool", "string"})
_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class NodeStats:
    name: str
    op: str
    onnx_op: str
    output_shapes: tuple[tuple[int, ...] | None, ...]  # None for an output whose shape is unknown (() is a scalar)
    macs: int
    params: int
    bytes_read: int
    bytes_written: int


@dataclass(frozen=True)
class GraphStats:
    layers: tuple[NodeStats, ...]
    macs: int
    params: int
    opaque: dict[str, int]  # opaque ONNX op type ("domain.Op" outside the default domain) -> count
    control_flow: tuple[str, ...] = ()  # how each If/Loop/Scan was costed (one note each, nested ones too)
    subgraph_ops: dict[str, int] = field(default_factory=dict)  # ONNX op type -> count inside every body


def _shape(v: Value | None) -> tuple[int, ...] | None:
    return None if v is None or v.shape is None else tuple(v.shape)


def _prod(shape: tuple[int, ...] | None) -> int:
    return 0 if shape is None else int(math.prod(shape))


def _conv_macs(node: Node, wi: int) -> int:
    out, w = _shape(node.output), _shape(node.input(wi))
    if out is None or w is None:
        return 0
    return _prod(out) * _prod(w[1:])


def _conv_transpose_macs(node: Node) -> int:
    x, w = _shape(node.input(0)), _shape(node.input(1))
    if x is None or w is None:
        return 0
    return _prod(x) * _prod(w[1:])


def _matmul_macs(node: Node, ai: int = 0) -> int:
    a, out = _shape(node.input(ai)), _shape(node.output)
    if a is None or out is None or not a:
        return 0
    k = a[-2] if node.attrs.get("transA") and len(a) >= 2 else a[-1]
    return _prod(out) * k


def _gemm_macs(node: Node) -> int:
    a, out = _shape(node.input(0)), _shape(node.output)
    if a is None or out is None or len(a) != 2:
        return 0
    k = a[0] if node.attrs.get("transA") else a[1]
    return _prod(out) * k


_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _recurrent_macs(node: Node) -> int:
    x, w = _shape(node.input(0)), _shape(node.input(1))
    if x is None:
        return 0
    layout = int(node.attrs.get("layout", 0))
    seq, batch, inp = (x[1], x[0], x[2]) if layout else (x[0], x[1], x[2])
    hidden = int(node.attrs.get("hidden_size") or (w[1] // _GATES[node.onnx_op] if w else 0))
    dirs = 2 if node.attrs.get("direction", "forward") == "bidirectional" else 1
    return seq * batch * dirs * _GATES[node.onnx_op] * hidden * (inp + hidden)


def macs(node: Node) -> int:
    """Multiply-accumulates of one node (see the module docstring)."""
    op = node.onnx_op
    if node.domain not in _DEFAULT_DOMAINS and node.domain != "com.microsoft":
        return 0
    if op in ("Conv", "ConvInteger", "FusedConv", "NhwcConv"):
        return _conv_macs(node, 1)
    if op == "QLinearConv":
        return _conv_macs(node, 3)
    if op == "ConvTranspose":
        return _conv_transpose_macs(node)
    if op in ("Gemm", "FusedGemm"):
        return _gemm_macs(node)
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul"):
        return _matmul_macs(node)
    if op in _GATES:
        return _recurrent_macs(node)
    if op == "Einsum":
        return _einsum_macs(node)
    if op == "Attention" and node.domain in _DEFAULT_DOMAINS:
        return _attention_macs(node)
    return 0


def _einsum_macs(node: Node) -> int:
    from symbiote.ir import einsum

    shapes = [_shape(v) for v in node.inputs]
    if any(s is None for s in shapes):
        return 0
    eq = node.attrs.get("equation", "")
    try:
        return einsum.macs(einsum.parse(eq.decode() if isinstance(eq, bytes) else str(eq), shapes))
    except ValueError:
        return 0


def _attention_macs(node: Node) -> int:
    from symbiote.ir.shape_rules import Unknown
    from symbiote.ir.shape_rules_compute import attention_dims

    try:
        a = attention_dims(node)
    except (Unknown, ShapeError):
        return 0
    return a["b"] * a["hq"] * a["sq"] * a["total"] * (a["d"] + a["dv"])


def weight_inputs(node: Node) -> list[Value]:
    """The node's distinct constant inputs that count as parameters."""
    out: list[Value] = []
    for i, v in enumerate(node.inputs):
        if v is None or not v.is_const or v.dtype in _NOT_WEIGHT_DTYPES or v.size <= 1:
            continue
        if node.op == ops.RESHAPE and i > 0 and node.onnx_op not in ("Concat", "Where"):
            continue
        if node.onnx_op in ("Resize", "Upsample", "Clip", "Pad") and i > 0:
            continue
        if node.onnx_op in _GATES and i >= 4 and not (node.onnx_op == "LSTM" and i == 7):
            continue  # sequence lengths and initial states, not weights (LSTM input 7: peepholes are)
        if node.onnx_op == "BatchNormalization" and i >= 3:
            continue  # running mean/var are statistics (buffers), not trained parameters
        if all(u is not v for u in out):
            out.append(v)
    return out


def _distinct_bytes(values: list[Value | None]) -> int:
    seen: set[int] = set()
    total = 0
    for v in values:
        if v is not None and id(v) not in seen:
            seen.add(id(v))
            total += v.nbytes
    return total


def _op_key(n: Node) -> str:
    return n.onnx_op if n.domain in _DEFAULT_DOMAINS else f"{n.domain}.{n.onnx_op}"


def node_stats(node: Node, plan: control_flow.Plan | None = None) -> NodeStats:
    """One node's work; a control-flow node counts its costed body given its ``plan``
    (:func:`symbiote.ir.control_flow.plan`; without one it counts its own inputs and outputs)."""
    body = plan.costed_stats if plan is not None else None
    if body is not None:
        r = plan.repeat
        return NodeStats(
            name=node.name, op=node.op, onnx_op=node.onnx_op,
            output_shapes=tuple(tuple(o.shape) if o.shape is not None else None for o in node.outputs),
            macs=body.macs * r, params=body.params,
            bytes_read=sum(s.bytes_read for s in body.layers) * r,
            bytes_written=sum(s.bytes_written for s in body.layers) * r,
        )
    return NodeStats(
        name=node.name,
        op=node.op,
        onnx_op=node.onnx_op,
        output_shapes=tuple(tuple(o.shape) if o.shape is not None else None for o in node.outputs),
        macs=int(macs(node)),
        params=sum(v.size for v in weight_inputs(node)),
        bytes_read=_distinct_bytes(list(node.inputs)),
        bytes_written=_distinct_bytes(list(node.outputs)),
    )


def graph_stats(graph: Graph) -> GraphStats:
    """Per-layer stats in graph order and totals; shared weights count once."""
    plans = control_flow.plans(graph)
    layers = tuple(node_stats(n, plans.get(id(n))) for n in graph.nodes)
    opaque: dict[str, int] = {}
    notes: list[str] = []
    sub_ops: dict[str, int] = {}
    for n in graph.nodes:
        p = plans.get(id(n))
        if n.op == ops.OPAQUE or (p is not None and p.costed is None):
            _add(opaque, {_op_key(n): 1})
        if p is None:
            continue
        notes.append(p.note)
        for b, st in zip(p.bodies, p.stats):
            if b.graph is None or st is None:
                continue
            _add(sub_ops, _count_ops(b.graph))
            _add(sub_ops, st.subgraph_ops)
            _add(opaque, st.opaque)
            notes.extend(st.control_flow)
    params = sum(_weights(graph, plans).values())
    return GraphStats(layers=layers, macs=sum(s.macs for s in layers), params=params, opaque=opaque,
                      control_flow=tuple(notes), subgraph_ops=dict(sorted(sub_ops.items())))


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0) + v


def _count_ops(graph: Graph) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in graph.nodes:
        _add(out, {_op_key(n): 1})
    return out


def _weights(graph: Graph, plans: dict[int, control_flow.Plan],
             outer_key: Callable[[str], Hashable] | None = None) -> dict[Hashable, int]:
    """Weight constant -> elements over the graph and the bodies it is costed with; an outer
    weight a body reads is keyed as the outer value, so it counts once."""
    bound = set(graph.meta.get("outer_bound", ())) if outer_key is not None else set()

    def key(v: Value) -> Hashable:
        return outer_key(v.name) if outer_key is not None and v.name in bound else id(v)

    table: dict[Hashable, int] = {}
    by_name: dict[str, Value] | None = None
    for n in graph.nodes:
        for v in weight_inputs(n):
            table[key(v)] = v.size
        p = plans.get(id(n))
        if p is None or p.costed is None or p.costed.graph is None:
            continue
        if by_name is None:
            by_name = {v.name: v for v in graph.values()}
        names = by_name
        body = p.costed.graph
        table.update(_weights(body, control_flow.plans(body), lambda name, names=names: key(names[name]) if name in names else name))
    return table
