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

Energy: per-action tables (tables.py) -- MACs, cache accesses (CACTI's SRAM energy per bit
at the cache's capacity and node, :mod:`symbiote.backends.memories`; each operand byte read
once from cache per use of a tile), DRAM bits, leakage (the logic's per mm^2, the cache's
from CACTI). The cache's area is CACTI's too.
Area: ``units * (macs_per_cycle + vector_lanes)`` PEs of the ``datapath`` format plus the
cache. The process node (knob ``node_nm``, :mod:`symbiote.backends.technology`) scales the MAC
and vector energy (x ENERGY_SCALE), the PE area (x AREA_SCALE) and the leakage per mm^2 (x
ENERGY_SCALE / AREA_SCALE); the DRAM kind (knob ``dram``) sets the energy per DRAM bit (the
default ``ddr3`` keeps today's figure; an A100-like design is ``dram=hbm2e``).
The ``datapath`` knob (:mod:`symbiote.backends.datapath`, default fp16, the A100's
dense tensor-core format) also sets the bits of rows whose precision was not given and, on
a floating-point datapath, the MAC energy (FP multiply + add); the rate rule above keeps
the tensor cores' faster narrow formats.

Sparsity (workload columns ``sparsity`` and ``sparsity_24``): unstructured sparsity only
gates MAC energy, x ``(1 - sparsity)``; no cycle or byte changes. 2:4 structured rows
(``sparsity_24 = 1``) on a design with ``sparse_24 = yes`` (NVIDIA's Sparse Tensor Cores:
2x math throughput on 2:4 weights, NVIDIA A100 Tensor Core GPU Architecture whitepaper,
2020) (a) store the weights compressed: ``0.5 * (weight_bits + 2)`` bits per weight (the
kept half plus a 2-bit index per kept value; x ``0.5 + 1/weight_bits``) in the weight
operand's DRAM bytes and cache reads (B panels), and (b) run the reduction halved: compute
cycles ``waves * ceil(K/2 * tile_m * tile_n / rate)``; the alignment test, activation and
output traffic are unchanged. ``sparse_24 = yes`` makes every MAC unit
``SPARSE_24_PE_AREA_OVERHEAD`` (10%) larger (an assumption, see the systolic model); on
``no`` a 2:4 row costs as unstructured sparsity. ``macs``/``utilization`` count
dense-equivalent MACs.

Relaxation: ceil -> ``1 + smooth_relu(x - 1)``, max -> 8-norm (see the systolic model); the
alignment test is a property of the workload, constant in the hardware knobs;
``sparse_24`` logits weigh the 2:4 effects by the probability of "yes".
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from symbiote.backends import datapath, memories, tables, technology
from symbiote.backends.metrics import Metrics
from symbiote.backends.common import smooth_max
from symbiote.backends.systolic.model import SPARSE_24_PE_AREA_OVERHEAD, soft_ceil, sparse_24_bits, sparse_24_on
from symbiote.backends.systolic.tiling import overflow
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
    dp = datapath.resolve(hw)
    tech = technology.resolve(hw)                           # node and DRAM kind (technology.py)
    wb = datapath.row_bits(dp, wl.bits_given, wl.weight_bits)
    ab = datapath.row_bits(dp, wl.bits_given, wl.act_bits)
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
    sp24 = sparse_24_on(hw) * wl.sparsity_24                # 2:4 rows on a 2:4 datapath (module doc)
    wbs = sparse_24_bits(wb, sp24)                          # stored bits per weight
    mac_compute = waves * ceil(kred * (1.0 - 0.5 * sp24) * tm * tn / rate)
    a_bytes = wl.in_elems * ab / 8.0 * (1.0 - wl.input_on_chip)
    b_bytes = wl.weight_elems * wbs / 8.0
    o_bytes = wl.out_elems * ab / 8.0 * (1.0 - wl.output_on_chip)
    cache = hw["cache_mb"] * 1024.0 * 1024.0
    refetch = 1.0 + (ceil(nf / tn) - 1.0) * overflow(a_bytes + b_bytes, cache)
    mac_bytes = a_bytes * refetch + b_bytes + o_bytes
    lanes = units * hw["vector_lanes"]
    vec_compute = ceil(wl.out_elems * wl.vec_ops / lanes)
    vec_bytes = (wl.in_elems * (1.0 - wl.input_on_chip) + wl.out_elems * (1.0 - wl.output_on_chip)) * ab / 8.0 + b_bytes
    compute = jnp.where(is_mac, mac_compute, jnp.where(is_vec, vec_compute, 0.0))
    dram = jnp.where(is_mac, mac_bytes, jnp.where(is_moved, vec_bytes, 0.0))
    free = kind == FREE  # costs nothing; kept out of smax, whose gradient at (0, 0) is not finite
    latency = jnp.where(free, 0.0, smax(jnp.where(free, 1.0, compute), jnp.where(free, 1.0, dram * inv_bw))
                        + hw["launch_cycles"])
    clock_hz = clock_ghz * 1e9
    latency_s = latency / clock_hz
    macs = wl.macs
    nw = technology.node_weights(hw)                        # cache costs by node: CACTI (memories.py)
    cache_kb = hw["cache_mb"] * 1024.0
    e_cache = memories.sram_pj_per_bit(cache_kb, nw)
    # each tile reads its A panel (tile_m x K) and B panel (K x tile_n) from the cache
    cache_bits = jnp.where(is_mac, tiles * kred * (tm * ab + tn * wbs) + o_bytes * 8.0, (wl.in_elems + wl.out_elems) * ab)
    pe = dp.pe_area_mm2 * tech.area_scale
    area = units * hw["macs_per_cycle"] * pe * (1.0 + SPARSE_24_PE_AREA_OVERHEAD * sparse_24_on(hw)) \
        + memories.sram_area_mm2(cache_kb, nw) + units * hw["vector_lanes"] * pe
    peak = units * hw["macs_per_cycle"]
    return Metrics(
        latency_cycles=latency,
        compute_cycles=compute,
        latency_s=latency_s,
        energy_mac_pj=(jnp.where(is_mac, macs * (1.0 - wl.sparsity) * datapath.mac_pj(dp, wb, ab), 0.0)
                       + jnp.where(is_vec, wl.out_elems * wl.vec_ops * datapath.mac_pj(dp, ab, ab), 0.0))
        * tech.energy_scale,
        energy_sram_pj=jnp.where(kind == FREE, 0.0, cache_bits * e_cache),
        energy_dram_pj=dram * 8.0 * tech.dram_pj_per_bit,
        energy_noc_pj=jnp.zeros_like(latency),
        energy_leakage_pj=tables.leakage_pj(area - memories.sram_area_mm2(cache_kb, nw), latency_s, tech.leakage_mw_per_mm2)
        + memories.leakage_pj(memories.sram_leakage_mw(cache_kb, nw), latency_s),
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
