"""GraphProto -> IR nodes: the part of the loader shared by the main graph and subgraph bodies.

:func:`declared` reads a value_info's element type and (possibly symbolic) dims;
:func:`add_initializers`, :func:`add_nodes` and :func:`add_outputs` turn one
``onnx.GraphProto`` scope into constants, nodes and outputs of an IR graph, given the
names already in scope (graph inputs, or the outer values a subgraph reads). Each node
keeps its ONNX definition (attributes as plain values, subgraphs verbatim) and gets its
canonical op (:mod:`.rules`); :func:`outer_names` lists what a subgraph reads from the
scopes around it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from symbiote.errors import InvalidModelError
from symbiote.frontend.attrs import META_PREFIX, attrs_of
from symbiote.frontend.external import Raw, tensor_to_array
from symbiote.frontend.resolve import DeclaredInput
from symbiote.frontend.rules import canonical_op
from symbiote.ir import dtypes
from symbiote.ir.graph import Graph, Value


def declared(vi: onnx.ValueInfoProto) -> DeclaredInput:
    """The declared element type and (possibly symbolic) dims of a value_info."""
    t = vi.type.tensor_type
    elem = dtypes.from_onnx(t.elem_type) if vi.type.HasField("tensor_type") and t.elem_type else None
    if elem is None and not vi.type.HasField("tensor_type"):
        elem = "float32"
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        return DeclaredInput(vi.name, None, elem)
    dims: list[Any] = []
    for d in t.shape.dim:
        if d.HasField("dim_value") and d.dim_value == -1:
            dims.append(None)  # paddle2onnx writes -1 for a dynamic dim: anonymous, like an empty one
        elif d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return DeclaredInput(vi.name, tuple(dims), elem)


def _constant_node_value(node: onnx.NodeProto, base_dir: Path | None, label: str) -> np.ndarray:
    a = node.attribute[0] if len(node.attribute) == 1 else None
    if a is None:
        raise InvalidModelError(f"{label}: Constant node {node.name or node.output[0]!r} needs exactly one attribute")
    if a.name == "value":
        return tensor_to_array(a.t, base_dir, label)
    if a.name == "sparse_value":
        return _sparse_to_array(a.sparse_tensor, base_dir, label)
    values: dict[str, Any] = {
        "value_float": lambda: np.asarray(a.f, np.float32), "value_floats": lambda: np.asarray(a.floats, np.float32),
        "value_int": lambda: np.asarray(a.i, np.int64), "value_ints": lambda: np.asarray(a.ints, np.int64),
        "value_string": lambda: np.asarray(a.s.decode()), "value_strings": lambda: np.asarray([s.decode() for s in a.strings]),
    }
    if a.name not in values:
        raise InvalidModelError(f"{label}: Constant node {node.name!r} has an unknown attribute {a.name!r}")
    return values[a.name]()


def _sparse_to_array(sp: onnx.SparseTensorProto, base_dir: Path | None, label: str) -> np.ndarray:
    vals = tensor_to_array(sp.values, base_dir, label)
    idx = tensor_to_array(sp.indices, base_dir, label).astype(np.int64)
    dims = tuple(int(d) for d in sp.dims)
    dense = np.zeros(int(np.prod(dims)), dtype=vals.dtype)
    flat = idx if idx.ndim == 1 else np.ravel_multi_index(idx.T, dims)
    dense[flat] = vals
    return dense.reshape(dims)


def _annotations(n: onnx.NodeProto, label: str) -> dict[str, Any]:
    """``node.meta`` entries that ``save`` wrote as ``symbiote.*`` metadata props."""
    out: dict[str, Any] = {}
    for p in n.metadata_props:
        if p.key.startswith(META_PREFIX) and not p.key[len(META_PREFIX):].startswith("_"):
            try:
                out[p.key[len(META_PREFIX):]] = json.loads(p.value)
            except ValueError:
                raise InvalidModelError(f"{label}: node {n.name or n.op_type!r}: metadata {p.key!r} is not JSON: {p.value[:40]!r}") from None
    return out


def subgraphs(n: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The bodies a node's GRAPH and GRAPHS attributes hold (the messages themselves:
    ``sub.CopyFrom(...)`` rewrites one in place)."""
    return [sub for a in n.attribute for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs))]


def outer_names(g: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes (recursively)."""
    defined = {i.name for i in g.input} | {t.name for t in g.initializer} | {o for n in g.node for o in n.output}
    used: set[str] = set()
    for n in g.node:
        used.update(i for i in n.input if i)
        for sub in subgraphs(n):
            used |= outer_names(sub)
    used.update(o.name for o in g.output)
    return used - defined


def add_initializers(graph: Graph, g: onnx.GraphProto, values: dict[str, Value], base_dir: Path | None,
                     label: str, raw: Raw | None = None) -> None:
    """The graph's initializers (dense and sparse) as constants of ``graph``, into ``values``."""
    for t in g.initializer:
        if t.name in values:
            raise InvalidModelError(f"{label}: two initializers are named {t.name!r}")
        values[t.name] = graph.add_const(t.name, tensor_to_array(t, base_dir, label, raw), unique=False)
    for sp in g.sparse_initializer:
        name = sp.values.name
        values[name] = graph.add_const(name, _sparse_to_array(sp, base_dir, label), unique=False)


def add_nodes(graph: Graph, g: onnx.GraphProto, values: dict[str, Value], base_dir: Path | None, label: str) -> set[str]:
    """``g``'s Constant nodes (as constants) and nodes into ``graph``; ``values`` maps the
    names already defined (inputs, initializers, outer values) and gains every output.
    Returns the names the nodes' subgraphs read from this scope or above."""
    keep: set[str] = set()
    pending = []
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.output) == 1:
            _claim(values, n.output[0], n, label)
            values[n.output[0]] = graph.add_const(n.output[0], _constant_node_value(n, base_dir, label), unique=False)
            continue
        outs = []
        unnamed = []
        for j, name in enumerate(n.output):
            if not name:
                unnamed.append(j)
                name = graph.unique_name(f"{n.name or n.op_type.lower()}_unused{j}")
            _claim(values, name, n, label)
            outs.append(values.setdefault(name, Value(name)))
        attrs, types = attrs_of(n)
        meta: dict[str, Any] = {"_attr_types": types}
        meta.update(_annotations(n, label))
        if unnamed:
            meta["_unnamed_outputs"] = unnamed
        outer = set()
        for sub in subgraphs(n):
            outer |= outer_names(sub)
        if outer:
            meta["_outer_inputs"] = sorted(outer)
            keep |= outer
        pending.append((n, outs, attrs, meta))
    for n, outs, attrs, meta in pending:
        ins = []
        for i, name in enumerate(n.input):
            if not name:
                ins.append(None)
                continue
            v = values.get(name)
            if v is None:
                raise InvalidModelError(
                    f"{label}: node {n.name or n.op_type!r} ({n.op_type}) input {i} {name!r} is produced by nothing "
                    f"(not a graph input, an initializer or a node output)"
                )
            ins.append(v)
        graph.add_node(canonical_op(n.op_type, n.domain), n.op_type, ins, outs, name=n.name or None,
                       attrs=attrs, domain=n.domain if n.domain != "ai.onnx" else "", meta=meta)
    for name in keep:
        if name not in values:
            raise InvalidModelError(f"{label}: a subgraph reads {name!r}, which nothing in the outer graph produces")
    return keep


def add_outputs(graph: Graph, g: onnx.GraphProto, values: dict[str, Value], label: str) -> None:
    for o in g.output:
        if o.name not in values:
            raise InvalidModelError(f"{label}: graph output {o.name!r} is produced by nothing")
        graph.outputs.append(values[o.name])


def add_body(graph: Graph, g: onnx.GraphProto, values: dict[str, Value], base_dir: Path | None, label: str) -> set[str]:
    """The nodes and outputs of ``g`` added to ``graph`` (whose inputs and constants are in
    ``values``), sorted topologically; returns the outer names its subgraphs read."""
    keep = add_nodes(graph, g, values, base_dir, label)
    add_outputs(graph, g, values, label)
    try:
        graph.sort()
    except InvalidModelError as e:
        raise InvalidModelError(f"{label}: {e}") from None
    return keep


def _claim(values: dict[str, Value], name: str, node: onnx.NodeProto, label: str) -> None:
    if name in values:
        raise InvalidModelError(f"{label}: value {name!r} is produced twice (again by node {node.name or node.op_type!r})")
