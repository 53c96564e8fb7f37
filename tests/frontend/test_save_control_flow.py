"""save() of models with control flow: every input/output keeps a shape, subgraphs lose only
their shapeless value_info, and the file passes onnx.checker(full_check=True) and runs in
onnxruntime with the source's outputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.errors import SymbioteError
from symbiote.frontend import load, save
from symbiote.ir import Graph, ops
from symbiote.passes.ort_check import run_model

F = TensorProto.FLOAT


def _check_and_compare(source: onnx.ModelProto, path, feeds_list: list[dict[str, np.ndarray]]) -> onnx.ModelProto:
    onnx.checker.check_model(str(path), full_check=True)
    for feeds in feeds_list:
        want, got = run_model(source, feeds), run_model(str(path), feeds)
        assert [a.shape for a in got] == [a.shape for a in want]
        for a, b in zip(want, got):
            np.testing.assert_allclose(b, a, rtol=1e-6)
    return onnx.load(str(path))


def _dims(vi: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def test_if_output_without_an_inferred_shape_and_shapeless_subgraph_value_info(tmp_path):
    """The branches give [2, 3] and [3, 2]: the IR cannot say the If's shape, so the declared
    (symbolic) one is written; the then-branch's shapeless value_info entry is dropped."""
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", F, None)],
                               value_info=[helper.make_tensor_value_info("r", F, None)])
    else_g = helper.make_graph([helper.make_node("Transpose", ["x"], ["e"], perm=[1, 0])], "else", [],
                               [helper.make_tensor_value_info("e", F, None)])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g, else_branch=else_g)]
    source = helper.make_model(helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [2, 3])],
                                                 [helper.make_tensor_value_info("y", F, ["a", "b"])],
                                                 [numpy_helper.from_array(np.array(0, np.float32), "zero")]),
                               opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(source, full_check=True)
    g = load(source)
    assert g.node("branch").output.shape is None
    path = tmp_path / "if.onnx"
    save(g, path)
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 1
    saved = _check_and_compare(source, path, [{"x": x}, {"x": -x}])
    assert _dims(saved.graph.output[0]) == ["a", "b"]
    then_saved = [a.g for a in saved.graph.node[-1].attribute if a.name == "then_branch"][0]
    assert [vi.name for vi in then_saved.value_info] == []
    assert [vi.name for vi in g.node("branch").attrs["then_branch"].value_info] == ["r"]  # the IR keeps it verbatim


def test_branch_outputs_declared_as_scalars_do_not_make_the_if_a_scalar(tmp_path):
    """Some exports declare every branch output as a scalar: shapes come from the branches'
    nodes, and save() drops the contradicting declarations so the full check passes."""
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", F, [])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", F, [])])
    nodes = [helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g, else_branch=else_g),
             helper.make_node("Relu", ["y"], ["z"])]
    source = helper.make_model(helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [2, 3]),
                                                              helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                                                 [helper.make_tensor_value_info("z", F, ["d0", "d1"])]),
                               opset_imports=[helper.make_opsetid("", 17)])
    g = load(source)
    assert g.node("branch").output.shape == (2, 3) and g.outputs[0].shape == (2, 3)
    path = tmp_path / "scalar.onnx"
    save(g, path)
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 3
    saved = _check_and_compare(source, path, [{"x": x, "c": np.array(True)}, {"x": x, "c": np.array(False)}])
    assert _dims(saved.graph.output[0]) == [2, 3]


def test_loop_with_a_dynamic_trip_count_keeps_its_declared_output_shape(cf_models, tmp_path):
    source = cf_models.loop(static=False)
    g = load(source)
    assert g.outputs[1].shape is None
    path = tmp_path / "loop.onnx"
    save(g, path)
    x = np.full((1, cf_models.HIDDEN), 0.1, np.float32)
    saved = _check_and_compare(source, path, [{"x": x, "n": np.array(n, np.int64)} for n in (1, 4)])
    assert _dims(saved.graph.output[1]) == ["steps", 1, cf_models.HIDDEN]


def test_intermediate_values_without_a_shape_get_no_value_info():
    g = Graph("g", opset={"": 17})
    x = g.add_input("x", (2, 3))
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", F, None)])
    else_g = helper.make_graph([helper.make_node("Transpose", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", F, None)])
    c = g.add_input("c", (), "bool")
    y = g.add_node(ops.CONTROL, "If", [c], ["y"], name="branch", attrs={"then_branch": then_g, "else_branch": else_g},
                   meta={"_outer_inputs": ["x"]}).output
    z = g.add_node(ops.REDUCE, "ReduceSum", [y], ["z"], attrs={"keepdims": 0}).output
    z.shape = ()
    g.outputs.append(z)
    _ = x
    from symbiote.frontend.save import to_onnx

    model = to_onnx(g)
    assert [vi.name for vi in model.graph.value_info] == []  # 'y' has no known shape: no shapeless entry
    onnx.checker.check_model(model, full_check=True)


def test_an_output_nothing_can_shape_is_a_clear_error(tmp_path):
    g = Graph("g", opset={"": 17})
    x = g.add_input("x", (2, 3))
    y = g.add_node(ops.OPAQUE, "Mystery", [x], ["y"], domain="my.domain").output
    g.outputs.append(y)
    with pytest.raises(SymbioteError, match=r"graph output 'y': its shape is unknown"):
        save(g, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
