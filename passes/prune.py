"""Structured pruning (``prune``) and magnitude sparsity (``sparsify``: unstructured or 2:4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from symbiote.errors import PassError
from symbiote.ir import ops
from symbiote.ir.channel_groups import ChannelGroups, analyze, legal_width, width_problem
from symbiote.ir.graph import Graph, Node
from symbiote.passes.base import Pass
from symbiote.passes.channels import apply_selection, selection_for

Criterion = Literal["l1", "l2", "bn_gamma", "random"]


def resolve_widths(cg: ChannelGroups, widths: dict[str, int], *, allow_growth: bool) -> dict[int, int]:
    """Group names -> ids, checking that each exists, is free, and the width is legal
    (:func:`symbiote.ir.channel_groups.width_problem`: whole heads, no growth of a
    LayerNorm-normalized group)."""
    out: dict[int, int] = {}
    for name, n in widths.items():
        try:
            g = cg.by_name(name)
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, [x.name for x in cg.free], n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            free = [x.name for x in cg.free]
            listed = ", ".join(free[:8]) + (f", ... ({len(free) - 8} more)" if len(free) > 8 else "")
            raise PassError(f"no channel group named {name!r}{hint} (free groups: {listed or 'none'})") from None
        if not g.free:
            raise PassError(f"channel group {name!r} cannot change width: {g.reason}")
        if not isinstance(n, int) or n < 1:
            raise PassError(f"channel group {name!r}: width must be a positive integer, got {n!r}")
        if n > g.width and not allow_growth:
            raise PassError(f"channel group {name!r}: prune cannot grow it from {g.width} to {n} (use resize-channels)")
        problem = width_problem(g, n)
        if problem:
            raise PassError(problem)
        out[g.id] = n
    return out


@dataclass(frozen=True)
class Prune(Pass):
    """Remove whole channels from every free channel group (or the groups in ``widths``),
    ranked by importance summed over every layer of the group. A group of attention heads
    loses whole heads (``ratio`` rounds its width to the nearest multiple of head_dim, at
    least one head; a ``widths`` entry that splits a head is a PassError); the hidden size
    of a transformer's residual stream (every LayerNorm, embedding, projection and residual
    Add on it) is one group, pruned when no model input/output fixes it."""

    ratio: float | None = None
    widths: dict[str, int] | None = None
    criterion: Criterion = "l1"
    seed: int = 0

    name: ClassVar[str] = "prune"
    exact: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if (self.ratio is None) == (self.widths is None):
            raise PassError("prune: give exactly one of ratio=... or widths={group:width}")
        if self.ratio is not None and not 0.0 <= self.ratio < 1.0:
            raise PassError(f"prune: ratio must be in [0, 1), got {self.ratio}")

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        cg = analyze(graph)
        if self.widths is not None:
            targets = resolve_widths(cg, self.widths, allow_growth=False)
        else:
            targets = {g.id: legal_width(g, max(1, int(round(g.width * (1.0 - self.ratio))))) for g in cg.free}
        sel = selection_for(graph, cg, targets, self.criterion, self.seed)
        apply_selection(graph, cg, sel)
        changed = {cg.groups[g].name: [cg.groups[g].width, len(s)] for g, s in sel.items()}
        return bool(sel), {"groups_changed": len(changed), "widths": changed}


_SPARSE_SLOTS = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}


def weight_of(node: Node):
    """The weight operand ``sparsify`` acts on (None for other ops)."""
    slot = _SPARSE_SLOTS.get(node.onnx_op)
    return node.input(slot) if slot is not None else None


def sparsifiable(node: Node) -> bool:
    """Whether ``sparsify`` acts on ``node``: a compute layer (Conv, ConvTranspose, Gemm,
    MatMul) with a non-empty constant weight. The ``sparsity`` model knob asks the same."""
    w = weight_of(node)
    return w is not None and w.is_const and w.size > 0 and node.op in ops.COMPUTE

SparsityPattern = Literal["unstructured", "2:4"]
_DEFAULT_RATIO = 0.5


def reduction_axis(node: Node) -> int | None:
    """The axis of ``node``'s weight (input 1) that its MACs reduce over, along which 2:4
    groups are formed: Conv ``[K, C/g, R, S]`` -> 1 (input channels), ConvTranspose
    ``[C, K/g, R, S]`` -> 0, Gemm ``B`` -> 0 (``[K_in, N]``) or 1 with ``transB``,
    MatMul ``[..., K_in, N]`` -> -2 (0 for a 1-D weight). None for other ops."""
    w = node.input(1)
    rank = len(w.shape) if w is not None and w.shape is not None else 0
    if node.onnx_op == "Conv":
        return 1
    if node.onnx_op == "ConvTranspose":
        return 0
    if node.onnx_op == "Gemm":
        return 1 if int(node.attrs.get("transB", 0) or 0) else 0
    if node.onnx_op == "MatMul":
        return 0 if rank < 2 else rank - 2
    return None


def prune_24(arr: np.ndarray, axis: int) -> np.ndarray:
    """``arr`` with the 2 smallest-magnitude weights of every group of 4 consecutive
    weights along ``axis`` zeroed (ties: the earlier one goes). ``arr.shape[axis] % 4 == 0``."""
    moved = np.moveaxis(arr, axis, -1)
    groups = moved.reshape(-1, 4)
    order = np.argsort(np.abs(groups), axis=1, kind="stable")
    out = groups.copy()
    np.put_along_axis(out, order[:, :2], 0, axis=1)
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


def is_24(arr: np.ndarray, axis: int) -> bool:
    """Whether every group of 4 consecutive weights along ``axis`` has at least 2 zeros."""
    if arr.ndim == 0 or arr.shape[axis] % 4:
        return False
    groups = np.moveaxis(arr, axis, -1).reshape(-1, 4)
    return bool(np.all(np.sum(groups == 0, axis=1) >= 2))


@dataclass(frozen=True)
class Sparsify(Pass):
    """Magnitude sparsity of the constant weights of Conv, ConvTranspose, Gemm and MatMul
    layers, unstructured or 2:4 structured; records ``node.meta["sparsity"]`` (the measured
    fraction of zero weights) and, for 2:4, ``node.meta["sparsity_pattern"] = "2:4"``.

    * ``ratio``: unstructured: zero the smallest-magnitude ``ratio`` of each layer's weights.
    * ``pattern="2:4"``: in every group of 4 consecutive weights along the layer's reduction
      (input-channel) axis (:func:`reduction_axis`) keep the 2 largest magnitudes.
    * ``layers={node: fraction | "2:4"}``: per layer, overriding the rule above.

    The layers ``layers`` does not name follow ``pattern="2:4"``, else ``ratio``, else (no
    ``ratio``) stay untouched when ``layers`` is given, else take ``ratio = 0.5`` (so
    ``sparsify`` and ``sparsify(0.3)`` behave as they always did). A 2:4 layer whose
    grouped axis is not a multiple of 4 (an RGB stem conv, a depthwise conv) or whose weight
    another layer reads along another axis is **skipped** (``info["skipped"] = {layer:
    reason}``) under ``pattern="2:4"`` and a PassError when ``layers`` names it. A later
    unstructured run keeps a layer's ``"2:4"`` mark only if its weights still are 2:4."""

    ratio: float | None = None
    layers: dict[str, float | Literal["2:4"]] | None = None
    pattern: SparsityPattern = "unstructured"

    name: ClassVar[str] = "sparsify"
    exact: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.ratio is not None and (isinstance(self.ratio, bool) or not 0.0 <= self.ratio < 1.0):
            raise PassError(f"sparsify: ratio must be in [0, 1), got {self.ratio!r}")
        if self.pattern not in ("unstructured", "2:4"):
            raise PassError(f"sparsify: pattern must be 'unstructured' or '2:4', got {self.pattern!r}")
        if self.pattern == "2:4" and self.ratio is not None:
            raise PassError("sparsify: give ratio=... (unstructured) or pattern=\"2:4\", not both "
                            "(mix them per layer with layers={node: fraction or \"2:4\"})")
        for k, v in (self.layers or {}).items():
            if v == "2:4":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                raise PassError(f"sparsify: layers[{k!r}] must be a fraction in [0, 1) or \"2:4\", got {v!r}")

    def _default_rule(self) -> float | str | None:
        if self.pattern == "2:4":
            return "2:4"
        if self.ratio is not None:
            return float(self.ratio)
        return None if self.layers else _DEFAULT_RATIO

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        candidates: list[Node] = []
        candidates.extend(n for n in graph.nodes if sparsifiable(n))
        named = self.layers or {}
        _check_layer_names(graph, named, [n.name for n in candidates])
        default = self._default_rule()
        done: dict[str, tuple[Any, int | None, str, np.ndarray]] = {}   # weight -> (rule, axis, first layer, new array)
        count, structured, skipped = 0, [], {}
        for n in candidates:
            explicit = n.name in named
            rule = named[n.name] if explicit else default
            if rule is None:
                continue
            rule = "2:4" if rule == "2:4" else float(rule)
            w = n.input(_SPARSE_SLOTS[n.onnx_op])
            arr = np.asarray(w.const)
            axis = reduction_axis(n) if rule == "2:4" else None
            problem = None
            if rule == "2:4":
                size = arr.shape[axis] if arr.ndim else 1
                if size % 4:
                    problem = (f"the reduction (input-channel) axis {axis} of its weight {list(arr.shape)} has {size} "
                               f"entries, not a multiple of 4")
            if problem is None and w.name in done and done[w.name][:2] != (rule, axis):
                problem = f"its weight {w.name!r} is shared with layer {done[w.name][2]!r}, sparsified differently"
            if problem is not None:
                if explicit:
                    raise PassError(f"sparsify: layer {n.name!r} cannot be made {rule!r} sparse: {problem}")
                skipped[n.name] = problem
                continue
            if w.name not in done:
                new = prune_24(arr, axis) if rule == "2:4" else _prune_unstructured(arr, rule)
                w.const = new
                done[w.name] = (rule, axis, n.name, new)
            new = done[w.name][3]
            n.meta["sparsity"] = float(np.mean(new == 0))
            if rule == "2:4":
                n.meta["sparsity_pattern"] = "2:4"
                structured.append(n.name)
            elif n.meta.get("sparsity_pattern") == "2:4" and not is_24(new, reduction_axis(n)):
                del n.meta["sparsity_pattern"]
            count += 1
        info: dict[str, Any] = {"layers": count, "ratio": default if isinstance(default, float) else self.ratio,
                                "pattern": self.pattern}
        if structured:
            info["structured"] = structured
        if skipped:
            info["skipped"] = skipped
        return count > 0, info


def _prune_unstructured(arr: np.ndarray, ratio: float) -> np.ndarray:
    """``arr`` with its ``floor(ratio * size)`` smallest-magnitude entries zeroed."""
    k = int(np.floor(ratio * arr.size))
    new = arr.copy()
    if k > 0:
        flat = np.abs(arr).reshape(-1)
        cut = np.argpartition(flat, k - 1)[:k]
        new.reshape(-1)[cut] = 0
    return new


def _check_layer_names(graph: Graph, named: dict[str, Any], layers: list[str]) -> None:
    """PassError for a ``layers`` key that is not a sparsifiable layer, with close matches."""
    import difflib

    known = set(layers)
    nodes = {n.name: n for n in graph.nodes}
    for name in named:
        if name in known:
            continue
        if name in nodes:
            raise PassError(f"sparsify: node {name!r} ({nodes[name].onnx_op}) has no constant Conv/ConvTranspose/Gemm/MatMul "
                            f"weight to sparsify")
        close = difflib.get_close_matches(name, layers, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listed = ", ".join(layers[:8]) + (f", ... ({len(layers) - 8} more)" if len(layers) > 8 else "")
        raise PassError(f"sparsify: no layer named {name!r}{hint} (layers with constant weights: {listed or 'none'})")
