"""Latency hysteresis in the search (``--hysteresis-tolerance``, the ``ort-cpu`` template):
before its exact check, each candidate's channel widths grow to the fastest width measured
within a tolerance above them (:func:`symbiote.backends.ortcpu.sweep.grow`; growing is
exact, so accuracy never drops for it), and the moves are reported
(``RunOutcome.hysteresis``, ``result.json``'s ``hysteresis``).

The kernels judge a group's width one group at a time; a network's moves are kept only when
its whole model, written at the grown widths, also runs faster end to end than at the
requested widths, beyond the noise (:func:`confirmed`: both float models measured in
onnxruntime, interleaved, at the design's threads and execution mode; the rule of
:func:`symbiote.backends.ortcpu.hysteresis.beats`); otherwise they are undone, and the moves
say what the kernels picked and what the whole model measured."""

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
        if any(m.moved for m in ms):
            ms = confirmed(net, ms, threads, cd.hardware(out).get("execution_mode") == "parallel")
        for m, g, i in zip(ms, genes, where, strict=True):
            out[i] = g.values.index(float(m.width))
        per_net.append(ms)
    return out, per_net


def confirmed(net: Any, moves: list[Any], threads: int, parallel: bool) -> list[Any]:
    """``moves`` (one network's) with the whole-model measurement: kept when the model at the
    grown widths beats the model at the requested ones end to end (module doc), else undone
    (each moved group back at its requested width, ``kernel_width`` saying where the kernels
    would have taken it)."""
    from dataclasses import replace

    from symbiote.backends.ortcpu.hysteresis import beats

    asked = {m.group: m.requested for m in moves}
    grown = {m.group: m.width for m in moves}
    (req_s, req_sp), (grow_s, grow_sp) = whole_model_s(net, [asked, grown], threads, parallel)
    whole = (req_s, grow_s)
    if beats(grow_s, grow_sp, req_s, req_sp):
        return [replace(m, whole_s=whole) if m.moved else m for m in moves]
    return [replace(m, width=m.requested, kernel_width=m.width, whole_s=whole) if m.moved else m for m in moves]


def whole_model_s(net: Any, widths: list[dict[str, int]], threads: int, parallel: bool) -> list[tuple[float, float]]:
    """Per channel-width setting (group name -> width), ``(median, spread)`` in seconds of
    ``net``'s float model written at those widths, run end to end in onnxruntime on the same
    seeded inputs, the models measured interleaved (:func:`symbiote.backends.ortcpu.measure.interleaved`;
    a model's latency does not depend on its weights' values)."""
    from symbiote.backends.ortcpu import measure
    from symbiote.frontend.save import to_onnx
    from symbiote.search.accuracy import apply_model_knobs

    sessions = []
    for w in widths:
        changed = {k: v for k, v in w.items() if v != net.groups.by_name(k).width}
        sessions.append(measure.session(to_onnx(apply_model_knobs(net.graph, changed, None)), threads, parallel))
    feeds = measure.feeds_for(sessions[0])
    runs = measure.interleaved([(x, feeds) for x in sessions], measure.default_settings())
    return [(t.median_s, t.spread_s) for t in map(measure.summarize, runs)]


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
                           "requested_ms": _ms(m.requested_s), "width_ms": _ms(m.width_s), "gain": m.gain,
                           "kernel_width": m.kernel_width,
                           "whole_model_ms": None if m.whole_s is None else [_ms(t) for t in m.whole_s]}
                          for m in sorted(ms, key=lambda m: not m.moved)]
    return {"tolerance": tolerance, "networks": nets}


def _ms(s: float | None) -> float | None:
    return None if s is None else s * 1e3
