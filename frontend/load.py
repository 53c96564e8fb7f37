"""ONNX -> IR: ``load(src, input_shapes=None) -> ir.Graph``.

Steps: read and parse (clear errors for missing, empty, text, truncated or random files);
convert opsets older than :data:`MIN_OPSET` with ``onnx.version_converter``; turn
initializers and ``Constant`` nodes into constants (IR-version-3 initializers listed as
inputs are constants too); resolve the input shapes (:mod:`.resolve`); build nodes with
their canonical op (:mod:`.rules`); sort topologically (a cycle is an error); then infer
every shape and fold constant subgraphs in one sweep (:mod:`.fold`); finally verify.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from symbiote.errors import InvalidModelError, ModelLoadError, SymbioteError
from symbiote.frontend.attrs import META_PREFIX, attrs_of
from symbiote.frontend.external import Raw, tensor_to_array
from symbiote.frontend.fold import fold_and_infer
from symbiote.frontend.resolve import DeclaredInput, resolve_inputs
from symbiote.frontend.rules import canonical_op
from symbiote.frontend.wire import raw_data_spans
from symbiote.ir import dtypes
from symbiote.ir.graph import Graph, Value

#: models below this default-domain opset are converted up to it first
MIN_OPSET = 11

Source = str | os.PathLike | bytes | bytearray | memoryview | onnx.ModelProto


def load(src: Source, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """Load an ONNX model (path, bytes, ModelProto or ``"zoo:NAME"``) as a verified IR graph."""
    model, base_dir, label, raw = read_model(src)
    converted = convert_opset(model, label)
    return lower(converted, input_shapes, base_dir, label, raw if converted is model else None)


# ------------------------------------------------------------------ reading
def read_model(src: Source) -> tuple[onnx.ModelProto, Path | None, str, Raw | None]:
    """The parsed model, the folder its external data lives in, a label for messages, and
    the raw bytes with initializer spans (for zero-copy weights) when there are bytes."""
    if isinstance(src, onnx.ModelProto):
        return src, None, src.graph.name or "<ModelProto>", None
    if isinstance(src, (bytes, bytearray, memoryview)):
        buf = memoryview(src)
        return parse_model(buf, "<bytes>"), None, "<bytes>", (buf, raw_data_spans(buf))
    if isinstance(src, str) and src.startswith("zoo:"):
        from symbiote.frontend import zoo

        return zoo.build(src[4:]), None, src, None
    if not isinstance(src, (str, os.PathLike)):
        raise TypeError(f"load() takes a path, bytes, an onnx.ModelProto or 'zoo:NAME', not {type(src).__name__}")
    path = Path(src)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ModelLoadError(f"{path}: is a folder, not an ONNX file")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # a read-only mapping: weights become views of it (save() replaces files atomically,
            # so a mapped file is never rewritten in place)
            buf = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)) if size else memoryview(b"")
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot be read ({e.strerror or e})") from e
    model = parse_model(buf, str(path))
    return model, path.parent, str(path), (buf, raw_data_spans(buf))


def _looks_like_text(data: memoryview) -> bool:
    head = bytes(data[:4096])
    if b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def parse_model(data: memoryview, label: str) -> onnx.ModelProto:
    if not len(data):
        raise ModelLoadError(f"{label}: the file is empty, not an ONNX model")
    if _looks_like_text(data):
        raise ModelLoadError(f"{label}: is a text file, not an ONNX model (ONNX files are binary protobuf)")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ModelLoadError(f"{label}: not a valid ONNX model (truncated or corrupt protobuf: {e})") from e
    if not model.HasField("graph") or model.ir_version <= 0 or model.ir_version > 64:
        raise ModelLoadError(f"{label}: not an ONNX model (no graph or no IR version; truncated or not ONNX?)")
    if not model.opset_import and model.ir_version >= 3:
        raise ModelLoadError(f"{label}: the model declares no opset (truncated file?)")
    return model


def default_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 1 if not model.opset_import else 0


def convert_opset(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Convert a model whose default opset is below MIN_OPSET; say clearly if that fails."""
    version = default_opset(model)
    if version == 0 or version >= MIN_OPSET:
        return model
    from onnx import version_converter

    listed = {i.name for i in model.graph.input}
    missing = [t for t in model.graph.initializer if t.name not in listed]
    if missing:  # old converters expect every initializer among the inputs (IR version < 4 style)
        model = _copy(model)
        model.graph.input.extend(
            onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in missing
        )
    try:
        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as e:  # noqa: BLE001 - the converter raises many kinds
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(
            f"{label}: opset {version} is older than {MIN_OPSET} and onnx.version_converter could not convert it ({msg})"
        ) from e


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


# ------------------------------------------------------------------ lowering
def _declared(vi: onnx.ValueInfoProto) -> DeclaredInput:
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        return DeclaredInput(vi.name, None)
    dims: list[Any] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return DeclaredInput(vi.name, tuple(dims))


def _static_shape(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape") or not all(d.HasField("dim_value") and d.dim_value > 0 for d in t.shape.dim):
        return None
    return tuple(int(d.dim_value) for d in t.shape.dim)


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


def _outer_names(g: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes (recursively)."""
    defined = {i.name for i in g.input} | {t.name for t in g.initializer} | {o for n in g.node for o in n.output}
    used: set[str] = set()
    for n in g.node:
        used.update(i for i in n.input if i)
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                used |= _outer_names(sub)
    used.update(o.name for o in g.output)
    return used - defined


def lower(
    model: onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None,
    base_dir: Path | None,
    label: str,
    raw: Raw | None = None,
) -> Graph:
    """Build the IR graph of a parsed model (see the module docstring)."""
    g = model.graph
    opset = {(o.domain if o.domain != "ai.onnx" else ""): int(o.version) for o in model.opset_import} or {"": 1}
    graph = Graph(g.name or "graph", opset=opset, ir_version=model.ir_version,
                  producer=model.producer_name or "symbiote", metadata={p.key: p.value for p in model.metadata_props})
    graph.meta["source"] = label
    values: dict[str, Value] = {}
    for t in g.initializer:
        if t.name in values:
            raise InvalidModelError(f"{label}: two initializers are named {t.name!r}")
        values[t.name] = graph.add_const(t.name, tensor_to_array(t, base_dir, label, raw), unique=False)
    for sp in g.sparse_initializer:
        name = sp.values.name
        values[name] = graph.add_const(name, _sparse_to_array(sp, base_dir, label), unique=False)
    real_inputs = [vi for vi in g.input if vi.name not in values]
    shapes = resolve_inputs([_declared(vi) for vi in real_inputs], input_shapes, label)
    for vi in real_inputs:
        elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else onnx.TensorProto.FLOAT
        values[vi.name] = graph.add_input(vi.name, shapes[vi.name], dtypes.from_onnx(elem))
    graph.meta["declared_shapes"] = {
        vi.name: s for vi in list(g.value_info) + list(g.output) if (s := _static_shape(vi)) is not None
    }
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
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                outer |= _outer_names(sub)
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
    for o in g.output:
        if o.name not in values:
            raise InvalidModelError(f"{label}: graph output {o.name!r} is produced by nothing")
        graph.outputs.append(values[o.name])
    try:
        graph.sort()
    except InvalidModelError as e:
        raise InvalidModelError(f"{label}: {e}") from None
    graph.meta["outer_scope_names"] = sorted(keep)
    try:
        fold_and_infer(graph, frozenset(keep))
        graph.verify()
    except SymbioteError as e:
        raise type(e)(f"{label}: {e}") from None
    return graph


def _claim(values: dict[str, Value], name: str, node: onnx.NodeProto, label: str) -> None:
    if name in values:
        raise InvalidModelError(f"{label}: value {name!r} is produced twice (again by node {node.name or node.op_type!r})")
