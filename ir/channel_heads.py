"""Reshape-like ops in the channel-group analysis, and attention heads.

:func:`reshape` is the rule of Reshape, Flatten, Squeeze and Unsqueeze (see
:mod:`symbiote.ir.channel_analysis`): runs of input axes whose sizes multiply to a run of
output axes are paired (:func:`reshape_blocks`); a channel axis passes one to one, or
merges with the axes after it into *blocks* (Flatten into a Gemm).

**Attention heads.** A reshape that splits a channel axis carrying one whole class
``(atom, 1)`` of width ``H * D`` into exactly two axes ``[H, D]`` (the Q/K/V projections
of multi-head attention) creates a *heads atom* of width ``H`` for the ``H`` axis and
records ``State.heads[heads atom] = (channel atom, D)``; the ``D`` axis (head_dim) is left
untracked, so it never changes. Downstream the heads axis is an ordinary axis: Transposes
permute it, the attention MatMuls tie the heads of Q, K and V (their batch axes), Softmax
and scaling pass it, and the reshape that merges ``[H, D]`` back (``merge_heads``) turns
it into a channel axis ``(heads atom, D)`` (blocks of ``D`` channels), which the output
projection reads. :func:`symbiote.ir.channel_state.refine` then folds each split channel
class into its heads class, so Q, K, V and the output projection's input form one group
of width ``H * D`` with ``unit = D`` (whole heads only). Anything else that splits a
channel axis (into three axes, a class with several segments, heads of heads) fixes it.
"""

from __future__ import annotations

import numpy as np

from symbiote.ir.channel_state import Segs, State, fix_all
from symbiote.ir.graph import Node, Value


def reshape_blocks(a: tuple[int, ...], b: tuple[int, ...]) -> list[tuple[list[int], list[int]]] | None:
    """Pair runs of axes of shape a with runs of b whose products match."""
    out: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        ia, jb = [], []
        pa = pb = 1
        if i < len(a):
            ia.append(i); pa *= a[i]; i += 1
        if j < len(b):
            jb.append(j); pb *= b[j]; j += 1
        while pa != pb:
            if pa < pb and i < len(a):
                ia.append(i); pa *= a[i]; i += 1
            elif pb < pa and j < len(b):
                jb.append(j); pb *= b[j]; j += 1
            else:
                return None
        # trailing size-1 axes stay on their own
        out.append((ia, jb))
    return out


def split_heads(st: State, node: Node, segs: Segs, y: Value, big_out: list[int]) -> bool:
    """Track a channel axis split into ``[H, D]`` as heads (see the module doc); False when
    the split is not one."""
    if len(big_out) != 2 or len(segs) != 1 or segs[0][1] != 1 or segs[0][0] in st.heads:
        return False
    a = segs[0][0]
    h, d = y.shape[big_out[0]], y.shape[big_out[1]]
    if h * d != st.widths[a] or d < 2:
        return False
    head = st.atom(f"{node.name}.heads", h)
    st.heads[head] = (a, d)
    st.set(y, big_out[0], [(head, 1)])
    return True


def merge_heads(st: State, node: Node, t: dict[int, Segs], tracked: list[int]) -> Segs | None:
    """Segments of a heads axis merged with the axes after it (``[H, D] -> H * D``): blocks of
    their size, the trailing tracked axes fixed; None when the outer axis is not heads."""
    a = tracked[0]
    segs = t[a]
    if len(segs) != 1 or segs[0][0] not in st.heads:
        return None
    for k in tracked[1:]:
        st.fix(t[k], f"merged into attention heads by {node.onnx_op} node {node.name!r}")
    return segs


def reshape(st: State, node: Node) -> None:
    """The rule of Reshape, Flatten, Squeeze and Unsqueeze (see the module doc)."""
    x, y = node.input(0), node.output
    t = st.tracked(x)
    if not t:
        return
    if x.shape is None or y.shape is None:
        return fix_all(st, node)
    blocks = reshape_blocks(tuple(x.shape), tuple(y.shape))
    why = f"reshaped by {node.onnx_op} node {node.name!r}"
    if blocks is None:
        return fix_all(st, node, why)
    for ia, jb in blocks:
        tr = [a for a in ia if a in t]
        if not tr:
            continue
        big_out = [j for j in jb if y.shape[j] != 1]
        a = tr[0]
        segs = t[a]
        if len(tr) > 1:
            segs = merge_heads(st, node, t, tr) if len(big_out) == 1 else None
            if segs is None:
                for k in tr:
                    st.fix(t[k], why)
                continue
        if len(big_out) > 1 and len([k for k in ia if x.shape[k] != 1]) == 1:
            if not split_heads(st, node, segs, y, big_out):
                st.fix(segs, f"split by {node.onnx_op} node {node.name!r} (e.g. into attention heads)")
            continue
        if len(big_out) == 0:
            st.fix(segs, why)
            continue
        j = big_out[0]
        before = [k for k in ia if k < a and x.shape[k] != 1]
        if before:
            st.fix(segs, f"merged into an inner axis by {node.onnx_op} node {node.name!r}")
            continue
        block = int(np.prod([x.shape[k] for k in ia if k > a], dtype=np.int64))
        if len(big_out) > 1:
            st.fix(segs, why)
            continue
        st.set(y, j, [(g, b * block) for g, b in segs])
