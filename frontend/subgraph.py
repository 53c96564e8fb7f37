"""Subgraph bodies (If branches, Loop and Scan bodies) as IR graphs of their own.

``lower_body(proto, formal, outer, opset, label) -> Graph`` builds the IR of one body the
way the loader builds a model (:mod:`.build`), then infers and folds it (:mod:`.fold`):

* the body's formal inputs (a Loop's iteration number, condition and carried values, a
  Scan's states and sequence slices) become graph inputs with the shape and dtype the
  caller gives (the declared static shape when it gives none);
* every name the body reads from the scopes around it (:func:`.build.outer_names`,
  nested subgraphs included) is bound to the outer value of that name: an outer constant
  becomes a constant of the body (same array, so weights stay shared), anything else a
  graph input with the outer value's shape and dtype. ``body.meta["outer_bound"]`` lists
  these names, ``body.meta["formal_inputs"]`` how many of ``body.inputs`` are formal.

So the body's output shapes follow from the outer shapes, not from the types the file
declares for the branch outputs. The caller (:mod:`symbiote.ir.control_flow`) owns
caching and what the body is used for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import onnx

from symbiote.errors import InvalidModelError
from symbiote.frontend.build import add_body, add_initializers, declared, outer_names
from symbiote.frontend.fold import fold_and_infer
from symbiote.ir.graph import Graph, Shape, Value

#: a formal input's (shape, dtype); either may be None (unknown)
Formal = tuple[Shape | None, str | None]


def _static(dims) -> Shape | None:
    if dims is None or not all(isinstance(d, int) and d > 0 for d in dims):
        return None
    return tuple(dims)


def lower_body(
    proto: onnx.GraphProto,
    formal: Sequence[Formal],
    outer: Mapping[str, Value],
    opset: Mapping[str, int],
    label: str,
) -> Graph:
    """The verified IR graph of one body; see the module docstring. Raises
    :class:`InvalidModelError` when the body reads a name the outer scope lacks or the
    node gives it the wrong number of inputs."""
    if len(formal) != len(proto.input):
        raise InvalidModelError(f"{label}: the body declares {len(proto.input)} inputs but the node gives it {len(formal)}")
    body = Graph(proto.name or "body", opset=dict(opset))
    values: dict[str, Value] = {}
    add_initializers(body, proto, values, None, label)
    for vi, (shape, dt) in zip(proto.input, formal):
        d = declared(vi)
        values[vi.name] = body.add_input(vi.name, shape if shape is not None else _static(d.dims), dt or d.dtype or "float32")
    reads = sorted(outer_names(proto))
    for name in reads:
        v = outer.get(name)
        if v is None:
            raise InvalidModelError(f"{label}: the body reads {name!r}, which the enclosing graph does not define")
        values[name] = body.add_const(name, v.const, unique=False) if v.is_const else body.add_input(name, v.shape, v.dtype)
    body.meta["outer_bound"] = tuple(reads)
    body.meta["formal_inputs"] = len(proto.input)
    body.meta["declared_shapes"] = {
        vi.name: s for vi in list(proto.value_info) + list(proto.output) if (s := _static(declared(vi).dims)) is not None
    }
    keep = add_body(body, proto, values, None, label)
    fold_and_infer(body, frozenset(keep) | frozenset(reads))
    body.verify()
    return body
