"""``fuse-bias`` and ``fuse-activations``.

* ``fuse-bias``: Add(per-channel constant) after Conv/ConvTranspose/Gemm goes into the
  layer's bias; MatMul(2-D x, constant W) + Add(constant b) becomes Gemm(x, W, b).
* ``fuse-activations``: an activation that directly follows a layer is *annotated*, not
  removed: the producer gets ``meta["fused_activation"]`` (the ONNX op type: Relu, Clip,
  LeakyRelu, Sigmoid, HardSwish, HardSigmoid, Tanh, Gelu, ...; ``"Swish"`` for the SiLU
  pattern x*Sigmoid(x), ``"Gelu"`` for the Erf pattern) and every activation node keeps
  its place in the graph with ``meta["fused_into"] = producer name``. So save() writes the
  same standard ONNX ops and the result is exact; cost models skip nodes with
  ``fused_into`` and charge no memory round trip for them. A bias Add between a MatMul and
  its activation is marked ``fused_into`` the MatMul as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from symbiote.ir import ops
from symbiote.ir.graph import Graph, Node, Value
from symbiote.passes.base import Pass
from symbiote.passes.fold_bn import channel_layout, fold_after, only_use

SIMPLE_ACTIVATIONS = frozenset({
    "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "HardSigmoid", "Tanh", "Gelu", "Elu", "Selu",
    "Softplus", "Mish", "Celu", "ThresholdedRelu", "PRelu", "Swish", "FastGelu", "QuickGelu",
})
PRODUCERS = frozenset({ops.CONV, ops.CONV_TRANSPOSE, ops.GEMM, ops.MATMUL, ops.NORM, ops.ELEMENTWISE, ops.POOL})


def _fuse_matmul_add(graph: Graph, mm: Node) -> bool:
    a, w = mm.input(0), mm.input(1)
    if a is None or a.shape is None or len(a.shape) != 2 or w is None or not w.is_const or w.const.ndim != 2:
        return False
    add = only_use(graph, mm.outputs[0])
    if add is None or add.onnx_op != "Add":
        return False
    y = mm.outputs[0]
    b = add.input(1) if add.input(0) is y else add.input(0)
    n = w.shape[1]
    if b is None or not b.is_const or b.const.size not in (1, n) or add.output.shape != y.shape:
        return False
    bias = np.broadcast_to(np.asarray(b.const).reshape(-1), (n,)).astype(w.const.dtype)
    gemm = graph.add_node(ops.GEMM, "Gemm", [a, w, graph.add_const(f"{mm.name}.bias", bias)], ["_tmp"], name=mm.name + "_gemm", before=mm, meta=dict(mm.meta))
    tmp = gemm.outputs[0]
    gemm.outputs[0] = add.outputs[0]
    add.outputs[0].producer = gemm
    add.outputs[0] = tmp
    tmp.producer = add
    for i in range(len(add.inputs)):
        add.set_input(i, None)
    graph.nodes.remove(add)
    for i in range(len(mm.inputs)):
        mm.set_input(i, None)
    graph.nodes.remove(mm)
    graph.prune_unused_constants()
    return True


@dataclass(frozen=True)
class FuseBias(Pass):
    """Bias Add into Conv/ConvTranspose/Gemm; MatMul(2-D) + Add into Gemm."""

    name: ClassVar[str] = "fuse-bias"
    exact: ClassVar[bool] = True

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        fused = gemms = 0
        for node in list(graph.nodes):
            if node not in graph.nodes:
                continue
            if node.onnx_op == "MatMul" and _fuse_matmul_add(graph, node):
                gemms += 1
            elif channel_layout(node) is not None and node.onnx_op in ("Conv", "ConvTranspose", "Gemm"):
                nxt = only_use(graph, node.outputs[0])
                if nxt is not None and nxt.onnx_op == "Add" and fold_after(graph, node):
                    fused += 1
        return (fused + gemms) > 0, {"bias_adds": fused, "matmul_to_gemm": gemms}


def _is_const(v: Value | None, target: float | None = None, tol: float = 1e-3) -> bool:
    if v is None or not v.is_const or v.const.size != 1:
        return False
    return target is None or abs(float(np.asarray(v.const).reshape(-1)[0]) - target) < tol


def _other(node: Node, v: Value) -> Value | None:
    return node.input(1) if node.input(0) is v else node.input(0)


def _silu(graph: Graph, y: Value) -> list[Node] | None:
    cons = y.consumers()
    if len(cons) != 2 or graph.is_output(y):
        return None
    sig = next((c for c in cons if c.onnx_op == "Sigmoid"), None)
    mul = next((c for c in cons if c.onnx_op == "Mul"), None)
    if sig is None or mul is None or only_use(graph, sig.output) is not mul:
        return None
    return [sig, mul]


def _gelu(graph: Graph, y: Value) -> list[Node] | None:
    cons = y.consumers()
    if len(cons) != 2 or graph.is_output(y):
        return None
    d = next((c for c in cons if (c.onnx_op == "Div" and c.input(0) is y and _is_const(c.input(1), 2 ** 0.5))
              or (c.onnx_op == "Mul" and _is_const(_other(c, y), 2 ** -0.5))), None)
    if d is None:
        return None
    e = only_use(graph, d.output)
    if e is None or e.onnx_op != "Erf":
        return None
    a = only_use(graph, e.output)
    if a is None or a.onnx_op != "Add" or not _is_const(_other(a, e.output), 1.0):
        return None
    m = only_use(graph, a.output)
    if m is None or m.onnx_op != "Mul":
        return None
    rest = [c for c in cons if c is not d]
    if m in rest:  # y * (1 + erf) then * 0.5
        last = only_use(graph, m.output)
        if last is None or last.onnx_op != "Mul" or not _is_const(_other(last, m.output), 0.5):
            return None
        return [d, e, a, m, last]
    h = rest[0]
    if h.onnx_op == "Mul" and _is_const(_other(h, y), 0.5) and only_use(graph, h.output) is m:
        return [d, e, a, h, m]
    return None


def _owner(graph: Graph, node: Node) -> Node:
    """A bias Add after a MatMul/Gemm/Conv is charged to that layer."""
    if node.onnx_op == "Add":
        for i in (0, 1):
            x, c = node.input(i), node.input(1 - i)
            if x is not None and c is not None and c.is_const and x.producer is not None \
                    and x.producer.op in ops.COMPUTE and only_use(graph, x) is node and "fused_activation" not in x.producer.meta:
                return x.producer
    return node


@dataclass(frozen=True)
class FuseActivations(Pass):
    """Annotate activations as fused into the layer that produces their input (save() stays exact)."""

    name: ClassVar[str] = "fuse-activations"
    exact: ClassVar[bool] = True

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        fused: dict[str, int] = {}
        for p in list(graph.nodes):
            if p.op not in PRODUCERS or "fused_into" in p.meta or "fused_activation" in p.meta or not p.outputs:
                continue
            y = p.outputs[0]
            act, kind = None, None
            nxt = only_use(graph, y)
            if nxt is not None and nxt.onnx_op in SIMPLE_ACTIVATIONS and nxt.input(0) is y and "fused_into" not in nxt.meta:
                act, kind = [nxt], nxt.onnx_op
            elif (chain := _silu(graph, y)) is not None:
                act, kind = chain, "Swish"
            elif (chain := _gelu(graph, y)) is not None:
                act, kind = chain, "Gelu"
            if act is None:
                continue
            owner = _owner(graph, p)
            if owner is not p:
                p.meta["fused_into"] = owner.name
            owner.meta["fused_activation"] = kind
            for a in act:
                a.meta["fused_into"] = owner.name
            fused[kind] = fused.get(kind, 0) + 1
        return bool(fused), {"fused": sum(fused.values()), "kinds": fused}
