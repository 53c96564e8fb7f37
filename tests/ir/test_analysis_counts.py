"""MACs, params and bytes follow the documented conventions; zoo models hit published totals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.frontend import load
from symbiote.ir import Graph, ops
from symbiote.ir.analysis import GraphStats, NodeStats, graph_stats, node_stats
from symbiote.ir.shapes import infer_graph

F = TensorProto.FLOAT


def one_node(op, x_shape, weights, attrs=None, extra_inputs=()):
    g = Graph("g")
    x = g.add_input("x", x_shape)
    ins = [x] + [g.add_const(f"w{k}", np.ones(s, np.float32)) for k, s in enumerate(weights)] + list(extra_inputs)
    n = g.add_node(ops.CONV, op, ins, ["y"], attrs=attrs or {})
    g.outputs.append(n.output)
    infer_graph(g)
    return g, n


@pytest.mark.parametrize("attrs,w,macs", [
    ({}, (16, 8, 3, 3), 1 * 16 * 30 * 30 * 8 * 9),
    ({"group": 2}, (16, 4, 3, 3), 1 * 16 * 30 * 30 * 4 * 9),
    ({"group": 8}, (8, 1, 3, 3), 1 * 8 * 30 * 30 * 9),  # depthwise
    ({"dilations": [2, 2]}, (16, 8, 3, 3), 1 * 16 * 28 * 28 * 8 * 9),
    ({"strides": [2, 2], "pads": [1, 1, 1, 1]}, (16, 8, 3, 3), 1 * 16 * 16 * 16 * 8 * 9),
])
def test_conv_macs(attrs, w, macs):
    g, n = one_node("Conv", (1, 8, 32, 32), [w], attrs)
    s = node_stats(n)
    assert s.macs == macs
    assert s.params == int(np.prod(w))
    assert s.bytes_read == 4 * (8 * 32 * 32 + int(np.prod(w)))
    assert s.bytes_written == 4 * int(np.prod(s.output_shapes[0]))


def test_conv_transpose_macs():
    g, n = one_node("ConvTranspose", (2, 4, 5, 5), [(4, 3, 3, 3)], {"strides": [2, 2]})
    assert n.output.shape == (2, 3, 11, 11)
    assert node_stats(n).macs == 2 * 4 * 25 * 3 * 9


def test_gemm_and_attention_matmuls():
    g = Graph("attn")
    q = g.add_input("q", (2, 12, 128, 64))
    k = g.add_input("k", (2, 12, 64, 128))
    s = g.add_node(ops.MATMUL, "MatMul", [q, k], ["scores"])
    v = g.add_input("v", (2, 12, 128, 64))
    o = g.add_node(ops.MATMUL, "MatMul", [s.output, v], ["ctx"])
    a = g.add_input("a", (64, 32))
    w = g.add_const("w", np.ones((10, 64), np.float32))
    gm = g.add_node(ops.GEMM, "Gemm", [a, w], ["y"], attrs={"transA": 1, "transB": 1})
    infer_graph(g)
    assert node_stats(s).macs == 2 * 12 * 128 * 128 * 64
    assert node_stats(o).macs == 2 * 12 * 128 * 64 * 128
    assert gm.output.shape == (32, 10) and node_stats(gm).macs == 32 * 10 * 64
    assert node_stats(s).params == 0


def test_elementwise_counts_no_macs_and_shared_weights_count_once():
    x = helper.make_tensor_value_info("x", F, [4, 8])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"]),
        helper.make_node("MatMul", ["x", "w"], ["b"]),  # the same weight, shared
        helper.make_node("Add", ["a", "b"], ["c"]),
        helper.make_node("Reshape", ["c", "shape"], ["d"]),
        helper.make_node("Relu", ["d"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.ones((8, 6), np.float32), "w"), numpy_helper.from_array(np.array([2, 12], np.int64), "shape")]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", F, None)], inits))
    m.ir_version = 9
    stats = graph_stats(load(m))
    assert isinstance(stats, GraphStats)
    by = {s.name: s for s in stats.layers}
    add = [s for s in stats.layers if s.onnx_op == "Add"][0]
    assert add.macs == 0 and add.bytes_read == 2 * 4 * 4 * 6 and add.bytes_written == 4 * 4 * 6
    assert [s for s in stats.layers if s.onnx_op == "Reshape"][0].params == 0  # a shape, not a weight
    assert stats.params == 48 and sum(s.params for s in by.values()) == 96
    assert stats.macs == 2 * 4 * 6 * 8
    assert stats.opaque == {}


def test_stats_are_frozen_dataclasses():
    g, n = one_node("Conv", (1, 1, 4, 4), [(1, 1, 1, 1)])
    s = node_stats(n)
    assert isinstance(s, NodeStats)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.macs = 3  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(NodeStats)] == [
        "name", "op", "onnx_op", "output_shapes", "macs", "params", "bytes_read", "bytes_written"]


@pytest.mark.parametrize("name,gmacs,tol,mparams,ptol", [
    ("resnet50", 4.09, 0.05, 25.5, 0.2),      # He et al. 2016 / torchvision: 4.09 GMACs, 25.557 M params
    ("resnet18", 1.82, 0.03, 11.69, 0.1),     # torchvision: 1.814 GMACs, 11.69 M params
    ("mobilenet_v2", 0.300, 0.01, 3.50, 0.1),  # Sandler et al. 2018, Table 4: 300 M MACs, 3.4-3.5 M params
])
def test_zoo_models_match_published_counts(name, gmacs, tol, mparams, ptol, zoo_model):
    stats = graph_stats(load(zoo_model(name)))
    assert abs(stats.macs / 1e9 - gmacs) <= tol, stats.macs
    assert abs(stats.params / 1e6 - mparams) <= ptol, stats.params
    assert stats.opaque == {}
