"""``canonicalize``: dead-code elimination, no-op removal and constant folding (exact).

No-ops removed: Identity, Dropout in inference (mask unused), Cast to the same type,
Reshape/Flatten/Squeeze/Unsqueeze/Expand to the same shape, Transpose with the identity
permutation, single-input Concat/Sum/Max/Min/Mean. Constant folding reuses the
frontend's folder (``symbiote.frontend.fold.fold_and_infer``: numpy for shape arithmetic,
``onnx.reference`` for the rest; QuantizeLinear/DequantizeLinear are never folded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from symbiote.ir.graph import Graph, Node, Value
from symbiote.passes.base import Pass

_SAME_SHAPE = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Expand"})
_SINGLE = frozenset({"Concat", "Sum", "Max", "Min", "Mean"})


def dead_code(graph: Graph) -> int:
    """Remove nodes none of whose outputs are used or graph outputs."""
    removed = 0
    scope_reads = graph.scope_reads()
    for node in reversed(list(graph.nodes)):
        if any(o.uses or graph.is_output(o) or o.name in scope_reads for o in node.outputs):
            continue
        graph.remove_node(node)
        removed += 1
    graph.prune_unused_constants()
    return removed


def _noop_source(node: Node) -> Value | None:
    """The input a no-op node passes through unchanged, or None."""
    if node.domain not in ("", "ai.onnx"):
        return None
    x, y = node.input(0), node.outputs[0] if node.outputs else None
    if x is None or y is None:
        return None
    op = node.onnx_op
    if op == "Identity":
        return x
    if op == "Dropout":
        mode = node.input(2)
        if len(node.outputs) > 1 and (node.outputs[1].uses):
            return None
        if mode is not None and not (mode.is_const and not bool(np.asarray(mode.const).any())):
            return None
        return x
    if op == "Cast":
        return x if y.dtype == x.dtype and x.dtype == _cast_to(node, x.dtype) else None
    if op in _SAME_SHAPE:
        return x if x.shape is not None and x.shape == y.shape and x.dtype == y.dtype else None
    if op == "Transpose":
        perm = node.attrs.get("perm")
        return x if perm is not None and list(perm) == list(range(len(perm))) else None
    if op in _SINGLE and len([v for v in node.inputs if v is not None]) == 1:
        return x
    return None


def _cast_to(node: Node, default: str) -> str:
    from symbiote.ir import dtypes

    to = node.attrs.get("to")
    try:
        return dtypes.from_onnx(int(to)) if to is not None else default
    except (TypeError, ValueError):
        return default


def remove_noops(graph: Graph) -> int:
    removed = 0
    scope_reads = graph.scope_reads()
    for node in list(graph.nodes):
        src = _noop_source(node)
        if src is None or node.outputs[0].name in scope_reads:
            continue
        out = node.outputs[0]
        if graph.is_output(out):
            # keep the model's output name: the pass-through value takes it over
            if src.producer is None or graph.is_output(src) or src.is_const:
                continue
            graph.replace_all_uses(out, src)
            graph.remove_node(node)
            src.name = out.name
        else:
            graph.replace_all_uses(out, src)
            graph.remove_node(node)
        removed += 1
    return removed


@dataclass(frozen=True)
class Canonicalize(Pass):
    """Dead-code elimination, no-op removal, constant folding (repeated until stable)."""

    max_rounds: int = 8

    name: ClassVar[str] = "canonicalize"
    exact: ClassVar[bool] = True

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        from symbiote.frontend.fold import fold_and_infer

        totals = {"dead": 0, "noops": 0, "folded": 0}
        for _ in range(self.max_rounds):
            n_const = len(graph.constants)
            step = {"dead": dead_code(graph), "noops": remove_noops(graph), "folded": fold_and_infer(graph)}
            step["dead"] += dead_code(graph)
            for k, v in step.items():
                totals[k] += v
            if not any(step.values()) and len(graph.constants) == n_const:
                break
        return any(totals.values()), totals
