"""ZigZag and AccelForge interoperability of the spatial template (backends/spatial/interop_*.py).

The accelerator files are in tests/backends/data/: ``zigzag_test_3d.yaml`` and
``zigzag_test_legacy.yaml`` were written for these tests (three array axes, shared memories,
memories served across none, some or all axes; the two port schemas of ZigZag 3.x);
``zigzag_eyeriss_like.yaml`` and ``zigzag_tpu_like.yaml`` are ZigZag 3.9.1's own (MIT, see
their headers). That AccelForge accepts and evaluates what is written here is checked by
``benchmarks/crosscheck_spatial_accelforge.py`` (AccelForge has its own venv).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from symbiote.backends.spatial import interop_accelforge as iaf
from symbiote.backends.spatial import interop_design as idz
from symbiote.backends.spatial import interop_zigzag as izz
from symbiote.backends.spatial.interop_arch import (
    InteropError,
    hierarchy,
    instances,
    memory,
    shared,
    top_down,
)
from symbiote.backends.spatial.space import SPACE

DATA = Path(__file__).parent / "data"
TEST_3D = DATA / "zigzag_test_3d.yaml"
LEGACY = DATA / "zigzag_test_legacy.yaml"
SHIPPED = (DATA / "zigzag_eyeriss_like.yaml", DATA / "zigzag_tpu_like.yaml")
L = iaf.Loop


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _roundtrip(arch, tmp_path: Path, schema: str = "ports"):
    out = tmp_path / f"{arch.name}.{schema}.yaml"
    izz.to_zigzag(arch, out, schema)
    return izz.from_zigzag(out)


# --------------------------------------------------------------------------- ZigZag: reading


def test_test_3d_reads_axes_shared_memories_and_served_dimensions():
    a = izz.from_zigzag(TEST_3D)
    assert a.name == "test_3d" and a.notes == ()
    assert [(d.name, d.size) for d in a.array.dims] == [("D1", 8), ("D2", 4), ("D3", 2)]
    assert a.array.units == 64 and a.array.systolic_dims == ("D1",) and a.array.input_precision == (8, 8)
    assert [m.name for m in a.memories] == ["rf_w", "rf_io", "lb_o", "glb", "dram"]
    rf_io, lb_o, glb = memory(a, "rf_io"), memory(a, "lb_o"), memory(a, "glb")
    assert rf_io.operands == ("I1", "O") and shared(rf_io) and glb.operands == ("I1", "I2", "O")
    assert lb_o.served_dims == ("D3",) and instances(a, lb_o) == 32
    assert instances(a, rf_io) == 64 and instances(a, glb) == 1
    assert [m.name for m in hierarchy(a, "O")] == ["rf_io", "lb_o", "glb", "dram"]
    assert [m.name for m in hierarchy(a, "I2")] == ["rf_w", "glb", "dram"]
    # ports: two read ports of rf_io, min < max bandwidth, allocations by operand and direction
    assert rf_io.port_kinds() == {"read": 2, "write": 2, "read_write": 0}
    p = rf_io.ports[0]
    assert (p.name, p.kind, p.bw_min_bits, p.bw_max_bits, p.allocation) == (
        "r_port_1", "read", 8, 16, (("I1", "tl"), ("O", "th")))
    assert rf_io.read_bw_bits == 16 and memory(a, "dram").ports[0].kind == "read_write"
    assert glb.force_double_buffering and glb.latency_cycles == 2 and glb.r_cost_pj == 30.5
    assert a.dataflows == (("D1", (("K", 8),)), ("D2", (("C", 4),)), ("D3", (("OX", 2),)))


@pytest.mark.parametrize("path", [TEST_3D, *SHIPPED], ids=lambda p: p.stem)
def test_round_trip_port_schema(path, tmp_path):
    a = izz.from_zigzag(path)
    assert _roundtrip(a, tmp_path) == a
    assert _roundtrip(_roundtrip(a, tmp_path), tmp_path) == a


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_written_document_is_the_file(path):
    """ZigZag's own files hold no default-valued optional field: the document written is the
    document read, field for field (YAML's last-key-wins for tpu_like's repeated 'ports')."""
    assert izz.zigzag_document(izz.from_zigzag(path)) == _raw(path)


def test_repeated_key_is_reported():
    a = izz.from_zigzag(DATA / "zigzag_tpu_like.yaml")
    assert any("'ports'" in n and "twice" in n for n in a.notes)
    assert [p.name for p in memory(a, "sram_2MB").ports] == ["r_port_1", "w_port_1"]


def test_legacy_schema_round_trips_and_agrees_with_the_port_schema(tmp_path):
    a = izz.from_zigzag(LEGACY)
    buf = memory(a, "buf")
    assert buf.served_dims == ("D2", "D3") and instances(a, buf) == 4 and buf.operands == ("I1", "O")
    assert [(p.name, p.kind, p.bw_min_bits, p.bw_max_bits) for p in buf.ports] == [("rw_port_1", "read_write", 32, 128)]
    rf_io = memory(a, "rf_io")
    assert [(p.name, p.allocation) for p in rf_io.ports] == [
        ("r_port_1", (("I1", "tl"), ("O", "tl"))), ("r_port_2", (("O", "th"),)),
        ("w_port_1", (("I1", "fh"), ("O", "fh"))), ("w_port_2", (("O", "fl"),))]
    assert _roundtrip(a, tmp_path, "legacy") == a
    assert _roundtrip(a, tmp_path, "ports") == a       # the same architecture in either schema
    assert izz.zigzag_document(a, "legacy") == _raw(LEGACY)


def test_legacy_writer_refuses_what_the_legacy_schema_cannot_say():
    with pytest.raises(InteropError, match=r"memories\.rf_io\.ports"):
        izz.zigzag_document(izz.from_zigzag(TEST_3D), "legacy")


def test_unknown_fields_are_kept_and_reported():
    data = _raw(TEST_3D)
    data["vendor"] = {"chip": "x", "rev": 2}
    data["memories"]["glb"]["banks"] = 8
    data["operational_array"]["clock_mhz"] = 500
    a = izz.parse_zigzag(copy.deepcopy(data), "t.yaml")
    assert a.extra == (("vendor", {"chip": "x", "rev": 2}),)
    assert memory(a, "glb").extra == (("banks", 8),) and a.array.extra == (("clock_mhz", 500),)
    assert len(a.notes) == 3 and any("memories.glb.banks" in n for n in a.notes)
    doc = izz.zigzag_document(a)
    assert doc["vendor"] == {"chip": "x", "rev": 2} and doc["memories"]["glb"]["banks"] == 8
    assert doc["operational_array"]["clock_mhz"] == 500


# --------------------------------------------------------------------------- ZigZag: errors


def _edit(data: dict, path: str, value=None, delete: bool = False) -> dict:
    data = copy.deepcopy(data)
    *keys, last = path.split(".")
    d = data
    for k in keys:
        d = d[int(k)] if isinstance(d, list) else d[k]
    if delete:
        del d[last]
    elif isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value
    return data


@pytest.mark.parametrize("path,value,delete,field", [
    ("memories.rf_w.size", None, True, r"memories\.rf_w\.size: missing"),
    ("memories.rf_w.size", "1M", False, r"memories\.rf_w\.size: expected an integer"),
    ("memories.rf_w.r_cost", None, True, r"memories\.rf_w\.r_cost: missing"),
    ("memories.rf_w.r_cost", "cheap", False, r"memories\.rf_w\.r_cost: expected a number"),
    ("memories.rf_w.operands", ["I3"], False, r"memories\.rf_w\.operands: 'I3'"),
    ("memories.lb_o.served_dimensions", ["D4"], False, r"memories\.lb_o\.served_dimensions: 'D4'"),
    ("memories.rf_w.ports.0.allocation", ["I2 tl"], False, r"memories\.rf_w\.ports\.r_port_1\.allocation"),
    ("memories.rf_w.ports.0.allocation", ["I2, fh"], False, r"ports\.r_port_1\.allocation: a read port"),
    ("memories.rf_w.ports.0.allocation", ["O, tl"], False, r"operand O is not held by rf_w"),
    ("memories.rf_w.ports.0.type", "readwrite", False, r"ports\.r_port_1\.type"),
    ("memories.rf_w.ports.0.bandwidth_min", 64, False, r"ports\.r_port_1: bandwidth_min 64 > bandwidth_max 8"),
    ("memories.rf_w.ports.0.speed", 2, False, r"memories\.rf_w\.ports\[0\]: unknown field"),
    ("memories.rf_w.latency", 1.5, False, r"memories\.rf_w\.latency: expected an integer"),
    ("memories.rf_w.auto_cost_extraction", "yes", False, r"auto_cost_extraction: expected true or false"),
    ("operational_array.sizes", [8, 4], False, r"operational_array: 3 dimensions but 2 sizes"),
    ("operational_array.systolic_dimensions", ["D9"], False, r"operational_array\.systolic_dimensions"),
    ("operational_array.dimensions", None, True, r"operational_array\.dimensions: missing"),
    ("dataflows.D1", ["K 8"], False, r"dataflows\.D1"),
    ("memories", [], False, r"memories: expected a mapping"),
    ("name", None, True, r"name: missing"),
])
def test_bad_input_names_the_file_and_the_field(path, value, delete, field, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_edit(_raw(TEST_3D), path, value, delete)))
    with pytest.raises(InteropError, match=field) as e:
        izz.from_zigzag(bad)
    assert str(bad) in str(e.value)


def test_an_operand_nobody_holds_is_named():
    data = _raw(TEST_3D)
    for m in data["memories"].values():
        if "I2" in m["operands"]:
            m["operands"].remove("I2")
            for p in m["ports"]:
                p["allocation"] = [x for x in p["allocation"] if not x.startswith("I2")]
    del data["memories"]["rf_w"]
    with pytest.raises(InteropError, match="no memory holds operand I2"):
        izz.parse_zigzag(data, "t.yaml")


def test_legacy_errors_name_the_field(tmp_path):
    bad = _edit(_raw(LEGACY), "memories.rf_w.ports.0.tl", "r_port_3")
    with pytest.raises(InteropError, match=r"memories\.rf_w\.ports\[I2\]\.tl: port 'r_port_3' does not exist"):
        izz.parse_zigzag(bad, "legacy.yaml")
    bad = _edit(_raw(LEGACY), "memories.buf.w_bw", 64)
    with pytest.raises(InteropError, match=r"memories\.buf: a read_write port with r_bw 128"):
        izz.parse_zigzag(bad, "legacy.yaml")
    bad = _edit(_raw(LEGACY), "memories.rf_io.ports", [{"tl": "r_port_1"}])
    with pytest.raises(InteropError, match=r"memories\.rf_io\.ports: 1 entries for 2 operands"):
        izz.parse_zigzag(bad, "legacy.yaml")


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(InteropError, match="nope.yaml: cannot read"):
        izz.from_zigzag(tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(InteropError, match="broken.yaml: not valid YAML"):
        izz.from_zigzag(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(InteropError, match="broken.yaml: the document: expected a mapping"):
        izz.from_zigzag(bad)


# --------------------------------------------------------------------------- AccelForge


def test_top_down_order_and_containers():
    a = izz.from_zigzag(TEST_3D)
    assert [m.name for m in top_down(a)] == ["dram", "glb", "lb_o", "rf_io", "rf_w"]
    assert [(i, [d.name for d in axes]) for i, axes in iaf.containers(a)] == [(2, ["D1", "D2"]), (3, ["D3"])]
    e = izz.from_zigzag(SHIPPED[0])
    assert [(i, [d.name for d in axes]) for i, axes in iaf.containers(e)] == [(4, ["D1", "D2"])]


def test_accelforge_arch_document():
    a = izz.from_zigzag(TEST_3D)
    text = iaf.accelforge_arch_yaml(a, clock_ghz=0.5)
    assert text.startswith("# test_3d: written by symbiote")
    nodes = yaml.load(text, Loader=iaf._Loader)["arch"]["nodes"]
    assert [(n.tag, n.get("name")) for n in nodes] == [
        ("Memory", "dram"), ("Memory", "glb"), ("Container", "array_D1_D2"), ("Memory", "lb_o"),
        ("Container", "array_D3"), ("Memory", "rf_io"), ("Memory", "rf_w"), ("Compute", "MAC")]
    rf_io = nodes[5]
    assert rf_io.get("tensors") == {"keep": "input | output"} and rf_io.get("size") == 512
    read, write = rf_io.get("actions")
    assert read == {"name": "read", "energy": 0.1, "bits_per_action": 16, "throughput": 2 * 0.5e9}
    assert write["energy"] == 0.12 and nodes[2].get("spatial") == [{"name": "D1", "fanout": 8}, {"name": "D2", "fanout": 4}]
    assert nodes[-1].get("actions") == [{"name": "compute", "energy": 0.04, "throughput": 0.5e9}]


@pytest.mark.parametrize("path", [TEST_3D, *SHIPPED], ids=lambda p: p.stem)
def test_accelforge_arch_reads_back(path, tmp_path):
    a = izz.from_zigzag(path)
    out = tmp_path / "a.arch.yaml"
    iaf.to_accelforge(a, out)
    b = iaf.from_accelforge(out)
    key = lambda m: (m.name, m.operands, m.size_bits, m.served_dims, m.r_cost_pj, m.w_cost_pj, m.area,  # noqa: E731
                     m.read_bw_bits)
    assert sorted(map(key, a.memories)) == sorted(map(key, b.memories))
    assert [m.name for m in top_down(a)] == [m.name for m in top_down(b)]
    assert a.array.dims == b.array.dims and a.array.unit_energy_pj == b.array.unit_energy_pj
    assert b.name == a.name and any("ports" in n for n in b.notes)


def test_costs_left_to_cacti_are_refused_for_accelforge():
    data = _edit(_raw(TEST_3D), "memories.glb.auto_cost_extraction", True)
    del data["memories"]["glb"]["r_cost"]
    a = izz.parse_zigzag(data, "t.yaml")
    assert memory(a, "glb").r_cost_pj is None
    with pytest.raises(InteropError, match=r"memories\.glb: r_cost / w_cost not given"):
        iaf.accelforge_arch_yaml(a)


def test_axes_that_do_not_nest_are_refused():
    data = _edit(_raw(TEST_3D), "memories.rf_w.served_dimensions", ["D1"])
    a = izz.parse_zigzag(data, "t.yaml")
    with pytest.raises(InteropError, match="not nested"):
        iaf.accelforge_arch_yaml(a)


def _tpu_nest(m=64, k=96, n=64):
    return iaf.LoopNest("Gemm", (("m", m), ("k", k), ("n", n)), (
        ("dram", (L("n", 2),)), ("sram_2MB", (L("k", 3), L("n", 32, "D1"), L("k", 32, "D2"))),
        ("rf_128B", (L("m", m),)), ("rf_2B", ())))


def test_mapping_yaml_of_a_loop_nest():
    a = izz.from_zigzag(DATA / "zigzag_tpu_like.yaml")
    text = iaf.mapping_to_accelforge_yaml(a, _tpu_nest())
    assert "#   sram_2MB: k x3, n x32 on D1, k x32 on D2" in text
    nodes = yaml.load(text, Loader=iaf._Loader)["mapping"]["nodes"]
    assert [(n.tag, dict(n.fields)) for n in nodes] == [
        ("Storage", {"tensors": ["I", "W", "O"], "component": "dram"}),
        ("Temporal", {"rank_variable": "n", "tile_shape": 32}),
        ("Storage", {"tensors": ["I", "O"], "component": "sram_2MB"}),
        ("Temporal", {"rank_variable": "k", "tile_shape": 32}),
        ("Spatial", {"rank_variable": "n", "tile_shape": 1, "name": "D1", "component": "array_D1_D2"}),
        ("Spatial", {"rank_variable": "k", "tile_shape": 1, "name": "D2", "component": "array_D1_D2"}),
        ("Storage", {"tensors": ["W"], "component": "rf_128B"}),
        ("Temporal", {"rank_variable": "m", "tile_shape": 1}),
        ("Storage", {"tensors": ["O"], "component": "rf_2B"}),
        ("Compute", {"einsum": "Gemm", "component": "MAC"})]


def test_imperfect_factors_are_ceil_tiles():
    a = izz.from_zigzag(DATA / "zigzag_tpu_like.yaml")
    nest = iaf.LoopNest("Gemm", (("m", 50), ("k", 90), ("n", 70)), (
        ("dram", (L("n", 3),)), ("sram_2MB", (L("k", 3), L("n", 32, "D1"), L("k", 32, "D2"))),
        ("rf_128B", (L("m", 50),)), ("rf_2B", ())))
    tiles = [(n.get("rank_variable"), n.get("tile_shape")) for n in iaf.mapping_nodes(a, nest)
             if n.tag in ("Temporal", "Spatial")]
    assert tiles == [("n", 32), ("k", 32), ("n", 1), ("k", 1), ("m", 1)]


@pytest.mark.parametrize("levels,match", [
    ((("dram", (L("n", 2),)), ("sram_2MB", (L("k", 3), L("n", 32, "D1"), L("k", 32, "D2"))), ("rf_128B", (L("m", 64),))),
     r"missing \['rf_2B.O'\]"),
    ((("sram_2MB", (L("k", 3), L("n", 32, "D1"), L("k", 32, "D2"))), ("dram", (L("n", 2),)), ("rf_128B", (L("m", 64),)),
      ("rf_2B", ())), r"operand I1's memories are \['sram_2MB', 'dram'\]"),
    ((("dram", (L("n", 2), L("n", 32, "D1"))), ("sram_2MB", (L("k", 3), L("k", 32, "D2"))), ("rf_128B", (L("m", 64),)),
      ("rf_2B", ())), r"loop n x32 on D1: the memories shared across D1 must come before it.*sram_2MB"),
    ((("dram", (L("n", 2),)), ("sram_2MB", (L("k", 3), L("n", 32, "D1"), L("k", 32, "D2"))), ("rf_128B", (L("m", 32),)),
      ("rf_2B", ())), r"do not cover the layer's extents: \{'m': '32 < 64'\}"),
    ((("dram", (L("n", 1),)), ("sram_2MB", (L("k", 3), L("n", 64, "D1"), L("k", 32, "D2"))), ("rf_128B", (L("m", 64),)),
      ("rf_2B", ())), r"axis D1 has 32 units, the loops on it use 64"),
    ((("dram", (L("x", 2),)), ("sram_2MB", ()), ("rf_128B", ()), ("rf_2B", ())), r"'x' is not a dim of the layer"),
    ((("dram", (L("n", 64, "D7"),)), ("sram_2MB", (L("k", 96),)), ("rf_128B", (L("m", 64),)), ("rf_2B", ())),
     r"'D7' is not an axis"),
])
def test_mapping_errors_name_the_loop(levels, match):
    a = izz.from_zigzag(DATA / "zigzag_tpu_like.yaml")
    with pytest.raises(InteropError, match=match):
        iaf.mapping_nodes(a, iaf.LoopNest("Gemm", (("m", 64), ("k", 96), ("n", 64)), levels))


def test_workload_yaml():
    g = yaml.safe_load(iaf.gemm_workload_yaml(128, 768, 3072, {"O": 16}))["workload"]
    assert g["iteration_space_shape"] == {"m": "0 <= m < 128", "k": "0 <= k < 768", "n": "0 <= n < 3072"}
    assert g["bits_per_value"] == {"I": 8, "W": 8, "O": 16}
    assert g["einsums"][0]["renames"] == {"input": "I", "weight": "W", "output": "O"}
    c = yaml.safe_load(iaf.conv_workload_yaml(1, 64, 3, 112, 112, 7, 7, stride=(2, 2)))["workload"]
    assert c["einsums"][0]["tensor_accesses"][0]["projection"]["H"] == "2*p + 1*r"


# --------------------------------------------------------------------------- template knobs


def test_to_design_reads_knobs_and_reports_what_has_none():
    t = idz.to_design(izz.from_zigzag(SHIPPED[0]))      # eyeriss_like
    d = t.design
    assert (d["array_x"], d["array_y"]) == (14, 12)
    assert (d["rf_weight_bytes"], d["rf_input_bytes"], d["rf_psum_bytes"]) == (64, 64, 16)
    assert (d["glb_weight_kb"], d["glb_input_kb"], d["glb_output_kb"], d["glb_split"]) == (64, 512, 512, "split")
    assert d["dram_gbps"] == 8.0 and SPACE.validate(d) == d
    report = "\n".join(t.report)
    for what in ("sram_8KB", "sram_1M holds I1, O", "r_cost, w_cost, unit_energy", "no input_precision"):
        assert what in report
    t3 = idz.to_design(izz.from_zigzag(TEST_3D))
    assert (t3.design["array_x"], t3.design["array_y"], t3.design["glb_split"], t3.design["dataflow"]) == (8, 8, "shared", "ws")
    assert any("D3 have no knob" in r for r in t3.report) and any("lb_o" in r for r in t3.report)
    assert any("systolic_dimensions" in r for r in t3.report)
    tpu = idz.to_design(izz.from_zigzag(SHIPPED[1]))
    assert tpu.design["rf_input_bytes"] == 1 and any("inputs have no per-PE memory" in r for r in tpu.report)


def test_to_design_adapts_tpu_like_to_what_zigzag_ran():
    from symbiote.backends import tables

    arch = izz.from_zigzag(SHIPPED[1])                  # tpu_like
    t = idz.to_design(arch)
    d = t.design
    # rf_2B holds one 16-bit ZigZag partial sum; the template's int8 accumulator is wider: the
    # psum RF grows to exactly one accumulator
    acc = float(tables.acc_bits(8.0, 8.0))
    assert d["datapath"] == "int8" and (d["rf_psum_bytes"] - 1) * 8 < acc <= d["rf_psum_bytes"] * 8
    # weights go from DRAM straight to rf_128B: the weight GLB holds what the 32 x 32 RFs hold
    assert idz.bypassed(arch) == ("I2",)
    held = d["array_x"] * d["array_y"] * d["rf_weight_bytes"]
    assert (d["glb_weight_kb"] - 1) * 1024 < held <= d["glb_weight_kb"] * 1024
    assert (d["rf_weight_bytes"], d["glb_weight_kb"]) == (128, 128)
    # the inputs have no per-PE memory (not bypassed: the least RF, which holds one int8 input)
    assert d["rf_input_bytes"] == 1 and d["glb_input_kb"] == 1024
    assert len(t.adapted) == 2 and set(t.adapted) <= set(t.report)
    assert t.adapted[0].startswith("rf_psum_bytes = 3 (was 2)") and t.adapted[1].startswith("glb_weight_kb = 128 (was 1")
    assert not any("glb_weight_kb = 1 KB, the least" in r for r in t.report)
    # no spatial mapping: the family is read off the file (none: free); ZigZag's shipped mapping
    # file (K 32 on D1, C 32 on D2), in any of its forms, selects kc (no fill dims)
    assert d["dataflow"] == "free"
    shipped = [{"name": "default", "spatial_mapping": {"D1": ["K, 32"], "D2": ["C, 32"]},
                "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}},
               {"name": "Add", "spatial_mapping": {"D1": ["G, 32"], "D2": ["C, 1"]}}]
    for sm in ({"D1": "K", "D2": "C"}, shipped, shipped[0], shipped[0]["spatial_mapping"],
               {"D1": [("K", 32)], "D2": ["C, 32", "FY, 1"]}):
        k = idz.to_design(arch, spatial_mapping=sm)
        assert k.design["dataflow"] == "kc", sm
        assert {x: k.design[x] for x in d if x != "dataflow"} == {x: d[x] for x in d if x != "dataflow"}
        assert len(k.adapted) == 3 and k.adapted[0].startswith("dataflow = kc")
    # more than K and C unrolled: the family whose primary dims are unrolled (with its fills)
    assert idz.to_design(arch, spatial_mapping={"D1": ["K, 16", "G, 2"], "D2": "C"}).design["dataflow"] == "ws"
    assert idz.to_design(arch, spatial_mapping={"D1": "OX", "D2": "OY"}).design["dataflow"] == "os"
    assert idz.to_design(arch, spatial_mapping={"D1": "C", "D2": "K"}).design["dataflow"] == "free"
    with pytest.raises(InteropError, match="D3 is not an axis"):
        idz.to_design(arch, spatial_mapping={"D1": "K", "D3": "C"})
    with pytest.raises(InteropError, match="not 'DIM' or 'DIM, FACTOR'"):
        idz.to_design(arch, spatial_mapping={"D1": "K, 3, 4", "D2": "C"})


def test_to_design_adaptations_make_tpu_like_feasible():
    # without the psum RF's growth no candidate mapping of any layer fits; with it every layer has one
    from symbiote.backends.manager import get_template
    from symbiote.frontend import load
    from symbiote.ir.lower import lower

    t = get_template("spatial")
    wl = lower(load("zoo:tiny_cnn"))
    d = idz.to_design(izz.from_zigzag(SHIPPED[1]), spatial_mapping={"D1": "K", "D2": "C"}).design
    for psum, feasible in ((d["rf_psum_bytes"], True), (2, False)):
        b = t.mappings(t.space.encode(d | {"rf_psum_bytes": psum}), wl)
        mac = [f for f, m in zip(b["feasible"], b["is_mac"], strict=True) if m > 0]
        assert mac and all(bool(f) == feasible for f in mac), psum


def test_to_design_with_zigzags_16_bit_partial_sums_keeps_tpu_likes_psum_rf():
    # acc_guard_bits = 0: int8 partial sums are 16 bits, as in ZigZag's runs, so rf_2B holds one
    # and is not grown; every MAC layer maps (and, at the default 24 bits, none does on 2 bytes)
    from symbiote.backends.manager import get_template
    from symbiote.frontend import load
    from symbiote.ir.lower import lower

    arch = izz.from_zigzag(SHIPPED[1])
    t = idz.to_design(arch, spatial_mapping={"D1": "K", "D2": "C"}, acc_guard_bits=0)
    d = t.design
    assert d["acc_guard_bits"] == 0 and d["rf_psum_bytes"] == 2
    assert not any(a.startswith("rf_psum_bytes") for a in t.adapted) and len(t.adapted) == 2
    # written back, the psum RF's word is 16 bits (the default guard bits' 24 would not fit in 2 bytes)
    rf_o = [m for m in idz.from_design(d).memories if m.operands == ("O",) and not m.served_dims]
    assert [m.read_bw_bits for m in rf_o] == [16]
    tp = get_template("spatial")
    wl = lower(load("zoo:tiny_cnn"))
    for guard, feasible in ((0, True), (8, False)):
        b = tp.mappings(tp.space.encode(d | {"acc_guard_bits": guard}), wl)
        mac = [f for f, m in zip(b["feasible"], b["is_mac"], strict=True) if m > 0]
        assert mac and all(bool(f) == feasible for f in mac), guard


def test_to_design_leaves_eyeriss_like_as_read():
    arch = izz.from_zigzag(SHIPPED[0])
    t = idz.to_design(arch)
    assert idz.bypassed(arch) == () and t.adapted == () and t.design["dataflow"] == "free"
    assert (t.design["rf_psum_bytes"], t.design["glb_weight_kb"]) == (16, 64)


def test_kc_written_by_from_design_reads_back_with_its_spatial_mapping():
    d = SPACE.validate({"dataflow": "kc", "array_x": 32, "array_y": 32})
    a = idz.from_design(d)
    assert a.dataflows == (("D1", (("K", 32),)), ("D2", (("C", 32),)))
    assert any("read kc back" in n for n in a.notes)
    assert idz.to_design(a).design["dataflow"] == "ws"
    back = idz.to_design(a, spatial_mapping={"D1": "K", "D2": "C"})
    assert back.design["dataflow"] == "kc" and any("dataflows" in r and "left aside" in r for r in back.report)


@pytest.mark.parametrize("knobs", [
    {},
    {"array_x": 32, "array_y": 8, "glb_split": "shared", "glb_banks": 8, "dataflow": "ws", "datapath": "int4",
     "rf_psum_bytes": 32, "glb_input_kb": 128},
    {"dataflow": "rs", "node_nm": "28", "dram": "hbm2e", "dram_gbps": 460.8, "clock_ghz": 0.8},
])
def test_from_design_writes_a_zigzag_file_that_reads_back_as_the_design(knobs, tmp_path):
    d = SPACE.validate(knobs)
    a = idz.from_design(d)
    assert any("noc_bytes_per_cycle" in n for n in a.notes)
    b = _roundtrip(a, tmp_path)
    assert b == a
    back = idz.to_design(b, clock_ghz=d["clock_ghz"]).design
    same = ("array_x", "array_y", "rf_weight_bytes", "rf_input_bytes", "rf_psum_bytes", "glb_split", "glb_banks",
            "datapath", "dataflow", "clock_ghz")
    assert {k: back[k] for k in same} == {k: d[k] for k in same}
    if d["glb_split"] == "split":
        assert [back[k] for k in ("glb_weight_kb", "glb_input_kb", "glb_output_kb")] == [
            d[k] for k in ("glb_weight_kb", "glb_input_kb", "glb_output_kb")]
    assert back["dram_gbps"] == pytest.approx(d["dram_gbps"], rel=0.01)
    rf = memory(a, "rf_weight")
    assert rf.size_bits == d["rf_weight_bytes"] * 8 and rf.r_cost_pj > 0 and a.array.unit_energy_pj > 0


def _chosen(slot: int, cls: int, **factors) -> dict:
    """A row of the spatial model's breakdown: the slot, the class and the factors given (others 1)."""
    from symbiote.backends.spatial.space import DIMS

    row = {"slot": slot, "cls": cls}
    row |= {f"{lvl}_{d}": 1.0 for lvl in ("dram", "glb", "sp", "rf") for d in DIMS}
    row |= {k: float(v) for k, v in factors.items()}
    return row


def test_loop_nest_of_a_chosen_mapping_keeps_stationary_tiles_above_irrelevant_loops():
    # ws without fills, class o (GLB/DRAM order G N K P Q C R S), split k: dram[K96] glb[P128] ||
    # X:K32 Y:C32 || rf[C24]; one shared GLB
    d = SPACE.validate({"glb_split": "shared", "dataflow": "ws", "array_x": 32, "array_y": 32})
    row = _chosen(0, 1, dram_K=96, glb_P=128, sp_K=32, sp_C=32, rf_C=24)
    nest = idz.loop_nest(d, row, {"P": 128, "C": 768, "K": 3072})
    assert nest.extents == (("n", 3072), ("k", 768), ("m", 128))
    assert nest.levels == (
        ("dram", ()),
        # the GLB keeps the inputs across the DRAM loop over n (irrelevant to them): their node is
        # above it; weights and outputs below it
        ("glb", (L("n", 96),), ("I1",)),
        ("glb", (), ("I2",)),
        ("glb", (L("n", 32, "D1"), L("k", 32, "D2")), ("O",)),
        # the weights stay in the PEs' RF across the GLB loop over m; inputs and outputs below it
        ("rf_weight", (L("m", 128),), ("I2",)),
        ("rf_input", (), ("I1",)),
        ("rf_output", (L("k", 24),), ("O",)))
    arch = idz.from_design(d)
    text = iaf.mapping_to_accelforge_yaml(arch, nest)
    nodes = yaml.load(text, Loader=iaf._Loader)["mapping"]["nodes"]
    assert [(n.tag, n.get("component"), n.get("tensors")) for n in nodes if n.tag == "Storage"] == [
        ("Storage", "dram", ["I", "W", "O"]), ("Storage", "glb", ["I"]), ("Storage", "glb", ["W"]),
        ("Storage", "glb", ["O"]), ("Storage", "rf_weight", ["W"]), ("Storage", "rf_input", ["I"]),
        ("Storage", "rf_output", ["O"])]


def test_loop_nest_refuses_an_rf_tile_kept_across_dram_loops():
    """ws without fills, class w: dram[K4] glb[] || X:K2 Y:C4 || rf[C2 P8]. No GLB loop is
    relevant to the inputs, so the model keeps each PE's inputs in its RF across the DRAM loop
    over K (delivered once); AccelForge's nest would refetch them 4 times: refused, not written."""
    d = SPACE.validate({"dataflow": "ws"})
    with pytest.raises(InteropError, match="keeps the I RF tile across the DRAM loops K4"):
        idz.loop_nest(d, _chosen(0, 0, dram_K=4, sp_K=2, sp_C=4, rf_C=2, rf_P=8), {"P": 8, "C": 8, "K": 8})
    # with a GLB loop relevant to the inputs (P), AccelForge's nest keeps them as the model does
    nest = idz.loop_nest(d, _chosen(0, 0, dram_K=4, glb_P=2, sp_K=2, sp_C=4, rf_C=2, rf_P=4), {"P": 8, "C": 8, "K": 8})
    assert nest.extents == (("n", 8), ("k", 8), ("m", 8))


def test_loop_nest_names_a_dim_the_workload_lacks():
    d = SPACE.default()
    with pytest.raises(InteropError, match="glb G x2"):
        idz.loop_nest(d, _chosen(0, 0, glb_G=2), {"P": 4, "C": 4, "K": 4})


# --------------------------------------------------------------------------- ZigZag's recorded results


def test_zigzag_record_is_whole_and_agrees_with_the_vendored_designs():
    """The table benchmarks/crosscheck_spatial_zigzag.py recorded (ZigZag 3.9.1's LOMA on its
    shipped eyeriss_like / tpu_like, vendored here): every network's layers have a row, the
    sums are the network's figures, ZigZag's energy is its MAC energy (the layer's MACs x the
    vendored file's unit_energy, as read by from_zigzag) plus its memory energy, and ZigZag's
    memory levels per operand are this reader's hierarchy of the same file."""
    import json
    import math

    rec = json.loads((DATA / "zigzag_spatial_crosscheck.json").read_text())
    assert rec["zigzag"] == "3.9.1" and rec["settings"]["opt"] == "energy"
    archs = {d: izz.from_zigzag(DATA / f"zigzag_{d}.yaml") for d in ("eyeriss_like", "tpu_like")}
    rows = {(r["design"], r["signature"]): r for r in rec["layers"]}
    assert {d for d, _ in rows} == set(archs)
    for run in rec["runs"]:
        mine = [rows[(run["design"], s)] for s in run["signatures"]]
        assert len(mine) == len(run["layers"]) > 0
        assert run["energy_pj"] == pytest.approx(sum(r["energy_pj"] for r in mine))
        assert run["wall_s"] == pytest.approx(sum(r["wall_s"] for r in mine))
    link = {"I": "I1", "W": "I2", "O": "O"}   # ZigZag's memory_operand_links in the record's runs
    for r in rec["layers"]:
        arch = archs[r["design"]]
        macs = math.prod(r["layer"]["loop_sizes"])
        assert r["mac_energy_pj"] == pytest.approx(macs * arch.array.unit_energy_pj, rel=1e-9)
        assert r["energy_pj"] == pytest.approx(r["mac_energy_pj"] + r["mem_energy_pj"], rel=1e-9)
        assert r["mem_energy_pj"] == pytest.approx(sum(map(sum, r["memory_energy_pj"].values())), rel=1e-9)
        assert r["memory_levels"] == {op: [m.name for m in hierarchy(arch, link[op])] for op in r["memory_levels"]}
        assert r["latency_cycles"] >= r["ideal_cycles"] > 0


def test_a_zigzag_mapping_as_an_accelforge_loop_nest():
    import json

    rec = json.loads((DATA / "zigzag_spatial_crosscheck.json").read_text())
    row = {r["design"]: r for r in rec["layers"] if r["name"] == "bert_base_ffn_up:matmul"}
    ext = {"C": 768, "D": 128, "K": 3072}
    tpu = izz.from_zigzag(DATA / "zigzag_tpu_like.yaml")
    r = row["tpu_like"]
    nest = izz.loop_nest_from_zigzag(tpu, r["temporal_mapping"], r["spatial_mapping"], r["memory_levels"], ext)
    nodes = iaf.mapping_nodes(tpu, nest)
    # every loop of ZigZag's order, outermost first, and its spatial unrolling on the 32 x 32 array
    temporal = [(n.get("rank_variable"), n.get("tile_shape")) for n in nodes if n.tag == "Temporal"]
    zz = [lp for lvl in r["temporal_mapping"]["O"] for lp in lvl][::-1]
    assert [t[0] for t in temporal] == [izz.GEMM_RANKS[d] for d, _ in zz]
    spatial = [(n.get("rank_variable"), n.get("name")) for n in nodes if n.tag == "Spatial"]
    assert sorted(spatial) == [("k", "D2"), ("n", "D1")]
    # each operand's nodes in its ZigZag hierarchy's order, from the top
    for op, names in r["memory_levels"].items():
        t = iaf.TENSORS[izz.LAYER_OPERANDS[op]]
        assert [n.get("component") for n in nodes if n.tag == "Storage" and t in n.get("tensors")] == names[::-1]
    e = row["eyeriss_like"]
    eye = izz.from_zigzag(DATA / "zigzag_eyeriss_like.yaml")
    with pytest.raises(InteropError, match="memories shared across D1 must come before it"):
        iaf.mapping_nodes(eye, izz.loop_nest_from_zigzag(eye, e["temporal_mapping"], e["spatial_mapping"],
                                                         e["memory_levels"], ext))
