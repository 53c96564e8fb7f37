"""``sparsify``: per-layer fractions, 2:4 structured sparsity along each op's reduction axis,
the meta it records, its errors, and that the result still runs in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.errors import PassError
from symbiote.frontend import load
from symbiote.frontend.save import to_onnx
from symbiote.ir.lower import lower
from symbiote.passes import parse_pipeline
from symbiote.passes.ort_check import random_inputs, run
from symbiote.passes.prune import Sparsify, reduction_axis


def _runs(g, res_graph):
    """The sparsified graph verifies, passes onnx.checker and runs in onnxruntime."""
    res_graph.verify()
    onnx.checker.check_model(to_onnx(res_graph))
    feeds = random_inputs(g, seed=0)
    want, got = run(g, feeds), run(res_graph, feeds)
    assert [o.shape for o in got] == [o.shape for o in want]
    assert all(np.isfinite(o).all() for o in got)


def _groups_of_4(w: np.ndarray, axis: int) -> np.ndarray:
    """Every run of 4 consecutive entries along ``axis`` as a row (hand-written reference)."""
    m = np.moveaxis(w, axis, -1)
    assert m.shape[-1] % 4 == 0
    return m.reshape(-1, 4)


def _layers(graph):
    return {n.name: n for n in graph.nodes if n.onnx_op in ("Conv", "ConvTranspose", "Gemm", "MatMul")
            and n.input(1) is not None and n.input(1).is_const}


def _mixed_model() -> onnx.ModelProto:
    """Conv (C=8) -> ConvTranspose (C=8) -> Flatten -> Gemm(transB) -> MatMul, all constant weights."""
    r = np.random.default_rng(0)
    f32 = lambda *s: r.standard_normal(s).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("cw", f32(8, 8, 3, 3)), ("tw", f32(8, 4, 2, 2)), ("gw", f32(12, 4 * 8 * 8)), ("mw", f32(12, 8))]]
    nodes = [
        helper.make_node("Conv", ["x", "cw"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["c", "tw"], ["t"], name="deconv", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["t"], ["f"], name="flat", axis=1),
        helper.make_node("Gemm", ["f", "gw"], ["g"], name="gemm", transB=1),
        helper.make_node("MatMul", ["g", "mw"], ["y"], name="matmul"),
    ]
    g = helper.make_graph(nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


@pytest.fixture(scope="module")
def mixed():
    return load(_mixed_model())


# reduction axis of each layer's weight in the mixed model, by hand: Conv [K, C, R, S] -> C;
# ConvTranspose [C, K, R, S] -> C; Gemm transB [N, K_in] -> K_in; MatMul [K_in, N] -> K_in
MIXED_AXES = {"conv": 1, "deconv": 0, "gemm": 1, "matmul": 0}


def test_default_and_ratio_unchanged(models):
    g = models["zoo:tiny_cnn"]
    for spec, frac in (("sparsify", 0.5), ("sparsify(0.3)", 0.3), ("sparsify(ratio=0.75)", 0.75)):
        out = parse_pipeline(spec)(g).graph
        layers = _layers(out)
        assert layers
        for n in layers.values():
            measured = float(np.mean(n.input(1).const == 0))
            assert n.meta["sparsity"] == measured
            assert abs(measured - frac) <= 1.0 / n.input(1).size + 1e-9
            assert "sparsity_pattern" not in n.meta


def test_per_layer_fractions_measured_on_the_written_weights(mixed):
    res = parse_pipeline("sparsify(layers={conv:0.25,gemm:0.9,matmul:0})")(mixed)
    layers = _layers(res.graph)
    want = {"conv": 0.25, "gemm": 0.9, "matmul": 0.0}
    for name, frac in want.items():
        w = layers[name].input(1).const
        measured = float(np.mean(w == 0))
        assert abs(measured - frac) <= 1.0 / w.size + 1e-9, name
        assert layers[name].meta["sparsity"] == measured
    # a layer not named stays untouched (no ratio given): weights and meta
    assert np.array_equal(layers["deconv"].input(1).const, mixed.node("deconv").input(1).const)
    assert "sparsity" not in layers["deconv"].meta
    # the smallest magnitudes went: every kept weight is at least as large as every zeroed one
    w0, w1 = mixed.node("gemm").input(1).const, layers["gemm"].input(1).const
    assert np.abs(w0[w1 == 0]).max() <= np.abs(w0[w1 != 0]).min()
    _runs(mixed, res.graph)


def test_layers_override_ratio(mixed):
    res = parse_pipeline("sparsify(ratio=0.5,layers={gemm:0.8})")(mixed)
    layers = _layers(res.graph)
    assert abs(layers["gemm"].meta["sparsity"] - 0.8) < 0.01
    assert all(abs(layers[n].meta["sparsity"] - 0.5) < 0.01 for n in ("conv", "deconv", "matmul"))


def test_24_along_each_reduction_axis(mixed):
    res = parse_pipeline('sparsify(pattern="2:4")')(mixed)
    assert res.modified and not res.info.get("skipped")
    layers = _layers(res.graph)
    for name, axis in MIXED_AXES.items():
        n = layers[name]
        w0, w1 = mixed.node(name).input(1).const, n.input(1).const
        g0, g1 = _groups_of_4(w0, axis), _groups_of_4(w1, axis)
        assert np.all(np.sum(g1 == 0, axis=1) >= 2), name
        # the two kept values of each group are its two largest magnitudes, unchanged
        kept = np.sort(np.abs(g0), axis=1)[:, 2:]
        assert np.array_equal(np.sort(np.abs(g1), axis=1)[:, 2:], kept), name
        assert np.all(np.isin(w1[w1 != 0], w0)), name
        assert n.meta["sparsity_pattern"] == "2:4"
        assert n.meta["sparsity"] == float(np.mean(w1 == 0)) == 0.5
    _runs(mixed, res.graph)
    # the workload column
    wl = lower(res.graph).to_numpy()
    assert wl["sparsity_24"].tolist().count(1.0) == 4
    dense = lower(mixed).to_numpy()
    assert not dense["sparsity_24"].any() and not dense["sparsity"].any()


def test_24_groups_are_along_the_reduction_not_the_output_axis():
    # Conv weight [K=4, C=4, 1, 1] with magnitudes growing along C: per output channel the two
    # input channels 2 and 3 survive. Grouping along K would keep output channels 2 and 3.
    w = np.tile(np.arange(1, 5, dtype=np.float32), (4, 1)).reshape(4, 4, 1, 1)
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[1, 1])], "c",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    out = parse_pipeline('sparsify(layers={conv:"2:4"})')(load(m)).graph
    got = out.node("conv").input(1).const[:, :, 0, 0]
    assert np.array_equal(got, np.tile(np.array([0, 0, 3, 4], np.float32), (4, 1)))


def test_24_skips_or_rejects_layers_whose_reduction_is_not_a_multiple_of_4(models):
    g = models["zoo:tiny_cnn"]  # stem conv reads 3 RGB channels
    res = parse_pipeline('sparsify(pattern="2:4")')(g)
    skipped = res.info["steps"][0]["skipped"]
    assert list(skipped) == ["stage0.conv"] and "multiple of 4" in skipped["stage0.conv"]
    out = res.graph
    assert "sparsity" not in out.node("stage0.conv").meta
    assert np.array_equal(out.node("stage0.conv").input(1).const, g.node("stage0.conv").input(1).const)
    assert out.node("stage1.conv").meta["sparsity_pattern"] == "2:4"
    _runs(g, out)
    with pytest.raises(PassError, match="stage0.conv.*multiple of 4"):
        parse_pipeline('sparsify(layers={stage0.conv:"2:4"})')(g)


@pytest.mark.parametrize("model", ["zoo:resnet18", "zoo:mobilenet_v2", "zoo:bert", "hand:depthwise", "hand:attention", "hand:concat"])
def test_24_runs_in_onnxruntime_on_zoo_models(models, model):
    g = models[model]
    res = parse_pipeline('sparsify(pattern="2:4")')(g)
    _runs(g, res.graph)
    for n in res.graph.nodes:
        if n.meta.get("sparsity_pattern") == "2:4":
            groups = _groups_of_4(n.input(1).const, reduction_axis(n))
            assert np.all(np.sum(groups == 0, axis=1) >= 2), n.name
    skipped = res.info["steps"][0].get("skipped", {})
    assert res.info["steps"][0]["layers"] + len(skipped) == len(_layers(g))


def test_mixed_per_layer_patterns_and_later_unstructured_run(mixed):
    res = parse_pipeline('sparsify(layers={conv:"2:4",gemm:0.7})')(mixed)
    layers = _layers(res.graph)
    assert layers["conv"].meta["sparsity_pattern"] == "2:4" and "sparsity_pattern" not in layers["gemm"].meta
    # 0.3 unstructured on a 2:4 layer only re-zeros zeros: still 2:4, mark kept
    again = _layers(parse_pipeline("sparsify(layers={conv:0.3})")(res.graph).graph)
    assert again["conv"].meta["sparsity_pattern"] == "2:4" and again["conv"].meta["sparsity"] == 0.5
    # more unstructured zeros keep every group at >= 2 zeros: still 2:4 (the mark is measured)
    more = _layers(parse_pipeline("sparsify(layers={conv:0.9})")(res.graph).graph)
    assert more["conv"].meta.get("sparsity_pattern") == "2:4"
    assert abs(more["conv"].meta["sparsity"] - 0.9) < 0.01


def test_saved_model_keeps_the_pattern(mixed, tmp_path):
    out = parse_pipeline('sparsify(pattern="2:4")')(mixed).graph
    path = tmp_path / "m.onnx"
    onnx.save(to_onnx(out), path)
    back = load(str(path))
    assert back.node("gemm").meta["sparsity_pattern"] == "2:4"
    assert lower(back).to_numpy()["sparsity_24"].tolist() == lower(out).to_numpy()["sparsity_24"].tolist()


def test_spec_roundtrip():
    for spec in ('sparsify(pattern="2:4")', 'sparsify(layers={conv:"2:4",gemm:0.7})', "sparsify(ratio=0.3)"):
        p = parse_pipeline(spec)
        assert parse_pipeline(p.spec()).spec() == p.spec()
    assert Sparsify().spec() == "sparsify"


@pytest.mark.parametrize("spec, match", [
    ("sparsify(layers={gemmm:0.5})", "did you mean 'gemm'"),
    ("sparsify(layers={flat:0.5})", "Flatten.*no constant"),
    ("sparsify(layers={gemm:1.0})", r"fraction in \[0, 1\)"),
    ("sparsify(layers={gemm:-0.1})", r"fraction in \[0, 1\)"),
    ('sparsify(layers={gemm:"3:4"})', "2:4"),
    ("sparsify(ratio=1.5)", r"\[0, 1\)"),
    ('sparsify(ratio=0.5,pattern="2:4")', "not both"),
    ('sparsify(pattern="4:8")', "not one of unstructured, 2:4"),
])
def test_errors(mixed, spec, match):
    with pytest.raises(PassError, match=match):
        parse_pipeline(spec)(mixed)


def test_direct_construction_checks_values():
    with pytest.raises(PassError):
        Sparsify(layers={"a": "3:4"})
    with pytest.raises(PassError):
        Sparsify(layers={"a": True})
    with pytest.raises(PassError):
        Sparsify(pattern="4:8")
