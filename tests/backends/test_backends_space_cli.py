"""HardwareSpace validation/encoding, YAML hardware files, the roofline's latency hysteresis,
and the `symbiote cost` / `symbiote backends` commands."""

import json

import jax
import numpy as np
import pytest

from symbiote.backends import hwfile
from symbiote.backends.manager import registry
from symbiote.backends.space import HardwareSpace, Knob
from symbiote.cli import main
from symbiote.errors import HardwareError
from symbiote.ir.graph import Graph
from symbiote.ir.lower import lower

SPACE = HardwareSpace((
    Knob("rows", "integer", 16, 2, 64),
    Knob("lanes", "pow2", 8, 1, 64),
    Knob("kb", "multiple", 32, 8, 256, multiple=8),
    Knob("df", "categorical", "ws", choices=("os", "ws", "is")),
    Knob("ghz", "continuous", 1.0, 0.1, 4.0),
))


@pytest.mark.parametrize("bad,knob,legal", [
    ({"rows": 1}, "rows", "an integer in [2, 64]"),
    ({"rows": 3.5}, "rows", "an integer"),
    ({"lanes": 12}, "lanes", "a power of two in [1, 64]"),
    ({"kb": 12}, "kb", "a multiple of 8"),
    ({"df": "xs"}, "df", "one of os, ws, is"),
    ({"ghz": 9}, "ghz", "a number in [0.1, 4]"),
    ({"ghz": "fast"}, "ghz", "a number"),
])
def test_validate_names_knob_and_legal_values(bad, knob, legal):
    with pytest.raises(HardwareError) as e:
        SPACE.validate(bad, "hw.yaml")
    assert knob in str(e.value) and legal in str(e.value) and "hw.yaml" in str(e.value)


def test_unknown_knob_lists_known():
    with pytest.raises(HardwareError, match="unknown knob 'colz'.*rows, lanes, kb, df, ghz"):
        SPACE.validate({"colz": 3})


def test_encode_decode_roundtrip_and_sample_is_legal():
    d = {"rows": 7, "lanes": 16, "kb": 64, "df": "is", "ghz": 2.5}
    arrays = SPACE.to_arrays([d, SPACE.default()])
    assert float(arrays["df"][0]) == 2.0 and arrays["rows"].shape == (2,)
    assert SPACE.decode(arrays, 0) == d
    s = SPACE.sample(jax.random.key(0), 64)
    assert SPACE.contains(s)
    s2 = SPACE.sample(jax.random.key(0), 64)
    np.testing.assert_array_equal(np.asarray(s["rows"]), np.asarray(s2["rows"]))
    assert SPACE.grid("lanes") == [1, 2, 4, 8, 16, 32, 64]
    assert SPACE.grid("df") == ["os", "ws", "is"]


def test_hw_file_roundtrip_and_errors(tmp_path):
    t = registry().get("systolic")
    p = tmp_path / "hw.yaml"
    hwfile.write(p, "systolic", {"rows": 16, "dataflow": "os"})
    backend, design = hwfile.read(p)
    assert backend == "systolic"
    full = hwfile.resolve(t.space, design, hwfile.parse_sets(["cols=8"]), where=str(p))
    assert full["rows"] == 16 and full["cols"] == 8 and full["dataflow"] == "os"
    p.write_text("backend: systolic\nrows: 1000\n")
    with pytest.raises(HardwareError, match=r"hw.yaml.*rows=1000.*integer in \[2, 512\]"):
        hwfile.resolve(t.space, hwfile.read(p)[1], where=str(p))
    p.write_text("rows: [\n")
    with pytest.raises(HardwareError, match="not valid YAML"):
        hwfile.read(p)
    with pytest.raises(HardwareError, match="KNOB=VALUE"):
        hwfile.parse_sets(["rows"])


def _gemm(width: int) -> Graph:
    g = Graph("g")
    x = g.add_input("x", (512, 1024))
    w = g.add_const("w", np.zeros((1024, width), np.float32))
    n = g.add_node("gemm", "Gemm", [x, w], ["y"])
    n.output.shape = (512, width)
    g.outputs.append(n.output)
    return g


def test_roofline_latency_hysteresis():
    """Sweeping a GEMM's width finds a larger width that is faster (wave/tile quantization
    and the alignment fast path make latency non-monotonic in width)."""
    t = registry().get("roofline")
    hw = t.space.encode(t.space.default())
    widths = list(range(1000, 1100))
    lat = [float(t.cost(hw, lower(_gemm(w))).total_latency_cycles) for w in widths]
    faster = [(a, b) for i, a in enumerate(widths) for j, b in enumerate(widths) if b > a and lat[j] < lat[i]]
    assert faster, "no larger width is faster"
    # and the sweep is not flat
    assert max(lat) > 1.2 * min(lat)


def test_cli_cost_json(capsys):
    assert main(["cost", "zoo:tiny_cnn", "--backend", "systolic", "--set", "rows=16", "--set", "cols=16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "systolic" and out["hardware"]["rows"] == 16
    assert set(out["totals"]) >= {"latency_cycles", "latency_s", "energy_pj", "area_mm2", "edp"}
    assert out["layers"] and set(out["layers"][0]) == {"name", "op", "latency_cycles", "compute_cycles", "energy_pj", "utilization"}
    assert out["totals"]["latency_cycles"] == pytest.approx(sum(r["latency_cycles"] for r in out["layers"]), rel=1e-4)
    assert "8-bit" in out["precision"]


def test_cli_cost_errors(capsys, tmp_path):
    assert main(["cost", "zoo:tiny_cnn", "--backend", "systolic", "--set", "dataflow=zz"]) == 2
    err = capsys.readouterr().err
    assert "dataflow" in err and "one of os, ws, is" in err and "Traceback" not in err
    assert main(["cost", "zoo:tiny_cnn", "--backend", "nosuch"]) == 2
    assert "unknown backend 'nosuch'" in capsys.readouterr().err
    hw = tmp_path / "hw.yaml"
    hw.write_text("backend: roofline\nunits: 4\n")
    assert main(["cost", "zoo:tiny_cnn", "--hw", str(hw)]) == 0
    assert "backend roofline" in capsys.readouterr().out


def test_cli_backends_json(capsys):
    assert main(["backends", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {t["name"]: t for t in out["templates"]}
    assert {"systolic", "roofline"} <= set(names)
    knobs = {k["name"]: k for k in names["systolic"]["knobs"]}
    assert knobs["dataflow"]["choices"] == ["os", "ws", "is"] and knobs["rows"]["default"] == 32
    assert "built-in" in names["systolic"]["origin"]
