"""Zero-copy access to initializer bytes: where each ``raw_data`` lies in the file.

Reading ``TensorProto.raw_data`` through protobuf copies the bytes into a new Python
object, which for a 440 MB BERT costs more than parsing the whole file. Instead the
loader memory-maps the file, and this module walks just enough of the protobuf wire
format (ModelProto.graph -> GraphProto.initializer -> TensorProto.name/raw_data) to
find each initializer's ``(offset, length)``; the weights then become
``np.frombuffer`` views of the mapping. Field numbers are those of onnx/onnx.proto3.
"""

from __future__ import annotations

from collections.abc import Iterator

_MODEL_GRAPH = 7  # ModelProto.graph
_GRAPH_INITIALIZER = 5  # GraphProto.initializer
_TENSOR_NAME = 8  # TensorProto.name
_TENSOR_RAW_DATA = 9  # TensorProto.raw_data


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field in buf[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            yield number, pos, pos + length
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {pos}")


def raw_data_spans(buf: memoryview) -> dict[str, tuple[int, int]]:
    """Initializer name -> (offset, length) of its raw_data in ``buf`` (top-level graph only).

    Returns an empty dict if the bytes cannot be walked; the caller then copies instead.
    """
    spans: dict[str, tuple[int, int]] = {}
    try:
        for number, start, end in _fields(buf, 0, len(buf)):
            if number != _MODEL_GRAPH:
                continue
            for gnum, gs, ge in _fields(buf, start, end):
                if gnum != _GRAPH_INITIALIZER:
                    continue
                name, raw = None, None
                for tnum, ts, te in _fields(buf, gs, ge):
                    if tnum == _TENSOR_NAME:
                        name = bytes(buf[ts:te]).decode("utf-8", "replace")
                    elif tnum == _TENSOR_RAW_DATA:
                        raw = (ts, te - ts)
                if name is not None and raw is not None:
                    spans[name] = raw
    except (IndexError, ValueError):
        return {}
    return spans
