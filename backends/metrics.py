"""Metrics: what a template's ``cost(hw, workload)`` returns (a JAX pytree).

Per-layer arrays (last axis = layers; ``vmap`` over designs adds leading axes):
``latency_cycles`` (with memory stalls and fill/drain), ``compute_cycles`` (no memory
stall: the figure compared with SCALE-Sim), ``latency_s``, the energy split
``energy_mac_pj`` (MAC and vector ALU operations), ``energy_sram_pj`` (on-chip buffers),
``energy_dram_pj``, ``energy_noc_pj`` (PE-to-PE forwarding / on-chip network),
``energy_leakage_pj``, ``macs`` and ``utilization`` (MACs over peak MACs in the layer's
latency). Per design: ``area_mm2``, ``peak_macs_per_cycle``, ``clock_hz``.

Totals are properties: ``total_latency_cycles``, ``total_latency_s``, ``total_energy_pj``,
``edp`` (pJ x s), ``total_utilization``; ``totals()`` gives them as a dict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

ENERGY_FIELDS = ("energy_mac_pj", "energy_sram_pj", "energy_dram_pj", "energy_noc_pj", "energy_leakage_pj")


@dataclass(frozen=True)
class Metrics:
    latency_cycles: jax.Array
    compute_cycles: jax.Array
    latency_s: jax.Array
    energy_mac_pj: jax.Array
    energy_sram_pj: jax.Array
    energy_dram_pj: jax.Array
    energy_noc_pj: jax.Array
    energy_leakage_pj: jax.Array
    macs: jax.Array
    utilization: jax.Array
    area_mm2: jax.Array
    peak_macs_per_cycle: jax.Array
    clock_hz: jax.Array

    # ------------------------------------------------------------------ per layer
    @property
    def energy_pj(self) -> jax.Array:
        return self.energy_mac_pj + self.energy_sram_pj + self.energy_dram_pj + self.energy_noc_pj + self.energy_leakage_pj

    # ------------------------------------------------------------------ totals
    @property
    def total_latency_cycles(self) -> jax.Array:
        return jnp.sum(self.latency_cycles, axis=-1)

    @property
    def total_compute_cycles(self) -> jax.Array:
        return jnp.sum(self.compute_cycles, axis=-1)

    @property
    def total_latency_s(self) -> jax.Array:
        return jnp.sum(self.latency_s, axis=-1)

    @property
    def total_energy_pj(self) -> jax.Array:
        return jnp.sum(self.energy_pj, axis=-1)

    @property
    def edp(self) -> jax.Array:
        """Energy-delay product in pJ x s."""
        return self.total_energy_pj * self.total_latency_s

    @property
    def total_utilization(self) -> jax.Array:
        return jnp.sum(self.macs, axis=-1) / jnp.maximum(self.peak_macs_per_cycle * self.total_latency_cycles, 1e-30)

    def energy_breakdown(self) -> dict[str, jax.Array]:
        return {f.removeprefix("energy_").removesuffix("_pj"): jnp.sum(getattr(self, f), axis=-1) for f in ENERGY_FIELDS}

    def totals(self) -> dict[str, Any]:
        return {
            "latency_cycles": self.total_latency_cycles,
            "compute_cycles": self.total_compute_cycles,
            "latency_s": self.total_latency_s,
            "energy_pj": self.total_energy_pj,
            "area_mm2": self.area_mm2,
            "edp": self.edp,
            "utilization": self.total_utilization,
        }

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self)}


jax.tree_util.register_dataclass(Metrics, data_fields=[f.name for f in dataclasses.fields(Metrics)], meta_fields=[])
