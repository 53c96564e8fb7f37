"""Every registered pass on every zoo model and every hand-built graph: the result
verifies, passes onnx.checker and runs in onnxruntime; exact passes match within rtol 1e-4;
growth by resize-channels is exact."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from symbiote.frontend.save import to_onnx
from symbiote.passes import parse_pipeline, registered
from symbiote.passes.ort_check import random_inputs, run

#: arguments to try per pass (a pass not listed here runs with its defaults)
SAMPLES = {
    "prune": ["prune(ratio=0.5)", "prune(ratio=0.3,criterion=bn_gamma)"],
    "resize-channels": ["resize-channels(multiple=16)", "resize-channels(scale=0.5,criterion=l2)"],
    "sparsify": ["sparsify(ratio=0.5)"],
    "set-precision": ["set-precision(default=8)", "set-precision(default=6,export_qdq=true)"],
    "fuse-layers": ["fuse-layers(max_on_chip_kb=64)"],
}
MODELS = ["zoo:resnet18", "zoo:resnet50", "zoo:mobilenet_v2", "zoo:bert", "zoo:lstm", "zoo:tiny_cnn",
          "hand:residual", "hand:concat", "hand:depthwise", "hand:nhwc", "hand:attention", "hand:lstm_gru", "hand:if_branch"]


def _specs() -> list[str]:
    out = []
    for name in registered():
        out += SAMPLES.get(name, [name])
    return out


@pytest.fixture(scope="module")
def reference(models):
    """Original outputs per model on seeded inputs (computed once)."""
    cache = {}

    def get(key):
        if key not in cache:
            g = models[key]
            feeds = random_inputs(g, seed=0)
            cache[key] = (feeds, run(g, feeds))
        return cache[key]

    return get


def test_every_registered_pass_has_a_sample():
    assert set(registered()) <= set(SAMPLES) | {"canonicalize", "fold-bn", "fuse-bias", "fuse-activations", "inline-if"}


@pytest.mark.parametrize("model", MODELS)
def test_conformance(models, reference, model):
    g = models[model]
    feeds, want = reference(model)
    for spec in _specs():
        pipeline = parse_pipeline(spec)
        res = pipeline(g)
        res.graph.verify()
        onnx.checker.check_model(to_onnx(res.graph))
        got = run(res.graph, feeds)
        assert [o.shape for o in got] == [o.shape for o in want], spec
        assert all(np.isfinite(o).all() for o in got), spec
        if pipeline.exact:
            for a, b in zip(want, got):
                np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(a).max())), err_msg=f"{model} {spec}")


@pytest.mark.parametrize("model", MODELS)
def test_growth_is_exact(models, reference, model):
    g = models[model]
    feeds, want = reference(model)
    res = parse_pipeline("resize-channels(scale=1.5,mode=up)")(g)
    grown = res.info["steps"][0]["widths"]
    assert grown and all(new > old for old, new in grown.values())
    for a, b in zip(want, run(res.graph, feeds)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(a).max())))


def test_passes_never_mutate_their_input(models):
    g = models["zoo:tiny_cnn"]
    before = str(g)
    arrays = {k: v.const.copy() for k, v in g.constants.items()}
    parse_pipeline("canonicalize,fold-bn,fuse-activations,prune(ratio=0.5),sparsify(0.5),set-precision(4,export_qdq=true)")(g)
    assert str(g) == before
    assert all(np.array_equal(g.constants[k].const, a) for k, a in arrays.items())
