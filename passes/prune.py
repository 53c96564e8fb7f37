"""Structured pruning (``prune``) and unstructured magnitude pruning (``sparsify``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from symbiote.errors import PassError
from symbiote.ir import ops
from symbiote.ir.channel_groups import ChannelGroups, analyze
from symbiote.ir.graph import Graph
from symbiote.passes.base import Pass
from symbiote.passes.channels import apply_selection, selection_for

Criterion = Literal["l1", "l2", "bn_gamma", "random"]


def resolve_widths(cg: ChannelGroups, widths: dict[str, int], *, allow_growth: bool) -> dict[int, int]:
    """Group names -> ids, checking that each exists, is free, and the width is legal."""
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
        out[g.id] = n
    return out


@dataclass(frozen=True)
class Prune(Pass):
    """Remove whole channels from every free channel group (or the groups in ``widths``),
    ranked by importance summed over every layer of the group."""

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
            targets = {g.id: max(1, int(round(g.width * (1.0 - self.ratio)))) for g in cg.free}
        sel = selection_for(graph, cg, targets, self.criterion, self.seed)
        apply_selection(graph, cg, sel)
        changed = {cg.groups[g].name: [cg.groups[g].width, len(s)] for g, s in sel.items()}
        return bool(sel), {"groups_changed": len(changed), "widths": changed}


_SPARSE_SLOTS = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}


@dataclass(frozen=True)
class Sparsify(Pass):
    """Zero the smallest-magnitude ``ratio`` of each layer's weights; record
    ``node.meta["sparsity"]`` (fraction of zero weights) for sparse-aware cost models."""

    ratio: float = 0.5

    name: ClassVar[str] = "sparsify"
    exact: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise PassError(f"sparsify: ratio must be in [0, 1), got {self.ratio}")

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        done: dict[str, np.ndarray] = {}
        layers = 0
        for n in graph.nodes:
            slot = _SPARSE_SLOTS.get(n.onnx_op)
            w = n.input(slot) if slot is not None else None
            if w is None or not w.is_const or w.size == 0 or n.op not in ops.COMPUTE:
                continue
            if w.name not in done:
                arr = np.asarray(w.const)
                k = int(np.floor(self.ratio * arr.size))
                new = arr.copy()
                if k > 0:
                    flat = np.abs(arr).reshape(-1)
                    cut = np.argpartition(flat, k - 1)[:k]
                    new.reshape(-1)[cut] = 0
                w.const = new
                done[w.name] = new
            n.meta["sparsity"] = float(np.mean(done[w.name] == 0))
            layers += 1
        return layers > 0, {"layers": layers, "ratio": self.ratio}
