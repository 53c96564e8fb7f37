"""The accuracy side of co-design: a differentiable proxy and an exact check.

**Proxy** (used inside the search, differentiable in the knobs). Removing channels of
a group removes the importance the pruning criterion gives them
(:func:`symbiote.passes.channels.importance`, the same ranking ``resize-channels``
uses to pick what to drop); growth keeps everything (new channels are zero: exact).
Quantizing a layer's weights to ``b`` bits adds noise of relative energy about
``q(b) = (2 * 4)^2 / 12 / 4^b`` (uniform quantizer with step ``2 * 4 sigma / 2^b`` over a
range of +-4 sigma: Widrow & Kollar, "Quantization Noise", 2008, ch. 4). Independent
perturbations add their relative energies ``e``; the cosine similarity of a signal with
its perturbed copy is about ``1 - e/2``. So::

    fidelity ~= 1 - a * sum_g (1 - retained_g(width_g)) - b * sum_l q(bits_l)

Independent perturbations would give ``a = b = 1/2``; the perturbations of a deep
network partly wash out, and the constants ``a = WIDTH_COEF``, ``b = BITS_COEF`` below
were fitted (rounded up, i.e. pessimistic) to the exact check on the zoo's resnet50 and
mobilenet_v2 (uniform 5-50% shrinks, 4/6/8-bit weights). The exact check, not the
proxy, decides whether a final design meets a fidelity constraint.

Layers are not equally sensitive (on the zoo's resnet50 the loss of quantizing one layer
to 4 bits spans three orders of magnitude, the classifier being the worst), so
:func:`calibrate` replaces ``b`` by a per-layer ``s_l`` measured in onnxruntime
(:mod:`symbiote.search.sensitivity`): ``... - sum_l s_l * q(bits_l)``.

**Exact check** (final candidates): the reshaped model is written with the passes
(``resize-channels`` + ``set-precision(export_qdq=true)``), run in onnxruntime against
the original on the *evaluation* inputs (never the calibration ones:
:mod:`symbiote.search.samples`), and measured per output (:mod:`symbiote.search.measures`):
the *fidelity* is the minimum per-output cosine, the *agreement* the minimum top-1
agreement over outputs holding scores.

**Plugin hook** ``symbiote_evaluate_accuracy(original, candidate, inputs)``: a plugin
(entry point group ``symbiote.backends``) may return ``{"fidelity": x, "top1": y, ...}``
computed its own way (a real validation set, a task metric); the first answer wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import pluggy

from symbiote.errors import SearchError

PROJECT = "symbiote"
ENTRY_POINT_GROUP = "symbiote.backends"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class AccuracySpecs:
    @hookspec(firstresult=True)
    def symbiote_evaluate_accuracy(self, original, candidate, inputs):  # type: ignore[empty-body]
        """Compare ``candidate`` (an ir.Graph, the reshaped model) with ``original`` on
        ``inputs`` (a list of feed dicts). Return a dict with at least ``fidelity`` (1.0 =
        same outputs) and optionally ``top1``, or None to let the next evaluator answer."""


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """A manager with the accuracy hook over the ``symbiote.backends`` entry points (the
    backends' manager is rebuilt per load and keeps no hook table we could extend)."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(AccuracySpecs)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as e:  # noqa: BLE001 - a broken plugin must not stop the search
        import warnings

        warnings.warn(f"symbiote: an accuracy plugin failed to load: {e}", stacklevel=2)
    return pm


# ---------------------------------------------------------------- the proxy
#: fitted on zoo resnet50 / mobilenet_v2 against onnxruntime (see the module doc):
#: measured a = 0.033-0.047, b = 0.037-0.088
WIDTH_COEF = 0.05
BITS_COEF = 0.09
# The noise laws and the width loss take JAX arrays (in the search) or numpy ones and
# numbers (in the calibration, where an eager JAX op would cost a compile each).
def quant_noise(bits):
    """Relative noise energy of a b-bit uniform quantizer over +-4 sigma (see module doc)."""
    return (64.0 / 12.0) * 2.0 ** (-2.0 * bits)


def qdq_noise(bits):
    """How the noise energy of ``set-precision``'s quantizer scales with the bit-width: its
    step is ``max|w| / (2^(b-1) - 1)`` and uniform rounding noise has energy step^2 / 12
    (Widrow & Kollar 2008, ch. 4), so per layer it is ``c_l / (2^(b-1) - 1)^2``."""
    return 1.0 / (2.0 ** (bits - 1.0) - 1.0) ** 2


@dataclass(frozen=True)
class AccuracyProxy:
    """Differentiable fidelity estimate for one network."""

    curves: np.ndarray        # f32[G, Wmax+1]: retained importance at width 0..Wmax (1 beyond w0)
    widths0: np.ndarray       # f32[G] original widths of the free groups (genome order)
    width_coef: float = 0.05  # a (see the module doc); :func:`calibrate` fits it per network
    bits_coef: float = 0.09   # b
    #: f32[L] per-layer quantization sensitivity s_l (genome order of the bit knobs), replacing
    #: the uniform ``bits_coef`` when set: loss = sum_l s_l * q(bits_l) (see :func:`layer_sensitivities`)
    layer_coefs: np.ndarray | None = None
    #: f32[L] per-layer log-loss change per bit, measured (two probes); the layer's loss at
    #: ``b`` bits is then ``layer_coefs * exp(layer_decay * (b - layer_ref_bits))``
    layer_decay: np.ndarray | None = None
    layer_ref_bits: float = 4.0

    def fidelity(self, widths: jnp.ndarray | None, bits: jnp.ndarray | None) -> jnp.ndarray:
        loss = jnp.float32(0.0)
        if widths is not None and self.curves.shape[0]:
            loss = loss + self.width_coef * self.width_loss(widths)
        if bits is not None:
            if self.layer_coefs is not None and len(self.layer_coefs) == bits.shape[-1]:
                loss = loss + jnp.sum(self.layer_losses(bits))
            else:
                loss = loss + self.bits_coef * jnp.sum(quant_noise(bits))
        return 1.0 - loss

    def width_loss(self, widths, xp=jnp):
        """``sum_g (1 - retained_g(width_g))``, linear between whole widths (``xp``: jax.numpy
        or numpy)."""
        g = self.curves.shape[0]
        wmax = self.curves.shape[1] - 1
        w = xp.clip(widths, 0.0, float(wmax))
        i0 = xp.clip(xp.floor(w), 0, wmax - 1).astype(xp.int32)
        frac = w - i0
        c = xp.asarray(self.curves)
        rows = xp.arange(g)
        kept = c[rows, i0] * (1 - frac) + c[rows, i0 + 1] * frac
        return xp.sum(1.0 - kept)

    def layer_losses(self, bits: jnp.ndarray) -> jnp.ndarray:
        """Per-layer fidelity loss at ``bits`` (needs ``layer_coefs``)."""
        c = jnp.asarray(self.layer_coefs, jnp.float32)
        if self.layer_decay is None:
            return c * qdq_noise(bits)
        return c * jnp.exp(jnp.asarray(self.layer_decay, jnp.float32) * (bits - self.layer_ref_bits))


def retained_curve(scores: np.ndarray, wmax: int) -> np.ndarray:
    """Fraction of the total importance kept when keeping the w best channels, w = 0..wmax."""
    s = np.sort(np.maximum(np.asarray(scores, np.float64), 0.0))[::-1]
    tot = s.sum()
    c = np.concatenate([[0.0], np.cumsum(s) / tot]) if tot > 0 else np.linspace(0, 1, len(s) + 1)
    out = np.ones(wmax + 1)
    out[: len(c)] = c
    return out.astype(np.float32)


def build_proxy(graph, groups, group_ids: Sequence[int], criterion: str = "l1") -> AccuracyProxy:
    """The proxy for the free groups ``group_ids`` (genome order) of ``graph``."""
    from symbiote.passes.channels import importance

    w0 = np.array([groups.groups[g].width for g in group_ids], np.float32)
    wmax = int(max(w0.max() * 2, 1)) if len(w0) else 1
    curves = np.stack([retained_curve(importance(graph, groups, g, criterion), wmax) for g in group_ids]) \
        if len(group_ids) else np.zeros((0, wmax + 1), np.float32)
    return AccuracyProxy(curves, w0, WIDTH_COEF, BITS_COEF)


#: safety factor on the fitted coefficients (the exact check gates the final design anyway)
CALIBRATION_MARGIN = 1.25


def calibrate(proxy: AccuracyProxy, graph, groups, group_ids: Sequence[int], layer_names: Sequence[str],
              inputs: list[dict], shrink: float = 0.9, probe_bits: int = 4, per_layer: bool = True,
              range_inputs: list[dict] | None = None) -> AccuracyProxy:
    """Fit ``width_coef`` and ``bits_coef`` of one network to the exact check: one probe
    shrinking every free group to ``shrink`` of its width, one probe quantizing every
    layer's weights to ``probe_bits``; each coefficient = measured fidelity loss over the
    proxy's unscaled loss, times :data:`CALIBRATION_MARGIN`. With ``per_layer`` (the
    default) the bits term is fitted per layer instead (:func:`fit_layer_coefs`).
    Activation ranges are measured on ``range_inputs`` (default ``inputs``): give the inputs
    the exact check will calibrate on, so the probes quantize with its ranges."""
    import dataclasses

    a, b = proxy.width_coef, proxy.bits_coef
    if len(group_ids):
        widths = {groups.groups[g].name: max(1, int(round(groups.groups[g].width * shrink))) for g in group_ids}
        widths = {k: v for k, v in widths.items() if v != groups.by_name(k).width}
        if widths:
            loss = 1.0 - compare(graph, apply_model_knobs(graph, widths, None), inputs).fidelity
            unit = float(proxy.width_loss(np.asarray([widths.get(groups.groups[g].name, groups.groups[g].width)
                                                      for g in group_ids], np.float32), xp=np))
            if unit > 0:
                a = max(loss, 0.0) / unit * CALIBRATION_MARGIN
    if len(layer_names) and per_layer:
        coefs, decay, b = fit_layer_coefs(graph, layer_names, inputs, probe_bits, range_inputs=range_inputs)
        return dataclasses.replace(proxy, width_coef=float(a), bits_coef=float(b), layer_coefs=coefs,
                                   layer_decay=decay, layer_ref_bits=float(probe_bits))
    if len(layer_names):
        loss = 1.0 - compare(graph, apply_model_knobs(graph, {}, {n: probe_bits for n in layer_names},
                                                      inputs=range_inputs or inputs), inputs).fidelity
        unit = float(np.sum(quant_noise(np.full(len(layer_names), float(probe_bits)))))
        b = max(loss, 0.0) / unit * CALIBRATION_MARGIN
    return dataclasses.replace(proxy, width_coef=float(a), bits_coef=float(b))


#: safety factor on the per-layer fit (already fitted, pessimistically, to joint probes)
LAYER_MARGIN = 1.1
#: bit-widths of the joint probes (every layer at once) that scale the per-layer fit
JOINT_PROBE_BITS = (5, 6)


def fit_layer_coefs(graph, layer_names: Sequence[str], inputs: list[dict], probe_bits: int = 4,
                    second_bits: int = 6, joint_bits: Sequence[int] = JOINT_PROBE_BITS,
                    range_inputs: list[dict] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-layer loss laws (see :mod:`symbiote.search.sensitivity`): each layer's measured
    loss at ``probe_bits`` (``c_l``) and at ``second_bits`` give its decay per bit ``k_l``
    (never much steeper than the quantizer's own law, :func:`qdq_noise`: that would be optimistic);
    layer ``l`` at ``b`` bits costs ``c_l * exp(k_l * (b - probe_bits))``. All ``c_l`` are
    then scaled so that the sum is at least the measured loss of every layer quantized at
    once to each of ``joint_bits`` (interactions priced pessimistically), times
    :data:`LAYER_MARGIN`. Layers without a constant weight get the mean.
    Returns (c_l, k_l, an equivalent uniform ``bits_coef``)."""
    from symbiote.search import sensitivity as sens

    weights = sens.layer_weights(graph, layer_names)
    prober = sens.Prober(graph, weights, inputs, sens.activation_ranges(graph, layer_names, range_inputs or inputs))
    lo = sens.layer_sensitivities(graph, layer_names, inputs, probe_bits, prober=prober).loss
    hi = sens.layer_sensitivities(graph, layer_names, inputs, second_bits, prober=prober).loss
    law = float(np.log(qdq_noise(np.float32(second_bits)) / qdq_noise(np.float32(probe_bits)))) / (second_bits - probe_bits)
    ok = np.isfinite(lo) & np.isfinite(hi) & (lo > 0) & (hi > 0)
    decay = np.where(ok, np.log(np.where(ok, hi, 1.0) / np.where(ok, lo, 1.0)) / (second_bits - probe_bits), law)
    decay = np.clip(decay, 1.35 * law, 0.0)  # never steeper than ~the quantizer's law (optimistic)
    fill = float(np.mean(lo[np.isfinite(lo)])) if np.isfinite(lo).any() else BITS_COEF * float(quant_noise(probe_bits))
    c = np.where(np.isfinite(lo), lo, fill)
    scale = 1.0  # never below the single-layer measurements
    for jb in joint_bits:
        over = prober.quantized(layer_names, int(jb), weights)
        pred = float(np.sum(c * np.exp(decay * (jb - probe_bits))))
        if over and pred > 0:
            scale = max(scale, prober.loss(over) / pred)
    coefs = (c * scale * LAYER_MARGIN).astype(np.float32)
    return coefs, decay.astype(np.float32), float(coefs.sum() / float(np.sum(quant_noise(np.full(len(c), float(probe_bits))))))


# ---------------------------------------------------------------- the exact check
@dataclass(frozen=True)
class AccuracyReport:
    """The exact check's measures (:mod:`symbiote.search.measures`): ``fidelity`` = the
    minimum per-output cosine, ``agreement`` = the minimum top-1 agreement over score
    outputs (None: no score output), per-output measures, their bootstrap 95% intervals."""

    fidelity: float      # min over outputs of the cosine similarity (1.0 = same)
    top1: float          # = agreement (nan when no output holds scores), kept for plugins and old callers
    max_abs: float
    samples: int
    evaluator: str = "onnxruntime"
    agreement: float | None = None
    outputs: tuple[dict[str, Any], ...] = ()             # per output: name, cosine, rel_l2, top1, top5
    interval: Mapping[str, Any] | None = None            # {"fidelity": [lo, hi], "agreement": [lo, hi] | None}
    concatenated_cosine: float | None = None             # one cosine over every output (the old measure)
    #: with labels: the candidate's top-1 accuracy, the original's, and their difference
    accuracy: float | None = None
    accuracy_original: float | None = None
    accuracy_drop: float | None = None
    #: the user's metric (``--metric``, search/metric.py): ``metric.NAME`` and ``metric.NAME_drop``
    user: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"fidelity": self.fidelity, "agreement": self.agreement, "top1": self.top1, "max_abs": self.max_abs,
                "samples": self.samples, "evaluator": self.evaluator, "outputs": [dict(o) for o in self.outputs],
                "interval": dict(self.interval) if self.interval is not None else None,
                "concatenated_cosine": self.concatenated_cosine, "accuracy": self.accuracy,
                "accuracy_original": self.accuracy_original, "accuracy_drop": self.accuracy_drop,
                "metric": dict(self.user)}

    def measured(self) -> dict[str, float | None]:
        """The measures accuracy constraints can name (None: not defined for this run)."""
        return {"fidelity": self.fidelity, "agreement": self.agreement, "accuracy": self.accuracy,
                "accuracy_drop": self.accuracy_drop, **self.user}


def calibration_inputs(graph, path: str | Path | None = None, samples: int = 4, seed: int = 0) -> list[dict]:
    """Feeds from ``--calibration FILE.npz`` (arrays named like the inputs; the first axis
    indexes samples when it is one longer than the model's), else seeded random inputs."""
    from symbiote.passes.ort_check import random_inputs

    if path is None:
        return [random_inputs(graph, seed=seed + i) for i in range(samples)]
    p = Path(path)
    try:
        z = dict(np.load(p))
    except (OSError, ValueError) as e:
        raise SearchError(f"{p}: cannot read calibration inputs ({e})") from None
    feeds: list[dict] = []
    for v in graph.inputs:
        if v.name not in z:
            raise SearchError(f"{p}: no array named {v.name!r} (the model's input); has: {', '.join(z)}")
        a = z[v.name]
        shape = tuple(v.shape or ())
        if a.shape == shape:
            arrs = [a]
        elif a.shape[1:] == shape[1:] and shape and shape[0] == 1:
            arrs = [a[i: i + 1] for i in range(a.shape[0])]
        elif a.shape[1:] == shape:
            arrs = [a[i] for i in range(a.shape[0])]
        else:
            raise SearchError(f"{p}: array {v.name!r} has shape {a.shape}, the model wants {shape}")
        for i, arr in enumerate(arrs):
            if len(feeds) <= i:
                feeds.append({})
            feeds[i][v.name] = arr
    return feeds


def outputs_of(graph, inputs: Sequence[Mapping[str, np.ndarray]]) -> list[list[np.ndarray]]:
    """The graph's outputs in onnxruntime on each feed (one session; ``ModelRunError`` when
    the model fails on them: :func:`symbiote.passes.ort_check.run_many`)."""
    from symbiote.passes.ort_check import run_many

    return run_many(graph, inputs)


def compare(original, candidate, inputs: list[dict], logits: Sequence[str] = (),
            reference: list[list[np.ndarray]] | None = None, bootstrap: int = 0, seed: int = 0,
            labels: Sequence[np.ndarray] | None = None) -> AccuracyReport:
    """Run both graphs in onnxruntime on every feed and measure per output
    (:mod:`symbiote.search.measures`). ``logits``: the score outputs (default: inferred);
    ``reference``: the original's outputs on ``inputs`` when already known; ``bootstrap``:
    resamples for the 95% intervals (0: none); ``labels``: per feed, its labels (the
    task's top-1 accuracy of both models is measured too)."""
    from symbiote.search import measures

    res = plugin_manager().hook.symbiote_evaluate_accuracy(original=original, candidate=candidate, inputs=inputs)
    if res is not None:
        agree = res.get("agreement", res.get("top1"))
        return AccuracyReport(float(res["fidelity"]), float("nan") if agree is None else float(agree),
                              float(res.get("max_abs", float("nan"))), len(inputs), str(res.get("evaluator", "plugin")),
                              agreement=None if agree is None else float(agree))
    ref = reference if reference is not None else outputs_of(original, inputs)
    cand = outputs_of(candidate, inputs)
    names = [v.name for v in original.outputs]
    st = measures.stats(ref, cand, names, logits)
    m = measures.measure(st)
    iv = measures.interval(st, bootstrap, seed) if bootstrap else None
    acc = acc0 = None
    if labels is not None:
        ls = measures.label_stats(ref, cand, names, labels, logits)
        a0, a1 = ls.accuracy()
        acc0, acc = float(a0), float(a1)
        if iv is not None:
            iv = {**iv, **measures.label_interval(ls, bootstrap, seed)}
    return AccuracyReport(m.fidelity, float("nan") if m.agreement is None else m.agreement, m.max_abs, m.samples,
                          agreement=m.agreement, outputs=tuple(o.as_dict() for o in m.outputs), interval=iv,
                          concatenated_cosine=m.concatenated_cosine, accuracy=acc, accuracy_original=acc0,
                          accuracy_drop=None if acc is None else acc0 - acc)


def reshape_pipeline(widths: Mapping[str, int], bits: Mapping[str, int] | None, default_bits: int = 8,
                     export_qdq: bool = True, act_ranges: Mapping[str, Sequence[float]] | None = None):
    """The passes that replay a design's model knobs."""
    from symbiote.passes.base import Pipeline
    from symbiote.passes.precision import SetPrecision
    from symbiote.passes.resize import ResizeChannels

    steps = []
    if widths:
        steps.append(ResizeChannels(widths={k: int(v) for k, v in widths.items()}))
    if bits is not None:
        steps.append(SetPrecision(default=int(default_bits), layers={k: int(v) for k, v in bits.items()},
                                  export_qdq=export_qdq,
                                  act_ranges=dict(act_ranges) if act_ranges else None))
    return Pipeline(steps)


def apply_model_knobs(graph, widths: Mapping[str, int], bits: Mapping[str, int] | None, default_bits: int = 8,
                      inputs: list[dict] | None = None, extra: Sequence[Any] = ()):
    """The reshaped graph: channel widths resized, then the registered knobs' passes
    (``extra``: :mod:`symbiote.search.knobs`), then per-layer precision set with QDQ
    weights and, given calibration ``inputs``, QDQ activations (ranges measured on the
    reshaped graph over ``inputs``: static post-training calibration)."""
    from symbiote.passes.base import Pipeline
    from symbiote.search.sensitivity import activation_ranges

    if extra:
        graph = Pipeline([*reshape_pipeline(widths, None).passes, *extra])(graph).graph
        widths = {}
    if bits is None or inputs is None:
        pipe = reshape_pipeline(widths, bits, default_bits)
        return pipe(graph).graph if pipe.passes else graph
    resized = reshape_pipeline(widths, None)(graph).graph if widths else graph
    low = [k for k, b in bits.items() if int(b) <= 8]
    ranges = activation_ranges(resized, low, inputs) if low else None
    return reshape_pipeline({}, bits, default_bits, act_ranges=ranges)(resized).graph
