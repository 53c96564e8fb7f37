"""How close a candidate's outputs are to the original's, per output (pure numpy).

One cosine over every output concatenated hides what matters: a detector's box
coordinates, 1000x larger than its class scores, dominate it (fidelity 0.995 with class
score rows at cosine 0.1-0.4), and a language model's logits stay close in cosine while
a quarter of its next-token predictions change. So each output is measured on its own:

* ``cosine``: of the output's values over every evaluation sample, flattened;
* ``rel_l2``: ``||y - x|| / ||x||`` over the same values;
* for a *score* output (classes, a vocabulary: a float output whose last axis has at least
  2 entries, or one named by ``--logits``), ``top1``: the fraction of positions (every
  index but the last axis, over the samples) where the candidate's arg-max equals the
  original's, and ``top5`` (when the last axis has more than 5 entries): the fraction
  where the original's arg-max is among the candidate's 5 highest.

With labels (``labels`` in ``--eval-data``), the task's own measure: ``accuracy`` is the
fraction of positions where the candidate's arg-max of the score output equals the label,
``accuracy_original`` the same for the original, ``accuracy_drop`` their difference
(original minus candidate; :class:`LabelStats`, paired over the same samples).

The run's ``fidelity`` is the *minimum* over outputs of their cosine, its ``agreement`` the
minimum ``top1`` over score outputs (None when no output holds scores). Both are computed
from per-sample sufficient statistics (:class:`Stats`), so a seeded bootstrap over
samples (:func:`interval`) gives their 95% interval without rerunning anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: bootstrap resamples for the 95% intervals
BOOTSTRAP = 1000


def is_scores(x: np.ndarray, name: str, logits: Sequence[str] = ()) -> bool:
    """Whether output ``name`` holds scores over its last axis: named in ``logits`` when
    that is given, else any float output with a last axis of at least 2 entries."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) and x.ndim >= 1 and x.shape[-1] >= 2):
        return False
    return name in logits if logits else True


@dataclass(frozen=True)
class Stats:
    """Per sample ``s`` and output ``o`` (f64[S, O]): the sums a measure needs. ``scores``:
    bool[O], score outputs; ``top5_defined``: bool[O]; ``positions``: f64[S, O]."""

    names: tuple[str, ...]
    dot: np.ndarray        # sum x * y
    xx: np.ndarray         # sum x^2
    yy: np.ndarray         # sum y^2
    dd: np.ndarray         # sum (y - x)^2
    hit1: np.ndarray       # positions whose arg-max agrees
    hit5: np.ndarray       # positions whose original arg-max is in the candidate's top 5
    positions: np.ndarray  # positions (score outputs; 0 elsewhere)
    scores: np.ndarray
    top5_defined: np.ndarray
    max_abs: float

    @property
    def samples(self) -> int:
        return int(self.dot.shape[0])


def _one(x: np.ndarray, y: np.ndarray, scores: bool) -> tuple[float, ...]:
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x64.shape != y64.shape:
        raise ValueError(f"output shapes differ: {x64.shape} vs {y64.shape}")
    d = y64 - x64
    hit1 = hit5 = pos = 0.0
    if scores and x64.size:
        xs, ys = x64.reshape(-1, x64.shape[-1]), y64.reshape(-1, y64.shape[-1])
        ref = np.argmax(xs, -1)
        hit1 = float(np.sum(ref == np.argmax(ys, -1)))
        if xs.shape[-1] > 5:
            top = np.argpartition(-ys, 5, axis=-1)[:, :5]
            hit5 = float(np.sum((top == ref[:, None]).any(-1)))
        pos = float(xs.shape[0])
    return (float(np.sum(x64 * y64)), float(np.sum(x64 * x64)), float(np.sum(y64 * y64)), float(np.sum(d * d)),
            hit1, hit5, pos, float(np.max(np.abs(d))) if d.size else 0.0)


def stats(reference: Sequence[Sequence[np.ndarray]], candidate: Sequence[Sequence[np.ndarray]],
          names: Sequence[str], logits: Sequence[str] = ()) -> Stats:
    """``reference[s][o]``, ``candidate[s][o]``: output ``o`` on sample ``s``."""
    if len(reference) != len(candidate) or not reference:
        raise ValueError(f"sample counts differ or are zero: {len(reference)} vs {len(candidate)}")
    first = [np.asarray(x) for x in reference[0]]
    names = tuple(names) if len(names) == len(first) else tuple(f"output{i}" for i in range(len(first)))
    scores = np.array([is_scores(x, n, logits) for x, n in zip(first, names)], bool)
    top5 = np.array([bool(s) and x.shape[-1] > 5 for s, x in zip(scores, first)], bool)
    rows = np.array([[_one(x, y, bool(scores[o])) for o, (x, y) in enumerate(zip(xs, ys))]
                     for xs, ys in zip(reference, candidate)], np.float64).reshape(len(reference), len(first), 8)
    return Stats(names, rows[..., 0], rows[..., 1], rows[..., 2], rows[..., 3], rows[..., 4], rows[..., 5],
                 rows[..., 6], scores, top5, float(rows[..., 7].max()) if rows.size else 0.0)


def _cosine(dot: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Cosine from summed statistics (``[..., O]``); two zero vectors are identical (1),
    one zero vector and one not are unrelated (0)."""
    den = np.sqrt(xx * yy)
    both_zero = (xx == 0) & (yy == 0)
    return np.where(den > 0, dot / np.where(den > 0, den, 1.0), np.where(both_zero, 1.0, 0.0))


def _summary(st: Stats, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output, over samples weighted by ``w`` (f64[..., S]): cosine, rel L2, top-1, top-5."""
    s = lambda a: w @ a  # noqa: E731 - [..., S] @ [S, O]
    cos = np.clip(_cosine(s(st.dot), s(st.xx), s(st.yy)), -1.0, 1.0)
    xx = s(st.xx)
    rel = np.sqrt(s(st.dd)) / np.where(xx > 0, np.sqrt(np.where(xx > 0, xx, 1.0)), np.nan)
    pos = s(st.positions)
    top1 = np.where(pos > 0, s(st.hit1) / np.where(pos > 0, pos, 1.0), np.nan)
    top5 = np.where(pos > 0, s(st.hit5) / np.where(pos > 0, pos, 1.0), np.nan)
    return cos, rel, top1, top5


def fidelity_of(cos: np.ndarray) -> np.ndarray:
    """The minimum over outputs (last axis) of their cosine."""
    return np.min(cos, axis=-1)


def agreement_of(top1: np.ndarray, scores: np.ndarray) -> np.ndarray | None:
    """The minimum top-1 agreement over score outputs; None without score outputs."""
    return np.min(top1[..., scores], axis=-1) if scores.any() else None


@dataclass(frozen=True)
class OutputMeasure:
    name: str
    cosine: float
    rel_l2: float
    top1: float | None = None     # score outputs only
    top5: float | None = None     # score outputs with more than 5 entries

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cosine": self.cosine, "rel_l2": self.rel_l2, "top1": self.top1, "top5": self.top5}


@dataclass(frozen=True)
class Measures:
    outputs: tuple[OutputMeasure, ...]
    fidelity: float                     # min cosine over outputs
    agreement: float | None             # min top-1 over score outputs
    concatenated_cosine: float          # the single cosine over every output (for comparison only)
    samples: int
    max_abs: float


def measure(st: Stats) -> Measures:
    """Every measure over all the samples."""
    cos, rel, top1, top5 = _summary(st, np.ones(st.samples))
    outs = tuple(OutputMeasure(n, float(cos[o]), float(rel[o]), float(top1[o]) if st.scores[o] else None,
                               float(top5[o]) if st.top5_defined[o] else None) for o, n in enumerate(st.names))
    agree = agreement_of(top1, st.scores)
    concat = float(np.clip(_cosine(st.dot.sum(), st.xx.sum(), st.yy.sum()), -1.0, 1.0))
    return Measures(outs, float(fidelity_of(cos)), None if agree is None else float(agree), concat, st.samples,
                    st.max_abs)


def interval(st: Stats, resamples: int = BOOTSTRAP, seed: int = 0) -> dict[str, list[float] | None]:
    """Seeded bootstrap over samples: the 2.5th and 97.5th percentiles of ``fidelity`` and
    ``agreement`` (None where undefined or with a single sample); ``agreement``'s is widened
    to the Wilson interval of its pooled positions (:func:`wilson`)."""
    if st.samples < 2 or resamples < 1:
        return {"fidelity": None, "agreement": None}
    rng = np.random.default_rng(seed)
    w = rng.multinomial(st.samples, np.full(st.samples, 1.0 / st.samples), size=resamples).astype(np.float64)
    cos, _, top1, _ = _summary(st, w)
    ci = lambda v: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]  # noqa: E731
    agree = agreement_of(top1, st.scores)
    if agree is None:
        return {"fidelity": ci(fidelity_of(cos)), "agreement": None}
    # a proportion's bootstrap collapses to [1, 1] when every position agrees: widen it to
    # the Wilson score interval of the least-agreeing score output's pooled positions
    lo, hi = ci(agree)
    o = np.flatnonzero(st.scores)[np.argmin(st.hit1.sum(0)[st.scores] / np.maximum(st.positions.sum(0)[st.scores], 1))]
    wl, wh = wilson(float(st.hit1[:, o].sum()), float(st.positions[:, o].sum()))
    return {"fidelity": ci(fidelity_of(cos)), "agreement": [min(lo, wl), max(hi, wh)]}


def wilson(hits: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score 95% interval of a proportion ``hits / n`` (Wilson, JASA 1927): unlike
    the normal or bootstrap interval, it does not collapse at 0 or n hits (64 of 64 gives
    [0.943, 1])."""
    if n <= 0:
        return (0.0, 1.0)
    p = hits / n
    den = 1.0 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (float(max(0.0, mid - half)), float(min(1.0, mid + half)))


@dataclass(frozen=True)
class LabelStats:
    """Per sample (f64[S]): positions whose arg-max equals the label, for the original and the
    candidate, and the positions labelled."""

    output: str
    hit_ref: np.ndarray
    hit_cand: np.ndarray
    positions: np.ndarray

    def accuracy(self, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(original's, candidate's) accuracy over samples weighted by ``w`` ([..., S])."""
        w = np.ones(len(self.positions)) if w is None else w
        pos = w @ self.positions
        return (w @ self.hit_ref) / pos, (w @ self.hit_cand) / pos


def score_output(names: Sequence[str], first: Sequence[np.ndarray], logits: Sequence[str] = ()) -> int:
    """The index of the output that labels score: the first ``--logits`` output, else the only
    score output (several, or none: an error that says to name it)."""
    from symbiote.errors import SearchError

    if logits:
        return list(names).index(logits[0])
    found = [i for i, (n, x) in enumerate(zip(names, first)) if is_scores(x, n)]
    if len(found) != 1:
        raise SearchError(f"labels need one score output to compare with; the model has "
                          f"{len(found)} ({', '.join(names[i] for i in found) or 'none'}): name it with --logits")
    return found[0]


def label_stats(reference: Sequence[Sequence[np.ndarray]], candidate: Sequence[Sequence[np.ndarray]],
                names: Sequence[str], labels: Sequence[np.ndarray], logits: Sequence[str] = ()) -> LabelStats:
    """Top-1 hits against ``labels[s]`` (one label per position of the score output's arg-max)."""
    from symbiote.errors import SearchError

    if len(labels) != len(reference):
        raise SearchError(f"{len(labels)} labels for {len(reference)} evaluation samples")
    o = score_output(names, reference[0], logits)
    hr, hc, pos = [], [], []
    for s, (xs, ys) in enumerate(zip(reference, candidate)):
        lab = np.asarray(labels[s]).reshape(-1)
        pr, pc = np.argmax(np.asarray(xs[o]), -1).reshape(-1), np.argmax(np.asarray(ys[o]), -1).reshape(-1)
        if lab.size != pr.size:
            raise SearchError(f"labels of sample {s}: {lab.size} values for {pr.size} predictions of output "
                              f"{names[o]!r}")
        hr.append(float(np.sum(pr == lab)))
        hc.append(float(np.sum(pc == lab)))
        pos.append(float(lab.size))
    return LabelStats(names[o], np.array(hr), np.array(hc), np.array(pos))


def label_interval(ls: LabelStats, resamples: int = BOOTSTRAP, seed: int = 0) -> dict[str, list[float] | None]:
    """Seeded paired bootstrap over samples: 95% intervals of ``accuracy`` and ``accuracy_drop``."""
    n = len(ls.positions)
    if n < 2 or resamples < 1:
        return {"accuracy": None, "accuracy_drop": None}
    rng = np.random.default_rng(seed)
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    ref, cand = ls.accuracy(w)
    ci = lambda v: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]  # noqa: E731
    return {"accuracy": ci(cand), "accuracy_drop": ci(ref - cand)}
