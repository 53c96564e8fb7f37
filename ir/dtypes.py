"""Tensor element types: names (``"float32"``), ONNX enum values and byte sizes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

_ONNX_TO_NAME: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.DOUBLE: "float64",
    TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.INT8: "int8",
    TensorProto.UINT8: "uint8",
    TensorProto.INT16: "int16",
    TensorProto.UINT16: "uint16",
    TensorProto.INT32: "int32",
    TensorProto.UINT32: "uint32",
    TensorProto.INT64: "int64",
    TensorProto.UINT64: "uint64",
    TensorProto.BOOL: "bool",
    TensorProto.STRING: "string",
    TensorProto.FLOAT8E4M3FN: "float8e4m3fn",
    TensorProto.FLOAT8E5M2: "float8e5m2",
    TensorProto.INT4: "int4",
    TensorProto.UINT4: "uint4",
    TensorProto.COMPLEX64: "complex64",
    TensorProto.COMPLEX128: "complex128",
}
_NAME_TO_ONNX = {v: k for k, v in _ONNX_TO_NAME.items()}

_BITS: dict[str, int] = {
    "float32": 32, "float64": 64, "float16": 16, "bfloat16": 16, "int8": 8, "uint8": 8,
    "int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "int64": 64, "uint64": 64,
    "bool": 8, "string": 64, "float8e4m3fn": 8, "float8e5m2": 8, "int4": 4, "uint4": 4,
    "complex64": 64, "complex128": 128,
}


def from_onnx(elem_type: int) -> str:
    try:
        return _ONNX_TO_NAME[elem_type]
    except KeyError:
        return TensorProto.DataType.Name(elem_type).lower()


def to_onnx(name: str) -> int:
    return _NAME_TO_ONNX[name]


def from_numpy(dtype: np.dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "bool"
    if dtype.kind in "OUS":
        return "string"
    return from_onnx(onnx.helper.np_dtype_to_tensor_dtype(dtype))


def to_numpy(name: str) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to_onnx(name)))


def bits(name: str) -> int:
    return _BITS.get(name, 32)


def itemsize(name: str) -> int:
    """Bytes per element, rounded up (int4 counts as one byte when stored alone)."""
    return max(1, bits(name) // 8)


def is_float(name: str) -> bool:
    return name.startswith(("float", "bfloat"))
