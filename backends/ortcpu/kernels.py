"""Kernels: what onnxruntime's CPU provider runs as one node, and their one-kernel models.

A :class:`Kernel` is an op name and integer dimensions; its ``signature`` is the cache key's
kernel part. :func:`build_model` writes it as a small ONNX model (float32, seeded weights)
that onnxruntime optimizes into the one kernel, so a fused kernel is measured fused:

* ``conv`` / ``conv_transpose``: ``N x C x H x W`` input, ``K`` filters of ``R x S``,
  ``groups``, strides, dilations; ``act=1`` adds a Relu (fused into a FusedConv).
* ``gemm``: a Gemm with bias (``act``: Relu, fused into a FusedGemm); ``matmul``: a MatMul
  of a ``[batch, M, C]`` input by a constant ``C x K`` weight, with ``bias`` (an Add,
  fused into a Gemm), ``scale`` (a Mul by a scalar, fused into a FusedMatMul) and ``act``;
  ``bmm``: a MatMul of two inputs ``[batch, M, C] x [batch, C, K]`` (``scale`` as above).
* ``lstm`` / ``gru`` / ``rnn``: the ONNX op over ``seq`` steps.
* vector ops: ``relu``, ``tanh``, ``erf`` (one input), ``relu_chain`` (``nodes`` Relus in a row), ``add``/``mul``/``div`` (two inputs,
  or one and a scalar constant), ``softmax`` and ``layernorm`` over a last axis,
  ``skip_layernorm`` (an Add then a LayerNormalization, fused), ``reduce_mean``,
  ``maxpool``; ``copy`` (a Transpose) and ``reshape`` (a Reshape: a node that moves no data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: the graph optimization level kernels are found and measured at, and whole models are
#: measured at (``ORT_ENABLE_EXTENDED``: every fusion, no NCHWc layout change)
LEVEL = "extended"
OPSET = 17


@dataclass(frozen=True)
class Kernel:
    """One kernel: ``op`` (a kind in the module doc) and its integer dimensions, in order."""

    op: str
    dims: tuple[tuple[str, int], ...]

    @property
    def signature(self) -> str:
        return self.op + "(" + ",".join(f"{k}={v}" for k, v in self.dims) + ")"

    def get(self, name: str, default: int = 0) -> int:
        return dict(self.dims).get(name, default)


def kernel(op: str, **dims: int) -> Kernel:
    return Kernel(op, tuple((k, int(v)) for k, v in dims.items()))


def session_options(threads: int = 1, parallel: bool = False, level: str = LEVEL):
    """Session options with explicit threads, execution mode and optimization level."""
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = int(threads)
    o.inter_op_num_threads = int(threads) if parallel else 1
    o.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    o.log_severity_level = 3
    return o


class _Builder:
    """Nodes, inputs and seeded initializers of a one-kernel model."""

    def __init__(self, seed: int) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.nph = helper, numpy_helper
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.inputs: list[tuple[str, list[int]]] = []
        self.last = ""

    def input(self, name: str, shape: Sequence[int]) -> str:
        self.inputs.append((name, [int(d) for d in shape]))
        return name

    def const(self, name: str, shape: Sequence[int]) -> str:
        self.inits.append(self.nph.from_array((self.rng.standard_normal(shape) * 0.1).astype(np.float32), name))
        return name

    def node(self, op: str, inputs: Sequence[str], **attrs) -> str:
        out = f"t{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(op, list(inputs), [out], **attrs))
        self.last = out
        return out

    def model(self, name: str):
        from onnx import TensorProto

        h = self.helper
        self.nodes[-1].output[0] = "y"
        graph = h.make_graph(self.nodes, name, [h.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in self.inputs],
                             [h.make_tensor_value_info("y", TensorProto.FLOAT, None)], self.inits)
        return h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], ir_version=8)


def _conv(b: _Builder, d: dict[str, int], transpose: bool) -> None:
    n, k, c, g = d["n"], d["k"], d["c"], d["g"]
    if transpose:
        h, w = d["p"], d["q"]
        wt = b.const("w", [c, k // g, d["r"], d["s"]])
    else:
        h = (d["p"] - 1) * d["sh"] + d["dh"] * (d["r"] - 1) + 1
        w = (d["q"] - 1) * d["sw"] + d["dw"] * (d["s"] - 1) + 1
        wt = b.const("w", [k, c // g, d["r"], d["s"]])
    b.node("ConvTranspose" if transpose else "Conv", [b.input("x", [n, c, h, w]), wt, b.const("b", [k])], group=g,
           strides=[d["sh"], d["sw"]], dilations=[d["dh"], d["dw"]], kernel_shape=[d["r"], d["s"]])


def _matmul(b: _Builder, d: dict[str, int], op: str) -> None:
    if op == "gemm":
        b.node("Gemm", [b.input("x", [d["m"], d["c"]]), b.const("w", [d["k"], d["c"]]), b.const("b", [d["k"]])], transB=1)
        return
    x = b.input("x", [d["batch"], d["m"], d["c"]])
    other = b.input("x2", [d["batch"], d["c"], d["k"]]) if op == "bmm" else b.const("w", [d["c"], d["k"]])
    t = b.node("MatMul", [x, other])
    if d.get("bias"):
        t = b.node("Add", [t, b.const("b", [d["k"]])])
    if d.get("scale"):
        b.node("Mul", [t, b.const("s", [])])


def _recurrent(b: _Builder, d: dict[str, int], op: str) -> None:
    gates, h = {"lstm": 4, "gru": 3, "rnn": 1}[op], d["hidden"]
    b.node(op.upper(), [b.input("x", [d["seq"], d["batch"], d["input"]]), b.const("w", [1, gates * h, d["input"]]),
                        b.const("r", [1, gates * h, h]), b.const("b", [1, 2 * gates * h])], hidden_size=h)


def _vector(b: _Builder, d: dict[str, int], op: str) -> None:
    if op in ("relu", "tanh", "erf"):
        b.node(op.capitalize(), [b.input("x", [d["elems"]])])
    elif op == "relu_chain":
        x = b.input("x", [d["elems"]])
        for _ in range(d["nodes"]):
            x = b.node("Relu", [x])
    elif op in ("add", "mul", "div"):
        x = b.input("x", [d["elems"]])
        other = b.input("x2", [d["elems"]]) if d["inputs"] == 2 else b.const("s", [1])
        b.node(op.capitalize(), [x, other])
    elif op in ("softmax", "layernorm", "skip_layernorm"):
        shape = [1, d["elems"] // d["axis"], d["axis"]]
        x = b.input("x", shape)
        if op == "softmax":
            b.node("Softmax", [x], axis=-1)
            return
        if op == "skip_layernorm":
            x = b.node("Add", [x, b.input("x2", shape)])
        b.node("LayerNormalization", [x, b.const("g", [d["axis"]]), b.const("bn", [d["axis"]])], axis=-1)
    elif op == "reduce_mean":
        b.node("ReduceMean", [b.input("x", [d["rows"], d["axis"]])], axes=[1], keepdims=0)
    elif op == "maxpool":
        b.node("MaxPool", [b.input("x", [1, 1, d["h"], d["w"]])], kernel_shape=[d["win"], d["win"]], strides=[d["stride"]] * 2)
    elif op in ("copy", "reshape"):
        e = d["elems"]
        cols = 64 if e % 64 == 0 else 1
        x = b.input("x", [e // cols, cols])
        if op == "copy":
            b.node("Transpose", [x], perm=[1, 0])
        else:
            b.node("Reshape", [x, _shape_const(b)])
    else:
        raise ValueError(f"unknown kernel op {op!r}")


def _shape_const(b: _Builder) -> str:
    b.inits.append(b.nph.from_array(np.array([-1], np.int64), "shape"))
    return "shape"


def build_model(k: Kernel, seed: int = 0):
    """A one-kernel ONNX model computing ``k`` (module doc)."""
    b = _Builder(seed)
    d = dict(k.dims)
    if k.op in ("conv", "conv_transpose"):
        _conv(b, d, k.op == "conv_transpose")
    elif k.op in ("gemm", "matmul", "bmm"):
        _matmul(b, d, k.op)
    elif k.op in ("lstm", "gru", "rnn"):
        _recurrent(b, d, k.op)
    else:
        _vector(b, d, k.op)
    if d.get("act"):
        b.node("Relu", [b.last])
    return b.model(k.op)
