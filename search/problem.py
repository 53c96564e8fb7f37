"""A search problem: a genome space, a cost function, objectives and constraints.

``evaluate(values f32[D]) -> {metric: f32[N]}`` prices one legal design for each of
the N networks (pure JAX, vmapped by the search); ``relaxed`` is its smooth twin
used by the gradient phase. Scores are unit-free:

* objective k = mean over networks of log(objective_k) = log of the geometric mean; with
  network ``weights`` (the phases of a mix, :class:`symbiote.search.phases.PhaseMix`), the
  weighted mean (:func:`log_mean`): the log of ``prod(obj_i ** (w_i / sum w))``;
* violation = sum over constraints and networks of the constraint's violation.

:class:`Evaluator` jit-compiles one batched function per problem, for one batch size
(:data:`BATCH`: smaller batches are padded, larger ones cut into batches), that gives
the scores and the metrics of every network, so a run compiles the exact cost once
(:mod:`symbiote.search.budget` counts on it); :class:`NetworkEvaluator` reads one
network's scores from it, for the single-network searches of a multi-model run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    #: each network's weight in the geometric mean (None: equal weights)
    weights: tuple[float, ...] | None = None

    def network_scores(self, m: Metrics) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Per network: log objectives f32[K, N] and total constraint violation f32[N]."""
        m = derive(m)
        return jnp.stack([o.log_value(m) for o in self.objectives]), total_violation(self.constraints, m)

    def score_metrics(self, m: Metrics) -> tuple[jnp.ndarray, jnp.ndarray]:
        obj, viol = self.network_scores(m)
        return log_mean(obj, self.weights), jnp.sum(viol)

    def score(self, values: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        return self.score_metrics(self.evaluate(values))

    def relaxed_score(self, values: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        return self.score_metrics(self.relaxed(values))

    def evaluator(self) -> "Evaluator":
        """The problem's batched exact evaluator, owned by the problem: built on first use,
        so a run compiles it once (no module-level cache)."""
        ev = self.__dict__.get("_evaluator")
        if ev is None:
            ev = Evaluator(self)
            object.__setattr__(self, "_evaluator", ev)
        return ev


def log_mean(log_obj, weights: tuple[float, ...] | None):
    """The log of the (weighted) geometric mean over networks (the last axis) of objectives
    given as logs: ``sum_i w_i log_obj_i / sum w``; equal weights without ``weights`` (JAX or
    numpy arrays alike)."""
    if weights is None:
        return log_obj.mean(axis=-1)
    w = np.asarray(weights, np.float64)
    if w.shape != (log_obj.shape[-1],):
        raise ValueError(f"{len(w)} network weights for {log_obj.shape[-1]} networks")
    return (log_obj * (w / w.sum()).astype(log_obj.dtype)).sum(axis=-1)


#: the one batch size the evaluator compiles for: a compile costs seconds (resnet18: ~4 s
#: here), a padded row microseconds
BATCH = 512


def _finite(obj: np.ndarray, viol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores as float64, a non-finite design marked infinitely bad."""
    obj, viol = obj.astype(np.float64), viol.astype(np.float64)
    bad = ~np.isfinite(obj).reshape(len(obj), -1).all(axis=1) | ~np.isfinite(viol).reshape(len(viol), -1).all(axis=1)
    obj[bad] = np.inf
    viol[bad] = np.inf
    return obj, viol


class Evaluator:
    """Batched exact scoring of legal genomes (int32[P, D])."""

    def __init__(self, problem: Problem, batch: int = BATCH):
        self.problem = problem
        self.batch = batch
        space = problem.space

        def one(idx):
            m = derive(problem.evaluate(space.decode(idx)))
            obj, viol = problem.network_scores(m)
            return obj, viol, m

        self._fn = jax.jit(jax.vmap(one))

    def _run(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Per-network log objectives f32[P, K, N], violations f32[P, N] and metrics {name: f32[P, N]}."""
        idx = np.asarray(idx, np.int32).reshape(-1, self.problem.space.dim)
        n = idx.shape[0]
        parts = []
        for s in range(0, n, self.batch):
            part = idx[s: s + self.batch]
            m = part.shape[0]
            if m < self.batch:
                part = np.concatenate([part, np.repeat(part[-1:], self.batch - m, 0)])
            o, v, mm = self._fn(jnp.asarray(part))
            parts.append((np.asarray(o)[:m], np.asarray(v)[:m], {k: np.asarray(x)[:m] for k, x in mm.items()}))
        if not parts:
            k, nn = len(self.problem.objectives), len(self.problem.networks)
            return np.zeros((0, k, nn), np.float32), np.zeros((0, nn), np.float32), {}
        obj = np.concatenate([p[0] for p in parts])
        viol = np.concatenate([p[1] for p in parts])
        metrics = {k: np.concatenate([p[2][k] for p in parts]) for k in parts[0][2]}
        return obj, viol, metrics

    def network_scores(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per network: log objectives f64[P, K, N] and violations f64[P, N] (inf: not finite)."""
        obj, viol, _ = self._run(idx)
        return _finite(obj, viol)

    def __call__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log objectives f64[P, K] (mean over networks: the log geomean, weighted by the
        problem's ``weights``) and total violation f64[P]."""
        obj, viol, _ = self._run(idx)
        return _finite(log_mean(obj.astype(np.float64), self.problem.weights), viol.astype(np.float64).sum(axis=-1))

    def metrics(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Full metrics of a few genomes: {name: f64[P, N]}."""
        return {k: v.astype(np.float64) for k, v in self._run(idx)[2].items()}


class NetworkEvaluator:
    """A sub-problem scored through the joint problem's evaluator (no compile of its own):
    a genome of the sub-problem is written into the joint genome at ``positions`` (the other
    genes stay at ``fill``). With ``i``, network ``i``'s objectives and violation are read
    back (one network alone); with ``i=None``, every network's, as the joint problem scores
    them (the hardware-only search: hardware genes free, the models as given)."""

    def __init__(self, joint: Evaluator, i: int | None, positions: np.ndarray, fill: np.ndarray):
        self.joint, self.i = joint, i
        self.positions = np.asarray(positions, np.int64)
        self.fill = np.asarray(fill, np.int32)

    def embed(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int32).reshape(-1, len(self.positions))
        out = np.repeat(self.fill[None], len(idx), 0)
        out[:, self.positions] = idx
        return out

    def __call__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.i is None:
            return self.joint(self.embed(idx))
        obj, viol = self.joint.network_scores(self.embed(idx))
        return obj[:, :, self.i], viol[:, self.i]

    def metrics(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        m = self.joint.metrics(self.embed(idx))
        return m if self.i is None else {k: v[:, self.i: self.i + 1] for k, v in m.items()}


def evaluator_for(problem: Problem) -> Evaluator:
    """The problem's own evaluator, built (and compiled) on first use."""
    return problem.evaluator()
