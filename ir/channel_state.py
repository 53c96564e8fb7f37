"""The working state of the channel-group analysis (:mod:`symbiote.ir.channel_analysis`).

:class:`State` is a union-find over *atoms* (one per width-owning definition or fixed
axis) plus the map from each tracked tensor axis ``(value name, axis)`` to its list of
segments ``(atom, block)``. The helpers below are the building blocks every op rule
uses (carry axes through, fix what a rule does not understand), and :func:`collect`
turns the final state into the :class:`~symbiote.ir.channel_groups.ChannelGroups`
contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from symbiote.ir.channel_groups import ChannelGroup, ChannelGroups
from symbiote.ir.graph import Graph, Node, Value

Segs = list[tuple[int, int]]  # (atom, block)


@dataclass
class State:
    graph: Graph
    parent: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    fixed: dict[int, str] = field(default_factory=dict)  # atom -> reason (on any atom of a class)
    axes: dict[tuple[str, int], Segs] = field(default_factory=dict)

    # ---- union-find
    def atom(self, name: str, width: int, fixed: str | None = None) -> int:
        a = len(self.parent)
        self.parent.append(a)
        self.widths.append(int(width))
        self.names.append(name)
        if fixed:
            self.fixed[a] = fixed
        return a

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int, where: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.widths[ra] != self.widths[rb]:
            self.fix([(a, 1), (b, 1)], f"widths disagree at {where}")
        lo, hi = min(ra, rb), max(ra, rb)
        self.parent[hi] = lo

    def fix(self, segs: Segs, reason: str) -> None:
        for a, _ in segs:
            self.fixed.setdefault(a, reason)

    # ---- axes
    def get(self, v: Value | None, axis: int) -> Segs | None:
        if v is None or v.shape is None:
            return None
        axis = axis % len(v.shape) if v.shape else 0
        return self.axes.get((v.name, axis))

    def tracked(self, v: Value | None) -> dict[int, Segs]:
        if v is None:
            return {}
        return {ax: s for (n, ax), s in self.axes.items() if n == v.name}

    def set(self, v: Value, axis: int, segs: Segs) -> None:
        axis = axis % len(v.shape)
        self.axes[(v.name, axis)] = list(segs)

    def need(self, v: Value, axis: int, node: Node) -> Segs:
        """The segments of an axis, creating a fixed atom when nothing defined it."""
        s = self.get(v, axis)
        if s is not None:
            return s
        axis = axis % len(v.shape)
        if v.is_const:
            reason = f"constant {v.name!r} read by {node.onnx_op} node {node.name!r}"
        elif v.producer is None:
            reason = f"model input {v.name!r}"
        else:
            reason = f"produced by {v.producer.onnx_op} node {v.producer.name!r}"
        a = self.atom(f"{v.name}.{axis}", v.shape[axis], reason)
        segs = [(a, 1)]
        self.set(v, axis, segs)
        return segs

    def union_segs(self, a: Segs, b: Segs, where: str) -> None:
        if len(a) == len(b) and all(x[1] == y[1] for x, y in zip(a, b)):
            for (x, _), (y, _) in zip(a, b):
                self.union(x, y, where)
        else:
            self.fix(a + b, f"incompatible channel layouts meet at {where}")

    def tie(self, v: Value | None, axis: int, segs: Segs, node: Node) -> None:
        """Make axis ``axis`` of ``v`` carry ``segs`` (a broadcast size-1 axis is left alone)."""
        if v is None or v.shape is None:
            return
        if not -len(v.shape) <= axis < len(v.shape):
            return
        axis %= len(v.shape)
        size = sum(self.widths[a] * b for a, b in segs)
        have = self.get(v, axis)
        if have is not None:
            self.union_segs(have, segs, f"{node.onnx_op} node {node.name!r}")
        elif v.shape[axis] == 1 and size != 1:
            return
        elif v.is_const and v.shape[axis] == size:
            self.set(v, axis, segs)
        else:
            self.union_segs(self.need(v, axis, node), segs, f"{node.onnx_op} node {node.name!r}")


# ------------------------------------------------------------------ helpers shared by the op rules
def attr(node: Node, key: str, default):
    return node.attrs.get(key, default)


def const_ints(node: Node, i: int, attr: str | None = None) -> list[int] | None:
    v = node.input(i)
    if v is not None and v.is_const:
        return [int(x) for x in np.asarray(v.const).reshape(-1)]
    if attr is not None and attr in node.attrs:
        a = node.attrs[attr]
        return [int(x) for x in (a if isinstance(a, (list, tuple)) else [a])]
    return None


def fix_all(st: State, node: Node, why: str | None = None) -> None:
    reason = why or f"read by {node.onnx_op} node {node.name!r}"
    for v in node.inputs:
        for segs in st.tracked(v).values():
            st.fix(segs, reason)


def passthrough(st: State, node: Node, x: Value | None, y: Value, axis_map: Callable[[int], int | None], why: str) -> None:
    """Carry every tracked axis of x to y through axis_map (None fixes it)."""
    for ax, segs in st.tracked(x).items():
        out = axis_map(ax)
        if out is None or y.shape is None or not 0 <= out < len(y.shape) or y.shape[out] != x.shape[ax]:
            st.fix(segs, why)
        else:
            st.set(y, out, segs)


def same(st: State, node: Node) -> None:
    x = node.input(0)
    for y in node.outputs[:1]:
        passthrough(st, node, x, y, lambda a: a, f"resized by {node.onnx_op} node {node.name!r}")


def collect(st: State) -> ChannelGroups:
    # group ids in order of the first atom of each class (roots are the smallest atom)
    order = sorted({st.find(a) for a in range(len(st.parent))})
    gid = {r: i for i, r in enumerate(order)}
    reasons: dict[int, str] = {}
    for a, why in sorted(st.fixed.items()):
        reasons.setdefault(gid[st.find(a)], why)
    members: dict[int, list[tuple[str, int]]] = {i: [] for i in gid.values()}
    axes: dict[tuple[str, int], tuple[tuple[int, int], ...]] = {}
    for key, segs in st.axes.items():
        mapped = tuple((gid[st.find(a)], b) for a, b in segs)
        axes[key] = mapped
        for g in dict.fromkeys(g for g, _ in mapped):
            members[g].append(key)
    groups = tuple(
        ChannelGroup(i, st.names[r], st.widths[r], i not in reasons, reasons.get(i, ""), tuple(members[i]))
        for r, i in gid.items()
    )
    return ChannelGroups(groups, axes)
