"""Tensor data: initializers (inline or in external data files) to numpy arrays.

Inline ``raw_data`` is wrapped with ``np.frombuffer`` (no copy beyond the one protobuf
makes), after checking that its byte size matches the declared shape and type. External
data is read only from inside the model's folder: a location that is absolute or that
resolves (through ``..`` or symlinks) outside it raises :class:`UnsafePathError` and the
file is never opened.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from symbiote.errors import InvalidModelError, ModelLoadError, UnsafePathError

#: element types whose raw bytes map one-to-one onto a numpy dtype
_PLAIN = {
    TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.FLOAT16: np.float16,
    TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8, TensorProto.INT16: np.int16,
    TensorProto.UINT16: np.uint16, TensorProto.INT32: np.int32, TensorProto.UINT32: np.uint32,
    TensorProto.INT64: np.int64, TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_,
}


Raw = tuple[memoryview, dict[str, tuple[int, int]]]  # the file's bytes and initializer raw_data spans


def tensor_to_array(t: TensorProto, base_dir: Path | None, source: str, raw: Raw | None = None) -> np.ndarray:
    """The numpy value of an initializer or Constant tensor (read-only).

    With ``raw`` (the model file's bytes and :func:`symbiote.frontend.wire.raw_data_spans`),
    an initializer's data is a view of the file's bytes, not a copy.
    """
    dims = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in dims):
        raise InvalidModelError(f"{source}: initializer {t.name!r} has a negative dim {list(dims)}")
    if t.data_location == TensorProto.EXTERNAL:
        return read_external(t, base_dir, source)
    plain = _PLAIN.get(t.data_type)
    if plain is not None and t.HasField("raw_data"):
        span = raw[1].get(t.name) if raw is not None else None
        length = span[1] if span is not None else len(t.raw_data)
        need = math.prod(dims) * np.dtype(plain).itemsize
        if length != need:
            raise InvalidModelError(
                f"{source}: initializer {t.name!r} holds {length} bytes but its shape {list(dims)} of "
                f"{TensorProto.DataType.Name(t.data_type).lower()} needs {need}"
            )
        if need == 0:
            return np.zeros(dims, dtype=plain)
        if span is not None:
            return np.frombuffer(raw[0], dtype=plain, count=math.prod(dims), offset=span[0]).reshape(dims)
        return np.frombuffer(t.raw_data, dtype=plain).reshape(dims)
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001 - any decoding failure is a malformed initializer
        raise InvalidModelError(f"{source}: initializer {t.name!r} cannot be decoded: {e}") from e
    if arr.size != math.prod(dims):
        raise InvalidModelError(f"{source}: initializer {t.name!r} holds {arr.size} values but its shape is {list(dims)}")
    arr.setflags(write=False)
    return arr


def safe_location(base_dir: Path, location: str, what: str) -> Path:
    """The resolved path of an external-data location, refusing anything outside base_dir."""
    base = Path(os.path.realpath(base_dir))
    if not location or os.path.isabs(location) or Path(location).drive:
        raise UnsafePathError(f"{what}: external data location {location!r} is not a path inside the model's folder {base}")
    target = Path(os.path.realpath(base / location))
    if target != base and base not in target.parents:
        raise UnsafePathError(f"{what}: external data location {location!r} points outside the model's folder {base}; refused")
    return target


def read_external(t: TensorProto, base_dir: Path | None, source: str) -> np.ndarray:
    info = {e.key: e.value for e in t.external_data}
    what = f"{source}: initializer {t.name!r}"
    if base_dir is None:
        raise ModelLoadError(f"{what} keeps its data in an external file, but the model was not loaded from a path")
    path = safe_location(base_dir, info.get("location", ""), what)
    if not path.is_file():
        raise ModelLoadError(f"{what}: external data file {path} does not exist")
    dims = tuple(int(d) for d in t.dims)
    plain = _PLAIN.get(t.data_type)
    offset = int(info.get("offset", 0) or 0)
    need = math.prod(dims) * (np.dtype(plain).itemsize if plain else 0)
    length = int(info["length"]) if info.get("length") else need
    size = path.stat().st_size
    if offset < 0 or offset + length > size:
        raise InvalidModelError(f"{what}: external data wants bytes {offset}..{offset + length} of {path} ({size} bytes)")
    if plain is None:  # exotic types: let onnx decode the bytes
        with open(path, "rb") as f:
            f.seek(offset)
            raw = f.read(length)
        t2 = TensorProto()
        t2.CopyFrom(t)
        t2.ClearField("external_data")
        t2.data_location = TensorProto.DEFAULT
        t2.raw_data = raw
        return tensor_to_array(t2, None, source)
    if length != need:
        raise InvalidModelError(
            f"{what} declares {length} bytes of external data but its shape {list(dims)} of "
            f"{helper.tensor_dtype_to_np_dtype(t.data_type)} needs {need}"
        )
    arr = np.fromfile(path, dtype=plain, count=math.prod(dims), offset=offset).reshape(dims)
    arr.setflags(write=False)
    return arr
