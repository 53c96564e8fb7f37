"""Energy and area per action, at 45 nm, with their sources.

All functions are pure jnp and differentiable in the bit-widths, so the cost
models stay differentiable in the hardware and model knobs.

Sources:

* [H14] M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
  45 nm, 0.9 V: 8-bit int add 0.03 pJ, 32-bit int add 0.1 pJ, 8-bit int multiply 0.2 pJ,
  32-bit int multiply 3.1 pJ; 16-bit FP add 0.4 pJ, multiply 1.1 pJ; 32-bit FP add 0.9 pJ,
  multiply 3.7 pJ; SRAM 64-bit read: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ; DRAM 64-bit
  access 1.3-2.6 nJ. Areas: 8-bit add 36 um^2, 32-bit add 137 um^2, 8-bit multiply 282 um^2,
  32-bit multiply 3495 um^2.
* PE-to-PE forwarding: a hop is a wire one PE pitch long, ``bits x wire pJ/bit/mm x pitch``
  (:func:`hop_pj_per_bit`; the wire energy per bit and mm of the node, Keckler et al. 2011,
  is in :mod:`symbiote.backends.technology`). It replaced Eyeriss's (Chen, Emer, Sze, ISCA
  2016, Table IV) array-level "inter-PE = 2x an ALU op", which charged every hop twice a
  whole MAC (quadratic in the bits: 1.1 pJ per int8 MAC's operands, 4x the MAC).
* SRAM: not here. The cost models take an SRAM's energy per bit, area and leakage from
  CACTI runs by capacity and node, :mod:`symbiote.backends.memories`. They replaced a fit
  at 45 nm only: [H14]'s 8 KB read energy scaled with sqrt(capacity) (7.1 pJ/bit
  extrapolated to 16 MiB, where CACTI gives 4.2 at 45 nm) and 6T cells of 0.346 um^2 (K.
  Mistry et al., IEDM 2007) over an assumed 0.5 array efficiency plus 0.01 mm^2 of
  periphery (93 mm^2 for 16 MiB; CACTI at 45 nm: 51 mm^2, at a 78% array efficiency).

Assumptions (not from a publication, stated here so they can be challenged):
* multiplier energy and area scale with the product of the operand widths (array
  multiplier), adder energy and area linearly with the width, anchored at [H14]'s 8-bit values;
* leakage: 10 mW per mm^2 of logic at 45 nm (the order of magnitude of published 45 nm
  SoC leakage densities; a knob-free constant); the SRAMs' leakage is CACTI's
  (:mod:`symbiote.backends.memories`);
* a PE holds three pipeline registers of its operand widths, one flip-flop ~ 6 um^2 per bit
  at 45 nm.
"""

from __future__ import annotations

import jax.numpy as jnp

# ---- [H14]
MULT_8B_PJ = 0.2
ADD_8B_PJ = 0.03
ADD_32B_PJ = 0.1
DRAM_PJ_PER_BIT = 1300.0 / 64.0       # 1.3 nJ per 64-bit access (the low end of [H14]'s 1.3-2.6 nJ) ~ 640 pJ / 32 bit
MULT_8B_UM2 = 282.0
ADD_8B_UM2 = 36.0
ADD_32B_UM2 = 137.0
# ---- assumptions (see module doc)
LEAKAGE_MW_PER_MM2 = 10.0
FLIPFLOP_UM2_PER_BIT = 6.0


def add_pj(bits):
    """Integer add energy, linear between [H14]'s 8-bit (0.03 pJ) and 32-bit (0.1 pJ)."""
    return ADD_8B_PJ + (ADD_32B_PJ - ADD_8B_PJ) * (bits - 8.0) / 24.0


def mult_pj(w_bits, a_bits):
    """Multiply energy ~ product of the operand widths, anchored at 8x8 = 0.2 pJ [H14]."""
    return MULT_8B_PJ * (w_bits * a_bits) / 64.0


#: guard bits of an accumulator above the product's width (:func:`acc_bits`): with 8, a sum
#: of 256 full-scale products cannot overflow
GUARD_BITS = 8.0


def acc_bits(w_bits, a_bits, guard_bits=GUARD_BITS):
    """Accumulator width: the product width plus ``guard_bits``, clipped to [16, 48]."""
    return jnp.clip(w_bits + a_bits + guard_bits, 16.0, 48.0)


def mac_pj(w_bits, a_bits):
    """One multiply-accumulate: a multiply at the operand widths and an add at the accumulator width."""
    return mult_pj(w_bits, a_bits) + add_pj(acc_bits(w_bits, a_bits))


def hop_pj_per_bit(pe_area_mm2, wire_pj_per_bit_mm):
    """PE-to-PE forwarding energy per bit and hop: a wire one PE pitch long, the pitch being
    ``sqrt(PE area)`` (square PEs); linear in the bits moved, proportional to the pitch."""
    return wire_pj_per_bit_mm * jnp.sqrt(pe_area_mm2)


def dram_pj_per_bit():
    return DRAM_PJ_PER_BIT


def mult_area_mm2(w_bits, a_bits):
    return MULT_8B_UM2 * (w_bits * a_bits) / 64.0 * 1e-6


def add_area_mm2(bits):
    return (ADD_8B_UM2 + (ADD_32B_UM2 - ADD_8B_UM2) * (bits - 8.0) / 24.0) * 1e-6


def pe_area_mm2(w_bits, a_bits):
    """A MAC processing element: multiplier, accumulator adder, three pipeline registers."""
    acc = acc_bits(w_bits, a_bits)
    regs = (w_bits + a_bits + acc) * FLIPFLOP_UM2_PER_BIT * 1e-6
    return mult_area_mm2(w_bits, a_bits) + add_area_mm2(acc) + regs


def leakage_pj(area_mm2, seconds, mw_per_mm2=LEAKAGE_MW_PER_MM2):
    """Leakage energy: ``mw_per_mm2`` (45 nm: LEAKAGE_MW_PER_MM2; a node's:
    :class:`symbiote.backends.technology.Resolved`) x area x time (1 mW x 1 s = 1e9 pJ)."""
    return mw_per_mm2 * area_mm2 * seconds * 1e9
