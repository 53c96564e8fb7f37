"""``set-precision``: per-layer weight/activation bit-widths for the cost models.

Every compute layer (Conv, ConvTranspose, Gemm, MatMul, LSTM/GRU/RNN) gets
``meta["weight_bits"]`` and ``meta["act_bits"]``: ``default`` unless ``layers={node:
bits}`` names it. The model stays float (exact). With ``export_qdq=true`` every constant
weight of a layer at <= 8 bits is stored as integers (an int8 initializer) read through a
DequantizeLinear, as onnxruntime's own static quantizer writes it, so the file shrinks:
symmetric scale = max|w| / (2^(bits-1) - 1) per tensor, or per output channel with
``per_channel=true`` (DequantizeLinear's ``axis``: :func:`weight_axis`).

Activations need calibration data: ``act_ranges={layer: [in_amax, out_amax(, in1_amax)]}``
gives, per layer, the largest |value| of its input activation (input 0), of its output
(after the ops fused into it, :func:`layer_output`) and, for a MatMul of two activations,
of input 1, measured on calibration inputs
(``symbiote.search.sensitivity.activation_ranges``). With ``export_qdq=true`` a Conv,
ConvTranspose, Gemm or MatMul at <= 8 activation bits then has each routed through
``Clip(+-amax) -> QuantizeLinear -> DequantizeLinear`` (static, symmetric per-tensor:
scale = amax / (2^(bits-1) - 1); the Clip makes it a true b-bit quantizer below 8 bits,
since int8 storage alone saturates at +-127). This is what the cost models price: a layer
at ``act_bits`` reads its input and writes its output at that width. The quantizer nodes
are marked ``meta["fused_into"] = layer`` (part of the layer's datapath, not costed apart).
A network output stays float (its name is the model's interface), and so do float16
activations and recurrent layers (LSTM/GRU/RNN: neither weights nor activations). A
quantizer sits between a layer and an activation that was not fused before, so run
``fuse-activations`` first if the activation is to be applied by the layer.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from symbiote.errors import PassError
from symbiote.ir import ops
from symbiote.ir.graph import Graph, Node, Value
from symbiote.passes.base import Pass

_WEIGHT_SLOT = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}


def symmetric_scale(amax: float, bits: int) -> float:
    """The step of a symmetric per-tensor ``bits``-bit quantizer of values in ``+-amax``:
    ``amax / (2^(bits-1) - 1)`` (1.0 for an all-zero tensor)."""
    return float(amax) / (2 ** (bits - 1) - 1) if amax > 0 else 1.0


def activation_quantizer(amax: float, bits: int) -> tuple[float, float]:
    """The clip bound and step of the ``bits``-bit activation quantizer for a calibrated
    ``max|x|`` (a range never seen non-zero clips at +-1)."""
    bound = float(amax) if amax > 0 else 1.0
    return bound, symmetric_scale(bound, bits)


def constant_weight(node: Node) -> Value | None:
    """The constant float weight ``set-precision`` quantizes for this layer, if it has one."""
    slot = _WEIGHT_SLOT.get(node.onnx_op)
    w = node.input(slot) if slot is not None and len(node.inputs) > slot else None
    return w if w is not None and w.is_const and w.dtype in ("float32", "float16") else None


def weight_axis(node: Node) -> int | None:
    """The output-channel axis of a layer's weight (per-channel quantization): Conv
    ``[K, C/g, R, S]`` -> 0; ConvTranspose ``[C, K/g, R, S]`` -> 1 (one group only); Gemm
    ``B`` -> 0 with ``transB``, else 1; MatMul ``[..., K_in, N]`` -> the last axis (None
    for a 1-D weight)."""
    w = node.input(_WEIGHT_SLOT.get(node.onnx_op, 1))
    rank = len(w.shape) if w is not None and w.shape is not None else 0
    if node.onnx_op == "Conv":
        return 0
    if node.onnx_op == "ConvTranspose":
        return 1 if int(node.attrs.get("group", 1) or 1) == 1 else None
    if node.onnx_op == "Gemm":
        return 0 if int(node.attrs.get("transB", 0) or 0) else 1
    if node.onnx_op == "MatMul" and rank >= 2:
        return rank - 1
    return None


def quantize_weight(w: np.ndarray, bits: int, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric ``bits``-bit quantization of ``w``, per tensor (``axis`` None) or per slice
    along ``axis``: ``(integer values as int8, scale)``; the scale is ``max|w| / (2^(bits-1) - 1)``
    of the tensor or slice (1.0 where all zero), the rounding half to even, as QuantizeLinear's."""
    w = np.asarray(w)
    if axis is None:
        scale = np.asarray(symmetric_scale(float(np.abs(w).max()) if w.size else 0.0, bits), dtype=w.dtype)
        shaped = scale
    else:
        axis = axis % w.ndim
        amax = np.abs(w).max(axis=tuple(i for i in range(w.ndim) if i != axis)) if w.size else np.zeros(w.shape[axis])
        scale = np.asarray([symmetric_scale(float(a), bits) for a in amax], dtype=w.dtype)
        shaped = scale.reshape([-1 if i == axis else 1 for i in range(w.ndim)])
    q = np.clip(np.round(w / shaped), -128, 127).astype(np.int8)
    return q, scale


def _qdq_weight(graph: Graph, node: Node, w: Value, bits: int, per_channel: bool) -> None:
    """Store the weight as integers (int8 initializer) read through a DequantizeLinear, as
    onnxruntime's own quantizer writes a static QDQ model; per output channel (an ``axis``
    on DequantizeLinear) when ``per_channel`` and the layer has one."""
    axis = weight_axis(node) if per_channel else None
    q, scale = quantize_weight(w.const, bits, axis)
    qi = graph.add_const(f"{w.name}.int{bits}", q)
    s = graph.add_const(f"{w.name}.scale", scale)
    zp = graph.add_const(f"{w.name}.zero_point", np.zeros(scale.shape, dtype=np.int8))
    attrs = {"axis": int(axis)} if axis is not None else None
    dq = graph.add_node(ops.ELEMENTWISE, "DequantizeLinear", [qi, s, zp], [f"{w.name}.dequantized"],
                        name=f"{node.name}.weight_dequant", before=node, attrs=attrs)
    dq.outputs[0].shape, dq.outputs[0].dtype = w.shape, w.dtype
    node.set_input(_WEIGHT_SLOT[node.onnx_op], dq.outputs[0])
    graph._drop_const_if_unused(w)


def _fake_quant(graph: Graph, x: Value, owner: Node, bits: int, amax: float, tag: str, *, before: Node | None = None,
                after: Node | None = None) -> Value:
    """``Clip(+-amax) -> QuantizeLinear -> DequantizeLinear`` of activation ``x`` (see the module doc)."""
    amax, step = activation_quantizer(amax, bits)
    dt = np.dtype(x.dtype)
    scale = graph.add_const(f"{owner.name}.{tag}_scale", np.asarray(step, dtype=dt))
    zp = graph.add_const(f"{owner.name}.{tag}_zero_point", np.asarray(0, dtype=np.int8))
    lo = graph.add_const(f"{owner.name}.{tag}_min", np.asarray(-amax, dtype=dt))
    hi = graph.add_const(f"{owner.name}.{tag}_max", np.asarray(amax, dtype=dt))
    meta = {"fused_into": owner.name}
    c = graph.add_node(ops.ACTIVATION, "Clip", [x, lo, hi], [f"{x.name}.{tag}_clipped"], name=f"{owner.name}.{tag}_clip",
                       before=before, after=after, meta=meta)
    q = graph.add_node(ops.ELEMENTWISE, "QuantizeLinear", [c.outputs[0], scale, zp], [f"{x.name}.{tag}_quantized"],
                       name=f"{owner.name}.{tag}_quant", after=c, meta=meta)
    dq = graph.add_node(ops.ELEMENTWISE, "DequantizeLinear", [q.outputs[0], scale, zp], [f"{x.name}.{tag}_dequantized"],
                        name=f"{owner.name}.{tag}_dequant", after=q, meta=meta)
    c.outputs[0].shape, c.outputs[0].dtype = x.shape, x.dtype
    q.outputs[0].shape, q.outputs[0].dtype = x.shape, "int8"
    dq.outputs[0].shape, dq.outputs[0].dtype = x.shape, x.dtype
    return dq.outputs[0]


def quantizable(node: Node) -> bool:
    """Whether ``set-precision`` writes this layer at a bit-width, weights and activations:
    Conv, ConvTranspose, Gemm and MatMul (recurrent layers keep float activations and
    weights). The search gives a bit-width knob to exactly these layers."""
    return node.onnx_op in _WEIGHT_SLOT


def quantizes_activations(node: Node) -> bool:
    """Whether ``set-precision`` quantizes this layer's activations (see :func:`quantizable`)."""
    return quantizable(node)


def activation_slots(node: Node) -> tuple[int, ...]:
    """The inputs of a layer that are activations (float32, not constant): input 0, and
    input 1 of a MatMul of two activations (attention); both are read at ``act_bits``."""
    slots = (0, 1) if node.onnx_op == "MatMul" else (0,)
    out = []
    for i in slots:
        x = node.input(i)
        if x is not None and not x.is_const and x.dtype == "float32":
            out.append(i)
    return tuple(out)


def layer_output(node: Node) -> tuple[Value | None, Node]:
    """What a layer writes: its output 0, or, when ops are fused into it (``fused_into``: a
    bias add, an activation, Swish's Sigmoid and Mul), the one value of that fused group that
    is read outside it; and the node producing it. ``(None, node)`` when no single value
    leaves the group (e.g. the layer computes a network output)."""
    group = [node]
    frontier = [node]
    while frontier:
        n = frontier.pop()
        for o in n.outputs:
            for u, _ in o.uses:
                if u.meta.get("fused_into") == node.name and u not in group:
                    group.append(u)
                    frontier.append(u)
    leaving = [(o, n) for n in group for o in n.outputs if any(u not in group for u, _ in o.uses)]
    return leaving[0] if len(leaving) == 1 else (None, node)


def _qdq_activations(graph: Graph, node: Node, bits: int, ranges: tuple[float, ...], slots: tuple[int, ...]) -> int:
    """Quantize ``node``'s activation inputs ``slots`` (:func:`activation_slots`, taken before
    its weight got a quantizer) and its output (:func:`layer_output`) at ``bits``;
    ``ranges`` = (input 0, output[, input 1]) max |x|. Returns the number of quantizers."""
    n = 0
    for slot in slots:
        amax = ranges[0] if slot == 0 else (ranges[2] if len(ranges) > 2 else None)
        if amax is None:
            raise PassError(f"set-precision: act_ranges[{node.name}] needs a third value, the range of input 1 "
                            "(a MatMul of two activations)")
        tag = "act_in" if slot == 0 else "act_in1"
        node.set_input(slot, _fake_quant(graph, node.input(slot), node, bits, amax, tag, before=node))
        n += 1
    y, last = layer_output(node)
    if y is not None and y.dtype == "float32" and not graph.is_output(y) and y.uses:
        uses = list(y.uses)
        yq = _fake_quant(graph, y, node, bits, ranges[1], "act_out", after=last)
        for user, i in uses:
            user.set_input(i, yq)
        n += 1
    return n


@dataclass(frozen=True)
class SetPrecision(Pass):
    """Annotate weight/activation bit-widths; optionally export QDQ pairs (weights; activations
    of the layers in ``act_ranges``)."""

    default: int = 8
    layers: dict[str, int] | None = None
    act_bits: int | None = None
    export_qdq: bool = False
    act_ranges: dict[str, tuple[float, ...]] | None = None
    per_channel: bool = False

    name: ClassVar[str] = "set-precision"

    @property
    def exact(self) -> bool:  # type: ignore[override]
        return not self.export_qdq

    def __post_init__(self) -> None:
        for where, b in [("default", self.default), ("act_bits", self.act_bits), *((f"layers[{k}]", v) for k, v in (self.layers or {}).items())]:
            if b is not None and not 1 <= b <= 32:
                raise PassError(f"set-precision: {where} must be between 1 and 32 bits, got {b}")
        for k, r in (self.act_ranges or {}).items():
            if len(r) not in (2, 3) or not all(np.isfinite(v) and v >= 0 for v in r):
                raise PassError(f"set-precision: act_ranges[{k}] must be [input max|x|, output max|x|(, input-1 max|x|)] "
                                f"(finite, >= 0), got {list(r)}")
        if self.act_ranges and not self.export_qdq:
            raise PassError("set-precision: act_ranges only act with export_qdq=true (they set the activation quantizers)")
        if self.act_ranges is not None:
            object.__setattr__(self, "act_ranges", {k: tuple(float(v) for v in r) for k, r in self.act_ranges.items()})

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        compute = [n for n in graph.nodes if n.op in ops.COMPUTE]
        names = {n.name for n in compute}
        for where, keys in (("layers", self.layers or {}), ("act_ranges", self.act_ranges or {})):
            for k in keys:
                if k not in names:
                    close = difflib.get_close_matches(k, sorted(names), n=3, cutoff=0.6)
                    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                    raise PassError(f"set-precision: {where} names {k!r}, which is not a compute layer{hint}")
        qdq = act_qdq = 0
        for n in compute:
            bits = (self.layers or {}).get(n.name, self.default)
            abits = int(self.act_bits if self.act_bits is not None else bits)
            n.meta["weight_bits"] = int(bits)
            n.meta["act_bits"] = abits
            act_slots = activation_slots(n)
            w = constant_weight(n)
            if self.export_qdq and bits <= 8 and w is not None:
                _qdq_weight(graph, n, w, bits, self.per_channel)
                qdq += 1
            if self.export_qdq and abits <= 8 and n.name in (self.act_ranges or {}) and quantizes_activations(n):
                act_qdq += _qdq_activations(graph, n, abits, self.act_ranges[n.name], act_slots)
        return bool(compute), {"layers": len(compute), "qdq_pairs": qdq, "act_qdq": act_qdq}
