"""Loop-nest reuse analysis: how many elements of each operand cross each memory boundary.

The rule (the one Timeloop/AccelForge and ZigZag apply to a loop nest with one tile per
operand and level). A mapping (:mod:`.mapping`) is the nest, outermost first::

    for DRAM loops (the class's order):          bounds dram[d]
      for GLB loops (the same order):            bounds glb[d]
        parallel-for X, Y (the spatial unrolling): sp[d]
          for RF loops (inside each PE):         rf[d]
            MAC

**Tiles.** An operand's tile at a level is its footprint over the loops at and below that
level, with ``T[d]`` the product of those loops' bounds of dim ``d``:
``W = T_G T_K T_C T_R T_S``, ``O = T_G T_N T_K T_P T_Q`` and, through the sliding window,
``I = T_G T_N T_C H W`` with the distinct input rows ``H = min((T_P-1) stride_h + (T_R-1) dil_h
+ 1, T_P T_R)`` (:func:`.mapping.window`: the rows the taps span, or one per output row and tap
where a stride above the filter's extent leaves gaps, as a 1x1 layer at stride 2 reads every
other row) and columns ``W`` alike from ``T_Q``, ``T_S``. The inputs a stride skips are never
read, as ZigZag counts them.

**Fills.** A level's tile of an operand is (re)filled once per iteration of the loops
above the level, *except* the loops irrelevant to the operand that sit inside every loop
relevant to it (with a bound above 1): while only those iterate, the tile does not change
and stays (the operand is *stationary* there). So, walking the loops above the level from
the innermost out, ``fills = product of the bounds of every loop from the outermost down to
the innermost relevant loop of bound > 1`` (irrelevant loops above that one multiply too:
the tile was evicted in between). Relevance: :data:`.space.RELEVANT` (P and R are relevant
to inputs, as are Q and S). Accesses crossing a boundary = ``tile x fills``.

Per operand, for one layer (elements; the fills of the RF count the DRAM and GLB loops, the
fills of the GLB only the DRAM loops):

* **GLB -> array (reads of W and I)**: the tile over the RF and spatial loops times the RF's
  fills. The footprint over the spatial loops counts an element once however many PEs use it:
  a spatial dim irrelevant to the operand is a **multicast** (one GLB read feeds every PE along
  it), and for inputs the sliding window makes neighbouring PEs share elements (Eyeriss's
  diagonal reuse: ``P`` on X and ``R`` on Y need ``(P-1)*stride + (R-1)*dil + 1`` input rows,
  not ``P*R``, where the taps overlap). **Deliveries** (RF writes) count every PE: the RF tile
  x fills x PEs.
* **Partial sums**: each PE's psum tile leaves its RF once per RF fill (**drains**); PEs that
  differ only in spatial dims irrelevant to O (C, R, S unrolled) add their psums on the way
  (**spatial reduction by PE-to-PE forwarding**: ``drains - writes`` hops), and the GLB
  receives ``O(rf x sp) x fills`` **psum writes**. Every write but the first of each output
  is read back to continue the sum: **psum reads = writes - outputs** (``outputs`` = the
  padded output count ``O(total)``).
* **DRAM -> GLB**: the GLB tile (RF x spatial x GLB loops) x the GLB's fills, for W and I.
  For O the GLB sends ``O(glb) x fills`` to DRAM: the outputs once, the rest partial sums
  that spill and are read back (``dram psum reads = writes - outputs``). A tensor kept on
  chip by fusion skips DRAM (the model's job).
* **RF <-> MAC**: every MAC reads a weight and an input from the RFs and reads and writes a
  partial sum (the model counts these from the MACs).

Inputs' halos between consecutive tiles are fetched again (no sliding-window reuse across
temporal iterations), as Timeloop does without its sliding-window option.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from symbiote.backends.spatial.mapping import CLASSES, ONE, ORDERS, Dims, Factor, Factors, Layers, is_one, mul, window
from symbiote.backends.spatial.space import RELEVANT, C, G, K, N, P, Q, R, S


class Accesses(NamedTuple):
    """Elements crossing each boundary for a whole layer, per candidate (module doc); a field
    may be ``ONE`` where it is 1 by construction."""

    glb_reads_w: jax.Array      # GLB -> array, multicast counted once
    glb_reads_i: jax.Array
    psum_writes: jax.Array      # array -> GLB after spatial reduction
    psum_reads: jax.Array       # GLB -> array
    deliveries_w: jax.Array     # RF writes, every PE counted
    deliveries_i: jax.Array
    drains: jax.Array           # psums leaving the PEs' RFs
    forwards: jax.Array         # PE-to-PE psum hops (spatial reduction)
    dram_w: jax.Array           # DRAM -> GLB
    dram_i: jax.Array
    dram_o_writes: jax.Array    # GLB -> DRAM: outputs + psum spills
    dram_psum_reads: jax.Array  # DRAM -> GLB: spilled psums read back
    outputs: jax.Array          # distinct (padded) outputs
    temporal: jax.Array         # product of all temporal bounds: cycles of one pass
    pes: jax.Array              # PEs in use
    rf_tile_w: jax.Array        # tiles (elements): one PE's RF tile of each operand
    rf_tile_i: jax.Array
    rf_tile_o: jax.Array
    glb_tile_w: jax.Array       # the GLB tile of each operand
    glb_tile_i: jax.Array
    glb_tile_o: jax.Array


def footprint(op: str, t: Dims, ly: Layers) -> Factor:
    """Elements of operand ``op`` ("W", "I", "O") over loop bounds ``t`` (8 factors)."""
    if op == "W":
        return mul(t[G], t[K], t[C], t[R], t[S])
    if op == "O":
        return mul(t[G], t[N], t[K], t[P], t[Q])
    sh, sw, dh, dw = (x[:, None] for x in (ly.stride_h, ly.stride_w, ly.dil_h, ly.dil_w))
    return mul(t[G], t[N], t[C], window(t[P], t[R], sh, dh), window(t[Q], t[S], sw, dw))


def walk(loops, op: str, f: Factor = ONE) -> Factor:
    """Continue the fill count ``f`` of a tile of ``op`` outwards through ``loops`` (``(dim,
    bound)``, outermost first; walked from the innermost). ``f > 1`` exactly when a relevant
    loop of bound > 1 was passed (bounds are >= 1), after which every loop multiplies."""
    rel = RELEVANT[op]
    for d, b in reversed(loops):
        if is_one(b):
            continue
        if d in rel:
            f = mul(f, b)
        elif not is_one(f):
            f = jnp.where(f > 1.0, f * b, f)
    return f


def fills(loops, op: str) -> Factor:
    """How often a tile of ``op`` is filled under ``loops`` (``(dim, bound)``, outermost first)."""
    return walk(loops, op)


def _prod(xs: Dims, ys: Dims) -> Dims:
    return tuple(mul(x, y) for x, y in zip(xs, ys, strict=True))


class _ClassParts(NamedTuple):
    """What every split of one class shares: the array tile, RF and array footprints, PEs."""

    arr: Dims
    pes: Factor
    rf_fp: dict
    arr_fp: dict
    temporal: Factor     # rf * rem over the dims (every split's but fit's, whose rounding may pad more)
    outputs: Factor      # O over rf * sp * rem (idem)


def _class_parts(ly: Layers, fx: Factors) -> _ClassParts:
    arr = _prod(fx.rf, fx.sp)
    ops = ("W", "I", "O")
    return _ClassParts(arr, mul(*fx.sp), {o: footprint(o, fx.rf, ly) for o in ops},
                       {o: footprint(o, arr, ly) for o in ops}, mul(*fx.rf, *fx.rem),
                       footprint("O", _prod(arr, fx.rem), ly))


def analyze(ly: Layers, fx: Factors, parts: _ClassParts | None = None) -> Accesses:
    """The access counts of one (split, class) pair's candidates (``[L, SLOTS]`` arrays);
    ``parts``: the class's shared terms when already computed (:func:`analyze_all`)."""
    cp = parts or _class_parts(ly, fx)
    order = ORDERS[CLASSES[fx.cls]]
    gt = _prod(cp.arr, fx.glb)
    exact = all(is_one(g) or is_one(d) for g, d in zip(fx.glb, fx.dram, strict=True))   # glb * dram == rem
    temporal = cp.temporal if exact else mul(*fx.rf, *fx.glb, *fx.dram)
    up = [(d, fx.dram[d]) for d in order]
    inner = [(d, fx.glb[d]) for d in order]
    dram_all = mul(*fx.dram)
    fill_dram = {op: walk(up, op) for op in ("W", "I", "O")}
    fill_rf = {}
    for op in ("W", "I", "O"):      # the RF's walk: the GLB loops, then the DRAM loops (module doc)
        g = walk(inner, op)
        fill_rf[op] = fill_dram[op] if is_one(g) else jnp.where(g > 1.0, mul(g, dram_all), fill_dram[op])
    outputs = cp.outputs if exact else footprint("O", _prod(gt, fx.dram), ly)
    psum_writes = mul(cp.arr_fp["O"], fill_rf["O"])
    drains = mul(cp.rf_fp["O"], fill_rf["O"], cp.pes)
    glb_tile = {op: footprint(op, gt, ly) for op in ("W", "I", "O")}
    dram_o = mul(glb_tile["O"], fill_dram["O"])
    return Accesses(
        glb_reads_w=mul(cp.arr_fp["W"], fill_rf["W"]),
        glb_reads_i=mul(cp.arr_fp["I"], fill_rf["I"]),
        psum_writes=psum_writes,
        psum_reads=psum_writes - outputs,
        deliveries_w=mul(cp.rf_fp["W"], fill_rf["W"], cp.pes),
        deliveries_i=mul(cp.rf_fp["I"], fill_rf["I"], cp.pes),
        drains=drains,
        forwards=drains - psum_writes,
        dram_w=mul(glb_tile["W"], fill_dram["W"]),
        dram_i=mul(glb_tile["I"], fill_dram["I"]),
        dram_o_writes=dram_o,
        dram_psum_reads=dram_o - outputs,
        outputs=outputs,
        temporal=temporal,
        pes=cp.pes,
        rf_tile_w=cp.rf_fp["W"],
        rf_tile_i=cp.rf_fp["I"],
        rf_tile_o=cp.rf_fp["O"],
        glb_tile_w=glb_tile["W"],
        glb_tile_i=glb_tile["I"],
        glb_tile_o=glb_tile["O"],
    )


def analyze_all(ly: Layers, fxs) -> tuple[Accesses, ...]:
    """:func:`analyze` of every pair, the per-class terms computed once per class."""
    parts: dict[int, _ClassParts] = {}
    out = []
    for fx in fxs:
        if fx.cls not in parts:
            parts[fx.cls] = _class_parts(ly, fx)
        out.append(analyze(ly, fx, parts[fx.cls]))
    return tuple(out)
