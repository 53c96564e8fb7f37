"""Energy and area per action, at 45 nm, with their sources.

All functions are pure jnp and differentiable in the bit-widths and capacities, so the cost
models stay differentiable in the hardware and model knobs.

Sources:

* [H14] M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
  45 nm, 0.9 V: 8-bit int add 0.03 pJ, 32-bit int add 0.1 pJ, 8-bit int multiply 0.2 pJ,
  32-bit int multiply 3.1 pJ; 16-bit FP add 0.4 pJ, multiply 1.1 pJ; 32-bit FP add 0.9 pJ,
  multiply 3.7 pJ; SRAM 64-bit read: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ; DRAM 64-bit
  access 1.3-2.6 nJ. Areas: 8-bit add 36 um^2, 32-bit add 137 um^2, 8-bit multiply 282 um^2,
  32-bit multiply 3495 um^2.
* [C16] Y.-H. Chen, J. Emer, V. Sze, "Eyeriss: A Spatial Architecture for Energy-Efficient
  Dataflow for Convolutional Neural Networks", ISCA 2016, Table IV: normalized energy of a
  data access -- ALU 1x, RF 1x, PE-to-PE (inter-PE) 2x, global buffer 6x, DRAM 200x.
* [M07] K. Mistry et al., "A 45nm Logic Technology with High-k+Metal Gate Transistors ...",
  IEDM 2007: 6T SRAM cell 0.346 um^2.
* [CACTI] N. Muralimanohar, R. Balasubramonian, N. Jouppi, "CACTI 6.0", HPL-2009-85: the
  access energy of an SRAM grows about with the square root of its capacity (wire length of
  a square array), the area linearly plus a periphery overhead. [H14]'s 8 KB / 32 KB / 1 MB
  read energies (10, 20, 100 pJ) follow sqrt(capacity) within 15%.

Assumptions (not from a publication, stated here so they can be challenged):
* multiplier energy and area scale with the product of the operand widths (array
  multiplier), adder energy and area linearly with the width, anchored at [H14]'s 8-bit values;
* leakage: 10 mW per mm^2 of logic+SRAM at 45 nm (the order of magnitude of published 45 nm
  SoC leakage densities; a knob-free constant);
* SRAM array efficiency (cell area / macro area) 0.5 for macros of 8 KB and more, and a fixed
  periphery of 0.01 mm^2 per macro;
* a PE holds three pipeline registers of its operand widths, one flip-flop ~ 6 um^2 per bit
  at 45 nm.
"""

from __future__ import annotations

import jax.numpy as jnp

# ---- [H14]
MULT_8B_PJ = 0.2
ADD_8B_PJ = 0.03
ADD_32B_PJ = 0.1
SRAM_64B_READ_8KB_PJ = 10.0
DRAM_PJ_PER_BIT = 1300.0 / 64.0       # 1.3 nJ per 64-bit access (the low end of [H14]'s 1.3-2.6 nJ) ~ 640 pJ / 32 bit
MULT_8B_UM2 = 282.0
ADD_8B_UM2 = 36.0
ADD_32B_UM2 = 137.0
# ---- [C16]: PE-to-PE forwarding costs 2x an ALU op (a 16-bit MAC in Eyeriss)
FORWARD_VS_MAC = 2.0
# ---- [M07]
SRAM_CELL_UM2 = 0.346
# ---- assumptions (see module doc)
LEAKAGE_MW_PER_MM2 = 10.0
SRAM_ARRAY_EFFICIENCY = 0.5
SRAM_PERIPHERY_MM2 = 0.01
FLIPFLOP_UM2_PER_BIT = 6.0


def add_pj(bits):
    """Integer add energy, linear between [H14]'s 8-bit (0.03 pJ) and 32-bit (0.1 pJ)."""
    return ADD_8B_PJ + (ADD_32B_PJ - ADD_8B_PJ) * (bits - 8.0) / 24.0


def mult_pj(w_bits, a_bits):
    """Multiply energy ~ product of the operand widths, anchored at 8x8 = 0.2 pJ [H14]."""
    return MULT_8B_PJ * (w_bits * a_bits) / 64.0


def acc_bits(w_bits, a_bits):
    """Accumulator width: the product width plus 8 guard bits, clipped to [16, 48]."""
    return jnp.clip(w_bits + a_bits + 8.0, 16.0, 48.0)


def mac_pj(w_bits, a_bits):
    """One multiply-accumulate: a multiply at the operand widths and an add at the accumulator width."""
    return mult_pj(w_bits, a_bits) + add_pj(acc_bits(w_bits, a_bits))


def forward_pj_per_bit(w_bits, a_bits):
    """PE-to-PE forwarding energy per bit: [C16]'s 2x a MAC, spread over the MAC's operand bits."""
    return FORWARD_VS_MAC * mac_pj(w_bits, a_bits) / (w_bits + a_bits)


def sram_pj_per_bit(capacity_kb):
    """SRAM access energy per bit: [H14]'s 10 pJ per 64 bits at 8 KB, scaled with sqrt(capacity) [CACTI]."""
    return (SRAM_64B_READ_8KB_PJ / 64.0) * jnp.sqrt(jnp.maximum(capacity_kb, 0.5) / 8.0)


def dram_pj_per_bit():
    return DRAM_PJ_PER_BIT


def sram_area_mm2(capacity_kb):
    """6T cells [M07] over the array efficiency, plus a fixed periphery per macro (assumption)."""
    bits = capacity_kb * 8192.0
    return bits * SRAM_CELL_UM2 * 1e-6 / SRAM_ARRAY_EFFICIENCY + SRAM_PERIPHERY_MM2


def mult_area_mm2(w_bits, a_bits):
    return MULT_8B_UM2 * (w_bits * a_bits) / 64.0 * 1e-6


def add_area_mm2(bits):
    return (ADD_8B_UM2 + (ADD_32B_UM2 - ADD_8B_UM2) * (bits - 8.0) / 24.0) * 1e-6


def pe_area_mm2(w_bits, a_bits):
    """A MAC processing element: multiplier, accumulator adder, three pipeline registers."""
    acc = acc_bits(w_bits, a_bits)
    regs = (w_bits + a_bits + acc) * FLIPFLOP_UM2_PER_BIT * 1e-6
    return mult_area_mm2(w_bits, a_bits) + add_area_mm2(acc) + regs


def leakage_pj(area_mm2, seconds):
    """Leakage energy: LEAKAGE_MW_PER_MM2 x area x time (1 mW x 1 s = 1e9 pJ)."""
    return LEAKAGE_MW_PER_MM2 * area_mm2 * seconds * 1e9
