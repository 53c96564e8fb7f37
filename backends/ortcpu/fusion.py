"""Which fusions onnxruntime applies, read from the models it optimizes.

As nn-Meter finds a backend's fusion rules, by running small models through it:
onnxruntime writes the model it will run (``SessionOptions.optimized_model_filepath``) at
:data:`symbiote.backends.ortcpu.kernels.LEVEL`, and we read it.

* :func:`optimized_kernels`: for a whole model, each node of the optimized model (one
  kernel) with the original nodes it absorbed (found through the tensors that no longer
  exist: an original node whose outputs are gone belongs to the kernel its outputs flow into).
* :func:`fusion_rules`: which of the patterns in :data:`PROBES` onnxruntime runs as one
  kernel (a probe model of the pattern comes out with one node, Reshapes aside). These are
  the rules :mod:`symbiote.backends.ortcpu.plan` applies to Workload rows.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

from symbiote.backends.ortcpu.kernels import LEVEL, OPSET, session_options


@dataclass(frozen=True)
class FusedKernel:
    """A node of onnxruntime's optimized model: its op and the original nodes it runs."""

    name: str
    op_type: str
    domain: str
    members: tuple[str, ...]


def optimized_model(model, level: str = LEVEL):
    """The model onnxruntime runs after its graph optimizations at ``level`` (ModelProto)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "optimized.onnx")
        o = session_options(1, False, level)
        o.optimized_model_filepath = path
        ort.InferenceSession(model.SerializeToString(), o, providers=["CPUExecutionProvider"])
        return onnx.load(path)


def optimized_kernels(model, level: str = LEVEL) -> list[FusedKernel]:
    """Each node of the optimized model with the original nodes it absorbed (module doc)."""
    opt = optimized_model(model, level)
    kept = {t for n in opt.graph.node for t in n.output}
    producer = {t: n for n in model.graph.node for t in n.output}
    out = []
    for n in opt.graph.node:
        members: list[str] = []
        stack = [t for t in n.output if t in producer]
        seen: set[str] = set()
        while stack:
            src = producer[stack.pop()]
            if src.name in seen:
                continue
            seen.add(src.name)
            members.append(src.name)
            stack += [x for x in src.input if x in producer and x not in kept]
        out.append(FusedKernel(n.name, n.op_type, n.domain, tuple(reversed(members))))
    return out


#: pattern -> the op chain of its probe (the first op reads ``x`` and constants)
PROBES: dict[str, tuple[str, ...]] = {
    "conv+act": ("Conv", "Relu"),
    "gemm+act": ("Gemm", "Relu"),
    "matmul+act": ("MatMul", "Relu"),
    "matmul+bias": ("MatMul", "AddBias"),
    "matmul+scale": ("MatMul", "MulScalar"),
    "add+act": ("Add", "Relu"),
    "add+layernorm": ("Add", "LayerNormalization"),
}


def _probe(chain: tuple[str, ...]):
    from onnx import TensorProto, helper, numpy_helper

    c = lambda name, shape: numpy_helper.from_array(np.full(shape, 0.5, np.float32), name)  # noqa: E731
    # Conv: NCHW; Gemm: 2-D; MatMul and Add: 3-D (SkipLayerNormalization is fused on 3-D inputs only)
    inits, nodes, t = [], [], "x"
    x = {"Conv": [1, 4, 6, 6], "Gemm": [2, 4]}.get(chain[0], [1, 2, 4])
    for i, op in enumerate(chain):
        out = "y" if i == len(chain) - 1 else f"t{i}"
        extra = {"Conv": ["w"], "Gemm": ["w", "b"], "MatMul": ["w"], "AddBias": ["b"], "MulScalar": ["s"], "Add": ["a"],
                 "LayerNormalization": ["g", "b"]}.get(op, [])
        shapes = {"w": [4, 4, 3, 3] if op == "Conv" else [4, 4], "b": [4], "s": [], "a": [1, 2, 4], "g": [4]}
        for e in extra:
            if e not in {i.name for i in inits}:
                inits.append(c(e, shapes[e]))
        real = {"AddBias": "Add", "MulScalar": "Mul"}.get(op, op)
        attrs = {"kernel_shape": [3, 3]} if op == "Conv" else {}
        nodes.append(helper.make_node(real, [t, *extra], [out], **attrs))
        t = out
    g = helper.make_graph(nodes, "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def fused(chain: tuple[str, ...], level: str = LEVEL) -> bool:
    """Whether onnxruntime runs the probe of ``chain`` as one kernel (Reshapes aside)."""
    nodes = [n for n in optimized_model(_probe(chain), level).graph.node if n.op_type != "Reshape"]
    return len(nodes) == 1


def fusion_rules(level: str = LEVEL) -> frozenset[str]:
    """The patterns of :data:`PROBES` onnxruntime fuses at ``level``."""
    return frozenset(name for name, chain in PROBES.items() if fused(chain, level))
