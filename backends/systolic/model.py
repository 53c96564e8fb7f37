"""The systolic-array cost model (pure jnp, vectorized over the layer axis).

Per MAC layer (conv / GEMM / matmul / recurrent gate GEMM), ``groups * repeat`` identical
GEMMs run one after the other, each mapped as SCALE-Sim maps it (:mod:`.mapping`):

* compute cycles: ``folds * per_fold`` (SCALE-Sim's closed form, see mapping.py);
* SRAM accesses (elements), per GEMM, following the same fold structure:

  ======  ==================  ==================  =====================================
  df      ifmap reads         filter reads        ofmap writes (+ partial-sum reads)
  ======  ==================  ==================  =====================================
  os      T*Sr*col_folds      T*Sc*row_folds      Sr*Sc
  ws      T*Sr*col_folds      Sr*Sc (stationary)  T*Sc*row_folds (+ T*Sc*(row_folds-1))
  is      Sr*Sc (stationary)  T*Sr*col_folds      T*Sc*row_folds (+ T*Sc*(row_folds-1))
  ======  ==================  ==================  =====================================

* PE-to-PE forwarding: every element read at an array edge hops across the whole row or
  column (ifmap/filter streams across ``cols`` or ``rows`` PEs, partial sums down ``rows``);
  energy per hop and bit from tables.forward_pj_per_bit;
* DRAM traffic: each operand is read once when it fits in half of its SRAM (double
  buffering); the part that does not fit is refetched once per outer fold: the filter
  operand ``row_folds`` times (os); the ifmap (ws) or the filter (is) once per block of
  column folds, ``ceil(col_folds / k)`` times, where ``k`` column folds' partial sums fit
  half the ofmap SRAM together and one row fold's slice of the streamed operand fits its
  SRAM half (each slice is then reused across the block: ``for block: for row_fold: for
  col_fold in block``; else ``k = 1``, SCALE-Sim's order). Partial sums (ws/is, ``accb`` bits each): SCALE-Sim's fold
  order is ``for col_fold: for row_fold:``, so only ONE column fold's partial sums are live
  at a time, ``T * min(Sc, cols)`` accumulators per GEMM (not the whole ``T * Sc`` output):
  they are accumulated over the ``row_folds`` row folds, then drained as outputs before the
  next column fold starts. When one fold's partial sums do not fit half of the ofmap SRAM,
  either the part that does not fit spills to DRAM and back once per extra row fold, in
  every column fold (``2 * (row_folds - 1) * T*Sc*accb/8 * overflow(one fold)`` bytes per
  GEMM) or, when cheaper, ``T`` is tiled into ``ceil(one fold / (ofmap/2))`` tiles so they
  stay on chip and the stationary operand is reloaded once per extra tile if it does not
  fit its own SRAM (none of this when ``row_folds = 1``: outputs drain directly). os keeps
  its partial sums in the PEs. Every term is a non-negative addition to the compulsory
  traffic (inputs, weights and outputs moved once), which is thus a lower bound. Tensors
  marked on chip by fusion skip DRAM;
* weight prefetch (knob ``weight_prefetch``, default "no" = SCALE-Sim): with "yes" the PEs
  double-buffer the stationary operand, as TPUs do, and a ws/is GEMM takes
  ``folds * max(T, rows) + 2*rows + cols - 2`` cycles (:func:`gemm_cycles`);
* latency: ``max(compute, dram_bytes / bandwidth)`` (compute and memory overlap thanks to
  double buffering) plus the non-overlapped fill of the first fold and drain of the last:
  one fold's share of the operand and result bytes over the bandwidth.

Grouped and depthwise layers (``groups > 1``): SCALE-Sim maps each group as its own GEMM;
with ``group_mapping = best`` (the default) the compute cycles are the cheaper of that and
a packed mapping, ``gp = floor(rows / window)`` groups side by side in one block-diagonal
GEMM (``window * gp`` by ``filters * gp``: the zeros between groups are scheduled, not
stored), ``ceil(groups / gp)`` such GEMMs (a 3x3 depthwise layer packs 28 groups on 256
rows). The SRAM and DRAM terms stay those of the per-group GEMMs (the same operands, read
once). ``group_mapping = per_group`` is SCALE-Sim's mapping exactly.

Vector layers (element-wise, normalization, pooling, softmax) take
``ceil(out_elems * vec_ops / vector_width)`` cycles on the vector unit; memory layers
(reshape, transpose, concat, gather, opaque) copy ``out_elems`` through it; both overlap
with their DRAM traffic ``(in + out) * act_bytes`` (+ parameters). FREE layers cost nothing.

Sparsity (workload columns ``sparsity`` and ``sparsity_24``):

* unstructured (any ``sparsity``): zero weights only gate the multiplier: MAC energy x
  ``(1 - sparsity)``. No cycle, SRAM or DRAM figure changes (the zeros are still stored,
  moved and scheduled).
* 2:4 structured rows (``sparsity_24 = 1``) on a design with ``sparse_24 = yes``:
  (a) the weights are stored compressed, the 2 kept values of every 4 plus a 2-bit index
  per kept value: each weight costs ``0.5 * (weight_bits + 2)`` bits instead of
  ``weight_bits`` (x ``0.5 + 1/weight_bits``: 0.625 at 8 bits), in every figure of the
  weight operand -- DRAM bytes (refetches included; whether they fit the filter SRAM is
  judged at the compressed size), filter SRAM reads and PE-to-PE forwarding of the filter
  stream; (b) the array skips the zero half of the reduction:
  compute cycles are those of the mapping with ``window`` (``C/g*R*S``) halved, the 2x math
  rate NVIDIA's Sparse Tensor Cores get from 2:4 sparsity (NVIDIA A100 Tensor Core GPU
  Architecture whitepaper, 2020, "Fine-Grained Structured Sparsity"). Activation and
  output traffic, and the refetch/fold counts of the traffic model, stay those of the dense
  mapping (every activation is still read; a PE's selection mux picks the 2 of 4 it needs).
  MAC energy keeps the ``(1 - sparsity)`` gating; the muxes' energy is not modelled.
  ``macs`` and ``utilization`` count the dense-equivalent MACs, so a 2:4 row's
  utilization can reach 2 (as NVIDIA quotes dense-equivalent sparse TOPS).
  ``sparse_24 = yes`` costs area: every PE is ``SPARSE_24_PE_AREA_OVERHEAD`` (10%) larger
  for its 4:1 activation-select muxes and index register -- an assumption, not a published
  figure (at 45 nm an 8-bit 4:1 mux plus a 2-bit register is ~50-60 um^2, about 10% of the
  ~620 um^2 8-bit PE of tables.pe_area_mm2). On ``sparse_24 = no`` a 2:4 row is costed as
  unstructured sparsity.

Energy: MACs (zero weights gate the multiplier: ``(1 - sparsity)``), vector ALU ops,
SRAM accesses (per-bit energy scaled with each SRAM's capacity), DRAM bits, forwarding, and
leakage = area x time. Area: rows*cols PEs at the widest precision of the workload, the
three SRAMs, and the vector unit.

Relaxation (``relaxed=True``): ``ceil(x)`` -> ``1 + smooth_relu(x - 1)`` with
``smooth_relu(z) = (z + sqrt(z^2 + 0.25)) / 2`` (equals x for large x, >= 1, smooth, cheap); ``max(a, b)`` -> the 8-norm ``(a^8 + b^8)^(1/8)``
(scale-free, within 9% of max); ``min(a, b)`` -> ``a*b / smooth_max(a, b)``; the dataflow -> the softmax-weighted mix of the three
dataflows' metrics (logits given as the knob's last axis; a scalar index evaluates that
dataflow alone, with no gradient for it); ``sparse_24`` given as logits ("no", "yes")
scales the 2:4 effects and the area overhead by the softmax probability of "yes" (a
scalar index: that choice alone).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.backends import datapath, tables
from symbiote.backends.metrics import Metrics
from symbiote.backends.space import choice_weights
from symbiote.backends.systolic.mapping import IS, OS, WS, fold_cycles, spatio_temporal
from symbiote.ir.workload import FREE, MAC, MEMORY, VECTOR, Workload

SOFT_CEIL_TEMPERATURE = 0.5
SMOOTH_MAX_P = 8.0
#: extra PE area of a ``sparse_24 = yes`` design (assumption, see the module doc)
SPARSE_24_PE_AREA_OVERHEAD = 0.10
#: index bits stored per kept weight of a 2:4 group (which 2 of the 4 positions)
SPARSE_24_INDEX_BITS = 2.0


def sparse_24_on(hw: Mapping[str, jax.Array]) -> jax.Array:
    """1.0 on a design with the 2:4 sparse datapath (knob ``sparse_24`` = "yes"), 0.0 without
    (or when the design has no such knob); a relaxed design's logits: the probability of "yes"."""
    return choice_weights(hw, "sparse_24", 2)[..., 1]


def sparse_24_bits(weight_bits, sp24):
    """Stored bits per weight: ``weight_bits``, or on 2:4 rows (``sp24`` = 1) half of the
    weights at ``weight_bits`` plus a ``SPARSE_24_INDEX_BITS`` index each."""
    return weight_bits + sp24 * (0.5 * (weight_bits + SPARSE_24_INDEX_BITS) - weight_bits)


def _weight_prefetch(hw: Mapping[str, jax.Array]) -> jax.Array:
    """1.0 on a design whose PEs double-buffer the stationary operand (knob ``weight_prefetch``
    = "yes"), 0.0 without (SCALE-Sim's model, the default); logits: the probability of "yes"."""
    return choice_weights(hw, "weight_prefetch", 2)[..., 1]


def gemm_cycles(folds, rows, cols, t, df, prefetch, smax=jnp.maximum):
    """Compute cycles of one GEMM of ``folds`` folds. Without prefetch (SCALE-Sim): every fold
    preloads its stationary operand, streams and drains: ``folds * fold_cycles``. With
    ``prefetch`` (ws, is; os has nothing to preload): the next fold's operand loads while the
    current one streams, so a fold takes ``max(T, rows)`` (loading ``rows`` rows of weights is
    the floor: T = 1, an LLM decode step, is weight-load bound) and the pipeline fills and
    drains once: ``folds * max(T, rows) + 2*rows + cols - 2``."""
    plain = folds * fold_cycles(rows, cols, t, df)
    piped = folds * smax(t, rows) + 2.0 * rows + cols - 2.0
    p = jnp.where(df == OS, 0.0, prefetch)
    return plain + p * (jnp.minimum(piped, plain) - plain)


def _group_mapping(hw: Mapping[str, jax.Array]) -> jax.Array:
    """1.0 when grouped layers may run packed (knob ``group_mapping`` = "best", the default),
    0.0 for SCALE-Sim's per-group GEMMs ("per_group"); logits: the probability of "best"."""
    return choice_weights(hw, "group_mapping", 2)[..., 0]


def soft_ceil(x):
    """``1 + smooth_relu(x - 1)`` with ``smooth_relu(z) = (z + sqrt(z^2 + t^2)) / 2``."""
    z = x - 1.0
    return 1.0 + 0.5 * (z + jnp.sqrt(z * z + SOFT_CEIL_TEMPERATURE**2))


def smooth_max(a, b):
    """The 8-norm of (a, b) for a, b >= 0, by repeated squaring (no exp/log: fast)."""
    m = jnp.maximum(jnp.maximum(a, b), 1e-30)
    ra, rb = a / m, b / m
    ra, rb = ra * ra, rb * rb
    ra, rb = ra * ra, rb * rb
    s = ra * ra + rb * rb
    return m * jnp.sqrt(jnp.sqrt(jnp.sqrt(s)))


def smooth_min(a, b):
    """``a*b / smooth_max(a + 1, b + 1)`` for a, b >= 0 (bytes): about min(a, b) when one
    dominates, smooth, 0 with finite gradients when both are 0."""
    return a * b / smooth_max(a + 1.0, b + 1.0)


def _overflow(x, cap):
    """Fraction of an operand that does not fit in ``cap`` bytes."""
    return jnp.maximum(x - cap, 0.0) / jnp.maximum(x, 1.0)


def area_mm2(hw: Mapping[str, jax.Array], wl: Workload | None = None, dp: "datapath.Resolved | None" = None) -> jax.Array:
    """The chip's area: PEs and vector lanes of the datapath's format (:mod:`..datapath`),
    the three SRAMs. It does not depend on the model costed on it (``wl`` is ignored)."""
    pe = (dp or datapath.resolve(hw)).pe_area_mm2
    pes = hw["rows"] * hw["cols"] * pe * (1.0 + SPARSE_24_PE_AREA_OVERHEAD * sparse_24_on(hw))
    srams = tables.sram_area_mm2(hw["ifmap_sram_kb"]) + tables.sram_area_mm2(hw["filter_sram_kb"]) + tables.sram_area_mm2(hw["ofmap_sram_kb"])
    vector = hw["vector_width"] * pe
    return pes + srams + vector


class _Rows:
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

    def assemble(self, mac_vals, vec_vals):
        """Per-layer array in workload order from the MAC-row and vector-row parts."""
        mac_vals = jnp.broadcast_to(mac_vals, (len(self.mac),))
        vec_vals = jnp.broadcast_to(vec_vals, (len(self.vec),))
        full = jnp.concatenate([mac_vals, vec_vals, jnp.zeros((self.n_free,), jnp.float32)])
        return full[self.perm]


def systolic_metrics(hw: Mapping[str, jax.Array], wl: Workload, df, *, relaxed: bool = False) -> Metrics:
    """Metrics of one design at dataflow index ``df`` (0 os, 1 ws, 2 is)."""
    ceil = soft_ceil if relaxed else jnp.ceil
    smax = smooth_max if relaxed else jnp.maximum
    smin = smooth_min if relaxed else jnp.minimum
    rows, cols = hw["rows"], hw["cols"]
    clock_ghz = hw["clock_ghz"]
    inv_bw = clock_ghz / hw["dram_gbps"]                  # cycles per byte
    vw = hw["vector_width"]
    e_if = tables.sram_pj_per_bit(hw["ifmap_sram_kb"])
    e_f = tables.sram_pj_per_bit(hw["filter_sram_kb"])
    e_of = tables.sram_pj_per_bit(hw["ofmap_sram_kb"])
    half = 1024.0 / 2.0                                   # KB -> bytes, half of a double buffer
    rs = _Rows(wl)

    # ---- MAC rows: mapping (per GEMM); workload-only terms are computed once, not per design
    m = rs.mac
    dp = datapath.resolve(hw)
    wb = datapath.row_bits(dp, wl.bits_given[m], wl.weight_bits[m])
    ab = datapath.row_bits(dp, wl.bits_given[m], wl.act_bits[m])
    accb = tables.acc_bits(wb, ab)
    g = wl.groups[m]
    gemms = g * wl.repeat[m]
    px = wl.n[m] * wl.p[m] * wl.q[m]
    window = wl.c[m] / g * wl.r[m] * wl.s[m]
    filters = wl.k[m] / g
    sp24 = sparse_24_on(hw) * wl.sparsity_24[m]           # 2:4 rows on a 2:4 datapath (module doc)
    wbs = sparse_24_bits(wb, sp24)                        # stored bits per weight
    sr, sc, t = spatio_temporal(px, window, filters, df)
    rf = ceil(sr / rows)
    cf = ceil(sc / cols)
    folds = rf * cf
    win_x = window * (1.0 - 0.5 * sp24)                   # the reduction the array runs
    sr_x, sc_x, t_x = spatio_temporal(px, win_x, filters, df)
    prefetch = _weight_prefetch(hw)
    per_group = gemms * gemm_cycles(ceil(sr_x / rows) * ceil(sc_x / cols), rows, cols, t_x, df, prefetch, smax)
    # grouped layers may also run packed: gp groups side by side in one block-diagonal GEMM
    # (the zeros between groups are scheduled, not stored), as many as fill the array's rows
    gp = jnp.clip(jnp.floor(rows / jnp.maximum(win_x, 1.0)) if not relaxed else rows / jnp.maximum(win_x, 1.0), 1.0, g)
    sr_p, sc_p, t_p = spatio_temporal(px, win_x * gp, filters * gp, df)
    packed = ceil(g / gp) * wl.repeat[m] * gemm_cycles(ceil(sr_p / rows) * ceil(sc_p / cols), rows, cols, t_p, df,
                                                       prefetch, smax)
    pack_ok = (g > 1.0) & (_group_mapping(hw) > 0.5)
    mac_compute = jnp.where(pack_ok, smin(per_group, packed), per_group) \
        * datapath.passes(dp, wb, ab, relaxed)
    a_reads = jnp.where(df == IS, sr * sc, t * sr * cf)
    b_reads = jnp.where(df == OS, t * sc * rf, jnp.where(df == WS, sr * sc, t * sr * cf))
    o_writes = jnp.where(df == OS, sr * sc, t * sc * rf)
    o_reads = jnp.where(df == OS, 0.0, t * sc * (rf - 1.0))
    o_bits = jnp.where(df == OS, ab, accb)
    mac_sram_pj = gemms * (a_reads * ab * e_if + b_reads * wbs * e_f + (o_writes + o_reads) * o_bits * e_of)
    stream_bits = jnp.where(df == IS, b_reads * wbs, a_reads * ab) * cols
    down_bits = jnp.where(df == OS, b_reads * wbs, o_writes * accb) * rows
    noc_pj = gemms * (stream_bits + down_bits) * tables.forward_pj_per_bit(wb, ab)
    a_bytes = wl.in_elems[m] * ab / 8.0 * (1.0 - wl.input_on_chip[m])
    b_bytes = wl.weight_elems[m] * wbs / 8.0
    o_bytes = wl.out_elems[m] * ab / 8.0 * (1.0 - wl.output_on_chip[m])
    # ws/is partial sums live at once: one column fold's T x min(Sc, cols) accumulators
    # (SCALE-Sim's fold order, col folds outer, row folds inner: module doc), per GEMM
    psum_fold = t * smin(sc, cols) * accb / 8.0
    psum_all = t * sc * accb / 8.0                        # all column folds of one GEMM
    o_cap = hw["ofmap_sram_kb"] * half
    # ws/is stream one operand per column fold; when its row-fold slice fits its SRAM, a
    # block of k column folds whose partial sums fit the ofmap SRAM together shares each
    # slice (for block: for row fold: for column fold in block), so the streamed operand is
    # fetched ceil(col_folds / k) times, not col_folds times
    s_bytes = jnp.where(df == WS, t * jnp.minimum(sr, rows) * ab, t * jnp.minimum(sr, rows) * wbs) / 8.0
    s_cap = jnp.where(df == WS, hw["ifmap_sram_kb"], hw["filter_sram_kb"]) * half
    fit = o_cap / jnp.maximum(psum_fold, 1.0)
    k = jnp.where((rf > 1.0) & (s_bytes <= s_cap), jnp.maximum(1.0, fit if relaxed else jnp.floor(fit)), 1.0)
    passes = ceil(cf / k)
    ref_a = 1.0 + jnp.where(df == WS, (passes - 1.0) * _overflow(a_bytes / gemms, hw["ifmap_sram_kb"] * half), 0.0)
    b_outer = jnp.where(df == OS, rf, passes) - 1.0
    ref_b = 1.0 + jnp.where(df == WS, 0.0, b_outer * _overflow(b_bytes / gemms, hw["filter_sram_kb"] * half))
    # ws/is: when one column fold's partial sums outgrow the ofmap SRAM, either spill the
    # part that does not fit (written and read back once per extra row fold, in every column
    # fold) or tile T so one fold's psums stay on chip and reload the stationary operand
    # once per extra T tile when it does not fit its SRAM; the cheaper wins (module doc).
    spill = 2.0 * psum_all * (rf - 1.0) * _overflow(psum_fold, o_cap)
    stat_bytes, stat_cap = jnp.where(df == WS, b_bytes, a_bytes) / gemms, jnp.where(df == WS, hw["filter_sram_kb"], hw["ifmap_sram_kb"]) * half
    t_tiles = ceil(psum_fold / o_cap)
    reload = (t_tiles - 1.0) * stat_bytes * _overflow(stat_bytes, stat_cap) * (rf > 1.0)
    psum_dram = jnp.where(df == OS, 0.0, gemms * smin(spill, reload))
    mac_dram = a_bytes * ref_a + b_bytes * ref_b + o_bytes + psum_dram
    mac_fill = (a_bytes + b_bytes + o_bytes) / gemms * inv_bw / folds
    mac_latency = smax(mac_compute, mac_dram * inv_bw) + mac_fill
    macs = wl.macs[m]
    mac_pj = macs * (1.0 - wl.sparsity[m]) * datapath.mac_pj(dp, wb, ab)

    # ---- vector / memory rows
    v = rs.vec
    vab = datapath.row_bits(dp, wl.bits_given[v], wl.act_bits[v])
    vwb = datapath.row_bits(dp, wl.bits_given[v], wl.weight_bits[v])
    out_e, in_e = wl.out_elems[v], wl.in_elems[v]
    vec_compute = ceil(out_e * wl.vec_ops[v] / vw)
    vec_dram = (in_e * (1.0 - wl.input_on_chip[v]) + out_e * (1.0 - wl.output_on_chip[v])) * vab / 8.0 + wl.weight_elems[v] * vwb / 8.0
    vec_latency = smax(vec_compute, vec_dram * inv_bw)
    vec_sram_pj = (in_e * e_if + out_e * e_of) * vab
    alu_pj = rs.vec_alu * out_e * wl.vec_ops[v] * datapath.mac_pj(dp, vab, vab)

    # ---- per layer, in workload order
    latency = rs.assemble(mac_latency, vec_latency)
    clock_hz = clock_ghz * 1e9
    latency_s = latency / clock_hz
    area = area_mm2(hw, wl, dp)
    peak = rows * cols
    all_macs = rs.assemble(macs, 0.0)
    return Metrics(
        latency_cycles=latency,
        compute_cycles=rs.assemble(mac_compute, vec_compute),
        latency_s=latency_s,
        energy_mac_pj=rs.assemble(mac_pj, alu_pj),
        energy_sram_pj=rs.assemble(mac_sram_pj, vec_sram_pj),
        energy_dram_pj=rs.assemble(mac_dram, vec_dram) * (8.0 * tables.dram_pj_per_bit()),
        energy_noc_pj=rs.assemble(noc_pj, 0.0),
        energy_leakage_pj=tables.leakage_pj(area, latency_s),
        macs=all_macs,
        utilization=all_macs / jnp.maximum(peak * latency, 1e-30),
        area_mm2=area,
        peak_macs_per_cycle=peak,
        clock_hz=clock_hz,
    )


def cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    """The exact model at a legal design (``hw['dataflow']`` is the dataflow's index)."""
    return systolic_metrics(hw, wl, hw["dataflow"])


def relaxed_cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    """The smooth model: see the module doc. ``hw['dataflow']``: logits f32[3] or an index."""
    d = jnp.asarray(hw["dataflow"], jnp.float32)
    if d.ndim == 0:  # a fixed dataflow: only that one is evaluated
        return systolic_metrics(hw, wl, jnp.round(d), relaxed=True)
    weights = jax.nn.softmax(d)
    parts = [systolic_metrics(hw, wl, jnp.float32(i), relaxed=True) for i in range(3)]
    return jax.tree_util.tree_map(lambda *xs: sum(w * x for w, x in zip(weights, xs, strict=True)), *parts)
