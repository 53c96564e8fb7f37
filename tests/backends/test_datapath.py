"""The datapath knob (backends/datapath.py): one chip whatever model is costed on it."""

from __future__ import annotations

import numpy as np
import pytest

from symbiote.backends import tables
from symbiote.backends.manager import get_template
from symbiote.frontend import load
from symbiote.ir.channel_groups import analyze
from symbiote.ir.lower import lower
from symbiote.passes.registry import parse_pipeline


@pytest.fixture(scope="module")
def tiny():
    return load("zoo:tiny_cnn")


def _cost(wl, tname="systolic", **knobs):
    t = get_template(tname)
    return t.evaluate(t.space.default() | knobs, wl).to_numpy()


@pytest.mark.parametrize("tname", ["systolic", "roofline"])
def test_the_area_is_the_chips_whatever_model_is_costed(tiny, tname):
    wl8 = lower(tiny, analyze(tiny))
    g16 = parse_pipeline("set-precision(default=16)")(tiny).graph
    g4 = parse_pipeline("set-precision(default=4)")(tiny).graph
    areas = {float(_cost(lower(g, analyze(g)), tname)["area_mm2"].sum()) for g in (tiny, g16, g4)}
    assert len(areas) == 1                                   # before: the widest layer sized the PE
    assert float(_cost(wl8, tname, datapath="fp32")["area_mm2"].sum()) > float(_cost(wl8, tname, datapath="int8")["area_mm2"].sum())


def test_an_int8_array_pe_is_an_8x8_pe_and_fp_pes_use_horowitz_areas(tiny):
    wl = lower(tiny, analyze(tiny))
    d = get_template("systolic").space.default()
    base = float(_cost(wl, **{"rows": 16, "cols": 16})["area_mm2"])
    big = float(_cost(wl, **{"rows": 32, "cols": 16})["area_mm2"])
    assert big - base == pytest.approx(16 * 16 * float(tables.pe_area_mm2(8.0, 8.0)), rel=1e-5)
    fp_base = float(_cost(wl, rows=16, cols=16, datapath="fp16")["area_mm2"])
    fp_big = float(_cost(wl, rows=32, cols=16, datapath="fp16")["area_mm2"])
    # [H14] FP16: multiply 1640 um^2 + add 1360 um^2, plus three 16-bit registers of 6 um^2 per bit
    assert fp_big - fp_base == pytest.approx(16 * 16 * (1640 + 1360 + 3 * 16 * 6) * 1e-6, rel=1e-5)
    assert d["datapath"] == "int8"


def test_rows_without_a_precision_run_at_the_datapaths_width_and_given_ones_keep_theirs(tiny):
    wl = lower(tiny, analyze(tiny))
    assert not np.asarray(wl.bits_given).any()
    i8, f32 = _cost(wl, datapath="int8"), _cost(wl, datapath="fp32")
    # fp32 operands are 4x the bytes of int8 ones: DRAM energy x4 on every row
    assert f32["energy_dram_pj"].sum() == pytest.approx(4 * i8["energy_dram_pj"].sum(), rel=1e-4)
    # [H14] an FP32 MAC = multiply 3.7 + add 0.9 pJ per MAC
    macs = i8["macs"].sum()
    mac_rows = i8["macs"] > 0
    assert f32["energy_mac_pj"][mac_rows].sum() == pytest.approx(4.6 * macs, rel=1e-4)
    g8 = parse_pipeline("set-precision(default=8)")(tiny).graph
    wl_g = lower(g8, analyze(g8))
    assert np.asarray(wl_g.bits_given)[np.asarray(wl_g.kind) == 0].all()
    # int8 layers on an fp32 datapath keep their 8-bit storage: the MAC rows' DRAM bytes are int8's
    f = _cost(wl_g, datapath="fp32")
    assert f["energy_dram_pj"][mac_rows].sum() == pytest.approx(i8["energy_dram_pj"][mac_rows].sum(), rel=1e-4)


def test_a_layer_wider_than_the_datapath_takes_several_passes(tiny):
    g16 = parse_pipeline("set-precision(default=16)")(tiny).graph
    wl16 = lower(g16, analyze(g16))
    # one fixed mapping (SCALE-Sim's order): the best tiling may differ between the two designs
    on8 = _cost(wl16, datapath="int8", tiling="scalesim")
    on16 = _cost(wl16, datapath="int16", tiling="scalesim")
    mac = on8["macs"] > 0
    # 16 x 16 bit operands on an 8-bit array: ceil(16/8) * ceil(16/8) = 4 passes
    assert np.allclose(on8["compute_cycles"][mac], 4 * on16["compute_cycles"][mac])
