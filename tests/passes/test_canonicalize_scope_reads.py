"""Values read by name from inside If/Loop bodies are uses: canonicalize keeps them."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h

import symbiote
from symbiote.passes.canonicalize import Canonicalize
from symbiote.passes.ort_check import run_model


def _if_model() -> onnx.ModelProto:
    x = h.make_tensor_value_info("x", T.FLOAT, [2, 3])
    y = h.make_tensor_value_info("y", T.FLOAT, [2, 3])
    then_g = h.make_graph([h.make_node("Add", ["r", "r"], ["t"])], "then", [], [h.make_tensor_value_info("t", T.FLOAT, [2, 3])])
    else_g = h.make_graph([h.make_node("Neg", ["r"], ["e"])], "else", [], [h.make_tensor_value_info("e", T.FLOAT, [2, 3])])
    nodes = [
        h.make_node("Relu", ["x"], ["r0"]),
        h.make_node("Identity", ["r0"], ["r"]),  # a no-op whose output only a subgraph reads
        h.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        h.make_node("Greater", ["s", "zero"], ["c"]),
        h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    zero = onnx.numpy_helper.from_array(np.array(0, np.float32), "zero")
    g = h.make_graph(nodes, "m", [x], [y], initializer=[zero])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


def test_canonicalize_keeps_values_read_by_subgraphs(tmp_path):
    model = _if_model()
    graph = symbiote.load(model)
    assert graph.scope_reads() == {"r"}
    result = Canonicalize()(graph)
    assert "r" in {o.name for n in result.graph.nodes for o in n.outputs}
    path = tmp_path / "out.onnx"
    symbiote.save(result.graph, path)
    xs = [np.random.default_rng(s).standard_normal((2, 3)).astype(np.float32) for s in range(8)]
    assert {bool(x.sum() > 0) for x in xs} == {True, False}  # both branches get taken
    for x in xs:
        np.testing.assert_allclose(run_model(str(path), {"x": x})[0], run_model(model, {"x": x})[0], rtol=1e-6)
