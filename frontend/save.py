"""IR -> ONNX: ``to_onnx(graph) -> onnx.ModelProto`` and ``save(graph, path)``.

Every node is written back as its ONNX op (``node.onnx_op`` in ``node.domain``) with its
attributes converted by :mod:`symbiote.frontend.attrs` (the loader's type hints in
``node.meta["_attr_types"]`` keep empty lists and int-valued floats exact). Opaque nodes
carry their full ONNX definition the same way, so they are written back unchanged.
Constants become initialisers; graph inputs and outputs keep their names, dtypes and
shapes; intermediate values get a ``value_info`` with the IR's dtype and shape.

No input, output or value_info is written without a shape where one is known: when the
IR's shape is unknown, the (possibly symbolic) shape the source file declared is written
(``graph.meta["declared_types"]``, kept by the loader); an intermediate value with neither
gets no value_info; a graph output with neither gets the shape ONNX shape inference gives
it, and a :class:`SaveError` naming it when there is none. Subgraphs kept verbatim lose
their shapeless value_info entries (value_info is optional). So every saved model passes
``onnx.checker.check_model(..., full_check=True)``, which :func:`save` runs.

Opset imports come from ``graph.opset`` (plus version 1 of any domain a node uses that
the graph does not declare); the IR version is ``graph.ir_version`` raised, when needed,
to the lowest one that the opsets require (``onnx.helper.find_min_ir_version_for``).

Models whose weights pass :data:`EXTERNAL_DATA_THRESHOLD_BYTES` (protobuf cannot
serialise a message over 2 GiB) are written with their tensors in one external data
file ``<name>.data`` next to the model. Both files are written into a temporary folder
beside the target and moved into place with ``os.replace``: an interrupted save leaves
the old files or the new ones, never half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from symbiote import __version__
from symbiote.errors import SymbioteError
from symbiote.frontend.attrs import META_PREFIX, to_attribute
from symbiote.frontend.build import subgraphs
from symbiote.ir import dtypes
from symbiote.ir.graph import Graph, Node, Value

#: protobuf's hard limit on one serialised message is 2 GiB (2**31 - 1 bytes); above this
#: many weight bytes (64 MiB left for the graph structure) tensors go to an external file
EXTERNAL_DATA_THRESHOLD_BYTES = 2**31 - 2**26
#: tensors smaller than this stay inline even in external-data mode (onnx's own default)
EXTERNAL_TENSOR_MIN_BYTES = 1024

_DEFAULT_DOMAINS = ("", "ai.onnx")


class SaveError(SymbioteError):
    """The model cannot be written (bad target path, unwritable folder)."""


# --------------------------------------------------------------------------- IR -> proto


def _value_info(v: Value, declared: dict[str, tuple] | None = None) -> onnx.ValueInfoProto | None:
    """The value's type: the IR's shape, else the declared one; None when neither is known."""
    elem = dtypes.to_onnx(v.dtype) if v.dtype in _KNOWN_DTYPES else onnx.TensorProto.UNDEFINED
    if v.shape is not None:
        return helper.make_tensor_value_info(v.name, elem, [int(d) for d in v.shape])
    dims = (declared or {}).get(v.name, (None, None))[1]
    if dims is None:
        return None
    return helper.make_tensor_value_info(v.name, elem, [d if isinstance(d, (int, str)) else None for d in dims])


def _io_value_info(v: Value, declared: dict[str, tuple]) -> onnx.ValueInfoProto:
    """A graph input/output's type (shapeless only when nothing is known: see :func:`_fill_io_shapes`)."""
    vi = _value_info(v, declared)
    if vi is not None:
        return vi
    elem = dtypes.to_onnx(v.dtype) if v.dtype in _KNOWN_DTYPES else onnx.TensorProto.UNDEFINED
    return helper.make_tensor_value_info(v.name, elem, None)


_KNOWN_DTYPES = frozenset(
    name for name in ("float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                      "int64", "uint64", "bool", "string", "float8e4m3fn", "float8e5m2", "int4", "uint4", "complex64", "complex128")
)


def _initializer(v: Value) -> onnx.TensorProto:
    array = v.const
    assert array is not None
    if v.dtype in _KNOWN_DTYPES and v.dtype not in ("string",):
        want = dtypes.to_numpy(v.dtype)
        if np.asarray(array).dtype != want:
            array = np.asarray(array).astype(want)
    return numpy_helper.from_array(np.asarray(array), v.name)


def _node_proto(node: Node) -> onnx.NodeProto:
    inputs = ["" if v is None else v.name for v in node.inputs]
    while inputs and inputs[-1] == "":
        inputs.pop()
    proto = helper.make_node(node.onnx_op, inputs, [o.name for o in node.outputs], name=node.name, domain=node.domain or None)
    hints: dict[str, int] = node.meta.get("_attr_types", {}) or {}
    for key in sorted(node.attrs):
        proto.attribute.append(_attribute(key, node.attrs[key], hints.get(key)))
    doc = node.meta.get("_doc_string")
    if doc:
        proto.doc_string = str(doc)
    for key, value in annotations(node):
        proto.metadata_props.add(key=key, value=value)
    return proto


def annotations(node: Node) -> list[tuple[str, str]]:
    """The public ``node.meta`` entries (no leading underscore) as JSON metadata props, so a
    saved model keeps its bit-widths, sparsity and fusion marks (``load`` reads them back)."""
    out = []
    for key in sorted(node.meta):
        if key.startswith("_"):
            continue
        try:
            out.append((META_PREFIX + key, json.dumps(node.meta[key], sort_keys=True)))
        except TypeError:  # not plain data: an in-memory annotation only
            continue
    return out


def _attribute(key: str, value: Any, hint: int | None) -> onnx.AttributeProto:
    if isinstance(value, Graph):  # a subgraph kept as IR
        return helper.make_attribute(key, graph_proto(value))
    if isinstance(value, onnx.GraphProto):
        return helper.make_attribute(key, _without_shapeless_value_info(value))
    if isinstance(value, list) and value and all(isinstance(g, onnx.GraphProto) for g in value):
        return helper.make_attribute(key, [_without_shapeless_value_info(g) for g in value])
    if isinstance(value, bool):
        value = int(value)
    return to_attribute(key, value, hint)


def _shapeless(vi: onnx.ValueInfoProto) -> bool:
    return vi.type.HasField("tensor_type") and not vi.type.tensor_type.HasField("shape")


def _without_shapeless_value_info(g: onnx.GraphProto) -> onnx.GraphProto:
    """A verbatim subgraph without its shapeless value_info entries (nested ones too);
    ``g`` itself when it has none."""
    if not _has_shapeless(g):
        return g
    out = onnx.GraphProto()
    out.CopyFrom(g)
    keep = [vi for vi in out.value_info if not _shapeless(vi)]
    del out.value_info[:]
    out.value_info.extend(keep)
    for n in out.node:
        for sub in subgraphs(n):
            sub.CopyFrom(_without_shapeless_value_info(sub))
    return out


def _has_shapeless(g: onnx.GraphProto) -> bool:
    if any(_shapeless(vi) for vi in g.value_info):
        return True
    return any(_has_shapeless(sub) for n in g.node for sub in subgraphs(n))


def graph_proto(graph: Graph, *, value_info: bool = True) -> onnx.GraphProto:
    """The ``GraphProto`` of an IR graph (no opset/IR version: see :func:`to_onnx`)."""
    consts = list(graph.constants.values())
    const_ids = {id(v) for v in consts}
    io_ids = {id(v) for v in graph.inputs} | {id(v) for v in graph.outputs}
    declared = graph.meta.get("declared_types", {}) or {}
    vis = []
    if value_info:
        for n in graph.nodes:
            for o in n.outputs:
                if id(o) not in io_ids and o.name and (vi := _value_info(o, declared)) is not None:
                    vis.append(vi)
    return helper.make_graph(
        [_node_proto(n) for n in graph.nodes],
        graph.name or "graph",
        [_io_value_info(v, declared) for v in graph.inputs if id(v) not in const_ids],
        [_io_value_info(v, declared) for v in graph.outputs],
        initializer=[_initializer(v) for v in consts],
        value_info=vis,
        doc_string=str(graph.meta.get("_doc_string", "") or ""),
    )


def _opset_imports(graph: Graph) -> list[onnx.OperatorSetIdProto]:
    opset = {("" if d == "ai.onnx" else d): int(v) for d, v in graph.opset.items()}
    opset.setdefault("", onnx.defs.onnx_opset_version())
    for n in _all_nodes(graph):
        d = "" if n.domain in _DEFAULT_DOMAINS else n.domain
        opset.setdefault(d, 1)
    return [helper.make_opsetid(d, v) for d, v in sorted(opset.items())]


def _all_nodes(graph: Graph):
    """Every node's (domain-bearing) proto or IR node, subgraph bodies included."""
    for n in graph.nodes:
        yield n
        for value in n.attrs.values():
            for sub in value if isinstance(value, list) else [value]:
                if isinstance(sub, onnx.GraphProto):
                    yield from _proto_nodes(sub)
                elif isinstance(sub, Graph):
                    yield from _all_nodes(sub)


def _proto_nodes(g: onnx.GraphProto):
    for n in g.node:
        yield n
        for sub in subgraphs(n):
            yield from _proto_nodes(sub)


def _ir_version(graph: Graph, opsets: list[onnx.OperatorSetIdProto]) -> int:
    try:
        need = helper.find_min_ir_version_for(list(opsets), ignore_unknown=True)
    except TypeError:  # older onnx without ignore_unknown
        need = helper.find_min_ir_version_for([o for o in opsets if o.domain in _DEFAULT_DOMAINS])
    # IR < 4 requires every initializer to be a graph input too: never write it
    need = max(int(graph.ir_version or 0), int(need), 4)
    if any(annotations(n) for n in graph.nodes):  # node metadata_props came with IR 10
        need = max(need, 10)
    return need


def to_onnx(graph: Graph, *, value_info: bool = True) -> onnx.ModelProto:
    """The ``ModelProto`` of an IR graph, weights inline (a >2 GiB one cannot be serialised: use :func:`save`)."""
    opsets = _opset_imports(graph)
    model = helper.make_model(graph_proto(graph, value_info=value_info), opset_imports=opsets, producer_name=graph.producer or "symbiote")
    model.producer_version = __version__ if (graph.producer or "symbiote") == "symbiote" else str(graph.meta.get("_producer_version", ""))
    model.ir_version = _ir_version(graph, opsets)
    for fn in graph.meta.get("_functions", ()) or ():
        model.functions.append(fn)
    if graph.metadata:
        helper.set_model_props(model, {str(k): str(v) for k, v in sorted(graph.metadata.items())})
    _fill_io_shapes(model)
    _repair_subgraph_types(model)
    return model


def _subgraphs(g: onnx.GraphProto):
    for n in g.node:
        for sub in subgraphs(n):
            yield sub
            yield from _subgraphs(sub)


def _repair_subgraph_types(model: onnx.ModelProto) -> None:
    """When strict ONNX shape inference rejects the model because a verbatim subgraph
    declares shapes its nodes contradict (exporters write a branch output as a scalar, say),
    drop the shapes that subgraphs declare for their outputs and value_info (element types
    stay; subgraph types are optional and inferred from the outer shapes)."""
    subs = list(_subgraphs(model.graph))
    if not subs:
        return
    try:
        onnx.shape_inference.infer_shapes(model, strict_mode=True)
        return
    except Exception:  # noqa: BLE001 - any inference error: try without the subgraphs' declared shapes
        pass
    for sub in subs:
        for vi in list(sub.output) + list(sub.value_info):
            if vi.type.HasField("tensor_type"):
                vi.type.tensor_type.ClearField("shape")


def _fill_io_shapes(model: onnx.ModelProto) -> None:
    """Give main-graph inputs/outputs that have no shape the one ONNX shape inference finds
    (the checker requires one); raise SaveError naming any that stays unknown."""
    missing = [(kind, vi) for kind, vis in (("input", model.graph.input), ("output", model.graph.output))
               for vi in vis if _shapeless(vi) or not vi.type.HasField("tensor_type")]
    if not missing:
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference failed: nothing more is known
        inferred = model
    found = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    for kind, vi in missing:
        got = found.get(vi.name)
        if got is None or _shapeless(got) or not got.type.HasField("tensor_type"):
            raise SaveError(
                f"cannot write graph {kind} {vi.name!r}: its shape is unknown "
                f"(symbiote and ONNX shape inference cannot tell it and the source declared none)"
            )
        vi.type.CopyFrom(got.type)


def weight_bytes(graph: Graph) -> int:
    """Bytes of all constants (what decides external data)."""
    return int(sum(np.asarray(v.const).nbytes for v in graph.constants.values()))


# --------------------------------------------------------------------------- writing


def save(graph: Graph, path: str | os.PathLike[str], *, external_data_threshold_bytes: int = EXTERNAL_DATA_THRESHOLD_BYTES, check: bool = True) -> Path:
    """Write ``graph`` to ``path`` atomically; weights over the threshold go to ``<name>.data``.

    Returns the model path. ``check`` runs ``onnx.checker`` (``full_check=True``: with
    strict shape inference) on the result before it replaces anything. Raises :class:`SaveError` when the folder does not exist or
    cannot be written.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise SaveError(f"cannot write {target}: folder {folder} does not exist")
    if target.is_dir():
        raise SaveError(f"cannot write {target}: it is a folder")
    model = to_onnx(graph)
    external = weight_bytes(graph) > external_data_threshold_bytes
    data_name = target.name + ".data"
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder))
    except OSError as e:
        raise SaveError(f"cannot write {target}: {e.strerror or e}") from None
    try:
        tmp_model = tmp / target.name
        if external:
            onnx.save_model(model, str(tmp_model), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data_name, size_threshold=min(EXTERNAL_TENSOR_MIN_BYTES, external_data_threshold_bytes), convert_attribute=False)
        else:
            onnx.save_model(model, str(tmp_model))
        if check:
            onnx.checker.check_model(str(tmp_model), full_check=True)
        if external and (tmp / data_name).exists():
            os.replace(tmp / data_name, folder / data_name)
        os.replace(tmp_model, target)
    except OSError as e:
        raise SaveError(f"cannot write {target}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


__all__ = ["to_onnx", "save", "graph_proto", "weight_bytes", "SaveError", "EXTERNAL_DATA_THRESHOLD_BYTES"]
