"""The user's own task metric: ``--metric MODULE:FUNCTION`` (or the name of an entry point
in the group :data:`ENTRY_POINT_GROUP`).

The function takes the path of an ONNX model and returns ``{name: value}`` (finite
numbers). The exact check calls it on the prepared original once per network and on each
checked candidate, written to a temporary file exactly as the output folder will hold it;
constraints name the values as ``metric.NAME`` (the candidate's) and ``metric.NAME_drop``
(the original's minus the candidate's), e.g. ``--constraint 'metric.map_drop<=0.005'``.
Like every accuracy figure, they decide feasibility as measured; the search itself steers
by the fidelity proxy at the default floor (:func:`symbiote.search.objectives.search_constraints`).
"""

from __future__ import annotations

import importlib
import math
import tempfile
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from symbiote.errors import SearchError
from symbiote.search.objectives import USER_PREFIX

ENTRY_POINT_GROUP = "symbiote.metrics"

MetricFn = Callable[[str], Mapping[str, float]]


@lru_cache(maxsize=None)
def load(spec: str) -> MetricFn:
    """``module:function`` (importable), or an entry point name of :data:`ENTRY_POINT_GROUP`."""
    if ":" in spec:
        mod, _, fn = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise SearchError(f"--metric {spec}: cannot import it ({e})") from None
    else:
        from importlib.metadata import entry_points

        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
        if not found:
            raise SearchError(f"--metric {spec}: give MODULE:FUNCTION or an entry point of group {ENTRY_POINT_GROUP!r}")
        obj = found[0].load()
    if not callable(obj):
        raise SearchError(f"--metric {spec}: {obj!r} is not a function")
    return obj


def evaluate(spec: str, graph: Any) -> dict[str, float]:
    """The metric of ``graph``, written to a temporary ONNX file first."""
    from symbiote.frontend import save

    fn = load(spec)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.onnx"
        save(graph, path)
        try:
            res = fn(str(path))
        except Exception as e:  # noqa: BLE001 - the user's code: say whose error it is
            raise SearchError(f"--metric {spec} failed on a candidate: {type(e).__name__}: {e}") from None
    if not isinstance(res, Mapping) or not res:
        raise SearchError(f"--metric {spec} must return a non-empty {{name: value}} dict, got {res!r}")
    out = {}
    for k, v in res.items():
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise SearchError(f"--metric {spec}: value of {k!r} is not a number: {v!r}") from None
        if not math.isfinite(x):
            raise SearchError(f"--metric {spec}: value of {k!r} is not finite: {x}")
        out[str(k)] = x
    return out


def measured(candidate: Mapping[str, float], original: Mapping[str, float]) -> dict[str, float]:
    """``metric.NAME`` and ``metric.NAME_drop`` (the original's minus the candidate's)."""
    out = {}
    for k, v in candidate.items():
        out[f"{USER_PREFIX}{k}"] = v
        if k in original:
            out[f"{USER_PREFIX}{k}_drop"] = original[k] - v
    return out
