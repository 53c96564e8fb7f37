"""Per-layer quantization sensitivity, measured in onnxruntime (feeds the accuracy proxy).

Layers are not equally sensitive to weight quantization: a layer whose weights have a
high crest factor (max|w| / rms, which sets the per-tensor quantizer's step) or whose
output feeds a long, amplifying path loses more. For each MAC layer we quantize *only
that layer's* weights to ``probe_bits`` -- exactly as ``set-precision(export_qdq=true)``
does (symmetric per-tensor scale ``max|w| / (2^(b-1) - 1)``, round half to even, int8
saturation) -- run the network in onnxruntime on the calibration inputs and measure
``loss_l = 1 - cosine``. :func:`symbiote.search.accuracy.fit_layer_coefs` probes each
layer at two bit-widths (4 and 6) and prices layer ``l`` at ``b`` bits as
``c_l * exp(k_l * (b - 4))`` (measured level and decay per bit).

Cheap: the model is exported once with every probed weight also declared a graph input
(onnxruntime lets a feed override such an initializer), so one session serves all
``L + 1`` runs; results are cached per (weights, inputs, layers, probe bits) in-process.
The quantizer's own noise falls as ``(2^(p-1)-1)^2 / (2^(b-1)-1)^2`` from ``p`` to ``b``
bits (0.051 from 4 to 6), but measured layers decay between ~0.2x and ~1.3x as fast
(dead zone at 4 bits, the noise floor of the next layers), hence two probes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from symbiote.errors import SearchError

_WEIGHT_SLOT = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}  # as passes/precision.py
_CACHE: dict[str, "Sensitivities"] = {}


@dataclass(frozen=True)
class Sensitivities:
    names: tuple[str, ...]     # the layers, in the order asked
    loss: np.ndarray           # f64[L]: 1 - cosine with only layer l quantized to probe_bits (nan: no const weight)
    probe_bits: int
    seconds: float             # time the measurement took (0 when served from the cache)


def quantize_weight(w: np.ndarray, bits: int) -> np.ndarray:
    """What QuantizeLinear -> DequantizeLinear of ``set-precision(export_qdq=true)`` computes."""
    w = np.asarray(w)
    qmax = 2 ** (bits - 1) - 1
    amax = float(np.abs(w).max()) if w.size else 0.0
    scale = np.asarray(amax / qmax if amax > 0 else 1.0, dtype=w.dtype)
    return (np.clip(np.round(w / scale), -128, 127) * scale).astype(w.dtype)


def _cosine_loss(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    va = np.concatenate([np.asarray(x, np.float64).reshape(-1) for x in a])
    vb = np.concatenate([np.asarray(x, np.float64).reshape(-1) for x in b])
    na, nb = np.linalg.norm(va), np.linalg.norm(vb)
    return 1.0 - (float(va @ vb / (na * nb)) if na > 0 and nb > 0 else float(na == nb))


def layer_weights(graph, layer_names: Sequence[str]) -> dict[str, tuple[str, np.ndarray]]:
    """layer -> (weight value name, constant weights), for layers with a constant float weight."""
    by_name = {n.name: n for n in graph.nodes}
    out = {}
    for ln in layer_names:
        n = by_name.get(ln)
        if n is None:
            raise SearchError(f"sensitivity: no layer named {ln!r} in the graph")
        slot = _WEIGHT_SLOT.get(n.onnx_op)
        w = n.input(slot) if slot is not None and len(n.inputs) > slot else None
        if w is not None and w.is_const and w.dtype in ("float32", "float16"):
            out[ln] = (w.name, np.asarray(w.const))
    return out


class Prober:
    """One onnxruntime session of ``graph`` whose probed weights can be overridden by feeds."""

    def __init__(self, graph, weights: Mapping[str, tuple[str, np.ndarray]], inputs: list[dict]):
        import onnx
        import onnxruntime as ort

        from symbiote.passes.ort_check import to_model

        model = to_model(graph)
        have = {i.name for i in model.graph.input}
        init = {t.name: t for t in model.graph.initializer}
        for wname, w in weights.values():
            if wname in init and wname not in have:
                model.graph.input.append(onnx.helper.make_tensor_value_info(
                    wname, init[wname].data_type, list(w.shape)))
                have.add(wname)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        names = {i.name for i in self.sess.get_inputs()}
        self.feeds = [{k: v for k, v in f.items() if k in names} for f in inputs]
        self.overridable = {i.name for i in self.sess.get_overridable_initializers()}
        self.reference = self.run({})

    def run(self, override: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for f in self.feeds:
            out += self.sess.run(None, {**f, **override})
        return out

    def loss(self, override: Mapping[str, np.ndarray]) -> float:
        return _cosine_loss(self.reference, self.run(override))


def _digest(weights: Mapping[str, tuple[str, np.ndarray]], inputs: list[dict], names: Sequence[str],
            probe_bits: int, graph) -> str:
    h = hashlib.sha1(f"{probe_bits}|{'|'.join(names)}|{len(graph.nodes)}".encode())
    for ln in names:
        if ln in weights:
            h.update(weights[ln][0].encode())
            h.update(np.ascontiguousarray(weights[ln][1]).view(np.uint8)[::97].tobytes())
    for f in inputs:
        for k in sorted(f):
            h.update(k.encode())
            h.update(np.ascontiguousarray(f[k]).tobytes())
    return h.hexdigest()


def layer_sensitivities(graph, layer_names: Sequence[str], inputs: list[dict], probe_bits: int = 4,
                        prober: Prober | None = None) -> Sensitivities:
    """``1 - cosine`` of the outputs with only one layer's weights quantized, per layer."""
    import time

    names = tuple(layer_names)
    weights = layer_weights(graph, names)
    key = _digest(weights, inputs, names, probe_bits, graph)
    if key in _CACHE:
        c = _CACHE[key]
        return Sensitivities(c.names, c.loss.copy(), c.probe_bits, 0.0)
    t0 = time.perf_counter()
    p = prober or Prober(graph, weights, inputs)
    loss = np.full(len(names), np.nan)
    for i, ln in enumerate(names):
        if ln in weights and weights[ln][0] in p.overridable:
            wname, w = weights[ln]
            loss[i] = max(p.loss({wname: quantize_weight(w, probe_bits)}), 0.0)
    res = Sensitivities(names, loss, int(probe_bits), time.perf_counter() - t0)
    _CACHE[key] = res
    return res
