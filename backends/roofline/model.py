"""The roofline cost model (GPU/CPU-like), pure jnp over the layer axis.

A MAC layer is ``groups * repeat`` GEMMs of ``M = N*P*Q`` rows, ``K = window`` reduction and
``N = filters`` columns. The output is cut into ``tile_m x tile_n`` tiles; ``units`` units
(SMs, cores) each run one tile at a time, so the layer runs ``waves = ceil(tiles / units)``
waves of ``ceil(K * tile_m * tile_n / macs_per_cycle)`` cycles (tile and wave quantization).
A layer whose reduction or output width is not a multiple of ``align`` elements runs at
``misaligned_rate`` of the peak (no tensor-core / vector fast path): together with the wave
quantization this is what makes latency non-monotonic in layer width ("latency
hysteresis"). Peak MACs/cycle scale with precision: ``16 / bits`` times the 16-bit rate
below 16 bits, ``fp32_rate`` of it above.

Memory: operands that do not fit in the cache are refetched once per tile column
(``ceil(N / tile_n)``), the part that fits is read once; latency is
``max(compute, bytes / bandwidth) + launch_cycles``. Vector layers run on
``units * vector_lanes`` lanes; memory layers are pure traffic.

Energy: per-action tables (tables.py) -- MACs, cache accesses (capacity-scaled SRAM energy
per bit, each operand byte read once from cache per use of a tile), DRAM bits, leakage.
Area: ``units * macs_per_cycle`` PEs at 16 bits plus the cache.

Relaxation: ceil -> ``1 + smooth_relu(x - 1)``, max -> 8-norm (see the systolic model); the
alignment test is a property of the workload, constant in the hardware knobs.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from symbiote.backends import tables
from symbiote.backends.metrics import Metrics
from symbiote.backends.systolic.model import _overflow, smooth_max, soft_ceil
from symbiote.ir.workload import FREE, MAC, MEMORY, VECTOR, Workload


def _aligned(x, align):
    return jnp.abs(x - jnp.round(x / align) * align) < 0.5


def roofline_metrics(hw: Mapping[str, jax.Array], wl: Workload, *, relaxed: bool = False) -> Metrics:
    ceil = soft_ceil if relaxed else jnp.ceil
    smax = smooth_max if relaxed else jnp.maximum
    tm, tn, units = hw["tile_m"], hw["tile_n"], hw["units"]
    clock_ghz = hw["clock_ghz"]
    inv_bw = clock_ghz / hw["dram_gbps"]
    kind = wl.kind
    is_mac, is_vec = kind == MAC, kind == VECTOR
    is_moved = is_vec | (kind == MEMORY)
    wb, ab = wl.weight_bits, wl.act_bits
    bits = jnp.maximum(wb, ab)
    rate = hw["macs_per_cycle"] * jnp.where(bits <= 16.0, 16.0 / jnp.maximum(bits, 4.0), hw["fp32_rate"])
    g = wl.groups
    gemms = g * wl.repeat
    m = wl.n * wl.p * wl.q
    kred = wl.c / g * wl.r * wl.s
    nf = wl.k / g
    ok = _aligned(kred, hw["align"]) & _aligned(nf, hw["align"])
    rate = rate * jnp.where(ok, 1.0, hw["misaligned_rate"])
    tiles = gemms * ceil(m / tm) * ceil(nf / tn)
    waves = ceil(tiles / units)
    mac_compute = waves * ceil(kred * tm * tn / rate)
    a_bytes = wl.in_elems * ab / 8.0 * (1.0 - wl.input_on_chip)
    b_bytes = wl.weight_elems * wb / 8.0
    o_bytes = wl.out_elems * ab / 8.0 * (1.0 - wl.output_on_chip)
    cache = hw["cache_mb"] * 1024.0 * 1024.0
    refetch = 1.0 + (ceil(nf / tn) - 1.0) * _overflow(a_bytes + b_bytes, cache)
    mac_bytes = a_bytes * refetch + b_bytes + o_bytes
    lanes = units * hw["vector_lanes"]
    vec_compute = ceil(wl.out_elems * wl.vec_ops / lanes)
    vec_bytes = (wl.in_elems * (1.0 - wl.input_on_chip) + wl.out_elems * (1.0 - wl.output_on_chip)) * ab / 8.0 + b_bytes
    compute = jnp.where(is_mac, mac_compute, jnp.where(is_vec, vec_compute, 0.0))
    dram = jnp.where(is_mac, mac_bytes, jnp.where(is_moved, vec_bytes, 0.0))
    latency = jnp.where(kind == FREE, 0.0, smax(compute, dram * inv_bw) + hw["launch_cycles"])
    clock_hz = clock_ghz * 1e9
    latency_s = latency / clock_hz
    macs = wl.macs
    e_cache = tables.sram_pj_per_bit(hw["cache_mb"] * 1024.0)
    # each tile reads its A panel (tile_m x K) and B panel (K x tile_n) from the cache
    cache_bits = jnp.where(is_mac, tiles * kred * (tm * ab + tn * wb) + o_bytes * 8.0, (wl.in_elems + wl.out_elems) * ab)
    area = units * hw["macs_per_cycle"] * tables.pe_area_mm2(16.0, 16.0) + tables.sram_area_mm2(hw["cache_mb"] * 1024.0) \
        + units * hw["vector_lanes"] * tables.pe_area_mm2(16.0, 16.0)
    peak = units * hw["macs_per_cycle"]
    return Metrics(
        latency_cycles=latency,
        compute_cycles=compute,
        latency_s=latency_s,
        energy_mac_pj=jnp.where(is_mac, macs * (1.0 - wl.sparsity) * tables.mac_pj(wb, ab), 0.0)
        + jnp.where(is_vec, wl.out_elems * wl.vec_ops * tables.mac_pj(ab, ab), 0.0),
        energy_sram_pj=jnp.where(kind == FREE, 0.0, cache_bits * e_cache),
        energy_dram_pj=dram * 8.0 * tables.dram_pj_per_bit(),
        energy_noc_pj=jnp.zeros_like(latency),
        energy_leakage_pj=tables.leakage_pj(area, latency_s),
        macs=macs,
        utilization=macs / jnp.maximum(peak * latency, 1e-30),
        area_mm2=area,
        peak_macs_per_cycle=peak,
        clock_hz=clock_hz,
    )


def cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    return roofline_metrics(hw, wl)


def relaxed_cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    return roofline_metrics(hw, wl, relaxed=True)
