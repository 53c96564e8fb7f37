"""`--input-shape` / `--input-value` (symbiote/commands/modelargs.py): one spelling on every
command that loads a model, per-model specs for several models, errors naming the flag
and the model."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.cli import main
from symbiote.commands.modelargs import ModelInputs, assign, parse_input_shape, parse_input_value
from symbiote.errors import ShapeError
from symbiote.frontend import zoo


def _dynamic_cnn(path, channels=(4, 8, 8), seed=0):
    """tiny_cnn whose image height and width are symbolic (not batch-like: no default)."""
    m = zoo.build("tiny_cnn", channels=channels, seed=seed)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    onnx.save(m, str(path))
    return path


def _if_model(path):
    """y = x @ w1 when sr > 8000 (128 MACs), else (x @ w2) @ w3 (768 MACs)."""
    rng = np.random.default_rng(0)
    out = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 16])  # noqa: E731
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "w1"], ["t"], name="wide")], "then", [], [out("t")])
    else_g = helper.make_graph([helper.make_node("MatMul", ["x", "w2"], ["e1"], name="deep1"),
                                helper.make_node("MatMul", ["e1", "w3"], ["e"], name="deep2")], "else", [], [out("e")])
    nodes = [helper.make_node("Greater", ["sr", "limit"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g, name="branch")]
    inits = [numpy_helper.from_array(np.array(8000, np.int64), "limit")] + [
        numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
        for n, s in (("w1", (8, 16)), ("w2", (8, 32)), ("w3", (32, 16)))]
    g = helper.make_graph(nodes, "if", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]),
                                        helper.make_tensor_value_info("sr", TensorProto.INT64, [])], [out("y")], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- parsing


def test_parse_shapes_and_values():
    s = parse_input_shape("1:pixel_values=1x3x16x16")
    assert (s.flag, s.target, s.value) == ("--input-shape", "1:pixel_values", (1, 3, 16, 16))
    v = parse_input_value("sr=16000")
    assert v.target == "sr" and v.value.shape == () and v.value == 16000
    assert parse_input_value("s=1,2.5").value.tolist() == [1.0, 2.5]
    assert parse_input_value("flag=true").value.dtype == np.bool_
    for bad, flag in (("x=1xa", "--input-shape"), ("x=1x0", "--input-shape"), ("x:1x4", "--input-shape"),
                      ("=1x4", "--input-shape")):
        with pytest.raises(ShapeError, match=flag) as e:
            parse_input_shape(bad)
        assert bad in str(e.value)
    with pytest.raises(ShapeError, match="--input-value 'sr=abc'"):
        parse_input_value("sr=abc")


def test_plain_spec_applies_to_every_model_with_the_input_and_a_prefix_wins():
    models = [("a.onnx", ("x", "y")), ("zoo:b", ("x",)), ("c.onnx", ("x:0",))]
    x4, x8 = parse_input_shape("x=1x4"), parse_input_shape("1:x=1x8")
    got = assign([x4, x8, parse_input_shape("a:y=2x2"), parse_input_shape("x:0=3"),
                  parse_input_value("zoo:b:x=1.5")], models)
    assert got[0] == ModelInputs({"x": (1, 4), "y": (2, 2)}, {})
    assert got[1].shapes == {"x": (1, 8)} and got[1].values["x"] == 1.5   # the prefixed spec won
    assert got[2].shapes == {"x:0": (3,)}                                  # a name with ':' matched whole
    assert assign([x8, x4], models)[1].shapes == {"x": (1, 8)}             # whatever the order
    for name in ("0", "a.onnx", "a"):                                      # index, file name, name
        assert assign([parse_input_shape(f"{name}:x=1x2")], models)[0].shapes == {"x": (1, 2)}


@pytest.mark.parametrize("specs, words", [
    (["z=1"], ["--input-shape 'z=1'", "a.onnx has x, y", "zoo:b has x"]),     # matches no model
    (["1:y=1"], ["'1:y=1'", "no input 'y' in zoo:b"]),                        # the chosen model lacks it
    (["5:x=1"], ["'5'", "0-1"]),                                              # no model 5
    (["x=1", "x=2"], ["given twice", "'x=1'", "'x=2'"]),
])
def test_assign_errors_name_the_flag_the_spec_and_the_model(specs, words):
    with pytest.raises(ShapeError) as e:
        assign([parse_input_shape(s) for s in specs], [("a.onnx", ("x", "y")), ("zoo:b", ("x",))])
    assert all(w in str(e.value) for w in words), str(e.value)


# ----------------------------------------------------------------------------- commands


def test_cost_and_inspect_take_input_shape_on_a_dynamic_model(tmp_path, capsys):
    dyn = _dynamic_cnn(tmp_path / "dyn.onnx")
    static = tmp_path / "static.onnx"
    onnx.save(zoo.build("tiny_cnn", channels=(4, 8, 8), image_size=16), str(static))
    code, _, err = _cli(["cost", str(dyn), "--json"], capsys)
    assert code == 2 and "height" in err and "--input-shape pixel_values=" in err
    code, out, err = _cli(["cost", str(dyn), "--input-shape", "pixel_values=1x3x16x16", "--json"], capsys)
    assert code == 0, err
    got = json.loads(out)["totals"]
    code, out, _ = _cli(["cost", str(static), "--json"], capsys)
    assert code == 0
    want = json.loads(out)["totals"]
    assert got["latency_cycles"] == pytest.approx(want["latency_cycles"], rel=1e-6)   # the same model, now static
    assert got["energy_pj"] == pytest.approx(want["energy_pj"], rel=1e-6)
    for argv in (["inspect", str(dyn)], ["transform", str(dyn), "-p", "canonicalize", "-o", str(tmp_path / "t.onnx")]):
        code, out, err = _cli([*argv, "--input-shape", "dyn:pixel_values=1x3x24x24", "--json"], capsys)
        assert code == 0, err
    assert [d.dim_value for d in onnx.load(str(tmp_path / "t.onnx")).graph.input[0].type.tensor_type.shape.dim] == [1, 3, 24, 24]
    code, _, err = _cli(["cost", str(dyn), "--input-shape", "pixel_values=1x3x16", "--json"], capsys)
    assert code == 2 and "--input-shape" in err and "dyn.onnx" in err and "rank 4" in err


def test_input_value_fixes_a_scalar_input_and_picks_the_if_branch(tmp_path, capsys):
    path = _if_model(tmp_path / "if.onnx")
    macs = {}
    for sr in (16000, 8000):
        code, out, err = _cli(["inspect", str(path), "--input-value", f"sr={sr}", "--json"], capsys)
        assert code == 0, err
        rep = json.loads(out)
        assert [i["name"] for i in rep["inputs"]] == ["x"]       # sr is a constant now
        assert all(layer["op"] != "control" for layer in rep["layers"])
        macs[sr] = rep["totals"]["macs"]
    assert macs == {16000: 8 * 16, 8000: 8 * 32 + 32 * 16}
    code, out, err = _cli(["cost", str(path), "--input-value", "sr=16000", "--json"], capsys)
    assert code == 0, err
    assert [row["name"] for row in json.loads(out)["layers"]] == ["wide"]
    code, _, err = _cli(["cost", str(path), "--input-value", "sr=1.5"], capsys)
    assert code == 2 and "--input-value" in err and "if.onnx" in err and "int64" in err
    out = tmp_path / "run"
    code, _, err = _cli(["search", str(path), "--input-value", "sr=16000", "--budget-evals", "4",
                         "--model-knobs", "none", "-q", "-o", str(out)], capsys)
    assert code == 0, err
    written = onnx.load(str(out / "if.onnx")).graph
    assert [i.name for i in written.input] == ["x"] and [n.name for n in written.node if n.op_type == "MatMul"] == ["wide"]
    inputs = json.loads((out / "result.json").read_text())["settings"]["inputs"]
    assert inputs[0]["input_values"] == {"sr": 16000}


def test_search_takes_input_shape(tmp_path, capsys):
    dyn = _dynamic_cnn(tmp_path / "dyn.onnx")
    code, _, err = _cli(["search", str(dyn), "--budget-evals", "8", "--model-knobs", "none", "-q",
                         "-o", str(tmp_path / "no")], capsys)
    assert code == 2 and "--input-shape pixel_values=" in err
    code, _, err = _cli(["search", str(dyn), "--input-shape", "nope=1x3", "-o", str(tmp_path / "no")], capsys)
    assert code == 2 and "--input-shape 'nope=1x3'" in err and "dyn.onnx" in err
    out = tmp_path / "run"
    code, _, err = _cli(["search", str(dyn), "--input-shape", "pixel_values=1x3x16x16", "--budget-evals", "8",
                         "--model-knobs", "none", "-q", "-o", str(out)], capsys)
    assert code == 0, err
    written = onnx.load(str(out / "dyn.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in written] == [1, 3, 16, 16]
    inputs = json.loads((out / "result.json").read_text())["settings"]["inputs"]
    assert inputs == [{"model": str(dyn), "input_shapes": {"pixel_values": [1, 3, 16, 16]}, "input_values": {}}]


@pytest.mark.slow
def test_two_model_search_gives_each_model_its_shapes(tmp_path, capsys):
    a = _dynamic_cnn(tmp_path / "a.onnx")
    b = _dynamic_cnn(tmp_path / "b.onnx", channels=(4, 8, 16), seed=1)
    out = tmp_path / "run"
    code, _, err = _cli(["search", str(a), str(b), "--input-shape", "pixel_values=1x3x16x16",
                         "--input-shape", "1:pixel_values=1x3x24x24", "--budget-evals", "12",
                         "--model-knobs", "none", "-q", "-o", str(out)], capsys)
    assert code == 0, err
    for name, size in (("a", 16), ("b", 24)):
        dims = onnx.load(str(out / f"{name}.onnx")).graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_value for d in dims] == [1, 3, size, size]
    res = json.loads((out / "result.json").read_text())
    assert [i["input_shapes"] for i in res["settings"]["inputs"]] == [{"pixel_values": [1, 3, 16, 16]},
                                                                        {"pixel_values": [1, 3, 24, 24]}]
    assert all(n["regret"] is not None for n in res["best"]["networks"].values())


def test_search_says_in_one_line_when_the_model_rejects_its_random_inputs(tmp_path, capsys):
    """A model that fails in onnxruntime unless a scalar input takes one value (a sample
    rate): the search stops with one line that names --input-value, not a traceback."""
    import importlib.util
    from pathlib import Path

    import onnx

    from symbiote.cli import main

    spec = importlib.util.spec_from_file_location("passes_cli", Path(__file__).parent / "passes" / "test_passes_cli.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src = tmp_path / "vad.onnx"
    onnx.save(mod._sample_rate_model(), str(src))
    rc = main(["search", str(src), "--model-knobs", "none", "--budget-evals", "16", "-q", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "fails in onnxruntime" in err and "--input-value" in err
