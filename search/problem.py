"""A search problem: a genome space, a cost function, objectives and constraints.

``evaluate(values f32[D]) -> {metric: f32[N]}`` prices one legal design for each of
the N networks (pure JAX, vmapped by the search); ``relaxed`` is its smooth twin
used by the gradient phase. Scores are unit-free:

* objective k = mean over networks of log(objective_k) = log of the geometric mean;
* violation = sum over constraints and networks of the constraint's violation.

:class:`Evaluator` jit-compiles the batched scorer once per batch size (batches are
padded to powers of two) and counts evaluations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import weakref
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.search.genome import GenomeSpace
from symbiote.search.objectives import Constraint, Objective, derive, total_violation

Metrics = Mapping[str, jnp.ndarray]


@dataclass(frozen=True, eq=False)
class Problem:
    space: GenomeSpace
    evaluate: Callable[[jnp.ndarray], Metrics]
    relaxed: Callable[[jnp.ndarray], Metrics]
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    networks: tuple[str, ...] = ("model",)

    def score_metrics(self, m: Metrics) -> tuple[jnp.ndarray, jnp.ndarray]:
        m = derive(m)
        obj = jnp.stack([jnp.mean(o.log_value(m)) for o in self.objectives])
        viol = jnp.sum(total_violation(self.constraints, m))
        return obj, viol

    def score(self, values: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        return self.score_metrics(self.evaluate(values))

    def relaxed_score(self, values: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        return self.score_metrics(self.relaxed(values))


#: batch sizes the evaluator compiles for (a batch is padded to the next one)
BUCKETS = (64, 512, 4096)


def _bucket(n: int) -> int:
    for b in BUCKETS:
        if n <= b:
            return b
    return BUCKETS[-1]


class Evaluator:
    """Batched exact scoring of legal genomes (int32[P, D]) with an evaluation count."""

    def __init__(self, problem: Problem, chunk: int = BUCKETS[-1]):
        self.problem = problem
        self.chunk = chunk
        space = problem.space

        def one(idx):
            return problem.score(space.decode(idx))

        self._fn = jax.jit(jax.vmap(one))
        self._metrics = jax.jit(jax.vmap(lambda idx: derive(problem.evaluate(space.decode(idx)))))

    def __call__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(idx, np.int32)
        n = idx.shape[0]
        objs, viols = [], []
        for s in range(0, n, self.chunk):
            part = idx[s: s + self.chunk]
            m = part.shape[0]
            pad = _bucket(m) - m
            if pad:
                part = np.concatenate([part, np.repeat(part[-1:], pad, 0)])
            o, v = self._fn(jnp.asarray(part))
            objs.append(np.asarray(o)[:m])
            viols.append(np.asarray(v)[:m])
        if not objs:
            k = len(self.problem.objectives)
            return np.zeros((0, k), np.float32), np.zeros((0,), np.float32)
        obj = np.concatenate(objs).astype(np.float64)
        viol = np.concatenate(viols).astype(np.float64)
        bad = ~np.isfinite(obj).all(axis=1) | ~np.isfinite(viol)
        obj[bad] = np.inf
        viol[bad] = np.inf
        return obj, viol

    def metrics(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Full metrics of a few genomes: {name: f64[P, N]}."""
        idx = np.asarray(idx, np.int32).reshape(-1, self.problem.space.dim)
        m = self._metrics(jnp.asarray(idx))
        return {k: np.asarray(v, np.float64) for k, v in m.items()}


_EVALUATORS: "weakref.WeakKeyDictionary[Problem, Evaluator]" = weakref.WeakKeyDictionary()


def evaluator_for(problem: Problem) -> Evaluator:
    """The (cached, so compiled once) evaluator of a problem."""
    ev = _EVALUATORS.get(problem)
    if ev is None:
        ev = _EVALUATORS[problem] = Evaluator(problem)
    return ev
