"""The template's chosen mapping as a ZigZag mapping entry (backends/spatial/interop_zigzag_mapping.py).

That ZigZag costs what is written exactly as given (no LOMA search, the same temporal loops)
is checked by ``benchmarks/crosscheck_spatial.py --zigzag`` (ZigZag has its own venv); its
record is read by tests/backends/test_spatial_crosscheck.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from symbiote.backends.spatial.interop_arch import InteropError
from symbiote.backends.spatial.interop_zigzag_mapping import CONV_DIMS, GEMM_DIMS, zigzag_mapping, zigzag_mapping_yaml
from symbiote.backends.spatial.space import DIMS, SPACE

CONV = {"B": 1, "K": 64, "G": 1, "OX": 56, "OY": 56, "C": 64, "FX": 3, "FY": 3}


def _row(slot: int, cls: int, **factors) -> dict:
    row = {"slot": slot, "cls": cls}
    row |= {f"{lvl}_{d}": 1.0 for lvl in ("dram", "glb", "sp", "rf") for d in DIMS}
    return row | {k: float(v) for k, v in factors.items()}


def test_a_ws_mapping_is_written_innermost_first_in_the_class_order():
    # ws with both fills (slot 3: K on X with G, C on Y with R), class o (outermost first:
    # G N K P Q C R S): dram[K4] glb[P56 Q56] || X:K16 Y:C16 R3 || rf[C4 S3]
    d = SPACE.validate({"dataflow": "ws"})
    row = _row(3, 1, dram_K=4, glb_P=56, glb_Q=56, sp_K=16, sp_C=16, sp_R=3, rf_C=4, rf_S=3)
    e = zigzag_mapping(d, row, CONV)
    assert e["spatial_mapping"] == {"D1": ["K, 16"], "D2": ["C, 16", "FY, 3"]}
    assert e["temporal_ordering"] == [["FX", 3], ["C", 4], ["OX", 56], ["OY", 56], ["K", 4]]
    assert e["loop_sizes"] == CONV and e["padded"] == []


def test_a_row_mapping_runs_its_output_rows_innermost_in_the_rf():
    # free's qc slot (Q on X, C on Y), class row: dram[C4] glb[P8 Q4 K64] || X:Q14 Y:C16 ||
    # rf[R3 S3 P7]. The RF loops go in the class's RF order (the output rows innermost: each
    # weight stays at the MAC while the filter row slides along them), the GLB and DRAM loops
    # in its order (K innermost: the inputs stay while the filters change)
    d = SPACE.validate({"dataflow": "free"})
    row = _row(1, 3, dram_C=4, glb_P=8, glb_Q=4, glb_K=64, sp_Q=14, sp_C=16, rf_R=3, rf_S=3, rf_P=7)
    e = zigzag_mapping(d, row, CONV)
    assert e["spatial_mapping"] == {"D1": ["OX, 14"], "D2": ["C, 16"]}
    assert e["temporal_ordering"] == [["OY", 7], ["FX", 3], ["FY", 3], ["K", 64], ["OX", 4], ["OY", 8], ["C", 4]]
    assert e["padded"] == []


def test_the_factors_cover_every_dim_and_padding_is_reported():
    # K 64 as 13 x 5 (65: padded), everything else exact; os_kp without fills (os slot 2)
    d = SPACE.validate({"dataflow": "os"})
    row = _row(2, 0, dram_K=5, sp_K=13, sp_P=14, glb_P=4, glb_Q=56, glb_C=64, glb_R=3, rf_S=3)
    e = zigzag_mapping(d, row, CONV)
    assert e["padded"] == ["K"] and e["loop_sizes"]["K"] == 65
    _assert_complete(e, CONV)


def _assert_complete(e: dict, sizes: dict) -> None:
    """Per dim, the ordering's factors times the unrolling are the entry's extent (what ZigZag
    needs to cost the ordering as given), which covers the layer's."""
    spatial: dict[str, int] = {}
    for us in e["spatial_mapping"].values():
        for u in us:
            x, f = u.split(", ")
            spatial[x] = spatial.get(x, 1) * int(f)
    for dim, size in e["loop_sizes"].items():
        temporal = math.prod(f for x, f in e["temporal_ordering"] if x == dim)
        assert temporal * spatial.get(dim, 1) == size, (dim, e)
        assert size >= sizes[dim]


def test_an_axis_that_unrolls_nothing_still_names_a_dim():
    """ZigZag generates its own unrolling for an axis the entry leaves out: each axis is written."""
    d = SPACE.validate({"dataflow": "kc"})
    depthwise = {"B": 1, "K": 1, "G": 32, "OX": 112, "OY": 112, "C": 1, "FX": 3, "FY": 3}
    e = zigzag_mapping(d, _row(0, 0, glb_G=32, glb_P=112, glb_Q=112, rf_R=3, rf_S=3), depthwise)
    assert e["spatial_mapping"] == {"D1": ["K, 1"], "D2": ["C, 1"]}


def test_a_gemm_uses_its_own_dims():
    d = SPACE.validate({"dataflow": "ws"})
    e = zigzag_mapping(d, _row(0, 0, sp_K=16, sp_C=16, glb_P=128, dram_K=192, rf_C=48),
                       {"C": 768, "D": 128, "K": 3072}, GEMM_DIMS)
    assert e["temporal_ordering"] == [["C", 48], ["D", 128], ["K", 192]]
    assert e["spatial_mapping"] == {"D1": ["K, 16"], "D2": ["C, 16"]}


def test_refusals():
    d = SPACE.validate({"dataflow": "ws"})
    with pytest.raises(InteropError, match="dim Q"):      # a GEMM has no Q
        zigzag_mapping(d, _row(0, 0, glb_Q=2, glb_P=64, glb_C=8, glb_K=8), {"C": 8, "D": 128, "K": 8}, GEMM_DIMS)
    with pytest.raises(InteropError, match="covers 32 of the layer's 64"):
        zigzag_mapping(d, _row(0, 0, glb_K=32, glb_C=64, glb_P=56, glb_Q=56, glb_R=3, glb_S=3), CONV)


def test_every_chosen_mapping_of_a_network_is_written_complete():
    """The template's chosen mapping of every MAC layer of resnet18 on its default design: the
    ordering's factors times the unrolling give the (padded) extents, never less than the layer."""
    from symbiote.backends.manager import registry
    from symbiote.frontend import load
    from symbiote.ir.lower import lower

    t = registry().get("spatial")
    wl = lower(load("zoo:resnet18"))
    d = SPACE.default()
    bd = t.mappings(t.space.encode(d), wl)
    for i in np.flatnonzero(np.asarray(bd["is_mac"]) > 0):
        row = {k: (v[i] if isinstance(v, (list, tuple)) else float(np.asarray(v)[i])) for k, v in bd.items()
               if k != "candidates"}
        n, k, c, p, q, r, s, g = (int(round(float(wl.to_numpy()[x][i]))) for x in ("n", "k", "c", "p", "q", "r", "s",
                                                                                     "groups"))
        sizes = {"B": n, "K": k // g, "G": g, "OX": q, "OY": p, "C": c // g, "FX": s, "FY": r}
        _assert_complete(zigzag_mapping(d, row, sizes, CONV_DIMS), sizes)


def test_the_file_is_a_zigzag_mapping_list():
    d = SPACE.validate({"dataflow": "ws"})
    e = zigzag_mapping(d, _row(0, 0, sp_K=16, sp_C=16, glb_P=128, dram_K=192, rf_C=48),
                       {"C": 768, "D": 128, "K": 3072}, GEMM_DIMS)
    doc = yaml.safe_load(zigzag_mapping_yaml(e, {"O": "O", "W": "I2", "I": "I1"}))
    assert doc == [{"name": "default", "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
                    "spatial_mapping": e["spatial_mapping"], "temporal_ordering": e["temporal_ordering"]}]
