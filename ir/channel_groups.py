"""Channel groups: which tensor channel axes must change width together.

A *channel group* is a set of channels that pruning or resizing must treat as one:
a Conv's output channels together with every consumer's input channels, through
BatchNorm, activations, element-wise ops (a residual Add ties both operands), Concat
(each operand keeps its own group at an offset), Split/Slice, depthwise and grouped
convolutions, Flatten/Reshape into a Gemm (a channel becomes a block of features),
Transpose (NHWC), attention (whole heads, the MLP hidden width, the residual stream's
hidden size: see below) and LSTM/GRU hidden sizes.

The data below is the contract between the analysis (``analyze``), the passes that
prune/resize, ``ir.lower`` (which turns widths into index arrays of the Workload) and
the search (whose model knobs are one width per free group).

``axes[(value_name, axis)]`` lists the segments that make up that axis, in order:
``((group_id, block), ...)`` meaning the axis holds ``width[group_id] * block``
elements for each segment (``block`` > 1 when a flatten turned each channel into a
block of features). The axis size is ``sum(width[g] * block)``.

**Attention heads.** A group whose channel axis a Reshape splits into ``[heads, head_dim]``
has ``unit = head_dim``: its width stays counted in channels (``heads * head_dim``), its
legal widths are the multiples of ``unit`` (whole heads), and :func:`width_problem` /
:func:`legal_width` say so to every pass and to the search's gene grid. The axes that count
heads (the ``heads`` axis of the split tensors, the attention scores) are listed in
``head_axes`` instead of ``axes``: ``head_axes[(value, axis)]`` holds segments ``(group,
block)`` meaning ``width[group] // unit[group] * block`` elements.

**Shrink-only groups.** A group normalized by a LayerNormalization (the hidden size of a
transformer's residual stream) may shrink, but growing it cannot be exact: zero channels
change the mean and variance the LayerNorm divides by. ``no_growth`` says why; growth
is refused (``width_problem``) and the search's grid stops at the original width.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

Segment = tuple[int, int]  # (group id, block)


@dataclass(frozen=True)
class ChannelGroup:
    id: int
    name: str                 # stable, readable: the name of the value/node that defines it, e.g. "conv1.out"
    width: int                # current number of channels
    free: bool                # False when tied to a model input/output or an op that fixes it
    reason: str = ""          # why it is not free (for messages), "" when free
    members: tuple[tuple[str, int], ...] = ()  # (value name, axis) pairs carrying this group
    unit: int = 1             # legal widths are multiples of this (head_dim for attention heads)
    no_growth: str = ""       # why growing cannot be exact ("" when it can), e.g. a LayerNorm over it


def width_problem(group: ChannelGroup, n: int) -> str:
    """Why ``group`` cannot take width ``n`` ("" when it can): not free, not a positive
    multiple of its unit (it would split an attention head), or a growth it refuses."""
    if not group.free:
        return f"channel group {group.name!r} cannot change width: {group.reason}"
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        return f"channel group {group.name!r}: width must be a positive integer, got {n!r}"
    if n % group.unit:
        return (f"channel group {group.name!r}: width {n} is not a multiple of {group.unit} "
                f"(its channels are attention heads of head_dim {group.unit}; a width must keep whole heads)")
    if n > group.width and group.no_growth:
        return f"channel group {group.name!r} cannot grow from {group.width} to {n}: {group.no_growth}"
    return ""


def legal_width(group: ChannelGroup, n: float, mode: str = "nearest") -> int:
    """The legal width of ``group`` closest to ``n``: a multiple of its unit (``mode``
    nearest (ties up), ``up`` or ``down``), at least one unit, at most its width when it
    cannot grow."""
    u = group.unit
    down = int(n // u) * u
    up = -(-math.ceil(n) // u) * u
    if mode == "up":
        r = up
    elif mode == "down":
        r = down
    else:
        r = up if (n - down) * 2 >= u else down
    r = max(u, r)
    if group.no_growth and r > group.width:
        r = group.width
    return r


@dataclass(frozen=True)
class ChannelGroups:
    groups: tuple[ChannelGroup, ...]
    axes: Mapping[tuple[str, int], tuple[Segment, ...]] = field(default_factory=dict)
    head_axes: Mapping[tuple[str, int], tuple[Segment, ...]] = field(default_factory=dict)

    @property
    def free(self) -> tuple[ChannelGroup, ...]:
        return tuple(g for g in self.groups if g.free)

    def by_name(self, name: str) -> ChannelGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def segments(self, value_name: str, axis: int) -> tuple[Segment, ...]:
        """Segments of an axis; () when the axis is not a channel axis."""
        return self.axes.get((value_name, axis), ())

    def head_segments(self, value_name: str, axis: int) -> tuple[Segment, ...]:
        """Segments of an axis that counts attention heads; () for any other axis."""
        return self.head_axes.get((value_name, axis), ())

    def axis_size(self, value_name: str, axis: int, widths: Mapping[int, int] | None = None) -> int:
        """Size of a channel axis or a heads axis under ``widths`` (group id -> width)."""
        w = widths or {}
        if (value_name, axis) in self.head_axes:
            return sum(w.get(g, self.groups[g].width) // self.groups[g].unit * b for g, b in self.head_segments(value_name, axis))
        return sum(w.get(g, self.groups[g].width) * b for g, b in self.segments(value_name, axis))


def analyze(graph) -> ChannelGroups:
    """Channel groups of ``graph`` (the analysis lives in :mod:`symbiote.ir.channel_analysis`)."""
    from symbiote.ir.channel_analysis import analyze as _analyze

    return _analyze(graph)
