"""The technology knobs (backends/technology.py): process node and DRAM kind; the PE-to-PE hop
as a wire one PE pitch long; categorical knobs given as numbers; the wider datapath formats.

Expected values are computed here by hand from the cited constants (Stillmaker & Baas 2017,
Keckler et al. 2011, Horowitz 2014, O'Connor et al. 2017), not by calling the formulas under
test."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import symbiote
from symbiote.backends import hwfile, tables, technology
from symbiote.backends.manager import get_template
from symbiote.backends.space import Knob
from symbiote.errors import HardwareError
from symbiote.ir.channel_groups import analyze
from symbiote.ir.lower import lower

# Stillmaker & Baas 2017: E(V) = a V^2 + b V + c at each node's nominal supply
E45 = 1.018 * 1.0 - 0.3107 * 1.0 + 0.1539                      # HP 45 nm, 1.0 V
E7 = 0.1776 * 0.7**2 - 0.09097 * 0.7 + 0.02447                  # HP 7 nm, 0.7 V
E32 = 0.8367 * 0.9**2 - 0.4341 * 0.9 + 0.1701                   # HP 32 nm, 0.9 V (the corrigendum's 0.4571)
E20 = 0.373 * 0.9**2 - 0.1582 * 0.9 + 0.04104                   # HP 20 nm, 0.9 V
AREA_7, AREA_32, AREA_20 = 0.059, 0.46, 0.21                    # area factors vs 45 nm
# Keckler et al. 2011, Table 1: 310 pJ for 256 bits over 10 mm
WIRE_45 = 310.0 / 2560.0
# Horowitz 2014, 45 nm: int8 PE = 8x8 multiply 282 um^2 + 24-bit adder (36 + 101 * 16/24 um^2)
# + three registers (8 + 8 + 24 bits at 6 um^2 per bit)
INT8_PE_UM2 = 282.0 + (36.0 + 101.0 * 16.0 / 24.0) + 40.0 * 6.0
INT8_MAC_PJ = 0.2 + (0.03 + 0.07 * 16.0 / 24.0)                 # 8x8 multiply + 24-bit add


@pytest.fixture(scope="module")
def tiny():
    g = symbiote.load("zoo:tiny_cnn")
    return lower(g, analyze(g))


def _cost(wl, tname="systolic", **knobs):
    t = get_template(tname)
    return t.evaluate(t.space.default() | knobs, wl).to_numpy()


def test_the_node_factors_are_stillmaker_and_baas_at_nominal_supply():
    i = technology.NODES_NM.index
    assert technology.ENERGY_SCALE[i(45)] == technology.AREA_SCALE[i(45)] == technology.DELAY_SCALE[i(45)] == 1.0
    assert technology.ENERGY_SCALE[i(7)] == pytest.approx(E7 / E45, rel=1e-9)       # 0.0555
    assert technology.AREA_SCALE[i(7)] == AREA_7
    assert technology.AREA_SCALE[i(65)] == 1.5
    # 28 nm: a power law between 32 and 20 nm (weight ln(32/28)/ln(32/20) on 20 nm)
    t = math.log(32 / 28) / math.log(32 / 20)
    assert technology.ENERGY_SCALE[i(28)] == pytest.approx((E32 / E45) ** (1 - t) * (E20 / E45) ** t, rel=1e-9)
    assert technology.AREA_SCALE[i(28)] == pytest.approx(AREA_32 ** (1 - t) * AREA_20 ** t, rel=1e-9)
    # smaller nodes: less energy and area per gate, monotonically
    assert list(technology.ENERGY_SCALE) == sorted(technology.ENERGY_SCALE, reverse=True)
    assert list(technology.AREA_SCALE) == sorted(technology.AREA_SCALE, reverse=True)


@pytest.mark.parametrize("tname", ["systolic", "roofline"])
def test_at_7nm_the_same_designs_mac_energy_and_pe_area_drop_by_the_cited_factors(tiny, tname):
    d45, d7 = _cost(tiny, tname), _cost(tiny, tname, node_nm="7")
    assert d7["energy_mac_pj"].sum() == pytest.approx(E7 / E45 * d45["energy_mac_pj"].sum(), rel=1e-5)
    # the PE area: the area a design's extra PEs add scales by the area factor
    grow = {"rows": 64} if tname == "systolic" else {"units": 216}
    pe45 = _cost(tiny, tname, **grow)["area_mm2"].max() - d45["area_mm2"].max()
    pe7 = _cost(tiny, tname, node_nm="7", **grow)["area_mm2"].max() - d7["area_mm2"].max()
    assert pe7 == pytest.approx(AREA_7 * pe45, rel=1e-4)
    if tname == "systolic":   # 32 more rows of 32 int8 PEs
        assert pe45 == pytest.approx(32 * 32 * INT8_PE_UM2 * 1e-6, rel=1e-5)
    assert (d7["latency_cycles"] == d45["latency_cycles"]).all()   # the node sets no cycle count


@pytest.mark.parametrize("tname", ["systolic", "roofline"])
def test_the_defaults_leave_todays_costs_unchanged(tiny, tname):
    base = _cost(tiny, tname)
    explicit = _cost(tiny, tname, node_nm="45", dram="ddr3")
    for k in base:
        np.testing.assert_array_equal(base[k], explicit[k])
    t = get_template(tname)
    assert t.space.default()["node_nm"] == "45" and t.space.default()["dram"] == "ddr3"
    # Horowitz's 20.3 pJ per DRAM bit and 10 mW/mm^2 of logic leakage at 45 nm, as before
    tech = technology.resolve({})
    assert float(tech.dram_pj_per_bit) == pytest.approx(1300.0 / 64.0)
    assert float(tech.leakage_mw_per_mm2) == pytest.approx(10.0)
    # at 7 nm a gate leaks like its energy scales, over its scaled area
    t7 = technology.resolve({"node_nm": jnp.float32(technology.NODES_NM.index(7))})
    assert float(t7.leakage_mw_per_mm2) == pytest.approx(10.0 * (E7 / E45) / AREA_7, rel=1e-5)


def test_the_default_logic_costs_are_those_before_the_technology_knobs(tiny):
    # the SRAMs' area and energy are memories.py's (CACTI); the PEs and vector lanes are
    # Horowitz's 45 nm int8 PE, as before: 32 more columns, 64 more lanes
    d = _cost(tiny)
    assert _cost(tiny, cols=64)["area_mm2"].max() - d["area_mm2"].max() == pytest.approx(
        32 * 32 * INT8_PE_UM2 * 1e-6, rel=1e-5)
    assert _cost(tiny, vector_width=128)["area_mm2"].max() - d["area_mm2"].max() == pytest.approx(
        64 * INT8_PE_UM2 * 1e-6, rel=1e-4)
    # an A100-like roofline: 108 more units of 1024 + 64 fp16 PEs (Horowitz: 1640 + 1360 um^2
    # plus three 16-bit registers)
    r = _cost(tiny, "roofline")
    assert _cost(tiny, "roofline", units=216)["area_mm2"].max() - r["area_mm2"].max() == pytest.approx(
        108 * (1024 + 64) * (1640 + 1360 + 3 * 16 * 6) * 1e-6, rel=1e-5)
    # and an int8 MAC still costs Horowitz's 45 nm figure
    assert d["energy_mac_pj"][d["macs"] > 0].sum() == pytest.approx(INT8_MAC_PJ * d["macs"].sum(), rel=1e-5)


def test_the_dram_kind_sets_the_energy_per_bit_and_nothing_else(tiny):
    ddr3, hbm3 = _cost(tiny), _cost(tiny, dram="hbm3")
    # O'Connor et al. 2017: HBM2 3.97 pJ/bit, x (1.1 V / 1.2 V)^2 for HBM3's core supply
    expect = 3.97 * (1.1 / 1.2) ** 2 / (1300.0 / 64.0)
    assert hbm3["energy_dram_pj"].sum() == pytest.approx(expect * ddr3["energy_dram_pj"].sum(), rel=1e-5)
    for k in ("latency_cycles", "energy_mac_pj", "energy_sram_pj", "energy_noc_pj", "area_mm2"):
        np.testing.assert_array_equal(ddr3[k], hbm3[k])
    assert technology.DRAM_PJ_PER_BIT[technology.DRAM_KINDS.index("hbm2e")] == 3.97


def test_a_yaml_or_set_integer_node_means_that_node(tmp_path):
    space = get_template("systolic").space
    f = tmp_path / "hw.yaml"
    f.write_text("backend: systolic\nnode_nm: 28\ndram: hbm2e\n")
    backend, design = hwfile.read(f)
    hw = hwfile.resolve(space, design, hwfile.parse_sets(["node_nm=7"]))
    assert backend == "systolic" and hw["dram"] == "hbm2e" and hw["node_nm"] == "7"
    assert hwfile.resolve(space, design)["node_nm"] == "28"
    assert space.validate({"node_nm": 16.0})["node_nm"] == "16"


@pytest.mark.parametrize("bad", [10, 3, "5nm", 0])
def test_an_unknown_node_lists_the_legal_ones(bad):
    # an integer is never read as an index on a knob whose choices are numbers: 3 is not "16"
    with pytest.raises(HardwareError) as e:
        get_template("systolic").space.validate({"node_nm": bad}, "hw.yaml")
    assert "node_nm" in str(e.value) and "one of 65, 45, 28, 16, 7" in str(e.value)


def test_a_number_whose_str_is_a_choice_wins_over_the_index_interpretation():
    widths = Knob("w", "categorical", "8", choices=("8", "16", "32"))
    assert widths.validate(16) == "16" and widths.validate("32") == "32"
    with pytest.raises(HardwareError):
        widths.validate(1)                                   # not an index on a numeric knob
    letters = Knob("df", "categorical", "ws", choices=("os", "ws", "is"))
    assert letters.validate(2) == "is"                       # indices still work elsewhere
    mixed = Knob("m", "categorical", "a", choices=("a", "1", "b"))
    assert mixed.validate(1) == "1" and mixed.validate(2) == "b"


def test_a_forwarding_hop_is_a_wire_one_pe_pitch_long():
    hop = lambda area_um2: float(tables.hop_pj_per_bit(area_um2 * 1e-6, WIRE_45))  # noqa: E731
    # proportional to the pitch: 4x the PE area is 2x the pitch
    assert hop(4 * INT8_PE_UM2) == pytest.approx(2 * hop(INT8_PE_UM2), rel=1e-6)
    # per bit: an int8 PE's pitch is sqrt(625 um^2) = 25 um, at 0.121 pJ/bit/mm
    assert hop(INT8_PE_UM2) == pytest.approx(WIRE_45 * math.sqrt(INT8_PE_UM2) * 1e-3, rel=1e-6)
    assert hop(INT8_PE_UM2) == pytest.approx(0.00303, rel=1e-2)
    # 7 nm: the wire energy follows Vdd^2 (0.7 V) and the pitch sqrt(0.059)
    t7 = technology.resolve({"node_nm": jnp.float32(technology.NODES_NM.index(7))})
    assert float(t7.wire_pj_per_bit_mm) == pytest.approx(WIRE_45 * 0.49, rel=1e-5)


def test_forwarding_is_linear_in_the_bits_and_well_below_the_mac_energy_on_resnet50():
    g = symbiote.load("zoo:resnet50")
    wl = lower(g, analyze(g))
    d = _cost(wl)                                            # int8, 32 x 32, ws, 45 nm
    hop = WIRE_45 * math.sqrt(INT8_PE_UM2) * 1e-3            # pJ per bit per hop
    macs = d["macs"].sum()
    # ws: each MAC's 8-bit input crosses one PE and its 24-bit partial sum one PE (fold padding
    # adds a little): ~32 bits x one hop per MAC -- linear in the bits
    noc = d["energy_noc_pj"].sum()
    assert 32 * hop * macs * 0.99 <= noc <= 32 * hop * macs * 1.5
    mac_pj = d["energy_mac_pj"][d["macs"] > 0].sum()        # the MAC rows (not the vector ALU's)
    assert mac_pj == pytest.approx(INT8_MAC_PJ * macs, rel=1e-4)
    assert noc < 0.5 * mac_pj                                # was 4x the MACs (Eyeriss's 2x per hop)


def test_the_search_holds_the_node_and_the_dram_kind():
    from symbiote.search.api import HELD_BY_DEFAULT

    assert {"node_nm", "dram", "datapath", "dram_gbps", "clock_ghz"} <= set(HELD_BY_DEFAULT)


@pytest.mark.parametrize("fmt,bits,mac_pj", [
    ("int4", 4, 0.2 * 16 / 64 + 0.03 + 0.07 * 8 / 24),        # 4x4 multiply + 16-bit (floor) add
    ("int8", 8, INT8_MAC_PJ),
    ("fp8", 8, 1.1 * (4 / 11) ** 2 + 0.4 * 4 / 11),           # FP16's, x s^2 (multiply), x s (add)
    ("bf16", 16, 1.1 * (8 / 11) ** 2 + 0.4 * 8 / 11),
    ("fp16", 16, 1.1 + 0.4),                                  # Horowitz
    ("fp32", 32, 3.7 + 0.9),
])
def test_every_datapath_format_prices_its_macs(tiny, fmt, bits, mac_pj):
    from symbiote.search import codesign

    t = get_template("systolic")
    assert codesign.datapath_bits(t, {"datapath": fmt}) == bits
    d = _cost(tiny, datapath=fmt)
    mac = d["macs"] > 0
    assert d["energy_mac_pj"][mac].sum() == pytest.approx(mac_pj * d["macs"].sum(), rel=1e-4)
    r = _cost(tiny, "roofline", datapath=fmt)                 # the roofline accepts every format too
    assert np.isfinite(r["energy_mac_pj"]).all()


def test_the_relaxed_model_mixes_nodes_and_dram_kinds_smoothly(tiny):
    t = get_template("systolic")
    hw = {k: jnp.float32(t.space[k].encode(v)) for k, v in t.space.default().items()}
    hw["dataflow"] = jnp.float32(1.0)

    def edp(node_logits, dram_logits):
        return t.relaxed_cost(hw | {"node_nm": node_logits, "dram": dram_logits}, tiny).edp

    zeros = jnp.zeros(len(technology.NODES_NM)), jnp.zeros(len(technology.DRAM_KINDS))
    g_node, g_dram = jax.grad(edp, argnums=(0, 1))(*zeros)
    assert np.isfinite(np.asarray(g_node)).all() and np.isfinite(np.asarray(g_dram)).all()
    # raising 7 nm's logit lowers the EDP (less energy at equal latency); likewise hbm3's
    assert float(g_node[technology.NODES_NM.index(7)]) < 0 < float(g_node[technology.NODES_NM.index(65)])
    assert float(g_dram[technology.DRAM_KINDS.index("hbm3")]) < 0
