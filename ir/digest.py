"""``graph_digest(graph)``: a hash of everything a graph computes with.

The opset imports; every node (op, domain, the names it reads and writes, its attributes, subgraph bodies
included), every constant's full bytes, dtype and shape, and the graph's inputs and
outputs. Two graphs with the same digest compute the same function, so results measured
on one (e.g. per-layer quantization sensitivities) may be reused for the other; any change
to a weight, a bias or a batch-norm parameter changes it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from symbiote.ir.graph import Graph


def _attr_bytes(value: Any) -> bytes:
    if hasattr(value, "SerializeToString"):  # a subgraph body kept as onnx.GraphProto
        return value.SerializeToString(deterministic=True)
    if isinstance(value, Graph):
        return graph_digest(value).encode()
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return f"{a.dtype}{a.shape}".encode() + a.tobytes()
    if isinstance(value, list | tuple):
        return b"[" + b",".join(_attr_bytes(v) for v in value) + b"]"
    return repr(value).encode()


def graph_digest(graph: Graph) -> str:
    """A hex SHA-256 of the graph's content (see the module docstring)."""
    h = hashlib.sha256(repr(sorted(graph.opset.items())).encode())  # an op's meaning depends on its opset
    for v in graph.inputs:
        h.update(f"in|{v.name}|{v.dtype}|{v.shape}".encode())
    for name in sorted(graph.constants):
        a = np.ascontiguousarray(np.asarray(graph.constants[name].const))
        h.update(f"const|{name}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    for n in graph.nodes:
        ins = ",".join("" if v is None else v.name for v in n.inputs)
        outs = ",".join(o.name for o in n.outputs)
        h.update(f"node|{n.domain}|{n.onnx_op}|{ins}|{outs}|".encode())
        for key in sorted(n.attrs):
            h.update(key.encode() + b"=" + _attr_bytes(n.attrs[key]) + b";")
    h.update(("out|" + ",".join(v.name for v in graph.outputs)).encode())
    return h.hexdigest()
