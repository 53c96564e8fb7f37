"""Constant folding, interleaved with shape inference.

Exporters leave shape arithmetic in the graph (TorchScript's Shape->Gather->Unsqueeze->
Concat->Reshape chains, dynamic Pad chains, ConstantOfShape weights). Once the input
shapes are resolved, :func:`fold_and_infer` walks the graph in topological order and, for
each node, first infers its output shapes and then, if every input is a constant (or the
node only reads a static shape: ``Shape``/``Size``), evaluates it and turns its outputs
into constants. So Reshape targets, Pad amounts and Resize sizes become static.

A small numpy evaluator covers the shape-arithmetic ops; anything else is evaluated by
``onnx.reference.ReferenceEvaluator``. Random ops, control flow, (de)quantization (which
would erase a quantized model's structure) and non-default domains are never folded, nor
are results over :data:`MAX_FOLD_ELEMS` elements.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from symbiote.ir import dtypes
from symbiote.ir.control_flow import has_control_flow, scope_of
from symbiote.ir.graph import Graph, Node
from symbiote.ir.shapes import apply, infer_node

#: never materialize a folded tensor larger than this (elements)
MAX_FOLD_ELEMS = 1 << 24

_NEVER_FOLD = frozenset({
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    "If", "Loop", "Scan", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "SequenceConstruct",
    "SequenceEmpty", "SplitToSequence", "ConcatFromSequence", "Optional",
})


def fold_and_infer(graph: Graph, keep: frozenset[str] = frozenset()) -> int:
    """Infer shapes and fold constant nodes in one topological sweep; returns nodes folded.

    ``keep`` names values that must stay as they are (referenced by subgraphs).
    """
    keep = keep | graph.scope_reads()
    declared = graph.meta.get("declared_shapes", {})
    scope = scope_of(graph) if has_control_flow(graph) else None
    folded: set[int] = set()
    for node in list(graph.nodes):
        outs = infer_node(node, graph.opset, scope)
        apply(node, outs, declared)
        arrays = _try_fold(node, graph.opset)
        if arrays is not None:
            _to_constants(graph, node, arrays)
            folded.add(id(node))
    if folded:
        graph.nodes = [n for n in graph.nodes if id(n) not in folded]
    _drop_identities(graph, keep)
    for name, v in list(graph.constants.items()):  # shape-arithmetic leftovers
        if not v.uses and not graph.is_output(v) and name not in keep:
            del graph.constants[name]
    return len(folded)


def _try_fold(node: Node, opset: dict[str, int]) -> list[np.ndarray] | None:
    if node.domain not in ("", "ai.onnx") or node.onnx_op in _NEVER_FOLD:
        return None
    if any(o.shape is None or math.prod(o.shape) > MAX_FOLD_ELEMS for o in node.outputs):
        return None
    x = node.input(0)
    if node.onnx_op in ("Shape", "Size") and x is not None and x.shape is not None:
        arrays = [_shape_of(node, x.shape)]
    elif all(v is None or v.is_const for v in node.inputs) and node.inputs:
        try:
            arrays = _evaluate(node, opset)
        except Exception:  # noqa: BLE001 - an op the evaluators cannot run stays a node
            return None
    else:
        return None
    if arrays is None or len(arrays) != len(node.outputs):
        return None
    out = []
    for o, a in zip(node.outputs, arrays):
        a = np.asarray(a)
        if o.dtype and dtypes.from_numpy(a.dtype) != o.dtype:
            try:
                a = a.astype(dtypes.to_numpy(o.dtype))
            except (KeyError, TypeError, ValueError):
                return None
        if o.shape is not None and tuple(a.shape) != tuple(o.shape):
            return None  # the evaluator and the shape rules disagree: leave the node alone
        out.append(a)
    return out


def _shape_of(node: Node, shape: tuple[int, ...]) -> np.ndarray:
    if node.onnx_op == "Size":
        return np.asarray(math.prod(shape), dtype=np.int64)
    rank = len(shape)
    start, end = int(node.attrs.get("start", 0)), node.attrs.get("end")
    return np.asarray(shape[slice(start, rank if end is None else int(end))], dtype=np.int64)


def _to_constants(graph: Graph, node: Node, arrays: list[np.ndarray]) -> None:
    for i, v in enumerate(node.inputs):
        if v is not None:
            v.uses.remove((node, i))
    node.inputs = []
    for o, a in zip(node.outputs, arrays):
        a.setflags(write=False)
        o.producer, o.const, o.shape, o.dtype = None, a, tuple(a.shape), dtypes.from_numpy(a.dtype)
        graph.constants[o.name] = o


def _drop_identities(graph: Graph, keep: frozenset[str]) -> None:
    """Remove Identity nodes (exporter noise) whose output is neither a graph output nor kept."""
    for node in list(graph.nodes):
        if node.onnx_op != "Identity" or node.domain not in ("", "ai.onnx"):
            continue
        src, out = node.input(0), node.output
        if src is None or graph.is_output(out) or out.name in keep:
            continue
        graph.replace_all_uses(out, src)
        graph.remove_node(node)


# ------------------------------------------------------------------ evaluation
def _evaluate(node: Node, opset: dict[str, int]) -> list[np.ndarray] | None:
    fn = _NUMPY.get(node.onnx_op)
    ins = [None if v is None else v.const for v in node.inputs]
    if fn is not None:
        res = fn(node, ins)
        if res is not None:
            return list(res) if isinstance(res, (list, tuple)) else [np.asarray(res)]
    return _reference(node, ins, opset)


def _reference(node: Node, ins: list[np.ndarray | None], opset: dict[str, int]) -> list[np.ndarray]:
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    from symbiote.frontend.attrs import node_proto

    names = ["" if a is None else f"in{i}" for i, a in enumerate(ins)]
    feeds = {n: a for n, a in zip(names, ins) if a is not None}
    proto = node_proto(node, names, [f"out{k}" for k in range(len(node.outputs))])
    g = helper.make_graph(
        [proto], "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds.items()],
        [helper.make_value_info(f"out{k}", onnx.TypeProto()) for k in range(len(node.outputs))],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opset.items()])
    return list(ReferenceEvaluator(model).run(None, feeds))


def _axes(node: Node, ins: list, i: int = 1) -> list[int] | None:
    if len(ins) > i and ins[i] is not None:
        return [int(a) for a in np.asarray(ins[i]).reshape(-1)]
    a = node.attrs.get("axes")
    return None if a is None else [int(x) for x in a]


def _out_shape(node: Node) -> tuple[int, ...]:
    return tuple(node.output.shape)


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu":
        return (np.trunc(a / b)).astype(a.dtype)
    return (a / b).astype(a.dtype)


def _slice(node: Node, ins: list) -> np.ndarray:
    x = ins[0]
    starts, ends = np.asarray(ins[1]).reshape(-1), np.asarray(ins[2]).reshape(-1)
    axes = _axes(node, ins, 3) or list(range(len(starts)))
    steps = np.asarray(ins[4]).reshape(-1) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        lo, hi, step = slice(int(s), int(e), int(st)).indices(x.shape[int(a) % x.ndim])
        index[int(a) % x.ndim] = slice(lo, hi if hi >= 0 else None, step)
    return x[tuple(index)]


def _like(fn: Callable) -> Callable:
    """A broadcast binary op whose result keeps the first input's dtype."""
    return lambda node, ins: np.asarray(fn(ins[0], ins[1])).astype(ins[0].dtype)


_NUMPY: dict[str, Callable[[Node, list], np.ndarray | list | None]] = {
    "Identity": lambda n, ins: ins[0],
    "Cast": lambda n, ins: ins[0].astype(dtypes.to_numpy(dtypes.from_onnx(int(n.attrs["to"])))),
    "Reshape": lambda n, ins: ins[0].reshape(_out_shape(n)),
    "Flatten": lambda n, ins: ins[0].reshape(_out_shape(n)),
    "Squeeze": lambda n, ins: ins[0].reshape(_out_shape(n)),
    "Unsqueeze": lambda n, ins: ins[0].reshape(_out_shape(n)),
    "Expand": lambda n, ins: np.array(np.broadcast_to(ins[0], _out_shape(n))),
    "Concat": lambda n, ins: np.concatenate([a for a in ins if a is not None], axis=int(n.attrs["axis"])),
    "Gather": lambda n, ins: np.take(ins[0], ins[1].astype(np.int64), axis=int(n.attrs.get("axis", 0))),
    "Slice": lambda n, ins: _slice(n, ins) if len(ins) > 2 else None,
    "Transpose": lambda n, ins: np.transpose(ins[0], n.attrs.get("perm")),
    "Add": _like(np.add),
    "Sub": _like(np.subtract),
    "Mul": _like(np.multiply),
    "Div": lambda n, ins: _int_div(*np.broadcast_arrays(ins[0], ins[1])),
    "Min": lambda n, ins: np.minimum.reduce(np.broadcast_arrays(*ins)) if len(ins) > 1 else ins[0],
    "Max": lambda n, ins: np.maximum.reduce(np.broadcast_arrays(*ins)) if len(ins) > 1 else ins[0],
    "Neg": lambda n, ins: np.negative(ins[0]),
    "Abs": lambda n, ins: np.abs(ins[0]),
    "Floor": lambda n, ins: np.floor(ins[0]),
    "Ceil": lambda n, ins: np.ceil(ins[0]),
    "Sqrt": lambda n, ins: np.sqrt(ins[0]),
    "Equal": lambda n, ins: np.equal(ins[0], ins[1]),
    "Less": lambda n, ins: np.less(ins[0], ins[1]),
    "Greater": lambda n, ins: np.greater(ins[0], ins[1]),
    "Not": lambda n, ins: np.logical_not(ins[0]),
    "And": lambda n, ins: np.logical_and(ins[0], ins[1]),
    "Or": lambda n, ins: np.logical_or(ins[0], ins[1]),
    "Where": lambda n, ins: np.where(ins[0], ins[1], ins[2]),
    "Tile": lambda n, ins: np.tile(ins[0], [int(r) for r in ins[1]]),
    "Range": lambda n, ins: np.arange(ins[0].item(), ins[1].item(), ins[2].item(), dtype=ins[0].dtype),
    "ConstantOfShape": lambda n, ins: np.full(
        [int(d) for d in ins[0].reshape(-1)],
        np.asarray(n.attrs["value"]).reshape(-1)[0] if "value" in n.attrs else np.float32(0),
        dtype=np.asarray(n.attrs["value"]).dtype if "value" in n.attrs else np.float32,
    ),
}
