"""``resize-channels``: set channel-group widths; shrink by the pruning criterion, grow exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from symbiote.errors import PassError
from symbiote.ir.channel_groups import ChannelGroup, analyze, legal_width
from symbiote.ir.graph import Graph
from symbiote.passes.base import Pass
from symbiote.passes.channels import apply_selection, selection_for
from symbiote.passes.prune import Criterion, resolve_widths


def round_width(width: int, multiple: int, mode: str) -> int:
    """Round to a multiple (never below ``multiple``)."""
    down = (width // multiple) * multiple
    up = -(-width // multiple) * multiple
    if mode == "up":
        r = up
    elif mode == "down":
        r = down
    else:  # nearest, ties go up
        r = up if (width - down) * 2 >= multiple else down
    return max(multiple, r)


def _capped(group: ChannelGroup, n: int) -> int:
    """``n``, or the group's width when ``n`` would grow a group that cannot grow exactly."""
    return group.width if group.no_growth and n > group.width else n


@dataclass(frozen=True)
class ResizeChannels(Pass):
    """Resize free channel groups: ``widths={group:n}``, ``multiple=m`` (round every free
    group, ``mode=nearest|up|down``) or ``scale=s``. New channels get zero weights in and
    out (exact growth); shrinking drops the least important channels (``criterion``).

    A group of attention heads keeps whole heads (``multiple`` rounds to a multiple of
    ``lcm(m, head_dim)``, ``scale`` to one of head_dim; new heads are exact: zero Q/K/V
    and output weights). A group normalized by a LayerNorm (``no_growth``: zero channels
    change the mean and variance) is never grown: ``multiple``/``scale`` leave it at its
    width where they would grow it, and ``widths`` that grow it is a PassError."""

    widths: dict[str, int] | None = None
    multiple: int | None = None
    scale: float | None = None
    mode: Literal["nearest", "up", "down"] = "nearest"
    criterion: Criterion = "l1"
    seed: int = 0

    name: ClassVar[str] = "resize-channels"
    exact: ClassVar[bool] = False  # exact when every group only grows

    def __post_init__(self) -> None:
        given = [k for k in ("widths", "multiple", "scale") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PassError("resize-channels: give exactly one of widths={group:n}, multiple=m or scale=s")
        if self.multiple is not None and self.multiple < 1:
            raise PassError(f"resize-channels: multiple must be >= 1, got {self.multiple}")
        if self.scale is not None and not self.scale > 0:
            raise PassError(f"resize-channels: scale must be > 0, got {self.scale}")

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        cg = analyze(graph)
        if self.widths is not None:
            targets = resolve_widths(cg, self.widths, allow_growth=True)
        elif self.multiple is not None:
            targets = {g.id: _capped(g, round_width(g.width, math.lcm(self.multiple, g.unit), self.mode)) for g in cg.free}
        else:
            f = {"up": math.ceil, "down": math.floor}.get(self.mode, round)
            targets = {g.id: legal_width(g, max(1, int(f(g.width * self.scale))), self.mode) for g in cg.free}
        sel = selection_for(graph, cg, targets, self.criterion, self.seed)
        apply_selection(graph, cg, sel)
        changed = {cg.groups[g].name: [cg.groups[g].width, len(s)] for g, s in sel.items()}
        grew = all(v[1] >= v[0] for v in changed.values())
        return bool(sel), {"groups_changed": len(changed), "widths": changed, "exact": grew}
