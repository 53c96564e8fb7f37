"""The ``channels`` model knob: the width of every free channel group.

* **Targets**: the free channel groups of the network (:mod:`symbiote.ir.channel_groups`:
  the groups ``resize-channels`` may change), by name.
* **Genes**: one per group, its legal widths from a quarter to twice the original
  (:func:`symbiote.search.genome.width_grid`, the original width on the grid and the default).
  The grid asks the group for its granularity: a group of attention heads
  (``ChannelGroup.unit = head_dim``) offers only multiples of head_dim (whole heads), and a
  group that cannot grow exactly (``no_growth``: the hidden size under a LayerNorm) stops
  at its original width.
* **Cost**: ``Workload.with_widths``: every column that depends on a group's width follows it.
* **Proxy**: removing channels removes the importance the pruning criterion gives them
  (:func:`symbiote.passes.channels.importance`, the ranking ``resize-channels`` uses to pick
  what to drop); growth keeps everything (new channels are zero: exact). The fidelity loss
  is ``coef * sum_g (1 - retained_g(width_g))``, the retained share read off each group's
  sorted-importance curve (linear between whole widths). ``coef`` is fitted to one
  onnxruntime probe on the calibration samples shrinking every group to 90% of its width
  (measured loss over the unscaled loss, times the calibration margin); its prior,
  :data:`PRIOR_COEF`, was fitted (rounded up, pessimistic) on the zoo's resnet50 and
  mobilenet_v2 (uniform 5-50% shrinks: measured 0.033-0.047). With fine-tuning on
  (``--finetune-steps``), the loss is scaled by what fine-tuning wins back, measured on two
  more probes (:func:`recovery_curve`: every group at half and at a quarter of its width,
  trained and measured on calibration samples) and read at the design's unscaled loss, so
  the search judges widths after recovery; the exact check then measures each fine-tuned
  candidate on the evaluation samples.
* **Pass**: ``resize-channels(widths={group: width})`` for the groups whose width changed.
* **Repair**: the shrunk groups back to their original widths, halving each one's gap on
  the width grid at each step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.search.knobs import Fitted, GeneSettings, Prepared, Probes, RewriteContext

#: the width coefficient before (or without) a probe (see the module doc)
PRIOR_COEF = 0.05
#: the probe: every free group shrunk to this share of its width
PROBE_SHRINK = 0.9
#: the recovery probes shrink every group to these shares of its width (recovery_curve)
RECOVERY_SHRINKS = (0.5, 0.25)
#: the proxy never credits fine-tuning with more than this share of the loss back
MIN_RECOVERY_RATIO = 0.05


def retained_curve(scores: np.ndarray, wmax: int) -> np.ndarray:
    """Fraction of the total importance kept when keeping the w best channels, w = 0..wmax."""
    s = np.sort(np.maximum(np.asarray(scores, np.float64), 0.0))[::-1]
    tot = s.sum()
    c = np.concatenate([[0.0], np.cumsum(s) / tot]) if tot > 0 else np.linspace(0, 1, len(s) + 1)
    out = np.ones(wmax + 1)
    out[: len(c)] = c
    return out.astype(np.float32)


def unit_scores(scores: np.ndarray, unit: int) -> np.ndarray:
    """Per-channel scores with each whole unit (attention head) given its mean, so that the
    sorted curve removes whole heads, as pruning does."""
    if unit == 1:
        return np.asarray(scores)
    per = np.asarray(scores, np.float64).reshape(-1, unit).mean(axis=1)
    return np.repeat(per, unit)


def curves(graph: Any, groups: Any, group_ids: Sequence[int], criterion: str = "l1") -> np.ndarray:
    """f32[G, Wmax+1]: each group's retained importance at widths 0..Wmax (1 beyond its width)."""
    from symbiote.passes.channels import importance

    w0 = np.array([groups.groups[g].width for g in group_ids], np.float32)
    wmax = int(max(w0.max() * 2, 1)) if len(w0) else 1
    if not len(group_ids):
        return np.zeros((0, wmax + 1), np.float32)
    return np.stack([retained_curve(unit_scores(importance(graph, groups, g, criterion), groups.groups[g].unit), wmax)
                     for g in group_ids])


def gene_grid(width0: int, unit: int, can_grow: bool, width_range: tuple[float, float]) -> tuple[float, ...]:
    """A group's legal widths for the search: ``width_grid`` in steps of the group's unit
    (whole attention heads) when it has one, up to the original width when it cannot grow."""
    from symbiote.search.genome import width_grid

    hi = width_range[1] if can_grow else min(1.0, width_range[1])
    return width_grid(int(width0), min_frac=width_range[0], max_frac=hi, step=int(unit) if unit > 1 else 0)


def width_loss(table: np.ndarray, widths, xp=jnp):
    """``sum_g (1 - retained_g(width_g))``, linear between whole widths (``xp``: jax.numpy or
    numpy, so a calibration needs no JAX compile)."""
    g = table.shape[0]
    wmax = table.shape[1] - 1
    w = xp.clip(widths, 0.0, float(wmax))
    i0 = xp.clip(xp.floor(w), 0, wmax - 1).astype(xp.int32)
    frac = w - i0
    c = xp.asarray(table)
    rows = xp.arange(g)
    kept = c[rows, i0] * (1 - frac) + c[rows, i0 + 1] * frac
    return xp.sum(1.0 - kept)


def probe_widths(groups: Any, group_ids: Sequence[int], table: np.ndarray, share: float) -> tuple[dict[str, int], float]:
    """A probe's widths: every group at ``share`` of its width (legal: whole heads), those
    that change by name, and the probe's unscaled loss (:func:`width_loss`)."""
    from symbiote.ir.channel_groups import legal_width

    new = [legal_width(groups.groups[g], max(1, int(round(groups.groups[g].width * share)))) for g in group_ids]
    changed = {groups.groups[g].name: w for g, w in zip(group_ids, new) if w != groups.groups[g].width}
    return changed, float(width_loss(table, np.asarray(new, np.float32), xp=np))


def fit_coef(graph: Any, groups: Any, group_ids: Sequence[int], table: np.ndarray, inputs: list[dict],
             prior: float = PRIOR_COEF) -> float:
    """The width coefficient measured on one probe (see the module doc); ``prior`` without
    inputs, or when the probe changes nothing."""
    from symbiote.search import accuracy

    if not len(group_ids) or not inputs:
        return prior
    widths, unit = probe_widths(groups, group_ids, table, PROBE_SHRINK)
    if not widths:
        return prior
    loss = 1.0 - accuracy.compare(graph, KNOB.rewrite(graph, widths, RewriteContext()), inputs).fidelity
    return max(loss, 0.0) / unit * accuracy.CALIBRATION_MARGIN if unit > 0 else prior


@dataclass(frozen=True)
class RecoveryCurve:
    """What fine-tuning wins back, by how far the widths went: at each probe, the unscaled
    loss ``u`` (:func:`width_loss`) and the ratio ``after / before`` of the fidelity loss;
    the proxy reads the ratio at a design's ``u`` (linear between probes, the nearest probe's
    beyond them). ``seconds``: the longest fine-tuning (what a candidate's costs)."""

    u: tuple[float, ...] = (0.0,)
    ratio: tuple[float, ...] = (1.0,)
    seconds: float = 0.0


def recovery_curve(graph: Any, groups: Any, group_ids: Sequence[int], table: np.ndarray, feeds: list[dict],
                   recovery: Any) -> RecoveryCurve:
    """How much of the fidelity loss fine-tuning wins back, measured on probes: every group
    shrunk to each of :data:`RECOVERY_SHRINKS` of its width, the loss measured before and
    after ``recovery`` (:class:`symbiote.search.finetune.Recovery`) on held-out calibration
    samples (the second half when there are at least 8; it trains on the first), each ratio
    clipped to [:data:`MIN_RECOVERY_RATIO`, 1]. No fine-tuning, no groups or no samples:
    ratio 1 everywhere."""
    import time

    from symbiote.search import accuracy

    if recovery is None or not recovery.on or not len(group_ids) or not feeds:
        return RecoveryCurve()
    half = len(feeds) // 2 if len(feeds) >= 8 else 0
    train, held = (feeds[:half], feeds[half:]) if half else (feeds, feeds)
    points, longest = [], 0.0
    for share in RECOVERY_SHRINKS:
        widths, u = probe_widths(groups, group_ids, table, share)
        if not widths:
            continue
        pruned = KNOB.rewrite(graph, widths, RewriteContext())
        before = 1.0 - accuracy.compare(graph, pruned, held).fidelity
        start = time.perf_counter()
        tuned = recovery.apply(pruned, graph, train)
        longest = max(longest, time.perf_counter() - start)
        after = 1.0 - accuracy.compare(graph, tuned, held).fidelity
        points.append((u, float(np.clip(after / before, MIN_RECOVERY_RATIO, 1.0)) if before > 0 else 1.0))
    if not points:
        return RecoveryCurve()
    points.sort()
    return RecoveryCurve(tuple(p[0] for p in points), tuple(p[1] for p in points), longest)


class Channels:
    name = "channels"
    kind = "width"
    order = 0
    doc = "the width of every free channel group (a quarter to twice the original)"

    def targets(self, prep: Prepared) -> tuple[str, ...]:
        return tuple(g.name for g in prep.groups.free)

    def fit(self, prep: Prepared, targets: Sequence[str], probes: Probes) -> Fitted:
        ids = tuple(prep.groups.by_name(t).id for t in targets)
        table = curves(prep.graph, prep.groups, ids)
        coef = fit_coef(prep.graph, prep.groups, ids, table, probes.inputs)
        rec = recovery_curve(prep.graph, prep.groups, ids, table, probes.ranges, probes.recovery)
        w0 = np.array([prep.groups.groups[g].width for g in ids], np.float32)
        units = np.array([prep.groups.groups[g].unit for g in ids], np.int32)
        grows = np.array([not prep.groups.groups[g].no_growth for g in ids], bool)
        return Fitted(self.name, tuple(targets), (), {"curves": table, "ids": np.asarray(ids, np.int32),
                                                      "widths0": w0, "coef": np.float32(coef),
                                                      "recovery_u": np.asarray(rec.u, np.float32),
                                                      "recovery_ratio": np.asarray(rec.ratio, np.float32),
                                                      "recovery_s": np.float32(rec.seconds),
                                                      "units": units, "can_grow": grows})

    def genes(self, fitted: Fitted, net: int, prefix: str, settings: GeneSettings) -> list[Any]:
        from symbiote.search.genome import Gene

        n = len(fitted.targets)
        units = fitted.tables.get("units", np.ones(n, np.int32))
        grows = fitted.tables.get("can_grow", np.ones(n, bool))
        out = []
        for t, w0, u, g in zip(fitted.targets, fitted.tables["widths0"], units, grows):
            vals = gene_grid(int(w0), int(u), bool(g), tuple(settings.width_range))
            out.append(Gene(f"{prefix}/width/{t}", vals, vals.index(float(w0)), self.kind, net, key=t))
        return out

    def workload(self, wl: Any, fitted: Fitted, values: jax.Array, hw: Mapping[str, Any] | None = None) -> Any:
        w = jnp.asarray(wl.widths0).at[jnp.asarray(fitted.tables["ids"])].set(values)
        return wl.with_widths(w)

    def proxy_loss(self, fitted: Fitted, values: jax.Array) -> jax.Array:
        if not fitted.targets:
            return jnp.float32(0.0)
        u = width_loss(fitted.tables["curves"], values)
        ratio = jnp.interp(u, jnp.asarray(fitted.tables.get("recovery_u", np.zeros(1, np.float32))),
                           jnp.asarray(fitted.tables.get("recovery_ratio", np.ones(1, np.float32))))
        return jnp.float32(fitted.tables["coef"]) * u * ratio

    def setting(self, fitted: Fitted, j: int, value: float) -> int:
        return int(round(float(value)))

    def rewrite(self, graph: Any, chosen: Mapping[str, Any], context: RewriteContext) -> Any:
        """``resize-channels`` of the groups whose width ``chosen`` changes."""
        from symbiote.ir.channel_groups import analyze
        from symbiote.passes.resize import ResizeChannels

        groups = analyze(graph)
        widths = {k: int(v) for k, v in chosen.items() if int(v) != groups.by_name(k).width}
        return ResizeChannels(widths=widths)(graph).graph if widths else graph

    def repair(self, x: Any, default: Any, mine: Any, space: Any) -> list[Any]:
        """The shrunk groups grown back towards their original widths, half of what is left
        of each one's gap on the width grid at each step (rounded up), until restored."""
        y = np.array(x, copy=True)
        out = []
        while (y[mine] < default[mine]).any():
            gap = np.where(mine, np.maximum(default - y, 0), 0)
            y = y + (gap + 1) // 2
            out.append(y.copy())
        return out


KNOB = Channels()
