"""Degenerate inputs (search/degenerate.py) are flagged: placeholder weights, outputs about
zero, model knobs without an accuracy constraint; on stderr, in report.md and result.json."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.cli import main
from symbiote.frontend import load
from symbiote.search.degenerate import (ZERO_OUTPUT_ATOL, constant_weights, unconstrained_accuracy,
                                        zero_outputs)
from symbiote.search.objectives import parse_constraints


def _mlp(w1=None, w2=None, fill=None, scale=None) -> onnx.ModelProto:
    """x[1,8] -> MatMul w1 -> Relu -> MatMul w2 (-> Mul scale); ``fill``: w1 is a ConstantOfShape of it."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((8, 8)).astype(np.float32) if w1 is None else w1
    w2 = rng.standard_normal((8, 8)).astype(np.float32) if w2 is None else w2
    nodes, inits = [], [numpy_helper.from_array(w2, "w2")]
    if fill is not None:
        nodes.append(helper.make_node("ConstantOfShape", ["shape"], ["w1"],
                                      value=numpy_helper.from_array(np.array([fill], np.float32))))
        inits.append(numpy_helper.from_array(np.array([8, 8], np.int64), "shape"))
    else:
        inits.append(numpy_helper.from_array(w1, "w1"))
    last = "y" if scale is None else "z"
    nodes += [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"), helper.make_node("Relu", ["h"], ["r"]),
              helper.make_node("MatMul", ["r", "w2"], [last], name="mm2")]
    if scale is not None:
        inits.append(numpy_helper.from_array(np.array(scale, np.float32), "scale"))
        nodes.append(helper.make_node("Mul", [last, "scale"], ["y"]))
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_constant_weights_flags_fills_and_equal_initializers_only():
    fill = constant_weights(load(_mlp(fill=0.5, w2=np.full((8, 8), 0.25, np.float32))), "m.onnx")
    assert [w.kind for w in fill] == ["constant-weights"] and fill[0].model == "m.onnx"
    assert "m.onnx" in fill[0].message and "trained weights" in fill[0].message
    equal = constant_weights(load(_mlp(w1=np.ones((8, 8), np.float32), w2=np.ones((8, 8), np.float32))), "m")
    assert len(equal) == 1
    assert constant_weights(load(_mlp(fill=0.5)), "m") == ()          # one real layer is enough
    assert constant_weights(load("zoo:tiny_cnn"), "zoo:tiny_cnn") == ()


def test_zero_outputs_threshold_and_output_kinds():
    small = np.full((1, 8), ZERO_OUTPUT_ATOL / 2, np.float32)
    (w,) = zero_outputs([[small], [np.zeros((1, 8), np.float32)]], "m")
    assert w.kind == "zero-outputs" and "2 calibration inputs" in w.message and "--calibration" in w.message
    assert zero_outputs([[small], [np.full((1, 8), 10 * ZERO_OUTPUT_ATOL, np.float32)]], "m") == ()
    assert zero_outputs([[small, np.array([3, 4])]], "m") != ()       # integer outputs (indices) are not looked at
    assert zero_outputs([[np.array([0, 0])]], "m") == ()              # no float output: nothing to say
    assert zero_outputs([[np.full((2,), np.nan, np.float32)]], "m") == ()


def test_model_knobs_without_an_accuracy_constraint():
    (w,) = unconstrained_accuracy("channels+precision", parse_constraints(["area_mm2<=4"]))
    assert w.kind == "no-accuracy-constraint" and w.model is None and "fidelity>=" in w.message
    assert unconstrained_accuracy("precision", parse_constraints(["fidelity>=0.99"])) == ()
    assert unconstrained_accuracy("none", ()) == ()
    floor = parse_constraints(["fidelity>=0.99", "agreement>=0.99"])
    (f,) = unconstrained_accuracy("precision", parse_constraints(["area_mm2<=4"]), floor)
    assert f.kind == "accuracy-floor" and "fidelity>=0.99, agreement>=0.99" in f.message
    assert "--no-accuracy-floor" in f.message
    assert unconstrained_accuracy("precision", parse_constraints(["agreement>=0.9"])) == ()
    assert unconstrained_accuracy("channels", parse_constraints(["fidelity<=0.99"])) != ()  # not a floor


def test_inspect_and_cost_warn_about_constant_weights(tmp_path, capsys):
    bad = tmp_path / "fill.onnx"
    onnx.save(_mlp(fill=0.0, w2=np.full((8, 8), 0.25, np.float32)), str(bad))
    for argv in (["inspect", str(bad)], ["cost", str(bad)]):
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert err.startswith("warning: ") and str(bad) in err and "constant" in err
    assert main(["inspect", "zoo:tiny_cnn"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.slow
def test_search_flags_every_degenerate_input(tmp_path, capsys):
    bad = tmp_path / "dead.onnx"
    onnx.save(_mlp(fill=0.0, w2=np.full((8, 8), 0.25, np.float32)), str(bad))   # zero weights: zero outputs
    tiny = tmp_path / "tiny.onnx"
    onnx.save(_mlp(scale=1e-9), str(tiny))                                        # real weights, outputs ~1e-9
    out = tmp_path / "run"
    assert main(["search", str(bad), str(tiny), "--model-knobs", "precision", "--budget-evals", "8", "-q",
                 "-o", str(out)]) == 0
    err = capsys.readouterr().err
    kinds = [("accuracy-floor", None), ("random-inputs", None), ("constant-weights", str(bad)), ("zero-outputs", str(bad)),
             ("zero-outputs", str(tiny))]
    res = json.loads((out / "result.json").read_text())
    assert [(w["kind"], w["model"]) for w in res["warnings"]] == kinds
    report = (out / "report.md").read_text()
    for w in res["warnings"]:
        assert f"warning: {w['message']}" in err
        assert w["message"] in report
    assert report.index("## Warnings") < report.index("## Hardware")
    capsys.readouterr()
    assert main(["search", str(tiny), "--model-knobs", "none", "--budget-evals", "4", "-q",
                 "-o", str(tmp_path / "ok")]) == 0
    assert [w["kind"] for w in json.loads((tmp_path / "ok" / "result.json").read_text())["warnings"]] == ["zero-outputs"]


def test_random_evaluation_inputs_are_called_a_weak_proxy_and_real_data_is_explained():
    from symbiote.search.degenerate import random_evaluation

    (w,) = random_evaluation("channels+precision", None, None)
    assert w.kind == "random-inputs" and "weak proxy" in w.message and "--eval-data" in w.message
    assert random_evaluation("none", None, None) == ()                 # the model is not changed
    assert random_evaluation("precision", None, "eval.npz") == ()      # real data given
    assert random_evaluation("precision", "cal.npz", None) == ()


def test_integer_inputs_that_index_a_table_get_ids_over_the_whole_table():
    from symbiote.frontend import load
    from symbiote.passes.ort_check import index_range, random_inputs

    g = load("zoo:bert")
    ids = g.inputs[0]
    assert index_range(g, ids) == 30522                     # BERT's vocabulary
    x = random_inputs(g, seed=0)[ids.name]
    assert x.min() >= 0 and x.max() < 30522 and len(np.unique(x)) > 16   # not just {0, 1}
