"""JAX rules for the layers: convolutions of every kind, pools, normalizations,
Gemm/MatMul/Einsum, ONNX Attention (opset 23), LSTM/GRU/RNN with their sequence loop, and Resize.

They join :data:`symbiote.ir.jax_ops.RULES` (one table keyed by ONNX op type). Matrix
products and convolutions run at full float32 precision (``Precision.HIGHEST``) so the
function matches onnxruntime to rtol 1e-4. The integer forms (ConvInteger,
MatMulInteger) accumulate in int32 exactly; the QLinear forms dequantize, compute in
float and requantize, which can differ from onnxruntime's fixed-point requantization by
one level on exact ties.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from symbiote.ir.jax_ops import Call, axis_of, rule, straight_through_levels

HIGHEST = lax.Precision.HIGHEST


# ------------------------------------------------------------------ windows (conv and pool geometry)
def _ints(c: Call, name: str, n: int, default: int) -> list[int]:
    v = c.attr(name)
    return [int(x) for x in v] if v else [default] * n


def _window_pads(c: Call, spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                 dilations: Sequence[int]) -> list[tuple[int, int]]:
    """Per spatial axis (low, high) padding from ``pads`` or ``auto_pad``."""
    n = len(spatial)
    auto = c.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            out.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return out
    if auto == "VALID":
        return [(0, 0)] * n
    pads = _ints(c, "pads", 2 * n, 0)
    return [(pads[i], pads[i + n]) for i in range(n)]


def _kernel(c: Call, w_shape: Sequence[int] | None, n: int) -> list[int]:
    k = c.attr("kernel_shape")
    return [int(x) for x in k] if k else list(w_shape[2:2 + n])


# ------------------------------------------------------------------ convolutions
def _conv(x, w, c: Call, *, int_out: bool = False):
    n = x.ndim - 2
    strides, dilations = _ints(c, "strides", n, 1), _ints(c, "dilations", n, 1)
    kernel = _kernel(c, w.shape, n)
    pads = _window_pads(c, x.shape[2:], kernel, strides, dilations)
    kw = {"preferred_element_type": jnp.int32} if int_out else {"precision": HIGHEST}
    return lax.conv_general_dilated(x, w, strides, pads, rhs_dilation=dilations,
                                    feature_group_count=int(c.attr("group", 1)), **kw)


def _bias(y, b):
    return y if b is None else y + jnp.asarray(b).reshape((1, -1) + (1,) * (y.ndim - 2))


@rule("Conv")
def _conv_rule(c: Call) -> list:
    return [_bias(_conv(jnp.asarray(c.ins[0]), jnp.asarray(c.ins[1]), c), c.arg(2))]


def _zero_pointed(x, zp):
    x = jnp.asarray(x).astype(jnp.int32)
    return x if zp is None else x - jnp.asarray(zp).astype(jnp.int32)


@rule("ConvInteger")
def _conv_integer(c: Call) -> list:
    x = _zero_pointed(c.ins[0], c.arg(2))
    w = jnp.asarray(c.ins[1]).astype(jnp.int32)
    if c.arg(3) is not None:
        w = w - jnp.asarray(c.ins[3]).astype(jnp.int32).reshape((-1,) + (1,) * (w.ndim - 1))
    return [_conv(x, w, c, int_out=True)]


def _dequant(q, scale, zp, axis_shape: tuple[int, ...] | None = None):
    scale = jnp.asarray(scale, jnp.float32)
    zp = jnp.zeros((), jnp.float32) if zp is None else jnp.asarray(zp).astype(jnp.float32)
    if axis_shape is not None and scale.size > 1:
        scale, zp = scale.reshape(axis_shape), (zp.reshape(axis_shape) if zp.size > 1 else zp)
    return (jnp.asarray(q).astype(jnp.float32) - zp) * scale


def _requant(y, scale, zp):
    zp_arr = np.asarray(zp) if zp is not None else np.zeros((), np.uint8)
    info = np.iinfo(zp_arr.dtype)
    levels = straight_through_levels(y / jnp.asarray(scale, jnp.float32) + jnp.asarray(zp_arr).astype(jnp.float32),
                                     int(info.min), int(info.max))
    return levels


@rule("QLinearConv")
def _qlinear_conv(c: Call) -> list:
    x = _dequant(c.ins[0], c.ins[1], c.ins[2])
    w_q = jnp.asarray(c.ins[3])
    w = _dequant(w_q, c.ins[4], c.ins[5], (-1,) + (1,) * (w_q.ndim - 1))
    y = _conv(x, w, c)
    if c.arg(8) is not None:
        s = jnp.asarray(c.ins[1], jnp.float32) * jnp.asarray(c.ins[4], jnp.float32).reshape(-1)
        y = _bias(y, jnp.asarray(c.ins[8]).astype(jnp.float32) * s)
    return [_requant(y, c.ins[6], c.ins[7])]


@rule("ConvTranspose")
def _conv_transpose(c: Call) -> list:
    x, w = jnp.asarray(c.ins[0]), jnp.asarray(c.ins[1])
    n, g = x.ndim - 2, int(c.attr("group", 1))
    strides, dilations = _ints(c, "strides", n, 1), _ints(c, "dilations", n, 1)
    kernel = _kernel(c, w.shape, n)
    out_pad = _ints(c, "output_padding", n, 0)
    shape = c.attr("output_shape")
    auto = c.attr("auto_pad", "NOTSET")
    if shape or auto in ("SAME_UPPER", "SAME_LOWER"):
        sizes = [int(s) for s in shape[-n:]] if shape else [x.shape[2 + i] * strides[i] for i in range(n)]
        pads = []
        for i in range(n):
            total = strides[i] * (x.shape[2 + i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1 - sizes[i]
            half = total // 2
            pads.append((half, total - half) if auto == "SAME_UPPER" else (total - half, half))
    elif auto == "VALID":
        pads = [(0, 0)] * n
    else:
        p = _ints(c, "pads", 2 * n, 0)
        pads = [(p[i], p[i + n]) for i in range(n)]
    cin, kg = w.shape[0], w.shape[1]
    # W [C, K/g, k...] -> per group [K/g, C/g, k...], spatially flipped: a convolution of the dilated input
    wt = w.reshape((g, cin // g, kg) + tuple(w.shape[2:]))
    wt = jnp.swapaxes(wt, 1, 2).reshape((g * kg, cin // g) + tuple(w.shape[2:]))
    wt = jnp.flip(wt, axis=tuple(range(2, 2 + n)))
    conv_pads = [((kernel[i] - 1) * dilations[i] - pads[i][0], (kernel[i] - 1) * dilations[i] - pads[i][1] + out_pad[i])
                 for i in range(n)]
    y = lax.conv_general_dilated(x, wt, [1] * n, conv_pads, lhs_dilation=strides, rhs_dilation=dilations,
                                 feature_group_count=g, precision=HIGHEST)
    return [_bias(y, c.arg(2))]


# ------------------------------------------------------------------ matrix products
@rule("MatMul")
def _matmul(c: Call) -> list:
    return [jnp.matmul(c.ins[0], c.ins[1], precision=HIGHEST)]


@rule("MatMulInteger")
def _matmul_integer(c: Call) -> list:
    a = _zero_pointed(c.ins[0], c.arg(2))
    b = jnp.asarray(c.ins[1]).astype(jnp.int32)
    if c.arg(3) is not None:
        b = b - jnp.asarray(c.ins[3]).astype(jnp.int32)
    return [jnp.matmul(a, b, preferred_element_type=jnp.int32)]


@rule("QLinearMatMul")
def _qlinear_matmul(c: Call) -> list:
    a = _dequant(c.ins[0], c.ins[1], c.ins[2])
    b = _dequant(c.ins[3], c.ins[4], c.ins[5])
    return [_requant(jnp.matmul(a, b, precision=HIGHEST), c.ins[6], c.ins[7])]


@rule("Gemm")
def _gemm(c: Call) -> list:
    a, b = jnp.asarray(c.ins[0]), jnp.asarray(c.ins[1])
    a = a.T if c.attr("transA", 0) else a
    b = b.T if c.attr("transB", 0) else b
    y = c.attr("alpha", 1.0) * jnp.matmul(a, b, precision=HIGHEST)
    if c.arg(2) is not None:
        y = y + c.attr("beta", 1.0) * jnp.asarray(c.ins[2])
    return [y]


@rule("Einsum")
def _einsum(c: Call) -> list:
    return [jnp.einsum(c.attr("equation"), *c.ins, precision=HIGHEST)]


# ------------------------------------------------------------------ pools
def _pool_geometry(c: Call, x, global_: bool):
    n = x.ndim - 2
    if global_:
        return list(x.shape[2:]), [1] * n, [1] * n, [(0, 0)] * n, [(0, 0)] * n
    kernel, strides, dilations = _kernel(c, None, n), _ints(c, "strides", n, 1), _ints(c, "dilations", n, 1)
    pads = _window_pads(c, x.shape[2:], kernel, strides, dilations)
    extra = [(0, 0)] * n
    if c.attr("ceil_mode", 0):
        extra = []
        for size, k, s, d, (lo, hi) in zip(x.shape[2:], kernel, strides, dilations, pads):
            span = (k - 1) * d + 1
            out = -(-(size + lo + hi - span) // s) + 1
            if (out - 1) * s >= size + lo:        # the last window would start in the padding
                out -= 1
            extra.append((0, max((out - 1) * s + span - (size + lo + hi), 0)))
    return kernel, strides, dilations, pads, extra


def _window(x, init, op, kernel, strides, dilations, pads):
    return lax.reduce_window(x, init, op, (1, 1, *kernel), (1, 1, *strides), [(0, 0), (0, 0), *pads],
                             window_dilation=(1, 1, *dilations))


@rule("MaxPool", "GlobalMaxPool")
def _max_pool(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    if len(c.node.outputs) > 1 and c.node.outputs[1].uses:
        raise c.fail("MaxPool's Indices output")
    kernel, strides, dilations, pads, extra = _pool_geometry(c, x, c.node.onnx_op == "GlobalMaxPool")
    total = [(lo, hi + e) for (lo, hi), (_, e) in zip(pads, extra)]
    return [_window(x, -jnp.inf, lax.max, kernel, strides, dilations, total)]


@rule("AveragePool", "GlobalAveragePool")
def _avg_pool(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    kernel, strides, dilations, pads, extra = _pool_geometry(c, x, c.node.onnx_op == "GlobalAveragePool")
    total = [(lo, hi + e) for (lo, hi), (_, e) in zip(pads, extra)]
    sums = _window(x, 0.0, lax.add, kernel, strides, dilations, total)
    ones = jnp.ones((1, 1) + x.shape[2:], x.dtype)
    if c.attr("count_include_pad", 0):      # the explicit padding counts, the ceil-mode overhang does not
        ones = jnp.pad(ones, [(0, 0), (0, 0), *pads], constant_values=1)
        counts = _window(ones, 0.0, lax.add, kernel, strides, dilations, [(0, e) for _, e in extra])
    else:
        counts = _window(ones, 0.0, lax.add, kernel, strides, dilations, total)
    return [sums / counts]


# ------------------------------------------------------------------ normalizations
def _channel(v, ndim: int):
    return jnp.asarray(v).reshape((1, -1) + (1,) * (ndim - 2))


@rule("BatchNormalization")
def _batch_norm(c: Call) -> list:
    if c.attr("training_mode", 0):
        raise c.fail("training_mode=1")
    x, scale, bias, mean, var = (jnp.asarray(v) for v in c.ins[:5])
    eps = c.attr("epsilon", 1e-5)
    y = (x - _channel(mean, x.ndim)) / jnp.sqrt(_channel(var, x.ndim) + eps) * _channel(scale, x.ndim) + _channel(bias, x.ndim)
    return [y]


def _normalize(x, axes: tuple[int, ...], eps: float):
    mean = jnp.mean(x, axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axes, keepdims=True)
    inv = lax.rsqrt(var + eps)
    return (x - mean) * inv, mean, inv


@rule("LayerNormalization")
def _layer_norm(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    a = axis_of(c.attr("axis", -1), x.ndim)
    y, mean, inv = _normalize(x, tuple(range(a, x.ndim)), c.attr("epsilon", 1e-5))
    y = y * c.ins[1]
    if c.arg(2) is not None:
        y = y + c.ins[2]
    return [y, mean, inv][: len(c.node.outputs)]


@rule("InstanceNormalization")
def _instance_norm(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    y, _, _ = _normalize(x, tuple(range(2, x.ndim)), c.attr("epsilon", 1e-5))
    return [y * _channel(c.ins[1], x.ndim) + _channel(c.ins[2], x.ndim)]


@rule("GroupNormalization")
def _group_norm(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    g = int(c.attr("num_groups"))
    n, ch = x.shape[0], x.shape[1]
    grouped = x.reshape((n, g, -1))
    y, _, _ = _normalize(grouped, (2,), c.attr("epsilon", 1e-5))
    y = y.reshape(x.shape)
    scale, bias = jnp.asarray(c.ins[1]), jnp.asarray(c.ins[2])
    if scale.size == g and g != ch:          # opset 18: one scale per group
        scale, bias = jnp.repeat(scale, ch // g), jnp.repeat(bias, ch // g)
    return [y * _channel(scale, x.ndim) + _channel(bias, x.ndim)]


@rule("LpNormalization")
def _lp_norm(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    a, p = c.attr("axis", -1), c.attr("p", 2)
    norm = jnp.sum(jnp.abs(x), a, keepdims=True) if p == 1 else jnp.sqrt(jnp.sum(x * x, a, keepdims=True))
    return [x / norm]


# ------------------------------------------------------------------ recurrent layers
_ACTIVATIONS: dict[str, Callable] = {"Sigmoid": jax.nn.sigmoid, "Tanh": jnp.tanh, "Relu": jax.nn.relu}


def _activations(c: Call, defaults: tuple[str, ...], dirs: int) -> list[tuple[Callable, ...]]:
    names = c.attr("activations") or list(defaults) * dirs
    if c.attr("activation_alpha") or c.attr("activation_beta"):
        raise c.fail("activation_alpha/activation_beta")
    out = []
    for name in names:
        fn = _ACTIVATIONS.get(name)
        if fn is None:
            raise c.fail(f"activation {name!r}")
        out.append(fn)
    k = len(defaults)
    return [tuple(out[d * k:(d + 1) * k]) for d in range(dirs)]


def _recurrent_inputs(c: Call, gates: int):
    x = jnp.asarray(c.ins[0])
    if c.attr("layout", 0):
        x = jnp.swapaxes(x, 0, 1)
    if c.arg(4) is not None:
        lens = c.static(4)
        if not np.all(lens == x.shape[0]):
            raise c.fail("sequence_lens shorter than the sequence")
    w, r = jnp.asarray(c.ins[1]), jnp.asarray(c.ins[2])
    dirs, hidden = w.shape[0], r.shape[-1]
    b = jnp.zeros((dirs, 2 * gates * hidden), x.dtype) if c.arg(3) is None else jnp.asarray(c.ins[3])

    def state(i):
        s = c.arg(i)
        if s is None:
            return jnp.zeros((dirs, x.shape[1], hidden), x.dtype)
        s = jnp.asarray(s)
        return jnp.swapaxes(s, 0, 1) if c.attr("layout", 0) else s
    return x, w, r, b, dirs, hidden, state


def _directions(c: Call, dirs: int) -> list[bool]:
    d = c.attr("direction", "forward")
    return [False, True] if d == "bidirectional" else [d == "reverse"] * dirs


def _clip(v, c: Call):
    lim = c.attr("clip")
    return v if lim is None else jnp.clip(v, -lim, lim)


def _recurrent_outputs(c: Call, ys: list, finals: list[list]) -> list:
    y = jnp.stack(ys, axis=1)                       # [seq, dirs, batch, hidden]
    outs = [y] + [jnp.stack(f, axis=0) for f in finals]
    if c.attr("layout", 0):
        outs = [jnp.transpose(outs[0], (2, 0, 1, 3))] + [jnp.swapaxes(o, 0, 1) for o in outs[1:]]
    return outs[: len(c.node.outputs)]


@rule("LSTM")
def _lstm(c: Call) -> list:
    x, w, r, b, dirs, hidden, state = _recurrent_inputs(c, 4)
    h0, c0 = state(5), state(6)
    p = None if c.arg(7) is None else jnp.asarray(c.ins[7])
    acts = _activations(c, ("Sigmoid", "Tanh", "Tanh"), dirs)
    couple = bool(c.attr("input_forget", 0))
    ys, hs, cs = [], [], []
    for d, reverse in enumerate(_directions(c, dirs)):
        f, g, h_act = acts[d]
        xw = jnp.einsum("tbi,gi->tbg", x, w[d], precision=HIGHEST) + b[d, :4 * hidden] + b[d, 4 * hidden:]
        pi, po, pf = (p[d, :hidden], p[d, hidden:2 * hidden], p[d, 2 * hidden:]) if p is not None else (0, 0, 0)

        def step(carry, xt, d=d, f=f, g=g, h_act=h_act, pi=pi, po=po, pf=pf):
            h, cell = carry
            z = xt + jnp.matmul(h, r[d].T, precision=HIGHEST)
            i, o, fg, cc = jnp.split(z, 4, axis=-1)
            i = f(_clip(i + pi * cell, c))
            fg = 1 - i if couple else f(_clip(fg + pf * cell, c))
            cell = fg * cell + i * g(_clip(cc, c))
            o = f(_clip(o + po * cell, c))
            h = o * h_act(cell)
            return (h, cell), h
        (h, cell), y = lax.scan(step, (h0[d], c0[d]), xw, reverse=reverse)
        ys.append(y)
        hs.append(h)
        cs.append(cell)
    return _recurrent_outputs(c, ys, [hs, cs])


@rule("GRU")
def _gru(c: Call) -> list:
    x, w, r, b, dirs, hidden, state = _recurrent_inputs(c, 3)
    h0 = state(5)
    acts = _activations(c, ("Sigmoid", "Tanh"), dirs)
    before = bool(c.attr("linear_before_reset", 0))
    ys, hs = [], []
    for d, reverse in enumerate(_directions(c, dirs)):
        f, g = acts[d]
        wb, rb = b[d, :3 * hidden], b[d, 3 * hidden:]
        xw = jnp.einsum("tbi,gi->tbg", x, w[d], precision=HIGHEST) + wb
        rz, rr, rh = r[d][:hidden], r[d][hidden:2 * hidden], r[d][2 * hidden:]

        def step(h, xt, f=f, g=g, rz=rz, rr=rr, rh=rh, rb=rb):
            xz, xr, xh = jnp.split(xt, 3, axis=-1)
            z = f(_clip(xz + jnp.matmul(h, rz.T, precision=HIGHEST) + rb[:hidden], c))
            rg = f(_clip(xr + jnp.matmul(h, rr.T, precision=HIGHEST) + rb[hidden:2 * hidden], c))
            if before:
                hh = g(_clip(xh + rg * (jnp.matmul(h, rh.T, precision=HIGHEST) + rb[2 * hidden:]), c))
            else:
                hh = g(_clip(xh + jnp.matmul(rg * h, rh.T, precision=HIGHEST) + rb[2 * hidden:], c))
            h = (1 - z) * hh + z * h
            return h, h
        h, y = lax.scan(step, h0[d], xw, reverse=reverse)
        ys.append(y)
        hs.append(h)
    return _recurrent_outputs(c, ys, [hs])


@rule("RNN")
def _rnn(c: Call) -> list:
    x, w, r, b, dirs, hidden, state = _recurrent_inputs(c, 1)
    h0 = state(5)
    acts = _activations(c, ("Tanh",), dirs)
    ys, hs = [], []
    for d, reverse in enumerate(_directions(c, dirs)):
        (f,) = acts[d]
        xw = jnp.einsum("tbi,gi->tbg", x, w[d], precision=HIGHEST) + b[d, :hidden] + b[d, hidden:]

        def step(h, xt, f=f, d=d):
            h = f(_clip(xt + jnp.matmul(h, r[d].T, precision=HIGHEST), c))
            return h, h
        h, y = lax.scan(step, h0[d], xw, reverse=reverse)
        ys.append(y)
        hs.append(h)
    return _recurrent_outputs(c, ys, [hs])


# ------------------------------------------------------------------ Resize
def _source_coords(mode: str, out: int, size: int, scale: float) -> np.ndarray:
    o = np.arange(out, dtype=np.float64)
    if mode == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    if mode == "align_corners":
        return o * (size - 1) / (out - 1) if out > 1 else np.zeros(out)
    if mode == "asymmetric":
        return o / scale
    if mode == "tf_half_pixel_for_nn":
        return (o + 0.5) / scale
    raise ValueError(mode)


def _nearest(coords: np.ndarray, how: str, size: int) -> np.ndarray:
    if how == "floor":
        idx = np.floor(coords)
    elif how == "ceil":
        idx = np.ceil(coords)
    elif how == "round_prefer_ceil":
        idx = np.floor(coords + 0.5)
    else:                                  # round_prefer_floor
        idx = np.ceil(coords - 0.5)
    return np.clip(idx, 0, size - 1).astype(np.int64)


@rule("Resize", "Upsample")
def _resize(c: Call) -> list:
    x = jnp.asarray(c.ins[0])
    mode = c.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise c.fail(f"mode {mode!r}")
    ctm = c.attr("coordinate_transformation_mode", "half_pixel" if c.node.onnx_op == "Resize" and c.opset >= 11 else "asymmetric")
    if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"):
        raise c.fail(f"coordinate_transformation_mode {ctm!r}")
    if c.node.onnx_op == "Upsample" or c.opset < 11:
        scales, sizes = (c.static(1) if c.opset >= 9 else np.asarray(c.attr("scales"))), None
    else:
        scales, sizes = c.static(2), c.static(3)
    axes = c.attr("axes")
    axes = list(range(x.ndim)) if axes is None else [axis_of(a, x.ndim) for a in axes]
    if c.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise c.fail("keep_aspect_ratio_policy other than 'stretch'")
    for j, a in enumerate(axes):
        size = x.shape[a]
        if sizes is not None and np.size(sizes):
            out = int(np.asarray(sizes).reshape(-1)[j])
            scale = out / size
        else:
            scale = float(np.asarray(scales).reshape(-1)[j])
            out = int(np.floor(size * scale))
        if out == size and scale == 1.0:
            continue
        coords = _source_coords(ctm, out, size, scale)
        if mode == "nearest":
            idx = _nearest(coords, c.attr("nearest_mode", "round_prefer_floor"), size)
            x = jnp.take(x, jnp.asarray(idx), axis=a)
        else:
            coords = np.clip(coords, 0, size - 1)
            lo = np.floor(coords).astype(np.int64)
            hi = np.minimum(lo + 1, size - 1)
            frac = (coords - lo).astype(np.float32)
            shape = [1] * x.ndim
            shape[a] = out
            t = jnp.asarray(frac).reshape(shape)
            x = jnp.take(x, jnp.asarray(lo), axis=a) * (1 - t) + jnp.take(x, jnp.asarray(hi), axis=a) * t
    return [x]


# ------------------------------------------------------------------ Attention (ONNX opset 23)
def _heads(x, n: int | None):
    """A 3-D ``[B, S, H*D]`` input as ``[B, H, S, D]`` (4-D inputs are already so)."""
    x = jnp.asarray(x)
    if x.ndim == 4:
        return x
    b, s, hd = x.shape
    return x.reshape(b, s, n, hd // n).transpose(0, 2, 1, 3)


@rule("Attention")
def _attention(c: Call) -> list:
    """Scaled dot-product attention as the ONNX operator defines it: ``softmax(softcap(Q K^T *
    scale) + mask) V`` (onnxruntime's order) with grouped key/value heads, a boolean or additive mask, ``is_causal``
    and a past key/value cache concatenated before the new keys and values."""
    if len(c.node.outputs) > 3 and c.node.outputs[3].uses:
        raise c.fail("the qk_matmul_output output")
    q3 = jnp.ndim(c.ins[0]) == 3
    q = _heads(c.ins[0], c.attr("q_num_heads"))
    k = _heads(c.ins[1], c.attr("kv_num_heads"))
    v = _heads(c.ins[2], c.attr("kv_num_heads"))
    if c.arg(4) is not None:
        k = jnp.concatenate([jnp.asarray(c.ins[4]), k], axis=2)
    if c.arg(5) is not None:
        v = jnp.concatenate([jnp.asarray(c.ins[5]), v], axis=2)
    present_k, present_v = k, v
    reps = q.shape[1] // k.shape[1]
    if reps > 1:
        k, v = jnp.repeat(k, reps, axis=1), jnp.repeat(v, reps, axis=1)
    scale = c.attr("scale") or 1.0 / float(np.sqrt(q.shape[-1]))
    root = float(np.sqrt(scale))
    scores = jnp.matmul(q * root, jnp.swapaxes(k * root, -1, -2), precision=HIGHEST)
    sq, skv = scores.shape[-2], scores.shape[-1]
    neg = jnp.asarray(-jnp.inf, scores.dtype)
    cap = c.attr("softcap", 0.0)
    if cap:
        scores = cap * jnp.tanh(scores / cap)
    mask = c.arg(3)
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.shape[-1] < skv:     # a mask shorter than the keys is padded as not attending
            mask = jnp.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, skv - mask.shape[-1])],
                           constant_values=False if mask.dtype == bool else -jnp.inf)
        scores = jnp.where(mask, scores, neg) if mask.dtype == bool else scores + mask
    if c.attr("is_causal", 0):
        past = skv - sq
        allowed = np.arange(skv)[None, :] <= np.arange(sq)[:, None] + past
        scores = jnp.where(allowed, scores, neg)
    y = jnp.matmul(jax.nn.softmax(scores, axis=-1), v, precision=HIGHEST)
    if q3:
        b, h, s, d = y.shape
        y = y.transpose(0, 2, 1, 3).reshape(b, s, h * d)
    return [y, present_k, present_v][: len(c.node.outputs)]
