"""ir.channel_groups.analyze on the zoo and on hand-made graphs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.frontend import load
from symbiote.frontend import zoo
from symbiote.ir.channel_groups import analyze, legal_width, width_problem


@pytest.fixture(scope="module")
def r18():
    return load(zoo.build("resnet18", image_size=64))


def _model(nodes, inits, x_shape, y="y"):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def _w(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def test_resnet18_residual_groups(r18):
    cg = analyze(r18)
    assert len(cg.free) == 12  # stem+4 stage residual groups... see below
    # a residual stage: the stem conv, every block's conv2 and the downsample conv share one group
    stem = cg.by_name("conv1.out")
    assert stem.free and stem.width == 64
    members = {n for n, _ in stem.members}
    assert {"layer1.0.conv2.weight", "layer1.1.conv2.weight"} <= members
    inp = cg.groups[cg.segments("pixel_values", 1)[0][0]] if cg.segments("pixel_values", 1) else None
    assert inp is not None and not inp.free and "model input" in inp.reason
    for (name, axis), segs in cg.axes.items():
        v = r18.value(name)
        assert v.shape[axis] == cg.axis_size(name, axis), name


def test_names_are_stable_across_loads(r18):
    again = load(zoo.build("resnet18", image_size=64))
    assert [g.name for g in analyze(r18).groups] == [g.name for g in analyze(again).groups]


def test_concat_offsets_and_flatten_blocks():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="c1", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["x", "w2"], ["b"], name="c2", kernel_shape=[1, 1]),
        helper.make_node("Concat", ["a", "b"], ["c"], name="cat", axis=1),
        helper.make_node("Flatten", ["c"], ["f"], name="fl", axis=1),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1),
    ]
    g = _model(nodes, {"w1": _w(3, 2, 1, 1), "w2": _w(5, 2, 1, 1), "fc": _w(4, 8 * 9)}, [1, 2, 3, 3])
    cg = analyze(g)
    a, b = cg.by_name("c1.out").id, cg.by_name("c2.out").id
    assert cg.segments("c", 1) == ((a, 1), (b, 1))
    assert cg.segments("f", 1) == ((a, 9), (b, 9))
    assert cg.segments("fc", 1) == ((a, 9), (b, 9))
    assert cg.by_name("c1.out").free and cg.by_name("c2.out").free


def test_depthwise_follows_and_grouped_fixes():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="c1", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["a", "dw"], ["b"], name="dw", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Conv", ["b", "w3"], ["y"], name="c3", kernel_shape=[1, 1]),
    ]
    g = _model(nodes, {"w1": _w(4, 2, 1, 1), "dw": _w(4, 1, 3, 3), "w3": _w(3, 4, 1, 1)}, [1, 2, 5, 5])
    cg = analyze(g)
    grp = cg.by_name("c1.out")
    assert grp.free and cg.segments("b", 1) == ((grp.id, 1),) and cg.segments("dw", 0) == ((grp.id, 1),)
    nodes[1] = helper.make_node("Conv", ["a", "gw"], ["b"], name="gc", kernel_shape=[1, 1], group=2)
    g = _model(nodes, {"w1": _w(4, 2, 1, 1), "gw": _w(4, 2, 1, 1), "w3": _w(3, 4, 1, 1)}, [1, 2, 5, 5])
    cg = analyze(g)
    assert not cg.by_name("c1.out").free and "grouped" in cg.by_name("c1.out").reason


def test_nhwc_transpose():
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w1"], ["a"], name="c1", kernel_shape=[1, 1]),
        helper.make_node("Transpose", ["a"], ["n"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Add", ["n", "bias"], ["nb"], name="add"),
        helper.make_node("Transpose", ["nb"], ["u"], name="back", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["u", "w2"], ["y"], name="c2", kernel_shape=[1, 1]),
    ]
    g = _model(nodes, {"w1": _w(6, 2, 1, 1), "bias": _w(6), "w2": _w(3, 6, 1, 1)}, [1, 4, 4, 2])
    cg = analyze(g)
    grp = cg.by_name("c1.out")
    assert grp.free
    assert cg.segments("n", 3) == ((grp.id, 1),) and cg.segments("bias", 0) == ((grp.id, 1),)
    assert cg.segments("w2", 1) == ((grp.id, 1),)


def test_attention_heads_are_one_group_per_layer_with_unit_head_dim():
    g = load(zoo.build("bert", seq_len=8, hidden=96, heads=3))
    bert = analyze(g)
    free = {x.name: x for x in bert.free}
    assert sorted(free) == ["embeddings.word_embeddings.out",
                            "encoder.layer.0.attention.self.query.matmul.out", "encoder.layer.0.intermediate.dense.matmul.out",
                            "encoder.layer.1.attention.self.query.matmul.out", "encoder.layer.1.intermediate.dense.matmul.out",
                            "pooler.dense.out"]
    heads = free["encoder.layer.0.attention.self.query.matmul.out"]
    assert (heads.width, heads.unit, heads.no_growth) == (96, 32, "")
    assert free["encoder.layer.0.intermediate.dense.matmul.out"].unit == 1
    p = "encoder.layer.0.attention"
    # Q, K, V projections (weights' output axis, biases) and the output projection's input: one group
    for name, axis in [(f"{p}.self.query.weight", 1), (f"{p}.self.key.weight", 1), (f"{p}.self.value.weight", 1),
                       (f"{p}.self.value.bias", 0), (f"{p}.self.merge_heads_out", 2), (f"{p}.output.dense.weight", 0)]:
        assert bert.segments(name, axis) == ((heads.id, 1),), name
    # the axes that count heads: split tensors, scores, context
    for name, axis in [(f"{p}.self.query.split_heads_out", 2), (f"{p}.self.key.transpose_out", 1), (f"{p}.self.scores_out", 1),
                       (f"{p}.self.softmax_out", 1), (f"{p}.self.context_out", 1)]:
        assert bert.head_segments(name, axis) == ((heads.id, 1),), name
        assert bert.axis_size(name, axis) == 3 and bert.axis_size(name, axis, {heads.id: 64}) == 2
    # head_dim never changes
    assert not bert.segments(f"{p}.self.query.split_heads_out", 3)
    assert width_problem(heads, 64) == "" and "multiple of 32" in width_problem(heads, 48)
    assert legal_width(heads, 48) == 64 and legal_width(heads, 47) == 32 and legal_width(heads, 5) == 32


def test_hidden_size_is_one_shrink_only_group_unless_an_output_fixes_it():
    hidden = analyze(load(zoo.build("bert", seq_len=8, head="encoder"))).by_name("embeddings.word_embeddings.out")
    assert not hidden.free and "last_hidden_state" in hidden.reason
    g = load(zoo.build("bert", seq_len=8))  # a classifier (output logits): the residual stream's width is free
    cg = analyze(g)
    hidden = cg.by_name("embeddings.word_embeddings.out")
    assert hidden.free and hidden.unit == 1 and "LayerNormalization" in hidden.no_growth
    lns = [n for n in g.nodes if n.onnx_op == "LayerNormalization"]
    assert len(lns) == 5 and all(cg.segments(n.input(1).name, 0) == ((hidden.id, 1),) for n in lns)
    assert cg.segments("embeddings.word_embeddings.weight", 1) == ((hidden.id, 1),)
    assert cg.segments("encoder.layer.1.attention.output.residual_out", 2) == ((hidden.id, 1),)
    assert cg.segments("pooler.dense.weight", 1) == ((hidden.id, 1),)
    assert width_problem(hidden, 64) == "" and "cannot grow" in width_problem(hidden, 256)
    assert legal_width(hidden, 300) == 128


def test_layernorm_over_two_axes_still_fixes():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="c1"),
        helper.make_node("LayerNormalization", ["c", "s", "b"], ["y"], name="ln", axis=-3),
    ]
    g = _model(nodes, {"w": _w(6, 3, 1, 1), "s": _w(6, 4, 4), "b": _w(6, 4, 4)}, [1, 3, 4, 4])
    grp = analyze(g).by_name("c1.out")
    assert not grp.free and "LayerNormalization" in grp.reason


def test_lstm_hidden():
    g = load(zoo.build("lstm"))
    cg = analyze(g)
    assert [x.name for x in cg.free] == ["lstm.0.hidden", "lstm.1.hidden"]
    h = cg.by_name("lstm.0.hidden")
    recur = [n for n, a in h.members if n in g.constants and g.constants[n].const.ndim == 3 and a == 1]
    assert recur and all(len(cg.segments(n, 1)) in (4, 8) for n in recur)  # gate blocks (W, R: 4; B: 8)
