"""Candidate mappings of each MAC layer onto the spatial array (pure jnp, vectorized).

A mapping factors every loop dim ``D`` of a layer (:data:`.space.DIMS`) over the levels,
innermost first::

    D  <=  rf[D] * sp[D] * glb[D] * dram[D]

* ``rf``: temporal loops inside a PE, over its register-file tile;
* ``sp``: the spatial unrolling over the array (X and Y);
* ``glb``: temporal loops over the global-buffer tile (between the GLB and the PEs);
* ``dram``: temporal loops over DRAM (outermost).

Each factor is at least 1; the product may exceed ``D`` (the last iteration is padded: the
cycles count it, :mod:`.reuse` counts the padded tiles, as Timeloop does with imperfect
factors). A layer has :data:`N_CANDIDATES` = 4 x 4 x 4 = 64 candidates, the product of three
axes; candidate ``slot * 16 + split * 4 + class``:

1. **spatial slot** (4, the dataflow family's, :data:`.space.UNROLLINGS`): per axis ``A``
   (``array_x`` or ``array_y``), the primary dim takes ``p = ceil(Dp / ceil(Dp / A))`` PEs
   (as many passes as ``min(Dp, A)`` would need, with the PEs balanced), the fill dim
   ``min(Df, floor(A / p))``;
2. **loop-order class** (4, :data:`CLASSES`), which sets the order of the GLB and DRAM loops
   (:data:`ORDERS`, outermost first) and the RF tile: each class keeps one operand in the
   PEs (its tile reused across the loops inside the PE) and orders the outer loops so that
   an operand is reused (the loops irrelevant to it innermost):

   =======  ==========================================  ==========================================
   class    RF loops (per PE)                           GLB and DRAM loop order (outer -> inner)
   =======  ==========================================  ==========================================
   ``w``    Q, P (chunk), C (fill): weights over Q P    G K C R S N P Q   (weights reused over N P Q)
   ``o``    S, R (fill), C (fill): psums over C R S     G N K P Q C R S   (psums reused over C R S)
   ``i``    K (chunk), C (fill): inputs over K          G N C P Q R S K   (inputs reused over K)
   ``row``  S (fill), Q (chunk), P (chunk), R (fill),   G N C P Q R S K   (inputs reused over K, as
            C (fill): Eyeriss's 1-D convolution, over                     ZigZag's LOMA maps Eyeriss)
            the output and filter rows the RFs hold and
            a slice of channels
   =======  ==========================================  ==========================================

   The RF tiles are sized by the RF capacities (in elements: weights and inputs at their
   bits, psums at the accumulator's), dim by dim in the order listed: a *chunk* is the
   largest balanced count ``ceil(rem / ceil(rem / cap))`` within ``cap`` = what the RFs of
   the operands the dim tiles hold (at most :data:`RF_CHUNK` iterations; ``rem``: what the
   spatial unrolling left of the dim; ``w``: ``Q`` first, then ``P`` within ``cap / q``, so a
   GEMM, ``Q = 1``, chunks its rows; ``row`` alike, so that where the array took ``Q`` the row
   runs down the output rows, as LOMA maps Eyeriss with ``Q`` unrolled); a *fill* is a chunk
   whose ``cap`` is what the weight and input RFs still hold given the dims before it (``S``,
   ``R``: the filter window, whole where it fits; ``row``'s ``R``: the filter rows whose
   weights and input rows fit beside the rows of ``S``, ``Q`` and ``P``, none where the
   unrolling took ``R``; ``C``: the input channels, at most :data:`RF_CHUNK_C`, so that the
   psums accumulate over a slice of channels in place, as ZigZag's LOMA fills the RFs). A PE that
   holds one element of each operand (a TPU's) still has a mapping (tiles of 1); a candidate
   whose RF tiles do not fit (a window or stride the caps did not foresee) is invalid, never
   shrunk further;
3. **GLB split** (4, :data:`SPLITS`): which of the loops left after the RF go to DRAM
   (the rest stay at the GLB level, whose tile must fit the GLB): ``c`` (G, N, C at DRAM: a
   slice of the input channels at a time), ``p`` (G, N, P at DRAM: a band of output rows at a
   time), ``fit`` (G, N, K at DRAM: a slice of the filters at a time, and of C and P as much
   at the GLB level as the GLB holds, :func:`glb_fit`: C's balanced count that the weight
   tile fits, then P's that the psum and input tiles fit, the rest at DRAM; a layer that
   fits keeps all of C and P at the GLB and, with class ``i``'s order, crosses DRAM once
   operand by operand), ``min`` (everything but R, S at DRAM: the GLB tile is the array's).
   ``fit``'s counts are sized from the GLB capacities in elements (a shared GLB's whole size
   for each operand); a tile that still does not fit is masked.

Everything is a function of the layer's dims and the design's knobs, as arrays: no Python
loop over layers, and the candidate count is the same for every layer and design. The code
keeps the 16 (split, class) pairs as separate ``[L, SLOTS]`` arrays, with the factors that are
1 by construction as the Python float :data:`ONE` (skipped when multiplying): most of a pair's
factors are, so its analysis is a few dozen array operations.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.backends.spatial.space import DATAFLOWS, NONE, SLOTS, UNROLLINGS, C, G, K, N, P, Q, R, S

CLASSES = ("w", "o", "i", "row")
#: GLB and DRAM loop order of each class, outermost first
ORDERS = {
    "w": (G, K, C, R, S, N, P, Q),
    "o": (G, N, K, P, Q, C, R, S),
    "i": (G, N, C, P, Q, R, S, K),
    "row": (G, N, C, P, Q, R, S, K),
}
#: order of each class's RF loops inside a PE, outermost first. The counts do not depend on it
#: (:mod:`.reuse`: every MAC reads its operands from the RFs); the loop nests written for peers
#: (:func:`describe`, the ZigZag and AccelForge exports) use it. The class's GLB order, but for
#: ``row``, whose output rows run innermost: each weight of the filter row stays at the MAC
#: while it slides along the outputs, the order ZigZag's LOMA gives Eyeriss's RFs.
RF_ORDERS = {**ORDERS, "row": (G, N, C, R, S, P, Q, K)}
SPLITS = ("c", "p", "fit", "min")


def level_order(cls: int, level: str) -> tuple[int, ...]:
    """The order of class ``cls``'s loops at ``level`` (``"rf"``, ``"glb"``, ``"dram"``),
    outermost first: :data:`RF_ORDERS` inside a PE, :data:`ORDERS` above."""
    return (RF_ORDERS if level == "rf" else ORDERS)[CLASSES[cls]]
#: most iterations of a class's chunked RF loop (``w``: Q x P together; ``i``: K; ``row``: Q)
RF_CHUNK = 16
#: most input channels of an RF tile's C fill (module doc)
RF_CHUNK_C = 64
N_CLASSES, N_SPLITS = len(CLASSES), len(SPLITS)
N_CANDIDATES = SLOTS * N_SPLITS * N_CLASSES

#: [families, slots, 4]: primary X, fill X, primary Y, fill Y dim of each slot (NONE: no fill)
UNROLL_TABLE = np.array([[[u.x, u.x_fill, u.y, u.y_fill] for u in UNROLLINGS[f]] for f in DATAFLOWS], np.int32)
UNROLL_NAMES = tuple(tuple(u.name for u in UNROLLINGS[f]) for f in DATAFLOWS)

#: a per-dim factor: an array, or the Python float 1.0 where the factor is 1 by construction
#: (those are skipped when multiplying: the candidates' static structure keeps the work small)
Factor = Union[jax.Array, float]
Dims = tuple[Factor, ...]   # 8 factors, one per loop dim (DIMS order), broadcastable together
ONE = 1.0
#: dims that no spatial unrolling uses (their spatial factor is 1 by construction)
NEVER_SPATIAL = tuple(d for d in range(8) if d not in UNROLL_TABLE)


class Layers(NamedTuple):
    """The MAC rows' loop dims and window geometry, each ``[L]``."""

    dims: Dims
    stride_h: jax.Array
    stride_w: jax.Array
    dil_h: jax.Array
    dil_w: jax.Array


class Factors(NamedTuple):
    """One (split, class) pair's factors per dim and level, ``[L, SLOTS]`` arrays or ``ONE``."""

    rf: Dims
    sp: Dims
    glb: Dims
    dram: Dims
    rem: Dims      # what the array and the RF leave of each dim: glb * dram (exactly, but for fit's rounding)
    split: int
    cls: int


def is_one(x) -> bool:
    return isinstance(x, float) and x == ONE


def mul(*xs) -> Factor:
    """The product, skipping factors that are 1 by construction (``ONE`` if all are)."""
    out: Factor = ONE
    for x in xs:
        if not is_one(x):
            out = x if is_one(out) else out * x
    return out


def cdiv(a: Factor, b: Factor) -> Factor:
    """``ceil(a / b)`` (``a`` itself when ``b`` is 1 by construction)."""
    return a if is_one(b) else jnp.ceil(a / b)


def layers(wl, rows: np.ndarray) -> Layers:
    """The loop dims of the MAC rows ``rows`` of a Workload: ``G = groups * w_repeat`` (groups
    and a batched matmul's distinct operands), ``N = n * repeat / w_repeat`` (repeats sharing
    their weights, e.g. a recurrent cell's time steps, act as a batch), the per-group
    ``K``/``C``, and ``P Q R S``."""
    g = jnp.maximum(wl.groups[rows], 1.0)
    wr = jnp.maximum(wl.w_repeat[rows], 1.0)
    rep = jnp.maximum(wl.repeat[rows], 1.0)
    one = lambda x: jnp.maximum(x, 1.0)  # noqa: E731
    dims = (g * wr, one(wl.n[rows] * rep / wr), one(wl.k[rows] / g), one(wl.c[rows] / g), one(wl.p[rows]),
            one(wl.q[rows]), one(wl.r[rows]), one(wl.s[rows]))
    return Layers(dims, one(wl.stride_h[rows]), one(wl.stride_w[rows]), one(wl.dil_h[rows]), one(wl.dil_w[rows]))


def window(t_out: Factor, t_filter: Factor, stride, dil) -> Factor:
    """Distinct inputs of ``t_out`` outputs and ``t_filter`` taps along one axis: the span
    ``(t_out-1)*stride + (t_filter-1)*dil + 1``, or ``t_out * t_filter`` where the taps leave
    gaps (a stride above the filter's extent: a 1x1 stride-2 layer reads every other input).
    Exact at dilation 1; with a dilation above 1 and a stride above 1 it may count inputs the
    taps skip (never fewer than they read)."""
    if is_one(t_filter):
        return t_out
    if is_one(t_out):
        return t_filter
    return jnp.minimum((t_out - 1.0) * stride + (t_filter - 1.0) * dil + 1.0, t_out * t_filter)


def unroll_table(dataflow) -> jax.Array:
    """The design's 4 spatial slots, ``[SLOTS, 4]`` (an index into :data:`.space.DATAFLOWS`)."""
    idx = jnp.clip(jnp.round(jnp.asarray(dataflow, jnp.float32)), 0, len(DATAFLOWS) - 1).astype(jnp.int32)
    return jnp.asarray(UNROLL_TABLE)[idx]


def _pick(dims: Dims, idx: jax.Array) -> jax.Array:
    """``dims[idx]`` per slot (``idx``: ``[SLOTS]``), as ``[L, SLOTS]``."""
    out = jnp.ones((dims[0].shape[0], SLOTS))
    for d, x in enumerate(dims):
        if d not in NEVER_SPATIAL:
            out = jnp.where(idx == d, x[:, None], out)
    return out


def spatial(ly: Layers, table: jax.Array, ax, ay) -> Dims:
    """Spatial factor of every dim, ``[L, SLOTS]`` (``ONE`` for dims never unrolled; module doc, axis 1)."""
    factors: list[Factor] = [ONE] * 8
    for axis, prim, fill in ((ax, table[:, 0], table[:, 1]), (ay, table[:, 2], table[:, 3])):
        dp = _pick(ly.dims, prim)
        p = jnp.ceil(dp / jnp.ceil(dp / axis))
        df = jnp.where(fill == NONE, 1.0, _pick(ly.dims, fill))
        f = jnp.clip(jnp.minimum(df, jnp.floor(axis / p)), 1.0, None)
        for d in range(8):
            if d not in NEVER_SPATIAL:
                factors[d] = mul(factors[d], jnp.where(prim == d, p, 1.0) * jnp.where(fill == d, f, 1.0))
    return tuple(factors)


def pe_surrogate(ly: Layers, table: jax.Array, ax, ay) -> jax.Array:
    """``[L, SLOTS]`` ones whose gradient is that of ``1 / PEs`` with the PEs of each slot taken
    smoothly as ``min(Dx, array_x) * min(Dy, array_y)`` (primary dims): multiplied into the
    compute cycles of the relaxed model, it keeps their value and gives them a gradient in the
    array's size (the exact factors are piecewise constant in it)."""
    s = jnp.minimum(_pick(ly.dims, table[:, 0]), ax) * jnp.minimum(_pick(ly.dims, table[:, 2]), ay)
    return jax.lax.stop_gradient(s) / s


def chunk(rem, cap):
    """The largest balanced count of ``rem`` iterations within ``cap``: ``ceil(rem / ceil(rem /
    floor(cap)))`` (at least 1)."""
    c = jnp.maximum(jnp.floor(cap), 1.0)
    return jnp.ceil(rem / jnp.ceil(rem / c))


def _chunk(rem: Factor, cap) -> Factor:
    """:func:`chunk`, ``ONE`` where ``rem`` is 1 by construction."""
    return ONE if is_one(rem) else chunk(rem, cap)


def rf_factors(rem: Dims, cls: str, ly: Layers, elems: tuple | None = None) -> Dims:
    """RF factors of every dim for class ``cls`` (module doc), ``ONE`` where the class has no RF
    loop: the class's chunks and fills, the last the input channels that the weight and input
    RFs still hold (at most :data:`RF_CHUNK_C`), sized by ``elems``, the weight, input and psum
    RFs' capacities in elements (``[L, 1]`` each; None: ``RF_CHUNK x RF_CHUNK_C`` weights and
    inputs, ``RF_CHUNK`` psums) and the window's geometry (``ly``). A tile that still does not
    fit its RF is masked, never shrunk further."""
    big = float(RF_CHUNK)
    w_cap, i_cap, o_cap = elems if elems is not None else (big * RF_CHUNK_C, big * RF_CHUNK_C, big)
    sh, sw, dh, dw = (x[:, None] for x in (ly.stride_h, ly.stride_w, ly.dil_h, ly.dil_w))
    f: list[Factor] = [ONE] * 8
    if cls == "w":                                         # Q first, then P with what is left (GEMMs: Q = 1)
        cap = jnp.minimum(jnp.minimum(i_cap, o_cap), RF_CHUNK)   # one psum and (at least) one input per output
        f[Q] = _chunk(rem[Q], cap)
        f[P] = _chunk(rem[P], jnp.floor(cap / f[Q]))
        w_per_c, i_per_c = ONE, window(f[P], ONE, sh, dh) * window(f[Q], ONE, sw, dw)
    elif cls == "o":                                       # the filter window, as much of it as the RFs hold
        f[S] = _chunk(rem[S], jnp.minimum(w_cap, i_cap))
        f[R] = _chunk(rem[R], jnp.minimum(w_cap, i_cap) / f[S])
        w_per_c, i_per_c = mul(f[R], f[S]), window(ONE, f[R], sh, dh) * window(ONE, f[S], sw, dw)
    elif cls == "i":
        f[K] = _chunk(rem[K], jnp.minimum(jnp.minimum(w_cap, o_cap), RF_CHUNK))
        w_per_c, i_per_c = f[K], ONE
    else:  # row: Eyeriss's 1-D convolution primitive, a filter row against a row of outputs
        f[S] = _chunk(rem[S], jnp.minimum(w_cap, i_cap))
        cap = jnp.minimum(o_cap, RF_CHUNK)
        f[Q] = _chunk(rem[Q], cap)
        row = window(f[Q], f[S], sw, dw)                  # the input row the filter row slides over
        f[P] = _chunk(rem[P], jnp.minimum(jnp.floor(cap / f[Q]), i_cap / row))   # output rows: the psums Q left
        f[R] = _chunk(rem[R], jnp.minimum(w_cap / f[S], i_cap / (row * f[P])))   # more filter rows, as many as fit
        w_per_c, i_per_c = mul(f[S], f[R]), row * window(f[P], f[R], sh, dh)
    f[C] = _chunk(rem[C], jnp.minimum(jnp.minimum(w_cap / w_per_c, i_cap / i_per_c), RF_CHUNK_C))
    return tuple(f)


def split_factors(rem: Dims, split: str, fit: tuple[Factor, Factor] = (ONE, ONE)) -> tuple[Dims, Dims]:
    """GLB-level and DRAM-level factors of every dim for one split (module doc): ``rem`` (what
    is left after the array and the RF) stays at the GLB level except for the dims the split
    sends to DRAM (``fit``: C's GLB factor and the bound on P's, :func:`glb_fit`, the rest of
    each at DRAM)."""
    glb: list[Factor] = list(rem)
    dram: list[Factor] = [ONE] * 8
    to_dram = {"c": (G, N, C), "p": (G, N, P), "fit": (G, N, K), "min": (G, N, K, C, P, Q)}[split]
    for d in to_dram:
        glb[d], dram[d] = ONE, rem[d]
    if split == "fit":
        c, p_cap = fit
        if not is_one(rem[C]):
            glb[C], dram[C] = c, jnp.ceil(rem[C] / c)
        if not is_one(rem[P]):
            glb[P] = chunk(rem[P], p_cap)
            dram[P] = jnp.ceil(rem[P] / glb[P])
    return tuple(glb), tuple(dram)


def glb_fit(ly: Layers, arr: Dims, rem: Dims, glb_elems: tuple | None) -> tuple[Factor, Factor]:
    """Split ``fit``'s GLB factor of C and bound on P's (G, N, K at DRAM; the array's tile of
    every dim and all of R, S, Q at the GLB level): C's, the largest balanced count of channels
    whose weight tile fits; P's bound, the output rows whose psum tile and, with C's count,
    input tile fit. ``glb_elems``:
    the weight, input and output GLB capacities in elements (``[L, 1]`` each; None: unbounded,
    no split). A tile that still does not fit is masked."""
    if glb_elems is None:
        return rem[C], rem[P]
    sh, dh, sw, dw = (x[:, None] for x in (ly.stride_h, ly.dil_h, ly.stride_w, ly.dil_w))
    w_cap, i_cap, o_cap = (e * (1.0 + 1e-6) for e in glb_elems)
    tot = [mul(a, r) for a, r in zip(arr, rem, strict=True)]
    c = _chunk(rem[C], w_cap / mul(arr[G], arr[K], arr[C], tot[R], tot[S]))
    rows = i_cap / mul(arr[G], arr[N], arr[C], c, window(tot[Q], tot[S], sw, dw))    # input rows that fit
    t = jnp.maximum((rows - 1.0 - (tot[R] - 1.0) * dh) / sh + 1.0, rows / tot[R])   # output rows they serve
    return c, jnp.minimum(t / arr[P], o_cap / mul(arr[G], arr[N], arr[K], arr[P], tot[Q]))


def factors(ly: Layers, table: jax.Array, ax, ay, rf_elems: tuple | None = None,
            glb_elems: tuple | None = None) -> tuple[Factors, ...]:
    """Every (split, class) pair's factors (:class:`Factors`; index ``split * N_CLASSES + cls``),
    each over ``[L, SLOTS]``, from the dims, the array's size and the RFs' capacities in
    elements (``rf_elems``: weight, input, psum, ``[L]`` each; :func:`rf_factors`) and the
    weight, input and output GLBs' (``glb_elems``, ``[L]`` each; :func:`glb_fit`)."""
    sp = spatial(ly, table, ax, ay)
    rem1 = tuple(jnp.broadcast_to(d[:, None], (d.shape[0], SLOTS)) if is_one(s) else jnp.ceil(d[:, None] / s)
                 for d, s in zip(ly.dims, sp, strict=True))
    out = []
    col = lambda es: None if es is None else tuple(jnp.maximum(jnp.floor(e), 1.0)[:, None] for e in es)  # noqa: E731
    caps, gcaps = col(rf_elems), col(glb_elems)
    rf = {c: rf_factors(rem1, c, ly, caps) for c in CLASSES}
    rem2 = {c: tuple(cdiv(r, f) for r, f in zip(rem1, rf[c], strict=True)) for c in CLASSES}
    fit = {c: glb_fit(ly, tuple(mul(f, s) for f, s in zip(rf[c], sp, strict=True)), rem2[c], gcaps) for c in CLASSES}
    for j, split in enumerate(SPLITS):
        for i, c in enumerate(CLASSES):
            glb, dram = split_factors(rem2[c], split, fit[c])
            out.append(Factors(rf[c], sp, glb, dram, rem2[c], j, i))
    return tuple(out)


def describe(unroll: str, split: int, cls: int, f: dict[str, np.ndarray]) -> str:
    """A chosen mapping as a loop nest, outermost first (one layer; ``f``: level -> 8 factors)::

        dram[K2 P7] glb[C4 Q7] || X:K16 Y:C16 || rf[R3 S3 Q4]  (ws, split fit, class w)

    Loops of extent 1 are left out; GLB and DRAM loops in the class's order, RF loops in its
    RF order (:data:`RF_ORDERS`)."""
    from symbiote.backends.spatial.space import DIMS

    def loops(level: str) -> str:
        bounds = ((d, int(round(f[level][d]))) for d in level_order(cls, level))
        body = " ".join(f"{DIMS[d]}{b}" for d, b in bounds if b > 1)
        return f"{level}[{body}]"

    sp = " ".join(f"{DIMS[d]}{int(round(f['sp'][d]))}" for d in range(8) if round(f["sp"][d]) > 1)
    return (f"{loops('dram')} {loops('glb')} || {sp or '-'} || {loops('rf')}"
            f"  ({unroll}, split {SPLITS[split]}, class {CLASSES[cls]})")
