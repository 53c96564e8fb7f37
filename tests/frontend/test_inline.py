"""If nodes whose condition is constant (a Constant, or an input fixed with input_values) are
inlined at load: the taken branch's nodes replace the If, the saved model gives the source's
outputs in onnxruntime, and a nested subgraph still reads the right values after renaming."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import symbiote
from symbiote.errors import ShapeError
from symbiote.frontend import load, save
from symbiote.passes.ort_check import run_model

F = TensorProto.FLOAT


def _ops(graph) -> list[str]:
    return [n.onnx_op for n in graph.nodes]


def _same_outputs(source: onnx.ModelProto, path, feeds: dict[str, np.ndarray]) -> None:
    onnx.checker.check_model(str(path), full_check=True)
    want, got = run_model(source, feeds), run_model(str(path), feeds)
    assert [a.shape for a in got] == [a.shape for a in want]
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cond,kept,gone", [("true", "LSTM", "MatMul"), ("false", "MatMul", "LSTM")])
def test_a_constant_condition_inlines_the_taken_branch(cf_models, tmp_path, cond, kept, gone):
    source = cf_models.if_lstm(cond)
    g = load(source)
    assert "If" not in _ops(g) and kept in _ops(g) and gone not in _ops(g)
    assert g.meta["inlined_ifs"] == [{"node": "branch", "branch": "then_branch" if cond == "true" else "else_branch"}]
    assert g.outputs[0].name == "out" and g.outputs[0].shape == (1, cf_models.HIDDEN)
    if cond == "true":  # the Slice/Reshape that only fed the else-branch are gone with it
        assert not {"Slice", "Reshape"} & set(_ops(g))
        assert set(g.constants) >= {"W", "R", "B"} and "P" not in g.constants
    path = tmp_path / "inlined.onnx"
    save(g, path)
    x = np.random.default_rng(1).standard_normal((cf_models.SEQ, 1, cf_models.INP)).astype(np.float32)
    _same_outputs(source, path, {"x": x})


@pytest.mark.parametrize("sr,kept", [(16000, "LSTM"), (8000, "MatMul")])
def test_input_values_fix_the_condition(cf_models, tmp_path, sr, kept):
    source = cf_models.if_lstm("sr")
    assert "If" in _ops(load(source))  # without a value the condition depends on the input
    g = symbiote.load(source, input_values={"sr": np.array(sr)})
    assert "If" not in _ops(g) and kept in _ops(g)
    assert [v.name for v in g.inputs] == ["x"] and g.meta["input_values"] == {"sr": sr}
    path = tmp_path / "fixed.onnx"
    save(g, path)
    x = np.random.default_rng(2).standard_normal((cf_models.SEQ, 1, cf_models.INP)).astype(np.float32)
    _same_outputs(source, path, {"x": x, "sr": np.array(sr, np.int64)})


def test_a_python_int_becomes_a_scalar_of_the_declared_dtype(cf_models):
    g = load(cf_models.if_lstm("sr"), input_values={"sr": 16000})
    assert "If" not in _ops(g) and "LSTM" in _ops(g)
    load_with = load(cf_models.if_lstm("sr"), input_values={"sr": 16000.0})  # an exact float fits int64 too
    assert "LSTM" in _ops(load_with)


@pytest.mark.parametrize("values,match", [
    ({"rate": 16000}, r"input_values names 'rate', which is not an input .*inputs: x, sr"),
    ({"sr": [16000, 8000]}, r"input_values\['sr'\] has shape \[2\], but the input has rank 0"),
    ({"sr": 0.5}, r"input_values\['sr'\] = 0.5 does not fit the input's dtype int64"),
])
def test_bad_input_values_are_named(cf_models, values, match):
    with pytest.raises(ShapeError, match=match):
        load(cf_models.if_lstm("sr"), input_values=values)


def test_input_values_of_a_tensor_input_bind_its_symbols():
    x = helper.make_tensor_value_info("x", F, ["batch", "n"])
    k = helper.make_tensor_value_info("k", F, ["n", 3])
    nodes = [helper.make_node("MatMul", ["x", "k"], ["y"])]
    m = helper.make_model(helper.make_graph(nodes, "g", [x, k], [helper.make_tensor_value_info("y", F, None)]),
                          opset_imports=[helper.make_opsetid("", 17)])
    kv = np.arange(12, dtype=np.float64).reshape(4, 3)
    g = load(m, input_values={"k": kv})
    assert [v.name for v in g.inputs] == ["x"] and g.inputs[0].shape == (1, 4)  # 'n' bound by k's value
    assert g.constants["k"].dtype == "float32" and g.outputs[0].shape == (1, 3)
    with pytest.raises(ShapeError, match=r"input_values\['k'\] has shape \[4, 2\], but the input declares dim 1 = 3"):
        load(m, input_values={"k": np.zeros((4, 2))})
    with pytest.raises(ShapeError, match=r"but input_shapes gives \[5, 3\]"):
        load(m, input_shapes={"k": (5, 3)}, input_values={"k": kv})


def _nested_model(outer: str) -> onnx.ModelProto:
    """A constant If whose branch defines 't' and holds a data-dependent If that reads the
    branch's 't' by name; the outer graph has its own value named ``outer`` (with ``"t"``
    the names clash, which onnxruntime refuses but the loader takes)."""
    inner_then = helper.make_graph([helper.make_node("Mul", ["t", "t"], ["it"])], "inner_then", [],
                                   [helper.make_tensor_value_info("it", F, None)])
    inner_else = helper.make_graph([helper.make_node("Neg", ["t"], ["ie"])], "inner_else", [],
                                   [helper.make_tensor_value_info("ie", F, None)])
    branch = helper.make_graph([
        helper.make_node("Add", ["x", "one"], ["t"]),
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["ic"]),
        helper.make_node("If", ["ic"], ["bo"], name="inner", then_branch=inner_then, else_branch=inner_else),
    ], "outer_then", [], [helper.make_tensor_value_info("bo", F, None)])
    other = helper.make_graph([helper.make_node("Sub", ["x", "one"], ["oo"])], "outer_else", [],
                              [helper.make_tensor_value_info("oo", F, None)])
    nodes = [
        helper.make_node("Relu", ["x"], [outer], name="outer_t"),
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["c"], ["y"], name="outer", then_branch=branch, else_branch=other),
        helper.make_node("Add", ["y", outer], ["z"], name="sum"),
    ]
    inits = [numpy_helper.from_array(np.array(1, np.float32), "one"), numpy_helper.from_array(np.array(0, np.float32), "zero")]
    g = helper.make_graph(nodes, "nested", [helper.make_tensor_value_info("x", F, [2, 3])],
                          [helper.make_tensor_value_info("z", F, [2, 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_inlined_names_stay_unique_and_nested_subgraphs_follow_renames(tmp_path):
    g = load(_nested_model("t"))
    assert _ops(g).count("If") == 1  # the outer one is inlined, the data-dependent inner one stays
    names = [o.name for n in g.nodes for o in n.outputs]
    assert len(names) == len(set(names)) and "t" in names
    inner = g.node("inner")
    assert inner.meta["_outer_inputs"] != ["t"] and len(inner.meta["_outer_inputs"]) == 1
    renamed = inner.meta["_outer_inputs"][0]
    assert g.value(renamed).producer.onnx_op == "Add"  # the branch's 't', not the outer Relu
    assert g.outputs[0].shape == (2, 3)
    path = tmp_path / "nested.onnx"
    save(g, path)
    x = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)
    for sign in (1, -1):  # both inner branches
        _same_outputs(_nested_model("u"), path, {"x": sign * np.abs(x)})


def test_a_float_input_takes_any_number_rounded_to_its_dtype(cf_models):
    """0.1 has no exact float32, yet it is a perfectly good value for a float32 input."""
    g = load(cf_models.if_lstm("data"), input_values={"x": np.full((cf_models.SEQ, 1, cf_models.INP), 0.1)})
    assert g.meta["input_values"]["x"][0][0][0] == pytest.approx(0.1, abs=1e-7)
    assert not g.inputs  # x became a constant
