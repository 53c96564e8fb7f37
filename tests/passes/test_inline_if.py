"""inline-if: an If whose condition folds to a constant is replaced by its taken branch; the
result runs like the source in onnxruntime and costs what the branch costs."""

from __future__ import annotations

import numpy as np

from symbiote.frontend import load
from symbiote.ir.analysis import graph_stats
from symbiote.passes import parse_pipeline, registered
from symbiote.passes.inline_if import InlineIf
from symbiote.passes.ort_check import run, run_model


def test_registered_and_exact():
    assert registered()["inline-if"] is InlineIf and InlineIf.exact
    assert parse_pipeline("canonicalize,inline-if").spec() == "canonicalize,inline-if"


def test_inlines_a_condition_that_became_constant(cf_models):
    source = cf_models.if_lstm("data")
    g = load(source)
    # the condition ReduceSum(x) < 0 folds once the nodes computing it read a constant copy of x
    x = -np.abs(np.random.default_rng(0).standard_normal((cf_models.SEQ, 1, cf_models.INP))).astype(np.float32)
    fixed = g.copy()
    const_x = fixed.add_const("x_fixed", x)
    for node, i in list(fixed.inputs[0].uses):
        node.set_input(i, const_x)
    before = str(fixed)
    res = InlineIf()(fixed)
    assert str(fixed) == before  # the caller's graph is not mutated
    assert res.modified and res.info["inlined"] == ["branch"]
    ops_after = [n.onnx_op for n in res.graph.nodes]
    assert "If" not in ops_after and "LSTM" in ops_after
    assert graph_stats(res.graph).macs == cf_models.lstm_macs()
    np.testing.assert_allclose(run(res.graph, {"x": x})[0], run_model(source, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_leaves_input_dependent_conditions_alone(cf_models):
    g = load(cf_models.if_lstm("data"))
    res = InlineIf()(g)
    assert not res.modified and res.graph is g and res.info["inlined"] == []
