"""The ``sparsity`` model knob: per MAC layer, the fraction of its weights set to zero
(magnitude pruning, unstructured) or the 2:4 structured pattern.

* **Targets**: the layers the ``sparsify`` pass can sparsify (:func:`symbiote.passes.prune.sparsifiable`)
  that the Workload prices once (not a recurrent body repeated over time) and whose weight
  no other layer shares.
* **Genes**: one categorical gene per target: ``dense`` (the model as given, the default),
  ``25%``, ``50%``, ``75%`` and, where the reduction axis is a multiple of 4 that channel
  resizing keeps so (:func:`allows_24`), ``2:4``.
* **Cost**: the Workload's ``sparsity`` (fraction of zero weights) and ``sparsity_24``
  (2:4 structured) columns of the target rows; what they cost is each template's rule (the
  systolic and roofline templates: zero weights gate the multiplier's energy; 2:4 rows on a
  ``sparse_24 = yes`` design also store compressed weights and skip half the reduction).
* **Proxy**: magnitude pruning removes a measured share of each layer's weight energy,
  ``e_l = ||w - w_pruned||^2 / ||w||^2`` (computed from the weights for every option); the
  fidelity loss is ``coef * sum_l e_l``, ``coef`` fitted to one onnxruntime probe on the
  calibration samples (every target at 50%) times the calibration margin, as the width term is
  (without samples: the prior :data:`PRIOR_COEF`, ``1 - e/2`` for a random perturbation).
* **Pass**: ``sparsify(layers={layer: fraction | "2:4"})``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.search.knobs import Fitted, GeneSettings, Prepared, Probes, RewriteContext, categorical_genes, reset_step

#: the settings a layer may take: label -> (fraction of zero weights, 2:4 structured)
OPTIONS: dict[str, tuple[float, bool]] = {"dense": (0.0, False), "25%": (0.25, False), "50%": (0.5, False),
                                         "75%": (0.75, False), "2:4": (0.5, True)}
#: the fraction of every layer's weights the proxy's probe zeroes
PROBE = 0.5
#: the proxy's coefficient before (or without) a probe: removing a share ``e`` of a signal's
#: energy at random leaves a cosine of about ``1 - e/2``
PRIOR_COEF = 0.5


def allows_24(axis_size: int) -> bool:
    """Whether a reduction axis of this size can be 2:4 and stays so when channel resizing
    changes it: a multiple of 4 and at least 8 (a channel group of 8 or more channels moves
    in steps of 4 or 8, ``genome.width_grid``; a narrower one in steps of 1)."""
    return axis_size % 4 == 0 and axis_size >= 8


def removed_energy(w: np.ndarray, option: str, axis: int | None) -> float:
    """The share of the weight's energy (sum of squares) the option removes."""
    from symbiote.passes.prune import prune_24

    w = np.asarray(w, np.float64)
    tot = float(np.sum(w * w))
    if tot == 0.0:
        return 0.0
    frac, structured = OPTIONS[option]
    if structured:
        return float(np.sum((w - prune_24(w, axis)) ** 2)) / tot
    k = int(np.floor(frac * w.size))
    return float(np.sum(np.sort((w * w).ravel())[:k])) / tot


class Sparsity:
    name = "sparsity"
    kind = "sparsity"
    order = 1
    doc = "per MAC layer: dense, 25/50/75% of the weights zeroed by magnitude, or 2:4 structured"

    def targets(self, prep: Prepared) -> tuple[str, ...]:
        from symbiote.ir.workload import MAC
        from symbiote.passes.prune import sparsifiable, weight_of

        graph, workload = prep.graph, prep.workload
        rows = {n: i for i, n in enumerate(workload.names)}
        kind, rep = np.asarray(workload.kind), np.asarray(workload.w_repeat)
        nodes = [n for n in graph.nodes if sparsifiable(n)]
        readers: dict[str, int] = {}
        for n in nodes:
            readers[weight_of(n).name] = readers.get(weight_of(n).name, 0) + 1
        return tuple(n.name for n in nodes if n.name in rows and kind[rows[n.name]] == MAC
                     and float(rep[rows[n.name]]) == 1.0 and readers[weight_of(n).name] == 1)

    def fit(self, prep: Prepared, targets: Sequence[str], probes: Probes) -> Fitted:
        from symbiote.passes.prune import reduction_axis, weight_of
        from symbiote.search import accuracy

        graph, workload, inputs = prep.graph, prep.workload, probes.inputs
        by = {n.name: n for n in graph.nodes}
        options, energy = [], []
        for t in targets:
            node = by[t]
            w = np.asarray(weight_of(node).const)
            axis = reduction_axis(node)
            ok = [o for o in OPTIONS if not OPTIONS[o][1] or (w.ndim and allows_24(w.shape[axis]))]
            options.append(tuple(ok))
            energy.append([removed_energy(w, o, axis) for o in ok])
        width = max((len(o) for o in options), default=1)
        table = lambda rows: np.array([r + [r[-1]] * (width - len(r)) for r in rows], np.float32).reshape(-1, width)  # noqa: E731
        frac = table([[OPTIONS[o][0] for o in opts] for opts in options])
        is24 = table([[float(OPTIONS[o][1]) for o in opts] for opts in options])
        removed = table(energy)
        coef = PRIOR_COEF * accuracy.CALIBRATION_MARGIN
        if targets and inputs:
            probe = self.rewrite(graph, {t: "50%" for t in targets}, RewriteContext())
            loss = 1.0 - accuracy.compare(graph, probe, inputs).fidelity
            unit = float(sum(removed_energy(np.asarray(weight_of(by[t]).const), "50%", None) for t in targets))
            coef = max(loss, 0.0) / unit * accuracy.CALIBRATION_MARGIN if unit > 0 else 0.0
        rows = tuple(workload.names.index(t) for t in targets)
        return Fitted(self.name, tuple(targets), rows, {"fraction": frac, "is24": is24, "removed": removed,
                                                         "coef": np.float32(coef)},
                      tuple(options), tuple(0 for _ in targets))

    @staticmethod
    def _interp(table: np.ndarray, values: jax.Array) -> jax.Array:
        """Per target, the table's entry at (relaxed) option index ``values``."""
        width = table.shape[1]
        v = jnp.clip(values, 0.0, float(width - 1))
        i0 = jnp.clip(jnp.floor(v), 0, max(width - 2, 0)).astype(jnp.int32)
        i1 = jnp.minimum(i0 + 1, width - 1)
        t = jnp.asarray(table)
        rows = jnp.arange(table.shape[0])
        f = v - i0
        return t[rows, i0] * (1.0 - f) + t[rows, i1] * f

    def genes(self, fitted: Fitted, net: int, prefix: str, settings: GeneSettings) -> list[Any]:
        return categorical_genes(fitted, net, prefix, self.kind)

    def setting(self, fitted: Fitted, j: int, value: float) -> str:
        return fitted.options[j][int(round(float(value)))]

    def repair(self, x: Any, default: Any, mine: Any, space: Any) -> list[Any]:
        return reset_step(x, default, mine)

    def workload(self, wl: Any, fitted: Fitted, values: jax.Array, hw: Mapping[str, Any] | None = None) -> Any:
        import dataclasses

        if not fitted.rows:
            return wl
        rows = jnp.asarray(fitted.rows)
        return dataclasses.replace(
            wl, sparsity=jnp.asarray(wl.sparsity).at[rows].set(self._interp(fitted.tables["fraction"], values)),
            sparsity_24=jnp.asarray(wl.sparsity_24).at[rows].set(self._interp(fitted.tables["is24"], values)))

    def proxy_loss(self, fitted: Fitted, values: jax.Array) -> jax.Array:
        if not fitted.rows:
            return jnp.float32(0.0)
        return jnp.float32(fitted.tables["coef"]) * jnp.sum(self._interp(fitted.tables["removed"], values))

    def passes(self, chosen: Mapping[str, Any]) -> list[Any]:
        from symbiote.passes.prune import Sparsify

        layers = {t: ("2:4" if OPTIONS[o][1] else OPTIONS[o][0]) for t, o in chosen.items() if o != "dense"}
        return [Sparsify(layers=layers)] if layers else []

    def rewrite(self, graph: Any, chosen: Mapping[str, Any], context: RewriteContext) -> Any:
        from symbiote.passes.base import Pipeline

        steps = self.passes(chosen)
        return Pipeline(steps)(graph).graph if steps else graph


KNOB = Sparsity()
