"""Property tests: random small CNNs built from the supported constructs (conv-bn-relu,
residual add, concat, depthwise conv, SiLU, flatten into a gemm). canonicalize and fold-bn
are exact; prune shrinks every free group and runs; growth by resize-channels is exact."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from symbiote.frontend import load
from symbiote.ir.channel_groups import analyze
from symbiote.passes import parse_pipeline
from symbiote.passes.ort_check import random_inputs, run

BLOCKS = ("cbr", "residual", "concat", "depthwise", "silu", "identity")
width = st.integers(min_value=2, max_value=10)
block = st.tuples(st.sampled_from(BLOCKS), width, width)


def build(blocks, seed: int, head: str):
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    count = [0]

    def nm(base):
        count[0] += 1
        return f"{base}{count[0]}"

    def const(arr):
        n = nm("k")
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), n))
        return n

    def op(kind, ins, **attrs):
        n = nm(kind.lower())
        nodes.append(helper.make_node(kind, ins, [n + "_y"], name=n, **attrs))
        return n + "_y"

    def conv(x, cin, cout, group=1, k=3):
        w = const(rng.standard_normal((cout, cin // group, k, k)) * (2.0 / (cin // group * k * k)) ** 0.5)
        return op("Conv", [x, w, const(0.1 * rng.standard_normal(cout))], kernel_shape=[k, k], pads=[k // 2] * 4, group=group)

    def bn(x, c):
        return op("BatchNormalization", [x, const(1 + 0.2 * rng.standard_normal(c)), const(0.1 * rng.standard_normal(c)),
                                         const(0.1 * rng.standard_normal(c)), const(1 + 0.3 * rng.random(c))])

    x, c = "x", 3
    for kind, a, b in blocks:
        if kind == "cbr":
            x, c = op("Relu", [bn(conv(x, c, a), a)]), a
        elif kind == "residual":
            y = op("Relu", [bn(conv(x, c, a), a)])
            x = op("Relu", [op("Add", [x, bn(conv(y, a, c), c)])])
        elif kind == "concat":
            l, r = op("Relu", [conv(x, c, a, k=1)]), op("Relu", [conv(x, c, b)])
            x, c = op("Concat", [l, r], axis=1), a + b
        elif kind == "depthwise":
            x = op("Clip", [bn(conv(x, c, c, group=c), c), const(0.0), const(6.0)])
        elif kind == "silu":
            y = bn(conv(x, c, a, k=1), a)
            x, c = op("Mul", [y, op("Sigmoid", [y])]), a
        else:
            x = op("Identity", [op("Dropout", [x])])
    if head == "gap":
        f = op("Flatten", [op("GlobalAveragePool", [x])], axis=1)
        y = op("Gemm", [f, const(rng.standard_normal((4, c)) / c ** 0.5)], transB=1)
    else:  # flatten the 4x4 map into a gemm: channel blocks of 16 features
        f = op("Flatten", [op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])], axis=1)
        y = op("Gemm", [f, const(rng.standard_normal((4, c * 16)) / (c * 16) ** 0.5)], transB=1)
    g = helper.make_graph(nodes, "rand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], inits)
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


graphs = st.builds(build, st.lists(block, min_size=1, max_size=4), st.integers(0, 1000), st.sampled_from(["gap", "flatten"]))
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _close(g, h, rtol=1e-4):
    feeds = random_inputs(g, seed=1)
    for a, b in zip(run(g, feeds), run(h, feeds)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * max(1.0, float(np.abs(a).max())))


@SETTINGS
@given(graphs)
def test_canonicalize_and_fold_bn_are_exact(g):
    res = parse_pipeline("canonicalize,fold-bn,fuse-activations")(g)
    res.graph.verify()
    assert not any(n.onnx_op in ("BatchNormalization", "Identity", "Dropout") for n in res.graph.nodes)
    _close(g, res.graph)


@SETTINGS
@given(graphs, st.sampled_from([0.25, 0.5]), st.sampled_from(["l1", "l2", "bn_gamma", "random"]))
def test_prune_shrinks_every_free_group(g, ratio, criterion):
    before = analyze(g)
    res = parse_pipeline(f"prune(ratio={ratio},criterion={criterion})")(g)
    after = analyze(res.graph)
    for grp in before.groups:
        want = max(1, round(grp.width * (1 - ratio))) if grp.free else grp.width
        assert after.by_name(grp.name).width == want
    out = run(res.graph, random_inputs(res.graph))
    assert out[0].shape == (1, 4) and np.isfinite(out[0]).all()


@SETTINGS
@given(graphs, st.sampled_from([3, 8, 16]))
def test_resize_growth_is_exact(g, multiple):
    res = parse_pipeline(f"resize-channels(multiple={multiple},mode=up)")(g)
    for grp in analyze(res.graph).free:
        assert grp.width % multiple == 0
    _close(g, res.graph)
