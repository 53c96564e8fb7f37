"""``fold-bn``: fold BatchNormalization and per-channel Mul/Add into the neighbouring
Conv, ConvTranspose or Gemm (exact up to float rounding).

* Conv/ConvTranspose/Gemm -> BatchNormalization: weights scaled per output channel,
  bias = (b - mean) * gamma / sqrt(var + eps) + beta.
* Conv/ConvTranspose/Gemm -> Mul(per-channel or scalar constant): weights and bias scaled.
* Conv/ConvTranspose/Gemm -> Add(per-channel or scalar constant): added to the bias.
* BatchNormalization -> Conv (no padding, group 1): folded into the Conv's input side.

The folded layer takes over the output Value of what it absorbed (the model's output
names never change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from symbiote.ir.graph import Graph, Node, Value
from symbiote.passes.base import Pass

LAYERS = frozenset({"Conv", "ConvTranspose", "Gemm"})


def absorb(graph: Graph, producer: Node, consumer: Node) -> None:
    """``producer`` takes over ``consumer``'s output; ``consumer`` disappears.
    The producer's old output must be used by ``consumer`` only."""
    out = consumer.outputs[0]
    for i in range(len(consumer.inputs)):
        consumer.set_input(i, None)
    graph.nodes.remove(consumer)
    for extra in consumer.outputs[1:]:
        assert not extra.uses and not graph.is_output(extra)
    out.producer = producer
    producer.outputs[0] = out
    graph.prune_unused_constants()


def only_use(graph: Graph, v: Value) -> Node | None:
    """The single consumer of v (None if several, none, or v is a graph output)."""
    if graph.is_output(v) or len(v.uses) != 1:
        return None
    return v.uses[0][0]


def channel_layout(node: Node) -> tuple[int, int] | None:
    """(number of output channels K, output-channel axis of the weight) of a layer, or None."""
    w = node.input(1)
    if w is None or not w.is_const or w.const.ndim < 2:
        return None
    if node.onnx_op == "Conv":
        return w.shape[0], 0
    if node.onnx_op == "ConvTranspose":
        if int(node.attrs.get("group", 1)) != 1:
            return None
        return w.shape[1], 1
    if node.onnx_op == "Gemm":
        if w.const.ndim != 2 or float(node.attrs.get("alpha", 1.0)) != 1.0:
            return None
        return (w.shape[0], 0) if node.attrs.get("transB", 0) else (w.shape[1], 1)
    return None


def layer_bias(graph: Graph, node: Node, k: int) -> np.ndarray | None:
    """The layer's per-output-channel bias as a length-k float64 vector (None if not expressible)."""
    b = node.input(2)
    if b is None:
        return np.zeros(k)
    if not b.is_const:
        return None
    arr = np.asarray(b.const, dtype=np.float64)
    if node.onnx_op == "Gemm":
        arr = arr * float(node.attrs.get("beta", 1.0))
        if arr.ndim == 2 and arr.shape[0] != 1:
            return None
    try:
        return np.broadcast_to(arr.reshape(-1) if arr.size in (1, k) else arr, (k,)).astype(np.float64).copy()
    except ValueError:
        return None


def set_scale_shift(graph: Graph, node: Node, scale: np.ndarray, shift: np.ndarray) -> None:
    """Rewrite layer -> y*scale + shift (per output channel) into the layer's weights."""
    k, axis = channel_layout(node)
    w = node.input(1)
    bias = layer_bias(graph, node, k)
    shape = [1] * w.const.ndim
    shape[axis] = k
    dt = w.const.dtype
    new_w = (w.const * scale.astype(dt).reshape(shape)).astype(dt)
    new_b = (bias * scale + shift).astype(dt)
    node.set_input(1, graph.add_const(w.name, new_w))
    if len(node.inputs) < 3:
        node.inputs.append(None)
    b_name = node.input(2).name if node.input(2) is not None else f"{node.name}.bias"
    node.set_input(2, graph.add_const(b_name, new_b))
    if node.onnx_op == "Gemm":
        node.attrs["beta"] = 1.0


def per_channel(c: Value | None, k: int, rank: int) -> np.ndarray | None:
    """A constant broadcasting along the channel axis 1 of a rank-`rank` tensor, as a length-k vector."""
    if c is None or not c.is_const:
        return None
    a = np.asarray(c.const, dtype=np.float64)
    if a.size == 1:
        return np.full(k, float(a.reshape(-1)[0]))
    if a.ndim > rank:
        return None
    full = (1,) * (rank - a.ndim) + a.shape
    if rank < 2 or full[1] != k or any(d != 1 for i, d in enumerate(full) if i != 1):
        return None
    return a.reshape(-1).copy()


def _bn_scale_shift(bn: Node) -> tuple[np.ndarray, np.ndarray] | None:
    if len(bn.outputs) > 1 and any(o.uses for o in bn.outputs[1:]) or bn.attrs.get("training_mode", 0):
        return None
    ps = [bn.input(i) for i in range(1, 5)]
    if any(p is None or not p.is_const for p in ps):
        return None
    gamma, beta, mean, var = (np.asarray(p.const, dtype=np.float64) for p in ps)
    eps = float(bn.attrs.get("epsilon", 1e-5))
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def fold_after(graph: Graph, node: Node) -> bool:
    """Fold the single consumer of a layer's output (BN, Mul, Add) into it."""
    lay = channel_layout(node)
    if lay is None:
        return False
    k, _ = lay
    nxt = only_use(graph, node.outputs[0])
    if nxt is None or nxt.domain not in ("", "ai.onnx") or layer_bias(graph, node, k) is None:
        return False
    y = node.outputs[0]
    rank = len(y.shape) if y.shape is not None else 0
    if nxt.onnx_op == "BatchNormalization" and nxt.input(0) is y:
        ss = _bn_scale_shift(nxt)
        if ss is None or (y.shape is not None and len(y.shape) >= 2 and y.shape[1] != k):
            return False
        scale, shift = ss
    elif nxt.onnx_op in ("Mul", "Add"):
        other = nxt.input(1) if nxt.input(0) is y else nxt.input(0)
        vec = per_channel(other, k, rank)
        if vec is None or nxt.output.shape != y.shape:
            return False
        scale, shift = (vec, np.zeros(k)) if nxt.onnx_op == "Mul" else (np.ones(k), vec)
    else:
        return False
    set_scale_shift(graph, node, scale, shift)
    absorb(graph, node, nxt)
    return True


def fold_before(graph: Graph, bn: Node) -> bool:
    """BatchNormalization -> Conv(group 1, no padding): fold into the Conv's input side."""
    if bn.onnx_op != "BatchNormalization":
        return False
    conv = only_use(graph, bn.outputs[0])
    if conv is None or conv.onnx_op != "Conv" or conv.input(0) is not bn.outputs[0]:
        return False
    w = conv.input(1)
    if w is None or not w.is_const or int(conv.attrs.get("group", 1)) != 1 or any(conv.attrs.get("pads", [0])) \
            or conv.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return False
    ss = _bn_scale_shift(bn)
    if ss is None:
        return False
    scale, shift = ss
    k = w.shape[0]
    bias = layer_bias(graph, conv, k)
    if bias is None:
        return False
    wf = w.const.astype(np.float64)
    new_w = wf * scale.reshape(1, -1, *([1] * (wf.ndim - 2)))
    new_b = bias + np.einsum("kc...,c->k", wf, shift)
    x = bn.input(0)
    dt = w.const.dtype
    conv.set_input(1, graph.add_const(w.name, new_w.astype(dt)))
    if len(conv.inputs) < 3:
        conv.inputs.append(None)
    conv.set_input(2, graph.add_const(f"{conv.name}.bias", new_b.astype(dt)))
    conv.set_input(0, x)
    graph.remove_node(bn)
    graph.prune_unused_constants()
    return True


@dataclass(frozen=True)
class FoldBatchNorm(Pass):
    """Fold BatchNormalization and per-channel Mul/Add into the adjacent Conv/ConvTranspose/Gemm."""

    name: ClassVar[str] = "fold-bn"
    exact: ClassVar[bool] = True

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        folded = 0
        changed = True
        while changed:
            changed = False
            for node in list(graph.nodes):
                if node not in graph.nodes:
                    continue
                if node.onnx_op in LAYERS and fold_after(graph, node):
                    folded += 1
                    changed = True
                elif node.onnx_op == "BatchNormalization" and fold_before(graph, node):
                    folded += 1
                    changed = True
        return folded > 0, {"folded": folded}
