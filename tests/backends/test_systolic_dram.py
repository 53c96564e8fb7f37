"""The systolic DRAM model: compulsory traffic when operands fit, refetch only when they don't."""

from __future__ import annotations

import numpy as np
import pytest

import symbiote
from symbiote.backends import tables
from symbiote.backends.manager import get_template
from symbiote.ir.lower import lower


@pytest.fixture(scope="module")
def resnet18():
    return lower(symbiote.load("zoo:resnet18"))


def _dram_bytes(wl, **knobs):
    t = get_template("systolic")
    m = t.evaluate(t.space.default() | knobs, wl)
    return np.asarray(m.energy_dram_pj) / (8 * float(tables.dram_pj_per_bit()))


def _row(wl, name):
    return wl.names.index(name)


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_psums_that_outgrow_the_ofmap_sram_do_not_spill_when_tiling_is_free(resnet18, dataflow):
    # layer1.0.conv1: 37 KB of 8-bit weights fit the filter SRAM, 800 KB of 32-bit partial
    # sums do not fit a 128 KB ofmap SRAM: tiling the pixels keeps them on chip for free.
    i = _row(resnet18, "layer1.0.conv1")
    compulsory = float(resnet18.in_elems[i] + resnet18.out_elems[i] + resnet18.weight_elems[i])  # 8-bit: 1 byte each
    got = _dram_bytes(resnet18, rows=32, cols=32, dataflow=dataflow, ofmap_sram_kb=128, filter_sram_kb=256, ifmap_sram_kb=512)[i]
    assert compulsory <= got <= 1.01 * compulsory


def test_a_stationary_operand_that_does_not_fit_is_reloaded(resnet18):
    # layer4.1.conv2: 2.36 MB of weights (ws: stationary) never fit; psums (100 KB) outgrow a
    # 8 KB ofmap SRAM, so either psums spill or weights are reloaded per pixel tile.
    i = _row(resnet18, "layer4.1.conv2")
    weights = float(resnet18.weight_elems[i])
    small = _dram_bytes(resnet18, rows=32, cols=32, dataflow="ws", ofmap_sram_kb=8, filter_sram_kb=64)[i]
    roomy = _dram_bytes(resnet18, rows=32, cols=32, dataflow="ws", ofmap_sram_kb=1024, filter_sram_kb=64)[i]
    assert small > 1.5 * weights  # refetch is paid
    assert roomy < 1.1 * weights + float(resnet18.in_elems[i] + resnet18.out_elems[i])  # psums fit: none
