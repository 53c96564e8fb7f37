"""Latency hysteresis in the search (``--hysteresis-tolerance``, the ``ort-cpu`` template):
before its exact check, each candidate's channel widths grow to the fastest width measured
within a tolerance above them (:func:`symbiote.backends.ortcpu.sweep.grow`; growing is
exact, so accuracy never drops for it), and the moves are reported
(``RunOutcome.hysteresis``, ``result.json``'s ``hysteresis``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def tolerance(given: float | None, cd: Any) -> float:
    """The tolerance candidates' widths are grown by (0: off; none without the channels knob)."""
    from symbiote.backends.ortcpu.hysteresis import search_tolerance

    tol = search_tolerance(cd.template.name, given)
    return tol if "channels" in cd.spec.knobs else 0.0


def grown(cd: Any, idx: np.ndarray, tolerance: float) -> tuple[np.ndarray, list[list[Any]]]:
    """Design ``idx`` with each network's channel widths grown to the fastest width measured
    within ``tolerance`` above them, among the group's legal widths
    (:func:`symbiote.backends.ortcpu.sweep.grow`, at the design's ``threads``; growing is
    exact), and per network the moves (one per free group, moved or not)."""
    from symbiote.backends.ortcpu.sweep import grow

    out = np.asarray(idx, np.int32).copy()
    threads = int(cd.hardware(out).get("threads", 1))
    per_net = []
    for n, net in enumerate(cd.networks):
        where = cd.space.indices("width", n)
        genes = [cd.space.genes[i] for i in where]
        ids = net.free_ids
        requested = {gid: int(g.values[out[i]]) for gid, g, i in zip(ids, genes, where, strict=True)}
        ms = grow(net.workload, requested, tolerance, threads, grids={gid: g.values for gid, g in zip(ids, genes)},
                  names=dict(zip(ids, net.group_names, strict=True)))
        for m, g, i in zip(ms, genes, where, strict=True):
            out[i] = g.values.index(float(m.width))
        per_net.append(ms)
    return out, per_net


def record(got: tuple[np.ndarray, list[list[Any]]], moves: dict[bytes, list]) -> np.ndarray:
    moves.setdefault(got[0].tobytes(), got[1])
    return got[0]


def unique(order: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``order`` without repeats, the last kept last (it is the models as given)."""
    out = [g for i, g in enumerate(order[:-1]) if not any(np.array_equal(g, h) for h in order[:i])]
    out = [g for g in out if not np.array_equal(g, order[-1])]
    return [*out, order[-1]]


def as_dict(cd: Any, tolerance: float, moves: list[list[Any]] | None) -> dict[str, Any]:
    """``RunOutcome.hysteresis`` of the chosen design: per network, its groups' moves (moved
    ones first) with the measured kernel times in ms (None: nothing wider to measure) and
    the gain."""
    nets = {}
    for net, ms in zip(cd.networks, moves or [[] for _ in cd.networks]):
        nets[net.name] = [{"group": m.group, "requested": m.requested, "width": m.width, "moved": m.moved,
                           "requested_ms": _ms(m.requested_s), "width_ms": _ms(m.width_s), "gain": m.gain}
                          for m in sorted(ms, key=lambda m: not m.moved)]
    return {"tolerance": tolerance, "networks": nets}


def _ms(s: float | None) -> float | None:
    return None if s is None else s * 1e3
