"""Preparing a model for the search: exact passes only, and the result computes the same."""

from __future__ import annotations

import pytest

from symbiote.errors import SearchError
from symbiote.search.prepare import DEFAULT_PREPARE, prepare_graph


def test_default_prepare_folds_and_fuses_without_changing_the_function():
    from symbiote.frontend import load
    from symbiote.ir.lower import lower
    from symbiote.ir.workload import FREE
    from symbiote.passes.ort_check import allclose

    g = load("zoo:mobilenet_v2")
    p = prepare_graph(g, DEFAULT_PREPARE)
    assert any(n.onnx_op == "BatchNormalization" for n in g.nodes)
    assert not any(n.onnx_op == "BatchNormalization" for n in p.nodes)
    assert allclose(g, p, rtol=1e-3, atol=1e-4)
    kinds = lower(p).to_numpy()["kind"]
    clips = [i for i, n in enumerate(lower(p).names) if p.node(n).onnx_op == "Clip"]
    assert clips and all(kinds[i] == FREE for i in clips)   # ReLU6 applied by its producer
    assert prepare_graph(g, "none") is g


def test_prepare_refuses_a_pass_that_changes_the_model():
    from symbiote.frontend import load

    with pytest.raises(SearchError, match="prune"):
        prepare_graph(load("zoo:tiny_cnn"), "fold-bn,prune(ratio=0.5)")
