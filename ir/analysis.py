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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbiote.errors import ShapeError
from symbiote.ir import ops
from symbiote.ir.graph import Graph, Node, Value

_NOT_WEIGHT_DTYPES = frozenset({"int64", "int32", "bool", "string"})
_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class NodeStats:
    name: str
    op: str
    onnx_op: str
    output_shapes: tuple[tuple[int, ...], ...]  # () for an output whose shape is unknown
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


def node_stats(node: Node) -> NodeStats:
    return NodeStats(
        name=node.name,
        op=node.op,
        onnx_op=node.onnx_op,
        output_shapes=tuple(tuple(o.shape) if o.shape is not None else () for o in node.outputs),
        macs=int(macs(node)),
        params=sum(v.size for v in weight_inputs(node)),
        bytes_read=_distinct_bytes(list(node.inputs)),
        bytes_written=_distinct_bytes(list(node.outputs)),
    )


def graph_stats(graph: Graph) -> GraphStats:
    """Per-layer stats in graph order and totals; shared weights count once."""
    layers = tuple(node_stats(n) for n in graph.nodes)
    seen: dict[int, int] = {}
    opaque: dict[str, int] = {}
    for n in graph.nodes:
        for v in weight_inputs(n):
            seen[id(v)] = v.size
        if n.op == ops.OPAQUE:
            key = n.onnx_op if n.domain in _DEFAULT_DOMAINS else f"{n.domain}.{n.onnx_op}"
            opaque[key] = opaque.get(key, 0) + 1
    return GraphStats(layers=layers, macs=sum(s.macs for s in layers), params=sum(seen.values()), opaque=opaque)
