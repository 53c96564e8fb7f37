"""Shape rules for the compute ops: convolutions, pooling, matrix products, recurrent cells.

Registered into :data:`symbiote.ir.shape_rules.RULES` on import (see that module for the
rule protocol).
"""

from __future__ import annotations

from collections.abc import Sequence

from symbiote.ir.graph import Node
from symbiote.ir.shape_rules import Out, Shape, Unknown, broadcast, dtype, fail, rule, shape


# ------------------------------------------------------------------ convolution and pooling
def _spatial(node: Node, x: Shape, kernel: Sequence[int], *, ceil_mode: bool = False) -> list[int]:
    n = len(kernel)
    strides = list(node.attrs.get("strides") or [1] * n)
    dil = list(node.attrs.get("dilations") or [1] * n)
    pads = list(node.attrs.get("pads") or [0] * (2 * n))
    auto = node.attrs.get("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    out = []
    for k in range(n):
        size, eff = x[2 + k], (kernel[k] - 1) * dil[k] + 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-size // strides[k])
        elif auto == "VALID":
            o = (size - eff) // strides[k] + 1
        else:
            span = size + pads[k] + pads[k + n] - eff
            o = (-(-span // strides[k]) if ceil_mode else span // strides[k]) + 1
            if ceil_mode and (o - 1) * strides[k] >= size + pads[k]:
                o -= 1  # the last window must start inside the input or its left padding
        if o <= 0:
            raise fail(node, f"spatial dim {k} of input {list(x)} is too small for kernel {list(kernel)}")
        out.append(o)
    return out


def _conv_shape(node: Node, xi: int, wi: int) -> Shape:
    x, w = shape(node, xi), shape(node, wi)
    if len(x) != len(w) or len(x) < 3:
        raise fail(node, f"input {list(x)} and weight {list(w)} ranks do not fit a convolution")
    group = int(node.attrs.get("group", 1))
    if x[1] != w[1] * group:
        raise fail(node, f"input has {x[1]} channels but weight {list(w)} with group={group} expects {w[1] * group}")
    kernel = list(node.attrs.get("kernel_shape") or w[2:])
    return (x[0], w[0], *_spatial(node, x, kernel))


@rule("Conv", "FusedConv", "NhwcConv")
def _conv(node: Node) -> list[Out]:
    return [(_conv_shape(node, 0, 1), dtype(node))]


@rule("ConvInteger")
def _conv_integer(node: Node) -> list[Out]:
    return [(_conv_shape(node, 0, 1), "int32")]


@rule("QLinearConv")
def _qlinear_conv(node: Node) -> list[Out]:
    return [(_conv_shape(node, 0, 3), dtype(node, 7))]


@rule("ConvTranspose")
def _conv_transpose(node: Node) -> list[Out]:
    x, w = shape(node), shape(node, 1)
    n = len(x) - 2
    group = int(node.attrs.get("group", 1))
    if x[1] != w[0]:
        raise fail(node, f"input has {x[1]} channels but weight {list(w)} expects {w[0]}")
    kernel = list(node.attrs.get("kernel_shape") or w[2:])
    strides = list(node.attrs.get("strides") or [1] * n)
    dil = list(node.attrs.get("dilations") or [1] * n)
    pads = list(node.attrs.get("pads") or [0] * (2 * n))
    opad = list(node.attrs.get("output_padding") or [0] * n)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if node.attrs.get("output_shape"):
        sp = list(node.attrs["output_shape"])[-n:]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        sp = [x[2 + k] * strides[k] for k in range(n)]
    else:
        sp = [strides[k] * (x[2 + k] - 1) + opad[k] + (kernel[k] - 1) * dil[k] + 1 - pads[k] - pads[k + n]
              for k in range(n)]
    return [((x[0], w[1] * group, *sp), dtype(node))]


@rule("MaxPool", "AveragePool", "LpPool")
def _pool(node: Node) -> list[Out]:
    x = shape(node)
    sp = _spatial(node, x, list(node.attrs["kernel_shape"]), ceil_mode=bool(node.attrs.get("ceil_mode", 0)))
    out = (x[0], x[1], *sp)
    return [(out, dtype(node)), (out, "int64")][: len(node.outputs)]


@rule("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def _global_pool(node: Node) -> list[Out]:
    x = shape(node)
    return [(x[:2] + (1,) * (len(x) - 2), dtype(node))]


# ------------------------------------------------------------------ matrix products
def _matmul_shape(node: Node, a: Shape, b: Shape) -> Shape:
    if not a or not b:
        raise fail(node, "MatMul inputs must not be scalars")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise fail(node, f"inner dims differ: {list(a)} x {list(b)}")
    batch = broadcast(node, a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


@rule("MatMul")
def _matmul(node: Node) -> list[Out]:
    return [(_matmul_shape(node, shape(node, 0), shape(node, 1)), dtype(node))]


@rule("FusedMatMul")
def _fused_matmul(node: Node) -> list[Out]:
    a, b = list(shape(node, 0)), list(shape(node, 1))
    if node.attrs.get("transA") and len(a) >= 2:
        a[-1], a[-2] = a[-2], a[-1]
    if node.attrs.get("transB") and len(b) >= 2:
        b[-1], b[-2] = b[-2], b[-1]
    return [(_matmul_shape(node, tuple(a), tuple(b)), dtype(node))]


@rule("MatMulInteger")
def _matmul_integer(node: Node) -> list[Out]:
    return [(_matmul_shape(node, shape(node, 0), shape(node, 1)), "int32")]


@rule("QLinearMatMul")
def _qlinear_matmul(node: Node) -> list[Out]:
    return [(_matmul_shape(node, shape(node, 0), shape(node, 3)), dtype(node, 7))]


@rule("Gemm", "FusedGemm")
def _gemm(node: Node) -> list[Out]:
    a, b = shape(node, 0), shape(node, 1)
    if len(a) != 2 or len(b) != 2:
        raise fail(node, f"Gemm needs 2-D inputs, got {list(a)} and {list(b)}")
    m, k = (a[1], a[0]) if node.attrs.get("transA") else a
    k2, n = (b[1], b[0]) if node.attrs.get("transB") else b
    if k != k2:
        raise fail(node, f"inner dims differ: {list(a)} x {list(b)} (transA={node.attrs.get('transA', 0)}, "
                         f"transB={node.attrs.get('transB', 0)})")
    return [((m, n), dtype(node))]


# ------------------------------------------------------------------ recurrent
def _recurrent(node: Node, with_cell: bool) -> list[Out]:
    x = shape(node)
    layout = int(node.attrs.get("layout", 0))
    seq, batch = (x[1], x[0]) if layout else (x[0], x[1])
    hidden = int(node.attrs.get("hidden_size") or shape(node, 2)[-1])
    dirs = 2 if node.attrs.get("direction", "forward") == "bidirectional" else 1
    y = (batch, seq, dirs, hidden) if layout else (seq, dirs, batch, hidden)
    h = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    outs: list[Out] = [(y, dtype(node)), (h, dtype(node))]
    if with_cell:
        outs.append((h, dtype(node)))
    return outs[: len(node.outputs)]


@rule("LSTM")
def _lstm(node: Node) -> list[Out]:
    return _recurrent(node, True)


@rule("GRU", "RNN")
def _gru(node: Node) -> list[Out]:
    return _recurrent(node, False)


# ------------------------------------------------------------------ einsum and attention
@rule("Einsum")
def _einsum(node: Node) -> list[Out]:
    from symbiote.ir.einsum import parse

    shapes = [shape(node, i) for i in range(len(node.inputs))]
    eq = node.attrs.get("equation", "")
    eq = eq.decode() if isinstance(eq, bytes) else str(eq)
    try:
        e = parse(eq, shapes)
    except ValueError as err:
        raise fail(node, str(err)) from err
    return [(e.output_shape, dtype(node))]


def attention_dims(node: Node) -> dict[str, int]:
    """Batch, heads, lengths and head sizes of an ONNX ``Attention`` node (opset 23 spec):
    ``b, hq, hkv, sq, skv, past, total, d, dv`` and ``rank`` (3 or 4). The contrib op of the
    same name (domain com.microsoft, packed QKV weights) is another op: Unknown."""
    if node.domain not in ("", "ai.onnx"):
        raise Unknown
    q, k, v = shape(node, 0), shape(node, 1), shape(node, 2)
    if not len(q) == len(k) == len(v) or len(q) not in (3, 4):
        raise fail(node, f"Q, K, V must all be 3-D or all 4-D, got {list(q)}, {list(k)}, {list(v)}")
    if len(q) == 4:
        b, hq, sq, d = q
        _, hkv, skv, _ = k
        dv = v[3]
        if k[3] != d or v[2] != skv or v[1] != hkv:
            raise fail(node, f"K {list(k)} / V {list(v)} do not fit Q {list(q)}")
    else:
        hq, hkv = int(node.attrs.get("q_num_heads", 0)), int(node.attrs.get("kv_num_heads", 0))
        if hq <= 0 or hkv <= 0 or q[2] % hq or k[2] % hkv or v[2] % hkv:
            raise fail(node, f"3-D inputs need q_num_heads/kv_num_heads dividing the hidden sizes "
                             f"(got {hq}/{hkv} for {list(q)}, {list(k)}, {list(v)})")
        b, sq, skv = q[0], q[1], k[1]
        d, dv = q[2] // hq, v[2] // hkv
        if k[2] // hkv != d or v[1] != skv:
            raise fail(node, f"K {list(k)} / V {list(v)} do not fit Q {list(q)} with {hq}/{hkv} heads")
    if hq % hkv:
        raise fail(node, f"q heads ({hq}) must be a multiple of kv heads ({hkv})")
    past = shape(node, 4)[2] if len(node.inputs) > 4 and node.input(4) is not None else 0
    return {"b": b, "hq": hq, "hkv": hkv, "sq": sq, "skv": skv, "past": past, "total": past + skv, "d": d, "dv": dv,
            "rank": len(q)}


@rule("Attention")
def _attention(node: Node) -> list[Out]:
    a = attention_dims(node)
    y = (a["b"], a["hq"], a["sq"], a["dv"]) if a["rank"] == 4 else (a["b"], a["sq"], a["hq"] * a["dv"])
    dt = dtype(node)
    return [(y, dt), ((a["b"], a["hkv"], a["total"], a["d"]), dtype(node, 1)),
            ((a["b"], a["hkv"], a["total"], a["dv"]), dtype(node, 2)), ((a["b"], a["hq"], a["sq"], a["total"]), dt)]
