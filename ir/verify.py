"""The verifier: producer/use links, dangling inputs, acyclicity, shapes and dtypes."""

from __future__ import annotations

from symbiote.errors import InvalidModelError, ShapeError
from symbiote.ir.graph import Graph, topological_order


def verify(graph: Graph) -> None:
    """Raise :class:`InvalidModelError` (or :class:`ShapeError`) naming the first fault."""
    known: dict[int, str] = {}
    for v in graph.inputs:
        known[id(v)] = "input"
    for name, v in graph.constants.items():
        if v.const is None:
            raise InvalidModelError(f"constant {name!r} has no data")
        if tuple(v.const.shape) != tuple(v.shape or ()):
            raise InvalidModelError(f"constant {name!r}: shape {v.shape} does not match its data {v.const.shape}")
        known[id(v)] = "constant"
    names: set[str] = set()
    for n in graph.nodes:
        if n.name in names:
            raise InvalidModelError(f"two nodes are named {n.name!r}")
        names.add(n.name)
        for o in n.outputs:
            if o.producer is not n:
                raise InvalidModelError(f"node {n.name!r}: output {o.name!r} does not point back at its producer")
            if id(o) in known:
                raise InvalidModelError(f"value {o.name!r} is produced twice (by {n.name!r})")
            known[id(o)] = n.name
    order = topological_order(graph.nodes)  # raises on a cycle
    produced: set[int] = {id(v) for v in graph.inputs} | {id(v) for v in graph.constants.values()}
    for n in order:
        for i, v in enumerate(n.inputs):
            if v is None:
                continue
            if id(v) not in known:
                raise InvalidModelError(f"node {n.name!r} (op {n.onnx_op}): input {i} {v.name!r} is produced by nothing")
            if (n, i) not in [(u, k) for u, k in v.uses]:
                raise InvalidModelError(f"node {n.name!r}: value {v.name!r} does not list this use")
        for o in n.outputs:
            produced.add(id(o))
    for v in graph.values():
        for u, k in v.uses:
            if k >= len(u.inputs) or u.inputs[k] is not v:
                raise InvalidModelError(f"value {v.name!r} lists a stale use by {u.name!r}")
    for v in graph.outputs:
        if id(v) not in known:
            raise InvalidModelError(f"graph output {v.name!r} is produced by nothing")
    for v in graph.values():
        if v.shape is not None and any((not isinstance(d, int)) or d < 0 for d in v.shape):
            raise ShapeError(f"value {v.name!r} has an invalid shape {v.shape}")
    _check_shapes(graph, order)


def _check_shapes(graph: Graph, order) -> None:
    """Re-infer every node's output shapes and compare with the stored ones."""
    from symbiote.ir.control_flow import has_control_flow, scope_of
    from symbiote.ir.shapes import infer_node

    scope = scope_of(graph) if has_control_flow(graph) else None
    for n in order:
        inferred = infer_node(n, graph.opset, scope)
        if inferred is None:
            continue
        for o, (shape, dtype) in zip(n.outputs, inferred):
            if shape is not None and o.shape is not None and tuple(shape) != tuple(o.shape):
                raise ShapeError(f"node {n.name!r} ({n.onnx_op}): output {o.name!r} has shape {list(o.shape)} but its inputs give {list(shape)}")
            if dtype is not None and o.dtype != dtype:
                raise InvalidModelError(f"node {n.name!r} ({n.onnx_op}): output {o.name!r} has dtype {o.dtype} but its inputs give {dtype}")
