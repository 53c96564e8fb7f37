"""Every zoo model: load -> save gives, in onnxruntime, the outputs of the original."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from symbiote.frontend import zoo
from symbiote.frontend.save import save, to_onnx


@pytest.fixture(scope="module")
def load():
    from symbiote.frontend import load as load_

    return load_


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2", "bert", "lstm", "tiny_cnn"])
def test_zoo_round_trip_matches_onnxruntime(name, load, zoo_model, onnx_runner):
    random_feeds, run_onnx = onnx_runner
    original = zoo_model(name)
    feeds = random_feeds(original, seed=1)
    want = run_onnx(original, feeds)
    graph = load(original)
    graph.verify()
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == [o.name for o in original.graph.output]
    got = run_onnx(model, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_round_trip_keeps_weights_and_names(load, zoo_model):
    original = zoo_model("tiny_cnn")
    model = to_onnx(load(original))
    w0 = {t.name: onnx.numpy_helper.to_array(t) for t in original.graph.initializer}
    w1 = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for k, v in w0.items():
        if k in w1:
            np.testing.assert_array_equal(w1[k], v)
    assert {n.name for n in original.graph.node if n.op_type == "Conv"} <= {n.name for n in model.graph.node}


def test_zoo_prefix_loads_and_saves_to_file(load, tmp_path, onnx_runner):
    random_feeds, run_onnx = onnx_runner
    graph = load("zoo:tiny_cnn")
    path = save(graph, tmp_path / "tiny.onnx")
    original = zoo.build("tiny_cnn")
    feeds = random_feeds(original)
    np.testing.assert_allclose(run_onnx(str(path), feeds)[0], run_onnx(original, feeds)[0], rtol=1e-5, atol=1e-6)


def test_saved_file_loads_again_identically(load, tmp_path, zoo_model, onnx_runner):
    random_feeds, run_onnx = onnx_runner
    original = zoo_model("mobilenet_v2")
    p1 = save(load(original), tmp_path / "a.onnx")
    p2 = save(load(str(p1)), tmp_path / "b.onnx")
    feeds = random_feeds(original, seed=2)
    np.testing.assert_allclose(run_onnx(str(p2), feeds)[0], run_onnx(original, feeds)[0], rtol=1e-5, atol=1e-6)
    assert len(onnx.load(str(p2)).graph.node) == len(onnx.load(str(p1)).graph.node)


def test_external_data_round_trip(load, tmp_path, onnx_runner):
    random_feeds, run_onnx = onnx_runner
    original = zoo.build("tiny_cnn")
    path = save(load(original), tmp_path / "ext.onnx", external_data_threshold_bytes=1000)
    assert (tmp_path / "ext.onnx.data").is_file()
    again = load(str(path))
    feeds = random_feeds(original)
    np.testing.assert_allclose(run_onnx(to_onnx(again), feeds)[0], run_onnx(original, feeds)[0], rtol=1e-5, atol=1e-6)
