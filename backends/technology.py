"""Technology: the process node and the DRAM kind of a design (knobs ``node_nm`` and ``dram``).

The module's contract (other modules code against these names):

* ``NODES_NM``: the ``node_nm`` knob's choices, in nm (65, 45, 28, 16, 7; default 45, the
  node of every 45 nm figure in :mod:`.tables` and :mod:`.datapath`);
* ``ENERGY_SCALE`` / ``AREA_SCALE`` / ``DELAY_SCALE``: per choice of ``NODES_NM``, a logic
  gate's dynamic energy / area / delay relative to 45 nm;
* ``node_weights(hw)``: the design's choice weights over ``NODES_NM`` (one-hot for a legal
  design, a softmax of logits for a relaxed one; 45 nm when the design has no such knob);
* ``DRAM_KINDS`` / ``DRAM_PJ_PER_BIT`` / ``DRAM_CHANNEL_GBPS``: the ``dram`` knob's choices,
  the energy per bit of each, and the bandwidth of one channel (or HBM stack) of each;
* ``resolve(hw)``: the scalars a cost model needs, computed once per evaluation.

Node scaling: Stillmaker & Baas [SB17]
---------------------------------------
[SB17] A. Stillmaker, B. Baas, "Scaling equations for the accurate prediction of CMOS device
performance from 180 nm to 7 nm", Integration, the VLSI Journal 58 (2017) 74-81 (with the
authors' published corrigendum to the worked example of Sec. 4.2.1). Their fits to HSPICE
simulations of PTM/ITRS devices give, per node, an energy factor quadratic in the supply
voltage, ``E(V) = a V^2 + b V + c``, a delay factor cubic in it, ``D(V) = a V^3 + b V^2 + c V
+ d``, and area factors between nodes. A node's factor relative to 45 nm is ``E(node, Vdd) /
E(45, 1.0 V)`` at each node's nominal supply. Coefficients (high-performance devices "HP" for
45 nm and below; 65 nm has a single set):

====  ========  ===============================  ======================================  ===========
node  Vdd (V)   energy a, b, c                   delay a, b, c, d                         area vs 45
====  ========  ===============================  ======================================  ===========
65    1.1       3.755, -4.398, 1.975             -53.3, 230.4, -333.9, 178.6              1.5
45    1.0       1.018, -0.3107, 0.1539           -501.6, 1567, -1619, 566.1               1
32    0.9       0.8367, -0.4341, 0.1701          -1047, 2982, -2797, 873.5                0.46
20    0.9       0.373, -0.1582, 0.04104          0, 34.63, -66.37, 41.15                  0.21
16    0.85      0.2958, -0.1241, 0.03024         0, 24.8, -47.52, 28.87                   0.19
7     0.7       0.1776, -0.09097, 0.02447        -28.58, 76.6, -70.26, 24.69              0.059
====  ========  ===============================  ======================================  ===========

The coefficients and the area factors are [SB17]'s tables as tabulated in the public
``nodeScale.py`` (repository wromaszkan/nodeScale, UCLA NanoCAD Lab: ``depCoeffDict`` columns
4-6 energy and 0-3 delay, ``areaDict['45']``); the 32 nm and 65 nm energy rows agree with the
corrigendum's worked example (0.8367, -0.4341, 0.1701 at 0.9 V = 0.4571). The nominal supplies
are those of the PTM model cards [SB17] simulated (bulk 65 nm 1.1 V, 45/32 nm HP 1.0/0.9 V;
PTM-MG HP 20/16/7 nm 0.9/0.85/0.7 V), as also used with these equations in the public
EPFL-LAP/fpga21-scaled-tech ``logic_delays/scale_logic_delays.py``. Resulting factors vs 45 nm:

====  ============  ==========  ===========
node  ENERGY_SCALE  AREA_SCALE  DELAY_SCALE
====  ============  ==========  ===========
65    1.95          1.5         1.53
45    1             1           1
28    0.420         0.368       0.693
16    0.161         0.19        0.512
7     0.0555        0.059       0.259
====  ============  ==========  ===========

28 nm is not a node of [SB17]: its factors (and its supply, 0.9 V) are interpolated between
32 nm and 20 nm linearly in ``log(factor)`` against ``log(node)`` (weight
``ln(32/28) / ln(32/20) = 0.284`` on 20 nm), i.e. a power law between the two neighbours.

How the cost models use the factors (:func:`resolve`):

* logic energy (MACs, vector ALU ops) x ``ENERGY_SCALE``; PE and vector-lane area x
  ``AREA_SCALE``; SRAM energy and area are :mod:`.memories`' (CACTI tables by node), not here;
* leakage: :data:`symbiote.backends.tables.LEAKAGE_MW_PER_MM2` (45 nm) x ``ENERGY_SCALE /
  AREA_SCALE`` per mm^2 -- a gate's leakage power is scaled like its switching energy (the
  convention of the Accelergy project's ``hwcomponents`` scaling, where a node change scales
  leakage like energy), spread over the gate's scaled area; so a fixed design's leakage power
  scales like its dynamic energy (an assumption, [SB17] does not fit leakage per area);
* ``DELAY_SCALE`` is informative: the clock is the ``clock_ghz`` knob, which the user sets
  (a 45 nm design's clock over ``DELAY_SCALE`` is what the node would reach at equal depth).

On-chip wires (PE-to-PE forwarding)
-----------------------------------
[K11] S. W. Keckler, W. J. Dally, B. Khailany, M. Garland, D. Glasco, "GPUs and the future of
parallel computing", IEEE Micro 31(5), 2011, Table 1 (40 nm): wire energy 310 pJ for 256 bits
over 10 mm, i.e. 0.121 pJ per bit per mm (240 fJ per bit-mm per transition at about half the
bits switching). ``WIRE_PJ_PER_BIT_MM`` takes it as the 45 nm value (40 and 45 nm are one
generation; an assumption) and scales it with ``(Vdd / 1.0 V)^2``: a wire's capacitance per mm
stays about constant across nodes (R. Ho, K. Mai, M. Horowitz, "The future of wires", Proc.
IEEE 89(4), 2001), so its switching energy follows the supply squared. A check, not a fit:
[K11] projects 240 -> 150 fJ per bit-mm per transition from 40 to 10 nm (x0.63); this rule
gives x0.56 between the PTM supplies of 45 nm (1.0 V) and 10 nm (0.75 V).

DRAM kinds
----------
The ``dram`` knob sets the energy per bit; the bandwidth stays the ``dram_gbps`` knob (pick
it as a multiple of the kind's channel or stack bandwidth below).

======  ==========  =====================================  =========================================
kind    pJ/bit      energy source                          one channel / stack (GB/s)
======  ==========  =====================================  =========================================
ddr3    20.3        [H14] 1.3 nJ per 64-bit access         12.8: DDR3-1600 x 64 bit (JEDEC JESD79-3)
ddr4    13.0        ddr3 x (1.2 V / 1.5 V)^2 (derived)     25.6: DDR4-3200 x 64 bit (JESD79-4)
lpddr5  9.95        ddr3 x (1.05 V / 1.5 V)^2 (derived)    12.8: LPDDR5-6400 x 16 bit (JESD209-5)
hbm2e   3.97        [O17] HBM2 access energy               460.8: 3.6 Gb/s x 1024 bit (vendor bins)
hbm3    3.34        hbm2e x (1.1 V / 1.2 V)^2 (derived)    819.2: 6.4 Gb/s x 1024 bit (JESD238)
======  ==========  =====================================  =========================================

[H14] M. Horowitz, ISSCC 2014 (the low end of its 1.3-2.6 nJ per 64-bit DRAM access;
:data:`symbiote.backends.tables.DRAM_PJ_PER_BIT`). [O17] M. O'Connor et al., "Fine-Grained
DRAM: Energy-Efficient DRAM for Extreme Bandwidth Systems", MICRO 2017: HBM2 3.97 pJ/bit
(row activation, on-die data movement and I/O). HBM2E is HBM2's architecture at a faster pin
rate and the same 1.2 V core supply: [O17]'s figure is used as is (an assumption). The derived
rows scale a figure of the same family with the square of the JEDEC core supply (DDR3 1.5 V,
DDR4 1.2 V, LPDDR5 VDD2 1.05 V; HBM2E 1.2 V, HBM3 1.1 V), the ``C V^2`` of a fixed switched
capacitance: a stated assumption, not a measurement (it credits no I/O improvement beyond the
supply, so LPDDR5's unterminated I/O and HBM3's 0.4 V I/O swing make these upper bounds).
``ddr3`` is the default, so a design without the knob costs what it did before. Bandwidths:
peak pin rate x interface width of one channel (DDR: 64 bit; LPDDR5: 16 bit) or stack (HBM:
1024 bit), from the JEDEC standards named (HBM2E's 3.6 Gb/s is the fastest vendor bin, above
the JEDEC HBM2 standard's rates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from symbiote.backends import tables
from symbiote.backends.space import choice_weights

NODES_NM = (65, 45, 28, 16, 7)
DEFAULT_NODE_NM = 45

# ---- [SB17], see the module doc: energy (a, b, c), delay (a, b, c, d), area vs 45 nm, nominal Vdd
_SB17_ENERGY = {65: (3.755, -4.398, 1.975), 45: (1.018, -0.3107, 0.1539), 32: (0.8367, -0.4341, 0.1701),
                20: (0.373, -0.1582, 0.04104), 16: (0.2958, -0.1241, 0.03024), 7: (0.1776, -0.09097, 0.02447)}
_SB17_DELAY = {65: (-53.3, 230.4, -333.9, 178.6), 45: (-501.6, 1567.0, -1619.0, 566.1),
               32: (-1047.0, 2982.0, -2797.0, 873.5), 20: (0.0, 34.63, -66.37, 41.15),
               16: (0.0, 24.8, -47.52, 28.87), 7: (-28.58, 76.6, -70.26, 24.69)}
_SB17_AREA_VS_45 = {65: 1.5, 45: 1.0, 32: 0.46, 20: 0.21, 16: 0.19, 7: 0.059}
_VDD = {65: 1.1, 45: 1.0, 32: 0.9, 20: 0.9, 16: 0.85, 7: 0.7}


def _poly(coeffs: tuple[float, ...], v: float) -> float:
    """``coeffs[0] v^(n-1) + ... + coeffs[-1]``."""
    return sum(c * v ** (len(coeffs) - 1 - i) for i, c in enumerate(coeffs))


def _sb17(node: int) -> tuple[float, float, float, float]:
    """(energy, area, delay, Vdd) of an [SB17] node, the factors relative to 45 nm at 1.0 V."""
    v = _VDD[node]
    return (_poly(_SB17_ENERGY[node], v) / _poly(_SB17_ENERGY[45], _VDD[45]), _SB17_AREA_VS_45[node],
            _poly(_SB17_DELAY[node], v) / _poly(_SB17_DELAY[45], _VDD[45]), v)


def _node(node: int) -> tuple[float, float, float, float]:
    """An [SB17] node, or 28 nm as the power law between 32 and 20 nm (module doc)."""
    if node in _VDD:
        return _sb17(node)
    lo, hi = 32, 20
    t = math.log(lo / node) / math.log(lo / hi)
    return tuple(math.exp((1.0 - t) * math.log(a) + t * math.log(b))  # type: ignore[return-value]
                 for a, b in zip(_sb17(lo), _sb17(hi), strict=True))


ENERGY_SCALE = tuple(_node(n)[0] for n in NODES_NM)
AREA_SCALE = tuple(_node(n)[1] for n in NODES_NM)
DELAY_SCALE = tuple(_node(n)[2] for n in NODES_NM)
#: nominal supply of each node (V), for the wire energy
VDD = tuple(_node(n)[3] for n in NODES_NM)
#: [K11] 0.121 pJ per bit per mm at 40 nm, taken as 45 nm, x (Vdd / 1 V)^2 (module doc)
WIRE_PJ_PER_BIT_MM_45NM = 310.0 / (256.0 * 10.0)
WIRE_PJ_PER_BIT_MM = tuple(WIRE_PJ_PER_BIT_MM_45NM * (v / _VDD[45]) ** 2 for v in VDD)

DRAM_KINDS = ("ddr3", "ddr4", "lpddr5", "hbm2e", "hbm3")
DEFAULT_DRAM = "ddr3"
#: JEDEC core supplies (V) of the kinds, for the derived energies (module doc)
_DRAM_VDD = (1.5, 1.2, 1.05, 1.2, 1.1)
_HBM2_PJ_PER_BIT = 3.97                                   # [O17]
DRAM_PJ_PER_BIT = (
    tables.DRAM_PJ_PER_BIT,                               # ddr3 [H14]
    tables.DRAM_PJ_PER_BIT * (_DRAM_VDD[1] / _DRAM_VDD[0]) ** 2,
    tables.DRAM_PJ_PER_BIT * (_DRAM_VDD[2] / _DRAM_VDD[0]) ** 2,
    _HBM2_PJ_PER_BIT,                                     # hbm2e: [O17]'s HBM2
    _HBM2_PJ_PER_BIT * (_DRAM_VDD[4] / _DRAM_VDD[3]) ** 2,
)
#: bandwidth of one channel (DDR, LPDDR) or stack (HBM) of each kind, GB/s (documentation:
#: ``dram_gbps`` is a multiple of it)
DRAM_CHANNEL_GBPS = (12.8, 25.6, 12.8, 460.8, 819.2)


class Resolved(NamedTuple):
    """A design's technology, computed once per cost evaluation (each field a scalar)."""

    energy_scale: jax.Array        # logic dynamic energy vs 45 nm
    area_scale: jax.Array          # logic area vs 45 nm
    delay_scale: jax.Array         # gate delay vs 45 nm (informative)
    dram_pj_per_bit: jax.Array     # the DRAM kind's energy per bit
    wire_pj_per_bit_mm: jax.Array  # on-chip wire energy per bit per mm at the node
    leakage_mw_per_mm2: jax.Array  # leakage power density at the node (module doc)


def node_weights(hw: Mapping[str, jax.Array]) -> jax.Array:
    return choice_weights(hw, "node_nm", len(NODES_NM), NODES_NM.index(DEFAULT_NODE_NM))


def dram_weights(hw: Mapping[str, jax.Array]) -> jax.Array:
    """The design's choice weights over :data:`DRAM_KINDS` (``ddr3`` without the knob)."""
    return choice_weights(hw, "dram", len(DRAM_KINDS), DRAM_KINDS.index(DEFAULT_DRAM))


def resolve(hw: Mapping[str, jax.Array]) -> Resolved:
    """The technology of an encoded design: 45 nm and ``ddr3`` without the knobs; a relaxed
    design's logits mix the choices' factors."""
    wn, wd = node_weights(hw), dram_weights(hw)
    pick = lambda w, table: jnp.sum(w * jnp.asarray(table, jnp.float32), axis=-1)  # noqa: E731
    e, a = pick(wn, ENERGY_SCALE), pick(wn, AREA_SCALE)
    leak = pick(wn, tuple(tables.LEAKAGE_MW_PER_MM2 * x / y for x, y in zip(ENERGY_SCALE, AREA_SCALE, strict=True)))
    return Resolved(e, a, pick(wn, DELAY_SCALE), pick(wd, DRAM_PJ_PER_BIT), pick(wn, WIRE_PJ_PER_BIT_MM), leak)


def node_knob(default: int = DEFAULT_NODE_NM):
    """The ``node_nm`` knob a template declares (choices are the node names, ``"45"``...;
    a YAML or ``--set`` integer such as 28 means that node, :meth:`..space.Knob.validate`)."""
    from symbiote.backends.space import Knob

    return Knob("node_nm", "categorical", str(default), choices=tuple(str(n) for n in NODES_NM), unit="nm",
                doc="process node: scales logic energy, PE/vector area and leakage (Stillmaker & Baas 2017), "
                    "and on-chip wire energy (see backends/technology.py)")


def dram_knob(default: str = DEFAULT_DRAM):
    """The ``dram`` knob a template declares: the DRAM kind sets the energy per bit (the
    bandwidth stays ``dram_gbps``)."""
    from symbiote.backends.space import Knob

    return Knob("dram", "categorical", default, choices=DRAM_KINDS,
                doc="DRAM kind: sets the energy per bit; pick dram_gbps as a multiple of its channel/stack "
                    "bandwidth (see backends/technology.py)")
