"""``symbiote transform`` and ``symbiote passes``."""

from __future__ import annotations

import json

import onnx

from symbiote.cli import main


def test_transform_json_verify(tmp_path, capsys):
    out = tmp_path / "o.onnx"
    rc = main(["transform", "zoo:tiny_cnn", "-p", "fold-bn,prune(ratio=0.5)", "-o", str(out), "--verify", "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["after"]["macs"] < rep["before"]["macs"] and rep["exact"] is False
    assert [s["pass"] for s in rep["steps"]] == ["fold-bn", "prune(ratio=0.5)"]
    assert 0 < rep["verify"]["cosine"] <= 1.0 + 1e-9
    onnx.checker.check_model(onnx.load(str(out)))


def test_transform_text_exact(tmp_path, capsys):
    rc = main(["transform", "zoo:tiny_cnn", "-p", "fold-bn,resize-channels(multiple=48,mode=up)", "-o", str(tmp_path / "o.onnx"), "--verify"])
    text = capsys.readouterr().out
    assert rc == 0 and "macs" in text and "wrote" in text
    diff = float(text.split("max abs diff ")[1].split(",")[0])
    assert diff < 1e-4  # fold-bn and growth are exact


def test_transform_bad_pipeline(tmp_path, capsys):
    rc = main(["transform", "zoo:tiny_cnn", "-p", "fold-bm", "-o", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "fold-bn" in err and "Traceback" not in err


def test_passes_list(capsys):
    assert main(["passes", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["passes"]}
    assert {"canonicalize", "fold-bn", "prune", "resize-channels", "set-precision", "fuse-layers", "sparsify"} <= set(rows)
    assert [a["name"] for a in rows["prune"]["arguments"]] == ["ratio", "widths", "criterion", "seed"]


def _sample_rate_model() -> onnx.ModelProto:
    """``If(sr == 16000)``: the then-branch passes x through, the else-branch (any other
    rate) reshapes x to a shape it cannot take, so the model fails in onnxruntime unless
    sr is 16000, as a real voice-activity model rejects rates it was not built for."""
    import numpy as np
    from onnx import TensorProto as T
    from onnx import helper as h

    then_g = h.make_graph([h.make_node("Identity", ["x"], ["a"])], "then", [], [h.make_tensor_value_info("a", T.FLOAT, None)])
    else_g = h.make_graph([h.make_node("Reshape", ["x", "bad"], ["b"])], "else", [], [h.make_tensor_value_info("b", T.FLOAT, None)])
    g = h.make_graph(
        [h.make_node("Equal", ["sr", "k"], ["c"]), h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
         h.make_node("Relu", ["y"], ["out"])],
        "sample_rate", [h.make_tensor_value_info("x", T.FLOAT, [1, 6]), h.make_tensor_value_info("sr", T.INT64, [])],
        [h.make_tensor_value_info("out", T.FLOAT, [1, 6])],
        [onnx.numpy_helper.from_array(np.array(16000, np.int64), "k"), onnx.numpy_helper.from_array(np.array([7, 7], np.int64), "bad")])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_verify_says_when_the_model_itself_rejects_random_inputs(tmp_path, capsys):
    src = tmp_path / "vad.onnx"
    onnx.save(_sample_rate_model(), str(src))
    rc = main(["transform", str(src), "-p", "canonicalize", "-o", str(tmp_path / "o.onnx"), "--verify"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "the original model fails in onnxruntime" in err and "--input-value" in err and "sr" in err
    rc = main(["transform", str(src), "-p", "canonicalize", "-o", str(tmp_path / "o.onnx"), "--verify",
               "--input-value", "sr=16000", "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["verify"]["max_abs"] == 0.0
