"""The systolic-array cost model (pure jnp, vectorized over the layer axis).

Per MAC layer (conv / GEMM / matmul / recurrent gate GEMM), ``groups * repeat`` identical
GEMMs run one after the other, each mapped as SCALE-Sim maps it (:mod:`.mapping`):

* compute cycles: ``folds * per_fold`` (SCALE-Sim's closed form, see mapping.py), times the
  number of T tiles of the chosen mapping (below);
* SRAM accesses (elements), per GEMM, following the same fold structure:

  ======  ==================  ==================  =====================================
  df      ifmap reads         filter reads        ofmap writes (+ partial-sum reads)
  ======  ==================  ==================  =====================================
  os      T*Sr*col_folds      T*Sc*row_folds      Sr*Sc
  ws      T*Sr*col_folds      Sr*Sc*nt (stat.)    T*Sc*row_folds (+ T*Sc*(row_folds-1))
  is      Sr*Sc*nt (stat.)    T*Sr*col_folds      T*Sc*row_folds (+ T*Sc*(row_folds-1))
  ======  ==================  ==================  =====================================

  (``nt``: the chosen number of T tiles; the stationary operand is loaded once per tile)

* PE-to-PE forwarding: every element read at an array edge hops across the whole row or
  column (ifmap/filter streams across ``cols`` or ``rows`` PEs, partial sums down ``rows``);
  energy per hop and bit: a wire one PE pitch long (``sqrt`` of the PE's area at the node) at
  the node's wire energy per bit and mm (tables.hop_pj_per_bit, technology.py), linear in
  the bits moved;
* DRAM traffic and the mapping (:mod:`.tiling`): each operand is read once when it fits in
  half of its SRAM (double buffering); otherwise what is fetched again depends on the loop
  order and on how ``T`` is tiled. Each MAC layer has a few candidate mappings (ws/is: ``T``
  in 1, 2 or the least number of tiles whose streamed operand or partial sums fit their
  SRAM, with blocks of column folds sharing a slice of the streamed operand; os: column
  folds or row folds outermost), evaluated at once; the one of least latency x (MAC + DRAM
  energy) for the layer is kept (``tiling = scalesim``: SCALE-Sim's order only). Only the
  live partial sums of the order used count against the ofmap SRAM (one column fold of one
  tile: ``Tt * min(Sc, cols)`` accumulators); what does not fit spills and is read back
  once per extra row fold. os keeps its partial sums in the PEs. Every term is a
  non-negative addition to the compulsory traffic (inputs, weights and outputs moved once),
  which is thus a lower bound. Tensors marked on chip by fusion skip DRAM;
* weight prefetch (knob ``weight_prefetch``, default "no" = SCALE-Sim): with "yes" the PEs
  double-buffer the stationary operand, as TPUs do, and a ws/is GEMM takes
  ``folds * max(T, rows) + 2*rows + cols - 2`` cycles (:func:`.tiling._tiled_cycles`);
* latency: ``max(compute, dram_bytes / bandwidth)`` (compute and memory overlap thanks to
  double buffering) plus the non-overlapped fill of the first fold and drain of the last:
  one fold's (of one T tile's) share of the operand and result bytes over the bandwidth.

Grouped and depthwise layers (``groups > 1``): SCALE-Sim maps each group as its own GEMM;
with ``group_mapping = best`` (the default) the compute cycles are the cheapest of that, a
packed mapping, ``gp = floor(rows / window)`` groups side by side in one block-diagonal
GEMM (``window * gp`` by ``filters * gp``: the zeros between groups are scheduled, not
stored), ``ceil(groups / gp)`` such GEMMs (a 3x3 depthwise layer packs 28 groups on 256
rows), and the vector unit, ``ceil(macs / vector_width)`` cycles (one MAC per lane and
cycle, the window's taps accumulated in the lane). An array whose rows share one operand
along a row cannot do better than ``floor(rows / window)`` useful columns on a depthwise
block (each column needs its own channel's inputs), so on a wide array the vector unit is
the faster home of a depthwise layer when it is wide enough. The SRAM and DRAM terms stay
those of the per-group GEMMs (the same operands, read once). ``group_mapping = per_group`` is SCALE-Sim's mapping exactly.

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
SRAM accesses (CACTI's energy per bit at each SRAM's capacity and the node,
:mod:`symbiote.backends.memories`), DRAM bits, forwarding, and leakage x time (the logic's:
per mm^2 of PE and vector-lane area; the SRAMs': CACTI's leakage power). Area: rows*cols PEs
of the datapath's format, the three SRAMs (CACTI's macro areas), and the vector unit.
The process node (knob ``node_nm``, technology.py) scales the MAC and vector ALU
energy (x ENERGY_SCALE), the PE and vector-lane area (x AREA_SCALE), the leakage per mm^2 (x
ENERGY_SCALE / AREA_SCALE) and the wire energy of forwarding; the DRAM kind (knob ``dram``)
sets the energy per DRAM bit.

Relaxation (``relaxed=True``): ``ceil(x)`` -> ``1 + smooth_relu(x - 1)`` with
``smooth_relu(z) = (z + sqrt(z^2 + 0.25)) / 2`` (equals x for large x, >= 1, smooth, cheap); ``max(a, b)`` -> the 8-norm ``(a^8 + b^8)^(1/8)`` (:func:`..common.smooth_max`)
(scale-free, within 9% of max); ``min(a, b)`` -> ``a*b / smooth_max(a, b)``; the dataflow -> the softmax-weighted mix of the three
dataflows' metrics (logits given as the knob's last axis; a scalar index evaluates that
dataflow alone, with no gradient for it); ``sparse_24`` given as logits ("no", "yes")
scales the 2:4 effects and the area overhead by the softmax probability of "yes" (a
scalar index: that choice alone); the mapping candidates -> a softmin over their keys
(temperature 5% of the least key, :data:`.tiling.SOFTMIN_TEMPERATURE`).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.backends import datapath, memories, tables, technology
from symbiote.backends.metrics import Metrics
from symbiote.backends.common import Rows, smooth_max
from symbiote.backends.space import choice_weights
from symbiote.backends.systolic import tiling
from symbiote.backends.systolic.mapping import IS, OS, WS, spatio_temporal
from symbiote.ir.workload import Workload

SOFT_CEIL_TEMPERATURE = 0.5
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


def _tiling_best(hw: Mapping[str, jax.Array]) -> jax.Array:
    """1.0 when each MAC layer takes the best of its candidate loop orders and tilings (knob
    ``tiling`` = "best", the default), 0.0 for SCALE-Sim's order only ("scalesim"); logits: the
    probability of "best" (tiling.py)."""
    return choice_weights(hw, "tiling", 2)[..., 0]


def _group_mapping(hw: Mapping[str, jax.Array]) -> jax.Array:
    """1.0 when grouped layers may run packed (knob ``group_mapping`` = "best", the default),
    0.0 for SCALE-Sim's per-group GEMMs ("per_group"); logits: the probability of "best"."""
    return choice_weights(hw, "group_mapping", 2)[..., 0]


def soft_ceil(x):
    """``1 + smooth_relu(x - 1)`` with ``smooth_relu(z) = (z + sqrt(z^2 + t^2)) / 2``."""
    z = x - 1.0
    return 1.0 + 0.5 * (z + jnp.sqrt(z * z + SOFT_CEIL_TEMPERATURE**2))


def smooth_min(a, b):
    """``a*b / smooth_max(a + 1, b + 1)`` for a, b >= 0 (bytes): about min(a, b) when one
    dominates, smooth, 0 with finite gradients when both are 0."""
    return a * b / smooth_max(a + 1.0, b + 1.0)


def pe_area_mm2(hw: Mapping[str, jax.Array], dp: "datapath.Resolved", tech: "technology.Resolved") -> jax.Array:
    """One PE as placed in the array: the datapath's PE at the node (x AREA_SCALE, :mod:`..technology`)
    with the 2:4 overhead; its square root is the PE pitch a forwarded operand crosses per hop."""
    return dp.pe_area_mm2 * tech.area_scale * (1.0 + SPARSE_24_PE_AREA_OVERHEAD * sparse_24_on(hw))


SRAM_KNOBS = ("ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb")


def sram_area_mm2(hw: Mapping[str, jax.Array]) -> jax.Array:
    """Area of the three SRAMs at the design's node (CACTI, :mod:`..memories`)."""
    nw = technology.node_weights(hw)
    return sum(memories.sram_area_mm2(hw[k], nw) for k in SRAM_KNOBS)


def sram_leakage_mw(hw: Mapping[str, jax.Array]) -> jax.Array:
    """Leakage power of the three SRAMs at the design's node (CACTI, :mod:`..memories`)."""
    nw = technology.node_weights(hw)
    return sum(memories.sram_leakage_mw(hw[k], nw) for k in SRAM_KNOBS)


def area_mm2(hw: Mapping[str, jax.Array], wl: Workload | None = None, dp: "datapath.Resolved | None" = None,
             tech: "technology.Resolved | None" = None) -> jax.Array:
    """The chip's area: PEs and vector lanes of the datapath's format (:mod:`..datapath`) at the
    node (:mod:`..technology`), the three SRAMs. It does not depend on the model costed on it
    (``wl`` is ignored)."""
    dp = dp or datapath.resolve(hw)
    tech = tech or technology.resolve(hw)
    pes = hw["rows"] * hw["cols"] * pe_area_mm2(hw, dp, tech)
    srams = sram_area_mm2(hw)
    vector = hw["vector_width"] * dp.pe_area_mm2 * tech.area_scale
    return pes + srams + vector


def systolic_metrics(hw: Mapping[str, jax.Array], wl: Workload, df, *, relaxed: bool = False,
                     detail: dict | None = None) -> Metrics:
    """Metrics of one design at dataflow index ``df`` (0 os, 1 ws, 2 is). ``detail``, when
    given, receives the MAC rows' mapping and access counts (see :func:`breakdown`)."""
    ceil = soft_ceil if relaxed else jnp.ceil
    smax = smooth_max if relaxed else jnp.maximum
    smin = smooth_min if relaxed else jnp.minimum
    rows, cols = hw["rows"], hw["cols"]
    clock_ghz = hw["clock_ghz"]
    inv_bw = clock_ghz / hw["dram_gbps"]                  # cycles per byte
    vw = hw["vector_width"]
    tech = technology.resolve(hw)                         # node and DRAM kind (technology.py)
    nw = technology.node_weights(hw)                      # SRAM costs by node: CACTI (memories.py)
    e_if = memories.sram_pj_per_bit(hw["ifmap_sram_kb"], nw)
    e_f = memories.sram_pj_per_bit(hw["filter_sram_kb"], nw)
    e_of = memories.sram_pj_per_bit(hw["ofmap_sram_kb"], nw)
    half = 1024.0 / 2.0                                   # KB -> bytes, half of a double buffer
    rs = Rows(wl)

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
    win_x = window * (1.0 - 0.5 * sp24)                   # the reduction the array runs
    sr_x, sc_x, t_x = spatio_temporal(px, win_x, filters, df)
    a_bytes = wl.in_elems[m] * ab / 8.0 * (1.0 - wl.input_on_chip[m])
    b_bytes = wl.weight_elems[m] * wbs / 8.0
    o_bytes = wl.out_elems[m] * ab / 8.0 * (1.0 - wl.output_on_chip[m])
    macs = wl.macs[m]
    mac_pj = macs * (1.0 - wl.sparsity[m]) * datapath.mac_pj(dp, wb, ab) * tech.energy_scale
    # the loop order and tiling of T: candidates evaluated at once, the least EDP kept (tiling.py)
    layer = tiling.Layer(t, sr, sc, t_x, sr_x, sc_x, gemms, g, wl.repeat[m], px, win_x, filters,
                         a_bytes, b_bytes, o_bytes, ab, wbs, accb, mac_pj, macs)
    design = tiling.Design(rows, cols, hw["ifmap_sram_kb"] * half, hw["filter_sram_kb"] * half,
                           hw["ofmap_sram_kb"] * half, inv_bw, 8.0 * tech.dram_pj_per_bit, vw, _weight_prefetch(hw),
                           _group_mapping(hw) > 0.5, _tiling_best(hw))
    passes = datapath.passes(dp, wb, ab, relaxed)
    choice = tiling.choose(layer, design, df, passes, relaxed=relaxed, ceil=ceil, smax=smax, smin=smin,
                           grouped=rs.any_grouped)
    nt = choice.t_tiles
    mac_compute = choice.compute * passes
    a_reads = jnp.where(df == IS, sr * sc * nt, t * sr * cf)   # a stationary operand loads once per T tile
    b_reads = jnp.where(df == OS, t * sc * rf, jnp.where(df == WS, sr * sc * nt, t * sr * cf))
    o_writes = jnp.where(df == OS, sr * sc, t * sc * rf)
    o_reads = jnp.where(df == OS, 0.0, t * sc * (rf - 1.0))
    o_bits = jnp.where(df == OS, ab, accb)
    mac_sram_pj = gemms * (a_reads * ab * e_if + b_reads * wbs * e_f + (o_writes + o_reads) * o_bits * e_of)
    stream_bits = jnp.where(df == IS, b_reads * wbs, a_reads * ab) * cols
    down_bits = jnp.where(df == OS, b_reads * wbs, o_writes * accb) * rows
    noc_pj = gemms * (stream_bits + down_bits) * tables.hop_pj_per_bit(pe_area_mm2(hw, dp, tech), tech.wire_pj_per_bit_mm)
    mac_dram = choice.dram                             # dram_a + dram_b + dram_o + dram_psum
    mac_latency = choice.latency
    if detail is not None:
        mac_per = lambda x: rs.assemble(x, 0.0)  # noqa: E731
        detail.update(
            is_mac=mac_per(1.0), macs=mac_per(wl.macs[m]), compute_cycles=mac_per(mac_compute),
            latency_cycles=mac_per(mac_latency), order=mac_per(choice.order), t_tiles=mac_per(nt),
            block=mac_per(choice.block), ifmap_sram_reads=mac_per(gemms * a_reads), filter_sram_reads=mac_per(gemms * b_reads),
            ofmap_sram_writes=mac_per(gemms * o_writes), ofmap_sram_reads=mac_per(gemms * o_reads),
            dram_ifmap_bytes=mac_per(choice.dram_a), dram_filter_bytes=mac_per(choice.dram_b),
            dram_ofmap_bytes=mac_per(choice.dram_o), dram_psum_bytes=mac_per(choice.dram_psum),
            compulsory_bytes=mac_per(a_bytes + b_bytes + o_bytes),
            mac_pj=mac_per(mac_pj / jnp.maximum(macs * (1.0 - wl.sparsity[m]), 1e-30)),
            ifmap_pj_per_bit=mac_per(e_if), filter_pj_per_bit=mac_per(e_f), ofmap_pj_per_bit=mac_per(e_of),
            dram_pj_per_bit=mac_per(tech.dram_pj_per_bit), weight_bits=mac_per(wbs), act_bits=mac_per(ab),
            acc_bits=mac_per(accb), psum_bits=mac_per(o_bits))

    # ---- vector / memory rows
    v = rs.vec
    vab = datapath.row_bits(dp, wl.bits_given[v], wl.act_bits[v])
    vwb = datapath.row_bits(dp, wl.bits_given[v], wl.weight_bits[v])
    out_e, in_e = wl.out_elems[v], wl.in_elems[v]
    vec_compute = ceil(out_e * wl.vec_ops[v] / vw)
    vec_dram = (in_e * (1.0 - wl.input_on_chip[v]) + out_e * (1.0 - wl.output_on_chip[v])) * vab / 8.0 + wl.weight_elems[v] * vwb / 8.0
    vec_latency = smax(vec_compute, vec_dram * inv_bw)
    vec_sram_pj = (in_e * e_if + out_e * e_of) * vab
    alu_pj = rs.vec_alu * out_e * wl.vec_ops[v] * datapath.mac_pj(dp, vab, vab) * tech.energy_scale

    # ---- per layer, in workload order
    latency = rs.assemble(mac_latency, vec_latency)
    clock_hz = clock_ghz * 1e9
    latency_s = latency / clock_hz
    area = area_mm2(hw, wl, dp, tech)
    peak = rows * cols
    all_macs = rs.assemble(macs, 0.0)
    return Metrics(
        latency_cycles=latency,
        compute_cycles=rs.assemble(mac_compute, vec_compute),
        latency_s=latency_s,
        energy_mac_pj=rs.assemble(mac_pj, alu_pj),
        energy_sram_pj=rs.assemble(mac_sram_pj, vec_sram_pj),
        energy_dram_pj=rs.assemble(mac_dram, vec_dram) * (8.0 * tech.dram_pj_per_bit),
        energy_noc_pj=rs.assemble(noc_pj, 0.0),
        energy_leakage_pj=tables.leakage_pj(area - sram_area_mm2(hw), latency_s, tech.leakage_mw_per_mm2)
        + memories.leakage_pj(sram_leakage_mw(hw), latency_s),
        macs=all_macs,
        utilization=all_macs / jnp.maximum(peak * latency, 1e-30),
        area_mm2=area,
        peak_macs_per_cycle=peak,
        clock_hz=clock_hz,
    )


def cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    """The exact model at a legal design (``hw['dataflow']`` is the dataflow's index)."""
    return systolic_metrics(hw, wl, hw["dataflow"])


def breakdown(hw: Mapping[str, jax.Array], wl: Workload) -> dict[str, np.ndarray]:
    """Per workload row (MAC rows: ``is_mac`` = 1; other rows are 0): the mapping the exact
    model chose (``order``: 0 SCALE-Sim's, column folds outer with no T tiles and no blocks;
    1 another: T tiles and/or blocks (ws/is), row folds outer (os); ``t_tiles``; ``block``:
    column folds sharing a slice of the streamed operand), access
    counts (SRAM reads/writes in elements, all GEMMs of the row; DRAM bytes per operand and
    of partial-sum spills; ``compulsory_bytes``), cycles, and the per-action energies used
    (``mac_pj`` per MAC, SRAM and DRAM pJ per bit) with the bit widths. For
    ``symbiote cost --mappings`` and cross-checks against other tools."""
    detail: dict = {}
    systolic_metrics(hw, wl, hw["dataflow"], detail=detail)
    return {k: np.asarray(v, np.float64) for k, v in detail.items()}


def relaxed_cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    """The smooth model: see the module doc. ``hw['dataflow']``: logits f32[3] or an index."""
    d = jnp.asarray(hw["dataflow"], jnp.float32)
    if d.ndim == 0:  # a fixed dataflow: only that one is evaluated
        return systolic_metrics(hw, wl, jnp.round(d), relaxed=True)
    weights = jax.nn.softmax(d)
    parts = [systolic_metrics(hw, wl, jnp.float32(i), relaxed=True) for i in range(3)]
    return jax.tree_util.tree_map(lambda *xs: sum(w * x for w, x in zip(weights, xs, strict=True)), *parts)
