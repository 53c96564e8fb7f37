"""The accuracy side of co-design: the proxy's combined view and the exact check.

**Proxy** (used inside the search, differentiable in the knobs): each model knob supplies
its own term and fits it (:mod:`symbiote.search.knobs`: ``channels``, the importance a
shrunk group loses; ``precision``, per-layer quantization laws measured in onnxruntime;
``sparsity``, the weight energy pruning removes). Independent perturbations add their
relative energies ``e`` and the cosine of a signal with its perturbed copy is about
``1 - e/2``, so the fidelity estimate is one minus the sum of the knobs' losses.
:class:`AccuracyProxy` and :func:`calibrate` are the ``channels`` and ``precision`` terms
together. The exact check, not the proxy, decides whether a design meets a constraint.

**Exact check** (final candidates): the reshaped model is written by the knobs' passes
(:func:`apply_model_knobs`: ``resize-channels``, ``sparsify``, ``set-precision(export_qdq=true)``
with calibrated activation ranges), run in onnxruntime against the original on the
*evaluation* inputs (never the calibration ones: :mod:`symbiote.search.samples`), and
measured per output (:mod:`symbiote.search.measures`): the *fidelity* is the minimum
per-output cosine, the *agreement* the minimum top-1 agreement over outputs holding
scores; with labels, the task's accuracy.

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
# Each model knob owns its proxy term and how it is fitted (search/knobs/): ``channels``
# (retained importance), ``precision`` (per-layer quantization laws), ``sparsity``. The
# names below are the combined view of the first two, kept for callers that want the whole
# proxy of a network at once.
from symbiote.search.knobs.channels import PRIOR_COEF as WIDTH_COEF, retained_curve  # noqa: E402
from symbiote.search.knobs.precision import (BITS_COEF, JOINT_PROBE_BITS, LAYER_MARGIN,  # noqa: E402
                                             fit_layer_coefs, qdq_noise, quant_noise)

#: safety factor on fitted coefficients (the exact check gates the final design anyway)
CALIBRATION_MARGIN = 1.25


@dataclass(frozen=True)
class AccuracyProxy:
    """Differentiable fidelity estimate for one network: the ``channels`` and ``precision``
    knobs' proxy terms together (see their modules)."""

    curves: np.ndarray        # f32[G, Wmax+1]: retained importance at width 0..Wmax (1 beyond w0)
    widths0: np.ndarray       # f32[G] original widths of the free groups (genome order)
    width_coef: float = WIDTH_COEF
    bits_coef: float = BITS_COEF
    layer_coefs: np.ndarray | None = None   # f32[L] per-layer c_l (search/knobs/precision.py)
    layer_decay: np.ndarray | None = None   # f32[L] per-layer k_l
    layer_ref_bits: float = 4.0

    def fidelity(self, widths: jnp.ndarray | None, bits: jnp.ndarray | None) -> jnp.ndarray:
        loss = jnp.float32(0.0)
        if widths is not None and self.curves.shape[0]:
            loss = loss + self.width_coef * self.width_loss(widths)
        if bits is not None:
            loss = loss + jnp.sum(self.layer_losses(bits))
        return 1.0 - loss

    def width_loss(self, widths, xp=jnp):
        from symbiote.search.knobs.channels import width_loss

        return width_loss(self.curves, widths, xp=xp)

    def tables(self) -> dict[str, Any]:
        """The ``precision`` knob's tables of this proxy."""
        per_layer = self.layer_coefs is not None
        return {"bits_coef": self.bits_coef, "coefs": self.layer_coefs if per_layer else None,
                "decay": self.layer_decay if per_layer else None, "ref_bits": self.layer_ref_bits}

    def layer_losses(self, bits: jnp.ndarray) -> jnp.ndarray:
        """Per-layer fidelity loss at ``bits``."""
        from symbiote.search.knobs.precision import layer_losses

        t = self.tables()
        if t["coefs"] is not None and len(t["coefs"]) != bits.shape[-1]:
            t = {**t, "coefs": None, "decay": None}
        return layer_losses(t, bits)


def build_proxy(graph, groups, group_ids: Sequence[int], criterion: str = "l1") -> AccuracyProxy:
    """The (prior) proxy for the free groups ``group_ids`` (genome order) of ``graph``."""
    from symbiote.search.knobs.channels import curves

    table = curves(graph, groups, group_ids, criterion)
    w0 = np.array([groups.groups[g].width for g in group_ids], np.float32)
    return AccuracyProxy(table, w0, WIDTH_COEF, BITS_COEF)


def calibrate(proxy: AccuracyProxy, graph, groups, group_ids: Sequence[int], layer_names: Sequence[str],
              inputs: list[dict], per_layer: bool = True, range_inputs: list[dict] | None = None) -> AccuracyProxy:
    """``proxy`` with both knobs' terms fitted to onnxruntime probes on ``inputs`` (the
    ``channels`` and ``precision`` knobs' fits); activation ranges measured on
    ``range_inputs`` (default ``inputs``). Without ``per_layer`` the bits term is one
    uniform coefficient fitted to every layer quantized to 4 bits at once."""
    import dataclasses

    from symbiote.search.knobs.channels import fit_coef

    a = fit_coef(graph, groups, group_ids, proxy.curves, inputs, proxy.width_coef) if len(group_ids) else proxy.width_coef
    if len(layer_names) and per_layer:
        coefs, decay, b = fit_layer_coefs(graph, layer_names, inputs, range_inputs=range_inputs)
        return dataclasses.replace(proxy, width_coef=float(a), bits_coef=float(b), layer_coefs=coefs,
                                   layer_decay=decay, layer_ref_bits=4.0)
    b = proxy.bits_coef
    if len(layer_names):
        loss = 1.0 - compare(graph, apply_model_knobs(graph, {}, {n: 4 for n in layer_names},
                                                      inputs=range_inputs or inputs), inputs).fidelity
        unit = float(np.sum(quant_noise(np.full(len(layer_names), 4.0))))
        b = max(loss, 0.0) / unit * CALIBRATION_MARGIN
    return dataclasses.replace(proxy, width_coef=float(a), bits_coef=float(b))


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
    """The passes that replay widths and bit-widths (precision without measured activation
    ranges unless ``act_ranges`` are given)."""
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
                      inputs: list[dict] | None = None, settings: Mapping[str, Mapping[str, Any]] | None = None):
    """The reshaped graph: each model knob's setting written by the knob itself
    (:mod:`symbiote.search.knobs`, in their order: channel widths, then the other knobs, then
    precision with QDQ weights and, given calibration ``inputs``, QDQ activations whose
    ranges are measured on the model the earlier knobs left: static post-training
    calibration). ``widths`` and ``bits`` are the ``channels`` and ``precision`` settings
    (``bits=None``: float), ``settings`` any other knob's (knob name -> target -> setting)."""
    from symbiote.search import knobs

    chosen: dict[str, Mapping[str, Any]] = dict(settings or {})
    if widths:
        chosen["channels"] = widths
    if bits is not None:
        chosen["precision"] = bits
    ctx = knobs.RewriteContext(inputs=inputs, default_bits=int(default_bits))
    for k in knobs.ordered(chosen):
        if k == "precision" and inputs is None:
            graph = reshape_pipeline({}, chosen[k], default_bits)(graph).graph  # weights only
        elif chosen[k] or k == "precision":
            graph = knobs.get(k).rewrite(graph, chosen[k], ctx)
    return graph
