"""The verdict on a checked design, from measurements only.

A design is feasible when its cost metrics (area, latency, power, ...: the cost model's,
exact) meet the cost constraints and its accuracy, *measured* in onnxruntime on the
evaluation samples (:mod:`symbiote.search.measures`), meets the accuracy constraints
(``fidelity>=``, ``agreement>=``, with labels ``accuracy>=`` and ``accuracy_drop<=``). The proxy's fidelity estimate steers the search but
decides nothing here; it is reported beside the measurement, clipped to [-1, 1] (it is an
estimated cosine: a linear loss model can run far below -1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from symbiote.search import accuracy
from symbiote.search.objectives import Constraint, derive, is_accuracy, measured_violation


def cost_violation(per: Sequence[Mapping[str, float]], constraints: Sequence[Constraint]) -> float:
    """Total violation of the cost constraints (everything but accuracy) by per-network metrics."""
    return float(sum(float(c.violation(derive({k: np.float64(v) for k, v in m.items()})))
                     for c in constraints if not is_accuracy(c) for m in per))


def measured_of(checks: Sequence[tuple[Any, accuracy.AccuracyReport]],
                constraints: Sequence[Constraint]) -> float:
    """Total violation of the accuracy constraints by the measured fidelity and agreement."""
    return float(sum(measured_violation(tuple(constraints), r.measured()) for _, r in checks))


def decide(candidates: Sequence[tuple[float, float]], objectives: Sequence[float] | None = None) -> tuple[int, bool]:
    """The verdict from (cost violation, measured accuracy violation) per checked candidate:
    of those meeting both, the one with the lowest ``objectives`` value (without
    ``objectives``: the first, in the search's order); else the least violating overall,
    marked infeasible. Returns (its index, feasible)."""
    ok = [i for i, (cv, mv) in enumerate(candidates) if cv <= 0 and mv <= 0]
    if ok:
        return (min(ok, key=lambda i: (objectives[i], i)) if objectives is not None else ok[0]), True
    return int(np.argmin([cv + mv for cv, mv in candidates])), False


def accuracy_dict(r: accuracy.AccuracyReport, metrics: Mapping[str, float], source: str) -> dict[str, Any]:
    """The measured accuracy, with the proxy's estimate beside it (clipped to [-1, 1])."""
    out = r.as_dict()
    if "fidelity" in metrics:
        out["proxy_fidelity"] = float(np.clip(metrics["fidelity"], -1.0, 1.0))
    out["samples_from"] = source
    return out
