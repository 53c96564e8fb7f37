"""Systolic compute cycles == SCALE-Sim 3.0.0's (total - stall) + 1 (quirk 1, see
backends/systolic/mapping.py) on every conv/GEMM layer of resnet18, resnet50, mobilenet_v2
and the BERT-style encoder, for os/ws/is at 8x8, 32x32 and 128x128, as recorded by
benchmarks/crosscheck_scalesim.py in data/scalesim_compute_cycles.json."""

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from symbiote.backends.manager import registry
from symbiote.backends.systolic.mapping import SCALESIM_REPORT_OFFSET, compute_cycles_np
from symbiote.frontend import load
from symbiote.ir.lower import lower

TABLE = json.loads((Path(__file__).parent / "data" / "scalesim_compute_cycles.json").read_text())
NETS = ("resnet18", "resnet50", "mobilenet_v2", "bert")


def _key(layer):
    return ",".join(str(layer[k]) for k in ("ifmap_h", "ifmap_w", "filt_h", "filt_w", "channels", "filters", "stride"))


def _dims(layer):
    p = (layer["ifmap_h"] - layer["filt_h"]) // layer["stride"] + 1
    q = (layer["ifmap_w"] - layer["filt_w"]) // layer["stride"] + 1
    return p * q, layer["filt_h"] * layer["filt_w"] * layer["channels"], layer["filters"]


def test_table_covers_every_layer_dataflow_and_array():
    """Every conv/GEMM layer of the four networks x os/ws/is x 8x8/32x32/128x128 is recorded."""
    assert set(NETS) <= set(TABLE["layers"])
    want = {f"{df}{a}x{a}|{_key(layer)}" for net in NETS for layer in TABLE["layers"][net]
            for df in ("os", "ws", "is") for a in (8, 32, 128)}
    missing = sorted(want - set(TABLE["runs"]))
    assert not missing, f"{len(missing)} runs not recorded, e.g. {missing[:3]}"


@pytest.mark.parametrize("run", sorted(TABLE["runs"]))
def test_closed_form_matches_recorded_scalesim(run):
    cfg, key = run.split("|")
    df, arr = cfg[:2], cfg[2:]
    rows, cols = map(int, arr.split("x"))
    fields = dict(zip(("ifmap_h", "ifmap_w", "filt_h", "filt_w", "channels", "filters", "stride"), map(int, key.split(",")), strict=True))
    rec = TABLE["runs"][run]
    assert compute_cycles_np(*_dims(fields), rows, cols, df) == rec["total"] - rec["stall"] + SCALESIM_REPORT_OFFSET


@functools.cache
def _lowered(net):
    return lower(load(f"zoo:{net}"))


@pytest.mark.parametrize("net", NETS)
def test_template_compute_cycles_on_every_recorded_layer(net):
    """The systolic template's per-layer compute_cycles (f32 JAX) on the lowered network equal
    SCALE-Sim's recorded (total - stall + 1) x repeat for every layer and config."""
    t = registry().get("systolic")
    wl = _lowered(net)
    checked = 0
    for df in ("os", "ws", "is"):
        for a in (8, 32, 128):
            hw = t.space.encode({"rows": a, "cols": a, "dataflow": df, "group_mapping": "per_group", "tiling": "scalesim"})
            cc = np.asarray(t.cost(hw, wl).compute_cycles)
            for layer in TABLE["layers"][net]:
                rec = TABLE["runs"][f"{df}{a}x{a}|{_key(layer)}"]
                want = (rec["total"] - rec["stall"] + SCALESIM_REPORT_OFFSET) * layer["repeat"]
                got = cc[wl.index(layer["name"])]
                assert got == pytest.approx(want, rel=1e-6, abs=0.5), (layer["name"], df, a)
                checked += 1
    assert checked == 9 * len(TABLE["layers"][net])


@pytest.mark.parametrize("net", NETS)
def test_lowered_dims_match_scalesim_layers(net):
    """ir.lower finds the same GEMM dims as the independent ONNX extraction of the script."""
    wl = _lowered(net)
    cols = wl.to_numpy()
    for layer in TABLE["layers"][net]:
        i = wl.index(layer["name"])
        g = cols["groups"][i]
        px, window, filters = _dims(layer)
        assert cols["n"][i] * cols["p"][i] * cols["q"][i] * (cols["repeat"][i] * g) == px * layer["repeat"]
        assert cols["c"][i] / g * cols["r"][i] * cols["s"][i] == window
        assert cols["k"][i] / g == filters


def test_closed_form_every_layer_all_configs_matches_template():
    """Independent of the recording's coverage: the JAX template equals the integer closed
    form (that SCALE-Sim validates above) on every conv/GEMM layer x 3 dataflows x 3 sizes."""
    t = registry().get("systolic")
    for net in NETS:
        wl = _lowered(net)
        for df in ("os", "ws", "is"):
            for a in (8, 32, 128):
                hw = t.space.encode({"rows": a, "cols": a, "dataflow": df, "group_mapping": "per_group", "tiling": "scalesim"})  # SCALE-Sim's
                cc = np.asarray(t.cost(hw, wl).compute_cycles)
                for layer in TABLE["layers"][net]:
                    want = compute_cycles_np(*_dims(layer), a, a, df) * layer["repeat"]
                    assert cc[wl.index(layer["name"])] == pytest.approx(want, rel=1e-6, abs=0.5)
