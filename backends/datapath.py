"""The datapath: the number format a design's processing elements compute in.

A template with a ``datapath`` knob (:data:`CHOICES`) builds its PEs for one format, so its
area is the chip's whatever model is costed on it (before, the PE was sized by the widest
layer of the model being costed, and one ``hardware.yaml`` described a different chip per
model). The rules every template with the knob follows:

* **Area**: a PE of the datapath's format: an integer PE of ``b x b`` bits
  (:func:`symbiote.backends.tables.pe_area_mm2`), or a floating-point multiplier and adder
  of the format's width ([H14]: FP16 multiply 1640 um^2, add 1360 um^2; FP32 multiply 7700
  um^2, add 4184 um^2, 45 nm) plus the same pipeline registers.
* **Rows without a precision of their own run at the datapath's width**: a Workload row
  whose bits were not given (``bits_given = 0``: no ``set-precision`` annotation and no
  bit-width gene) is priced at the datapath's bits (8 for int8, 16 for fp16, ...). So
  ``symbiote cost MODEL --set datapath=fp16`` prices the model in fp16, and a search with
  ``--model-knobs none`` prices (and checks, :mod:`symbiote.search.api`) the model at the
  datapath's precision.
* **Energy**: on an integer datapath a narrower row gates the unused bits (MAC energy at the
  row's widths, :func:`symbiote.backends.tables.mac_pj`); on a floating-point datapath every
  MAC costs the format's multiply plus an add of the same format ([H14]: FP16 1.1 + 0.4 pJ,
  FP32 3.7 + 0.9 pJ).
* **Rows wider than the datapath** (e.g. a 16-bit layer on an int8 array) run in several
  passes on the systolic template, as bit-serial and bit-fusion arrays split wide operands
  into datapath-wide pieces: compute cycles x ``ceil(wb / b) * ceil(ab / b)`` (the relaxed
  model uses the ratios without the ceilings). The roofline template keeps its own rate
  rule instead (a GPU's tensor cores run each format at its own rate: ``16 / bits`` times
  the 16-bit rate below 16 bits, ``fp32_rate`` above), so there the datapath sets the area,
  the energy and the bits of rows without a precision, not the speed.

Formats (``CHOICES``): int4, int8 (the default), int16, fp8 (E4M3), bf16, fp16, fp32.

* int4 / int8 / int16: the integer PE of :mod:`symbiote.backends.tables` at ``b x b`` bits
  (multiplier ~ product of the widths, anchored at [H14]'s 8-bit figures; int4's accumulator
  is clipped to the 16-bit floor of :func:`symbiote.backends.tables.acc_bits`);
* fp16 / fp32: [H14]'s multiply and add (energy and area) as measured;
* bf16 / fp8: no published 45 nm figure, so derived from [H14]'s FP16 by the significand
  width ``s`` (with the hidden bit: fp16 11, bf16 8, fp8 E4M3 4): the multiplier's energy and
  area scale with ``s^2`` (an array multiplier's partial products; [G19] states this rule for
  bfloat16: "the physical size of a hardware multiplier scales with the square of the mantissa
  width", its multiplier about half an FP16 one), so bf16 multiply = 1.1 x (8/11)^2 = 0.58 pJ,
  867 um^2 and fp8 = 1.1 x (4/11)^2 = 0.145 pJ, 217 um^2; the adder (alignment shifter, adder
  and normaliser, all significand-wide) scales linearly with ``s`` -- an ASSUMPTION: bf16 add
  0.4 x 8/11 = 0.29 pJ, 989 um^2, fp8 0.145 pJ, 495 um^2. Exponent logic is neglected.
  (FP32 from FP16 by the same ``s^2`` rule would be 5.2 pJ against [H14]'s measured 3.7: the
  rule is a first-order model, used only where no measurement exists.)

[H14] M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014.
[G19] S. Wang, P. Kanwar, "BFloat16: The secret to high performance on Cloud TPUs", Google
Cloud blog, 2019.
[M22] P. Micikevicius et al., "FP8 formats for deep learning", arXiv 2209.05433, 2022 (E4M3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from symbiote.backends import tables
from symbiote.backends.space import choice_weights

#: the formats a datapath may have (the ``datapath`` knob's choices, in this order)
CHOICES = ("int4", "int8", "int16", "fp8", "bf16", "fp16", "fp32")
#: bits per operand of each choice
BITS = (4.0, 8.0, 16.0, 8.0, 16.0, 16.0, 32.0)
#: 1.0 for floating-point formats
FLOAT = (0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0)
#: significand bits (with the hidden bit) of the floating-point choices: fp8 = E4M3 [M22],
#: bf16 = E8M7, fp16 = E5M10, fp32 = E8M23 (0 for integers)
SIGNIFICAND_BITS = (0.0, 0.0, 0.0, 4.0, 8.0, 11.0, 24.0)
# [H14] FP16 / FP32 multiply and add, 45 nm: energy (pJ) and area (um^2)
_H14_FP16 = (1.1, 0.4, 1640.0, 1360.0)
_H14_FP32 = (3.7, 0.9, 7700.0, 4184.0)


def _fp(sig: float, i: int) -> float:
    """Field ``i`` of _H14_* (0 mult pJ, 1 add pJ, 2 mult um^2, 3 add um^2) for a significand of
    ``sig`` bits: [H14]'s FP16 / FP32 values, else FP16's scaled as the module doc says
    (multiplier: square of the significand [G19]; adder: linear in it, an assumption)."""
    if sig == 0.0:
        return 0.0
    if sig == 24.0:
        return _H14_FP32[i]
    ratio = sig / 11.0
    return _H14_FP16[i] * (ratio * ratio if i in (0, 2) else ratio)


#: floating-point multiply / add energy (pJ) and area (um^2), by choice (0 for integers)
FP_MULT_PJ = tuple(_fp(s, 0) for s in SIGNIFICAND_BITS)
FP_ADD_PJ = tuple(_fp(s, 1) for s in SIGNIFICAND_BITS)
FP_MULT_UM2 = tuple(_fp(s, 2) for s in SIGNIFICAND_BITS)
FP_ADD_UM2 = tuple(_fp(s, 3) for s in SIGNIFICAND_BITS)
#: the default: int8 inference, the word size SCALE-Sim assumes (today's costs unchanged)
DEFAULT = "int8"


class Resolved(NamedTuple):
    """A design's datapath, computed once per cost evaluation (each field a scalar)."""

    bits: jax.Array           # operand width
    is_float: jax.Array       # 1.0 for a floating-point format
    fp_mac_pj: jax.Array      # one FP multiply + add of the format (0 for integers)
    pe_area_mm2: jax.Array    # one PE of the format (see the module doc)


def resolve(hw: Mapping[str, jax.Array]) -> Resolved:
    """The datapath of an encoded design (int8 without the knob; a relaxed design's logits
    mix the formats), for :func:`row_bits`, :func:`mac_pj` and :func:`passes`."""
    w = choice_weights(hw, "datapath", len(CHOICES), CHOICES.index(DEFAULT))
    pick = lambda table: jnp.sum(w * jnp.asarray(table, jnp.float32), axis=-1)  # noqa: E731
    b, f = pick(BITS), pick(FLOAT)
    fp_area = (pick(FP_MULT_UM2) + pick(FP_ADD_UM2)) * 1e-6 + 3.0 * b * tables.FLIPFLOP_UM2_PER_BIT * 1e-6
    return Resolved(b, f, pick(FP_MULT_PJ) + pick(FP_ADD_PJ), f * fp_area + (1.0 - f) * tables.pe_area_mm2(b, b))


def row_bits(dp: Resolved, given: jax.Array, row: jax.Array) -> jax.Array:
    """A row's bits: its own where given, else the datapath's."""
    return jnp.where(given > 0.5, row, dp.bits)


def mac_pj(dp: Resolved, wb: jax.Array, ab: jax.Array) -> jax.Array:
    """One MAC of a row at ``wb x ab`` bits on the datapath (see the module doc)."""
    return dp.is_float * dp.fp_mac_pj + (1.0 - dp.is_float) * tables.mac_pj(wb, ab)


def passes(dp: Resolved, wb: jax.Array, ab: jax.Array, relaxed: bool = False) -> jax.Array:
    """How many times a row's MACs go through the array: 1 when the operands fit the
    datapath, ``ceil(wb / b) * ceil(ab / b)`` when wider (the ratios when relaxed)."""
    if relaxed:
        return jnp.maximum(wb / dp.bits, 1.0) * jnp.maximum(ab / dp.bits, 1.0)
    return jnp.ceil(wb / dp.bits) * jnp.ceil(ab / dp.bits)


def knob(default: str = DEFAULT):
    """The ``datapath`` knob a template declares (its default format: ``default``)."""
    from symbiote.backends.space import Knob

    return Knob("datapath", "categorical", default, choices=CHOICES,
                doc="number format of the PEs: sets their area and energy, and the bits of layers whose precision "
                    "is not given (see backends/datapath.py)")
