"""On-chip SRAM costs from CACTI: access energy per bit, area and leakage, by capacity and node.

The numbers come from CACTI 7 runs recorded once by ``benchmarks/record_cacti.py`` into
``data/cacti_sram.json`` (package data; the table's ``meta`` names the CACTI and package
versions, the command and the date). No CACTI is needed here: the table is read once at
import into jnp arrays, and the functions below are pure jnp, differentiable in the
capacity, cheap enough to run once per design under ``jit(vmap(...))``.

Which CACTI rows (see the recorder's doc for the whole table):

* a single-ported ``ram`` macro of :data:`WIDTH_BITS` = 256-bit accesses (the default
  32-row int8 systolic array reads 32 x 8 bits per cycle), one UCA bank inside which CACTI
  chooses the sub-array/mat partitioning, :data:`CELL` = ``itrs-lstp`` cells and periphery
  (hwcomponents-cacti's default configuration). Each SRAM knob is costed as one such
  macro whatever the array's width (an SRAM built as several narrower macros side by side,
  as a wide array would read it, costs less per bit: not modelled). :data:`CELL` can be
  set to ``itrs-lop`` or ``itrs-hp``, whose rows are recorded at this organization too:
  at 16 MiB and 45 nm their leakage is 810x / 19000x the ``itrs-lstp`` one (323 mW /
  7.5 W against 0.40 mW), their dynamic energy 0.39x / 0.68x, their area the same;
* energy per bit: the mean of CACTI's read and write energy per access over the width
  (the models count SRAM accesses without telling reads from writes);
* leakage: CACTI's standby leakage of the macro (mW); area: the macro's (mm^2).

Capacity: piecewise linear in log(capacity) -> log(value) through the recorded capacities
(8 KB ... 256 MiB, every power of two and the 1.5x points between, and 108 KB); outside
that range the end segments are extended (a power law). Nodes (:data:`technology.NODES_NM`):

* 90, 65, 45, 32, 22 nm: CACTI's own technology files, directly;
* a node between two of those (28 nm): log(value) interpolated linearly in log(node)
  between the neighbours (32 and 22 nm for 28 nm: a power law in the feature size). CACTI
  can also run at 28 nm (it interpolates its device parameters linearly in the node and
  re-optimizes the organization); those rows are recorded: against them the power law is
  0.79-1.18x in read energy, 0.82-1.13x in area and 0.60-0.66x in leakage over the
  recorded capacities (``tests/backends/test_memories.py`` bounds the difference);
* below 22 nm (16, 7 nm), where CACTI 7 stops (its 16 nm parameter file ships disabled in
  ``parameter.cc``): the 22 nm values times the
  technology module's scale ratio ``S[node] / S(22 nm)``, with ``S`` = ``ENERGY_SCALE``
  for the energy and the leakage (an assumption: no leakage factor is tabulated there, and
  the standby power of a fixed capacity is taken to track its switched capacitance and
  supply as the dynamic energy does) and ``AREA_SCALE`` for the area; ``S(22 nm)`` is the
  tuple interpolated in log-log between its neighbouring nodes (28 and 16 nm).

A design's node is given as choice weights ``nw`` over ``technology.NODES_NM`` (one-hot for
a legal design, a softmax for a relaxed one, :func:`technology.node_weights`); every
function returns ``exp(sum_i nw[i] * log f_i(capacity))``: ``f_i`` itself for a legal design,
and for a relaxed one a geometric mix, smooth like the log-log interpolation it extends (one
``exp`` per cost instead of one per node: under ``jit(vmap)`` over designs this is ~40%
faster for the whole systolic model).
"""

from __future__ import annotations

import json
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.backends import technology

CELL = "itrs-lstp"
WIDTH_BITS = 256
BANKS = 1
#: the nodes CACTI 7 has technology parameters for (its 28 nm rows are its own interpolation)
CACTI_NODES_NM = (90, 65, 45, 32, 22)
COSTS = ("pj_per_bit", "area_mm2", "leakage_mw")


def load_table() -> dict:
    """The recorded table: ``meta``, ``columns``, ``rows`` (lists), ``failed``."""
    return json.loads(resources.files("symbiote.backends").joinpath("data", "cacti_sram.json").read_text())


TABLE = load_table()


def recorded(node_nm: float, *, section: str = "sram", cell: str = CELL, width_bits: int = WIDTH_BITS,
             banks: int = BANKS) -> dict[str, np.ndarray]:
    """CACTI's rows at one node and organization, by ascending capacity: column -> array."""
    cols = TABLE["columns"]
    sel = [dict(zip(cols, r, strict=True)) for r in TABLE["rows"]]
    sel = sorted((r for r in sel if (r["section"], r["cell"], r["width_bits"], r["banks"], r["node_nm"])
                  == (section, cell, width_bits, banks, node_nm)), key=lambda r: r["capacity_kb"])
    if not sel:
        raise KeyError(f"no CACTI rows for {section} {cell} {width_bits} bits {banks} bank(s) at {node_nm} nm")
    return {c: np.array([r[c] for r in sel]) for c in cols if c not in ("section", "cell")}


def _cacti_costs(node_nm: int) -> tuple[np.ndarray, np.ndarray]:
    """(capacities KB, [3, capacities] costs) at a node CACTI models."""
    r = recorded(node_nm)
    e = 0.5 * (r["read_pj_per_bit"] + r["write_pj_per_bit"])
    return r["capacity_kb"], np.stack([e, r["area_mm2"], r["leakage_mw"]])


def _loglog(x: float, xs, ys):
    """Interpolate ``ys`` (positive) at ``x`` linearly in log(x) -> log(y)."""
    xs, ys = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    order = np.argsort(xs)
    return float(np.exp(np.interp(np.log(x), xs[order], ys[order])))


def node_costs(node_nm: int) -> tuple[np.ndarray, np.ndarray]:
    """(capacities KB, [3, capacities] costs: pJ/bit, mm^2, mW) at any node (module doc)."""
    if node_nm in CACTI_NODES_NM:
        return _cacti_costs(node_nm)
    lo = min(CACTI_NODES_NM)
    if lo < node_nm < max(CACTI_NODES_NM):
        a = max(n for n in CACTI_NODES_NM if n < node_nm)
        b = min(n for n in CACTI_NODES_NM if n > node_nm)
        caps, ca = _cacti_costs(a)
        capsb, cb = _cacti_costs(b)
        assert np.array_equal(caps, capsb)
        t = (np.log(node_nm) - np.log(a)) / (np.log(b) - np.log(a))
        return caps, np.exp((1.0 - t) * np.log(ca) + t * np.log(cb))
    if node_nm < lo:
        caps, c = _cacti_costs(lo)

        def ratio(scale):
            return scale[technology.NODES_NM.index(node_nm)] / _loglog(lo, technology.NODES_NM, scale)

        e, a = ratio(technology.ENERGY_SCALE), ratio(technology.AREA_SCALE)
        return caps, c * np.array([e, a, e])[:, None]
    raise ValueError(f"no SRAM costs for a {node_nm} nm node (CACTI covers {max(CACTI_NODES_NM)}-{lo} nm)")


def _segments(caps: np.ndarray, costs: np.ndarray):
    """The piecewise-linear interpolant of log(cost) over x = log(capacity), per segment:
    start value [K-1, ...], slope [K-1, ...], start x [K-1], inner knots [K-2] (a capacity
    below the first knot falls in the first segment, above the last in the last: the end
    segments extended)."""
    x = np.log(caps)
    y = np.moveaxis(np.log(costs), -1, 0)                              # [K, ...]
    s = np.diff(y, axis=0) / np.diff(x).reshape((-1,) + (1,) * (y.ndim - 1))
    return y[:-1], s, x[:-1], x[1:-1]


def _build():
    caps = None
    per_node = []
    for n in technology.NODES_NM:
        c, v = node_costs(n)
        assert caps is None or np.array_equal(caps, c)
        caps = c
        per_node.append(v)
    y0, slope, x0, knots = _segments(caps, np.stack(per_node, axis=1))   # [K-1, 3, nodes] x2, [K-1], [K-2]
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    return caps, (f32(y0), f32(slope), f32(x0), f32(knots))


CAPACITIES_KB, _SEGMENTS = _build()


def _costs(capacity_kb, nw) -> jax.Array:
    """[..., 3]: pJ/bit, mm^2, mW of an SRAM of ``capacity_kb`` at node weights ``nw`` [..., nodes].
    One segment looked up per capacity (a gather: 2-3x faster under vmap and grad than a sum
    of hinge functions over all knots)."""
    y0, slope, x0, knots = _SEGMENTS
    x = jnp.log(jnp.maximum(jnp.asarray(capacity_kb, jnp.float32), 1e-3))
    i = jnp.sum(x[..., None] > knots, axis=-1)                                          # segment index
    logy = y0[i] + (x - x0[i])[..., None, None] * slope[i]                               # [..., 3, nodes]
    return jnp.exp(jnp.sum(logy * jnp.asarray(nw, jnp.float32)[..., None, :], axis=-1))  # mixed in log space


def sram_pj_per_bit(capacity_kb, nw) -> jax.Array:
    """Access energy per bit (mean of CACTI's read and write) of an SRAM of ``capacity_kb`` KB."""
    return _costs(capacity_kb, nw)[..., 0]


def sram_area_mm2(capacity_kb, nw) -> jax.Array:
    """Area of an SRAM macro of ``capacity_kb`` KB (CACTI, cells and periphery)."""
    return _costs(capacity_kb, nw)[..., 1]


def sram_leakage_mw(capacity_kb, nw) -> jax.Array:
    """Standby leakage power of an SRAM of ``capacity_kb`` KB (CACTI), mW."""
    return _costs(capacity_kb, nw)[..., 2]


def leakage_pj(leakage_mw, seconds):
    """Leakage energy of ``leakage_mw`` over ``seconds`` (1 mW x 1 s = 1e9 pJ)."""
    return leakage_mw * seconds * 1e9
