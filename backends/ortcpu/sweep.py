"""Latency against the width of one channel group, measured kernel by kernel.

:func:`sweep` resizes a Workload's group to each width (``Workload.with_widths``), maps the
rows whose dimensions follow that group to their kernels
(:func:`symbiote.backends.ortcpu.plan.row_kernels`), measures them through the cache
(every kernel of every width in one lookup, so a cold cache shows one progress bar), and
returns one :class:`~symbiote.backends.ortcpu.hysteresis.SweepRow` per width: the sum of
those kernels' latencies (run overhead removed, as the cost model does) and the sum of
their spreads.

:func:`grow` uses it to exploit hysteresis: for each requested group width, the widths
between it and ``(1 + tolerance)`` times it (the group's legal widths, or the search's
width grid) are swept and :func:`~symbiote.backends.ortcpu.hysteresis.pick_width` keeps the
fastest when it beats the requested width beyond the noise (growing is exact: new channels
are zeros, so the model's function is unchanged). :func:`fastest_widths` is its widths alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from symbiote.backends.ortcpu import plan
from symbiote.backends.ortcpu.hysteresis import Move, SweepRow, pick_width
from symbiote.backends.ortcpu.model import COLUMNS, lookup, rules
from symbiote.ir.workload import WIDTH_FIELDS, Workload


def following_rows(wl: Workload, gid: int) -> np.ndarray:
    """The rows any of whose width-dependent columns follow group ``gid``."""
    return np.any([np.asarray(getattr(wl, f + "_map"))[:, gid] != 0 for f in WIDTH_FIELDS], axis=0)


def kernels_at(wl: Workload, gid: int, width: int, rows: np.ndarray, base: np.ndarray | None = None) -> list:
    """The kernels of ``rows`` with group ``gid`` at ``width`` (the other groups at ``base``,
    default their original widths)."""
    w = np.asarray(wl.widths0 if base is None else base, np.float32).copy()
    w[gid] = width
    resized = wl.with_widths(w)
    cols = {f: np.asarray(getattr(resized, f)) for f in COLUMNS}
    plans = plan.row_kernels(cols, resized.ops, resized.kinds, rules())
    return [p.kernel for i, p in enumerate(plans) if rows[i] and p.kernel is not None]


def sweep(wl: Workload, gid: int, widths: Sequence[int], threads: int = 1, base: np.ndarray | None = None) -> list[SweepRow]:
    """One row per width (module doc); the other groups at ``base`` (default: original)."""
    rows = following_rows(wl, gid)
    per_width = [kernels_at(wl, gid, int(w), rows, base) for w in widths]
    got, _ = lookup({k.signature: k for ks in per_width for k in ks}, threads, label="ort-cpu: sweep")
    return [SweepRow(int(w), float(sum(got[k.signature].median_s for k in ks)), float(sum(got[k.signature].spread_s for k in ks)))
            for w, ks in zip(widths, per_width, strict=True)]


def candidates(width: int, tolerance: float, step: int, unit: int = 1) -> list[int]:
    """Widths from ``width`` up to ``width * (1 + tolerance)`` in steps of ``step`` (and
    multiples of ``unit``), ``width`` first."""
    step = max(step, unit) if unit > 1 else max(step, 1)
    hi = int(np.floor(width * (1.0 + tolerance)))
    return [width] + [w for w in range(width + step, hi + 1, step) if w % unit == 0]


def grow(wl: Workload, requested: Mapping[int, int], tolerance: float, threads: int = 1,
         grids: Mapping[int, Sequence[float]] | None = None, units: Mapping[int, int] | None = None,
         names: Mapping[int, str] | None = None) -> list[Move]:
    """One :class:`~symbiote.backends.ortcpu.hysteresis.Move` per requested group id (module
    doc): the widths tried are ``grids[g]``'s within the tolerance, else :func:`candidates`
    on the search's step (multiples of ``units[g]``); groups are taken one at a time, the
    others at their requested widths. Kernels are read from the cache or measured; a group
    with no wider width to try is not swept (its move's times are None)."""
    base = np.asarray(wl.widths0, np.float32).copy()
    for g, w in requested.items():
        base[g] = w
    out = []
    for g, w in requested.items():
        w = int(w)
        if grids is not None and g in grids:
            ws = [w] + sorted({int(v) for v in grids[g] if w < int(v) <= w * (1.0 + tolerance)})
        else:
            step = 8 if float(wl.widths0[g]) >= 32 else (4 if float(wl.widths0[g]) >= 8 else 1)
            ws = candidates(w, tolerance, step, (units or {}).get(g, 1))
        rows = sweep(wl, g, ws, threads, base) if len(ws) > 1 else []
        at = next((r for r in rows if r.width == w), None)
        best = pick_width(rows, w, tolerance) if rows else None
        name = (names or {}).get(g, str(g))
        out.append(Move(name, w, best.width if best else w, at.median_s if at else None,
                        best.median_s if best else None))
    return out


def fastest_widths(wl: Workload, requested: dict[int, int], tolerance: float, threads: int = 1,
                   units: dict[int, int] | None = None) -> dict[int, int]:
    """Per group id, the width :func:`grow` picks (the requested one unless a wider one on
    the search's grid measured faster beyond the noise)."""
    got = grow(wl, requested, tolerance, threads, units=units)
    return {g: m.width for g, m in zip(requested, got, strict=True)}
