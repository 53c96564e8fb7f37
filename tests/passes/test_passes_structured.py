"""prune / resize-channels / precision / fusion on the zoo and hand-built graphs."""

from __future__ import annotations

import numpy as np
import pytest

from symbiote.errors import PassError, PipelineSyntaxError
from symbiote.ir.analysis import graph_stats
from symbiote.ir.channel_groups import analyze
from symbiote.passes import parse_pipeline
from symbiote.passes.ort_check import random_inputs, run
from symbiote.passes.resize import round_width


def test_prune_half_resnet50_halves_every_free_group(models):
    g = models["zoo:resnet50"]
    before = analyze(g)
    res = parse_pipeline("prune(ratio=0.5)")(g)
    after = analyze(res.graph)
    assert len(before.free) == 37
    for grp in before.free:
        assert after.by_name(grp.name).width == grp.width // 2
    for grp in before.groups:
        if not grp.free:
            assert after.by_name(grp.name).width == grp.width
    # every member axis of a group (residual adds included) has the new size
    for grp in after.free:
        for name, axis in grp.members:
            assert res.graph.value(name).shape[axis] == after.axis_size(name, axis)
    m0, m1 = graph_stats(g).macs, graph_stats(res.graph).macs
    assert 0.2 < m1 / m0 < 0.35  # most MACs scale with in*out channels: ~1/4
    out = run(res.graph, random_inputs(res.graph))
    assert out[0].shape == (1, 1000) and np.isfinite(out[0]).all()


def test_prune_bert_prunes_mlp_heads_hidden_and_pooler(models):
    g = models["zoo:bert"]
    res = parse_pipeline("prune(ratio=0.5)")(g)
    widths = res.info["steps"][0]["widths"]
    assert sorted(widths) == ["embeddings.word_embeddings.out", "encoder.layer.0.attention.self.query.matmul.out",
                              "encoder.layer.0.intermediate.dense.matmul.out", "encoder.layer.1.attention.self.query.matmul.out",
                              "encoder.layer.1.intermediate.dense.matmul.out", "pooler.dense.out"]
    assert all(new == old // 2 for old, new in widths.values())


def test_prune_widths_and_errors(models):
    g = models["zoo:tiny_cnn"]
    res = parse_pipeline("prune(widths={stage1.conv.out:20},criterion=random,seed=3)")(g)
    assert analyze(res.graph).by_name("stage1.conv.out").width == 20
    with pytest.raises(PassError, match="stage1.conv.oot"):
        parse_pipeline("prune(widths={stage1.conv.oot:20})")(g)
    with pytest.raises(PassError, match="cannot grow"):
        parse_pipeline("prune(widths={stage1.conv.out:200})")(g)
    fixed = next(grp for grp in analyze(g).groups if not grp.free)
    with pytest.raises(PassError, match="cannot change"):
        parse_pipeline(f"resize-channels(widths={{{fixed.name}:7}})")(g)
    with pytest.raises(PipelineSyntaxError, match="exactly one"):
        parse_pipeline("prune")


def _two_convs(scales):
    """x -> conv1 (output channel k scaled by scales[k]) -> Relu -> conv2 (all ones) -> y."""
    from onnx import TensorProto, helper, numpy_helper

    from symbiote.frontend import load

    c = len(scales)
    w1 = np.ones((c, 3, 3, 3), np.float32) * np.asarray(scales, np.float32)[:, None, None, None]
    w2 = np.ones((4, c, 1, 1), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h"], name="conv1", pads=[1] * 4),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2")]
    g = helper.make_graph(nodes, "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])), w1


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_prune_keeps_the_most_important_channels(criterion):
    g, w1 = _two_convs([3, 8, 1, 6, 2, 7, 5, 4])
    res = parse_pipeline(f"prune(widths={{conv1.out:3}},criterion={criterion})")(g)
    kept = res.graph.node("conv1").input(1).const
    np.testing.assert_array_equal(kept, w1[[1, 3, 5]])  # the three largest, in their original order
    assert res.graph.node("conv2").input(1).const.shape == (4, 3, 1, 1)


def test_prune_random_is_seeded(models):
    g = models["zoo:tiny_cnn"]
    consts = lambda spec: [v.const for v in parse_pipeline(spec)(g).graph.constants.values()]
    k1, k2 = consts("prune(widths={stage0.conv.out:4},criterion=random)"), consts("prune(widths={stage0.conv.out:4},criterion=random)")
    k3 = consts("prune(widths={stage0.conv.out:4},criterion=random,seed=1)")
    assert all(np.array_equal(a, b) for a, b in zip(k1, k2))  # same seed, same result
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(k1, k3))  # another seed, other channels


@pytest.mark.parametrize("w,m,mode,want", [(37, 16, "nearest", 32), (40, 16, "nearest", 48), (37, 16, "up", 48), (47, 16, "down", 32), (5, 16, "down", 16)])
def test_round_width(w, m, mode, want):
    assert round_width(w, m, mode) == want


def test_resize_multiple_rounds_every_free_group(models):
    g = models["zoo:mobilenet_v2"]
    res = parse_pipeline("resize-channels(multiple=16)")(g)
    for grp in analyze(res.graph).free:
        assert grp.width % 16 == 0


def test_set_precision_meta_and_errors(models):
    g = models["zoo:tiny_cnn"]
    layer = next(n.name for n in g.nodes if n.onnx_op == "Conv")
    res = parse_pipeline(f"set-precision(default=8,layers={{{layer}:4}})")(g)
    n = res.graph.node(layer)
    assert n.meta["weight_bits"] == 4 and n.meta["act_bits"] == 4
    assert all(m.meta["weight_bits"] == 8 for m in res.graph.nodes if m.onnx_op == "Gemm")
    with pytest.raises(PassError, match="not a compute layer"):
        parse_pipeline("set-precision(layers={nope:4})")(g)
    q = parse_pipeline("set-precision(default=8,export-qdq=true)")(g).graph
    dqs = [n for n in q.nodes if n.onnx_op == "DequantizeLinear"]
    assert len(dqs) == sum(n.onnx_op in ("Conv", "Gemm") for n in g.nodes)
    assert all(d.input(0).is_const and d.input(0).dtype == "int8" for d in dqs)   # integer weights, no float copy
    assert not any(n.onnx_op == "QuantizeLinear" for n in q.nodes)


def test_qdq_weights_are_stored_as_integers_and_the_file_shrinks(models, tmp_path):
    from symbiote.frontend import save
    from symbiote.passes.ort_check import random_inputs, run_many

    g = models["zoo:tiny_cnn"]
    save(g, tmp_path / "float.onnx")
    for per_channel in (False, True):
        q = parse_pipeline(f"set-precision(default=8,export-qdq=true,per-channel={str(per_channel).lower()})")(g).graph
        path = tmp_path / f"q{per_channel}.onnx"
        save(q, path)
        # the weights are most of this model: int8 storage is about a quarter of float32's
        assert path.stat().st_size < 0.4 * (tmp_path / "float.onnx").stat().st_size
        feeds = [random_inputs(g, seed=i) for i in range(2)]
        ref, got = run_many(g, feeds), run_many(q, feeds)
        cos = [float(np.dot(a.ravel(), b.ravel()) / np.linalg.norm(a) / np.linalg.norm(b))
               for r, o in zip(ref, got) for a, b in zip(r, o)]
        assert min(cos) > 0.99


def test_per_channel_quantization_is_finer_than_per_tensor():
    from symbiote.passes.precision import quantize_weight

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * np.array([100.0, 1.0, 0.01, 1.0], np.float32)[:, None, None, None]
    for bits in (4, 8):
        qt, st = quantize_weight(w, bits)
        qc, sc = quantize_weight(w, bits, axis=0)
        assert st.shape == () and sc.shape == (4,)
        err_t = np.abs(qt * st - w)[1:3].max()
        err_c = np.abs(qc * sc[:, None, None, None] - w)[1:3].max()
        assert err_c < err_t / 10         # the small channels keep their own step
        assert np.abs(qc).max() <= 2 ** (bits - 1) - 1


def test_set_precision_activation_ranges(models):
    g = models["zoo:tiny_cnn"]
    layer = next(n.name for n in g.nodes if n.onnx_op == "Conv")
    text = f"set-precision(default=16,layers={{{layer}:4}},export_qdq=true,act_ranges={{{layer}:[2.5,3.0]}})"
    p = parse_pipeline(text)
    assert parse_pipeline(p.spec()) == p                      # the text round-trips
    q = p(g).graph
    clips = sorted((n.name, float(n.input(2).const)) for n in q.nodes if n.onnx_op == "Clip" and n.meta.get("fused_into") == layer)
    assert clips == [(f"{layer}.act_in_clip", 2.5), (f"{layer}.act_out_clip", 3.0)]
    with pytest.raises(PassError, match="export_qdq"):
        parse_pipeline(f"set-precision(act_ranges={{{layer}:[1,1]}})")
    with pytest.raises(PassError, match="did you mean"):
        parse_pipeline(f"set-precision(export_qdq=true,act_ranges={{{layer}x:[1,1]}})")(g)
    with pytest.raises(PassError, match="act_ranges"):
        parse_pipeline(f"set-precision(export_qdq=true,act_ranges={{{layer}:[1]}})")


def test_sparsify_meta(models):
    g = models["zoo:tiny_cnn"]
    res = parse_pipeline("sparsify(0.75)")(g)
    convs = [n for n in res.graph.nodes if n.onnx_op == "Conv"]
    assert all(0.74 <= n.meta["sparsity"] <= 0.76 for n in convs)
    assert all(np.mean(n.input(1).const == 0) == n.meta["sparsity"] for n in convs)


def test_fuse_activations_and_layers(models):
    g = models["hand:attention"]
    res = parse_pipeline("fuse-activations")(g)
    fused = [n for n in res.graph.nodes if "fused_activation" in n.meta]
    assert [n.meta["fused_activation"] for n in fused] == ["Gelu"]
    assert sum(n.meta.get("fused_into") == fused[0].name for n in res.graph.nodes) == 6  # bias Add + 5 GELU nodes
    assert len(res.graph.nodes) == len(g.nodes)  # nodes kept: save() stays exact
    d = models["hand:depthwise"]
    kinds = {n.meta["fused_activation"] for n in parse_pipeline("fold-bn,fuse-activations")(d).graph.nodes if "fused_activation" in n.meta}
    assert kinds == {"Relu", "Clip", "Swish"}
    r = models["zoo:resnet18"]
    big = parse_pipeline("fold-bn,fuse-activations,fuse-layers(max_on_chip_kb=100000)")(r).graph
    small = parse_pipeline("fold-bn,fuse-activations,fuse-layers(max_on_chip_kb=0)")(r).graph
    groups = lambda gr: {n.meta["fusion_group"] for n in gr.nodes}
    assert len(groups(small)) > len(groups(big))
    assert not any(n.meta.get("output_on_chip") for n in small.nodes)
    for n in big.nodes:
        if n.meta.get("output_on_chip"):
            assert not big.is_output(n.outputs[0])


def test_fold_bn_removes_every_bn(models):
    for key in ("zoo:resnet50", "zoo:mobilenet_v2", "hand:residual"):
        res = parse_pipeline("fold-bn")(models[key])
        assert not any(n.onnx_op == "BatchNormalization" for n in res.graph.nodes), key


def test_fuse_bias_matmul_add_to_gemm():
    from onnx import helper, TensorProto
    from symbiote.frontend import load

    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.arange(12, dtype=np.float32).tolist())
    b = helper.make_tensor("b", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [w, b])
    graph = load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    res = parse_pipeline("fuse-bias")(graph)
    assert [n.onnx_op for n in res.graph.nodes] == ["Gemm"] and res.graph.outputs[0].name == "y"
    feeds = random_inputs(graph)
    np.testing.assert_allclose(run(res.graph, feeds)[0], run(graph, feeds)[0], rtol=1e-5)


def test_canonicalize_removes_noops_and_dead_code():
    from onnx import helper, TensorProto
    from symbiote.frontend import load

    nodes = [
        helper.make_node("Dropout", ["x"], ["d"]),
        helper.make_node("Cast", ["d"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["c", "shape"], ["r"]),
        helper.make_node("Relu", ["r"], ["dead"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 1]),
        helper.make_node("Identity", ["t"], ["y"]),
    ]
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [2, 3])
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [shape])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    graph = load(m)
    res = parse_pipeline("canonicalize")(graph)
    assert res.modified
    assert not res.graph.nodes or all(n.onnx_op not in ("Dropout", "Cast", "Reshape", "Relu", "Transpose") for n in res.graph.nodes)
    feeds = random_inputs(graph)
    np.testing.assert_array_equal(run(res.graph, feeds)[0], feeds["x"])
