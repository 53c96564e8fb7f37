"""ONNX attributes <-> plain Python values.

The IR keeps attributes as plain values: ``int``, ``float``, ``str``, lists of those,
numpy arrays for TENSOR attributes and ``onnx.GraphProto`` kept verbatim for subgraphs
(If/Loop/Scan bodies). The loader records each attribute's ONNX type in
``node.meta["_attr_types"]`` so that an empty list or an int-valued float still
round-trips exactly; :func:`to_attribute` uses that hint. :func:`node_proto` rebuilds
one IR node as a NodeProto (for the one-node models that constant folding and the ONNX
shape-inference fallback evaluate).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, helper, numpy_helper

_A = AttributeProto



#: prefix of the NodeProto metadata_props that carry ``node.meta`` annotations (save/load)
META_PREFIX = "symbiote."

def _text(b: bytes) -> str | bytes:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


def from_attribute(attr: AttributeProto) -> tuple[Any, int]:
    """The plain value of an attribute and its ONNX attribute type."""
    t = attr.type
    if t == _A.FLOAT:
        return float(attr.f), t
    if t == _A.INT:
        return int(attr.i), t
    if t == _A.STRING:
        return _text(attr.s), t
    if t == _A.TENSOR:
        return numpy_helper.to_array(attr.t), t
    if t == _A.GRAPH:
        return attr.g, t
    if t == _A.FLOATS:
        return [float(x) for x in attr.floats], t
    if t == _A.INTS:
        return [int(x) for x in attr.ints], t
    if t == _A.STRINGS:
        return [_text(x) for x in attr.strings], t
    if t == _A.TENSORS:
        return [numpy_helper.to_array(x) for x in attr.tensors], t
    if t == _A.GRAPHS:
        return list(attr.graphs), t
    # sparse tensors, type protos: kept verbatim
    return helper.get_attribute_value(attr), t


def to_attribute(name: str, value: Any, attr_type: int | None = None) -> AttributeProto:
    """Build an AttributeProto from a plain value (``attr_type`` from the loader's hint)."""
    if isinstance(value, np.ndarray):
        return helper.make_attribute(name, numpy_helper.from_array(value), attr_type=_A.TENSOR)
    if isinstance(value, np.generic):
        value = value.item()
    if attr_type == _A.FLOAT:
        value = float(value)
    elif attr_type == _A.INT:
        value = int(value)
    elif attr_type == _A.FLOATS:
        value = [float(x) for x in value]
    elif attr_type == _A.INTS:
        value = [int(x) for x in value]
    elif attr_type == _A.TENSORS:
        value = [numpy_helper.from_array(np.asarray(x)) if isinstance(x, np.ndarray) else x for x in value]
    elif isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
        value, attr_type = [numpy_helper.from_array(x) for x in value], _A.TENSORS
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list) and not value and attr_type is None:
        attr_type = _A.INTS
    return helper.make_attribute(name, value, attr_type=attr_type)


def node_proto(node: Any, inputs: list[str], outputs: list[str]) -> onnx.NodeProto:
    """The ONNX form of an IR node (op, domain, attributes typed by the loader's hints)
    reading ``inputs`` and writing ``outputs`` (``""`` for an absent optional input)."""
    types = node.meta.get("_attr_types", {})
    proto = helper.make_node(node.onnx_op, inputs, outputs, domain=node.domain or "")
    proto.attribute.extend(to_attribute(k, a, types.get(k)) for k, a in node.attrs.items())
    return proto


def attrs_of(node: onnx.NodeProto) -> tuple[dict[str, Any], dict[str, int]]:
    """All attributes of a NodeProto as plain values, plus their ONNX types."""
    values, types = {}, {}
    for a in node.attribute:
        values[a.name], types[a.name] = from_attribute(a)
    return values, types
