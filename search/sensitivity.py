"""Per-layer quantization sensitivity, measured in onnxruntime (feeds the accuracy proxy).

Layers are not equally sensitive to quantization: a layer whose weights have a
high crest factor (max|w| / rms, which sets the per-tensor quantizer's step) or whose
output feeds a long, amplifying path loses more. For each MAC layer we quantize *only
that layer* to ``probe_bits`` -- exactly as ``set-precision(export_qdq=true)`` does: its
weights (symmetric per-tensor scale ``max|w| / (2^(b-1) - 1)``, round half to even, int8
saturation) and, given activation ranges (:func:`activation_ranges`), its input and
output activations (clip to the calibrated ``+-amax``, scale ``amax / (2^(b-1) - 1)``) --
run the network in onnxruntime on the calibration inputs and measure
``loss_l = 1 - cosine``. :func:`symbiote.search.accuracy.fit_layer_coefs` probes each
layer at two bit-widths (4 and 6) and prices layer ``l`` at ``b`` bits as
``c_l * exp(k_l * (b - 4))`` (measured level and decay per bit).

Cheap: the model is exported once with every probed weight also declared a graph input
(onnxruntime lets a feed override such an initializer) and every probed activation routed
through ``Clip(lo, hi) -> Div(s) -> Round -> Mul(s)`` whose ``lo, hi, s`` are feedable
(by default ``-inf, inf, 2^-60``: the identity, as scaling by a power of two is exact;
values below 2^-37 in magnitude move by at most 2^-61), so one session serves all ``L + 1`` runs; results are cached per (weights, inputs, layers, probe bits) in-process.
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

_CACHE: dict[str, "Sensitivities"] = {}


@dataclass(frozen=True)
class Sensitivities:
    names: tuple[str, ...]     # the layers, in the order asked
    loss: np.ndarray           # f64[L]: 1 - cosine with only layer l quantized to probe_bits (nan: no const weight)
    probe_bits: int
    seconds: float             # time the measurement took (0 when served from the cache)


def quantize_weight(w: np.ndarray, bits: int) -> np.ndarray:
    """What the DequantizeLinear of ``set-precision(export_qdq=true)`` reads back (per tensor)."""
    from symbiote.passes import precision

    q, scale = precision.quantize_weight(np.asarray(w), bits)
    return (q.astype(np.asarray(w).dtype) * scale).astype(np.asarray(w).dtype)


#: scale of a disabled activation quantizer in the probe model: x / 2^-60 * 2^-60 == x
#: (exactly for |x| >= 2^-37; smaller values move by at most 2^-61)
_OFF_SCALE = 2.0 ** -60


def activation_ranges(graph, layer_names: Sequence[str], inputs: list[dict]) -> dict[str, list[float]]:
    """layer -> [max |input 0|, max |output|(, max |input 1|)] over the calibration inputs,
    measured in onnxruntime: the ranges ``set-precision(act_ranges=...)`` quantizes with
    (output: :func:`~symbiote.passes.precision.layer_output`; input 1: a MatMul of two
    activations). Layers whose activations are not quantized are left out."""
    import onnx

    from symbiote.passes.ort_check import session, to_model
    from symbiote.passes.precision import activation_slots, layer_output, quantizes_activations

    by_name = {n.name: n for n in graph.nodes}
    want: dict[str, list[str | None]] = {}
    for ln in layer_names:
        n = by_name.get(ln)
        if n is None:
            raise SearchError(f"activation ranges: no layer named {ln!r} in the graph")
        if not quantizes_activations(n):
            continue
        slots = activation_slots(n)
        y = layer_output(n)[0]
        names = [n.input(0).name if 0 in slots else None, y.name if y is not None else None]
        if 1 in slots:
            names.append(n.input(1).name)
        want[ln] = names
    model = to_model(graph)
    outs = {o.name for o in model.graph.output}
    ins = {i.name for i in model.graph.input}
    extra = sorted({v for vs in want.values() for v in vs if v and v not in outs and v not in ins})
    for v in extra:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(v))
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    feed_names = {i.name for i in sess.get_inputs()}
    amax: dict[str, float] = {}
    for f in inputs:
        vals = dict(zip(names, sess.run(None, {k: v for k, v in f.items() if k in feed_names})))
        vals.update({k: v for k, v in f.items() if k in ins})
        for vs in want.values():
            for v in vs:
                if v and v in vals:
                    a = np.asarray(vals[v])
                    m = float(np.abs(a).max()) if a.size and np.issubdtype(a.dtype, np.floating) else 0.0
                    amax[v] = max(amax.get(v, 0.0), m)
    return {ln: [amax.get(v, 0.0) if v else 0.0 for v in vs] for ln, vs in want.items()}


_TAGS = ("in", "out", "in1")   # the order of a layer's activation ranges


def act_feeds(name: str, bits: int, ranges: Sequence[float]) -> dict[str, np.ndarray]:
    """The feeds that switch the probe quantizers of layer ``name`` to ``bits``
    (``ranges``: as :func:`activation_ranges` gives them)."""
    from symbiote.passes.precision import activation_quantizer

    out = {}
    for tag, amax in zip(_TAGS, ranges):
        a, step = activation_quantizer(amax, bits)
        out[f"{name}.probe_{tag}_lo"] = np.asarray(-a, np.float32)
        out[f"{name}.probe_{tag}_hi"] = np.asarray(a, np.float32)
        out[f"{name}.probe_{tag}_s"] = np.asarray(step, np.float32)
    return out


def _add_probe_quantizers(model, graph, act_ranges: Mapping[str, Sequence[float]]) -> None:
    """Put a feedable ``Clip -> Div -> Round -> Mul`` (the identity by default, see the module
    doc) wherever ``set-precision`` would put an activation quantizer for the listed layers:
    on each activation input and on the layer's output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from symbiote.passes.precision import activation_slots, layer_output, quantizes_activations

    by_name = {n.name: n for n in graph.nodes}
    graph_outs = {o.name for o in model.graph.output}
    rename: dict[tuple[str, int], str] = {}   # (consumer node name, input slot) -> quantized value
    before: dict[str, list] = {}               # node name -> nodes to place before it
    after: dict[str, list] = {}                # node name -> nodes to place after it

    def chain(x: str, layer: str, tag: str) -> tuple[str, list]:
        names = [f"{layer}.probe_{tag}_{k}" for k in ("lo", "hi", "s")]
        for nm, v in zip(names, (-np.inf, np.inf, _OFF_SCALE)):
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(v, np.float32), nm))
            model.graph.input.append(helper.make_tensor_value_info(nm, TensorProto.FLOAT, []))
        c, d, r, m = (f"{layer}.probe_{tag}_{k}_v" for k in ("clip", "div", "round", "mul"))
        nodes = [helper.make_node("Clip", [x, names[0], names[1]], [c], name=c),
                 helper.make_node("Div", [c, names[2]], [d], name=d),
                 helper.make_node("Round", [d], [r], name=r),
                 helper.make_node("Mul", [r, names[2]], [m], name=m)]
        return m, nodes

    layers = [by_name[ln] for ln in act_ranges if ln in by_name and quantizes_activations(by_name[ln])]
    for n in layers:  # outputs first: a layer's input chain then reads the quantized output
        y, last = layer_output(n)
        if y is not None and y.dtype == "float32" and y.name not in graph_outs and y.uses:
            qy, nodes = chain(y.name, n.name, "out")
            after.setdefault(last.name, []).extend(nodes)
            for user, i in y.uses:
                rename[(user.name, i)] = qy
    for n in layers:
        for slot in activation_slots(n):
            if slot == 1 and len(act_ranges[n.name]) < 3:
                continue
            qx, nodes = chain(rename.get((n.name, slot), n.input(slot).name), n.name, "in" if slot == 0 else "in1")
            before.setdefault(n.name, []).extend(nodes)
            rename[(n.name, slot)] = qx
    new_nodes = []
    for node in model.graph.node:
        new_nodes.extend(before.get(node.name, []))
        for i in range(len(node.input)):
            if (node.name, i) in rename:
                node.input[i] = rename[(node.name, i)]
        new_nodes.append(node)
        new_nodes.extend(after.get(node.name, []))
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    onnx.checker.check_model(model)


def _cosine_loss(a: Sequence[np.ndarray], b: Sequence[np.ndarray], outputs: int = 1) -> float:
    """``1 - fidelity`` as the exact check measures it (:mod:`symbiote.search.measures`): the
    least, over outputs, of each output's cosine over every feed. ``a``, ``b``: the outputs
    of every feed in turn (``outputs`` per feed)."""
    worst = 1.0
    for o in range(outputs):
        va = np.concatenate([np.asarray(x, np.float64).reshape(-1) for x in a[o::outputs]])
        vb = np.concatenate([np.asarray(x, np.float64).reshape(-1) for x in b[o::outputs]])
        na, nb = np.linalg.norm(va), np.linalg.norm(vb)
        worst = min(worst, float(va @ vb / (na * nb)) if na > 0 and nb > 0 else float(na == nb))
    return 1.0 - worst


def layer_weights(graph, layer_names: Sequence[str]) -> dict[str, tuple[str, np.ndarray]]:
    """layer -> (weight value name, constant weights), for layers with a constant float weight."""
    from symbiote.passes.precision import constant_weight

    by_name = {n.name: n for n in graph.nodes}
    out = {}
    for ln in layer_names:
        n = by_name.get(ln)
        if n is None:
            raise SearchError(f"sensitivity: no layer named {ln!r} in the graph")
        w = constant_weight(n)
        if w is not None:
            out[ln] = (w.name, np.asarray(w.const))
    return out


class Prober:
    """One onnxruntime session of ``graph`` whose probed weights can be overridden by feeds,
    and whose layers in ``act_ranges`` carry switchable activation quantizers
    (:func:`act_feeds`)."""

    def __init__(self, graph, weights: Mapping[str, tuple[str, np.ndarray]], inputs: list[dict],
                 act_ranges: Mapping[str, Sequence[float]] | None = None):
        import onnx

        from symbiote.passes.ort_check import session, to_model

        model = to_model(graph)
        self.act_ranges = dict(act_ranges or {})
        if self.act_ranges:
            _add_probe_quantizers(model, graph, self.act_ranges)
        have = {i.name for i in model.graph.input}
        init = {t.name: t for t in model.graph.initializer}
        for wname, w in weights.values():
            if wname in init and wname not in have:
                model.graph.input.append(onnx.helper.make_tensor_value_info(
                    wname, init[wname].data_type, list(w.shape)))
                have.add(wname)
        self.sess = session(model)
        names = {i.name for i in self.sess.get_inputs()}
        self.feeds = [{k: v for k, v in f.items() if k in names} for f in inputs]
        self.overridable = {i.name for i in self.sess.get_overridable_initializers()}
        self.reference = self.run({})

    def quantized(self, layers: Sequence[str], bits: int, weights: Mapping[str, tuple[str, np.ndarray]]
                  ) -> dict[str, np.ndarray]:
        """Feeds that quantize ``layers`` (weights and, where ranges are known, activations) to ``bits``."""
        over: dict[str, np.ndarray] = {}
        for ln in layers:
            if ln in weights and weights[ln][0] in self.overridable:
                over[weights[ln][0]] = quantize_weight(weights[ln][1], bits)
            if ln in self.act_ranges and bits <= 8:
                over.update({k: v for k, v in act_feeds(ln, bits, self.act_ranges[ln]).items() if k in self.overridable})
        return over

    def run(self, override: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for f in self.feeds:
            out += self.sess.run(None, {**f, **override})
        return out

    def loss(self, override: Mapping[str, np.ndarray]) -> float:
        return _cosine_loss(self.reference, self.run(override), len(self.sess.get_outputs()))


def _digest(inputs: list[dict], names: Sequence[str], probe_bits: int, graph,
            act_ranges: Mapping[str, Sequence[float]] | None = None) -> str:
    """The cache key: the whole graph's content (every weight, bias and normalization
    parameter, not only the probed layers' weights), the inputs, layers, bits and ranges."""
    from symbiote.ir.digest import graph_digest

    h = hashlib.sha1(f"{probe_bits}|{'|'.join(names)}|{graph_digest(graph)}".encode())
    h.update(repr(sorted((k, [float(x) for x in v]) for k, v in (act_ranges or {}).items())).encode())
    for f in inputs:
        for k in sorted(f):
            h.update(k.encode())
            h.update(np.ascontiguousarray(f[k]).tobytes())
    return h.hexdigest()


def layer_sensitivities(graph, layer_names: Sequence[str], inputs: list[dict], probe_bits: int = 4,
                        prober: Prober | None = None) -> Sensitivities:
    """``1 - cosine`` of the outputs with only one layer quantized (its weights, and its
    activations when the prober has their ranges), per layer."""
    import time

    names = tuple(layer_names)
    weights = layer_weights(graph, names)
    key = _digest(inputs, names, probe_bits, graph, prober.act_ranges if prober else None)
    if key in _CACHE:
        c = _CACHE[key]
        return Sensitivities(c.names, c.loss.copy(), c.probe_bits, 0.0)
    t0 = time.perf_counter()
    p = prober or Prober(graph, weights, inputs)
    loss = np.full(len(names), np.nan)
    for i, ln in enumerate(names):
        over = p.quantized([ln], probe_bits, weights)
        if over:
            loss[i] = max(p.loss(over), 0.0)
    res = Sensitivities(names, loss, int(probe_bits), time.perf_counter() - t0)
    _CACHE[key] = res
    return res
