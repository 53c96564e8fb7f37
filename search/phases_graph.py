"""ONNX rewrites of a decoder for its phases (:mod:`symbiote.search.phases`).

* :func:`drop_past`: each past input is removed and its append ``Concat(past, new)`` becomes
  ``Identity(new)`` (the prefill of a model exported with a cache: an empty past).
* :func:`keys_in_place`: a ``Transpose`` that swaps the last two axes of a rank-4 tensor
  and feeds only the second input of a ``MatMul`` (``q @ k^T``, as ``torch.onnx`` exports
  attention scores) becomes one ``Einsum("bhqd,bhkd->bhqk")`` of the untransposed tensor:
  the same product, and the lowering then reads the key cache once inside it instead of
  pricing a copy of the whole cache first (``ir/lower.py`` prices a Transpose as a copy).

Both (and :func:`symbiote.search.phases_cacheless.append_caches`) edit the graph's nodes, inputs
and outputs in place; :func:`edited` applies them for the time of
a load and puts the originals back, so a large model's initializers are never copied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import onnx
from onnx import helper

from symbiote.errors import SymbioteError


class PhaseGraphError(SymbioteError):
    """A decoder whose graph the phase's rewrite does not recognise."""


def _rank(vi: onnx.ValueInfoProto) -> int:
    t = vi.type.tensor_type
    return len(t.shape.dim) if t.HasField("shape") else -1


def past_inputs(g: onnx.GraphProto) -> set[str]:
    """The rank-4 inputs whose name starts with ``past`` (module doc of phases)."""
    return {vi.name for vi in g.input if vi.name.lower().startswith("past") and _rank(vi) == 4}


def drop_past(g: onnx.GraphProto) -> None:
    """Remove the past inputs; each ``Concat(past, new)`` becomes ``Identity(new)``."""
    past = past_inputs(g)
    for node in g.node:
        hit = [x for x in node.input if x in past]
        if not hit:
            continue
        rest = [x for x in node.input if x not in past and x]
        if node.op_type != "Concat" or len(rest) != 1:
            raise PhaseGraphError(f"past input {hit[0]!r} feeds {node.op_type} node {node.name!r}, not an append "
                                  "Concat(past, new): its prefill is not derived")
        node.op_type = "Identity"
        del node.input[:]
        node.input.append(rest[0])
        del node.attribute[:]
    keep = [vi for vi in g.input if vi.name not in past]
    del g.input[:]
    g.input.extend(keep)


def keys_in_place(g: onnx.GraphProto) -> int:
    """``MatMul(q, Transpose(k, perm=[0, 1, 3, 2]))`` -> ``Einsum(q, k)``; returns how many."""
    uses: dict[str, int] = {}
    for node in g.node:
        for x in node.input:
            uses[x] = uses.get(x, 0) + 1
    outputs = {o.name for o in g.output}
    transposes = {n.output[0]: n for n in g.node if n.op_type == "Transpose" and len(n.output) == 1
                  and [a.ints for a in n.attribute if a.name == "perm"] == [[0, 1, 3, 2]]}
    done = 0
    for node in g.node:
        t = transposes.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if t is None or uses.get(t.output[0]) != 1 or t.output[0] in outputs:
            continue
        node.op_type = "Einsum"
        node.input[1] = t.input[0]
        node.attribute.append(helper.make_attribute("equation", "bhqd,bhkd->bhqk"))
        done += 1
    if done:  # the transposes now feed nothing: drop them
        used = {x for n in g.node for x in n.input}
        keep = [n for n in g.node if not (n.op_type == "Transpose" and n.output[0] in transposes and n.output[0] not in used)]
        del g.node[:]
        g.node.extend(keep)
    return done


@contextmanager
def edited(model: onnx.ModelProto, edit: Callable[[onnx.GraphProto], object]) -> Iterator[onnx.ModelProto]:
    """``model`` with ``edit`` applied to its graph's nodes, inputs and outputs, restored on exit."""
    g = model.graph
    nodes = [onnx.NodeProto() for _ in g.node]
    for copy, node in zip(nodes, g.node, strict=True):
        copy.CopyFrom(node)
    inputs = [onnx.ValueInfoProto() for _ in g.input]
    for copy, vi in zip(inputs, g.input, strict=True):
        copy.CopyFrom(vi)
    outputs = [onnx.ValueInfoProto() for _ in g.output]
    for copy, vi in zip(outputs, g.output, strict=True):
        copy.CopyFrom(vi)
    try:
        edit(g)
        yield model
    finally:
        del g.node[:]
        g.node.extend(nodes)
        del g.input[:]
        g.input.extend(inputs)
        del g.output[:]
        g.output.extend(outputs)


__all__ = ["PhaseGraphError", "drop_past", "edited", "keys_in_place", "past_inputs"]
