"""Helpers shared by the templates' cost models (``systolic``, ``roofline``, ``spatial``).

* :class:`Rows`: static row selections of a :class:`~symbiote.ir.workload.Workload` by layer
  kind, gathered once per trace (numpy, static): the MAC rows and the vector / memory rows, and
  per-layer arrays assembled in workload order from the parts a model computes for each (free
  rows: 0).
* :func:`smooth_max`: the relaxed models' stand-in for ``max`` of two non-negative values, their
  8-norm (scale-free, at most ``2^(1/8)``, 9%, above the max, smooth).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from symbiote.ir.workload import FREE, MAC, MEMORY, VECTOR, Workload


def smooth_max(a, b):
    """The 8-norm of (a, b) for a, b >= 0, by repeated squaring (no exp/log: fast)."""
    m = jnp.maximum(jnp.maximum(a, b), 1e-30)
    ra, rb = a / m, b / m
    ra, rb = ra * ra, rb * rb
    ra, rb = ra * ra, rb * rb
    s = ra * ra + rb * rb
    return m * jnp.sqrt(jnp.sqrt(jnp.sqrt(s)))


class Rows:
    """Static row selections of a workload (by layer kind), gathered once per trace."""

    def __init__(self, wl: Workload) -> None:
        kinds = np.asarray(wl.kinds, np.int64)
        self.mac = np.flatnonzero(kinds == MAC)
        self.vec = np.flatnonzero((kinds == VECTOR) | (kinds == MEMORY))
        free = np.flatnonzero(kinds == FREE)
        order = np.concatenate([self.mac, self.vec, free])
        self.perm = np.argsort(order)          # position of layer i in [mac rows, vector rows, free rows]
        self.n_free = len(free)
        self.vec_alu = (kinds[self.vec] == VECTOR).astype(np.float32)
        #: static: whether any MAC row is or can become grouped (else no grouped mapping is costed)
        self.any_grouped = not wl.grouped or any(wl.grouped[i] for i in self.mac)

    def assemble(self, mac_vals, vec_vals):
        """Per-layer array in workload order from the MAC-row and vector-row parts."""
        mac_vals = jnp.broadcast_to(mac_vals, (len(self.mac),))
        vec_vals = jnp.broadcast_to(vec_vals, (len(self.vec),))
        full = jnp.concatenate([mac_vals, vec_vals, jnp.zeros((self.n_free,), jnp.float32)])
        return full[self.perm]
