"""``lower(graph, groups=None) -> Workload``: the layer table the cost models read.

Every node becomes one row, named after it (see :mod:`symbiote.ir.workload` for the columns and kinds);
nothing is dropped (Attention, n-operand einsums and control flow give several rows, below). How each op kind is lowered:

* conv: ``N, K, C, P, Q, R, S`` from the input/weight/output shapes (1-D convs have
  ``Q = S = 1``; a 3-D conv folds its depth into ``Q``), ``groups``, strides, dilations.
  A depth-wise conv (``groups == C``) has its ``groups`` tied to the channel width.
* conv_transpose: the loop nest over the *input* positions (``P, Q = H, W``), which has the
  same MACs as the transposed convolution.
* gemm / matmul: ``P = M`` (all leading dims of A when B is a constant weight), ``C`` the
  reduction dim, ``K`` the output features; a matmul of two activations (attention) is
  ``repeat`` = batch GEMMs whose second operand counts as the "weight" operand
  (``w_repeat = repeat``, at the activation bit-width).
* recurrent (LSTM/GRU/RNN): the gate GEMM ``[x_t, h_{t-1}] x W`` with ``C = input + hidden``,
  ``K = gates * hidden`` (4, 3, 1), ``P = batch``, ``repeat = seq_len * directions``.
* element-wise / activation / normalization / pooling / reduce / softmax: vector work,
  ``vec_ops`` operations per output element (:data:`VEC_OPS`; pooling: the window size;
  global pooling and reductions: input elements per output element).
* einsum (two operands): one batched GEMM: indices in both operands and the output ->
  ``repeat``, free indices of the first (activation) operand -> ``P`` (M), of the second ->
  ``K``, indices summed away -> ``C``. A constant operand is taken as the weight (second);
  otherwise ``w_repeat = repeat``. n > 2 operands: one MAC row per left-to-right pairwise
  contraction, named ``<node>/step<j>`` (:mod:`symbiote.ir.einsum`). One operand
  (transpose, diagonal, reduction): data movement.
* Attention (ONNX opset 23): three rows, ``<node>/qk`` (``Q K^T``: ``repeat = batch*q_heads``,
  ``P = q_len``, ``C = head_size``, ``K = total_len``), ``<node>/softmax`` (vector work on the
  scores) and ``<node>/av`` (``P = q_len``, ``C = total_len``, ``K = v_head_size``). These,
  multi-operand einsums and costed control flow are the only nodes that give more than one row.
* weight-format ops (QuantizeLinear/DequantizeLinear/Cast of a constant, as written by
  ``set-precision(export_qdq=true)``): FREE; the weight is stored in its quantized form and
  the consuming layer treats the chain's output as its weight operand (bits from the
  integer type under the DequantizeLinear when no annotation says otherwise).
* control flow (If/Loop/Scan, :mod:`symbiote.ir.control_flow`): the rows of the body the
  node is costed as (an If's taken or dearer branch; a Loop/Scan body with a static trip
  count), named ``<node>/<attr>/<row>`` and lowered like any graph; run ``T`` times (the
  trip count), a MAC row's ``repeat`` and every row's ``in_elems``/``out_elems`` are
  multiplied by ``T`` (and an activation x activation matmul's ``w_repeat`` and
  ``weight_elems``; constant weights are read once). Body rows do not follow channel
  groups (their widths are constants). A control node that cannot be costed (trip count
  not static) is one data-movement row.
* view-like ops (:data:`VIEW_OPS`: Reshape, Flatten, Squeeze, Unsqueeze, Identity,
  Dropout at inference): FREE, metadata only on real hardware (the consumer reads the same
  bytes in place);
* Gather: reads the rows it gathers (as many elements as it writes) and its indices; from
  a constant table (an embedding) that read is a weight read, never the whole table;
* an append or scatter into a tensor whose old value has no other use (a Concat on its
  first input, a ScatterND/ScatterElements on its data: a KV cache growing by one step):
  in place, only the new part is read and written;
* other reshape-like ops (Transpose, Slice, Split, Concat of shared tensors, Pad, ...),
  opaque and uncosted control ops: data movement of their input and output bytes (a
  Transpose is a copy; fusion may say otherwise).

Annotations read from ``node.meta`` (left by passes): ``fused_into`` (an activation folded
into its producer: kind FREE, no cost), ``fused_activation`` (the producer applies it in
its output stage: no extra cost), ``fusion_group`` (a tensor between two nodes of the same
group stays on chip), ``input_on_chip`` / ``output_on_chip`` (explicit), ``sparsity``
(fraction of zero weights), ``sparsity_pattern`` (``"2:4"``: column ``sparsity_24`` = 1,
else 0), ``weight_bits`` / ``act_bits``.

**Precision default**: a layer without ``weight_bits``/``act_bits`` annotations is costed at
``default_bits`` (8: int8 inference, the word size SCALE-Sim assumes) and marked
``bits_given = 0``: a template with a ``datapath`` knob prices it at the datapath's width
instead (:mod:`symbiote.backends.datapath`). ``default_bits=None`` takes the bits of the
tensors' dtypes instead (float32 -> 32), marked given.

Channel groups (``symbiote.ir.channel_groups``) turn into linear maps ``base + map @ widths``
for ``k``, ``c``, ``groups``, ``in_elems``, ``out_elems``, ``repeat``, ``w_repeat`` and
``weight_elems``. A tensor's element count follows its first channel axis, or its axis of
attention heads (whole heads: ``width / unit``), its other axes held at their current
sizes; a batched matmul's ``repeat`` follows a batch axis of heads (one GEMM per head), and
a vector row's constants (a bias, a norm's scale) follow their channel.
"""

from __future__ import annotations

import math

import numpy as np

from symbiote.ir import control_flow, dtypes, ops
from symbiote.ir.channel_groups import ChannelGroups
from symbiote.ir.graph import Graph, Node, Value
from symbiote.ir.workload import FOLLOWED, FREE, LAYER_FIELDS, MAC, MEMORY, VECTOR, WIDTH_FIELDS, Workload, from_columns

#: vector-unit operations per output element, by ONNX op (default 1). Transcendentals are
#: counted as a 4-op polynomial/LUT evaluation; softmax = max, subtract, exp(4), sum, divide;
#: LayerNorm = mean, subtract, square, mean, rsqrt(4), scale, shift (~10); inference
#: BatchNorm = one multiply-add pair.
VEC_OPS: dict[str, float] = {
    "Erf": 4, "Tanh": 4, "Sigmoid": 4, "Exp": 4, "Log": 4, "Gelu": 8, "Softplus": 8, "Mish": 12, "Elu": 4, "Selu": 4,
    "HardSigmoid": 2, "HardSwish": 3, "Swish": 5, "Softmax": 8, "LogSoftmax": 9, "Pow": 4, "Sqrt": 4, "Reciprocal": 4,
    "Div": 2, "BatchNormalization": 2, "LayerNormalization": 10, "InstanceNormalization": 10, "GroupNormalization": 10,
    "LpNormalization": 8, "LRN": 8,
}
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_VECTOR_OPS = frozenset({ops.ELEMENTWISE, ops.ACTIVATION, ops.NORM, ops.POOL, ops.REDUCE})


def _shape(v: Value | None) -> tuple[int, ...]:
    return tuple(v.shape) if v is not None and v.shape is not None else ()


def _size(v: Value | None) -> int:
    return math.prod(_shape(v)) if v is not None and v.shape is not None else 0


class _Maps:
    """Accumulates ``base + map @ widths`` rows for the width-dependent columns."""

    def __init__(self, n_layers: int, groups: ChannelGroups | None) -> None:
        self.groups = groups
        self.g = len(groups.groups) if groups is not None else 0
        self.w0 = np.array([g.width for g in groups.groups], np.float64) if groups is not None else np.zeros(0)
        self.base = {f: np.zeros(n_layers) for f in WIDTH_FIELDS}
        self.map = {f: np.zeros((n_layers, self.g)) for f in WIDTH_FIELDS}
        self.followed: list[tuple[int, str, Value, int, float]] = []

    def segs(self, value: Value | None, axis: int) -> list[tuple[int, float]]:
        """``(group, elements per unit of width)`` of an axis: a channel axis's segments
        (``block`` each), or a heads axis's (``block / unit``: whole heads); [] otherwise."""
        if self.groups is None or value is None or axis < 0:
            return []
        found = [(gid, float(block)) for gid, block in self.groups.segments(value.name, axis)]
        return found or [(gid, block / self.groups.groups[gid].unit) for gid, block in self.groups.head_segments(value.name, axis)]

    def axis(self, row: int, field: str, value: Value | None, axis: int, value_now: float, scale: float = 1.0) -> None:
        """``field[row] += scale * size(value.axis)`` with the axis following its channel groups."""
        linear = 0.0
        for gid, block in self.segs(value, axis):
            self.map[field][row, gid] += scale * block
            linear += scale * block * self.w0[gid]
        self.base[field][row] += value_now * scale - linear

    def follow(self, row: int, field: str, value: Value | None, axis: int, part: float) -> None:
        """Record that ``part`` of the column ``field`` (a :data:`FOLLOWED` one, set directly
        in the columns) is proportional to ``size(value.axis)``: :meth:`settle` maps it."""
        if self.segs(value, axis):
            self.followed.append((row, field, value, axis, part))

    def settle(self, cols: dict[str, np.ndarray]) -> None:
        """The :data:`FOLLOWED` columns as ``base + map @ widths``: the values lowered, with
        the recorded parts following their axes."""
        for f in FOLLOWED:
            self.base[f] = np.array(cols[f], np.float64)
        for row, field, value, axis, part in self.followed:
            size = float(_shape(value)[axis])
            self.base[field][row] -= part
            self.axis(row, field, value, axis, size, part / size)

    def elems(self, row: int, field: str, value: Value | None) -> None:
        """``field[row] += size(value)``, linear in the value's first channel axis."""
        size = _size(value)
        shape = _shape(value)
        if self.groups is not None and value is not None:
            for a, d in enumerate(shape):
                if d and self.segs(value, a):
                    self.axis(row, field, value, a, float(d), size / d)
                    return
        self.base[field][row] += size

    def const(self, row: int, field: str, x: float) -> None:
        self.base[field][row] += x


#: ops that only change how a weight is stored (quantized weights written as
#: QuantizeLinear/DequantizeLinear pairs, casts): on an accelerator the weight sits in
#: memory in its stored form, so these nodes cost nothing and their output is a weight.
_WEIGHT_FORMAT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "Cast"})


def is_weight(v: Value | None) -> bool:
    """A constant, or a constant seen through weight-format ops (Q/DQ, Cast)."""
    while v is not None and not v.is_const:
        p = v.producer
        if p is None or p.onnx_op not in _WEIGHT_FORMAT_OPS or p.domain not in ("", "ai.onnx"):
            return False
        if any(not x.is_const for x in p.inputs[1:] if x is not None):  # scale/zero point
            return False
        v = p.input(0)
    return v is not None


def _weight_format(node: Node) -> bool:
    return node.onnx_op in _WEIGHT_FORMAT_OPS and bool(node.outputs) and is_weight(node.outputs[0])


def _stored_bits(v: Value) -> int:
    """Bits per element of a weight as stored: the integer type under a DequantizeLinear."""
    while not v.is_const and v.producer is not None and v.producer.onnx_op != "DequantizeLinear":
        v = v.producer.input(0)
    if not v.is_const and v.producer is not None:
        v = v.producer.input(0)
    return dtypes.bits(v.dtype)


def _on_chip(graph: Graph, node: Node) -> tuple[float, float]:
    group = node.meta.get("fusion_group")
    ins = [v for v in node.inputs if v is not None and not is_weight(v)]
    inp = bool(node.meta.get("input_on_chip"))
    if not inp and group is not None and ins:
        inp = all(v.producer is not None and v.producer.meta.get("fusion_group") == group for v in ins)
    out = bool(node.meta.get("output_on_chip"))
    if not out and group is not None:
        cons = [c for o in node.outputs for c in o.consumers()]
        out = bool(cons) and all(c.meta.get("fusion_group") == group for c in cons) and not any(graph.is_output(o) for o in node.outputs)
    return float(inp), float(out)


def _pair(attrs: dict, key: str, default: int = 1) -> tuple[int, int]:
    v = list(attrs.get(key) or [default])
    return (int(v[0]), int(v[1]) if len(v) > 1 else 1) if v else (default, default)


def lower(graph: Graph, groups: ChannelGroups | None = None, *, default_bits: int | None = 8) -> Workload:
    """The graph's layer table; see the module doc."""
    names, kinds, cols, maps = _table(graph, groups, default_bits)
    free = np.array([g.free for g in groups.groups], bool) if groups is not None else np.zeros(0, bool)
    return from_columns(names, kinds, cols, maps.w0, free,
                        {f: (maps.base[f], maps.map[f]) for f in WIDTH_FIELDS})


_Table = tuple[list[str], list[str], dict[str, np.ndarray], "_Maps"]


def _table(graph: Graph, groups: ChannelGroups | None, default_bits: int | None) -> _Table:
    """Row names, op kinds, numpy columns (width columns resolved) and width maps."""
    nodes = graph.nodes
    bodies = _costed_bodies(graph, default_bits)
    plans = [_body_rows(n, bodies[id(n)]) if id(n) in bodies else _row_plan(n) for n in nodes]
    L = sum(len(p) for p in plans)
    cols = {f: np.zeros(L) for f in LAYER_FIELDS}
    cols["kind"] = np.zeros(L, np.int32)
    for f in ("n", "p", "q", "r", "s", "stride_h", "stride_w", "dil_h", "dil_w", "repeat", "w_repeat", "vec_ops"):
        cols[f][:] = 1.0
    maps = _Maps(L, groups)
    rows = [(node, i) for node, plan in zip(nodes, plans) for i in range(len(plan))]
    start = 0
    for node, plan in zip(nodes, plans):
        if id(node) in bodies:
            _splice(list(range(start, start + len(plan))), *bodies[id(node)], cols, maps)
        elif len(plan) > 1 or node.onnx_op == "Einsum":
            _lower_multi(list(range(start, start + len(plan))), node, cols, maps)
        else:
            _lower_node(start, node, cols, maps)
        start += len(plan)
    for i, (node, _) in enumerate(rows):
        if id(node) in bodies:
            continue  # the body's rows carry their own precision, fusion and sparsity
        acts = [v for v in node.inputs if v is not None and not is_weight(v)] or node.outputs
        consts = [v for v in node.inputs if v is not None and is_weight(v)]
        a_bits = default_bits or dtypes.bits(acts[0].dtype)
        w_bits = default_bits or (_stored_bits(consts[0]) if consts else a_bits)
        cols["act_bits"][i] = float(node.meta.get("act_bits", a_bits))
        mm_act = cols["kind"][i] == MAC and cols["w_repeat"][i] > 1 and node.op == ops.MATMUL
        # a matmul of two activations reads its second operand at the activations' bits, unless
        # annotated otherwise (a KV cache quantized apart: search/knobs/kv_cache.py)
        cols["weight_bits"][i] = float(node.meta.get("weight_bits", cols["act_bits"][i])) if mm_act \
            else float(node.meta.get("weight_bits", w_bits))
        cols["input_on_chip"][i], cols["output_on_chip"][i] = _on_chip(graph, node)
        cols["sparsity"][i] = float(node.meta.get("sparsity", 0.0))
        cols["sparsity_24"][i] = float(node.meta.get("sparsity_pattern") == "2:4")
        cols["bits_given"][i] = float(default_bits is None or "weight_bits" in node.meta or "act_bits" in node.meta)
        if node.meta.get("fused_into") or _weight_format(node):
            cols["kind"][i] = FREE
    maps.settle(cols)
    for f in WIDTH_FIELDS:
        cols[f] = maps.base[f] + maps.map[f] @ maps.w0
    cols["groups"] = np.maximum(cols["groups"], 1.0)
    names = [name for plan in plans for name, _ in plan]
    kinds = [op for plan in plans for _, op in plan]
    return names, kinds, cols, maps


# ------------------------------------------------------------------ control flow
def _costed_bodies(graph: Graph, default_bits: int | None) -> dict[int, tuple[_Table, control_flow.Plan]]:
    """For each control-flow node costed as a body: the body's own table and the node's plan."""
    out = {}
    for key, plan in control_flow.plans(graph).items():
        if plan.costed is not None and plan.costed.graph is not None:
            out[key] = (_table(plan.costed.graph, None, default_bits), plan)
    return out


def _body_rows(node: Node, body: tuple[_Table, control_flow.Plan]) -> list[tuple[str, str]]:
    (names, kinds, _, _), plan = body
    prefix = f"{node.name}/{plan.costed.attr}/"
    return [(prefix + name, op) for name, op in zip(names, kinds)]


def _splice(rows: list[int], table: _Table, plan: control_flow.Plan, cols: dict[str, np.ndarray], maps: _Maps) -> None:
    """Copy a body's rows into the outer table, run ``plan.repeat`` times: MAC rows repeat
    that many more GEMMs, every row moves that many times its activations; constant weights
    are read once, an activation operand (a matmul of two activations) once per run."""
    _, kinds, sub, _ = table
    t = float(plan.repeat)
    for f in (*LAYER_FIELDS, "kind"):
        cols[f][rows] = sub[f]
    mac = sub["kind"] == MAC
    act_w = mac & (np.array(kinds) == ops.MATMUL) & (sub["w_repeat"] == sub["repeat"]) & (sub["w_repeat"] > 1)
    cols["repeat"][rows] = np.where(mac, sub["repeat"] * t, sub["repeat"])
    cols["w_repeat"][rows] = np.where(act_w, sub["w_repeat"] * t, sub["w_repeat"])
    cols["weight_elems"][rows] = np.where(act_w, sub["weight_elems"] * t, sub["weight_elems"])
    for f in WIDTH_FIELDS:
        maps.base[f][rows] = sub[f] * (t if f in ("in_elems", "out_elems") else 1.0)


def _lower_node(i: int, node: Node, cols: dict[str, np.ndarray], maps: _Maps) -> None:
    x = node.input(0)
    y = node.outputs[0] if node.outputs else None
    if node.op == ops.CONV and node.input(1) is not None and len(_shape(node.input(1))) >= 3:
        _lower_conv(i, node, cols, maps)
    elif node.op == ops.CONV_TRANSPOSE and node.input(1) is not None and len(_shape(node.input(1))) >= 3:
        _lower_conv_transpose(i, node, cols, maps)
    elif node.op in (ops.GEMM, ops.MATMUL) and len(_shape(x)) >= 1 and len(_shape(node.input(1))) >= 1:
        _lower_matmul(i, node, cols, maps)
    elif node.op == ops.RECURRENT and node.onnx_op in _GATES and len(_shape(x)) == 3:
        _lower_recurrent(i, node, cols, maps)
    else:
        cols["kind"][i] = VECTOR if node.op in _VECTOR_OPS else MEMORY
        if node.onnx_op in VIEW_OPS:
            cols["kind"][i] = FREE  # metadata only: the same bytes, read in place by the consumer
        if node.onnx_op == "Gather" and node.input(0) is not None:
            _lower_gather(i, node, cols, maps)
            return
        if node.onnx_op in _APPENDS and _appends_in_place(node):
            _lower_append(i, node, cols, maps)
            return
        for v in node.inputs:
            if v is not None and not is_weight(v):
                maps.elems(i, "in_elems", v)
        for o in node.outputs:
            maps.elems(i, "out_elems", o)
        consts = [v for v in node.inputs if v is not None and is_weight(v)]
        cols["weight_elems"][i] = sum(_size(v) for v in consts)
        for v in consts:  # a per-channel constant (a bias, a norm's scale) follows its channel
            a = next((a for a, d in enumerate(_shape(v)) if d and maps.segs(v, a)), None)
            if a is not None:
                maps.follow(i, "weight_elems", v, a, float(_size(v)))
        cols["vec_ops"][i] = _vec_ops(node, x, y)
        return
    if x is not None:
        maps.elems(i, "in_elems", x)
    for o in node.outputs[:1]:
        maps.elems(i, "out_elems", o)


#: ops that only relabel a tensor's shape (or pass it through): no data moves
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
#: ops that can write into their first input's buffer (an append, a scatter)
_APPENDS = frozenset({"Concat", "ScatterND", "ScatterElements"})


def _lower_gather(i: int, node: Node, cols: dict[str, np.ndarray], maps: _Maps) -> None:
    """A Gather reads the rows it gathers (as many elements as it writes) and its indices,
    never the whole table: a constant table (an embedding) is a weight read row by row."""
    data, idx, y = node.input(0), node.input(1), node.outputs[0]
    if is_weight(data):
        cols["weight_elems"][i] = float(_size(y))
        a = next((a for a, d in enumerate(_shape(y)) if d and maps.segs(y, a)), None)
        if a is not None:  # the rows read are as wide as the table's channel axis
            maps.follow(i, "weight_elems", y, a, float(_size(y)))
    else:  # the rows read are as wide as the gathered output, and follow its channel widths
        maps.elems(i, "in_elems", y)
    if idx is not None and not is_weight(idx):
        maps.elems(i, "in_elems", idx)
    maps.elems(i, "out_elems", y)


def _appends_in_place(node: Node) -> bool:
    """Whether ``node`` can write into its first input's buffer: that input is an activation
    (not a constant) whose only use is this node, and the node's output keeps its type."""
    old = node.input(0)
    if old is None or is_weight(old) or len(old.uses) != 1 or not node.outputs:
        return False
    return old.dtype == node.outputs[0].dtype


def _lower_append(i: int, node: Node, cols: dict[str, np.ndarray], maps: _Maps) -> None:
    """An in-place append or scatter (a KV cache): only the new part is read and written;
    the old contents stay where they are (:func:`_appends_in_place`)."""
    new = [v for v in node.inputs[1:] if v is not None and not is_weight(v)]
    if node.onnx_op == "Concat":
        written = float(_size(node.outputs[0]) - _size(node.input(0)))
    else:  # ScatterND / ScatterElements: the updates (the last input) are written
        written = float(_size(node.inputs[-1]))
    maps.const(i, "in_elems", float(sum(_size(v) for v in new)))
    maps.const(i, "out_elems", written)
    cols["weight_elems"][i] = float(sum(_size(v) for v in node.inputs if v is not None and is_weight(v)))


def _vec_ops(node: Node, x: Value | None, y: Value | None) -> float:
    if node.op == ops.POOL and "kernel_shape" in node.attrs:
        return float(math.prod(int(k) for k in node.attrs["kernel_shape"]))
    if node.op in (ops.POOL, ops.REDUCE) and _size(y):
        return max(1.0, _size(x) / _size(y))
    return float(VEC_OPS.get(node.onnx_op, 1.0))


def _conv_geometry(node: Node, cols: dict[str, np.ndarray], i: int) -> None:
    cols["stride_h"][i], cols["stride_w"][i] = _pair(node.attrs, "strides")
    cols["dil_h"][i], cols["dil_w"][i] = _pair(node.attrs, "dilations")


def _spatial(shape: tuple[int, ...]) -> tuple[int, int]:
    sp = shape[2:]
    if not sp:
        return 1, 1
    return int(sp[0]), int(math.prod(sp[1:])) if len(sp) > 1 else 1


def _lower_conv(i: int, node: Node, cols: dict[str, np.ndarray], maps: _Maps) -> None:
    x, w, y = node.input(0), node.input(1), node.outputs[0]
    ws, ys = _shape(w), _shape(y)
    g = int(node.attrs.get("group", 1))
    cols["kind"][i] = MAC
    cols["n"][i] = ys[0]
    cols["p"][i], cols["q"][i] = _spatial(ys)
    cols["r"][i], cols["s"][i] = _spatial(ws)
    _conv_geometry(node, cols, i)
    maps.axis(i, "k", y, 1, float(ws[0]))
    maps.axis(i, "c", x, 1, float(ws[1] * g))
    if g > 1 and g == ws[1] * g and g == _shape(x)[1]:  # depth-wise: groups follow the channel width
        maps.axis(i, "groups", x, 1, float(g))
    else:
        maps.const(i, "groups", float(g))
    cols["weight_elems"][i] = _size(w)


def _lower_conv_transpose(i: int, node: Node, cols: dict[str, np.ndarray], maps: _Maps) -> None:
    x, w, y = node.input(0), node.input(1), node.outputs[0]
    ws, xs = _shape(w), _shape(x)
    g = int(node.attrs.get("group", 1))
    cols["kind"][i] = MAC
    cols["n"][i] = xs[0]
    cols["p"][i], cols["q"][i] = _spatial(xs)
    cols["r"][i], cols["s"][i] = _spatial(ws)
    _conv_geometry(node, cols, i)
    maps.axis(i, "k", y, 1, float(ws[1] * g))
    maps.axis(i, "c", x, 1, float(ws[0]))
    maps.const(i, "groups", float(g))
    cols["weight_elems"][i] = _size(w)


def _lower_matmul(i: int, node: Node, cols: dict[str, np.ndarray], maps: _Maps) -> None:
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    sa, sb, sy = _shape(a), _shape(b), _shape(y)
    cols["kind"][i] = MAC
    maps.const(i, "groups", 1.0)
    if node.op == ops.GEMM:
        ta, tb = int(node.attrs.get("transA", 0)), int(node.attrs.get("transB", 0))
        m, kd = (sa[1], sa[0]) if ta else (sa[0], sa[1])
        nf = sb[0] if tb else sb[1]
        cols["p"][i] = m
        maps.axis(i, "c", a, 0 if ta else 1, float(kd))
        maps.axis(i, "k", y, 1, float(nf))
        cols["weight_elems"][i] = _size(b)
        return
    if len(sa) == 1:
        sa = (1, *sa)
    kd = sa[-1]
    nf = sb[-1] if len(sb) >= 2 else 1
    if is_weight(b) or len(sb) <= 2:
        cols["p"][i] = math.prod(sa[:-1])
        cols["weight_elems"][i] = _size(b)
    else:
        batch = math.prod(np.broadcast_shapes(sa[:-2], sb[:-2]))
        cols["p"][i] = sa[-2]
        cols["repeat"][i] = cols["w_repeat"][i] = batch
        cols["weight_elems"][i] = batch * kd * nf
        for j in range(len(sa) - 2):  # a batch axis that counts attention heads: one GEMM per head
            maps.follow(i, "repeat", a, j, float(batch))
            maps.follow(i, "w_repeat", a, j, float(batch))
    maps.axis(i, "c", a, len(_shape(a)) - 1, float(kd))
    maps.axis(i, "k", y, len(sy) - 1, float(nf))


def _lower_recurrent(i: int, node: Node, cols: dict[str, np.ndarray], maps: _Maps) -> None:
    x, w, r = node.input(0), node.input(1), node.input(2)
    seq, batch, _ = _shape(x)
    dirs, gh, hidden = _shape(r)
    gates = _GATES[node.onnx_op]
    y = node.outputs[0] if node.outputs and _shape(node.outputs[0]) else None
    cols["kind"][i] = MAC
    cols["p"][i] = batch
    cols["repeat"][i] = seq * dirs
    cols["w_repeat"][i] = dirs
    maps.const(i, "groups", 1.0)
    maps.axis(i, "c", x, 2, float(_shape(x)[2]))
    maps.axis(i, "c", y, 3 if y is not None else -1, float(hidden))
    maps.axis(i, "k", y, 3 if y is not None else -1, float(hidden), scale=gates)
    cols["weight_elems"][i] = _size(w) + _size(r)


# ------------------------------------------------------------------ einsum and attention
def _einsum_of(node: Node):
    from symbiote.ir import einsum

    shapes = [_shape(v) for v in node.inputs]
    if not shapes or any(v is None or v.shape is None for v in node.inputs):
        return None
    eq = node.attrs.get("equation", "")
    try:
        return einsum.parse(eq.decode() if isinstance(eq, bytes) else str(eq), shapes)
    except ValueError:
        return None


def _attention_of(node: Node) -> dict[str, int] | None:
    from symbiote.errors import ShapeError
    from symbiote.ir.shape_rules import Unknown
    from symbiote.ir.shape_rules_compute import attention_dims

    if node.onnx_op != "Attention" or node.domain not in ("", "ai.onnx"):
        return None
    try:
        return attention_dims(node)
    except (Unknown, ShapeError):
        return None


def _row_plan(node: Node) -> list[tuple[str, str]]:
    """``(row name, op kind)`` for each workload row of the node."""
    if node.onnx_op == "Attention" and _attention_of(node) is not None:
        return [(f"{node.name}/qk", ops.MATMUL), (f"{node.name}/softmax", ops.ACTIVATION), (f"{node.name}/av", ops.MATMUL)]
    if node.onnx_op == "Einsum" and len(node.inputs) > 2 and _einsum_of(node) is not None:
        return [(f"{node.name}/step{j}", ops.MATMUL) for j in range(len(node.inputs) - 1)]
    return [(node.name, node.op)]


def _gemm_row(i: int, cols: dict[str, np.ndarray], maps: _Maps, *, batch: int, m: int, c: int, k: int,
              w_repeat: int, in_elems: float, out_elems: float) -> None:
    cols["kind"][i] = MAC
    cols["p"][i], cols["repeat"][i], cols["w_repeat"][i] = m, batch, w_repeat
    maps.const(i, "c", float(c))
    maps.const(i, "k", float(k))
    maps.const(i, "groups", 1.0)
    maps.const(i, "in_elems", in_elems)
    maps.const(i, "out_elems", out_elems)
    cols["weight_elems"][i] = float(c) * k * w_repeat


def _lower_multi(rows: list[int], node: Node, cols: dict[str, np.ndarray], maps: _Maps) -> None:
    if node.onnx_op == "Attention":
        a = _attention_of(node)
        bh = a["b"] * a["hq"]
        scores = float(bh * a["sq"] * a["total"])
        qk, sm, av = rows
        _gemm_row(qk, cols, maps, batch=bh, m=a["sq"], c=a["d"], k=a["total"], w_repeat=bh,
                  in_elems=float(_size(node.input(0))), out_elems=scores)
        cols["kind"][sm] = VECTOR
        cols["vec_ops"][sm] = VEC_OPS["Softmax"]
        maps.const(sm, "in_elems", scores)
        maps.const(sm, "out_elems", scores)
        _gemm_row(av, cols, maps, batch=bh, m=a["sq"], c=a["total"], k=a["dv"], w_repeat=bh,
                  in_elems=scores, out_elems=float(_size(node.outputs[0])))
        return
    from symbiote.ir import einsum

    e = _einsum_of(node)
    steps = einsum.steps(e) if e is not None else []
    if not steps:  # one operand or unknown shapes: data movement
        _lower_node(rows[0], node, cols, maps)
        return
    for j, (i, st) in enumerate(zip(rows, steps)):
        m, k = st.m, st.k
        a_const = j == 0 and is_weight(node.input(0))
        b_const = is_weight(node.input(j + 1))
        swap = a_const and not b_const  # the constant operand is the weight
        if swap:
            m, k, b_const = k, m, True
        in_elems = float(_size(node.input(1 if swap else 0))) if j == 0 else float(_prod_of(e, st.a))
        w_rep = 1 if b_const and st.batch == 1 else st.batch
        _gemm_row(i, cols, maps, batch=st.batch, m=m, c=st.c, k=k, w_repeat=w_rep,
                  in_elems=in_elems, out_elems=float(_prod_of(e, st.out)))


def _prod_of(e, idx: str) -> int:
    return int(math.prod(e.sizes[c] for c in idx))
