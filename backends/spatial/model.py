"""The spatial-array cost model (pure jnp; vmapped over designs, differentiable when relaxed).

Per MAC layer, every candidate mapping of :mod:`.mapping` (:data:`.mapping.N_CANDIDATES` per
layer) is costed at once from its access counts (:mod:`.reuse`):

* **energy** = accesses x energy per access of each level:
  RF: every MAC reads a weight and an input and reads and writes a partial sum; plus the
  deliveries into the RFs and the psum drains; SRAM energy per bit of each RF's size
  (:mod:`symbiote.backends.memories`: CACTI, extended below its 8 KB row as a power law);
  GLB: reads to the array (multicast once), psum writes and reads, and the traffic with DRAM,
  at the energy per bit of one bank (``capacity / glb_banks``; ``shared``: of the sum);
  DRAM: bits x the DRAM kind's pJ/bit (:mod:`symbiote.backends.technology`); NoC: each GLB
  transfer crosses ``(array_x + array_y) / 2`` PE pitches (a multicast bus is one transfer),
  each spatial-reduction forward one pitch plus an add at the accumulator's width
  (:func:`symbiote.backends.tables.hop_pj_per_bit`, :func:`symbiote.backends.tables.add_pj`);
  MACs: the datapath's MAC (:mod:`symbiote.backends.datapath`) x the node's energy scale x
  ``(1 - sparsity)`` (2:4 rows are costed as unstructured sparsity here).
  Weights and inputs are counted at their bits, partial sums at the accumulator's width
  (``acc_guard_bits``, ``tables.acc_bits``); outputs written to DRAM once at the activation
  bits, spilled partial sums at the accumulator's.
* **latency** = ``max(compute, DRAM, GLB, NoC cycles)``: compute = the product of all temporal
  bounds (padded iterations included) x the datapath's passes; DRAM = bytes x clock /
  ``dram_gbps``; GLB = bits / (``glb_banks`` x 256 bits per cycle), per macro (split: the
  busiest operand's) or of the sum (shared); NoC = bytes between GLB and array /
  ``noc_bytes_per_cycle``. No double-buffering or fill/drain term: transfers overlap compute.
* **validity**: a candidate whose RF tile of any operand exceeds its RF, or whose GLB tiles
  exceed the GLB (split: each its own; shared: together), is **masked**. The candidates'
  tiles are sized from the same capacities in elements (:func:`.mapping.factors`: the RFs',
  and the GLB's for the ``fit`` split, a shared GLB's whole size for each operand), so a tile
  that exceeds its memory is one those sizes could not avoid; it is masked, never shrunk.

The exact model keeps, per layer, the valid candidate of least objective ``latency^a x
energy^b`` (the first on a tie), ``(a, b)`` by the ``mapper`` knob
(:data:`.space.MAPPER_EXPONENTS`: ``edp`` (1, 1), ``energy`` (1e-3, 1), ``latency`` (1, 1e-3)).
It multiplies the figures of exponent 1 and takes the other one's power ``x^c`` to first order,
``1 + c log(x)``, with ``log(x)`` read off ``x``'s float32 bits (:func:`_bits_log`: within 0.06,
non-decreasing), within 0.13% of ``x^c`` for ``c log(x)`` up to 0.05 (``jnp.log`` per candidate
would cost the exact model some 40% of its designs/s; ``edp``: exactly ``latency x energy``).
A layer with no valid candidate is **infeasible**: its latency and energy are ``inf`` (so is
the design's total) and :func:`.breakdown.breakdown` gives the reason. The relaxed model keeps
the exact factors (piecewise constant in the knobs: their gradient is zero, which also keeps
its gradient's graph small enough for XLA to compile; with every factor smooth, compiling the
gradient took XLA more than 15 minutes), multiplies the compute cycles by
:func:`.mapping.pe_surrogate` (value 1, the gradient of ``1 / PEs`` with the PEs smooth in
``array_x``/``array_y``), takes ``smooth_max`` (the 8-norm, :mod:`symbiote.backends.common`)
for the max, the datapath's passes without ceilings, and a **soft minimum** over the
candidates: weights ``softmax(-log(objective) / tau)`` with ``tau`` = :data:`SOFTMIN_TEMPERATURE`
(a candidate whose objective is ``e`` times the best one's weighs ``e^(-1/tau)`` as much), the
log objective ``a log(latency) + b log(energy)`` with a relaxed ``mapper``'s (logits) exponents
mixed by its softmax weights, invalid candidates' objectives multiplied by
:data:`INVALID_PENALTY` x (1 + their overflow), so a relaxed design with no valid candidate
keeps a finite cost and a gradient towards one. As ``tau`` falls the soft minimum tends to the
exact choice (:func:`metrics` takes a ``temperature``).

Non-MAC layers run on the vector unit: ``ceil(out_elems * vec_ops / vector_width)`` cycles,
overlapped with their DRAM traffic; their operands pass through the GLB. Area: PEs (the
datapath's, at the node) and their three RFs, the GLB macros (``glb_banks`` banks each), the
vector lanes. Leakage: logic per mm^2 at the node, SRAMs' CACTI leakage, times the latency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.backends import datapath, memories, tables, technology
from symbiote.backends.metrics import Metrics
from symbiote.backends.space import choice_weights
from symbiote.backends.spatial import mapping, reuse
from symbiote.backends.spatial.space import DATAFLOWS, MAPPER_EXPONENTS, MAPPERS
from symbiote.backends.common import Rows, smooth_max
from symbiote.ir.workload import Workload

#: relaxed choice: softmin temperature over the candidates' log objective (module doc)
SOFTMIN_TEMPERATURE = 0.05
#: relaxed choice: objective multiplier of an invalid candidate (times 1 + its overflow)
INVALID_PENALTY = 1e3
#: a tile fits when it needs at most capacity x (1 + FIT_TOLERANCE) (float rounding of bits / capacity)
FIT_TOLERANCE = 1e-6
#: GLB bank width, bits per cycle (the CACTI macros' access width)
BANK_BITS = float(memories.WIDTH_BITS)


class Hw(NamedTuple):
    """A design's scalars, resolved once per evaluation."""

    ax: jax.Array
    ay: jax.Array
    rf_bits: tuple[jax.Array, jax.Array, jax.Array]     # W, I, O register files, bits
    glb_bits: tuple[jax.Array, jax.Array, jax.Array]    # W, I, O global buffers, bits
    shared: jax.Array                                   # 1.0: one shared GLB macro
    banks: jax.Array
    e_rf: tuple[jax.Array, jax.Array, jax.Array]        # pJ per bit
    e_glb: tuple[jax.Array, jax.Array, jax.Array]
    e_dram: jax.Array
    hop_pj_per_bit: jax.Array
    cycles_per_byte: jax.Array
    noc_bytes_per_cycle: jax.Array
    energy_scale: jax.Array
    objective: tuple[jax.Array, jax.Array]              # mapper's exponents (a, b) of latency, energy


def _glb_kb(hw: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
    return hw["glb_weight_kb"], hw["glb_input_kb"], hw["glb_output_kb"]


def _shared(hw: Mapping[str, jax.Array]) -> jax.Array:
    return choice_weights(hw, "glb_split", 2)[..., 1]


def _objective(hw: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """The ``mapper`` knob's exponents ``(a, b)``: its choice's, or their mix by a relaxed
    design's softmax weights (``edp`` when the design has no such knob)."""
    ab = choice_weights(hw, "mapper", len(MAPPERS)) @ jnp.asarray(MAPPER_EXPONENTS, jnp.float32)
    return ab[..., 0], ab[..., 1]


def resolve(hw: Mapping[str, jax.Array]) -> Hw:
    nw = technology.node_weights(hw)
    tech = technology.resolve(hw)
    dp = datapath.resolve(hw)
    sh = _shared(hw)
    kb = _glb_kb(hw)
    total = kb[0] + kb[1] + kb[2]
    e_total = memories.sram_pj_per_bit(total / hw["glb_banks"], nw)
    e_glb = tuple(sh * e_total + (1.0 - sh) * memories.sram_pj_per_bit(x / hw["glb_banks"], nw) for x in kb)
    rf_bytes = (hw["rf_weight_bytes"], hw["rf_input_bytes"], hw["rf_psum_bytes"])
    pitch_area = dp.pe_area_mm2 * tech.area_scale
    return Hw(hw["array_x"], hw["array_y"], tuple(8.0 * b for b in rf_bytes), tuple(8192.0 * x for x in kb), sh,
              hw["glb_banks"], tuple(memories.sram_pj_per_bit(b / 1024.0, nw) for b in rf_bytes), e_glb,
              tech.dram_pj_per_bit, tables.hop_pj_per_bit(pitch_area, tech.wire_pj_per_bit_mm),
              hw["clock_ghz"] / hw["dram_gbps"], hw["noc_bytes_per_cycle"], tech.energy_scale, _objective(hw))


def area_mm2(hw: Mapping[str, jax.Array]) -> jax.Array:
    """PEs and their RFs, the GLB macros, the vector lanes (the model costed is irrelevant)."""
    nw = technology.node_weights(hw)
    tech = technology.resolve(hw)
    dp = datapath.resolve(hw)
    pes = hw["array_x"] * hw["array_y"]
    rfs = sum(memories.sram_area_mm2(hw[k] / 1024.0, nw) for k in ("rf_weight_bytes", "rf_input_bytes", "rf_psum_bytes"))
    logic = (pes + hw["vector_width"]) * dp.pe_area_mm2 * tech.area_scale
    return logic + pes * rfs + _glb_area(hw, nw)


def _glb_area(hw, nw):
    kb, b, sh = _glb_kb(hw), hw["glb_banks"], _shared(hw)
    split = sum(b * memories.sram_area_mm2(x / b, nw) for x in kb)
    return sh * b * memories.sram_area_mm2((kb[0] + kb[1] + kb[2]) / b, nw) + (1.0 - sh) * split


def sram_leakage_mw(hw: Mapping[str, jax.Array]) -> jax.Array:
    nw = technology.node_weights(hw)
    kb, b, sh = _glb_kb(hw), hw["glb_banks"], _shared(hw)
    glb = sh * b * memories.sram_leakage_mw((kb[0] + kb[1] + kb[2]) / b, nw) \
        + (1.0 - sh) * sum(b * memories.sram_leakage_mw(x / b, nw) for x in kb)
    rfs = sum(memories.sram_leakage_mw(hw[k] / 1024.0, nw) for k in ("rf_weight_bytes", "rf_input_bytes", "rf_psum_bytes"))
    return glb + hw["array_x"] * hw["array_y"] * rfs


class Candidates(NamedTuple):
    """Candidates of every MAC row: one (split, class) pair's ``[L, SLOTS]`` (:func:`candidates`),
    or all of them flattened, ``[L, N_CANDIDATES]`` (:func:`flatten`)."""

    key: jax.Array          # the mapper's objective, latency^a x energy^b (relaxed: its log; invalid ones too)
    valid: jax.Array        # bool
    overflow: jax.Array     # sum over tiles of max(need / capacity - 1, 0)
    latency: jax.Array
    compute: jax.Array
    e_mac: jax.Array
    e_sram: jax.Array
    e_dram: jax.Array
    e_noc: jax.Array
    dram_bytes: jax.Array
    fits: jax.Array         # [..., 4]: fits its RF W, RF I, RF O, GLB


class Bits(NamedTuple):
    w: jax.Array
    a: jax.Array
    acc: jax.Array


class Coefs(NamedTuple):
    """Per MAC row (``[L, 1]``) and design: the cost of one access of each kind, so that a
    candidate's figures are sums of access counts times these (one multiply-add each)."""

    inv_rf: tuple                # bits per element / RF bits: W, I, O
    inv_glb: tuple               # bits per element / GLB bits (split): W, I, O
    inv_glb_shared: tuple        # bits per element / all GLB bits (shared)
    sram: dict                   # pJ per access (RF and GLB) by access kind
    dram: dict                   # pJ per access (DRAM) by access kind
    noc: dict                    # pJ per access (NoC) by access kind
    bits: Bits
    dram_bits_out: jax.Array     # DRAM bits of the outputs (once)
    const_sram: jax.Array        # RF reads and writes of the MACs, outputs through the GLB
    e_mac: jax.Array
    passes: jax.Array
    cycles_per_dram_bit: jax.Array


def coefs(h: Hw, bits: Bits, macs, mac_e, passes, in_dram, out_dram) -> Coefs:
    """The per-access costs of the module doc, per row."""
    wb, ab, accb = bits
    e_rfw, e_rfi, e_rfo = h.e_rf
    e_gw, e_gi, e_go = h.e_glb
    hop_bus = 0.5 * (h.ax + h.ay) * h.hop_pj_per_bit
    sram = {"glb_reads_w": wb * e_gw, "glb_reads_i": ab * e_gi, "psum_writes": accb * e_go,
            "psum_reads": accb * (e_go + e_rfo), "deliveries_w": wb * e_rfw, "deliveries_i": ab * e_rfi,
            "drains": accb * e_rfo, "dram_w": wb * e_gw, "dram_i": ab * e_gi, "dram_psum_reads": 2.0 * accb * e_go}
    dram = {"dram_w": wb * h.e_dram, "dram_i": ab * in_dram * h.e_dram, "dram_psum_reads": 2.0 * accb * h.e_dram}
    noc = {"glb_reads_w": wb * hop_bus, "glb_reads_i": ab * hop_bus, "psum_writes": accb * hop_bus,
           "psum_reads": accb * hop_bus, "forwards": accb * h.hop_pj_per_bit + tables.add_pj(accb) * h.energy_scale}
    total_glb = h.glb_bits[0] + h.glb_bits[1] + h.glb_bits[2]
    return Coefs(tuple(b / c for b, c in zip(bits, h.rf_bits, strict=True)),
                 tuple(b / c for b, c in zip(bits, h.glb_bits, strict=True)), tuple(b / total_glb for b in bits),
                 sram, dram, noc, bits, ab * out_dram, macs * (wb * e_rfw + ab * e_rfi + 2.0 * accb * e_rfo),
                 macs * mac_e, passes, h.cycles_per_byte / 8.0)


def _dot(acc: reuse.Accesses, coef: dict):
    """``sum(count * cost)`` over the access kinds of ``coef``."""
    out = None
    for k, c in coef.items():
        term = getattr(acc, k) * c
        out = term if out is None else out + term
    return out


def _bits_log(x: jax.Array) -> jax.Array:
    """``log(x)`` of a positive float32 ``x`` to within 0.06, non-decreasing in ``x``: its bits read
    as an integer are ``2^23 (e + 127 + m)`` for ``x = 2^e (1 + m)``, and ``m`` is ``log2(1 + m)``
    to within 0.086 (a bitcast and a multiply-add, no transcendental)."""
    bits = jax.lax.bitcast_convert_type(x, jnp.int32).astype(jnp.float32)
    return (bits * 2.0**-23 - 127.0) * float(np.log(2.0))


def _key(h: Hw, latency, energy, relaxed: bool):
    """The mapper's objective ``latency^a x energy^b``, ``(a, b)`` = ``h.objective`` (module doc):
    exact, the figures of exponent above 1/2 multiplied, the other one's power ``x^c`` as
    ``1 + c log(x)`` (:func:`_bits_log`); relaxed, its log ``a log(latency) + b log(energy)``."""
    a, b = h.objective
    if relaxed:
        return a * jnp.log(jnp.maximum(latency, 1e-30)) + b * jnp.log(jnp.maximum(energy, 1e-30))
    whole_l, whole_e = a > 0.5, b > 0.5
    c = jnp.where(whole_l, 0.0, a) + jnp.where(whole_e, 0.0, b)
    other = jnp.where(whole_l, energy, latency)
    return jnp.where(whole_l, latency, 1.0) * jnp.where(whole_e, energy, 1.0) * (1.0 + c * _bits_log(other))


def _one_pair(h: Hw, acc: reuse.Accesses, cf: Coefs, relaxed: bool) -> tuple:
    """Candidate fields of one (split, class) pair, ``[L, SLOTS]`` each (module doc's rules)."""
    smax = smooth_max if relaxed else jnp.maximum
    wb, ab, accb = cf.bits
    # ---- validity: RF tiles, GLB tiles (need / capacity - 1 > 0 overflows)
    one = 1.0 + FIT_TOLERANCE
    over_rf = [jnp.maximum(t * c - one, 0.0) for t, c in zip((acc.rf_tile_w, acc.rf_tile_i, acc.rf_tile_o), cf.inv_rf,
                                                               strict=True)]
    tiles = (acc.glb_tile_w, acc.glb_tile_i, acc.glb_tile_o)
    over_split = sum(jnp.maximum(t * c - one, 0.0) for t, c in zip(tiles, cf.inv_glb, strict=True))
    over_shared = jnp.maximum(sum(t * c for t, c in zip(tiles, cf.inv_glb_shared, strict=True)) - one, 0.0)
    over_glb = h.shared * over_shared + (1.0 - h.shared) * over_split
    overflow = over_rf[0] + over_rf[1] + over_rf[2] + over_glb
    # ---- energy: access counts x per-access costs
    sram_pj = _dot(acc, cf.sram) + cf.const_sram + acc.outputs * (ab * h.e_glb[2])
    dram_bits = acc.dram_w * wb + acc.dram_i * ab + acc.dram_psum_reads * (2.0 * accb) + acc.outputs * cf.dram_bits_out
    dram_pj = _dot(acc, cf.dram) + acc.outputs * (cf.dram_bits_out * h.e_dram)
    noc_pj = _dot(acc, cf.noc)
    # ---- latency
    compute = acc.temporal * cf.passes
    glb_w = (acc.glb_reads_w + acc.dram_w) * wb
    glb_i = (acc.glb_reads_i + acc.dram_i) * ab
    psum_bits = (acc.psum_writes + acc.psum_reads) * accb
    glb_o = psum_bits + acc.outputs * ab + acc.dram_psum_reads * (2.0 * accb)
    inv_port = 1.0 / (h.banks * BANK_BITS)
    glb_cyc = (h.shared * (glb_w + glb_i + glb_o) + (1.0 - h.shared) * smax(smax(glb_w, glb_i), glb_o)) * inv_port
    noc_cyc = (acc.glb_reads_w * wb + acc.glb_reads_i * ab + psum_bits) * (1.0 / (8.0 * h.noc_bytes_per_cycle))
    latency = smax(smax(compute, dram_bits * cf.cycles_per_dram_bit), smax(glb_cyc, noc_cyc))
    energy = cf.e_mac + sram_pj + dram_pj + noc_pj
    valid = overflow <= 0.0
    shape = jnp.shape(latency)
    b = lambda x: jnp.broadcast_to(x, shape)  # noqa: E731
    fits = jnp.stack([b(o <= 0.0) for o in (*over_rf, over_glb)], axis=-1)
    return Candidates(_key(h, latency, energy, relaxed), valid, b(overflow), latency, b(compute), b(cf.e_mac),
                      b(sram_pj), b(dram_pj), b(noc_pj), b(dram_bits / 8.0), fits)


def candidates(h: Hw, accs, bits: Bits, macs, mac_pj, passes, in_dram, out_dram,
               relaxed: bool) -> tuple[Candidates, ...]:
    """Every (split, class) pair's candidates (``[L, SLOTS]`` each), in :func:`.mapping.factors`'s
    order (``passes``: ``[L, 1]`` or ``[L, SLOTS]``, the compute-cycle multiplier)."""
    col = lambda x: x[:, None]  # noqa: E731
    cf = coefs(h, Bits(col(bits.w), col(bits.a), col(bits.acc)), col(macs), col(mac_pj), passes, col(in_dram),
               col(out_dram))
    return tuple(_one_pair(h, acc, cf, relaxed) for acc in accs)


def flatten(pairs: tuple[Candidates, ...]) -> Candidates:
    """All candidates as ``[L, N_CANDIDATES]``, index ``slot * N_SPLITS * N_CLASSES + split *
    N_CLASSES + class`` (for the breakdown)."""
    n = pairs[0].key.shape[0]
    return jax.tree_util.tree_map(lambda *xs: jnp.reshape(jnp.stack(xs, axis=2), (n, -1) + xs[0].shape[2:]), *pairs)


class Chosen(NamedTuple):
    """The chosen (or soft-chosen) candidate's figures per MAC row."""

    latency: jax.Array
    compute: jax.Array
    e_mac: jax.Array
    e_sram: jax.Array
    e_dram: jax.Array
    e_noc: jax.Array
    feasible: jax.Array
    index: jax.Array


FIELDS = ("latency", "compute", "e_mac", "e_sram", "e_dram", "e_noc")


def choose(pairs: tuple[Candidates, ...], temperature: float | None = None, relaxed: bool = False) -> Chosen:
    """The valid candidate of least ``key`` (the mapper's objective) per row (the first on a tie;
    ``temperature``: a soft minimum instead; with ``relaxed`` invalid candidates are penalized
    instead of excluded; module doc). It runs over the pairs with elementwise selects and then
    over the slots (no stacked candidate axis: XLA keeps it in registers), and the chosen fields
    pass an optimization barrier, so that their consumers do not each recompute the choice."""
    if temperature is None and not relaxed:
        best = None
        for i, c in enumerate(pairs):
            key = jnp.where(c.valid, c.key, jnp.inf)
            cur = [key, *(getattr(c, f) for f in FIELDS), jnp.full(key.shape, i, jnp.int32)]
            if best is None:
                best = cur
                continue
            better = cur[0] < best[0]
            best = [jnp.where(better, x, y) for x, y in zip(cur, best, strict=True)]
        slot = jnp.argmin(best[0], axis=-1)
        pick = lambda x: jnp.take_along_axis(x, slot[:, None], axis=-1)[:, 0]  # noqa: E731
        feasible = jnp.isfinite(pick(best[0]))
        vals = [jnp.where(feasible, pick(x), jnp.inf) for x in best[1:-1]]
        vals = jax.lax.optimization_barrier(vals)
        return Chosen(*vals, feasible, slot * len(pairs) + pick(best[-1]))
    tau = SOFTMIN_TEMPERATURE if temperature is None else temperature
    logks = []
    for c in pairs:
        if relaxed:
            logks.append(c.key + jnp.where(c.valid, 0.0, jnp.log(INVALID_PENALTY * (1.0 + c.overflow))))
        else:
            logks.append(jnp.where(c.valid, jnp.log(jnp.maximum(c.key, 1e-30)), jnp.inf))
    best = logks[0]
    for lk in logks[1:]:
        best = jnp.minimum(best, lk)
    best = jax.lax.stop_gradient(jnp.min(best, axis=-1, keepdims=True))
    feasible = jnp.isfinite(best[:, 0])
    best = jnp.where(jnp.isfinite(best), best, 0.0)
    total, sums = 0.0, [0.0] * len(FIELDS)
    for c, lk in zip(pairs, logks, strict=True):
        w = jnp.where(jnp.isfinite(lk), jnp.exp(-(lk - best) / tau), 0.0)
        total = total + w
        sums = [s + w * getattr(c, f) for s, f in zip(sums, FIELDS, strict=True)]
    total = jnp.maximum(jnp.sum(total, axis=-1), 1e-30)
    vals = [jnp.sum(s, axis=-1) / total for s in sums]
    if not relaxed:
        vals = [jnp.where(feasible, v, jnp.inf) for v in vals]
    return Chosen(*vals, feasible, jnp.zeros(feasible.shape, jnp.int32))


def acc_bits(hw: Mapping[str, Any], wb, ab):
    """The partial sums' width on design ``hw`` (``acc_guard_bits``; its default where an
    encoded design has not the knob) for weights and inputs of ``wb`` and ``ab`` bits."""
    return tables.acc_bits(wb, ab, hw.get("acc_guard_bits", tables.GUARD_BITS))


def mac_rows(hw, wl: Workload, rows: np.ndarray, dataflow, *, relaxed: bool = False):
    """Layers, factors, accesses and candidates of the MAC rows at one dataflow index."""
    h = resolve(hw)
    dp = datapath.resolve(hw)
    wb = datapath.row_bits(dp, wl.bits_given[rows], wl.weight_bits[rows])
    ab = datapath.row_bits(dp, wl.bits_given[rows], wl.act_bits[rows])
    bits = Bits(wb, ab, acc_bits(hw, wb, ab))
    ly = mapping.layers(wl, rows)
    table = mapping.unroll_table(dataflow)
    pool = h.glb_bits[0] + h.glb_bits[1] + h.glb_bits[2]
    glb_w, glb_i, glb_o = (h.shared * pool + (1.0 - h.shared) * g for g in h.glb_bits)
    fxs = mapping.factors(ly, table, h.ax, h.ay, jax.lax.stop_gradient(
        (h.rf_bits[0] / bits.w, h.rf_bits[1] / bits.a, h.rf_bits[2] / bits.acc)),
        jax.lax.stop_gradient((glb_w / bits.w, glb_i / bits.a, glb_o / bits.acc)))
    accs = reuse.analyze_all(ly, fxs)
    mac_pj = (1.0 - wl.sparsity[rows]) * datapath.mac_pj(dp, wb, ab) * h.energy_scale
    passes = datapath.passes(dp, wb, ab, relaxed)[:, None]
    if relaxed:
        passes = passes * mapping.pe_surrogate(ly, table, h.ax, h.ay)
    cd = candidates(h, accs, bits, wl.macs[rows], mac_pj, passes, 1.0 - wl.input_on_chip[rows],
                    1.0 - wl.output_on_chip[rows], relaxed)
    return ly, fxs, accs, cd


def vector_rows(hw, wl: Workload, rows: np.ndarray, alu: np.ndarray, relaxed: bool):
    """Non-MAC rows on the vector unit: (latency, compute, alu pJ, GLB pJ, DRAM bytes)."""
    h = resolve(hw)
    dp = datapath.resolve(hw)
    ab = datapath.row_bits(dp, wl.bits_given[rows], wl.act_bits[rows])
    wb = datapath.row_bits(dp, wl.bits_given[rows], wl.weight_bits[rows])
    out_e, in_e = wl.out_elems[rows], wl.in_elems[rows]
    work = out_e * wl.vec_ops[rows] / hw["vector_width"]
    compute = jnp.maximum(work, 1.0) if relaxed else jnp.ceil(work)
    dram = (in_e * (1.0 - wl.input_on_chip[rows]) + out_e * (1.0 - wl.output_on_chip[rows])) * ab / 8.0 \
        + wl.weight_elems[rows] * wb / 8.0
    latency = (smooth_max if relaxed else jnp.maximum)(compute, dram * h.cycles_per_byte)
    glb_pj = (in_e * h.e_glb[1] + out_e * h.e_glb[2]) * ab
    alu_pj = alu * out_e * wl.vec_ops[rows] * datapath.mac_pj(dp, ab, ab) * h.energy_scale
    return latency, compute, alu_pj, glb_pj, dram


def metrics(hw: Mapping[str, jax.Array], wl: Workload, dataflow, *, relaxed: bool = False,
            temperature: float | None = None) -> Metrics:
    """Metrics of one design at dataflow index ``dataflow`` (module doc)."""
    rs = Rows(wl)
    h = resolve(hw)
    *_, cd = mac_rows(hw, wl, rs.mac, dataflow, relaxed=relaxed)
    ch = choose(cd, temperature, relaxed)
    v_lat, v_comp, v_alu, v_glb, v_dram = vector_rows(hw, wl, rs.vec, rs.vec_alu, relaxed)
    latency = rs.assemble(ch.latency, v_lat)
    clock_hz = hw["clock_ghz"] * 1e9
    latency_s = latency / clock_hz
    area = area_mm2(hw)
    tech = technology.resolve(hw)
    dp = datapath.resolve(hw)
    logic = (hw["array_x"] * hw["array_y"] + hw["vector_width"]) * dp.pe_area_mm2 * tech.area_scale
    peak = hw["array_x"] * hw["array_y"]
    macs = rs.assemble(wl.macs[rs.mac], 0.0)
    return Metrics(
        latency_cycles=latency,
        compute_cycles=rs.assemble(ch.compute, v_comp),
        latency_s=latency_s,
        energy_mac_pj=rs.assemble(ch.e_mac, v_alu),
        energy_sram_pj=rs.assemble(ch.e_sram, v_glb),
        energy_dram_pj=rs.assemble(ch.e_dram, v_dram * 8.0 * h.e_dram),
        energy_noc_pj=rs.assemble(ch.e_noc, 0.0),
        energy_leakage_pj=tables.leakage_pj(logic, latency_s, tech.leakage_mw_per_mm2)
        + memories.leakage_pj(sram_leakage_mw(hw), latency_s),
        macs=macs,
        utilization=macs / jnp.maximum(peak * latency, 1e-30),
        area_mm2=area,
        peak_macs_per_cycle=peak,
        clock_hz=clock_hz,
    )


def cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    """The exact model at a legal design (``hw['dataflow']``: the family's index)."""
    return metrics(hw, wl, hw["dataflow"])


def relaxed_cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    """The smooth model (module doc); ``hw['dataflow']``: an index, or logits over the
    families (the softmax-weighted mix of their metrics)."""
    d = jnp.asarray(hw["dataflow"], jnp.float32)
    if d.ndim == 0:
        return metrics(hw, wl, d, relaxed=True)
    weights = jax.nn.softmax(d)
    parts = [metrics(hw, wl, jnp.float32(i), relaxed=True) for i in range(len(DATAFLOWS))]
    return jax.tree_util.tree_map(lambda *xs: sum(w * x for w, x in zip(weights, xs, strict=True)), *parts)


def breakdown(hw: Mapping[str, jax.Array], wl: Workload) -> dict:
    """The chosen mapping of each MAC layer: :func:`symbiote.backends.spatial.breakdown.breakdown`."""
    from symbiote.backends.spatial.breakdown import breakdown as chosen

    return chosen(hw, wl)
