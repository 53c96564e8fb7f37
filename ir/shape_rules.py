"""Per-op shape and dtype rules, keyed by ONNX op type (in the style of autodidax).

Each rule takes a :class:`~symbiote.ir.graph.Node` whose input Values carry shapes and
dtypes (and ``const`` arrays for constants) and returns one ``(shape, dtype)`` per
output. A rule raises :class:`Unknown` when it cannot say (an input shape is unknown, a
data-dependent argument is not constant); :mod:`symbiote.ir.shapes` then falls back to
``onnx.shape_inference``. A rule raises :class:`~symbiote.errors.ShapeError` when the
inputs are inconsistent (mismatched inner dims, bad broadcast), naming the node.

Both the attribute form and the input form of arguments that moved between opsets
(Squeeze/Unsqueeze/Reduce axes, Split sizes, Pad pads, Slice starts...) are accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from symbiote.errors import ShapeError
from symbiote.ir import dtypes
from symbiote.ir.graph import Node

Shape = tuple[int, ...]
Out = tuple[Shape | None, str | None]
Rule = Callable[[Node], list[Out]]

RULES: dict[str, Rule] = {}


class Unknown(Exception):
    """Raised by a rule that cannot decide (unknown input shape, non-constant argument)."""


def rule(*ops: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for op in ops:
            RULES[op] = fn
        return fn

    return register


# ------------------------------------------------------------------ helpers
def shape(node: Node, i: int = 0) -> Shape:
    v = node.input(i)
    if v is None or v.shape is None:
        raise Unknown
    return tuple(v.shape)


def dtype(node: Node, i: int = 0) -> str:
    v = node.input(i)
    if v is None:
        raise Unknown
    return v.dtype


def has(node: Node, i: int) -> bool:
    return node.input(i) is not None


def const(node: Node, i: int) -> np.ndarray | None:
    """The constant value of input i, or None if the input is absent."""
    v = node.input(i)
    if v is None:
        return None
    if v.const is None:
        raise Unknown
    return v.const


def ints(node: Node, i: int, attr: str | None = None) -> list[int] | None:
    """An int-list argument given as input ``i`` (newer opsets) or attribute ``attr``."""
    c = const(node, i) if i >= 0 else None
    if c is not None:
        return [int(x) for x in np.asarray(c).reshape(-1)]
    if attr is not None and attr in node.attrs:
        a = node.attrs[attr]
        return [int(x) for x in (a if isinstance(a, (list, tuple, np.ndarray)) else [a])]
    return None


def fail(node: Node, msg: str) -> ShapeError:
    return ShapeError(f"node {node.name!r} ({node.onnx_op}): {msg}")


def norm_axis(node: Node, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise fail(node, f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def broadcast(node: Node, *shapes: Shape) -> Shape:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        dims = {s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise fail(node, f"shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def same(node: Node, i: int = 0) -> Out:
    return shape(node, i), dtype(node, i)


# ------------------------------------------------------------------ element-wise
_UNARY = (
    "Relu Sigmoid Tanh Exp Log Sqrt Neg Abs Erf Reciprocal Floor Ceil Round Sin Cos Tan Asin Acos Atan "
    "Sinh Cosh Asinh Acosh Atanh HardSwish HardSigmoid LeakyRelu Elu Selu Softplus Softsign Gelu Mish Celu "
    "ThresholdedRelu Identity Softmax LogSoftmax Hardmax Clip Sign LRN InstanceNormalization "
    "MeanVarianceNormalization CumSum Trilu Shrink PRelu FastGelu QuickGelu BiasGelu Swish "
    "LpNormalization SimplifiedLayerNormalization RMSNormalization BitwiseNot ReverseSequence"
).split()


@rule(*_UNARY)
def _unary(node: Node) -> list[Out]:
    return [same(node)]


@rule("Not", "IsNaN", "IsInf")
def _unary_bool(node: Node) -> list[Out]:
    return [(shape(node), "bool")]


@rule("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Mod", "BitShift", "BitwiseAnd",
      "BitwiseOr", "BitwiseXor", "BiasAdd")
def _binary(node: Node) -> list[Out]:
    shapes = [shape(node, i) for i, v in enumerate(node.inputs) if v is not None]
    return [(broadcast(node, *shapes), dtype(node, 0))]


@rule("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor")
def _compare(node: Node) -> list[Out]:
    return [(broadcast(node, shape(node, 0), shape(node, 1)), "bool")]


@rule("Where")
def _where(node: Node) -> list[Out]:
    return [(broadcast(node, shape(node, 0), shape(node, 1), shape(node, 2)), dtype(node, 1))]


@rule("Cast")
def _cast(node: Node) -> list[Out]:
    return [(shape(node), dtypes.from_onnx(int(node.attrs["to"])))]


@rule("CastLike")
def _cast_like(node: Node) -> list[Out]:
    return [(shape(node), dtype(node, 1))]


@rule("Dropout")
def _dropout(node: Node) -> list[Out]:
    return [same(node), (shape(node), "bool")][: len(node.outputs)]


@rule("QuantizeLinear")
def _quantize(node: Node) -> list[Out]:
    if has(node, 2):
        dt = dtype(node, 2)
    elif "output_dtype" in node.attrs and node.attrs["output_dtype"]:
        dt = dtypes.from_onnx(int(node.attrs["output_dtype"]))
    else:
        dt = "uint8"
    return [(shape(node), dt)]


@rule("DequantizeLinear")
def _dequantize(node: Node) -> list[Out]:
    dt = dtype(node, 1) if has(node, 1) else "float32"
    return [(shape(node), dt)]


@rule("DynamicQuantizeLinear")
def _dyn_quantize(node: Node) -> list[Out]:
    return [(shape(node), "uint8"), ((), "float32"), ((), "uint8")]


@rule("LayerNormalization")
def _layer_norm(node: Node) -> list[Out]:
    x = shape(node)
    axis = norm_axis(node, int(node.attrs.get("axis", -1)), len(x))
    stat = x[:axis] + (1,) * (len(x) - axis)
    return [same(node), (stat, "float32"), (stat, "float32")][: len(node.outputs)]


@rule("SkipLayerNormalization", "SkipSimplifiedLayerNormalization")
def _skip_layer_norm(node: Node) -> list[Out]:
    x = shape(node)
    stat = x[:-1] + (1,)
    return [same(node), (stat, "float32"), (stat, "float32"), same(node)][: len(node.outputs)]


@rule("BatchNormalization")
def _batch_norm(node: Node) -> list[Out]:
    x = shape(node)
    if len(x) < 2:
        raise fail(node, f"input has rank {len(x)}, needs at least 2")
    c = (x[1],)
    return [same(node)] + [(c, dtype(node, 3) if has(node, 3) else dtype(node))] * (len(node.outputs) - 1)


# ------------------------------------------------------------------ shape manipulation
@rule("Reshape")
def _reshape(node: Node) -> list[Out]:
    x = shape(node)
    target = ints(node, 1, "shape")
    if target is None:
        raise Unknown
    allowzero = int(node.attrs.get("allowzero", 0))
    out = [x[k] if d == 0 and not allowzero else d for k, d in enumerate(target)]
    total = math.prod(x)
    if out.count(-1) > 1:
        raise fail(node, f"shape {target} has more than one -1")
    if -1 in out:
        rest = math.prod(d for d in out if d != -1)
        if rest == 0 or total % rest:
            raise fail(node, f"cannot reshape {list(x)} to {target}")
        out[out.index(-1)] = total // rest
    if math.prod(out) != total:
        raise fail(node, f"cannot reshape {list(x)} ({total} elements) to {target}")
    return [(tuple(out), dtype(node))]


@rule("Flatten")
def _flatten(node: Node) -> list[Out]:
    x = shape(node)
    axis = int(node.attrs.get("axis", 1))
    axis = axis + len(x) if axis < 0 else axis
    return [((math.prod(x[:axis]), math.prod(x[axis:])), dtype(node))]


@rule("Transpose")
def _transpose(node: Node) -> list[Out]:
    x = shape(node)
    perm = list(node.attrs.get("perm") or reversed(range(len(x))))
    if sorted(perm) != list(range(len(x))):
        raise fail(node, f"perm {perm} does not fit rank {len(x)}")
    return [(tuple(x[p] for p in perm), dtype(node))]


@rule("Concat")
def _concat(node: Node) -> list[Out]:
    shapes = [shape(node, i) for i, v in enumerate(node.inputs) if v is not None]
    axis = norm_axis(node, int(node.attrs["axis"]), len(shapes[0]))
    for s in shapes[1:]:
        if len(s) != len(shapes[0]) or any(a != b for k, (a, b) in enumerate(zip(s, shapes[0])) if k != axis):
            raise fail(node, f"inputs {[list(s) for s in shapes]} differ outside axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [(tuple(out), dtype(node))]


@rule("Split")
def _split(node: Node) -> list[Out]:
    x = shape(node)
    axis = norm_axis(node, int(node.attrs.get("axis", 0)), len(x))
    n = len(node.outputs)
    sizes = ints(node, 1, "split")
    if sizes is None:
        chunk = -(-x[axis] // n)
        sizes = [chunk] * (n - 1) + [x[axis] - chunk * (n - 1)]
    if sum(sizes) != x[axis] or len(sizes) != n:
        raise fail(node, f"split sizes {sizes} do not fit dim {x[axis]} into {n} outputs")
    return [(x[:axis] + (s,) + x[axis + 1:], dtype(node)) for s in sizes]


@rule("Slice")
def _slice(node: Node) -> list[Out]:
    x = shape(node)
    starts, ends = ints(node, 1, "starts"), ints(node, 2, "ends")
    if starts is None or ends is None:
        raise Unknown
    axes = ints(node, 3, "axes") or list(range(len(starts)))
    steps = ints(node, 4) or [1] * len(starts)
    out = list(x)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = norm_axis(node, a, len(x))
        if st == 0:
            raise fail(node, "slice step is 0")
        out[a] = len(range(*slice(s, e, st).indices(x[a])))
    return [(tuple(out), dtype(node))]


@rule("Gather")
def _gather(node: Node) -> list[Out]:
    x, idx = shape(node), shape(node, 1)
    axis = norm_axis(node, int(node.attrs.get("axis", 0)), len(x))
    return [(x[:axis] + idx + x[axis + 1:], dtype(node))]


@rule("GatherElements")
def _gather_elements(node: Node) -> list[Out]:
    return [(shape(node, 1), dtype(node))]


@rule("Squeeze")
def _squeeze(node: Node) -> list[Out]:
    x = shape(node)
    axes = ints(node, 1, "axes")
    if axes is None:
        return [(tuple(d for d in x if d != 1), dtype(node))]
    axes = {norm_axis(node, a, len(x)) for a in axes}
    for a in axes:
        if x[a] != 1:
            raise fail(node, f"cannot squeeze axis {a} of size {x[a]} (input {list(x)})")
    return [(tuple(d for k, d in enumerate(x) if k not in axes), dtype(node))]


@rule("Unsqueeze")
def _unsqueeze(node: Node) -> list[Out]:
    x = shape(node)
    axes = ints(node, 1, "axes")
    if axes is None:
        raise Unknown
    rank = len(x) + len(axes)
    axes = sorted(norm_axis(node, a, rank) for a in axes)
    out, it = [], iter(x)
    for k in range(rank):
        out.append(1 if k in axes else next(it))
    return [(tuple(out), dtype(node))]


@rule("Pad")
def _pad(node: Node) -> list[Out]:
    x = shape(node)
    pads = ints(node, 1, "pads")
    if pads is None:
        raise Unknown
    axes = ints(node, 3) or list(range(len(x)))
    n = len(axes)
    out = list(x)
    for k, a in enumerate(axes):
        a = norm_axis(node, a, len(x))
        out[a] = x[a] + pads[k] + pads[k + n]
        if out[a] < 0:
            raise fail(node, f"pads {pads} make dim {a} of {list(x)} negative")
    return [(tuple(out), dtype(node))]


@rule("Resize", "Upsample")
def _resize(node: Node) -> list[Out]:
    x = shape(node)
    if node.attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise Unknown
    axes = node.attrs.get("axes") or list(range(len(x)))
    axes = [a % len(x) for a in axes]
    out = list(x)
    if node.onnx_op == "Upsample":
        scales = const(node, 1) if has(node, 1) else np.asarray(node.attrs.get("scales"))
        sizes = None
    else:
        scales = const(node, 2) if has(node, 2) else None
        sizes = const(node, 3) if has(node, 3) else None
        if len(node.inputs) == 2:  # opset 10: (X, scales)
            scales = const(node, 1)
    if sizes is not None and np.size(sizes):
        for a, s in zip(axes, np.asarray(sizes).reshape(-1)):
            out[a] = int(s)
    elif scales is not None and np.size(scales):
        for a, s in zip(axes, np.asarray(scales, dtype=np.float64).reshape(-1)):
            out[a] = int(math.floor(x[a] * float(s) + 1e-9))
    else:
        raise Unknown
    return [(tuple(out), dtype(node))]


@rule("Expand")
def _expand(node: Node) -> list[Out]:
    target = ints(node, 1)
    if target is None:
        raise Unknown
    return [(broadcast(node, shape(node), tuple(target)), dtype(node))]


@rule("Tile")
def _tile(node: Node) -> list[Out]:
    x, reps = shape(node), ints(node, 1)
    if reps is None or len(reps) != len(x):
        raise Unknown
    return [(tuple(d * r for d, r in zip(x, reps)), dtype(node))]


@rule("Shape")
def _shape(node: Node) -> list[Out]:
    v = node.input(0)
    if v is None:
        raise Unknown
    if v.shape is None:
        return [(None, "int64")]
    rank = len(v.shape)
    start = int(node.attrs.get("start", 0))
    end = node.attrs.get("end")
    n = len(range(*slice(start, rank if end is None else int(end)).indices(rank)))
    return [((n,), "int64")]


@rule("Size")
def _size(node: Node) -> list[Out]:
    return [((), "int64")]


@rule("ConstantOfShape")
def _constant_of_shape(node: Node) -> list[Out]:
    value = node.attrs.get("value")
    dt = dtypes.from_numpy(np.asarray(value).dtype) if value is not None else "float32"
    target = ints(node, 0)
    return [(tuple(target) if target is not None else None, dt)]


@rule("Range")
def _range(node: Node) -> list[Out]:
    start, limit, delta = (np.asarray(const(node, i)).item() for i in range(3))
    n = max(int(math.ceil((limit - start) / delta)), 0)
    return [((n,), dtype(node))]


@rule("OneHot")
def _one_hot(node: Node) -> list[Out]:
    idx, depth = shape(node), int(np.asarray(const(node, 1)).item())
    axis = int(node.attrs.get("axis", -1))
    axis = axis + len(idx) + 1 if axis < 0 else axis
    return [(idx[:axis] + (depth,) + idx[axis:], dtype(node, 2))]


@rule("DepthToSpace")
def _depth_to_space(node: Node) -> list[Out]:
    n, c, h, w = shape(node)
    b = int(node.attrs["blocksize"])
    return [((n, c // (b * b), h * b, w * b), dtype(node))]


@rule("SpaceToDepth")
def _space_to_depth(node: Node) -> list[Out]:
    n, c, h, w = shape(node)
    b = int(node.attrs["blocksize"])
    return [((n, c * b * b, h // b, w // b), dtype(node))]


# ------------------------------------------------------------------ reductions
_REDUCE = "ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp " \
          "ReduceSumSquare".split()


@rule(*_REDUCE)
def _reduce(node: Node) -> list[Out]:
    x = shape(node)
    axes = ints(node, 1, "axes")
    keep = int(node.attrs.get("keepdims", 1))
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            return [same(node)]
        axes = list(range(len(x)))
    axes_set = {norm_axis(node, a, len(x)) for a in axes}
    out = tuple((1 if keep else None) if k in axes_set else d for k, d in enumerate(x))
    return [(tuple(d for d in out if d is not None), dtype(node))]


@rule("ArgMax", "ArgMin")
def _argmax(node: Node) -> list[Out]:
    x = shape(node)
    axis = norm_axis(node, int(node.attrs.get("axis", 0)), len(x))
    keep = int(node.attrs.get("keepdims", 1))
    out = x[:axis] + ((1,) if keep else ()) + x[axis + 1:]
    return [(out, "int64")]


@rule("TopK")
def _topk(node: Node) -> list[Out]:
    x = shape(node)
    k = ints(node, 1, "k")
    if k is None:
        raise Unknown
    axis = norm_axis(node, int(node.attrs.get("axis", -1)), len(x))
    out = x[:axis] + (k[0],) + x[axis + 1:]
    return [(out, dtype(node)), (out, "int64")]


# the compute-op rules live in their own module; importing it registers them
from symbiote.ir import shape_rules_compute  # noqa: E402,F401
