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

**Exact check** (final candidates): the reshaped model is written with the passes
(``resize-channels`` + ``set-precision(export_qdq=true)``), run in onnxruntime against
the original on calibration inputs, and compared: cosine similarity of the outputs
(the *fidelity*) and top-1 agreement of the first output's last axis.

**Plugin hook** ``symbiote_evaluate_accuracy(original, candidate, inputs)``: a plugin
(entry point group ``symbiote.backends``) may return ``{"fidelity": x, "top1": y, ...}``
computed its own way (a real validation set, a task metric); the first answer wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
def quant_noise(bits: jnp.ndarray) -> jnp.ndarray:
    """Relative noise energy of a b-bit uniform quantizer over +-4 sigma (see module doc)."""
    return (64.0 / 12.0) * jnp.exp2(-2.0 * bits)


@dataclass(frozen=True)
class AccuracyProxy:
    """Differentiable fidelity estimate for one network."""

    curves: np.ndarray        # f32[G, Wmax+1]: retained importance at width 0..Wmax (1 beyond w0)
    widths0: np.ndarray       # f32[G] original widths of the free groups (genome order)
    width_coef: float = 0.05  # a (see the module doc); :func:`calibrate` fits it per network
    bits_coef: float = 0.09   # b

    def fidelity(self, widths: jnp.ndarray | None, bits: jnp.ndarray | None) -> jnp.ndarray:
        loss = jnp.float32(0.0)
        g = self.curves.shape[0]
        if widths is not None and g:
            wmax = self.curves.shape[1] - 1
            w = jnp.clip(widths, 0.0, float(wmax))
            i0 = jnp.clip(jnp.floor(w), 0, wmax - 1).astype(jnp.int32)
            frac = w - i0
            c = jnp.asarray(self.curves)
            rows = jnp.arange(g)
            kept = c[rows, i0] * (1 - frac) + c[rows, i0 + 1] * frac
            loss = loss + self.width_coef * jnp.sum(1.0 - kept)
        if bits is not None:
            loss = loss + self.bits_coef * jnp.sum(quant_noise(bits))
        return 1.0 - loss


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
              inputs: list[dict], shrink: float = 0.9, probe_bits: int = 4) -> AccuracyProxy:
    """Fit ``width_coef`` and ``bits_coef`` of one network to the exact check: one probe
    shrinking every free group to ``shrink`` of its width, one probe quantizing every
    layer's weights to ``probe_bits``; each coefficient = measured fidelity loss over the
    proxy's unscaled loss, times :data:`CALIBRATION_MARGIN`."""
    import dataclasses

    a, b = proxy.width_coef, proxy.bits_coef
    if len(group_ids):
        widths = {groups.groups[g].name: max(1, int(round(groups.groups[g].width * shrink))) for g in group_ids}
        widths = {k: v for k, v in widths.items() if v != groups.by_name(k).width}
        if widths:
            loss = 1.0 - compare(graph, apply_model_knobs(graph, widths, None), inputs).fidelity
            unit = float(1.0 - dataclasses.replace(proxy, width_coef=1.0).fidelity(
                jnp.asarray([widths.get(groups.groups[g].name, groups.groups[g].width) for g in group_ids],
                            jnp.float32), None))
            if unit > 0:
                a = max(loss, 0.0) / unit * CALIBRATION_MARGIN
    if len(layer_names):
        loss = 1.0 - compare(graph, apply_model_knobs(graph, {}, {n: probe_bits for n in layer_names}), inputs).fidelity
        unit = float(jnp.sum(quant_noise(jnp.full(len(layer_names), float(probe_bits)))))
        b = max(loss, 0.0) / unit * CALIBRATION_MARGIN
    return dataclasses.replace(proxy, width_coef=float(a), bits_coef=float(b))


# ---------------------------------------------------------------- the exact check
@dataclass(frozen=True)
class AccuracyReport:
    fidelity: float      # cosine similarity of all outputs (1.0 = same)
    top1: float          # top-1 agreement of the first output over the calibration inputs
    max_abs: float
    samples: int
    evaluator: str = "onnxruntime"

    def as_dict(self) -> dict[str, Any]:
        return {"fidelity": self.fidelity, "top1": self.top1, "max_abs": self.max_abs,
                "samples": self.samples, "evaluator": self.evaluator}


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


def compare(original, candidate, inputs: list[dict]) -> AccuracyReport:
    """Run both graphs in onnxruntime on every feed; cosine + top-1 agreement."""
    res = plugin_manager().hook.symbiote_evaluate_accuracy(original=original, candidate=candidate, inputs=inputs)
    if res is not None:
        return AccuracyReport(float(res["fidelity"]), float(res.get("top1", float("nan"))),
                              float(res.get("max_abs", float("nan"))), len(inputs), str(res.get("evaluator", "plugin")))
    from symbiote.passes.ort_check import compare_outputs, run

    a_all, b_all, agree = [], [], []
    for feeds in inputs:
        a, b = run(original, feeds), run(candidate, feeds)
        a_all += a
        b_all += b
        x, y = np.asarray(a[0]), np.asarray(b[0])
        if x.ndim >= 1 and x.shape[-1] > 1:
            agree.append(float(np.mean(np.argmax(x, -1) == np.argmax(y, -1))))
    c = compare_outputs(a_all, b_all)
    return AccuracyReport(float(c.cosine), float(np.mean(agree)) if agree else float("nan"), float(c.max_abs),
                          len(inputs))


def reshape_pipeline(widths: Mapping[str, int], bits: Mapping[str, int] | None, default_bits: int = 8,
                     export_qdq: bool = True):
    """The passes that replay a design's model knobs."""
    from symbiote.passes.base import Pipeline
    from symbiote.passes.precision import SetPrecision
    from symbiote.passes.resize import ResizeChannels

    steps = []
    if widths:
        steps.append(ResizeChannels(widths={k: int(v) for k, v in widths.items()}))
    if bits is not None:
        steps.append(SetPrecision(default=int(default_bits), layers={k: int(v) for k, v in bits.items()},
                                  export_qdq=export_qdq))
    return Pipeline(steps)


def apply_model_knobs(graph, widths: Mapping[str, int], bits: Mapping[str, int] | None, default_bits: int = 8):
    """The reshaped graph: channel widths resized, per-layer precision set (QDQ weights)."""
    pipe = reshape_pipeline(widths, bits, default_bits)
    return pipe(graph).graph if pipe.passes else graph
