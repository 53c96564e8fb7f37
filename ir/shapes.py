"""Shape and dtype inference for IR nodes.

``infer_node(node)`` answers one ``(shape, dtype)`` pair per output (either part may be
``None``) or ``None`` when it cannot say. It first looks the node's ONNX op type up in
the rule table of :mod:`symbiote.ir.shape_rules` (pure Python, no model building, so
loading a large model stays fast); ops without a rule fall back to
``onnx.shape_inference`` on a one-node model whose inputs are typed value_infos (small
constant inputs are fed as initializers so data-dependent shapes still work).

Control flow (If/Loop/Scan) takes its output shapes from its bodies, inferred from the
outer shapes (:mod:`symbiote.ir.control_flow`).

``infer_graph(graph)`` recomputes every node output in topological order. Passes call it
after they change weights or shapes. Declared shapes from the file are never trusted,
except as a last resort for outputs no rule and no ONNX inference can explain (contrib
ops): the loader stores those in ``graph.meta["declared_shapes"]``.
"""

from __future__ import annotations

import numpy as np

from symbiote.errors import ShapeError
from symbiote.ir import dtypes
from symbiote.ir.control_flow import Scope, has_control_flow, is_control_flow, output_types, scope_of
from symbiote.ir.graph import Graph, Node, topological_order
from symbiote.ir.shape_rules import RULES, Out, Unknown

#: ONNX domains whose op names the rule table follows (contrib ops share names/semantics).
_RULE_DOMAINS = frozenset({"", "ai.onnx", "com.microsoft"})
#: constant inputs up to this many elements are given to the ONNX fallback as initializers
_FALLBACK_CONST_ELEMS = 1 << 16


def infer_node(node: Node, opset: dict[str, int] | None = None, scope: Scope | None = None) -> list[Out] | None:
    """One ``(shape, dtype)`` per output, or ``None`` if nothing can be said.

    Control flow (If/Loop/Scan) reads outer values by name: its shapes come from its
    bodies given ``scope`` (:func:`symbiote.ir.control_flow.scope_of` of the node's graph);
    without a scope nothing is said. Raises :class:`ShapeError` when the inputs are
    inconsistent (e.g. a MatMul whose inner dims differ), naming the node.
    """
    if is_control_flow(node):
        return output_types(node, scope) if scope is not None else None
    fn = RULES.get(node.onnx_op) if node.domain in _RULE_DOMAINS else None
    if fn is not None:
        try:
            outs = fn(node)
        except Unknown:
            outs = None
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as e:
            raise ShapeError(f"node {node.name!r} ({node.onnx_op}): cannot infer its output shape ({e})") from e
        if outs is not None:
            outs = list(outs) + [(None, None)] * (len(node.outputs) - len(outs))
            return outs[: len(node.outputs)]
    return _onnx_fallback(node, opset)


def infer_graph(graph: Graph) -> None:
    """Recompute the shape and dtype of every node output, in topological order."""
    declared: dict[str, tuple[int, ...]] = graph.meta.get("declared_shapes", {})
    scope = scope_of(graph) if has_control_flow(graph) else None
    for node in topological_order(graph.nodes):
        apply(node, infer_node(node, graph.opset, scope), declared)


def apply(node: Node, outs: list[Out] | None, declared: dict | None = None) -> None:
    """Store inferred shapes/dtypes on the node's outputs (declared shapes as last resort)."""
    declared = declared or {}
    for k, o in enumerate(node.outputs):
        shape, dt = outs[k] if outs is not None and k < len(outs) else (None, None)
        if shape is None:
            shape = declared.get(o.name)
        if shape is not None and any(d < 0 for d in shape):
            raise ShapeError(f"node {node.name!r} ({node.onnx_op}): output {o.name!r} gets a negative dim {list(shape)}")
        o.shape = tuple(int(d) for d in shape) if shape is not None else None
        if dt is not None:
            o.dtype = dt


# ------------------------------------------------------------------ ONNX fallback
def _onnx_fallback(node: Node, opset: dict[str, int] | None) -> list[Out] | None:
    import onnx
    from onnx import helper, numpy_helper

    from symbiote.frontend.attrs import node_proto

    inputs, inits, names = [], [], []
    for i, v in enumerate(node.inputs):
        if v is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        try:
            elem = dtypes.to_onnx(v.dtype)
        except KeyError:
            return None
        if v.const is not None and v.const.size <= _FALLBACK_CONST_ELEMS:
            inits.append(numpy_helper.from_array(np.asarray(v.const), name))
        elif v.shape is None:
            inputs.append(helper.make_tensor_value_info(name, elem, None))
        else:
            inputs.append(helper.make_tensor_value_info(name, elem, list(v.shape)))
    outs = [f"out{k}" for k in range(len(node.outputs))]
    try:
        proto = node_proto(node, names, outs)
        graph = helper.make_graph([proto], "one", inputs, [helper.make_value_info(o, onnx.TypeProto()) for o in outs],
                                  initializer=inits)
        ops = dict(opset or {"": onnx.defs.onnx_opset_version()})
        ops.setdefault(node.domain or "", 1)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in ops.items()])
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - ONNX cannot say; the caller treats this as unknown
        return None
    by_name = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    result: list[Out] = []
    for o in outs:
        vi = by_name.get(o)
        if vi is None or not vi.type.HasField("tensor_type"):
            result.append((None, None))
            continue
        t = vi.type.tensor_type
        dt = dtypes.from_onnx(t.elem_type) if t.elem_type else None
        shape = None
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shape = tuple(int(d.dim_value) for d in t.shape.dim)
        result.append((shape, dt))
    if all(s is None and d is None for s, d in result):
        return None
    return result
