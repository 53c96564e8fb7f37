"""Shape rules: each op's inferred output shapes and dtypes equal what onnxruntime computes."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from symbiote.errors import ShapeError
from symbiote.frontend import load
from symbiote.ir import Graph, ops
from symbiote.ir.shape_rules import RULES
from symbiote.ir.shapes import infer_graph, infer_node
from symbiote.passes.ort_check import run_model

RNG = np.random.default_rng(0)


def f32(*s):
    return RNG.standard_normal(s).astype(np.float32)


def i64(*v):
    return np.array(v, np.int64)


# (op, data inputs (graph inputs), constant inputs, attrs, number of outputs); None = omitted input
CASES = {
    "conv_depthwise_dilated_strided": ("Conv", {"x": f32(1, 4, 11, 9)}, {"w": f32(4, 1, 3, 3)},
                                       dict(group=4, dilations=[2, 2], strides=[2, 1], pads=[1, 0, 1, 0]), 1),
    "conv_same_upper": ("Conv", {"x": f32(2, 3, 7, 7)}, {"w": f32(5, 3, 3, 3)}, dict(auto_pad="SAME_UPPER", strides=[2, 2]), 1),
    "conv_valid_1d": ("Conv", {"x": f32(1, 2, 10)}, {"w": f32(3, 2, 4)}, dict(auto_pad="VALID"), 1),
    "conv_3d": ("Conv", {"x": f32(1, 2, 4, 5, 6)}, {"w": f32(3, 2, 2, 2, 2)}, {}, 1),
    "conv_transpose": ("ConvTranspose", {"x": f32(1, 4, 5, 5)}, {"w": f32(4, 3, 3, 3)},
                       dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]), 1),
    "conv_transpose_group": ("ConvTranspose", {"x": f32(1, 4, 3, 3)}, {"w": f32(4, 2, 2, 2)}, dict(group=2, strides=[2, 2]), 1),
    "maxpool_ceil": ("MaxPool", {"x": f32(1, 2, 8, 8)}, {}, dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), 2),
    "avgpool_pads": ("AveragePool", {"x": f32(1, 2, 7, 7)}, {}, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), 1),
    "global_pool": ("GlobalAveragePool", {"x": f32(2, 3, 5, 4)}, {}, {}, 1),
    "gemm_trans": ("Gemm", {"a": f32(4, 3)}, {"b": f32(5, 4), "c": f32(5)}, dict(transA=1, transB=1), 1),
    "matmul_vec": ("MatMul", {"a": f32(4)}, {"b": f32(4, 6)}, {}, 1),
    "matmul_batched": ("MatMul", {"a": f32(2, 1, 3, 4)}, {"b": f32(5, 4, 6)}, {}, 1),
    "reshape_zero_minus_one": ("Reshape", {"x": f32(2, 3, 4)}, {"s": i64(0, -1, 2)}, {}, 1),
    "flatten": ("Flatten", {"x": f32(2, 3, 4, 5)}, {}, dict(axis=2), 1),
    "transpose": ("Transpose", {"x": f32(2, 3, 4)}, {}, dict(perm=[2, 0, 1]), 1),
    "concat": ("Concat", {"x": f32(2, 3), "y": f32(2, 5)}, {}, dict(axis=-1), 1),
    "split_sizes": ("Split", {"x": f32(2, 10)}, {"s": i64(3, 7)}, dict(axis=1), 2),
    "split_even": ("Split", {"x": f32(6, 2)}, {}, dict(num_outputs=3), 3),
    "split_uneven": ("Split", {"x": f32(7, 2)}, {}, dict(num_outputs=3), 3),
    "slice_neg_step": ("Slice", {"x": f32(10, 6)}, {"st": i64(-2, 1), "en": i64(-100, 5), "ax": i64(0, 1), "sp": i64(-3, 2)}, {}, 1),
    "gather": ("Gather", {"x": f32(3, 5, 2)}, {"i": i64([[0, 1, 4]])}, dict(axis=1), 1),
    "gather_elements": ("GatherElements", {"x": f32(3, 4)}, {"i": np.zeros((3, 2), np.int64)}, dict(axis=1), 1),
    "squeeze": ("Squeeze", {"x": f32(1, 3, 1, 2)}, {"a": i64(0, -2)}, {}, 1),
    "unsqueeze": ("Unsqueeze", {"x": f32(3, 2)}, {"a": i64(0, -1)}, {}, 1),
    "pad_axes": ("Pad", {"x": f32(2, 3, 4)}, {"p": i64(1, 2, 0, 3), "v": None, "a": i64(0, 2)}, {}, 1),
    "resize_scales": ("Resize", {"x": f32(1, 2, 3, 5)}, {"roi": None, "sc": np.array([1, 1, 2, 1.5], np.float32)}, {}, 1),
    "expand": ("Expand", {"x": f32(3, 1)}, {"s": i64(2, 1, 4)}, {}, 1),
    "tile": ("Tile", {"x": f32(2, 3)}, {"r": i64(2, 2)}, {}, 1),
    "reduce_sum": ("ReduceSum", {"x": f32(2, 3, 4)}, {"a": i64(1)}, dict(keepdims=0), 1),
    "reduce_mean_all": ("ReduceMean", {"x": f32(2, 3, 4)}, {}, {}, 1),
    "reduce_max_attr": ("ReduceMax", {"x": f32(2, 3, 4)}, {"a": i64(-1, 0)}, {}, 1),
    "argmax": ("ArgMax", {"x": f32(2, 3, 4)}, {}, dict(axis=-1, keepdims=0), 1),
    "topk": ("TopK", {"x": f32(2, 9)}, {"k": i64(3)}, {}, 2),
    "softmax": ("Softmax", {"x": f32(2, 3)}, {}, {}, 1),
    "layernorm": ("LayerNormalization", {"x": f32(2, 3, 4)}, {"g": f32(4), "b": f32(4)}, {}, 3),
    "batchnorm": ("BatchNormalization", {"x": f32(2, 3, 4)}, {"s": f32(3), "b": f32(3), "m": f32(3), "v": np.ones(3, np.float32)}, {}, 1),
    "cast": ("Cast", {"x": f32(2, 3)}, {}, dict(to=7), 1),
    "where": ("Where", {"c": RNG.random((2, 1)) > 0.5, "x": f32(1, 3)}, {"y": f32(3)}, {}, 1),
    "equal": ("Equal", {"x": f32(2, 3)}, {"y": f32(3)}, {}, 1),
    "shape_slice": ("Shape", {"x": f32(2, 3, 4, 5)}, {}, dict(start=1, end=-1), 1),
    "depth_to_space": ("DepthToSpace", {"x": f32(1, 8, 2, 3)}, {}, dict(blocksize=2), 1),
    "einsum_fallback": ("Einsum", {"x": f32(2, 3, 4), "y": f32(2, 4, 5)}, {}, dict(equation="bij,bjk->bik"), 1),
    "cumsum": ("CumSum", {"x": f32(2, 3)}, {"a": np.array(1, np.int64)}, {}, 1),
    "prelu": ("PRelu", {"x": f32(1, 3, 2, 2)}, {"s": f32(3, 1, 1)}, {}, 1),
    "range": ("Range", {}, {"a": np.array(1, np.int64), "b": np.array(10, np.int64), "c": np.array(3, np.int64)}, {}, 1),
    "nonzero_fallback": ("NonZero", {"x": f32(3, 4)}, {}, {}, 1),
}


def build(op, data, consts, attrs, nout, opset=18):
    names = list(data) + list(consts)
    node = helper.make_node(op, [n if (n in data or consts[n] is not None) else "" for n in names],
                            [f"out{k}" for k in range(nout)], name="the_node", **attrs)
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)) for n, a in data.items()]
    inits = [numpy_helper.from_array(a, n) for n, a in consts.items() if a is not None]
    outs = [helper.make_value_info(f"out{k}", helper.make_tensor_type_proto(1, None).__class__()) for k in range(nout)]
    graph = helper.make_graph([node], "one", inputs, outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_matches_onnxruntime(case):
    op, data, consts, attrs, nout = CASES[case]
    model = build(op, data, consts, attrs, nout)
    graph = load(model)
    want = run_model(model, data)
    for v, arr in zip(graph.outputs, want):
        if op == "NonZero":
            assert v.dtype == "int64"  # data-dependent: the shape is unknown unless folded
            continue
        assert v.shape == arr.shape, f"{case}: {v.name} inferred {v.shape}, onnxruntime {arr.shape}"
        assert v.dtype == ("bool" if arr.dtype == np.bool_ else str(arr.dtype))


def test_rule_table_covers_the_common_ops():
    for op in ("Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "Add", "Reshape", "Flatten", "Transpose",
               "Concat", "Split", "Slice", "Gather", "Squeeze", "Unsqueeze", "Pad", "Resize", "ReduceMean",
               "Softmax", "LayerNormalization", "BatchNormalization", "LSTM", "GRU", "Cast", "Shape"):
        assert op in RULES, op


def _tiny_graph():
    g = Graph("t")
    x = g.add_input("x", (1, 3, 8, 8))
    w = g.add_const("w", f32(6, 3, 3, 3))
    c = g.add_node(ops.CONV, "Conv", [x, w], ["c"], attrs={"pads": [1, 1, 1, 1]})
    f = g.add_node(ops.RESHAPE, "Flatten", [c.output], ["f"], attrs={"axis": 1})
    fc = g.add_const("fc", f32(6 * 64, 10))
    m = g.add_node(ops.MATMUL, "MatMul", [f.output, fc], ["y"])
    g.outputs.append(m.output)
    return g, c, fc


def test_infer_graph_after_slicing_weights():
    g, conv, fc = _tiny_graph()
    infer_graph(g)
    assert conv.output.shape == (1, 6, 8, 8) and g.outputs[0].shape == (1, 10)
    conv.set_input(1, g.add_const("w_small", f32(4, 3, 3, 3)))
    g.nodes[-1].set_input(1, g.add_const("fc_small", f32(4 * 64, 10)))
    infer_graph(g)
    assert conv.output.shape == (1, 4, 8, 8) and g.nodes[1].output.shape == (1, 256)
    g.verify()


def test_inconsistent_inputs_raise_shape_error_naming_the_node():
    g, conv, fc = _tiny_graph()
    conv.set_input(1, g.add_const("w_small", f32(4, 3, 3, 3)))
    with pytest.raises(ShapeError, match="matmul.*inner dims"):
        infer_graph(g)


def test_infer_node_unknown_input_gives_none_shape():
    g = Graph("u")
    x = g.add_input("x", None)
    n = g.add_node(ops.ACTIVATION, "Relu", [x], ["y"])
    assert infer_node(n) in (None, [(None, "float32")])
    assert infer_node(g.add_node(ops.OPAQUE, "Mystery", [x], ["z"], domain="my.domain")) is None


def test_verify_catches_a_stale_shape():
    g, conv, _ = _tiny_graph()
    infer_graph(g)
    conv.output.shape = (1, 5, 8, 8)
    with pytest.raises(ShapeError, match="conv"):
        g.verify()
