"""The mapping of one MAC layer onto the systolic array: candidate loop orders and tilings, and
the choice among them (pure jnp, vectorized over candidates x layers).

The array's fold structure is fixed by the dataflow (:mod:`.mapping`): ``rf = ceil(Sr/rows)``
row folds by ``cf = ceil(Sc/cols)`` column folds, each streaming ``T``. What is left to choose
is the order of the folds and how ``T`` is tiled, which decides what stays in the SRAMs and
what is fetched again from DRAM. Each MAC layer has a small fixed set of candidates
(:data:`N_CANDIDATES`), all evaluated at once; illegal ones are masked; the exact model takes
the candidate of least energy-delay product for the layer (its latency times its MAC and DRAM
energy: :func:`choose`), the relaxed model a soft minimum.

**ws and is** (a *stationary* operand: the weights in ws, the ifmap in is; a *streamed*
operand: the ifmap in ws, the weights in is). A candidate tiles ``T`` into ``nt`` tiles of
``Tt = ceil(T / nt)`` and runs ``for T tile: for block of k column folds: for row fold: for
column fold in block``, with ``nt`` either ``1`` or the least ``nt`` that makes both one
column fold's partial sums of a tile fit the ofmap SRAM and one tile of the streamed operand
fit its SRAM (:func:`candidate_tiles`). ``nt = 1`` with ``k = 1`` is
SCALE-Sim's order (``for col_fold: for row_fold:``). Per GEMM, with an SRAM of ``kb`` KB
offering half of its bytes (double buffering) and ``overflow(x, cap) = max(x - cap, 0) / x``:

* partial sums live at once: one column fold of one tile, ``pf = Tt * min(Sc, cols) * acc``
  bytes; ``k = floor(ofmap / pf)`` column folds share each row fold's slice of the streamed
  operand when that slice (``Tt * min(Sr, rows)`` elements) fits its SRAM and ``rf > 1``,
  else ``k = 1``;
* streamed operand: ``X * (1 + (ceil(cf / k) - 1) * overflow(X / nt, cap))`` -- each tile is
  read once when it fits, else the part that does not fit is fetched again for every block;
* stationary operand: ``S * (1 + (nt - 1) * overflow(S, cap))`` -- loaded once per tile, the
  part that does not fit its SRAM from DRAM each time;
* partial sums that do not fit: ``2 * T * Sc * acc * (rf - 1) * overflow(pf, ofmap)`` (written
  and read back once per extra row fold);
* outputs: once. Every term adds to the compulsory traffic, which is a lower bound.

Tiling ``T`` is not free: each tile runs its folds again, so a ws/is layer takes
``gemms * folds * nt`` folds of ``Tt`` rows each (:func:`_tiled_cycles`; the per-fold preload,
skew and drain are paid ``nt`` times; with ``weight_prefetch`` only the ``max(Tt, rows)``
floor is). ``nt = 1`` is SCALE-Sim's compute-cycle count exactly, and it is the least, so a
tiled candidate wins only where the DRAM traffic (time or energy) it saves outweighs the
cycles it adds.

**os** (both operands stream, partial sums stay in the PEs): two orders. Candidate 0 is
SCALE-Sim's, ``for col_fold: for row_fold:``: each column fold's weights are read once and
reused across the row folds; the ifmap is fetched again per extra column fold for the part
that does not fit (``A * (1 + (cf - 1) * overflow(A, cap))``). Candidate 1 swaps them: the
ifmap once, the weights ``B * (1 + (rf - 1) * overflow(B, cap))``. Compute cycles do not
depend on the order.

**Grouped layers**: each tile's compute is the cheapest of per-group GEMMs, packed GEMMs and
the vector unit (see model.py); the traffic is that of the per-group GEMMs.

The ``tiling`` knob: ``best`` (the default) chooses among the candidates above; ``scalesim``
keeps SCALE-Sim's order only (candidate 0: ``nt = 1``, ``k = 1``), for comparisons with it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from symbiote.backends.systolic.mapping import OS, WS, fold_cycles, spatio_temporal

#: candidates per layer: T untiled (SCALE-Sim's order; os: column folds outer), and T in the
#: least number of tiles whose partial sums and streamed operand both fit their SRAMs (os:
#: row folds outer)
N_CANDIDATES = 2
#: relaxed choice: softmin temperature, as a fraction of the least key
SOFTMIN_TEMPERATURE = 0.05


class Layer(NamedTuple):
    """The MAC rows of a workload, each a per-row array (per GEMM unless said otherwise)."""

    t: jax.Array           # mapping dims of the dense GEMM (mapping.spatio_temporal)
    sr: jax.Array
    sc: jax.Array
    t_x: jax.Array         # the dims the array runs (a 2:4 row halves the window)
    sr_x: jax.Array
    sc_x: jax.Array
    gemms: jax.Array       # groups * repeat
    groups: jax.Array
    repeat: jax.Array
    px: jax.Array          # N*P*Q
    win_x: jax.Array       # the window the array runs
    filters: jax.Array     # K / groups
    a_bytes: jax.Array     # DRAM bytes of the whole layer, moved once: ifmap, weights, outputs
    b_bytes: jax.Array
    o_bytes: jax.Array
    a_bits: jax.Array      # activation bits, stored weight bits, accumulator bits
    b_bits: jax.Array
    acc_bits: jax.Array
    energy_pj: jax.Array   # the layer's energy that no candidate changes (its MACs), for the choice key
    macs: jax.Array        # the layer's MACs (all GEMMs)


class Design(NamedTuple):
    """The knobs the mapping depends on, as scalars (bytes: half of each SRAM)."""

    rows: jax.Array
    cols: jax.Array
    a_cap: jax.Array
    b_cap: jax.Array
    o_cap: jax.Array
    cycles_per_byte: jax.Array
    dram_pj_per_byte: jax.Array
    vector_width: jax.Array
    prefetch: jax.Array    # 1.0 with weight_prefetch
    pack: jax.Array        # True where grouped layers may run packed
    best: jax.Array        # 1.0: choose among the candidates; 0.0: SCALE-Sim's order only


class Choice(NamedTuple):
    """The chosen mapping of each MAC row (per layer, all GEMMs)."""

    compute: jax.Array     # compute cycles (before datapath passes)
    latency: jax.Array     # max(compute * passes, DRAM time) + fill
    dram_a: jax.Array      # DRAM bytes: ifmap, weights, outputs, partial-sum spills
    dram_b: jax.Array
    dram_o: jax.Array
    dram_psum: jax.Array
    t_tiles: jax.Array     # nt
    order: jax.Array       # 0: SCALE-Sim's (column folds outer, no T tiles, k = 1); 1: another (os: row folds outer)
    block: jax.Array       # k: column folds sharing one slice of the streamed operand
    dram: jax.Array        # all DRAM bytes: dram_a + dram_b + dram_o + dram_psum


def overflow(x, cap):
    """Fraction of an operand that does not fit in ``cap`` bytes."""
    return jnp.maximum(x - cap, 0.0) / jnp.maximum(x, 1.0)


def candidate_tiles(layer: Layer, d: Design, df, ceil, relaxed: bool = False) -> list[jax.Array]:
    """The T tile counts a ws/is layer tries (:data:`N_CANDIDATES` arrays over the layers, each
    in [1, T]): 1, and the least that keeps both one column fold's partial sums of a tile in
    the ofmap SRAM and one tile of the streamed operand in its SRAM."""
    x_g = jnp.where(df == WS, layer.a_bytes, layer.b_bytes) / layer.gemms
    x_cap = jnp.where(df == WS, d.a_cap, d.b_cap)
    t = jnp.maximum(layer.t, 1.0)
    per_row_x = x_g / t                                        # bytes of one row of T
    per_row_p = jnp.minimum(layer.sc, d.cols) * layer.acc_bits / 8.0
    rows_x, rows_p = x_cap / jnp.maximum(per_row_x, 1e-9), d.o_cap / per_row_p
    if not relaxed:                                            # whole rows of T per tile
        rows_x, rows_p = jnp.floor(rows_x), jnp.floor(rows_p)
    nt_x = ceil(t / jnp.maximum(rows_x, 1.0))
    nt_p = ceil(t / jnp.maximum(rows_p, 1.0))
    return [jnp.ones_like(t), jnp.clip(jnp.maximum(nt_x, nt_p), 1.0, t)]


def _tiled_cycles(n_gemms, folds, t, nt, d: Design, df, ceil, smax):
    """Compute cycles of ``n_gemms`` GEMMs of ``folds`` folds each, T tiled in ``nt`` (every
    tile runs the folds again). Without prefetch (SCALE-Sim): every fold preloads its
    stationary operand, streams and drains: ``folds * nt * fold_cycles(Tt)``. With
    ``prefetch`` (ws, is; os has nothing to preload): the next fold's operand loads while the
    current one streams, so a fold takes ``max(Tt, rows)`` (loading ``rows`` rows of weights
    is the floor: T = 1, an LLM decode step, is weight-load bound) and the pipeline fills and
    drains once: ``folds * nt * max(Tt, rows) + 2*rows + cols - 2``."""
    tt = ceil(t / nt)
    f = folds * nt
    plain = f * fold_cycles(d.rows, d.cols, tt, df)
    piped = f * smax(tt, d.rows) + 2.0 * d.rows + d.cols - 2.0
    p = jnp.where(df == OS, 0.0, d.prefetch)
    return n_gemms * (plain + p * (jnp.minimum(piped, plain) - plain))


def _compute(layer: Layer, d: Design, df, nt, ceil, smax, smin, relaxed, grouped: bool = True):
    """Compute cycles of every candidate ([C, L]): per-group GEMMs, or for grouped layers the
    cheapest of those, packed block-diagonal GEMMs and the vector unit (model.py's module doc),
    T tiled in ``nt``."""
    rows, cols = d.rows, d.cols
    per_group = _tiled_cycles(layer.gemms, ceil(layer.sr_x / rows) * ceil(layer.sc_x / cols), layer.t_x, nt, d, df,
                              ceil, smax)
    if not grouped:        # statically no grouped layer (Workload.grouped): per-group is the mapping
        return per_group
    gp = rows / jnp.maximum(layer.win_x, 1.0)
    gp = jnp.clip(gp if relaxed else jnp.floor(gp), 1.0, layer.groups)
    sr_p, sc_p, t_p = spatio_temporal(layer.px, layer.win_x * gp, layer.filters * gp, df)
    packed = _tiled_cycles(ceil(layer.groups / gp) * layer.repeat, ceil(sr_p / rows) * ceil(sc_p / cols), t_p, nt, d,
                           df, ceil, smax)
    vector = ceil(layer.macs / d.vector_width)               # one MAC per lane and cycle
    ok = (layer.groups > 1.0) & d.pack
    return jnp.where(ok, smin(smin(per_group, packed), vector), per_group)


def _traffic(layer: Layer, d: Design, df, nt, first: bool, ceil, relaxed):
    """DRAM bytes of one candidate (per layer): ifmap, weights, psum spills; and the block k.
    ``first``: the candidate is os's column-folds-outer order."""
    g = layer.gemms
    a_g, b_g = layer.a_bytes / g, layer.b_bytes / g
    rf, cf = ceil(layer.sr / d.rows), ceil(layer.sc / d.cols)
    # ---- ws / is
    x_g, x_cap, x_bits = (jnp.where(df == WS, a_g, b_g), jnp.where(df == WS, d.a_cap, d.b_cap),
                          jnp.where(df == WS, layer.a_bits, layer.b_bits))
    s_g, s_cap = jnp.where(df == WS, b_g, a_g), jnp.where(df == WS, d.b_cap, d.a_cap)
    tt = layer.t / nt if relaxed else jnp.ceil(layer.t / nt)
    pf = tt * jnp.minimum(layer.sc, d.cols) * layer.acc_bits / 8.0
    fit = d.o_cap / jnp.maximum(pf, 1.0)
    slice_fits = tt * jnp.minimum(layer.sr, d.rows) * x_bits / 8.0 <= x_cap
    blocks = (rf > 1.0) & slice_fits & (d.best > 0.5)          # tiling = scalesim: k = 1
    k = jnp.where(blocks, jnp.clip(fit if relaxed else jnp.floor(fit), 1.0, cf), 1.0)
    x = x_g * (1.0 + (ceil(cf / k) - 1.0) * overflow(x_g / nt, x_cap))
    s = s_g * (1.0 + (nt - 1.0) * overflow(s_g, s_cap))
    spill = 2.0 * layer.t * layer.sc * layer.acc_bits / 8.0 * (rf - 1.0) * overflow(pf, d.o_cap)
    ws_a, ws_b = jnp.where(df == WS, x, s), jnp.where(df == WS, s, x)
    # ---- os: candidate 0 column folds outer (SCALE-Sim), 1 row folds outer
    if first:
        os_a, os_b = a_g * (1.0 + (cf - 1.0) * overflow(a_g, d.a_cap)), b_g
    else:
        os_a, os_b = a_g, b_g * (1.0 + (rf - 1.0) * overflow(b_g, d.b_cap))
    a = jnp.where(df == OS, os_a, ws_a)
    b = jnp.where(df == OS, os_b, ws_b)
    psum = jnp.where(df == OS, 0.0, spill)
    return g * a, g * b, g * psum, jnp.where(df == OS, 1.0, k)


def choose(layer: Layer, d: Design, df, passes, *, relaxed: bool = False, ceil=jnp.ceil,
           smax=jnp.maximum, smin=jnp.minimum, grouped: bool = True) -> Choice:
    """The chosen mapping of every MAC row. ``passes``: the datapath's passes per MAC (compute
    cycles are multiplied by it). The key is the layer's energy-delay product as far as the
    candidates change it: ``latency * (energy_pj + DRAM bytes * dram_pj_per_byte)``. The
    candidates stay separate arrays (a Python loop, no candidate axis), so XLA fuses the
    whole choice into elementwise code. The exact choice takes the index of the least key
    (the first on a tie) by an argmin over a stacked candidate axis: a reduction, which XLA
    computes once and stores, where a chain of ``where(k2 < key, ...)`` would be fused into
    (and recomputed by) every consumer of every chosen field; for the same reason the total
    DRAM bytes are one field (``dram``), selected once, not four added after selection."""
    fill0 = (layer.a_bytes + layer.b_bytes + layer.o_bytes) / layer.gemms * d.cycles_per_byte \
        / (ceil(layer.sr / d.rows) * ceil(layer.sc / d.cols))
    cands = []
    for i, nt in enumerate(candidate_tiles(layer, d, df, ceil, relaxed)):
        nt = jnp.where(df == OS, 1.0, nt)
        compute = _compute(layer, d, df, nt, ceil, smax, smin, relaxed, grouped)
        a, b, psum, k = _traffic(layer, d, df, nt, i == 0, ceil, relaxed)
        dram = a + b + layer.o_bytes + psum
        latency = smax(compute * passes, dram * d.cycles_per_byte) + fill0 / nt
        key = latency * (layer.energy_pj + dram * d.dram_pj_per_byte)
        if i > 0:   # SCALE-Sim's order alone on tiling = scalesim; a NaN key never wins
            key = jnp.where((d.best > 0.5) & (key == key), key, jnp.inf)
        other = jnp.where(df == OS, float(i), ((nt > 1.0) | (k > 1.0)).astype(jnp.float32))
        cands.append((key, Choice(compute, latency, a, b, layer.o_bytes, psum, nt, other, k, dram)))
    if relaxed:
        best = jax.lax.stop_gradient(functools.reduce(jnp.minimum, [c[0] for c in cands]))
        tau = SOFTMIN_TEMPERATURE * jnp.maximum(best, 1.0)
        ws = [jnp.exp(-(key - best) / tau) for key, _ in cands]
        total = sum(ws)
        return jax.tree_util.tree_map(lambda *xs: sum(w * x for w, x in zip(ws, xs, strict=True)) / total,
                                      *[c for _, c in cands])
    # the index of the least key (the first on a tie), by a reduction over a candidate axis: XLA
    # materializes it once instead of fusing every key into each consumer of the chosen fields
    idx = jnp.argmin(jnp.stack([c[0] for c in cands], axis=-1), axis=-1)
    chosen = cands[0][1]
    for i, (_, c2) in enumerate(cands[1:], start=1):
        better = idx == i
        chosen = jax.tree_util.tree_map(lambda new, old: jnp.where(better, new, old), c2, chosen)
    return chosen
