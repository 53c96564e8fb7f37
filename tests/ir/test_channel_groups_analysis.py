"""ir.channel_groups.analyze on the zoo and on hand-made graphs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.frontend import load
from symbiote.frontend import zoo
from symbiote.ir.channel_groups import analyze


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


def test_attention_heads_fixed_mlp_free():
    bert = analyze(load(zoo.build("bert", seq_len=8)))
    free = [g.name for g in bert.free]
    assert free and all("intermediate" in n for n in free)
    assert any("split by Reshape" in g.reason for g in bert.groups)
    assert not any(g.free for g in bert.groups if ".query." in g.name)


def test_lstm_hidden():
    g = load(zoo.build("lstm"))
    cg = analyze(g)
    assert [x.name for x in cg.free] == ["lstm.0.hidden", "lstm.1.hidden"]
    h = cg.by_name("lstm.0.hidden")
    recur = [n for n, a in h.members if n in g.constants and g.constants[n].const.ndim == 3 and a == 1]
    assert recur and all(len(cg.segments(n, 1)) in (4, 8) for n in recur)  # gate blocks (W, R: 4; B: 8)
