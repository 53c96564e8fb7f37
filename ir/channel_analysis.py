"""The channel-group analysis: ``analyze(graph) -> ChannelGroups``.

One forward sweep in topological order over the per-op rules below (the union-find
state and the helpers the rules share live in :mod:`symbiote.ir.channel_state`). Every
tracked tensor axis is a list of *segments* ``(atom, block)``; atoms are joined with union-find when two axes must keep
the same channels (a Conv's output with its consumers' inputs, both operands of a
residual Add, ...). An atom is *defined* by a layer that owns a width (Conv/Gemm/MatMul
output channels, an LSTM's hidden size, an embedding table); an axis that reaches the
analysis from nowhere it understands (a model input, an opaque op) gets a *fixed* atom.
Each union of atoms becomes one :class:`ChannelGroup`, named after its first atom
(``<node name>.out``, ``<node name>.hidden``, or ``<value name>.<axis>`` for fixed ones),
so names are stable across loads of the same model.

Rules (see passes/README.md for the user-facing summary):

* Conv (group 1): input channels tie to ``W[:, c]``; output channels are a new atom
  (``W[k]``, ``B[k]``). Depthwise (group == C == K): output = input group. Other grouped
  convs fix both sides.
* Gemm / MatMul with a constant weight: contraction axis ties to the weight's input
  axis; the output's last axis is a new atom. MatMul of two activations ties the
  contraction axes and passes the others through.
* BatchNorm/InstanceNorm, activations, pools, Cast, Dropout pass channels through;
  element-wise ops broadcast and tie all operands (a residual Add joins two groups);
  per-channel constants follow the channel.
* Concat stacks segments (offsets); Split passes sub-lists when its cut points fall on
  segment boundaries. Transpose permutes; Reshape/Flatten/Squeeze/Unsqueeze map axes one
  to one, or merge a channel axis with trailing axes into *blocks* (Flatten into a Gemm).
  A reshape that splits a channel axis into ``[heads, head_dim]`` makes it a group of
  whole heads (:mod:`symbiote.ir.channel_heads`): Q, K, V and the output projection's
  input are one group with ``unit = head_dim``; head_dim never changes; other splits fix.
* MatMul of two activations (attention scores/context): the contraction axes tie, the
  batch axes (heads) of both operands tie and pass to the output.
* LSTM/GRU/RNN (layout 0): the hidden size is an atom carried by every gate block of
  ``W``, ``R``, ``B``, the initial states and the outputs.
* LayerNorm over the last axis alone (a transformer's residual stream): scale and bias
  follow the channel, the group may shrink but not grow (``no_growth``: zero channels
  change the mean and variance, so growth would not be exact). Over several axes it fixes.
* A reduction over, a softmax over, a slice of, a pad of, a divide by, or any op not
  listed reading a channel axis fixes its group; so do model inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Callable

from symbiote.ir.channel_groups import ChannelGroups
from symbiote.ir.channel_heads import reshape, reshape_blocks
from symbiote.ir.channel_state import Segs, State, attr, collect, const_ints, fix_all, passthrough, same
from symbiote.ir.graph import Graph, Node, topological_order

__all__ = ["analyze", "RULES", "reshape_blocks"]  # reshape_blocks lives in channel_heads


def _elementwise(st: State, node: Node) -> None:
    y = node.output
    if y.shape is None:
        return fix_all(st, node)
    r = len(y.shape)
    ins = [v for v in node.inputs if v is not None and v.shape is not None]
    if node.onnx_op in ("Div", "Pow", "Mod"):  # a grown channel would divide by zero
        d = node.input(1)
        for segs in st.tracked(d).values():
            st.fix(segs, f"divisor/exponent of {node.onnx_op} node {node.name!r}")
        if d is not None and d.is_const and d.shape and d.size > 1:
            for segs in st.tracked(node.input(0)).values():
                st.fix(segs, f"per-channel divisor/exponent of {node.onnx_op} node {node.name!r}")
    for k in range(r):
        segs = None
        for v in ins:
            ax = k - (r - len(v.shape))
            if ax >= 0:
                s = st.get(v, ax)
                if s is not None:
                    segs = s
                    break
        if segs is None:
            continue
        for v in ins:
            ax = k - (r - len(v.shape))
            if ax >= 0:
                st.tie(v, ax, segs, node)
        st.set(y, k, segs)


def _conv(st: State, node: Node) -> None:
    x, w, b = node.input(0), node.input(1), node.input(2)
    y = node.output
    if x is None or x.shape is None or w is None or w.shape is None or not w.is_const or y.shape is None:
        return fix_all(st, node)
    g = int(attr(node, "group", 1))
    c, k = x.shape[1], w.shape[0]
    xs = st.need(x, 1, node)
    if g == 1:
        st.tie(w, 1, xs, node)
        out = [(st.atom(f"{node.name}.out", k), 1)]
    elif g == c == k:
        st.tie(w, 0, xs, node)
        out = xs
    else:
        st.fix(xs, f"grouped conv {node.name!r} (group={g})")
        out = [(st.atom(f"{node.name}.out", k, f"grouped conv {node.name!r} (group={g})"), 1)]
    if g == 1:
        st.tie(w, 0, out, node)
    st.tie(b, 0, out, node)
    st.set(y, 1, out)


def _conv_transpose(st: State, node: Node) -> None:
    x, w, b = node.input(0), node.input(1), node.input(2)
    y = node.output
    if x is None or x.shape is None or w is None or not w.is_const or y.shape is None or int(attr(node, "group", 1)) != 1:
        fix_all(st, node)
        if y.shape is not None:
            st.set(y, 1, [(st.atom(f"{node.name}.out", y.shape[1], f"grouped ConvTranspose {node.name!r}"), 1)])
        return
    st.tie(w, 0, st.need(x, 1, node), node)
    out = [(st.atom(f"{node.name}.out", w.shape[1]), 1)]
    st.tie(w, 1, out, node)
    st.tie(b, 0, out, node)
    st.set(y, 1, out)


def _gemm(st: State, node: Node) -> None:
    a, bw, c = node.input(0), node.input(1), node.input(2)
    y = node.output
    if a is None or a.shape is None or bw is None or bw.shape is None or y.shape is None:
        return fix_all(st, node)
    ka = 0 if attr(node, "transA", 0) else 1
    kb, nb = (1, 0) if attr(node, "transB", 0) else (0, 1)
    st.tie(bw, kb, st.need(a, ka, node), node)
    if bw.is_const:
        out = [(st.atom(f"{node.name}.out", bw.shape[nb]), 1)]
        st.tie(bw, nb, out, node)
    else:
        out = st.need(bw, nb, node)
    m = st.get(a, 1 - ka)
    if m is not None:
        st.set(y, 0, m)
    if c is not None and c.shape is not None and len(c.shape) >= 1:
        st.tie(c, len(c.shape) - 1, out, node)
    st.set(y, 1, out)


def _matmul(st: State, node: Node) -> None:
    a, bw = node.input(0), node.input(1)
    y = node.output
    if a is None or a.shape is None or bw is None or bw.shape is None or y.shape is None or len(a.shape) < 2 or len(bw.shape) < 2:
        return fix_all(st, node)
    if bw.is_const and len(bw.shape) == 2:
        st.tie(bw, 0, st.need(a, -1, node), node)
        out = [(st.atom(f"{node.name}.out", bw.shape[1]), 1)]
        st.tie(bw, 1, out, node)
    else:
        if a.is_const:
            return fix_all(st, node)
        st.union_segs(st.need(a, -1, node), st.need(bw, -2, node), f"MatMul node {node.name!r}")
        out = st.get(bw, -1)
        _matmul_batch(st, node, a, bw, y)
    r = len(y.shape)
    for ax, segs in st.tracked(a).items():
        if ax == len(a.shape) - 1:
            continue
        st.set(y, ax + r - len(a.shape), segs)
    if out is not None:
        st.set(y, r - 1, out)


def _matmul_batch(st: State, node: Node, a, bw, y) -> None:
    """Tie the batch axes (broadcast from the right) of a MatMul of two activations, e.g. the
    attention heads of Q, K and V, and carry them to the output."""
    r = len(y.shape)
    for k in range(r - 2):
        ia, ib = k - (r - len(a.shape)), k - (r - len(bw.shape))
        segs = (st.get(a, ia) if ia >= 0 else None) or (st.get(bw, ib) if ib >= 0 else None)
        if segs is None:
            continue
        for v, i in ((a, ia), (bw, ib)):
            if i >= 0:
                st.tie(v, i, segs, node)
        st.set(y, k, segs)


def _norm_per_channel(st: State, node: Node) -> None:
    x = node.input(0)
    if x is None or x.shape is None or len(x.shape) < 2:
        return fix_all(st, node)
    xs = st.need(x, 1, node)
    for p in node.inputs[1:]:
        st.tie(p, 0, xs, node)
    same(st, node)


def _layer_norm(st: State, node: Node) -> None:
    x = node.input(0)
    if x is None or x.shape is None:
        return fix_all(st, node)
    r = len(x.shape)
    axis = int(attr(node, "axis", -1)) % r
    for ax, segs in st.tracked(x).items():
        if ax == axis == r - 1:  # over the channel axis alone: prunable, growth inexact
            st.shrink_only(segs, f"normalized by {node.onnx_op} node {node.name!r} "
                                 f"(new zero channels would change its mean and variance)")
        elif ax >= axis:
            st.fix(segs, f"normalized by {node.onnx_op} node {node.name!r}")
    for p in node.inputs[1:]:
        if p is not None and p.shape is not None:
            for k in range(len(p.shape)):
                s = st.get(x, r - len(p.shape) + k)
                if s is not None:
                    st.tie(p, k, s, node)
    same(st, node)


def _reduce(st: State, node: Node) -> None:
    x, y = node.input(0), node.output
    if x is None or x.shape is None or y.shape is None:
        return fix_all(st, node)
    r = len(x.shape)
    axes = const_ints(node, 1, "axes")
    if axes is None or not axes:
        axes = [] if (attr(node, "noop_with_empty_axes", 0) and axes is not None) else list(range(r))
    if node.onnx_op in ("ArgMax", "ArgMin"):
        axes = [int(attr(node, "axis", 0))]
    axes = sorted(a % r for a in axes)
    keep = int(attr(node, "keepdims", 1))

    def amap(a: int) -> int | None:
        if a in axes:
            return None
        return a if keep else a - sum(1 for b in axes if b < a)

    passthrough(st, node, x, y, amap, f"reduced by {node.onnx_op} node {node.name!r}")


def _softmax(st: State, node: Node) -> None:
    x = node.input(0)
    if x is None or x.shape is None:
        return fix_all(st, node)
    axis = int(attr(node, "axis", -1)) % len(x.shape)
    passthrough(st, node, x, node.output, lambda a: None if a == axis else a, f"normalized by {node.onnx_op} node {node.name!r}")


def _transpose(st: State, node: Node) -> None:
    x, y = node.input(0), node.output
    if x is None or x.shape is None:
        return fix_all(st, node)
    perm = attr(node, "perm", None) or list(range(len(x.shape)))[::-1]
    inv = {p: i for i, p in enumerate(perm)}
    passthrough(st, node, x, y, lambda a: inv.get(a), f"Transpose node {node.name!r}")


def _concat(st: State, node: Node) -> None:
    y = node.output
    ins = [v for v in node.inputs if v is not None]
    if y.shape is None or any(v.shape is None for v in ins):
        return fix_all(st, node)
    r = len(y.shape)
    axis = int(attr(node, "axis", 0)) % r
    if any(st.get(v, axis) is not None for v in ins):
        segs: Segs = []
        for v in ins:
            if v.shape[axis] > 0:
                segs += st.need(v, axis, node)
        st.set(y, axis, segs)
    for k in range(r):
        if k == axis:
            continue
        s = next((st.get(v, k) for v in ins if st.get(v, k) is not None), None)
        if s is not None:
            for v in ins:
                st.tie(v, k, s, node)
            st.set(y, k, s)


def _split(st: State, node: Node) -> None:
    x = node.input(0)
    if x is None or x.shape is None:
        return fix_all(st, node)
    r = len(x.shape)
    axis = int(attr(node, "axis", 0)) % r
    for ax, segs in st.tracked(x).items():
        if ax != axis:
            for y in node.outputs:
                if y.shape is not None:
                    st.set(y, ax, segs)
            continue
        sizes = [y.shape[axis] if y.shape is not None else -1 for y in node.outputs]
        bounds, acc = {0: 0}, 0
        for i, (g, b) in enumerate(segs):
            acc += st.widths[g] * b
            bounds[acc] = i + 1
        start, ok, parts = 0, True, []
        for s in sizes:
            if s < 0 or start not in bounds or start + s not in bounds:
                ok = False
                break
            parts.append(segs[bounds[start]:bounds[start + s]])
            start += s
        if not ok:
            st.fix(segs, f"cut inside a channel group by Split node {node.name!r}")
            continue
        for y, p in zip(node.outputs, parts):
            if p:
                st.set(y, axis, p)


def _slice(st: State, node: Node) -> None:
    x, y = node.input(0), node.output
    if x is None or x.shape is None or y.shape is None:
        return fix_all(st, node)
    passthrough(st, node, x, y, lambda a: a, f"sliced by Slice node {node.name!r}")


def _gather(st: State, node: Node) -> None:
    data, idx, y = node.input(0), node.input(1), node.output
    if data is None or data.shape is None or idx is None or idx.shape is None or y.shape is None:
        return fix_all(st, node)
    axis = int(attr(node, "axis", 0)) % len(data.shape)
    if data.is_const and axis == 0 and len(data.shape) == 2:
        out = [(st.atom(f"{node.name}.out", data.shape[1]), 1)]
        st.tie(data, 1, out, node)
        st.set(y, len(y.shape) - 1, out)
        return
    q = len(idx.shape)
    passthrough(st, node, data, y, lambda a: None if a == axis else (a if a < axis else a + q - 1), f"gathered by Gather node {node.name!r}")


def _recurrent(st: State, node: Node) -> None:
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[node.onnx_op]
    x, w, r = node.input(0), node.input(1), node.input(2)
    if attr(node, "layout", 0) != 0 or x is None or x.shape is None or w is None or not w.is_const or r is None or not r.is_const:
        fix_all(st, node)
        fixed = f"{node.onnx_op} node {node.name!r} (layout/weights not supported)"
    else:
        fixed = None
        st.tie(w, 2, st.need(x, 2, node), node)
    hsize = int(attr(node, "hidden_size", r.shape[-1] if r is not None and r.shape else 1))
    h = [(st.atom(f"{node.name}.hidden", hsize, fixed), 1)]
    if fixed is None:
        st.tie(w, 1, h * gates, node)
        st.tie(r, 1, h * gates, node)
        st.tie(r, 2, h, node)
        st.tie(node.input(3), 1, h * (2 * gates), node)
        for i in (5, 6):  # initial_h, initial_c
            st.tie(node.input(i), 2, h, node)
        st.tie(node.input(7), 1, h * 3, node)  # peepholes
    for k, y in enumerate(node.outputs):
        if y.shape is not None and len(y.shape) == (4 if k == 0 else 3):
            st.set(y, 3 if k == 0 else 2, h)


def _pad(st: State, node: Node) -> None:
    x = node.input(0)
    if x is None or x.shape is None:
        return fix_all(st, node)
    pads = const_ints(node, 1, "pads")
    r = len(x.shape)
    axes = const_ints(node, 3) or list(range(r))
    padded = set()
    if pads is None:
        padded = set(range(r))
    else:
        n = len(pads) // 2
        for i in range(n):
            if pads[i] or pads[i + n]:
                padded.add(axes[i] % r)
    passthrough(st, node, x, node.output, lambda a: None if a in padded else a, f"padded by Pad node {node.name!r}")


def _qdq(st: State, node: Node) -> None:
    s = node.input(1)
    if s is not None and s.size > 1:
        return fix_all(st, node, f"per-axis {node.onnx_op} node {node.name!r}")
    same(st, node)


def _shape_only(st: State, node: Node) -> None:
    return None


_UNARY = (
    "Relu Sigmoid Tanh Exp Log Sqrt Neg Abs Erf Floor Ceil Round Sin Cos HardSwish HardSigmoid LeakyRelu "
    "Elu Selu Softplus Softsign Gelu Mish Celu ThresholdedRelu Identity Clip Sign Cast CastLike Dropout "
    "MaxPool AveragePool GlobalAveragePool GlobalMaxPool LpPool GlobalLpPool Resize Upsample Expand Tile "
    "Swish FastGelu QuickGelu Not"
).split()
_BINARY = "Add Sub Mul Div Pow Max Min Sum Mean Where PRelu Equal Less Greater LessOrEqual GreaterOrEqual And Or Xor Mod BiasGelu".split()
_REDUCE = "ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare ArgMax ArgMin".split()

RULES: dict[str, Callable[[State, Node], None]] = {
    **{op: same for op in _UNARY},
    **{op: _elementwise for op in _BINARY},
    **{op: _reduce for op in _REDUCE},
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "BatchNormalization": _norm_per_channel,
    "InstanceNormalization": _norm_per_channel,
    "LayerNormalization": _layer_norm,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Reshape": reshape,
    "Flatten": reshape,
    "Squeeze": reshape,
    "Unsqueeze": reshape,
    "Transpose": _transpose,
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Gather": _gather,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "RNN": _recurrent,
    "Pad": _pad,
    "QuantizeLinear": _qdq,
    "DequantizeLinear": _qdq,
    "Shape": _shape_only,
    "Size": _shape_only,
}


def analyze(graph: Graph) -> ChannelGroups:
    """Find the channel groups of a graph (see the module docstring for the rules)."""
    st = State(graph)
    by_name = {v.name: v for v in graph.values()} if graph.scope_reads() else {}
    for node in topological_order(graph.nodes):
        rule = RULES.get(node.onnx_op) if node.domain in ("", "ai.onnx") else None
        if rule is None:
            fix_all(st, node)
        else:
            rule(st, node)
        for name in node.meta.get("_outer_inputs", ()):  # read by name inside a subgraph (If/Loop/Scan body)
            for segs in st.tracked(by_name.get(name)).values():
                st.fix(segs, f"read inside a subgraph of {node.onnx_op} node {node.name!r}")
        if node.onnx_op in ("Slice",):  # slicing a channel axis other than wholly fixes it
            _fix_sliced(st, node)
    for v in graph.outputs:
        for segs in st.tracked(v).values():
            st.fix(segs, f"model output {v.name!r}")
    return collect(st)


def _fix_sliced(st: State, node: Node) -> None:
    x = node.input(0)
    if x is None or x.shape is None:
        return
    axes = const_ints(node, 3, "axes")
    starts = const_ints(node, 1, "starts")
    ends = const_ints(node, 2, "ends")
    steps = const_ints(node, 4) or None
    r = len(x.shape)
    if starts is None or ends is None:
        return fix_all(st, node)
    axes = axes or list(range(len(starts)))
    for i, a in enumerate(axes):
        a %= r
        segs = st.get(x, a)
        if segs is None:
            continue
        whole = starts[i] == 0 and ends[i] >= x.shape[a] and (steps is None or steps[i] == 1)
        if not whole:
            st.fix(segs, f"sliced by Slice node {node.name!r}")
            y = node.output
            if (y.name, a) in st.axes:
                del st.axes[(y.name, a)]

