"""load() on hand-built graphs in the styles real exporters produce.

Every test checks the IR's shapes against what onnxruntime actually computes.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.frontend import load
from symbiote.ir import ops
from symbiote.ir.analysis import graph_stats
from symbiote.passes.ort_check import run_model

F, I64 = TensorProto.FLOAT, TensorProto.INT64
RNG = np.random.default_rng(0)


def const(name, arr):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(arr), name))


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def model(nodes, inputs, outputs, inits=(), opset=17, **kw):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    ops_ = kw.pop("opsets", None) or [helper.make_opsetid("", opset)]
    m = helper.make_model(g, opset_imports=ops_, **kw)
    if "ir_version" not in kw:
        m.ir_version = min(m.ir_version, 10)
    return m


run_ort = run_model


def assert_shapes_match_ort(m, graph, feeds):
    got = run_ort(m, feeds)
    for v, arr in zip(graph.outputs, got):
        assert v.shape == arr.shape, f"{v.name}: IR says {v.shape}, onnxruntime gives {arr.shape}"
        assert v.dtype == str(arr.dtype) or (v.dtype, arr.dtype.kind) == ("bool", "b")
    return got


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ TorchScript exporter
def torchscript_model():
    x = helper.make_tensor_value_info("x", F, ["batch", 3, 8, 8])
    nodes = [
        const("w", randn(4, 3, 3, 3)),
        helper.make_node("Identity", ["w"], ["w_id"]),
        helper.make_node("Conv", ["x", "w_id"], ["y"], pads=[1, 1, 1, 1]),
        # dynamic Pad chain: pads = reversed pairs of [0,0,1,1] + zeros, as torch.onnx writes F.pad
        helper.make_node("Shape", ["y"], ["ys"]),
        helper.make_node("Shape", ["ys"], ["rank"]),
        const("two", np.array([2], np.int64)),
        helper.make_node("Mul", ["rank", "two"], ["rank2"]),
        const("four", np.array([4], np.int64)),
        helper.make_node("Sub", ["rank2", "four"], ["nzeros"]),
        helper.make_node("ConstantOfShape", ["nzeros"], ["zeros"], value=numpy_helper.from_array(np.array([0], np.int64))),
        const("p4", np.array([1, 1, 2, 2], np.int64)),
        helper.make_node("Concat", ["p4", "zeros"], ["pcat"], axis=0),
        const("m12", np.array([-1, 2], np.int64)),
        helper.make_node("Reshape", ["pcat", "m12"], ["p2"]),
        const("s_start", np.array([-1], np.int64)),
        const("s_end", np.array([-(2**63) + 1], np.int64)),
        const("s_ax", np.array([0], np.int64)),
        const("s_step", np.array([-1], np.int64)),
        helper.make_node("Slice", ["p2", "s_start", "s_end", "s_ax", "s_step"], ["prev"]),
        helper.make_node("Transpose", ["prev"], ["ptr"], perm=[1, 0]),
        const("m1", np.array([-1], np.int64)),
        helper.make_node("Reshape", ["ptr", "m1"], ["pflat"]),
        helper.make_node("Cast", ["pflat"], ["pads"], to=I64),
        helper.make_node("Pad", ["y", "pads"], ["ypad"], mode="constant"),
        # Resize to static sizes computed from Shape
        helper.make_node("Shape", ["ypad"], ["ps"]),
        const("zero", np.array([0], np.int64)),
        const("two2", np.array([2], np.int64)),
        helper.make_node("Slice", ["ps", "zero", "two2"], ["nc"]),
        const("hw", np.array([24, 24], np.int64)),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["ypad", "", "", "sizes"], ["yr"], mode="nearest"),
        # flatten with Shape->Gather->Unsqueeze->Concat->Reshape
        helper.make_node("Shape", ["yr"], ["rs"]),
        const("idx0", np.array(0, np.int64)),
        helper.make_node("Gather", ["rs", "idx0"], ["n"], axis=0),
        const("ax0", np.array([0], np.int64)),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "m1"], ["tshape"], axis=0),
        helper.make_node("Reshape", ["yr", "tshape"], ["out"]),
    ]
    return model(nodes, [x], [helper.make_tensor_value_info("out", F, None)], opset=17)


@pytest.mark.parametrize("batch", [1, 3])
def test_torchscript_noise_is_folded(batch):
    m = torchscript_model()
    g = load(m, input_shapes={"x": [batch, 3, 8, 8]} if batch != 1 else None)
    assert [n.onnx_op for n in g.nodes] == ["Conv", "Pad", "Resize", "Reshape"]
    pad, resize, reshape = g.nodes[1], g.nodes[2], g.nodes[3]
    assert pad.input(1).is_const and list(pad.input(1).const) == [0, 0, 2, 1, 0, 0, 2, 1]
    assert resize.input(3).is_const and list(resize.input(3).const) == [batch, 4, 24, 24]
    assert reshape.input(1).is_const and list(reshape.input(1).const) == [batch, -1]
    assert g.nodes[0].input(1).is_const  # the Identity on the weight is gone
    assert g.outputs[0].shape == (batch, 4 * 24 * 24)
    assert_shapes_match_ort(m, g, {"x": randn(batch, 3, 8, 8)})


# ------------------------------------------------------------------ dynamo exporter
def dynamo_model():
    x = helper.make_tensor_value_info("x", F, ["s0", 3, "s31", "s31"])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2]),
        helper.make_node("ReduceMean", ["c", "axes"], ["r"], keepdims=0),
        helper.make_node("Split", ["r"], ["a", "b"], axis=1, num_outputs=2),
        helper.make_node("Add", ["a", "b"], ["out"]),
    ]
    wrong = helper.make_tensor_value_info("out", F, [7, 7])  # declared, and wrong
    return model(nodes, [x], [wrong], [init("w", randn(6, 3, 3, 3)), init("axes", np.array([2, 3], np.int64))], opset=18)


def test_dynamo_symbolic_dims_and_wrong_declared_output():
    m = dynamo_model()
    g = load(m, input_shapes={"x": [2, 3, 17, 17]})
    assert g.inputs[0].shape == (2, 3, 17, 17)
    assert g.outputs[0].shape == (2, 3)
    assert_shapes_match_ort(m, g, {"x": randn(2, 3, 17, 17)})


def test_dynamo_symbol_without_shape_is_named():
    from symbiote.errors import ShapeError

    with pytest.raises(ShapeError, match=r"'x' dim 2 \('s31'\)"):
        load(dynamo_model())


# ------------------------------------------------------------------ tf2onnx / keras2onnx
def test_tf2onnx_nhwc_transposes_and_prelu():
    x = helper.make_tensor_value_info("input_1:0", F, ["unk__12", 8, 8, 3])
    nodes = [
        helper.make_node("Transpose", ["input_1:0"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "k"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c", "slope"], ["p"]),
        helper.make_node("Transpose", ["p"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["nhwc", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "dense"], ["mm"]),
        helper.make_node("Add", ["mm", "bias"], ["Identity:0"]),
    ]
    inits = [init("k", randn(5, 3, 3, 3)), init("slope", randn(5, 1, 1)), init("shape", np.array([-1, 320], np.int64)),
             init("dense", randn(320, 10)), init("bias", randn(10))]
    m = model(nodes, [x], [helper.make_tensor_value_info("Identity:0", F, ["unk__13", 10])], inits, opset=13)
    g = load(m)
    assert g.inputs[0].shape == (1, 8, 8, 3)
    assert g.node("") if False else True
    kinds = {n.onnx_op: n.op for n in g.nodes}
    assert kinds["PRelu"] == ops.ACTIVATION and kinds["Transpose"] == ops.RESHAPE
    assert_shapes_match_ort(m, g, {"input_1:0": randn(1, 8, 8, 3)})
    stats = graph_stats(g)
    assert stats.macs == 5 * 8 * 8 * 27 + 320 * 10
    assert stats.params == 5 * 27 + 5 + 3200 + 10


# ------------------------------------------------------------------ paddle2onnx
def test_paddle_hardswish_decomposed_layernorm_and_erf_gelu():
    x = helper.make_tensor_value_info("x", F, [1, 4, 16])
    nodes = [
        helper.make_node("HardSwish", ["x"], ["h"]),
        helper.make_node("ReduceMean", ["h"], ["mu"], axes=[-1]),
        helper.make_node("Sub", ["h", "mu"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["d2"]),
        helper.make_node("ReduceMean", ["d2"], ["var"], axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["d", "sd"], ["nrm"]),
        helper.make_node("Mul", ["nrm", "gamma"], ["sc"]),
        helper.make_node("Add", ["sc", "beta"], ["ln"]),
        helper.make_node("Div", ["ln", "sqrt2"], ["g0"]),
        helper.make_node("Erf", ["g0"], ["g1"]),
        helper.make_node("Add", ["g1", "one"], ["g2"]),
        helper.make_node("Mul", ["ln", "g2"], ["g3"]),
        helper.make_node("Mul", ["g3", "half"], ["y"]),
    ]
    scal = lambda n, v: init(n, np.array(v, np.float32))  # noqa: E731
    inits = [scal("two", 2.0), scal("eps", 1e-5), init("gamma", randn(16)), init("beta", randn(16)),
             scal("sqrt2", 1.4142135), scal("one", 1.0), scal("half", 0.5)]
    m = model(nodes, [x], [helper.make_tensor_value_info("y", F, [1, 4, 16])], inits, opset=14)
    g = load(m)
    assert len(g.nodes) == len(nodes)
    assert {n.op for n in g.nodes if n.onnx_op in ("ReduceMean",)} == {ops.REDUCE}
    assert g.node(g.nodes[0].name).op == ops.ACTIVATION
    assert graph_stats(g).params == 32  # gamma and beta; the scalars are not weights
    assert_shapes_match_ort(m, g, {"x": randn(1, 4, 16)})


# ------------------------------------------------------------------ recurrent
@pytest.mark.parametrize("op,gates,direction", [("LSTM", 4, "bidirectional"), ("GRU", 3, "forward"), ("RNN", 1, "reverse")])
def test_recurrent_nodes(op, gates, direction):
    seq, batch, inp, hid = 5, 2, 6, 7
    dirs = 2 if direction == "bidirectional" else 1
    x = helper.make_tensor_value_info("x", F, ["seq", "batch", inp])
    outs = ["y", "yh", "yc"] if op == "LSTM" else ["y", "yh"]
    nodes = [helper.make_node(op, ["x", "W", "R", "B"], outs, hidden_size=hid, direction=direction)]
    inits = [init("W", randn(dirs, gates * hid, inp)), init("R", randn(dirs, gates * hid, hid)),
             init("B", randn(dirs, 2 * gates * hid))]
    m = model(nodes, [x], [helper.make_tensor_value_info(o, F, None) for o in outs], inits, opset=14)
    g = load(m, input_shapes={"x": [seq, batch, inp]})
    assert g.nodes[0].op == ops.RECURRENT
    assert_shapes_match_ort(m, g, {"x": randn(seq, batch, inp)})
    stats = graph_stats(g)
    assert stats.macs == seq * batch * dirs * gates * hid * (inp + hid)
    assert stats.params == dirs * gates * hid * (inp + hid + 2)


def test_recurrent_with_unnamed_optional_output():
    x = helper.make_tensor_value_info("x", F, [3, 1, 4])
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["", "yh"], hidden_size=5)]
    m = model(nodes, [x], [helper.make_tensor_value_info("yh", F, None)], [init("W", randn(1, 20, 4)), init("R", randn(1, 20, 5))])
    g = load(m)
    lstm = g.nodes[0]
    assert len(lstm.outputs) == 2 and lstm.meta["_unnamed_outputs"] == [0]
    assert lstm.outputs[1].shape == (1, 1, 5)


# ------------------------------------------------------------------ If subgraphs
def test_if_subgraph_keeps_outer_names():
    x = helper.make_tensor_value_info("x", F, [2, 3])
    then_g = helper.make_graph([helper.make_node("Add", ["r", "bias"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", F, [2, 3])])
    else_g = helper.make_graph([helper.make_node("Sub", ["r", "bias"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", F, [2, 3])])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    m = model(nodes, [x], [helper.make_tensor_value_info("y", F, None)],
              [init("bias", randn(2, 3)), init("zero", np.array(0, np.float32))], opset=13)
    g = load(m)
    node_if = [n for n in g.nodes if n.onnx_op == "If"][0]
    assert node_if.op == ops.CONTROL
    assert isinstance(node_if.attrs["then_branch"], onnx.GraphProto)
    assert node_if.meta["_outer_inputs"] == ["bias", "r"]
    assert "bias" in g.constants  # referenced only from the subgraph, still kept
    assert node_if.output.shape == (2, 3)
    assert_shapes_match_ort(m, g, {"x": randn(2, 3)})


# ------------------------------------------------------------------ quantized graphs
def test_quantized_ops():
    x = helper.make_tensor_value_info("x", F, [1, 3, 6, 6])
    u8 = lambda n, v: init(n, np.array(v, np.uint8))  # noqa: E731
    f32 = lambda n, v: init(n, np.array(v, np.float32))  # noqa: E731
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("ConvInteger", ["xq", "wq", "xz", "wz"], ["ci"]),
        helper.make_node("Cast", ["ci"], ["cf"], to=F),
        helper.make_node("QuantizeLinear", ["cf", "s1", "z1"], ["q1"]),
        helper.make_node("QLinearConv", ["q1", "s1", "z1", "wq2", "s1", "z1", "s1", "z1"], ["q2"]),
        helper.make_node("Reshape", ["q2", "shape"], ["q2f"]),
        helper.make_node("QLinearMatMul", ["q2f", "s1", "z1", "wm", "s1", "z1", "s1", "z1"], ["q3"]),
        helper.make_node("MatMulInteger", ["q3", "wm2", "z1", "z1"], ["mi"]),
        helper.make_node("DequantizeLinear", ["wdq", "s1", "z1"], ["wf"]),
        helper.make_node("Cast", ["mi"], ["mif"], to=F),
        helper.make_node("MatMul", ["mif", "wf"], ["y"]),
    ]
    q = lambda *s: RNG.integers(0, 255, s).astype(np.uint8)  # noqa: E731
    inits = [u8("wz", 128), init("wq", q(4, 3, 3, 3)), f32("s1", 0.1), u8("z1", 128), init("wq2", q(2, 4, 3, 3)),
             init("shape", np.array([1, 8], np.int64)), init("wm", q(8, 5)), init("wm2", q(5, 3)), init("wdq", q(3, 2))]
    m = model(nodes, [x], [helper.make_tensor_value_info("y", F, None)], inits, opset=13)
    g = load(m)
    by = {n.onnx_op: n for n in g.nodes}
    assert by["ConvInteger"].output.dtype == "int32" and by["QLinearConv"].output.dtype == "uint8"
    assert by["DequantizeLinear"].input(0).is_const  # quantized weights are not folded to float
    assert by["ConvInteger"].op == by["QLinearConv"].op == ops.CONV
    stats = {s.onnx_op: s for s in graph_stats(g).layers}
    assert stats["ConvInteger"].macs == 4 * 4 * 4 * 27
    assert stats["QLinearConv"].macs == 2 * 2 * 2 * 36
    assert stats["QLinearMatMul"].macs == 8 * 5 and stats["MatMulInteger"].macs == 5 * 3
    assert_shapes_match_ort(m, g, {"x": randn(1, 3, 6, 6)})


# ------------------------------------------------------------------ contrib and custom ops
def test_contrib_ops_mapped_or_opaque():
    x = helper.make_tensor_value_info("x", F, [1, 3, 8, 8])
    nodes = [
        helper.make_node("FusedConv", ["x", "w"], ["c"], domain="com.microsoft", activation="Relu", pads=[1, 1, 1, 1]),
        helper.make_node("Gelu", ["c"], ["g"], domain="com.microsoft"),
        helper.make_node("Mystery", ["g"], ["m"], domain="com.example", knob=3, names=["a", "b"]),
        helper.make_node("Relu", ["m"], ["y"]),
    ]
    vi = [helper.make_tensor_value_info("m", F, [1, 4, 8, 8])]
    g_ = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", F, None)], [init("w", randn(4, 3, 3, 3))],
                           value_info=vi)
    m = helper.make_model(g_, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1),
                                             helper.make_opsetid("com.example", 1)])
    g = load(m)
    fc, ge, my, _ = g.nodes
    assert (fc.op, ge.op, my.op) == (ops.CONV, ops.ACTIVATION, ops.OPAQUE)
    assert my.attrs == {"knob": 3, "names": ["a", "b"]} and my.domain == "com.example"
    assert g.outputs[0].shape == (1, 4, 8, 8)  # the opaque op's declared shape is the last resort
    stats = graph_stats(g)
    assert stats.opaque == {"com.example.Mystery": 1}
    assert stats.layers[0].macs == 4 * 64 * 27


# ------------------------------------------------------------------ IR version 3, ConstantOfShape weights
def test_ir3_initializers_listed_as_inputs():
    x = helper.make_tensor_value_info("x", F, [1, 4])
    w = helper.make_tensor_value_info("w", F, [4, 2])
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [x, w], [helper.make_tensor_value_info("y", F, [1, 2])],
              [init("w", randn(4, 2))], opset=8, ir_version=3)
    assert m.ir_version == 3
    g = load(m)
    assert [v.name for v in g.inputs] == ["x"] and "w" in g.constants
    assert graph_stats(g).params == 8


def test_constant_of_shape_weights_are_folded():
    x = helper.make_tensor_value_info("x", F, [1, 3, 5, 5])
    nodes = [
        const("wshape", np.array([4, 3, 3, 3], np.int64)),
        helper.make_node("ConstantOfShape", ["wshape"], ["w"], value=numpy_helper.from_array(np.array([0.5], np.float32))),
        helper.make_node("Conv", ["x", "w"], ["y"]),
    ]
    m = model(nodes, [x], [helper.make_tensor_value_info("y", F, None)])
    g = load(m)
    assert [n.onnx_op for n in g.nodes] == ["Conv"]
    w = g.nodes[0].input(1)
    assert w.is_const and w.const.shape == (4, 3, 3, 3) and np.all(w.const == 0.5)
    assert graph_stats(g).params == 108
    assert_shapes_match_ort(m, g, {"x": randn(1, 3, 5, 5)})


# ------------------------------------------------------------------ external data
def test_external_data(tmp_path):
    x = helper.make_tensor_value_info("x", F, [2, 16])
    wv = randn(16, 32)
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [x], [helper.make_tensor_value_info("y", F, None)],
              [init("w", wv)])
    path = tmp_path / "m.onnx"
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    assert (tmp_path / "w.bin").exists()
    g = load(path)
    np.testing.assert_array_equal(g.constants["w"].const, wv)
    assert g.outputs[0].shape == (2, 32)
    assert g.meta["source"] == str(path)


# ------------------------------------------------------------------ opsets
def small_cnn(opset):
    x = helper.make_tensor_value_info("x", F, [1, 3, 8, 8])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], transB=1),
    ]
    inits = [init("w", randn(4, 3, 3, 3)), init("shape", np.array([1, 64], np.int64)), init("fc", randn(10, 64)),
             init("fb", randn(10))]
    return model(nodes, [x], [helper.make_tensor_value_info("y", F, None)], inits, opset=opset)


@pytest.mark.parametrize("opset", [7, 8, 9, 10, 11, 13, 17, 18, 21, onnx.defs.onnx_opset_version()])
def test_opsets_old_and_new(opset):
    m = small_cnn(opset)
    g = load(m)
    assert g.opset[""] == max(opset, 11)
    assert g.outputs[0].shape == (1, 10)
    assert graph_stats(g).macs == 4 * 64 * 27 + 640
    if opset <= 21:
        assert_shapes_match_ort(m, g, {"x": randn(1, 3, 8, 8)})


def test_failed_opset_conversion_says_so(monkeypatch):
    from onnx import version_converter

    from symbiote.errors import ModelLoadError

    def broken(model, target):
        raise RuntimeError("no adapter for Foo")

    monkeypatch.setattr(version_converter, "convert_version", broken)
    with pytest.raises(ModelLoadError, match="opset 7 .*could not convert.*no adapter for Foo"):
        load(small_cnn(7))


def test_opset7_ops_with_changed_semantics_are_converted():
    x = helper.make_tensor_value_info("x", F, [1, 2, 4, 4])
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"], epsilon=1e-5),
        helper.make_node("Upsample", ["bn"], ["u"], scales=[1.0, 1.0, 2.0, 2.0]),
        helper.make_node("Dropout", ["u"], ["d"]),
        helper.make_node("Flatten", ["d"], ["y"]),
    ]
    inits = [init(n, np.ones(2, np.float32)) for n in "sbmv"]
    m = model(nodes, [x], [helper.make_tensor_value_info("y", F, None)], inits, opset=7, ir_version=3)
    g = load(m)
    assert g.opset[""] == 11 and [v.name for v in g.inputs] == ["x"]
    assert [n.onnx_op for n in g.nodes] == ["BatchNormalization", "Resize", "Dropout", "Flatten"]
    assert g.outputs[0].shape == (1, 128)
