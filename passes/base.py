"""Pass, PassResult, Pipeline and FixedPoint: the pass infrastructure.

Modelled on onnx-ir's ``passes/_pass_infra.py`` (PassBase, PassResult, Sequential,
verify before and after) and optax's ``chain``.

* A pass is a frozen dataclass whose fields are its arguments. Class attributes:
  ``name`` (registry name, e.g. ``"fold-bn"``) and ``exact`` (True when the pass
  always preserves the model's function). A pass whose exactness depends on its
  arguments or the graph (``resize-channels``: exact when it only grows) says so for
  one run with ``info["exact"] = True/False``; :func:`run_exact` reads a result that way.
* ``Pass.__call__(graph)`` **never mutates the caller's graph**: it works on
  ``graph.copy()`` (weights are shared numpy arrays that passes never write in place)
  and returns ``PassResult(graph, modified, info)``. The graph is verified before
  and after (``check=False`` on a Pipeline skips the checks between steps).
* ``Pipeline`` runs passes in order; ``FixedPoint`` repeats a pipeline until a round
  changes nothing (or ``max_rounds``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from symbiote.errors import PassError
from symbiote.ir.graph import Graph


@dataclass(frozen=True)
class PassResult:
    graph: Graph
    modified: bool
    info: dict[str, Any] = field(default_factory=dict)


def run_exact(p: Pass | Pipeline | FixedPoint, r: PassResult) -> bool:
    """Whether this run of ``p`` preserved the model's function: the pass is always exact,
    or it changed nothing, or its result says so (``info["exact"]``)."""
    said = r.info.get("exact")
    if isinstance(said, bool):
        return said or not r.modified
    return bool(p.exact) or not r.modified


@dataclass(frozen=True)
class Pass:
    """Base class. Subclasses implement :meth:`apply` on a graph they may mutate."""

    name: ClassVar[str] = ""
    exact: ClassVar[bool] = True
    doc: ClassVar[str] = ""

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:  # pragma: no cover - abstract
        """Mutate ``graph`` (a private copy) in place; return (modified, info)."""
        raise NotImplementedError

    def __call__(self, graph: Graph, *, check: bool = True) -> PassResult:
        if check:
            _verify(graph, f"before {self.spec()}")
        g = graph.copy()
        t0 = time.perf_counter()
        modified, info = self.apply(g)
        info = dict(info)
        info.setdefault("seconds", round(time.perf_counter() - t0, 6))
        if check:
            _verify(g, f"after {self.spec()}", internal=True)
        return PassResult(g if modified else graph, bool(modified), info)

    def args(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def spec(self) -> str:
        """The textual form, parseable by :func:`symbiote.passes.registry.parse_pipeline`."""
        from symbiote.passes.syntax import format_value

        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or (f.default is not MISSING and f.default == v):
                continue
            parts.append(f"{f.name}={format_value(v)}")
        return f"{self.name}({','.join(parts)})" if parts else self.name


def _verify(graph: Graph, when: str, internal: bool = False) -> None:
    from symbiote.errors import SymbioteError

    try:
        graph.verify()
    except SymbioteError as e:
        if internal:
            raise AssertionError(f"graph does not verify {when}: {e}") from e
        raise PassError(f"graph does not verify {when}: {e}") from e


@dataclass(frozen=True)
class Pipeline:
    """Passes run in order (like optax.chain). ``Pipeline([...])(graph) -> PassResult``.

    ``info["steps"]`` lists one dict per pass: ``{"pass": spec, "modified": bool, **info,
    "exact": bool}`` (``exact``: :func:`run_exact` of that step); ``info["exact"]``: all
    steps were exact.
    """

    passes: tuple[Pass | Pipeline | FixedPoint, ...] = ()

    def __init__(self, passes: Iterable[Pass | Pipeline | FixedPoint] = ()) -> None:
        object.__setattr__(self, "passes", tuple(passes))

    name: ClassVar[str] = "pipeline"

    @property
    def exact(self) -> bool:
        return all(p.exact for p in self.passes)

    def spec(self) -> str:
        return ",".join(p.spec() for p in self.passes)

    def __call__(self, graph: Graph, *, check: bool = True) -> PassResult:
        if check:
            _verify(graph, "before the pipeline")
        steps: list[dict[str, Any]] = []
        modified = False
        for p in self.passes:
            r = p(graph, check=False)
            if check:
                _verify(r.graph, f"after {p.spec()}", internal=True)
            steps.append({"pass": p.spec(), "modified": r.modified, **r.info, "exact": run_exact(p, r)})
            modified |= r.modified
            graph = r.graph
        return PassResult(graph, modified, {"steps": steps, "exact": all(st["exact"] for st in steps)})

    def __iter__(self):
        return iter(self.passes)

    def __len__(self) -> int:
        return len(self.passes)


@dataclass(frozen=True)
class FixedPoint:
    """Repeat ``pipeline`` until a round modifies nothing (at most ``max_rounds``)."""

    pipeline: Pipeline | Pass
    max_rounds: int = 10
    name: ClassVar[str] = "fixed-point"

    @property
    def exact(self) -> bool:
        return self.pipeline.exact

    def spec(self) -> str:
        return f"fixed-point[{self.pipeline.spec()}]"

    def __call__(self, graph: Graph, *, check: bool = True) -> PassResult:
        if self.max_rounds < 1:
            raise PassError(f"fixed-point: max_rounds must be >= 1, got {self.max_rounds}")
        modified = False
        exact = True
        rounds: list[Any] = []
        for _ in range(self.max_rounds):
            r = self.pipeline(graph, check=check)
            rounds.append(r.info)
            exact &= run_exact(self.pipeline, r)
            graph = r.graph
            if not r.modified:
                break
            modified = True
        return PassResult(graph, modified, {"rounds": len(rounds), "steps": rounds, "exact": exact})


def as_pipeline(passes: Sequence[Pass] | Pipeline | Pass | str) -> Pipeline:
    """A Pipeline from a list of passes, one pass, a Pipeline, or pipeline text."""
    if isinstance(passes, Pipeline):
        return passes
    if isinstance(passes, str):
        from symbiote.passes.registry import parse_pipeline

        return parse_pipeline(passes)
    if isinstance(passes, (Pass, FixedPoint)):
        return Pipeline([passes])
    return Pipeline(passes)
