"""The driver: alternating gradient and evolution phases under a budget.

Iteration ``i`` draws all its randomness from ``fold_in(PRNGKey(seed), i)``:

* iteration 0: gradient descent from the default design and random starts (one
  start per category of each categorical knob, cycled), plus a random population;
* every ``grad_every``-th iteration: gradient descent again, from the best members
  of the population and fresh random starts (memetic refinement);
* the other iterations: one NSGA-II generation (``ask`` / evaluate / ``tell``), plus
  a local step: every neighbour on the grid of the incumbent best, once per new best.

Each evaluation of the cost (exact, or relaxed with its gradient) counts against
``budget_evals``; the last batch is cut to the budget so the stopping point, and so
the result, depends on the seed only. ``budget_seconds`` stops on wall-clock time,
between iterations (the first one always runs: it holds the jit compilation, which
:mod:`symbiote.search.budget` plans for); ``gradient_in_budget=False`` leaves the
gradient phases out when a time budget cannot pay for their compilation (a budget
decision like ``budget_seconds``, so not part of the fingerprint: a resumed run may
decide otherwise).
The state is checkpointed (atomically) at least every ``checkpoint_every_s``;
``resume=True`` reloads it and continues to the same end as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from symbiote.errors import SearchError
from symbiote.search import checkpoint as ckpt
from symbiote.search import evolution as evo
from symbiote.search.gradient import GradientSettings, gradient_phase_for
from symbiote.search.problem import Evaluator, Problem, evaluator_for


@dataclass(frozen=True)
class SearchSettings:
    seed: int = 0
    budget_evals: int | None = None
    budget_seconds: float | None = None
    population: int = 48
    grad_starts: int = 8
    grad_every: int = 8
    gradient: GradientSettings = GradientSettings()
    local_search: bool = True
    use_gradient: bool = True
    gradient_in_budget: bool = True      # False: the time budget cannot pay for the gradient's compile
    checkpoint_every_s: float = 30.0
    archive_size: int = 256

    def fingerprint(self, problem: Problem, context: Mapping[str, Any] | None = None) -> dict[str, str]:
        """A short hash per part of what determines the run (settings, genes, objectives,
        constraints, and the caller's ``context``: backend, fixed knobs, models...), so a
        mismatched resume can name what differs."""
        d = asdict(self)
        for k in ("budget_evals", "budget_seconds", "gradient_in_budget", "checkpoint_every_s"):
            d.pop(k)
        parts: dict[str, Any] = {"settings": d,
                                 "genes": [(g.name, g.values) for g in problem.space.genes],
                                 "objectives": [o.text or str(o.terms) for o in problem.objectives],
                                 "constraints": [str(c) for c in problem.constraints]}
        parts |= dict(context or {})
        return {k: hashlib.sha256(json.dumps(v, sort_keys=True, default=str).encode()).hexdigest()[:16]
                for k, v in parts.items()}


@dataclass
class SearchState:
    iteration: int = 0
    evals: int = 0
    elapsed_s: float = 0.0
    pop: evo.Population | None = None
    archive: evo.Population | None = None
    local_done: np.ndarray | None = None        # the genome whose neighbourhood was last searched
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (evals, seconds, best obj0)


@dataclass(frozen=True)
class SearchResult:
    best: np.ndarray            # int32[D]
    best_obj: np.ndarray        # f64[K] log objectives
    best_viol: float
    front: evo.Population       # feasible non-dominated designs
    history: tuple[tuple[int, float, float], ...]
    evals: int
    elapsed_s: float
    iterations: int
    archive: evo.Population | None = None   # the best designs seen, best first

    @property
    def feasible(self) -> bool:
        return self.best_viol <= 0


@dataclass(frozen=True)
class Progress:
    evals: int
    elapsed_s: float
    best: float          # best objective (first objective, not in log), inf until feasible
    front_size: int
    iteration: int


def _merge_archive(arch: evo.Population | None, genomes, obj, viol, size: int) -> evo.Population:
    new = evo.Population(genomes, obj, viol)
    if arch is None:
        arch = evo.Population(genomes[:0], obj[:0], viol[:0])
    merged = evo.tell(arch, new.genomes, new.obj, new.viol, size)
    return merged


class Search:
    def __init__(self, problem: Problem, settings: SearchSettings = SearchSettings(),
                 evaluator: Evaluator | None = None, context: Mapping[str, Any] | None = None,
                 seeds: np.ndarray | None = None):
        if settings.budget_evals is None and settings.budget_seconds is None:
            raise SearchError("give a budget: --budget-evals N or --budget-seconds S")
        self.problem = problem
        self.settings = settings
        self.evaluator = evaluator or evaluator_for(problem)
        use = settings.use_gradient and settings.gradient_in_budget
        self.grad = gradient_phase_for(problem, settings.gradient) if use else None
        self.root = jax.random.PRNGKey(settings.seed)
        #: genomes the first population starts from (e.g. a known good design), int32[k, D]
        self.seeds = np.zeros((0, problem.space.dim), np.int32) if seeds is None else \
            np.asarray(seeds, np.int32).reshape(-1, problem.space.dim)

        self.fingerprint = settings.fingerprint(problem, context)

    # ---- budget ------------------------------------------------------------------
    def _remaining(self, st: SearchState) -> int:
        b = self.settings.budget_evals
        return (b - st.evals) if b is not None else 1 << 60

    def _out_of_time(self, st: SearchState, t0: float) -> bool:
        b = self.settings.budget_seconds
        return b is not None and st.elapsed_s + (time.perf_counter() - t0) >= b

    def _evaluate(self, st: SearchState, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        genomes = genomes[: max(0, self._remaining(st))]
        obj, viol = self.evaluator(genomes)
        st.evals += len(genomes)
        st.archive = _merge_archive(st.archive, genomes, obj, viol, self.settings.archive_size)
        return genomes, obj, viol

    def _gradient(self, st: SearchState, key, starts: np.ndarray) -> np.ndarray:
        if self.grad is None:
            return starts[:0]
        cost = self.grad.evals_per_start
        n = min(len(starts), max(0, self._remaining(st) // (cost + 1)))
        if n == 0:
            return starts[:0]
        st.evals += n * cost
        return self.grad(key, starts[:n])

    def _categorical_cover(self, starts: np.ndarray) -> np.ndarray:
        """Cycle every categorical knob through all its choices across the starts, but
        the first (the template's default design, kept as it is)."""
        starts = starts.copy()
        for j, g in enumerate(self.problem.space.genes):
            if g.categorical:
                starts[1:, j] = np.arange(len(starts) - 1) % g.size
        return starts

    # ---- one iteration -----------------------------------------------------------------
    def step(self, st: SearchState) -> None:
        s = self.settings
        space = self.problem.space
        key = jax.random.fold_in(self.root, st.iteration)
        k_init, k_grad, k_ask = jax.random.split(key, 3)
        if st.iteration == 0:
            starts = np.concatenate([space.default()[None], space.sample_anchored(k_init, s.grad_starts - 1)])
            starts = self._categorical_cover(starts)
            refined = self._gradient(st, k_grad, starts)
            first = evo.init(jax.random.fold_in(k_init, 1), space, s.population,
                             np.concatenate([self.seeds, refined, space.default()[None]]))
            g, o, v = self._evaluate(st, first)
            # ranked, so the next gradient phase refines the best members
            st.pop = evo.tell(evo.Population(g[:0], o[:0], v[:0]), g, o, v, s.population) if len(g) else None
        elif st.pop is None or len(st.pop.genomes) == 0:
            g, o, v = self._evaluate(st, space.sample_anchored(k_init, s.population))
            st.pop = evo.tell(evo.Population(g[:0], o[:0], v[:0]), g, o, v, s.population)
        elif self.grad is not None and st.iteration % s.grad_every == 0:
            half = s.grad_starts // 2
            top = st.pop.genomes[:half]
            starts = np.concatenate([top, space.sample_anchored(k_init, s.grad_starts - len(top))])
            refined = self._gradient(st, k_grad, starts)
            g, o, v = self._evaluate(st, refined)
            st.pop = evo.tell(st.pop, g, o, v, s.population)
        else:
            children = evo.ask(k_ask, st.pop, space, s.population)
            best = self.best_genome(st)
            if s.local_search and best is not None and (st.local_done is None
                                                        or not np.array_equal(best, st.local_done)):
                st.local_done = best.copy()
                children = np.concatenate([evo.neighbours(best, space), children])
            g, o, v = self._evaluate(st, children)
            st.pop = evo.tell(st.pop, g, o, v, s.population)
        st.iteration += 1

    def best_genome(self, st: SearchState) -> np.ndarray | None:
        if st.archive is None or len(st.archive.genomes) == 0:
            return None
        i = evo.select(st.archive.obj[:, :1], st.archive.viol, 1)[0]
        return st.archive.genomes[i]

    def _best_value(self, st: SearchState) -> float:
        if st.archive is None or len(st.archive.genomes) == 0:
            return float("inf")
        i = evo.select(st.archive.obj[:, :1], st.archive.viol, 1)[0]
        return float(np.exp(st.archive.obj[i, 0])) if st.archive.viol[i] <= 0 else float("inf")

    # ---- checkpoints ----------------------------------------------------------------
    def save(self, path: Path, st: SearchState) -> None:
        header = {"iteration": st.iteration, "evals": st.evals, "elapsed_s": st.elapsed_s,
                  "fingerprint": self.fingerprint, "history": st.history}
        arrays = {}
        for name, p in (("pop", st.pop), ("arch", st.archive)):
            if p is not None:
                arrays |= {f"{name}_g": p.genomes, f"{name}_o": p.obj, f"{name}_v": p.viol}
        if st.local_done is not None:
            arrays["local_done"] = st.local_done
        ckpt.save(path, header, arrays)

    def load(self, path: Path) -> SearchState:
        header, a = ckpt.load(path)
        saved = header.get("fingerprint")
        if saved != self.fingerprint:
            if isinstance(saved, dict):
                diff = sorted(k for k in set(saved) | set(self.fingerprint) if saved.get(k) != self.fingerprint.get(k))
            else:
                diff = ["format"]
            raise SearchError(f"{path}: the checkpoint is from a search with other {', '.join(diff)}; "
                              "use another output folder or drop --resume")
        pop = evo.Population(a["pop_g"], a["pop_o"], a["pop_v"]) if "pop_g" in a else None
        arch = evo.Population(a["arch_g"], a["arch_o"], a["arch_v"]) if "arch_g" in a else None
        return SearchState(header["iteration"], header["evals"], header["elapsed_s"], pop, arch,
                           a.get("local_done"), [tuple(h) for h in header["history"]])

    # ---- the loop ---------------------------------------------------------------
    def run(self, checkpoint: str | Path | None = None, resume: bool = False,
            progress: Callable[[Progress], None] | None = None,
            stop_after: int | None = None) -> SearchResult:
        """Run to the budget. ``stop_after`` (tests) raises KeyboardInterrupt after that
        many iterations, as a kill would, once the checkpoint is written."""
        path = Path(checkpoint) if checkpoint else None
        st = self.load(path) if (resume and path is not None) else SearchState()
        t0 = time.perf_counter()
        last_ckpt = t0
        done_iters = 0
        # with a time budget the first iteration always runs, so there is a result to return
        while self._remaining(st) > 0 and (st.iteration == 0 or not self._out_of_time(st, t0)):
            self.step(st)
            now = time.perf_counter()
            st.history.append((st.evals, round(st.elapsed_s + now - t0, 4), self._best_value(st)))
            done_iters += 1
            if progress:
                front = 0 if st.archive is None else int(evo.pareto_mask(st.archive.obj, st.archive.viol).sum())
                progress(Progress(st.evals, st.elapsed_s + now - t0, self._best_value(st), front, st.iteration))
            if path is not None and (now - last_ckpt >= self.settings.checkpoint_every_s or stop_after):
                st_saved = SearchState(**{**st.__dict__, "elapsed_s": st.elapsed_s + now - t0})
                self.save(path, st_saved)
                last_ckpt = now
            if stop_after is not None and done_iters >= stop_after:
                raise KeyboardInterrupt
        st.elapsed_s += time.perf_counter() - t0
        if path is not None:
            self.save(path, st)
        return self.result(st)

    def result(self, st: SearchState) -> SearchResult:
        arch = st.archive
        if arch is None or len(arch.genomes) == 0:
            raise SearchError("the budget ended before any design was evaluated; raise --budget-evals")
        i = evo.select(arch.obj[:, :1], arch.viol, 1)[0]
        front = evo.pareto_mask(arch.obj, arch.viol)
        order = np.lexsort(arch.obj[front].T[::-1])
        fr = evo.Population(arch.genomes[front][order], arch.obj[front][order], arch.viol[front][order])
        top = evo.select(arch.obj[:, :1], arch.viol, len(arch.genomes))
        ranked = evo.Population(arch.genomes[top], arch.obj[top], arch.viol[top])
        return SearchResult(arch.genomes[i].copy(), arch.obj[i].copy(), float(arch.viol[i]), fr,
                            tuple(st.history), st.evals, st.elapsed_s, st.iteration, ranked)
