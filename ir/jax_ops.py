"""JAX rules for the element-wise, activation, reduction, shape and quantizer ONNX ops.

A rule is ``rule(call) -> list of outputs`` (:class:`Call`: the node, its evaluated inputs,
the opset); :data:`RULES` maps an ONNX op type (default domain) to its rule, in the
autodidax style: one table, one entry per primitive. :mod:`symbiote.ir.jax_layers` adds
the layers (convolutions, pools, norms, GEMMs, recurrent cells, Resize) and
:mod:`symbiote.ir.to_jax` walks the graph. Semantics follow the ONNX operator
specification at the graph's opset (attribute defaults included); an input that must be
known when the function is traced (a Reshape's shape, a Slice's bounds, a reduction's
axes) is read with :meth:`Call.static`, which says so by name when it is not.

Quantizers train with a straight-through gradient: ``QuantizeLinear`` returns its integer
levels as floats (the value rounds and saturates exactly as onnxruntime does; the
gradient passes through inside the range and is zero where it saturates), so a
``QuantizeLinear -> DequantizeLinear`` pair is fake quantization.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from symbiote.errors import SymbioteError
from symbiote.ir import dtypes
from symbiote.ir.graph import Node


class UnsupportedOpError(SymbioteError):
    """The IR holds an op (or a form of one) the JAX function cannot compute."""


@dataclass(frozen=True)
class Call:
    """One node's evaluation: the node, its inputs (None for omitted optional ones) and the opset."""

    node: Node
    ins: Sequence[Any]
    opset: int

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attrs.get(name, default)

    def arg(self, i: int) -> Any:
        return self.ins[i] if i < len(self.ins) else None

    def static(self, i: int, default: Any = None) -> np.ndarray | None:
        """Input ``i`` as a numpy array: it must be known at trace time (a constant, or
        computed from constants only)."""
        x = self.arg(i)
        if x is None:
            return default
        try:
            return np.asarray(x)
        except jax.errors.TracerArrayConversionError:
            raise UnsupportedOpError(
                f"node {self.node.name!r} ({self.node.onnx_op}): input {i} must be known before the model runs "
                "(a constant), but it is computed from the model's inputs") from None

    def fail(self, what: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"node {self.node.name!r} ({self.node.onnx_op}): {what} is not supported by the JAX function")


Rule = Callable[[Call], list]
RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for n in names:
            RULES[n] = fn
        return fn
    return register


def np_dtype(onnx_enum: int) -> np.dtype:
    return np.dtype(dtypes.to_numpy(dtypes.from_onnx(int(onnx_enum))))


def axis_of(axis: int, rank: int) -> int:
    return int(axis) % rank if rank else 0


# ------------------------------------------------------------------ element-wise
def _unary(fn: Callable) -> Rule:
    return lambda c: [fn(c.ins[0])]


def _binary(fn: Callable) -> Rule:
    return lambda c: [fn(c.ins[0], c.ins[1])]


def _div(a, b):
    a, b = jnp.asarray(a), jnp.asarray(b)
    if jnp.issubdtype(a.dtype, jnp.integer):
        return lax.div(*jnp.broadcast_arrays(a, b.astype(a.dtype)))   # truncates toward zero, as ONNX
    return a / b


def _pow(a, b):
    a = jnp.asarray(a)
    return jnp.power(a, jnp.asarray(b).astype(a.dtype)) if jnp.issubdtype(a.dtype, jnp.floating) else jnp.power(a, b)


for _n, _f in {"Add": jnp.add, "Sub": jnp.subtract, "Mul": jnp.multiply, "Div": _div, "Pow": _pow,
               "Equal": jnp.equal, "Less": jnp.less, "Greater": jnp.greater, "LessOrEqual": jnp.less_equal,
               "GreaterOrEqual": jnp.greater_equal, "And": jnp.logical_and, "Or": jnp.logical_or,
               "Xor": jnp.logical_xor, "BitShift": None}.items():
    if _f is not None:
        RULES[_n] = _binary(_f)

for _n, _f in {"Relu": jax.nn.relu, "Sigmoid": jax.nn.sigmoid, "Tanh": jnp.tanh, "Exp": jnp.exp, "Log": jnp.log,
               "Sqrt": jnp.sqrt, "Reciprocal": jnp.reciprocal, "Neg": jnp.negative, "Abs": jnp.abs,
               "Erf": jax.scipy.special.erf, "Floor": jnp.floor, "Ceil": jnp.ceil, "Round": jnp.round,
               "Sign": jnp.sign, "Sin": jnp.sin, "Cos": jnp.cos, "Tan": jnp.tan, "Not": jnp.logical_not,
               "Softplus": jax.nn.softplus, "Softsign": jax.nn.soft_sign, "Identity": lambda x: x,
               "IsNaN": jnp.isnan, "Atan": jnp.arctan, "Asin": jnp.arcsin, "Acos": jnp.arccos,
               "Sinh": jnp.sinh, "Cosh": jnp.cosh, "Mish": lambda x: x * jnp.tanh(jax.nn.softplus(x))}.items():
    RULES[_n] = _unary(_f)


@rule("Max", "Min", "Sum", "Mean")
def _variadic(c: Call) -> list:
    fn = {"Max": jnp.maximum, "Min": jnp.minimum, "Sum": jnp.add, "Mean": jnp.add}[c.node.onnx_op]
    out = c.ins[0]
    for x in c.ins[1:]:
        out = fn(out, x)
    return [out / len(c.ins) if c.node.onnx_op == "Mean" else out]


@rule("Mod")
def _mod(c: Call) -> list:
    return [jnp.fmod(c.ins[0], c.ins[1]) if c.attr("fmod", 0) else jnp.mod(c.ins[0], c.ins[1])]


@rule("Where")
def _where(c: Call) -> list:
    return [jnp.where(c.ins[0], c.ins[1], c.ins[2])]


@rule("Cast")
def _cast(c: Call) -> list:
    return [jnp.asarray(c.ins[0]).astype(np_dtype(c.attr("to")))]


@rule("CastLike")
def _cast_like(c: Call) -> list:
    return [jnp.asarray(c.ins[0]).astype(jnp.asarray(c.ins[1]).dtype)]


@rule("Dropout")
def _dropout(c: Call) -> list:
    x = c.ins[0]
    return [x, jnp.ones(jnp.shape(x), bool)][: len(c.node.outputs)]


# ------------------------------------------------------------------ activations
@rule("LeakyRelu")
def _leaky(c: Call) -> list:
    return [jax.nn.leaky_relu(c.ins[0], c.attr("alpha", 0.01))]


@rule("Elu")
def _elu(c: Call) -> list:
    return [jax.nn.elu(c.ins[0], c.attr("alpha", 1.0))]


@rule("Selu")
def _selu(c: Call) -> list:
    x, a, g = c.ins[0], c.attr("alpha", 1.67326319217681884765625), c.attr("gamma", 1.05070102214813232421875)
    return [g * jnp.where(x > 0, x, a * (jnp.exp(x) - 1))]


@rule("HardSigmoid")
def _hard_sigmoid(c: Call) -> list:
    return [jnp.clip(c.attr("alpha", 0.2) * c.ins[0] + c.attr("beta", 0.5), 0, 1)]


@rule("HardSwish")
def _hard_swish(c: Call) -> list:
    x = c.ins[0]
    return [x * jnp.clip(x / 6 + 0.5, 0, 1)]


@rule("ThresholdedRelu")
def _thresholded(c: Call) -> list:
    x = c.ins[0]
    return [jnp.where(x > c.attr("alpha", 1.0), x, 0)]


@rule("Gelu")
def _gelu(c: Call) -> list:
    return [jax.nn.gelu(c.ins[0], approximate=c.attr("approximate", "none") == "tanh")]


@rule("PRelu")
def _prelu(c: Call) -> list:
    x, s = c.ins
    return [jnp.where(x < 0, s * x, x)]


@rule("Clip")
def _clip(c: Call) -> list:
    x = c.ins[0]
    lo, hi = (c.arg(1), c.arg(2)) if c.opset >= 11 else (c.attr("min"), c.attr("max"))
    if lo is not None:
        x = jnp.maximum(x, lo)
    if hi is not None:
        x = jnp.minimum(x, hi)
    return [x]


def _coerced(c: Call, fn: Callable) -> list:
    """Softmax-like ops: along ``axis`` (opset >= 13, default -1), or over the axes from
    ``axis`` on, flattened (earlier opsets, default 1)."""
    x = c.ins[0]
    if c.opset >= 13:
        return [fn(x, axis=c.attr("axis", -1))]
    a = axis_of(c.attr("axis", 1), x.ndim)
    flat = x.reshape(int(np.prod(x.shape[:a], dtype=np.int64)), -1)
    return [fn(flat, axis=-1).reshape(x.shape)]


RULES["Softmax"] = lambda c: _coerced(c, jax.nn.softmax)
RULES["LogSoftmax"] = lambda c: _coerced(c, jax.nn.log_softmax)


@rule("Hardmax")
def _hardmax(c: Call) -> list:
    def hm(x, axis):
        return jax.nn.one_hot(jnp.argmax(x, axis=axis), x.shape[axis], dtype=x.dtype, axis=axis)
    return _coerced(c, hm)


# ------------------------------------------------------------------ reductions
def _axes(c: Call, rank: int, *, from_input_since: int) -> tuple[int, ...] | None:
    """A reduction's axes (None: all), from input 1 at ``from_input_since`` and later opsets, else the attribute."""
    raw = c.static(1) if c.opset >= from_input_since else c.attr("axes")
    if raw is None or np.size(raw) == 0:
        return None
    return tuple(sorted(axis_of(a, rank) for a in np.asarray(raw).reshape(-1)))


_REDUCE = {
    "ReduceSum": (lambda x, a, k: jnp.sum(x, a, keepdims=k), 13),
    "ReduceMean": (lambda x, a, k: jnp.mean(x, a, keepdims=k), 18),
    "ReduceMax": (lambda x, a, k: jnp.max(x, a, keepdims=k), 18),
    "ReduceMin": (lambda x, a, k: jnp.min(x, a, keepdims=k), 18),
    "ReduceProd": (lambda x, a, k: jnp.prod(x, a, keepdims=k), 18),
    "ReduceL1": (lambda x, a, k: jnp.sum(jnp.abs(x), a, keepdims=k), 18),
    "ReduceL2": (lambda x, a, k: jnp.sqrt(jnp.sum(x * x, a, keepdims=k)), 18),
    "ReduceSumSquare": (lambda x, a, k: jnp.sum(x * x, a, keepdims=k), 18),
    "ReduceLogSum": (lambda x, a, k: jnp.log(jnp.sum(x, a, keepdims=k)), 18),
    "ReduceLogSumExp": (lambda x, a, k: jax.nn.logsumexp(x, a, keepdims=k), 18),
}


def _reduce(c: Call) -> list:
    fn, since = _REDUCE[c.node.onnx_op]
    x = jnp.asarray(c.ins[0])
    axes = _axes(c, x.ndim, from_input_since=since)
    if axes is None and c.attr("noop_with_empty_axes", 0):
        return [x]
    return [fn(x, axes, bool(c.attr("keepdims", 1)))]


for _n in _REDUCE:
    RULES[_n] = _reduce


@rule("ArgMax", "ArgMin")
def _arg(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    a = axis_of(c.attr("axis", 0), x.ndim)
    find = jnp.argmax if c.node.onnx_op == "ArgMax" else jnp.argmin
    if c.attr("select_last_index", 0):
        out = x.shape[a] - 1 - find(jnp.flip(x, a), axis=a)
    else:
        out = find(x, axis=a)
    return [jnp.expand_dims(out, a) if c.attr("keepdims", 1) else out]


# ------------------------------------------------------------------ shapes and data movement
@rule("Reshape")
def _reshape(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    shape = [int(s) for s in c.static(1).reshape(-1)]
    if not c.attr("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


@rule("Flatten")
def _flatten(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    a = c.attr("axis", 1) % (x.ndim + 1) if x.ndim else 0
    return [x.reshape(int(np.prod(x.shape[:a], dtype=np.int64)), -1)]


@rule("Squeeze")
def _squeeze(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    raw = c.static(1) if c.opset >= 13 else c.attr("axes")
    if raw is None:
        return [jnp.squeeze(x)]
    return [jnp.squeeze(x, tuple(axis_of(a, x.ndim) for a in np.asarray(raw).reshape(-1)))]


@rule("Unsqueeze")
def _unsqueeze(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    raw = c.static(1) if c.opset >= 13 else c.attr("axes")
    rank = x.ndim + np.size(raw)
    for a in sorted(axis_of(a, rank) for a in np.asarray(raw).reshape(-1)):
        x = jnp.expand_dims(x, a)
    return [x]


@rule("Transpose")
def _transpose(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    perm = c.attr("perm")
    return [jnp.transpose(x, None if perm is None else tuple(perm))]


@rule("Concat")
def _concat(c: Call) -> list:
    xs = [jnp.asarray(x) for x in c.ins if x is not None]
    return [jnp.concatenate(xs, axis=axis_of(c.attr("axis"), xs[0].ndim))]


@rule("Split")
def _split(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    a = axis_of(c.attr("axis", 0), x.ndim)
    sizes = c.static(1) if c.opset >= 13 else c.attr("split")
    n = len(c.node.outputs)
    if sizes is None or np.size(sizes) == 0:
        step = -(-x.shape[a] // n)      # equal parts, the last one smaller (opset 18's rule)
        sizes = [min(step, x.shape[a] - i * step) for i in range(n)]
    cuts = np.cumsum(np.asarray(sizes).reshape(-1))[:-1]
    return list(jnp.split(x, [int(k) for k in cuts], axis=a))


@rule("Slice")
def _slice(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    if c.opset >= 10:
        starts, ends = c.static(1).reshape(-1), c.static(2).reshape(-1)
        axes = c.static(3, np.arange(len(starts))).reshape(-1)
        steps = c.static(4, np.ones(len(starts), np.int64)).reshape(-1)
    else:
        starts, ends = np.asarray(c.attr("starts")), np.asarray(c.attr("ends"))
        axes = np.asarray(c.attr("axes", list(range(len(starts)))))
        steps = np.ones(len(starts), np.int64)
    index: list[Any] = [slice(None)] * x.ndim
    for s, e, a, k in zip(starts, ends, axes, steps):
        a = axis_of(a, x.ndim)
        dim = x.shape[a]
        s, e, k = int(max(min(s, 2**62), -2**62)), int(max(min(e, 2**62), -2**62)), int(k)
        index[a] = slice(*slice(s, e, k).indices(dim))
    return [x[tuple(index)]]


@rule("Gather", "GatherElements")
def _gather(c: Call) -> list:
    """Gather takes whole slices along ``axis``; GatherElements one element per index."""
    x, idx = jnp.asarray(c.ins[0]), jnp.asarray(c.ins[1])
    a = axis_of(c.attr("axis", 0), x.ndim)
    idx = jnp.where(idx < 0, idx + x.shape[a], idx)
    take = jnp.take if c.node.onnx_op == "Gather" else jnp.take_along_axis
    return [take(x, idx, axis=a)]


@rule("Expand")
def _expand(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    shape = tuple(int(s) for s in c.static(1).reshape(-1))
    return [jnp.broadcast_to(x, np.broadcast_shapes(x.shape, shape))]


@rule("Tile")
def _tile(c: Call) -> list:
    return [jnp.tile(c.ins[0], tuple(int(r) for r in c.static(1).reshape(-1)))]


@rule("Shape")
def _shape(c: Call) -> list:
    s = np.asarray(jnp.shape(c.ins[0]), np.int64)
    start, end = c.attr("start", 0), c.attr("end")
    return [s[slice(start, end)]]


@rule("Size")
def _size(c: Call) -> list:
    return [np.asarray(np.size(c.ins[0]) if not hasattr(c.ins[0], "size") else c.ins[0].size, np.int64)]


@rule("ConstantOfShape")
def _constant_of_shape(c: Call) -> list:
    v = c.attr("value")
    v = np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)
    return [jnp.full(tuple(int(s) for s in c.static(0).reshape(-1)), v[0], dtype=v.dtype)]


@rule("Range")
def _range(c: Call) -> list:
    start, limit, delta = (c.static(i) for i in range(3))
    return [jnp.arange(start, limit, delta, dtype=start.dtype)]


@rule("Pad")
def _pad(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    pads = c.static(1).reshape(-1) if c.opset >= 11 else np.asarray(c.attr("pads"))
    value = (c.arg(2) if c.opset >= 11 else c.attr("value", 0.0))
    value = 0 if value is None else value
    axes = c.static(3)
    axes = list(range(x.ndim)) if axes is None else [axis_of(a, x.ndim) for a in axes.reshape(-1)]
    n = len(axes)
    widths = [(0, 0)] * x.ndim
    for j, a in enumerate(axes):
        widths[a] = (int(pads[j]), int(pads[j + n]))
    mode = c.attr("mode", "constant")
    if any(lo < 0 or hi < 0 for lo, hi in widths):     # negative pads crop
        x = x[tuple(slice(-lo if lo < 0 else None, hi if hi < 0 else None) for lo, hi in widths)]
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    if mode == "constant":
        return [jnp.pad(x, widths, constant_values=jnp.asarray(value, x.dtype).reshape(()))]
    if mode in ("reflect", "edge", "wrap"):
        return [jnp.pad(x, widths, mode=mode)]
    raise c.fail(f"mode {mode!r}")


@rule("OneHot")
def _one_hot(c: Call) -> list:
    idx, depth, values = jnp.asarray(c.ins[0]), int(c.static(1).reshape(-1)[0]), jnp.asarray(c.ins[2])
    a = c.attr("axis", -1)
    idx = jnp.where(idx < 0, idx + depth, idx)
    hot = jax.nn.one_hot(idx, depth, axis=a, dtype=bool)
    return [jnp.where(hot, values[1], values[0])]


@rule("TopK")
def _top_k(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    k = int(c.static(1).reshape(-1)[0])
    a = axis_of(c.attr("axis", -1), x.ndim)
    moved = jnp.moveaxis(x if c.attr("largest", 1) else -x, a, -1)
    vals, idx = lax.top_k(moved, k)
    vals = vals if c.attr("largest", 1) else -vals
    return [jnp.moveaxis(vals, -1, a), jnp.moveaxis(idx.astype(jnp.int64), -1, a)]


# ------------------------------------------------------------------ quantizers
def _quant_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _per_axis(param, x, axis: int):
    """A scale or zero point, per tensor (scalar) or per slice along ``axis``, shaped to broadcast."""
    p = jnp.asarray(param)
    if p.ndim == 0 or p.size == 1:
        return p.reshape(())
    shape = [1] * jnp.ndim(x)
    shape[axis_of(axis, jnp.ndim(x))] = p.size
    return p.reshape(shape)


@rule("QuantizeLinear")
def _quantize(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    zp_raw = c.arg(2)
    target = np.dtype(np.uint8) if zp_raw is None else np.dtype(np.asarray(zp_raw).dtype if not hasattr(zp_raw, "dtype") else zp_raw.dtype)
    if c.attr("output_dtype"):
        target = np_dtype(c.attr("output_dtype"))
    if not np.issubdtype(target, np.integer):
        raise c.fail(f"quantizing to {target}")
    lo, hi = _quant_range(target)
    axis = c.attr("axis", 1)
    scale = _per_axis(c.ins[1], x, axis).astype(x.dtype)
    zp = 0.0 if zp_raw is None else _per_axis(zp_raw, x, axis).astype(x.dtype)
    return [straight_through_levels(x / scale + zp, lo, hi)]


def straight_through_levels(v, lo: int, hi: int):
    """``round_half_even(v)`` saturated to ``[lo, hi]``, as floats, with the clipped
    straight-through gradient (1 inside the range, 0 outside)."""
    v = jnp.clip(v, lo, hi)
    return v + lax.stop_gradient(jnp.round(v) - v)


def blocked(param, x, axis: int, block: int):
    """A blocked quantizer's scale or zero point (one per ``block`` elements along ``axis``,
    opset 21) repeated to ``x``'s shape."""
    a = axis_of(axis, jnp.ndim(x))
    return jnp.repeat(jnp.asarray(param), block, axis=a)[tuple(slice(0, n) for n in jnp.shape(x))]


@rule("DequantizeLinear")
def _dequantize(c: Call) -> list:
    q = jnp.asarray(c.ins[0])
    axis, block = c.attr("axis", 1), int(c.attr("block_size", 0) or 0)
    spread = (lambda p: blocked(p, q, axis, block)) if block else (lambda p: _per_axis(p, q, axis))
    scale = spread(c.ins[1])
    zp = 0 if c.arg(2) is None else spread(c.ins[2]).astype(scale.dtype)
    return [(q.astype(scale.dtype) - zp) * scale]
