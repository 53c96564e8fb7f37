"""Gradient phase: Adam (optax) on the relaxed knobs, many starts vmapped at once.

Each start is a point in the relaxed coordinates ``z`` of the genome (the log of every
numeric knob, so steps are relative changes). The loss is the scalarized log
objective of the template's smooth relaxation plus an augmented Lagrangian of the
constraint violation (Nocedal & Wright, "Numerical Optimization", ch. 17):
``f + lam * v + rho/2 * v**2`` with ``lam += rho * v`` between rounds. After each step
``z`` is projected back into the knob bounds. Categorical knobs (e.g. a dataflow) are
held fixed per start: the driver hands in starts covering every category, i.e. one
run per category. At the end the relaxed designs are snapped to the legal grid.
In Pareto mode each start minimizes its own random weighting of the objectives.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from symbiote.search.problem import Problem


@dataclass(frozen=True)
class GradientSettings:
    steps: int = 40
    rounds: int = 2           # augmented-Lagrangian multiplier updates
    lr: float = 0.08          # Adam step in log-knob units (hardware knobs)
    model_lr: float = 0.02    # Adam step for model knobs (widths, bits): they start at a good point
    lam0: float = 1.0
    rho: float = 10.0


class GradientPhase:
    def __init__(self, problem: Problem, settings: GradientSettings = GradientSettings()):
        self.problem = problem
        self.settings = settings
        space = problem.space
        lo, hi = space.lo_hi()
        train = jnp.asarray(~space.categorical, jnp.float32)
        scale = jnp.asarray([settings.lr if g.kind == "hw" else settings.model_lr for g in space.genes], jnp.float32)
        opt = optax.chain(optax.scale_by_adam(), optax.scale(-1.0))
        per_round = max(1, settings.steps // settings.rounds)

        def loss(z, w, lam, rho):
            obj, viol = problem.relaxed_score(space.from_z(z))
            f = jnp.dot(w, obj)
            return f + lam * viol + 0.5 * rho * viol ** 2, (obj, viol)

        grad = jax.grad(loss, has_aux=True)

        def merit(obj, viol, w):
            # the iterate we keep: feasibility first (exact penalty), then the objective
            m = jnp.dot(w, obj) + 1e3 * viol
            return jnp.where(jnp.isfinite(m), m, jnp.inf)

        def run_one(z0, w):
            def step(carry, _):
                z, st, lam, bz, bm = carry
                g, (obj, viol) = grad(z, w, lam, settings.rho)
                m = merit(obj, viol, w)
                better = m < bm
                bz = jnp.where(better, z, bz)
                bm = jnp.where(better, m, bm)
                g = jnp.where(jnp.isfinite(g), g, 0.0) * train
                upd, st = opt.update(g, st, z)
                z = jnp.clip(z + upd * scale, lo, hi)
                return (z, st, lam, bz, bm), None

            def rnd(carry, _):
                carry, _ = jax.lax.scan(step, carry, None, length=per_round)
                z, st, lam, bz, bm = carry
                _, (obj, viol) = loss(z, w, lam, settings.rho)
                lam = lam + settings.rho * jnp.where(jnp.isfinite(viol), viol, 0.0)
                return (z, st, lam, bz, bm), None

            init = (z0, opt.init(z0), jnp.float32(settings.lam0), z0, jnp.float32(jnp.inf))
            (z, _, lam, bz, bm), _ = jax.lax.scan(rnd, init, None, length=settings.rounds)
            _, (obj, viol) = loss(z, w, lam, settings.rho)
            return jnp.where(merit(obj, viol, w) < bm, z, bz)

        self._run = jax.jit(jax.vmap(run_one))
        # loss evaluations per start: every step, once after each round, once at the end
        self.evals_per_start = per_round * settings.rounds + settings.rounds + 1

    def __call__(self, key: jax.Array, starts: np.ndarray) -> np.ndarray:
        """Legal genomes reached from the legal ``starts`` (int32[S, D])."""
        space = self.problem.space
        k = len(self.problem.objectives)
        s = starts.shape[0]
        if k == 1:
            w = np.ones((s, 1), np.float32)
        else:
            w = np.asarray(jax.random.dirichlet(key, np.ones(k), (s,)), np.float32)
        z0 = jnp.asarray(space.to_z(starts))
        z = np.asarray(self._run(z0, jnp.asarray(w)))
        z = np.where(np.isfinite(z), z, space.to_z(starts))
        out = space.snap(z)
        cat = space.categorical
        out[:, cat] = starts[:, cat]
        return out


def gradient_phase_for(problem: Problem, settings: GradientSettings) -> GradientPhase:
    """The problem's gradient phase for ``settings``, kept by the problem (compiled once per
    problem and settings; no module-level cache)."""
    d = problem.__dict__.get("_gradient_phases")
    if d is None:
        d = {}
        object.__setattr__(problem, "_gradient_phases", d)
    if settings not in d:
        d[settings] = GradientPhase(problem, settings)
    return d[settings]
