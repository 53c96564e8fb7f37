"""Shared fixtures of the pass tests: zoo models at reduced sizes and hand-built graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Builder:
    """A tiny ONNX builder for hand-made test graphs (seeded weights)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def const(self, base: str, arr) -> str:
        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def op(self, op: str, inputs: list[str], n_out: int = 1, **attrs) -> str | list[str]:
        nm = self.name(op.lower())
        outs = [f"{nm}_out{i}" if i else f"{nm}_out" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=nm, **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x: str, cin: int, cout: int, k: int = 3, group: int = 1, bias: bool = True) -> str:
        w = self.const("w", (self.rng.standard_normal((cout, cin // group, k, k)) * (2.0 / (cin // group * k * k)) ** 0.5).astype(np.float32))
        ins = [x, w] + ([self.const("b", self.rng.standard_normal(cout).astype(np.float32) * 0.1)] if bias else [])
        return self.op("Conv", ins, kernel_shape=[k, k], pads=[k // 2] * 4, group=group)

    def bn(self, x: str, c: int) -> str:
        r = self.rng
        ps = [self.const("g", (1 + 0.1 * r.standard_normal(c)).astype(np.float32)), self.const("beta", (0.1 * r.standard_normal(c)).astype(np.float32)),
              self.const("mean", (0.1 * r.standard_normal(c)).astype(np.float32)), self.const("var", (1 + 0.1 * r.random(c)).astype(np.float32))]
        return self.op("BatchNormalization", [x, *ps], epsilon=1e-5)

    def cbr(self, x: str, cin: int, cout: int, k: int = 3, group: int = 1) -> str:
        return self.op("Relu", [self.bn(self.conv(x, cin, cout, k, group, bias=False), cout)])

    def linear(self, x: str, fin: int, fout: int) -> str:
        w = self.const("W", (self.rng.standard_normal((fin, fout)) / fin ** 0.5).astype(np.float32))
        b = self.const("B", (0.1 * self.rng.standard_normal(fout)).astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def model(self, inputs: list[tuple[str, list[int]]], outputs: list[str], dtype=TensorProto.FLOAT) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "hand", [helper.make_tensor_value_info(n, dtype, s) for n, s in inputs],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 8
        return m


def head(b: Builder, x: str, c: int, classes: int = 5) -> str:
    p = b.op("GlobalAveragePool", [x])
    f = b.op("Flatten", [p], axis=1)
    w = b.const("fc", (b.rng.standard_normal((classes, c)) / c ** 0.5).astype(np.float32))
    return b.op("Gemm", [f, w, b.const("fcb", np.zeros(classes, np.float32))], transB=1)


def residual_cnn() -> onnx.ModelProto:
    b = Builder(1)
    x = b.cbr("x", 3, 8)
    y = b.cbr(x, 8, 12)
    y = b.bn(b.conv(y, 12, 8, bias=False), 8)
    z = b.op("Relu", [b.op("Add", [x, y])])
    return b.model([("x", [1, 3, 16, 16])], [head(b, z, 8)])


def concat_cnn() -> onnx.ModelProto:
    b = Builder(2)
    x = b.cbr("x", 3, 8)
    l = b.cbr(x, 8, 6)
    r = b.cbr(x, 8, 10, k=1)
    c = b.op("Concat", [l, r, x], axis=1)  # 6 + 10 + 8
    y = b.cbr(c, 24, 16)
    s = b.op("Split", [y, b.const("split", np.array([8, 8], np.int64))], n_out=2, axis=1)
    y = b.op("Mul", s)
    # flatten into a gemm: channels become blocks of 4x4 features
    p = b.op("MaxPool", [y], kernel_shape=[4, 4], strides=[4, 4])
    f = b.op("Flatten", [p], axis=1)
    w = b.const("fc", (b.rng.standard_normal((5, 8 * 4 * 4)) * 0.1).astype(np.float32))
    return b.model([("x", [1, 3, 16, 16])], [b.op("Gemm", [f, w], transB=1)])


def depthwise_cnn() -> onnx.ModelProto:
    b = Builder(3)
    x = b.cbr("x", 3, 16)
    d = b.op("Clip", [b.bn(b.conv(x, 16, 16, group=16, bias=False), 16), b.const("lo", np.float32(0)), b.const("hi", np.float32(6))])
    g = b.cbr(d, 16, 16, group=4)  # grouped: fixed
    y = b.bn(b.conv(g, 16, 12, k=1, bias=False), 12)
    s = b.op("Mul", [y, b.op("Sigmoid", [y])])  # SiLU
    return b.model([("x", [1, 3, 16, 16])], [head(b, s, 12)])


def nhwc_cnn() -> onnx.ModelProto:
    b = Builder(4)
    x = b.op("Transpose", ["x"], perm=[0, 3, 1, 2])  # NHWC input
    y = b.cbr(x, 3, 8)
    t = b.op("Transpose", [y], perm=[0, 2, 3, 1])  # NHWC: channels last
    t = b.op("Add", [t, b.const("bias", (0.1 * b.rng.standard_normal(8)).astype(np.float32))])
    u = b.op("Transpose", [t], perm=[0, 3, 1, 2])
    z = b.cbr(u, 8, 10)
    return b.model([("x", [1, 16, 16, 3])], [head(b, z, 10)])


def attention_block(hidden: int = 16, heads: int = 2, ffn: int = 32, seq: int = 8) -> onnx.ModelProto:
    b = Builder(5)
    x = "x"
    hd = hidden // heads

    def split(t):
        r = b.op("Reshape", [t, b.const("shape", np.array([1, seq, heads, hd], np.int64))])
        return b.op("Transpose", [r], perm=[0, 2, 1, 3])

    q, k, v = (split(b.linear(x, hidden, hidden)) for _ in range(3))
    kt = b.op("Transpose", [k], perm=[0, 1, 3, 2])
    s = b.op("Div", [b.op("MatMul", [q, kt]), b.const("sqrt", np.float32(hd ** 0.5))])
    a = b.op("MatMul", [b.op("Softmax", [s], axis=-1), v])
    a = b.op("Reshape", [b.op("Transpose", [a], perm=[0, 2, 1, 3]), b.const("merge", np.array([1, seq, hidden], np.int64))])
    o = b.op("Add", [b.linear(a, hidden, hidden), x])
    ln = lambda t: b.op("LayerNormalization", [t, b.const("lns", np.ones(hidden, np.float32)), b.const("lnb", np.zeros(hidden, np.float32))], axis=-1)
    o = ln(o)
    h = b.linear(o, hidden, ffn)
    h = b.op("Mul", [b.op("Mul", [h, b.op("Add", [b.op("Erf", [b.op("Div", [h, b.const("s2", np.float32(2 ** 0.5))])]), b.const("one", np.float32(1))])]), b.const("half", np.float32(0.5))])
    y = ln(b.op("Add", [b.linear(h, ffn, hidden), o]))
    return b.model([("x", [1, seq, hidden])], [y])


def lstm_model(inp: int = 6, hidden: int = 10, seq: int = 5) -> onnx.ModelProto:
    b = Builder(6)
    r = b.rng
    y, yh = b.op("LSTM", ["x", b.const("W", (0.3 * r.standard_normal((1, 4 * hidden, inp))).astype(np.float32)),
                           b.const("R", (0.3 * r.standard_normal((1, 4 * hidden, hidden))).astype(np.float32)),
                           b.const("B", (0.1 * r.standard_normal((1, 8 * hidden))).astype(np.float32))], n_out=2, hidden_size=hidden)
    y2 = b.op("GRU", [b.op("Squeeze", [y, b.const("ax", np.array([1], np.int64))]),
                      b.const("W", (0.3 * r.standard_normal((1, 3 * 7, hidden))).astype(np.float32)),
                      b.const("R", (0.3 * r.standard_normal((1, 3 * 7, 7))).astype(np.float32))], n_out=2, hidden_size=7)[1]
    f = b.op("Reshape", [y2, b.const("shape", np.array([1, 7], np.int64))])
    w = b.const("fc", (r.standard_normal((7, 3)) * 0.3).astype(np.float32))
    return b.model([("x", [seq, 1, inp])], [b.op("Gemm", [f, w]), yh])


def if_branch_cnn() -> onnx.ModelProto:
    """A CNN whose middle is an If on input data: the then-branch convolves a value it reads
    by name from the outer graph with an outer weight, the else-branch negates it."""
    b = Builder(7)
    y = b.cbr(b.cbr("x", 3, 8), 8, 8)
    w = b.const("wt", (b.rng.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32))
    then_g = helper.make_graph([helper.make_node("Conv", [y, w], ["t0"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["t0"], ["t"])],
                               "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Neg", [y], ["e"])], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    s = b.op("ReduceSum", ["x"], keepdims=0)
    c = b.op("Less", [s, b.const("zero", np.array(0, np.float32))])  # true on the seed-0 inputs: the conv branch runs
    z = b.name("if")
    b.nodes.append(helper.make_node("If", [c], [z], name=z, then_branch=then_g, else_branch=else_g))
    return b.model([("x", [1, 3, 16, 16])], [head(b, b.cbr(z, 8, 8), 8)])


HAND_BUILT = {
    "residual": residual_cnn,
    "concat": concat_cnn,
    "depthwise": depthwise_cnn,
    "nhwc": nhwc_cnn,
    "attention": attention_block,
    "lstm_gru": lstm_model,
    "if_branch": if_branch_cnn,
}

#: zoo builders at reduced sizes so the conformance suite stays fast
ZOO_KWARGS = {
    "resnet18": {"image_size": 64},
    "resnet50": {"image_size": 64},
    "mobilenet_v2": {"image_size": 64},
    "bert": {"seq_len": 16},
    "lstm": {},
    "tiny_cnn": {},
}


@pytest.fixture(scope="session")
def models():
    """name -> loaded IR graph (loaded once per session; passes never mutate their input)."""
    from symbiote.frontend import load
    from symbiote.frontend import zoo

    out = {}
    for name in zoo.names():
        if name in ZOO_KWARGS:
            out[f"zoo:{name}"] = load(zoo.build(name, **ZOO_KWARGS[name]))
    for name, fn in HAND_BUILT.items():
        out[f"hand:{name}"] = load(fn())
    return out
