"""Channel groups: which tensor channel axes must change width together.

A *channel group* is a set of channels that pruning or resizing must treat as one:
a Conv's output channels together with every consumer's input channels, through
BatchNorm, activations, element-wise ops (a residual Add ties both operands), Concat
(each operand keeps its own group at an offset), Split/Slice, depthwise and grouped
convolutions, Flatten/Reshape into a Gemm (a channel becomes a block of features),
Transpose (NHWC), attention (the MLP hidden width is a group; heads keep head_dim) and
LSTM/GRU hidden sizes.

The data below is the contract between the analysis (``analyze``), the passes that
prune/resize, ``ir.lower`` (which turns widths into index arrays of the Workload) and
the search (whose model knobs are one width per free group).

``axes[(value_name, axis)]`` lists the segments that make up that axis, in order:
``((group_id, block), ...)`` meaning the axis holds ``width[group_id] * block``
elements for each segment (``block`` > 1 when a flatten turned each channel into a
block of features). The axis size is ``sum(width[g] * block)``.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class ChannelGroups:
    groups: tuple[ChannelGroup, ...]
    axes: Mapping[tuple[str, int], tuple[Segment, ...]] = field(default_factory=dict)

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

    def axis_size(self, value_name: str, axis: int, widths: Mapping[int, int] | None = None) -> int:
        w = widths or {}
        return sum(w.get(g, self.groups[g].width) * b for g, b in self.segments(value_name, axis))


def analyze(graph) -> ChannelGroups:
    """Channel groups of ``graph`` (the analysis lives in :mod:`symbiote.ir.channel_analysis`)."""
    from symbiote.ir.channel_analysis import analyze as _analyze

    return _analyze(graph)
