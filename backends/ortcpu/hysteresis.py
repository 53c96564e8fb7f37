"""Latency hysteresis: where a larger width measured faster than a smaller one.

:func:`hysteresis_points` reads a sweep, rows of ``(width, median_s, spread_s)``, and marks
each width that measured faster than some smaller width *beyond the noise*: its median plus
its spread is below the smaller width's median minus that one's spread (the spread being
what :mod:`symbiote.backends.ortcpu.measure` records, half the runs' interquartile range).
Each point names the smaller width it beats by the most (the one whose lower bound is
highest). :func:`pick_width` is what the search does with a sweep: for a requested width,
the fastest width within a tolerance above it, kept only when it beats the requested width
beyond the noise the same way. Pure: no timing happens here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
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
        if best is not None and r.width > best.width and beats(r.median_s, r.spread_s, best.median_s, best.spread_s):
            out.append(HysteresisPoint(r.width, r.median_s, best.width, best.median_s))
        if best is None or r.median_s - r.spread_s > best.median_s - best.spread_s:
            best = r
    return out


def fastest_within(rows: Iterable[SweepRow], target: int, tolerance: float) -> SweepRow | None:
    """The fastest row whose width is at least ``target`` and at most ``target * (1 +
    tolerance)`` (growing is exact; None when no row is in that range)."""
    cands = [r for r in rows if target <= r.width <= target * (1.0 + tolerance)]
    return min(cands, key=lambda r: (r.median_s, r.width)) if cands else None


@dataclass(frozen=True)
class Move:
    """A channel group grown from ``requested`` to ``width`` because the kernels that follow
    its width measured faster there: ``requested_s`` and ``width_s`` are their summed medians
    (``width == requested``: not moved; both None: no wider legal width within the
    tolerance, so nothing was measured)."""

    group: str
    requested: int
    width: int
    requested_s: float | None
    width_s: float | None
    #: the width the kernels picked, when the whole model measured at it was not faster than
    #: at the requested widths (``width`` then stays ``requested``; see ``whole_s``)
    kernel_width: int | None = None
    #: the whole model end to end, ``(at the requested widths, at the grown ones)`` in
    #: seconds (medians), when a move was checked that way (search/hysteresis.py)
    whole_s: tuple[float, float] | None = None

    @property
    def moved(self) -> bool:
        return self.width != self.requested

    @property
    def gain(self) -> float:
        """The share of the group's kernel time saved, ``1 - width_s / requested_s``."""
        if self.requested_s is None or self.width_s is None or self.requested_s <= 0:
            return 0.0
        return 1.0 - self.width_s / self.requested_s


def beats(fast_median_s: float, fast_spread_s: float, slow_median_s: float, slow_spread_s: float) -> bool:
    """Whether a measurement beats another beyond the noise: its median plus its spread
    below the other's median minus the other's spread (the rule of this module)."""
    return fast_median_s + fast_spread_s < slow_median_s - slow_spread_s


def pick_width(rows: Iterable[SweepRow], requested: int, tolerance: float,
               allowed: Collection[int] | None = None) -> SweepRow | None:
    """The row to run a group at when ``requested`` was asked for: the fastest row whose
    width is in ``[requested, requested * (1 + tolerance)]`` (and in ``allowed`` when given)
    *if* it beats the requested width's row beyond the noise (its median plus spread below
    the requested one's median minus spread, as :func:`hysteresis_points` judges), else the
    requested width's row; None when the requested width was not swept."""
    rows = list(rows)
    at = next((r for r in rows if r.width == requested), None)
    if at is None:
        return None
    cands = [r for r in rows if requested < r.width <= requested * (1.0 + tolerance)
             and (allowed is None or r.width in allowed)]
    best = min(cands, key=lambda r: (r.median_s, r.width), default=None)
    if best is not None and beats(best.median_s, best.spread_s, at.median_s, at.spread_s):
        return best
    return at


#: the template whose widths are measured, and the search's default tolerance with it
MEASURED_TEMPLATE = "ort-cpu"
DEFAULT_TOLERANCE = 0.1


def search_tolerance(template: str, given: float | None) -> float:
    """The share above each requested width the search may grow a channel group by
    (``symbiote search --hysteresis-tolerance``): ``given``, else :data:`DEFAULT_TOLERANCE`
    on the ``ort-cpu`` template and 0 (off) on the others. A positive tolerance elsewhere is
    an error: only ``ort-cpu`` measures widths."""
    from symbiote.errors import SearchError

    if given is None:
        return DEFAULT_TOLERANCE if template == MEASURED_TEMPLATE else 0.0
    if not 0.0 <= given <= 1.0:
        raise SearchError(f"--hysteresis-tolerance {given:g}: expected a share between 0 and 1")
    if given > 0 and template != MEASURED_TEMPLATE:
        raise SearchError(f"--hysteresis-tolerance {given:g}: only the {MEASURED_TEMPLATE} template measures "
                          f"latency against width; backend {template!r} has no measured table")
    return float(given)
