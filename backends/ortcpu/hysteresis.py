"""Latency hysteresis: where a larger width measured faster than a smaller one.

:func:`hysteresis_points` reads a sweep, rows of ``(width, median_s, spread_s)``, and marks
each width that measured faster than some smaller width *beyond the noise*: its median plus
its spread is below the smaller width's median minus that one's spread (the spread being
what :mod:`symbiote.backends.ortcpu.measure` records, half the runs' interquartile range).
Each point names the smaller width it beats by the most (the one whose lower bound is
highest). Pure: no timing happens here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SweepRow:
    width: int
    median_s: float
    spread_s: float


@dataclass(frozen=True)
class HysteresisPoint:
    """``width`` ran in ``median_s``, faster beyond the noise than ``beats_width``
    (``beats_median_s``); ``gain`` is the share of time saved, ``1 - median_s / beats_median_s``."""

    width: int
    median_s: float
    beats_width: int
    beats_median_s: float

    @property
    def gain(self) -> float:
        return 1.0 - self.median_s / self.beats_median_s if self.beats_median_s > 0 else 0.0


def hysteresis_points(rows: Iterable[SweepRow]) -> list[HysteresisPoint]:
    """The hysteresis points of a sweep (module doc), in increasing width."""
    out: list[HysteresisPoint] = []
    best: SweepRow | None = None          # the smaller width with the highest lower bound so far
    for r in sorted(rows, key=lambda r: r.width):
        if best is not None and r.width > best.width and r.median_s + r.spread_s < best.median_s - best.spread_s:
            out.append(HysteresisPoint(r.width, r.median_s, best.width, best.median_s))
        if best is None or r.median_s - r.spread_s > best.median_s - best.spread_s:
            best = r
    return out


def fastest_within(rows: Iterable[SweepRow], target: int, tolerance: float) -> SweepRow | None:
    """The fastest row whose width is at least ``target`` and at most ``target * (1 +
    tolerance)`` (growing is exact; None when no row is in that range)."""
    cands = [r for r in rows if target <= r.width <= target * (1.0 + tolerance)]
    return min(cands, key=lambda r: (r.median_s, r.width)) if cands else None
