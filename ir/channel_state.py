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
    heads: dict[int, tuple[int, int]] = field(default_factory=dict)  # head atom -> (channel atom it splits, head_dim)
    no_growth: dict[int, str] = field(default_factory=dict)  # atom -> why its class may only shrink

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

    def shrink_only(self, segs: Segs, reason: str) -> None:
        """Mark the classes of ``segs`` as free to shrink but not to grow exactly."""
        for a, _ in segs:
            self.no_growth.setdefault(a, reason)

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


def refine(st: State) -> dict[int, tuple[int, int]]:
    """Tie each split channel class to its heads: ``{channel class root: (heads class root,
    head_dim)}``. Every heads atom splitting one channel class joins one heads class; a class
    split with two head_dims, or a heads class reached with two, stays unrefined and fixed."""
    by_class: dict[int, list[tuple[int, int]]] = {}
    for h, (a, d) in st.heads.items():
        by_class.setdefault(st.find(a), []).append((h, d))
    for ra, hs in by_class.items():
        if len({d for _, d in hs}) == 1:
            for h, _ in hs[1:]:
                st.union(hs[0][0], h, f"heads of {st.names[ra]!r}")
    out: dict[int, tuple[int, int]] = {}
    dims: dict[int, set[int]] = {}
    for ra, hs in by_class.items():
        ra = st.find(ra)
        ds = {d for _, d in hs}
        if len(ds) == 1:
            out[ra] = (st.find(hs[0][0]), hs[0][1])
            dims.setdefault(out[ra][0], set()).add(hs[0][1])
        else:
            st.fix([(ra, 1)] + [(h, 1) for h, _ in hs], f"split into heads of sizes {sorted(ds)}")
    for ra, (hr, d) in list(out.items()):
        if len(dims[hr]) > 1 or ra in dims:  # head_dims disagree, or heads of heads
            st.fix([(ra, 1), (hr, 1)], f"attention heads of {st.names[ra]!r} meet heads of another head_dim")
            del out[ra]
    for ra, (hr, _) in out.items():  # a fixed channel class fixes its heads
        why = next((w for a, w in sorted(st.fixed.items()) if st.find(a) == ra), None)
        if why is not None:
            st.fix([(hr, 1)], why)
    return out


def collect(st: State) -> ChannelGroups:
    """The :class:`ChannelGroups` of the final state: one group per union-find class, a split
    channel class merged into its heads class (``unit = head_dim``, width in channels)."""
    refined = refine(st)
    units = {hr: d for hr, d in refined.values()}

    def key(a: int) -> tuple[int, int]:  # atom -> (group root, channels per atom-width unit)
        r = st.find(a)
        return refined.get(r, (r, 1))

    raw: dict[tuple[str, int], list[tuple[int, int, bool]]] = {}  # (root, block, counts heads)
    for ax, segs in st.axes.items():
        out = []
        for a, b in segs:
            r, mult = key(a)
            u = units.get(r, 1)
            out.append((r, b * mult // u, False) if (b * mult) % u == 0 else (r, b * mult, True))
        if len({h for _, _, h in out}) > 1:  # cannot be sized in one unit: fixed, and not a channel axis
            st.fix([(r, 1) for r, _, _ in out], f"channels and attention heads mixed on axis {ax[1]} of {ax[0]!r}")
            continue
        raw[ax] = out
    first: dict[int, int] = {}
    for a in range(len(st.parent)):
        first.setdefault(key(a)[0], a)
    gid = {r: i for i, r in enumerate(sorted(first, key=first.__getitem__))}
    reasons: dict[int, str] = {}
    for a, why in sorted(st.fixed.items()):
        reasons.setdefault(gid[key(a)[0]], why)
    growth: dict[int, str] = {}
    for a, why in sorted(st.no_growth.items()):
        growth.setdefault(gid[key(a)[0]], why)
    members: dict[int, list[tuple[str, int]]] = {i: [] for i in gid.values()}
    axes: dict[tuple[str, int], tuple[tuple[int, int], ...]] = {}
    head_axes: dict[tuple[str, int], tuple[tuple[int, int], ...]] = {}
    for ax, out in raw.items():
        mapped = tuple((gid[r], b) for r, b, _ in out)
        (head_axes if out and out[0][2] else axes)[ax] = mapped
        for g in dict.fromkeys(g for g, _ in mapped):
            members[g].append(ax)
    groups = tuple(
        ChannelGroup(i, st.names[first[r]], st.widths[r] * units.get(r, 1), i not in reasons, reasons.get(i, ""),
                     tuple(members[i]), units.get(r, 1), growth.get(i, ""))
        for r, i in gid.items()
    )
    return ChannelGroups(groups, axes, head_axes)
