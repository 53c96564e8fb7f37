"""Apply a channel selection to a graph: the shared engine of prune and resize-channels.

``select[group_id]`` is an int array of the old channel indices to keep, in order; an
entry ``-1`` adds a new channel. Every constant whose axis carries a selected group is
gathered along that axis (new channels are filled with 0, except BatchNorm variances
which get 1 so the new channel's output stays finite), then the attributes and shape
arguments that spell widths (Conv ``group`` of depthwise convs, LSTM/GRU/RNN
``hidden_size``, Reshape targets, Split sizes, Slice ends) are rewritten and shapes are
re-inferred. New channels have zero incoming and outgoing weights, so growth is exact
(a group normalized by a LayerNorm excepted: the analysis marks it ``no_growth`` and
:func:`symbiote.ir.channel_groups.width_problem` refuses to grow it).

A group of attention heads (``unit = head_dim``) is selected in whole heads: a head's
importance sums its channels', a selection must keep or add whole heads (a PassError
otherwise), and the axes that count heads (``ChannelGroups.head_axes``: a per-head
constant, the head count of the split Reshape's target) follow the kept heads.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from symbiote.errors import PassError
from symbiote.ir.channel_groups import ChannelGroups, width_problem
from symbiote.ir.graph import Graph, Node

_INT64_MAX = np.iinfo(np.int64).max


def axis_index(cg: ChannelGroups, segs, select: Mapping[int, np.ndarray]) -> np.ndarray:
    """Old element indices (-1 = new) of an axis made of ``segs`` under ``select``."""
    parts, off = [], 0
    for g, b in segs:
        w = cg.groups[g].width
        keep = select.get(g)
        if keep is None:
            keep = np.arange(w)
        keep = np.asarray(keep, dtype=np.int64)
        idx = (keep[:, None] * b + np.arange(b)[None, :] + off)
        idx[keep < 0] = -1
        parts.append(idx.reshape(-1))
        off += w * b
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def head_index(cg: ChannelGroups, segs, select: Mapping[int, np.ndarray]) -> np.ndarray:
    """Old element indices (-1 = new) of an axis that counts heads (``head_axes``)."""
    parts, off = [], 0
    for g, b in segs:
        u = cg.groups[g].unit
        n = cg.groups[g].width // u
        keep = select.get(g)
        heads = np.arange(n) if keep is None else np.asarray(keep, dtype=np.int64)[::u]
        heads = np.where(heads < 0, -1, heads // u)
        idx = heads[:, None] * b + np.arange(b)[None, :] + off
        idx[heads < 0] = -1
        parts.append(idx.reshape(-1))
        off += n * b
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def check_whole_heads(cg: ChannelGroups, g: int, keep: np.ndarray) -> None:
    """PassError unless ``keep`` keeps or adds whole heads of group ``g`` (unit > 1)."""
    grp = cg.groups[g]
    u = grp.unit
    if u == 1:
        return
    if len(keep) % u:
        raise PassError(f"channel group {grp.name!r}: width {len(keep)} is not a multiple of {u} "
                        f"(its channels are attention heads of head_dim {u}; a width must keep whole heads)")
    blocks = keep.reshape(-1, u)
    first = blocks[:, :1]
    ok = np.where(first < 0, (blocks < 0).all(axis=1, keepdims=True),
                  (first % u == 0) & (blocks == first + np.arange(u)))
    if not ok.all():
        raise PassError(f"channel group {grp.name!r}: a selection must keep whole heads of {u} channels")


def _take(arr: np.ndarray, axis: int, idx: np.ndarray, fill: float) -> np.ndarray:
    safe = np.where(idx < 0, 0, idx)
    out = np.take(arr, safe, axis=axis)
    if (idx < 0).any():
        sl = [slice(None)] * arr.ndim
        sl[axis] = np.nonzero(idx < 0)[0]
        out[tuple(sl)] = fill
    return out


def _fill_value(graph: Graph, name: str) -> float:
    v = graph.constants[name]
    for node, i in v.uses:
        if node.onnx_op == "BatchNormalization" and i == 4:
            return 1.0
    return 0.0


def apply_selection(graph: Graph, cg: ChannelGroups, select: Mapping[int, np.ndarray]) -> None:
    """Slice/grow every constant and width-carrying argument; re-infer shapes."""
    from symbiote.ir.shapes import infer_graph

    select = {g: np.asarray(s, dtype=np.int64) for g, s in select.items() if not _is_identity(cg, g, s)}
    if not select:
        return
    for g in select:
        if not cg.groups[g].free:
            raise PassError(f"channel group {cg.groups[g].name!r} cannot change: {cg.groups[g].reason}")
        check_whole_heads(cg, g, select[g])
    widths = {g: len(s) for g, s in select.items()}
    changed = set(select)
    depthwise = [n for n in graph.nodes if n.onnx_op == "Conv" and int(n.attrs.get("group", 1)) > 1
                 and n.input(0) is not None and n.input(0).shape is not None and int(n.attrs["group"]) == n.input(0).shape[1]]
    # 1. constants
    by_const: dict[str, list[tuple[int, tuple]]] = {}
    for table, index in ((cg.axes, axis_index), (cg.head_axes, head_index)):
        for (name, axis), segs in table.items():
            if name in graph.constants and any(g in changed for g, _ in segs):
                by_const.setdefault(name, []).append((axis, index(cg, segs, select)))
    for name, items in by_const.items():
        v = graph.constants[name]
        arr = v.const
        fill = _fill_value(graph, name)
        for axis, idx in items:
            arr = _take(arr, axis, idx, fill)
        v.const = np.ascontiguousarray(arr)
        v.shape = tuple(arr.shape)
    # 2. width-carrying attributes and shape arguments
    for n in depthwise:
        n.attrs["group"] = int(n.input(1).shape[0])
    for n in list(graph.nodes):
        if n.onnx_op in ("LSTM", "GRU", "RNN") and n.input(2) is not None and n.input(2).is_const:
            n.attrs["hidden_size"] = int(n.input(2).shape[-1])
        elif n.onnx_op == "Reshape":
            _fix_reshape(graph, cg, n, widths, changed)
        elif n.onnx_op == "Split":
            _fix_split(graph, cg, n, widths, changed)
        elif n.onnx_op == "Slice":
            _fix_slice(graph, cg, n, changed)
    infer_graph(graph)


def _is_identity(cg: ChannelGroups, g: int, s) -> bool:
    s = np.asarray(s)
    return len(s) == cg.groups[g].width and bool((s == np.arange(len(s))).all())


def _touches(cg: ChannelGroups, name: str, axis: int, changed: set[int]) -> bool:
    segs = cg.segments(name, axis) or cg.head_segments(name, axis)
    return any(g in changed for g, _ in segs)


def _set_const_input(graph: Graph, n: Node, i: int, arr: np.ndarray) -> None:
    old = n.input(i)
    new = graph.add_const(old.name if old is not None else f"{n.name}_arg{i}", arr)
    n.set_input(i, new)
    if old is not None:
        graph._drop_const_if_unused(old)


def _fix_reshape(graph: Graph, cg: ChannelGroups, n: Node, widths, changed) -> None:
    y, s = n.output, n.input(1)
    if y.shape is None or s is None or not s.is_const:
        return
    target = np.array(s.const, dtype=np.int64).reshape(-1)
    hit = False
    for axis in range(len(target)):
        if _touches(cg, y.name, axis, changed) and target[axis] not in (0, -1):
            target[axis] = cg.axis_size(y.name, axis, widths)
            hit = True
    if hit:
        _set_const_input(graph, n, 1, target)


def _fix_split(graph: Graph, cg: ChannelGroups, n: Node, widths, changed) -> None:
    x = n.input(0)
    if x is None or x.shape is None:
        return
    axis = int(n.attrs.get("axis", 0)) % len(x.shape)
    if not _touches(cg, x.name, axis, changed):
        return
    sizes = np.array([cg.axis_size(y.name, axis, widths) if (cg.segments(y.name, axis) or cg.head_segments(y.name, axis))
                      else (y.shape[axis] if y.shape else 0)
                      for y in n.outputs], dtype=np.int64)
    if "split" in n.attrs:
        n.attrs["split"] = [int(v) for v in sizes]
    else:
        n.attrs.pop("num_outputs", None)
        if len(n.inputs) < 2:
            n.inputs.append(None)
        _set_const_input(graph, n, 1, sizes)


def _fix_slice(graph: Graph, cg: ChannelGroups, n: Node, changed) -> None:
    x, e = n.input(0), n.input(2)
    if x is None or x.shape is None or e is None or not e.is_const:
        return
    a = n.input(3)
    axes = [int(v) for v in a.const.reshape(-1)] if a is not None and a.is_const else list(range(e.const.size))
    ends = np.array(e.const, dtype=np.int64).reshape(-1)
    hit = False
    for i, ax in enumerate(axes):
        if _touches(cg, x.name, ax % len(x.shape), changed):
            ends[i] = _INT64_MAX
            hit = True
    if hit:
        _set_const_input(graph, n, 2, ends.astype(e.const.dtype))


# ------------------------------------------------------------------ importance
_WEIGHT_SLOTS = {"Conv": (1,), "ConvTranspose": (1,), "Gemm": (1,), "MatMul": (1,), "LSTM": (1, 2), "GRU": (1, 2), "RNN": (1, 2), "Gather": (0,)}


def _role(graph: Graph, name: str) -> str | None:
    v = graph.constants[name]
    for node, i in v.uses:
        if i in _WEIGHT_SLOTS.get(node.onnx_op, ()):
            return "weight"
        if node.onnx_op == "BatchNormalization" and i == 1:
            return "gamma"
    return None


def importance(graph: Graph, cg: ChannelGroups, gid: int, criterion: str, seed: int = 0) -> np.ndarray:
    """One score per channel of group ``gid`` (higher = keep), summed over every layer of
    the group. Each layer's scores are divided by their mean so that no layer dominates."""
    width = cg.groups[gid].width
    if criterion == "random":
        return np.random.default_rng([seed, gid]).random(width)
    total = np.zeros(width, dtype=np.float64)
    found = False
    want = "gamma" if criterion == "bn_gamma" else "weight"
    for name, axis in cg.groups[gid].members:
        if name not in graph.constants or _role(graph, name) != want:
            continue
        arr = np.asarray(graph.constants[name].const)
        other = tuple(a for a in range(arr.ndim) if a != axis)
        if criterion == "l2":
            per = np.sqrt(np.sum(np.square(arr), axis=other, dtype=np.float64)) if other else np.abs(arr).astype(np.float64)
        else:
            per = np.sum(np.abs(arr), axis=other, dtype=np.float64) if other else np.abs(arr).astype(np.float64)
        off = 0
        for g, b in cg.segments(name, axis):
            w = cg.groups[g].width
            if g == gid:
                score = per[off:off + w * b].reshape(w, b).sum(axis=1)
                total += score / (score.mean() + 1e-12)
                found = True
            off += w * b
    if not found and criterion == "bn_gamma":
        return importance(graph, cg, gid, "l1", seed)
    return total


def keep_top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n best channels, in their original order (stable on ties)."""
    order = np.argsort(-scores, kind="stable")[:n]
    return np.sort(order)


def keep_top_units(scores: np.ndarray, n: int, unit: int) -> np.ndarray:
    """Channel indices of the ``n // unit`` best whole units (heads: a head's score is the sum
    of its channels'), in their original order."""
    if unit == 1:
        return keep_top(scores, n)
    heads = keep_top(np.asarray(scores).reshape(-1, unit).sum(axis=1), n // unit)
    return (heads[:, None] * unit + np.arange(unit)[None, :]).reshape(-1)


def selection_for(graph: Graph, cg: ChannelGroups, targets: Mapping[int, int], criterion: str, seed: int) -> dict[int, np.ndarray]:
    """Turn target widths into selections: shrink by importance (whole heads for a group of
    heads), grow with new channels."""
    out: dict[int, np.ndarray] = {}
    for g, n in targets.items():
        w = cg.groups[g].width
        if n < 1:
            raise PassError(f"channel group {cg.groups[g].name!r}: width must be >= 1, got {n}")
        problem = width_problem(cg.groups[g], n) if cg.groups[g].free else ""
        if problem:
            raise PassError(problem)
        if n == w:
            continue
        if n < w:
            out[g] = keep_top_units(importance(graph, cg, g, criterion, seed), n, cg.groups[g].unit)
        else:
            out[g] = np.concatenate([np.arange(w), -np.ones(n - w, dtype=np.int64)])
    return out
