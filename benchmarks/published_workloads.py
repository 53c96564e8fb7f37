"""The workloads of the papers benchmarks/published.py compares against, built with
``onnx.helper`` (layer shapes as the papers give them; where a paper gives only layer counts
and weight totals, the shapes are chosen to match those, and each :class:`WorkloadSpec`'s
note says so). Weights are zeros: the cost models read shapes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _model(nodes, inputs, outputs, inits, name):
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="benchmarks/published.py")
    return onnx.shape_inference.infer_shapes(model)


def _weight(name, shape):
    from onnx import numpy_helper

    # zeros compress nothing in ONNX but cost nothing to make; the cost models read shapes
    return numpy_helper.from_array(np.zeros(shape, np.float16), name)


def fc_stack(name: str, widths: Sequence[int], batch: int, relu: bool = True):
    """A stack of fully connected layers ``widths[0] -> widths[1] -> ...`` at ``batch``."""
    from onnx import TensorProto, helper

    nodes, inits = [], []
    x = "x"
    for i, (k, n) in enumerate(zip(widths[:-1], widths[1:])):
        inits.append(_weight(f"w{i}", (k, n)))
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"fc{i}"], name=f"fc{i}"))
        x = f"fc{i}"
        if relu:
            nodes.append(helper.make_node("Relu", [x], [f"relu{i}"], name=f"relu{i}"))
            x = f"relu{i}"
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [batch, widths[0]])
    out = helper.make_tensor_value_info(x, TensorProto.FLOAT16, None)
    return _model(nodes, [inp], [out], inits, name)


#: conv layers: (name, C, K, R, stride, pad, groups, max-pool 3x3/2 after it)
ALEXNET_CONV = (("conv1", 3, 96, 11, 4, 0, 1, True), ("conv2", 96, 256, 5, 1, 2, 2, True),
                ("conv3", 256, 384, 3, 1, 1, 1, False), ("conv4", 384, 384, 3, 1, 1, 2, False),
                ("conv5", 384, 256, 3, 1, 1, 2, False))


def conv_stack(name: str, layers, batch: int, hw: int, channels: int, pool: str = "max3s2"):
    """Conv + ReLU layers (and max pools where a layer asks for one) on ``batch x channels x hw x hw``."""
    from onnx import TensorProto, helper

    nodes, inits = [], []
    x = "x"
    for lname, c, k, r, stride, pad, groups, pool_after in layers:
        inits.append(_weight(f"{lname}_w", (k, c // groups, r, r)))
        nodes.append(helper.make_node("Conv", [x, f"{lname}_w"], [lname], name=lname, kernel_shape=[r, r],
                                      strides=[stride, stride], pads=[pad] * 4, group=groups))
        nodes.append(helper.make_node("Relu", [lname], [f"{lname}_relu"], name=f"{lname}_relu"))
        x = f"{lname}_relu"
        if pool_after:
            k_p, s_p = (3, 2) if pool == "max3s2" else (2, 2)
            nodes.append(helper.make_node("MaxPool", [x], [f"{lname}_pool"], name=f"{lname}_pool",
                                          kernel_shape=[k_p, k_p], strides=[s_p, s_p]))
            x = f"{lname}_pool"
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [batch, channels, hw, hw])
    out = helper.make_tensor_value_info(x, TensorProto.FLOAT16, None)
    return _model(nodes, [inp], [out], inits, name)


def vgg16_conv_layers():
    cfg = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
    layers, c = [], 3
    for block, (k, n) in enumerate(cfg, 1):
        for i in range(1, n + 1):
            layers.append((f"conv{block}_{i}", c, k, 3, 1, 1, 1, i == n and block < 5))
            c = k
    return layers


def lenet5(batch: int):
    """LeNet-5 (5x5 convs 1->6->16 on 32x32 with 2x2 pools, FC 400->120->84->10)."""
    from onnx import TensorProto, helper

    layers = (("conv1", 1, 6, 5, 1, 0, 1, True), ("conv2", 6, 16, 5, 1, 0, 1, True))
    conv = conv_stack("lenet5_conv", layers, batch, 32, 1, pool="max2s2")
    nodes, inits = list(conv.graph.node), list(conv.graph.initializer)
    nodes.append(helper.make_node("Flatten", ["conv2_pool"], ["flat"], name="flatten"))
    x = "flat"
    for i, (k, n) in enumerate(((400, 120), (120, 84), (84, 10))):
        inits.append(_weight(f"fc{i}_w", (k, n)))
        nodes.append(helper.make_node("MatMul", [x, f"fc{i}_w"], [f"fc{i}"], name=f"fc{i}"))
        x = f"fc{i}"
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [batch, 1, 32, 32])
    out = helper.make_tensor_value_info(x, TensorProto.FLOAT16, None)
    return _model(nodes, [inp], [out], inits, "lenet5")


@dataclass(frozen=True)
class WorkloadSpec:
    """A paper's workload: how to build it, its batch, which rows the paper times."""

    name: str
    build: Callable[[bool], Any]        # small -> onnx.ModelProto
    batch: int
    rows: str                           # "all" or "mac": the rows the figures count
    note: str


def _round(x: float, m: int = 8) -> int:
    return max(m, int(round(x / m)) * m)


def _square_fc(total_weights: float, layers: int, batch: int, small: bool):
    """``layers`` square FC layers holding ``total_weights`` weights together."""
    width = _round((total_weights / layers) ** 0.5)
    if small:
        width, layers = min(width, 256), min(layers, 3)
    return [width] * (layers + 1), batch if not small else min(batch, 16)


def _tpu_app(name: str, weights: float, fc_layers: int, batch: int, relu: bool):
    def build(small: bool):
        widths, b = _square_fc(weights, fc_layers, batch, small)
        return fc_stack(name, widths, b, relu=relu)
    return build


WORKLOADS: dict[str, WorkloadSpec] = {
    "tpu_mlp0": WorkloadSpec(
        "MLP0", _tpu_app("mlp0", 20e6, 5, 200, True), 200, "all",
        "Table 1: 5 FC layers, 20M weights, batch 200; the layer widths are not published: 5 square "
        "2000x2000 layers (20.0M weights), ReLU after each"),
    "tpu_mlp1": WorkloadSpec(
        "MLP1", _tpu_app("mlp1", 5e6, 4, 168, True), 168, "all",
        "Table 1: 4 FC layers, 5M weights, batch 168; widths not published: 4 square 1120x1120 layers "
        "(5.0M weights), ReLU after each"),
    "tpu_lstm0": WorkloadSpec(
        "LSTM0", _tpu_app("lstm0", 52e6, 24, 64, False), 64, "all",
        "Table 1: 24 FC + 34 vector layers, 52M weights, batch 64 (ops per weight byte = batch: each "
        "weight used once per example); built as 24 square 1472x1472 FC layers (52.0M weights); the "
        "34 vector layers (sigmoid, tanh, products) are left out"),
    "tpu_lstm1": WorkloadSpec(
        "LSTM1", _tpu_app("lstm1", 34e6, 37, 96, False), 96, "all",
        "Table 1: 37 FC + 19 vector layers, 34M weights, batch 96; built as 37 square 960x960 FC "
        "layers (34.1M weights), vector layers left out"),
    "eyeriss_alexnet": WorkloadSpec(
        "AlexNet CONV1-5", lambda small: conv_stack("alexnet_conv", ALEXNET_CONV, 1 if small else 4,
                                                    227, 3), 4, "mac",
        "AlexNet's five CONV layers as Eyeriss runs them (grouped CONV2/4/5, 227x227 input, 666M MACs "
        "per image, ISSCC'16), batch 4; ReLU and max pools built but not timed (the paper times CONV layers)"),
    "eyeriss_vgg16": WorkloadSpec(
        "VGG-16 CONV", lambda small: conv_stack("vgg16_conv", vgg16_conv_layers()[: 3 if small else 13],
                                                1 if small else 3, 56 if small else 224, 3, pool="max2s2"),
        3, "mac",
        "VGG-16's 13 CONV layers at 224x224 (15.3G MACs per image), batch 3; pools not timed"),
    "shidiannao_lenet5": WorkloadSpec(
        "LeNet-5", lambda small: lenet5(1), 1, "all",
        "LeNet-5 (one of the paper's ten benchmarks; the 320 mW is the layout's power over its "
        "benchmarks), batch 1, everything timed"),
}

