"""ONNX -> IR: ``load(src, input_shapes=None, input_values=None) -> ir.Graph``.

Steps: read and parse (clear errors for missing, empty, text, truncated or random files);
convert opsets older than :data:`MIN_OPSET` with ``onnx.version_converter``; turn
initializers and ``Constant`` nodes into constants (IR-version-3 initializers listed as
inputs are constants too); resolve the input shapes and the inputs the user fixes to a
value, which become constants (:mod:`.resolve`); build nodes with their canonical op
(:mod:`.build`, :mod:`.rules`); sort topologically (a cycle is an error); infer every
shape and fold constant subgraphs in one sweep (:mod:`.fold`); inline every ``If`` whose
condition folded to a constant (:mod:`.inline`); finally verify.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError
from numpy.typing import ArrayLike

from symbiote.errors import ModelLoadError, SymbioteError
from symbiote.frontend.build import add_body, add_initializers, declared
from symbiote.frontend.external import Raw
from symbiote.frontend.fold import fold_and_infer
from symbiote.frontend.inline import inline_constant_ifs
from symbiote.frontend.resolve import resolve_inputs, resolve_values
from symbiote.frontend.wire import raw_data_spans
from symbiote.ir.graph import Graph, Value

#: models below this default-domain opset are converted up to it first
MIN_OPSET = 11

Source = str | os.PathLike | bytes | bytearray | memoryview | onnx.ModelProto


def load(
    src: Source,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    input_values: Mapping[str, ArrayLike] | None = None,
) -> Graph:
    """Load an ONNX model (path, bytes, ModelProto or ``"zoo:NAME"``) as a verified IR graph.

    ``input_shapes`` fixes dynamic input dims by input name. ``input_values`` treats
    inputs as constants (``{"sr": 16000}``): each becomes a constant of its declared dtype
    and shape (recorded in ``graph.meta["input_values"]``), so what depends on it folds and
    ``If`` nodes whose condition becomes constant are inlined.
    """
    model, base_dir, label, raw = read_model(src)
    converted = convert_opset(model, label)
    return lower(converted, input_shapes, base_dir, label, raw if converted is model else None, input_values)


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
def _static_shape(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape") or not all(d.HasField("dim_value") and d.dim_value > 0 for d in t.shape.dim):
        return None
    return tuple(int(d.dim_value) for d in t.shape.dim)


def lower(
    model: onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None,
    base_dir: Path | None,
    label: str,
    raw: Raw | None = None,
    input_values: Mapping[str, Any] | None = None,
) -> Graph:
    """Build the IR graph of a parsed model (see the module docstring)."""
    g = model.graph
    opset = {(o.domain if o.domain != "ai.onnx" else ""): int(o.version) for o in model.opset_import} or {"": 1}
    graph = Graph(g.name or "graph", opset=opset, ir_version=model.ir_version,
                  producer=model.producer_name or "symbiote", metadata={p.key: p.value for p in model.metadata_props})
    graph.meta["source"] = label
    values: dict[str, Value] = {}
    add_initializers(graph, g, values, base_dir, label, raw)
    real_inputs = [declared(vi) for vi in g.input if vi.name not in values]
    given = resolve_values(real_inputs, input_values, input_shapes, label)
    shapes = resolve_inputs(real_inputs, {**(input_shapes or {}), **{k: a.shape for k, a in given.items()}}, label)
    for decl in real_inputs:
        if decl.name in given:
            values[decl.name] = graph.add_const(decl.name, given[decl.name], unique=False)
        else:
            values[decl.name] = graph.add_input(decl.name, shapes[decl.name], decl.dtype or "float32")
    if given:
        graph.meta["input_values"] = {k: a.tolist() for k, a in given.items()}
    graph.meta["declared_shapes"] = {
        vi.name: s for vi in list(g.value_info) + list(g.output) if (s := _static_shape(vi)) is not None
    }
    graph.meta["declared_types"] = {
        d.name: (d.dtype, d.dims) for vi in list(g.input) + list(g.value_info) + list(g.output)
        if (d := declared(vi)).dims is not None
    }
    keep = add_body(graph, g, values, base_dir, label)
    try:
        fold_and_infer(graph, frozenset(keep))
        inline_constant_ifs(graph)
        graph.verify()
    except SymbioteError as e:
        raise type(e)(f"{label}: {e}") from None
    graph.meta["outer_scope_names"] = sorted(graph.scope_reads())
    return graph
