"""Hand-built graphs with the constructs real exporters produce: load -> save -> same onnxruntime outputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.frontend import load
from symbiote.frontend.save import save, to_onnx

F = TensorProto.FLOAT
RNG = np.random.default_rng(0)


def _w(name, *shape, dtype=np.float32, scale=0.5):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(dtype), name)


def _model(nodes, inputs, outputs, inits=(), opset=17, ir_version=None, extra_opsets=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), *[helper.make_opsetid(d, v) for d, v in extra_opsets]])
    if ir_version is not None:
        m.ir_version = ir_version
    return m


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def _if_model():
    then_g = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["t"])], "then", [], [_vi("t", [2, 3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [_vi("e", [2, 3])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    inits = [numpy_helper.from_array(np.array(2.0, np.float32), "two"), numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    return _model(nodes, [_vi("x", [2, 3])], [_vi("y", [2, 3])], inits)


def _gru_model():
    h = 5
    nodes = [helper.make_node("GRU", ["x", "W", "R", "B"], ["Y", "Y_h"], hidden_size=h, linear_before_reset=1),
             helper.make_node("Relu", ["Y_h"], ["y"])]
    inits = [_w("W", 1, 3 * h, 4), _w("R", 1, 3 * h, h), _w("B", 1, 6 * h)]
    return _model(nodes, [_vi("x", [6, 1, 4])], [_vi("y", [1, 1, h])], inits)


def _quantized_model():
    w = numpy_helper.from_array(RNG.integers(-20, 20, (4, 3, 3, 3)).astype(np.int8), "w_q")
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"]),
        helper.make_node("QLinearConv", ["x_q", "x_scale", "x_zp", "w_q", "w_scale", "w_zp", "y_scale", "y_zp"], ["y_q"], pads=[1, 1, 1, 1]),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"], ["y"]),
        helper.make_node("DynamicQuantizeLinear", ["y"], ["z_q", "z_scale", "z_zp"]),
        helper.make_node("ConvInteger", ["z_q", "w_u8", "z_zp"], ["z_i"], pads=[1, 1, 1, 1]),
        helper.make_node("Cast", ["z_i"], ["z"], to=F),
    ]
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "x_scale"), numpy_helper.from_array(np.array(128, np.uint8), "x_zp"),
             w, numpy_helper.from_array(np.array(0.02, np.float32), "w_scale"), numpy_helper.from_array(np.array(0, np.int8), "w_zp"),
             numpy_helper.from_array(np.array(0.1, np.float32), "y_scale"), numpy_helper.from_array(np.array(128, np.uint8), "y_zp"),
             numpy_helper.from_array(RNG.integers(0, 255, (2, 4, 3, 3)).astype(np.uint8), "w_u8")]
    return _model(nodes, [_vi("x", [1, 3, 6, 6])], [_vi("z", [1, 2, 6, 6])], inits)


def _matmul_integer_model():
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["x_q", "s", "zp"]),
             helper.make_node("MatMulInteger", ["x_q", "w", "zp"], ["y_i"]),
             helper.make_node("Cast", ["y_i"], ["y"], to=F)]
    inits = [numpy_helper.from_array(RNG.integers(0, 255, (8, 3)).astype(np.uint8), "w")]
    return _model(nodes, [_vi("x", [2, 8])], [_vi("y", [2, 3])], inits)


def _ir3_model():
    """Old exporters: IR version 3, opset 8, initializers also listed as graph inputs."""
    w, b = _w("w", 4, 6), _w("b", 4)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1), helper.make_node("Relu", ["g"], ["y"])]
    return _model(nodes, [_vi("x", [2, 6]), _vi("w", [4, 6]), _vi("b", [4])], [_vi("y", [2, 4])], [w, b], opset=8, ir_version=3)


def _contrib_model():
    nodes = [helper.make_node("FusedMatMul", ["x", "w"], ["m"], domain="com.microsoft", alpha=0.5, transB=1),
             helper.make_node("Gelu", ["m"], ["y"], domain="com.microsoft")]
    return _model(nodes, [_vi("x", [2, 5])], [_vi("y", [2, 3])], [_w("w", 3, 5)], extra_opsets=[("com.microsoft", 1)])


def _constant_of_shape_model():
    """Weights made by ConstantOfShape and Shape->Gather->Unsqueeze->Concat->Reshape noise."""
    nodes = [
        helper.make_node("Constant", [], ["shp"], value=numpy_helper.from_array(np.array([3, 4], np.int64))),
        helper.make_node("ConstantOfShape", ["shp"], ["bias"], value=numpy_helper.from_array(np.array([0.25], np.float32))),
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Gather", ["xs", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("Identity", ["flat"], ["flat2"]),
        helper.make_node("Add", ["flat2", "bias_row"], ["y0"]),
        helper.make_node("ReduceSum", ["bias", "axes0"], ["bias_row"], keepdims=0),
        helper.make_node("Relu", ["y0"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    m = _model(nodes, [_vi("x", [3, 2, 2])], [_vi("y", [3, 4])], inits)
    # nodes deliberately out of order (ReduceSum after its use): valid ONNX needs topological order
    m.graph.node.insert(8, m.graph.node.pop(9))
    return m


def _opaque_model():
    nodes = [helper.make_node("EyeLike", ["x"], ["e"], k=1), helper.make_node("Add", ["x", "e"], ["y"])]
    return _model(nodes, [_vi("x", [4, 4])], [_vi("y", [4, 4])])


def _symbolic_model():
    """Dynamo-style symbolic dims named like s31, with a declared output shape that is wrong."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Sigmoid", ["m"], ["y"])]
    return _model(nodes, [_vi("x", ["s31", 6])], [_vi("y", ["s31", 99])], [_w("w", 6, 3)], opset=18)


def _lstm_bidirectional_model():
    h = 4
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "Y_h", "Y_c"], hidden_size=h, direction="bidirectional"),
             helper.make_node("Transpose", ["Y"], ["y"], perm=[0, 2, 1, 3])]
    inits = [_w("W", 2, 4 * h, 3), _w("R", 2, 4 * h, h), _w("B", 2, 8 * h)]
    return _model(nodes, [_vi("x", [5, 1, 3])], [_vi("y", [5, 1, 2, h])], inits)


CASES = {
    "if_subgraph": _if_model,
    "gru": _gru_model,
    "lstm_bidirectional": _lstm_bidirectional_model,
    "qlinear_conv_integer": _quantized_model,
    "matmul_integer": _matmul_integer_model,
    "ir3_initializers_as_inputs": _ir3_model,
    "contrib_ops": _contrib_model,
    "constant_of_shape_and_shape_noise": _constant_of_shape_model,
    "opaque_op": _opaque_model,
    "symbolic_dims": _symbolic_model,
}


@pytest.mark.parametrize("case", list(CASES))
def test_construct_round_trips(case, onnx_runner, tmp_path):
    random_feeds, run_onnx = onnx_runner
    original = CASES[case]()
    feeds = random_feeds(original, seed=3)
    if case == "symbolic_dims":
        feeds = {"x": RNG.standard_normal((1, 6)).astype(np.float32)}
    want = run_onnx(original, feeds)
    model = to_onnx(load(original))
    onnx.checker.check_model(model, full_check=True)
    got = run_onnx(model, feeds)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    # and through a file
    path = save(load(original), tmp_path / f"{case}.onnx")
    for g, w in zip(run_onnx(str(path), feeds), want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
