"""`symbiote inspect`, `--version`, `--help`, and one-line errors (exit 2) for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import symbiote
from symbiote.cli import COMMANDS, build_parser, main
from symbiote.frontend import zoo



def _cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- version/help


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"symbiote {symbiote.__version__}"


def test_help_for_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    top = capsys.readouterr().out
    assert "inspect" in top
    sub = build_parser()._subparsers._group_actions[0].choices  # the commands that exist now
    assert "inspect" in sub
    for name in sub:
        assert name in COMMANDS
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert f"usage: symbiote {name}" in capsys.readouterr().out


def test_python_dash_m_entry_point(tmp_path):
    # run outside the checkout so that the installed package is imported, not ./symbiote
    r = subprocess.run([sys.executable, "-m", "symbiote", "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"symbiote {symbiote.__version__}"


# ----------------------------------------------------------------------------- inspect


def test_inspect_resnet50_json_matches_published_figures(capsys):
    code, out, err = _cli(["inspect", "zoo:resnet50", "--json"], capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert set(rep) == {"model", "opset", "inputs", "layers", "totals"}
    assert rep["model"] == "zoo:resnet50" and rep["opset"] == zoo.DEFAULT_OPSET
    assert rep["inputs"] == [{"name": "pixel_values", "shape": [1, 3, 224, 224], "dtype": "float32"}]
    assert set(rep["totals"]) == {"macs", "params", "layers", "opaque"}
    assert rep["totals"]["macs"] / 1e9 == pytest.approx(4.09, abs=0.05)
    assert rep["totals"]["params"] / 1e6 == pytest.approx(25.5, abs=0.2)
    assert rep["totals"]["layers"] == len(rep["layers"])
    assert rep["totals"]["opaque"] == {}
    layers = {layer["name"]: layer for layer in rep["layers"]}
    for layer in rep["layers"]:
        assert set(layer) == {"name", "op", "onnx_op", "output_shapes", "macs", "params"}
    conv = layers["layer1.0.conv2"]
    assert (conv["op"], conv["onnx_op"], conv["output_shapes"]) == ("conv", "Conv", [[1, 64, 56, 56]])
    assert conv["macs"] == 64 * 56 * 56 * 64 * 3 * 3 and conv["params"] == 64 * 64 * 9
    assert layers["fc"]["macs"] == 2048 * 1000
    assert sum(layer["macs"] for layer in rep["layers"]) == rep["totals"]["macs"]


def test_inspect_prints_a_table_with_totals(capsys):
    code, out, err = _cli(["inspect", "zoo:tiny_cnn"], capsys)
    assert code == 0, err
    assert "stage0.conv" in out and "Conv" in out and "1x16x32x32" in out
    assert "total:" in out and "opaque ops: none" in out


def test_inspect_input_shape_fixes_a_dynamic_batch(tmp_path, capsys):
    path = tmp_path / "dyn.onnx"
    onnx.save(zoo.build("tiny_cnn", batch="N"), str(path))
    code, out, _ = _cli(["inspect", str(path), "--json"], capsys)
    assert code == 0
    one = json.loads(out)
    code, out, _ = _cli(["inspect", str(path), "--json", "--input-shape", "pixel_values=4x3x32x32"], capsys)
    assert code == 0
    four = json.loads(out)
    assert one["inputs"][0]["shape"] == [1, 3, 32, 32]  # batch-like dims default to 1
    assert four["inputs"][0]["shape"] == [4, 3, 32, 32]
    assert four["totals"]["macs"] == 4 * one["totals"]["macs"]


def test_inspect_counts_opaque_ops(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r"),
             helper.make_node("MyOp", ["a"], ["b"], name="m1", domain="my.domain"),
             helper.make_node("MyOp", ["b"], ["y"], name="m2", domain="my.domain")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.domain", 1)])
    path = tmp_path / "opaque.onnx"
    onnx.save(model, str(path))
    code, out, err = _cli(["inspect", str(path), "--json", "--input-shape", "x=1x8"], capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert sum(rep["totals"]["opaque"].values()) == 2
    assert [layer["op"] for layer in rep["layers"]].count("opaque") == 2


# ----------------------------------------------------------------------------- bad inputs


def _io(name="x", dims=(1, 4)):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "bad", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _bad_files(tmp_path):
    """name -> (argv tail, words the error line must contain)"""
    d = tmp_path / "models"
    d.mkdir()
    good = zoo.build("tiny_cnn").SerializeToString()
    (d / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (d / "random.onnx").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (d / "text.onnx").write_text("this is not a model\n" * 20)
    cycle = _model([helper.make_node("Relu", ["x", "b"], ["a"], name="n1"), helper.make_node("Add", ["a", "x"], ["b"], name="n2")],
                   [_io()], [_io("b")])
    cycle.graph.node[0].op_type = "Add"
    (d / "cycle.onnx").write_bytes(cycle.SerializeToString())
    dangling = _model([helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")], [_io()], [_io("y")])
    (d / "dangling.onnx").write_bytes(dangling.SerializeToString())
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    w.raw_data = w.raw_data[:-4]  # one float short
    badinit = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [_io()], [_io("y")], [w])
    (d / "badinit.onnx").write_bytes(badinit.SerializeToString())
    zero = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_io("x", (1, 0, 4))], [_io("y", (1, 0, 4))])
    (d / "zerodim.onnx").write_bytes(zero.SerializeToString())
    neg = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_io("x", (1, -3))], [_io("y", (1, -3))])
    (d / "negdim.onnx").write_bytes(neg.SerializeToString())
    unknown = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_io("x", ("batch", "width"))], [_io("y", ("batch", "width"))])
    (d / "unknown.onnx").write_bytes(unknown.SerializeToString())
    (tmp_path / "secret.bin").write_bytes(np.ones(16, np.float32).tobytes())
    ext = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    ext.ClearField("raw_data")
    ext.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "64")):
        ext.external_data.add(key=k, value=v)
    outside = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [_io()], [_io("y")], [ext])
    (d / "outside.onnx").write_bytes(outside.SerializeToString())
    ext.external_data[0].value = str(tmp_path / "secret.bin")
    absolute = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [_io()], [_io("y")], [ext])
    (d / "absolute.onnx").write_bytes(absolute.SerializeToString())
    return {
        "missing": ([str(d / "nope.onnx")], ["nope.onnx"]),
        "truncated": ([str(d / "truncated.onnx")], ["truncated.onnx"]),
        "random": ([str(d / "random.onnx")], ["random.onnx"]),
        "text": ([str(d / "text.onnx")], ["text.onnx"]),
        "cycle": ([str(d / "cycle.onnx")], ["cycle"]),
        "dangling": ([str(d / "dangling.onnx")], ["ghost"]),
        "badinit": ([str(d / "badinit.onnx")], ["w"]),
        "zerodim": ([str(d / "zerodim.onnx")], ["x"]),
        "negdim": ([str(d / "negdim.onnx")], ["x"]),
        "unknown": ([str(d / "unknown.onnx")], ["x", "width"]),
        "outside": ([str(d / "outside.onnx")], ["secret.bin"]),
        "absolute": ([str(d / "absolute.onnx")], ["secret.bin"]),
        "bad-shape-flag": ([str(d / "unknown.onnx"), "--input-shape", "x=1x0"], ["x=1x0"]),
        "bad-shape-syntax": ([str(d / "unknown.onnx"), "--input-shape", "x:1x4"], ["x:1x4"]),
        "unknown-zoo": (["zoo:nonexistent"], ["nonexistent"]),
    }


BAD = ["missing", "truncated", "random", "text", "cycle", "dangling", "badinit", "zerodim", "negdim", "unknown",
       "outside", "absolute", "bad-shape-flag", "bad-shape-syntax", "unknown-zoo"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_gives_one_line_and_exit_2(case, tmp_path, capsys, monkeypatch):
    cases = _bad_files(tmp_path)
    argv, words = cases[case]
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, out, err = _cli(["inspect", *argv, "--json"], capsys)
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("symbiote inspect: error: ")
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_bad_input_in_a_real_process(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\x00\xff" * 100)
    r = subprocess.run([sys.executable, "-m", "symbiote", "inspect", str(p)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "junk.onnx" in r.stderr
    assert "Traceback" not in r.stderr
