"""Built-in model builders: common architectures as ONNX, with seeded random weights.

``build(name, **kwargs) -> onnx.ModelProto`` builds a model with the ONNX helper API, no
download; ``names()`` lists the builders. ``symbiote.load("zoo:resnet50")`` calls
``build("resnet50")``. Node and value names follow the PyTorch module names
(``layer1.0.conv1``, ``encoder.layer.0.attention.self.query``) so tables read like the
source model; weights are initialisers named ``<module>.weight`` / ``<module>.bias``.

The graphs look like what ``torch.onnx.export`` produces: Conv followed by a separate
BatchNormalization (not folded), Relu / Clip(0, 6), residual Add, GlobalAveragePool,
Flatten, Gemm with ``transB=1``; BERT uses Gather embeddings, MatMul + Add projections,
LayerNormalization and GELU written with Erf.

Weights use He (Kaiming) initialisation for convolutions and ``std = 1/sqrt(fan_in)``
for classifiers so activations stay finite; batch-norm statistics are random but close
to identity so that folding passes have something non-trivial to fold. The same seed
gives bit-identical models.

Published sizes the builders reproduce (tests/frontend/test_zoo.py checks them):
  * ResNet-18 at 224x224: 1.82 GMACs, 11.7 M params; ResNet-50 (v1.5, stride on the
    3x3 conv): 4.09 GMACs, 25.6 M params -- He et al., "Deep Residual Learning for Image
    Recognition", CVPR 2016, Table 1 (FLOPs there are multiply-adds); torchvision
    model cards for the v1.5 figures.
  * MobileNetV2 1.0 at 224x224: 300 M MACs, 3.4 M params -- Sandler et al.,
    "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018, Table 4.
  * BERT-base: 12 layers, hidden 768, 12 heads, intermediate 3072, vocabulary 30522,
    512 positions, 110 M params -- Devlin et al., "BERT", NAACL 2019, section 3.

``gpt_decoder`` (a GPT-style decoder with or without a KV cache) lives in ``zoo_gpt.py``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from symbiote.errors import SymbioteError

#: the default opset of the built models (LayerNormalization needs 17)
DEFAULT_OPSET = 17
#: ONNX IR version written by the builders (opset 17 <-> IR 8; onnxruntime reads it)
IR_VERSION = 8

Dim = int | str


class ZooError(SymbioteError):
    """An unknown zoo model name or a bad builder argument."""


# --------------------------------------------------------------------------- builder


class _Builder:
    """Accumulates nodes and initialisers; every helper returns output value names."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._init_names: set[str] = set()

    # ---- weights
    def tensor(self, name: str, array: np.ndarray) -> str:
        if name in self._init_names:
            raise ValueError(f"duplicate initializer {name}")
        self._init_names.add(name)
        self.inits.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def normal(self, name: str, shape: Sequence[int], std: float) -> str:
        w = self.rng.standard_normal(tuple(shape), dtype=np.float32)
        w *= np.float32(std)
        return self.tensor(name, w)

    def he(self, name: str, shape: Sequence[int], fan_in: int) -> str:
        """Kaiming-normal weights for a layer followed by ReLU (He et al., ICCV 2015)."""
        return self.normal(name, shape, math.sqrt(2.0 / fan_in))

    def uniform(self, name: str, shape: Sequence[int], lo: float, hi: float) -> str:
        return self.tensor(name, self.rng.uniform(lo, hi, size=tuple(shape)).astype(np.float32))

    def const(self, name: str, values: Any, dtype: Any = np.int64) -> str:
        return self.tensor(name, np.asarray(values, dtype=dtype))

    # ---- nodes
    def node(self, op: str, inputs: Sequence[str], name: str, *, n_out: int = 1, out: Sequence[str] | None = None, **attrs: Any) -> Any:
        outs = list(out) if out is not None else ([f"{name}_out"] if n_out == 1 else [f"{name}_out{i}" for i in range(n_out)])
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, **attrs))
        return outs[0] if len(outs) == 1 else outs

    # ---- layers
    def conv(self, x: str, cin: int, cout: int, k: int, name: str, *, stride: int = 1, groups: int = 1, bias: bool = False) -> str:
        pad = k // 2
        w = self.he(f"{name}.weight", (cout, cin // groups, k, k), fan_in=(cin // groups) * k * k)
        ins = [x, w]
        if bias:
            ins.append(self.normal(f"{name}.bias", (cout,), 0.01))
        return self.node("Conv", ins, name, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=groups, dilations=[1, 1])

    def batchnorm(self, x: str, c: int, name: str, *, gamma_scale: float = 1.0) -> str:
        ins = [
            x,
            self.uniform(f"{name}.weight", (c,), 0.8 * gamma_scale, 1.2 * gamma_scale),
            self.normal(f"{name}.bias", (c,), 0.05),
            self.normal(f"{name}.running_mean", (c,), 0.05),
            self.uniform(f"{name}.running_var", (c,), 0.8, 1.2),
        ]
        return self.node("BatchNormalization", ins, name, epsilon=1e-5, momentum=0.9)

    def relu(self, x: str, name: str) -> str:
        return self.node("Relu", [x], name)

    def relu6(self, x: str, name: str) -> str:
        lo = self._scalar_const("relu6.min", 0.0)
        hi = self._scalar_const("relu6.max", 6.0)
        return self.node("Clip", [x, lo, hi], name)

    def _scalar_const(self, name: str, value: float) -> str:
        if name not in self._init_names:
            self.tensor(name, np.array(value, dtype=np.float32))
        return name

    def conv_bn(self, x: str, cin: int, cout: int, k: int, conv_name: str, bn_name: str, *, stride: int = 1, groups: int = 1, act: str | None = "relu", act_name: str | None = None, gamma_scale: float = 1.0) -> str:
        y = self.conv(x, cin, cout, k, conv_name, stride=stride, groups=groups)
        y = self.batchnorm(y, cout, bn_name, gamma_scale=gamma_scale)
        if act == "relu":
            y = self.relu(y, act_name or f"{conv_name}.relu")
        elif act == "relu6":
            y = self.relu6(y, act_name or f"{conv_name}.relu6")
        return y

    def classifier(self, x: str, cin: int, classes: int, name: str) -> str:
        """GlobalAveragePool -> Flatten -> Gemm(transB=1), as torchvision exports."""
        y = self.node("GlobalAveragePool", [x], "avgpool")
        y = self.node("Flatten", [y], "flatten", axis=1)
        w = self.normal(f"{name}.weight", (classes, cin), 1.0 / math.sqrt(cin))
        b = self.normal(f"{name}.bias", (classes,), 0.01)
        return self.node("Gemm", [y, w, b], name, out=["logits"], alpha=1.0, beta=1.0, transB=1)

    def linear(self, x: str, cin: int, cout: int, name: str, *, std: float) -> str:
        """MatMul with a [cin, cout] weight then Add bias, as PyTorch exports nn.Linear on 3-D input."""
        w = self.normal(f"{name}.weight", (cin, cout), std)
        b = self.normal(f"{name}.bias", (cout,), std)
        y = self.node("MatMul", [x, w], f"{name}.matmul")
        return self.node("Add", [y, b], f"{name}.add")

    def layernorm(self, x: str, c: int, name: str, eps: float = 1e-12) -> str:
        g = self.uniform(f"{name}.weight", (c,), 0.9, 1.1)
        b = self.normal(f"{name}.bias", (c,), 0.02)
        return self.node("LayerNormalization", [x, g, b], name, axis=-1, epsilon=eps)

    # ---- model
    def model(self, graph_name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], opset: int, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, initializer=self.inits, doc_string=doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="symbiote.zoo", ir_version=IR_VERSION)
        model.model_version = 1
        return model


def _vi(name: str, elem: int, shape: Sequence[Dim]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape))


def _check_opset(opset: int) -> int:
    if not 17 <= int(opset) <= onnx.defs.onnx_opset_version():
        raise ZooError(f"zoo: opset={opset} is not supported (17 to {onnx.defs.onnx_opset_version()})")
    return int(opset)


def _check_positive(**kw: Any) -> None:
    for k, v in kw.items():
        if isinstance(v, str):
            continue
        if not isinstance(v, int | np.integer) or v <= 0:
            raise ZooError(f"zoo: {k}={v!r} must be a positive integer")


# --------------------------------------------------------------------------- ResNet

_RESNET_LAYERS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3))}


def _resnet(depth: int, *, seed: int = 0, batch: Dim = 1, image_size: int = 224, num_classes: int = 1000, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """torchvision's ResNet (v1.5: the stride sits on the 3x3 conv of a bottleneck)."""
    _check_positive(batch=batch, image_size=image_size, num_classes=num_classes)
    opset = _check_opset(opset)
    kind, blocks = _RESNET_LAYERS[depth]
    expansion = 4 if kind == "bottleneck" else 1
    b = _Builder(seed)
    x = b.conv_bn("pixel_values", 3, 64, 7, "conv1", "bn1", stride=2, act_name="relu")
    x = b.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for li, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
        for bi in range(n):
            stride = 2 if (bi == 0 and li > 1) else 1
            p = f"layer{li}.{bi}"
            cout = width * expansion
            # the last BN of each residual branch starts small (as in "zero-init residual",
            # Goyal et al. 2017, but not zero) so deep stacks keep finite activations
            if kind == "basic":
                y = b.conv_bn(x, cin, width, 3, f"{p}.conv1", f"{p}.bn1", stride=stride, act_name=f"{p}.relu1")
                y = b.conv_bn(y, width, width, 3, f"{p}.conv2", f"{p}.bn2", act=None, gamma_scale=0.5)
            else:
                y = b.conv_bn(x, cin, width, 1, f"{p}.conv1", f"{p}.bn1", act_name=f"{p}.relu1")
                y = b.conv_bn(y, width, width, 3, f"{p}.conv2", f"{p}.bn2", stride=stride, act_name=f"{p}.relu2")
                y = b.conv_bn(y, width, cout, 1, f"{p}.conv3", f"{p}.bn3", act=None, gamma_scale=0.5)
            skip = x
            if stride != 1 or cin != cout:
                skip = b.conv_bn(x, cin, cout, 1, f"{p}.downsample.0", f"{p}.downsample.1", stride=stride, act=None)
            x = b.node("Add", [y, skip], f"{p}.add")
            x = b.relu(x, f"{p}.relu")
            cin = cout
    b.classifier(x, cin, num_classes, "fc")
    return b.model(
        f"resnet{depth}",
        [_vi("pixel_values", TensorProto.FLOAT, [batch, 3, image_size, image_size])],
        [_vi("logits", TensorProto.FLOAT, [batch, num_classes])],
        opset,
        f"ResNet-{depth} (torchvision layout), random weights seed={seed}",
    )


def resnet18(**kw: Any) -> onnx.ModelProto:
    """ResNet-18: 1.82 GMACs, 11.7 M params at 224x224."""
    return _resnet(18, **kw)


def resnet50(**kw: Any) -> onnx.ModelProto:
    """ResNet-50 v1.5: 4.09 GMACs, 25.6 M params at 224x224."""
    return _resnet(50, **kw)


# --------------------------------------------------------------------------- MobileNetV2

#: (expansion t, channels c, repeats n, stride s) -- Sandler et al. 2018, Table 2
_MBV2_CFG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round channel counts as the reference implementation does (torchvision _make_divisible)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def mobilenet_v2(*, seed: int = 0, batch: Dim = 1, image_size: int = 224, num_classes: int = 1000, width_mult: float = 1.0, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """MobileNetV2 (torchvision layout): 300 M MACs, 3.5 M params at 1.0 / 224x224."""
    _check_positive(batch=batch, image_size=image_size, num_classes=num_classes)
    if not width_mult > 0:
        raise ZooError(f"zoo: width_mult={width_mult!r} must be positive")
    opset = _check_opset(opset)
    b = _Builder(seed)
    cin = _make_divisible(32 * width_mult)
    last = _make_divisible(1280 * max(1.0, width_mult))
    x = b.conv_bn("pixel_values", 3, cin, 3, "features.0.0", "features.0.1", stride=2, act="relu6", act_name="features.0.2")
    idx = 1
    for t, c, n, s in _MBV2_CFG:
        cout = _make_divisible(c * width_mult)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = int(round(cin * t))
            p = f"features.{idx}.conv"
            y = x
            j = 0
            if t != 1:
                y = b.conv_bn(y, cin, hidden, 1, f"{p}.{j}.0", f"{p}.{j}.1", act="relu6", act_name=f"{p}.{j}.2")
                j += 1
            y = b.conv_bn(y, hidden, hidden, 3, f"{p}.{j}.0", f"{p}.{j}.1", stride=stride, groups=hidden, act="relu6", act_name=f"{p}.{j}.2")
            y = b.conv_bn(y, hidden, cout, 1, f"{p}.{j + 1}", f"{p}.{j + 2}", act=None, gamma_scale=0.5)
            if stride == 1 and cin == cout:
                y = b.node("Add", [x, y], f"features.{idx}.add")
            x = y
            cin = cout
            idx += 1
    x = b.conv_bn(x, cin, last, 1, f"features.{idx}.0", f"features.{idx}.1", act="relu6", act_name=f"features.{idx}.2")
    b.classifier(x, last, num_classes, "classifier.1")
    return b.model(
        "mobilenet_v2",
        [_vi("pixel_values", TensorProto.FLOAT, [batch, 3, image_size, image_size])],
        [_vi("logits", TensorProto.FLOAT, [batch, num_classes])],
        opset,
        f"MobileNetV2 width {width_mult} (torchvision layout), random weights seed={seed}",
    )


# --------------------------------------------------------------------------- tiny CNN


def tiny_cnn(*, seed: int = 0, batch: Dim = 1, image_size: int = 32, channels: Sequence[int] = (16, 32, 64), num_classes: int = 10, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """A few Conv-BN-ReLU(-MaxPool) stages, a residual block, GlobalAveragePool, Gemm."""
    _check_positive(batch=batch, image_size=image_size, num_classes=num_classes)
    opset = _check_opset(opset)
    b = _Builder(seed)
    x, cin = "pixel_values", 3
    for i, c in enumerate(channels):
        x = b.conv_bn(x, cin, c, 3, f"stage{i}.conv", f"stage{i}.bn", act_name=f"stage{i}.relu")
        if i < len(channels) - 1:
            x = b.node("MaxPool", [x], f"stage{i}.pool", kernel_shape=[2, 2], strides=[2, 2])
        cin = c
    y = b.conv_bn(x, cin, cin, 3, "res.conv", "res.bn", act=None, gamma_scale=0.5)
    x = b.relu(b.node("Add", [x, y], "res.add"), "res.relu")
    b.classifier(x, cin, num_classes, "fc")
    return b.model(
        "tiny_cnn",
        [_vi("pixel_values", TensorProto.FLOAT, [batch, 3, image_size, image_size])],
        [_vi("logits", TensorProto.FLOAT, [batch, num_classes])],
        opset,
        f"tiny CNN, random weights seed={seed}",
    )


# --------------------------------------------------------------------------- LSTM


def lstm(*, seed: int = 0, batch: Dim = 1, seq_len: int = 16, input_size: int = 32, hidden_size: int = 64, num_layers: int = 2, num_classes: int = 10, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Stacked unidirectional LSTM (ONNX LSTM nodes, layout 0: [seq, batch, feature]) + Gemm head on the last hidden state."""
    _check_positive(batch=batch, seq_len=seq_len, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, num_classes=num_classes)
    opset = _check_opset(opset)
    b = _Builder(seed)
    h = hidden_size
    std = 1.0 / math.sqrt(h)  # PyTorch's nn.LSTM init bound, used as a std here
    x, cin = "x", input_size
    axis1 = b.const("squeeze_axis1", [1])
    axis0 = b.const("squeeze_axis0", [0])
    y_h = ""
    for layer in range(num_layers):
        p = f"lstm.{layer}"
        w = b.normal(f"{p}.W", (1, 4 * h, cin), std)
        r = b.normal(f"{p}.R", (1, 4 * h, h), std)
        bias = b.normal(f"{p}.B", (1, 8 * h), std)
        y, y_h, _ = b.node("LSTM", [x, w, r, bias], p, out=[f"{p}.Y", f"{p}.Y_h", f"{p}.Y_c"], hidden_size=h, direction="forward")
        x = b.node("Squeeze", [y, axis1], f"{p}.squeeze")  # [seq, 1, batch, h] -> [seq, batch, h]
        cin = h
    last = b.node("Squeeze", [y_h, axis0], "last_hidden")  # [1, batch, h] -> [batch, h]
    wfc = b.normal("fc.weight", (num_classes, h), 1.0 / math.sqrt(h))
    bfc = b.normal("fc.bias", (num_classes,), 0.01)
    b.node("Gemm", [last, wfc, bfc], "fc", out=["logits"], transB=1)
    return b.model(
        "lstm",
        [_vi("x", TensorProto.FLOAT, [seq_len, batch, input_size])],
        [_vi("logits", TensorProto.FLOAT, [batch, num_classes])],
        opset,
        f"{num_layers}-layer LSTM, random weights seed={seed}",
    )


# --------------------------------------------------------------------------- BERT


BERT_HEADS = ("classifier", "encoder")


def bert(*, seed: int = 0, batch: Dim = 1, seq_len: int = 32, layers: int = 2, hidden: int = 128, heads: int = 2, intermediate: int | None = None, vocab_size: int = 30522, max_positions: int = 512, type_vocab_size: int = 2, head: str = "classifier", num_labels: int = 2, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """A BERT-style model (HuggingFace layout): embeddings via Gather, post-LN blocks, pooler.

    Input ``input_ids`` int64 [batch, seq_len]. ``head`` says what it outputs:

    * ``"classifier"`` (default, HuggingFace BertForSequenceClassification as its ONNX export
      writes it): a linear ``classifier`` on the pooled first token, output ``logits``
      [batch, num_labels]. The residual stream's hidden size is internal to the model, so it
      can be pruned like any other width;
    * ``"encoder"`` (BertModel): outputs ``last_hidden_state`` [batch, seq_len, hidden] and
      ``pooler_output`` [batch, hidden]; the hidden size is then part of the model's interface.

    ``intermediate`` defaults to 4 * hidden. With ``layers=12, hidden=768, heads=12,
    intermediate=3072`` the encoder has 109.5 M params.
    """
    intermediate = 4 * hidden if intermediate is None else intermediate
    _check_positive(batch=batch, seq_len=seq_len, layers=layers, hidden=hidden, heads=heads, intermediate=intermediate, vocab_size=vocab_size, max_positions=max_positions, type_vocab_size=type_vocab_size)
    if hidden % heads:
        raise ZooError(f"zoo: hidden={hidden} is not divisible by heads={heads}")
    if head not in BERT_HEADS:
        raise ZooError(f"zoo: bert head={head!r} is not one of {', '.join(BERT_HEADS)}")
    _check_positive(num_labels=num_labels)
    if seq_len > max_positions:
        raise ZooError(f"zoo: seq_len={seq_len} exceeds max_positions={max_positions}")
    opset = _check_opset(opset)
    head_dim = hidden // heads
    std = 0.02  # BERT's initializer_range (Devlin et al. 2019, released config)
    b = _Builder(seed)
    word = b.normal("embeddings.word_embeddings.weight", (vocab_size, hidden), std)
    pos = b.normal("embeddings.position_embeddings.weight", (max_positions, hidden), std)
    typ = b.normal("embeddings.token_type_embeddings.weight", (type_vocab_size, hidden), std)
    pos_ids = b.const("embeddings.position_ids", np.arange(seq_len, dtype=np.int64)[None, :])
    type_ids = b.const("embeddings.token_type_ids", np.zeros((1, seq_len), dtype=np.int64))
    e = b.node("Gather", [word, "input_ids"], "embeddings.word_embeddings", axis=0)
    e = b.node("Add", [e, b.node("Gather", [typ, type_ids], "embeddings.token_type_embeddings", axis=0)], "embeddings.add_type")
    e = b.node("Add", [e, b.node("Gather", [pos, pos_ids], "embeddings.position_embeddings", axis=0)], "embeddings.add_position")
    x = b.layernorm(e, hidden, "embeddings.LayerNorm")
    split_shape = b.const("attention.split_heads_shape", [0, seq_len, heads, head_dim])
    merge_shape = b.const("attention.merge_heads_shape", [0, seq_len, hidden])
    scale = b.tensor("attention.scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    half = b.tensor("gelu.half", np.array(0.5, dtype=np.float32))
    one = b.tensor("gelu.one", np.array(1.0, dtype=np.float32))
    rsqrt2 = b.tensor("gelu.rsqrt2", np.array(1.0 / math.sqrt(2.0), dtype=np.float32))
    for i in range(layers):
        p = f"encoder.layer.{i}"
        a = f"{p}.attention.self"

        def heads_of(t: str, which: str, perm: list[int]) -> str:
            t = b.node("Reshape", [t, split_shape], f"{a}.{which}.split_heads")
            return b.node("Transpose", [t], f"{a}.{which}.transpose", perm=perm)

        q = heads_of(b.linear(x, hidden, hidden, f"{a}.query", std=std), "query", [0, 2, 1, 3])
        k = heads_of(b.linear(x, hidden, hidden, f"{a}.key", std=std), "key", [0, 2, 3, 1])
        v = heads_of(b.linear(x, hidden, hidden, f"{a}.value", std=std), "value", [0, 2, 1, 3])
        s = b.node("MatMul", [q, k], f"{a}.scores")  # [B, H, S, S]
        s = b.node("Mul", [s, scale], f"{a}.scale")
        s = b.node("Softmax", [s], f"{a}.softmax", axis=-1)
        c = b.node("MatMul", [s, v], f"{a}.context")  # [B, H, S, D]
        c = b.node("Transpose", [c], f"{a}.context.transpose", perm=[0, 2, 1, 3])
        c = b.node("Reshape", [c, merge_shape], f"{a}.merge_heads")
        o = b.linear(c, hidden, hidden, f"{p}.attention.output.dense", std=std)
        x = b.layernorm(b.node("Add", [o, x], f"{p}.attention.output.residual"), hidden, f"{p}.attention.output.LayerNorm")
        f = b.linear(x, hidden, intermediate, f"{p}.intermediate.dense", std=std)
        # GELU(x) = 0.5 x (1 + erf(x / sqrt 2)), as torch.onnx exports it before opset 20
        g = b.node("Erf", [b.node("Mul", [f, rsqrt2], f"{p}.intermediate.gelu.div")], f"{p}.intermediate.gelu.erf")
        g = b.node("Add", [g, one], f"{p}.intermediate.gelu.add")
        g = b.node("Mul", [b.node("Mul", [f, half], f"{p}.intermediate.gelu.half"), g], f"{p}.intermediate.gelu")
        o = b.linear(g, intermediate, hidden, f"{p}.output.dense", std=std)
        x = b.layernorm(b.node("Add", [o, x], f"{p}.output.residual"), hidden, f"{p}.output.LayerNorm")
    b.nodes[-1].output[0] = "last_hidden_state"
    x = "last_hidden_state"
    first = b.node("Gather", [x, b.const("pooler.first_token", np.array(0, dtype=np.int64))], "pooler.first_token", axis=1)  # [B, hidden]
    wp = b.normal("pooler.dense.weight", (hidden, hidden), std)
    bp = b.normal("pooler.dense.bias", (hidden,), std)
    pooled = b.node("Gemm", [first, wp, bp], "pooler.dense", transB=1)
    if head == "encoder":
        b.node("Tanh", [pooled], "pooler.activation", out=["pooler_output"])
        outputs = [_vi("last_hidden_state", TensorProto.FLOAT, [batch, seq_len, hidden]), _vi("pooler_output", TensorProto.FLOAT, [batch, hidden])]
    else:
        pooled = b.node("Tanh", [pooled], "pooler.activation")
        wc = b.normal("classifier.weight", (num_labels, hidden), std)
        bc = b.normal("classifier.bias", (num_labels,), std)
        b.node("Gemm", [pooled, wc, bc], "classifier", out=["logits"], transB=1)
        outputs = [_vi("logits", TensorProto.FLOAT, [batch, num_labels])]
    return b.model(
        "bert",
        [_vi("input_ids", TensorProto.INT64, [batch, seq_len])],
        outputs,
        opset,
        f"BERT {head} {layers}x{hidden} heads={heads} ffn={intermediate}, random weights seed={seed}",
    )


def bert_base(**kw: Any) -> onnx.ModelProto:
    """BERT-base sizes (12 layers, hidden 768, 12 heads, FFN 3072, seq 128): 109.5 M params."""
    cfg: dict[str, Any] = dict(layers=12, hidden=768, heads=12, intermediate=3072, seq_len=128)
    cfg.update(kw)
    return bert(**cfg)


# --------------------------------------------------------------------------- registry

_BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "bert": bert,
    "bert_base": bert_base,
    "lstm": lstm,
    "tiny_cnn": tiny_cnn,
}


def gpt_decoder(**kw: Any) -> onnx.ModelProto:
    """A GPT-style decoder-only model, with or without a KV cache (:mod:`symbiote.frontend.zoo_gpt`,
    which builds on this module's ``_Builder``, hence imported on use)."""
    return _gpt_decoder()(**kw)


def _gpt_decoder() -> Callable[..., onnx.ModelProto]:
    from symbiote.frontend.zoo_gpt import gpt_decoder as builder

    return builder


_BUILDERS["gpt_decoder"] = gpt_decoder


def names() -> tuple[str, ...]:
    """The names ``build`` accepts (also usable as ``zoo:NAME`` wherever a model path is)."""
    return tuple(_BUILDERS)


def build(name: str, **kwargs: Any) -> onnx.ModelProto:
    """Build a zoo model by name with seeded random weights (``seed=0`` by default)."""
    key = name.strip().lower().replace("-", "_")
    if key.startswith("zoo:"):
        key = key[4:]
    builder = _BUILDERS.get(key)
    if builder is None:
        raise ZooError(f"zoo: unknown model {name!r}; known: {', '.join(names())}")
    allowed = _accepted_kwargs(builder)
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ZooError(f"zoo: model {key!r} takes no argument(s) {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}")
    return builder(**kwargs)


def _accepted_kwargs(builder: Callable[..., onnx.ModelProto]) -> set[str]:
    fn = {resnet18: _resnet, resnet50: _resnet, bert_base: bert}.get(builder, builder)
    if fn is gpt_decoder:
        fn = _gpt_decoder()
    return {p.name for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


__all__ = ["build", "names", "ZooError", "DEFAULT_OPSET", "resnet18", "resnet50", "mobilenet_v2", "bert", "bert_base", "lstm", "tiny_cnn",
           "gpt_decoder"]
