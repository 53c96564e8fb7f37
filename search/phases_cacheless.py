"""The decode step of a decoder exported without a KV cache (:mod:`symbiote.search.phases`).

**The rule.** A model without past inputs at ``--phase decode --context L`` is priced as one
query position attending to ``L`` cached keys and values, exactly as the same model exported
with a cache is priced (:func:`symbiote.search.phases.load_phase`):

* every per-token op (projections, MLP, norms, embeddings, LM head) runs at sequence 1: the
  token inputs are ``[B, 1]``;
* each attention gets a key cache and a value cache: a graph input ``past_key_{i}`` /
  ``past_value_{i}`` ``[B, heads, L, head_dim]`` and an append
  ``present = Concat(past, new, axis=2)`` (a graph output ``present_key_{i}`` /
  ``present_value_{i}``), which ``ir/lower.py`` prices in place: one row per layer written,
  the ``L`` old rows left where they are; every use of the new keys or values now reads the
  present tensor (``L + 1`` rows), so the score and context matmuls run with one query
  against the ``L`` cached rows and the new one, and each reads its cache once;
* an ONNX ``Attention`` node without past inputs gets the past inputs and present outputs of
  its own signature (the op prices its reads of ``L + 1`` rows itself).

**Finding the attention** (structurally, never by names), on the model loaded at one token
(:func:`cache_sites`): a ``Softmax`` whose input comes, through mask and scale ops
(:data:`SCORE_PATH`), from a matmul of two activations (``MatMul`` or an explicit
``Einsum``: the scores ``q k^T``) and whose output feeds, through :data:`PROB_PATH`, the first
operand of another such matmul (the context ``p v``). The keys are the scores' second
operand, the values the context's. From each, the walk goes back through ``Transpose`` and
scalar ops (:data:`KEY_PATH`: a scale, a cast) following the position axis (the key axis of
the product) and the head-size axis (the one contracted with ``q``, or the context's output
axis); the cache is appended at the earliest tensor on that walk laid out
``[B, heads, T, head_dim]``. When none is (``torch.onnx`` folds ``k.transpose(1, 2)
.transpose(-2, -1)`` into one ``Transpose`` from the ``[B, T, heads, head_dim]`` head split),
the append goes after a ``Transpose`` of the walk's first tensor into that layout, and each
``Transpose`` that read it is composed with the inverse (an identity becomes ``Identity``),
other readers get the cache transposed back. A ``Softmax`` not between two activation
matmuls (a router) is not an attention; a model with no attention at all, or one whose keys
or values have no rank-4 tensor with both axes known, raises :class:`CachelessError` saying
which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import helper

from symbiote.errors import SymbioteError

#: ops between the scores and the Softmax (scale, mask, reshapes, casts)
SCORE_PATH = frozenset({"Add", "Sub", "Mul", "Div", "Where", "Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze"})
#: ops between the Softmax and the context matmul
PROB_PATH = frozenset({"Cast", "Identity", "Dropout"})
#: ops between the keys or values as the head split writes them and their matmul
KEY_PATH = frozenset({"Transpose", "Mul", "Div", "Cast", "Identity"})
#: how many ops the walks from a Softmax follow at most
MAX_DEPTH = 8


class CachelessError(SymbioteError):
    """A decoder without a cache whose attention the decode rule cannot find (module doc)."""


@dataclass(frozen=True)
class CacheSite:
    """One cache the rule appends to: ``source`` (a rank-4 activation: the keys or values of
    one new token), its position axis ``key_axis`` and head-size axis ``dim_axis``, and its
    shape and dtype at one token."""

    kind: str                 # "key" or "value"
    layer: int                # the attention's index in graph order
    source: str
    key_axis: int
    dim_axis: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def to_cache(self) -> tuple[int, ...]:
        """The perm taking ``source`` to the cache layout ``[B, heads, T, head_dim]``: batch is
        axis 0 (or the first axis left), heads the other one left."""
        rest = [a for a in range(4) if a not in (self.key_axis, self.dim_axis)]
        return (rest[0], rest[1], self.key_axis, self.dim_axis)

    def past_shape(self, context: int) -> tuple[int, int, int, int]:
        b, h, _, d = (self.shape[a] for a in self.to_cache)
        return (b, h, context, d)

    @property
    def past(self) -> str:
        return f"past_{self.kind}_{self.layer}"

    @property
    def present(self) -> str:
        return f"present_{self.kind}_{self.layer}"


@dataclass(frozen=True)
class AttentionSite:
    """An ONNX ``Attention`` node without past inputs (named by its first output), with the
    shapes of its past key and value at one cached row."""

    layer: int
    output: str
    key_shape: tuple[int, int, int, int]
    value_shape: tuple[int, int, int, int]
    dtype: str

    def past_shapes(self, context: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple((s[0], s[1], context, s[3]) for s in (self.key_shape, self.value_shape))  # type: ignore[return-value]


Site = CacheSite | AttentionSite


# ------------------------------------------------------------------ finding (on the IR graph)
def _is_act(v: Any) -> bool:
    return v is not None and not v.is_const


def _product(node: Any) -> bool:
    """A matmul of two activations (MatMul or a two-operand Einsum)."""
    return node.onnx_op in ("MatMul", "Einsum") and len(node.inputs) == 2 and all(_is_act(v) for v in node.inputs)


def _scores_of(v: Any, depth: int = 0) -> Any:
    """The activation matmul ``v`` comes from through :data:`SCORE_PATH`, else None."""
    p = v.producer if v is not None else None
    if p is None or depth > MAX_DEPTH:
        return None
    if _product(p):
        return p
    if p.onnx_op not in SCORE_PATH:
        return None
    for x in p.inputs:
        if _is_act(x) and (found := _scores_of(x, depth + 1)) is not None:
            return found
    return None


def _context_of(v: Any, depth: int = 0) -> Any:
    """The activation matmul reading ``v`` as its first operand through :data:`PROB_PATH`."""
    users = v.consumers()
    if len(users) != 1 or depth > MAX_DEPTH:
        return None
    node = users[0]
    if _product(node) and node.inputs[0] is v:
        return node
    if node.onnx_op in PROB_PATH and node.outputs:
        return _context_of(node.outputs[0], depth + 1)
    return None


def _terms(node: Any) -> tuple[str, str, str] | None:
    eq = node.attrs.get("equation", "")
    eq = "".join((eq.decode() if isinstance(eq, bytes) else str(eq)).split())
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if not arrow or len(terms) != 2 or not all(t.isalpha() for t in (*terms, out)):
        return None
    return terms[0], terms[1], out


def _operand_axes(node: Any, role: str) -> tuple[int, int] | None:
    """(position axis, head-size axis) of the second operand of the scores (``role`` "key")
    or of the context (``role`` "value")."""
    r = node.inputs[1].rank
    if r < 2:
        return None
    if node.onnx_op == "MatMul":
        return (r - 1, r - 2) if role == "key" else (r - 2, r - 1)
    t = _terms(node)
    if t is None:
        return None
    a, b, out = t
    if role == "key":   # bhqd,bhkd->bhqk: k is in b and out only, d in a and b only
        pos, dim = [c for c in b if c in out and c not in a], [c for c in b if c in a and c not in out]
    else:               # bhqk,bhkd->bhqd: k in a and b only, d in b and out only
        pos, dim = [c for c in b if c in a and c not in out], [c for c in b if c in out and c not in a]
    if len(pos) != 1 or len(dim) != 1:
        return None
    return b.index(pos[0]), b.index(dim[0])


def _scalar_const(v: Any) -> bool:
    return v is not None and v.is_const and v.size <= 1


def _walk(v: Any, pos: int, dim: int) -> list[tuple[Any, int, int]]:
    """``(tensor, position axis, head-size axis)`` from the matmul operand ``v`` back through
    :data:`KEY_PATH` (a ``Transpose``, or an op whose other inputs are scalar constants)."""
    out = [(v, pos, dim)]
    while (p := v.producer) is not None and p.onnx_op in KEY_PATH and _is_act(p.inputs[0]):
        x = p.inputs[0]
        if p.onnx_op == "Transpose":
            perm = [int(a) for a in (p.attrs.get("perm") or reversed(range(x.rank)))]
            pos, dim = perm[pos], perm[dim]
        elif any(not _scalar_const(o) for o in p.inputs[1:]) or x.shape != v.shape:
            break
        v = x
        out.append((v, pos, dim))
    return out


def _site(kind: str, layer: int, operand: Any, axes: tuple[int, int] | None, where: str) -> CacheSite:
    if axes is None or operand.shape is None:
        raise CachelessError(f"the {kind}s of the attention at {where!r}: their position and head-size axes "
                             "are not known (an Einsum with '...' or an operand of rank < 2)")
    path = _walk(operand, *axes)
    laid = [(v, p, d) for v, p, d in path if v.rank == 4 and (p, d) == (2, 3)]
    v, p, d = laid[-1] if laid else path[-1]
    if v.rank != 4:
        raise CachelessError(f"the {kind}s of the attention at {where!r}: no rank-4 tensor "
                             f"[B, heads, T, head_dim] on their way in (first {v.name!r} {list(v.shape or ())})")
    if v.shape[p] != 1:
        raise CachelessError(f"the {kind}s of the attention at {where!r}: {v.name!r} {list(v.shape)} has "
                             f"{v.shape[p]} positions at one token on axis {p}, not 1")
    return CacheSite(kind, layer, v.name, p, d, tuple(int(s) for s in v.shape), v.dtype)


def _attention_op(layer: int, node: Any) -> AttentionSite | None:
    from symbiote.errors import ShapeError
    from symbiote.ir.shape_rules import Unknown
    from symbiote.ir.shape_rules_compute import attention_dims

    if node.domain not in ("", "ai.onnx") or (len(node.inputs) > 4 and node.input(4) is not None):
        return None
    try:
        a = attention_dims(node)
    except (Unknown, ShapeError) as e:
        raise CachelessError(f"the Attention node {node.name!r}: its shapes are not known ({e})") from None
    return AttentionSite(layer, node.outputs[0].name, (a["b"], a["hkv"], 1, a["d"]), (a["b"], a["hkv"], 1, a["dv"]),
                         node.inputs[1].dtype)


def cache_sites(graph: Any) -> tuple[Site, ...]:
    """The caches the decode rule appends to, in graph order (module doc); ``graph``: the
    model loaded at one token (an ``ir.Graph``)."""
    out: list[Site] = []
    seen: set[str] = set()
    for node in graph:
        if node.onnx_op == "Attention":
            site = _attention_op(_layers(out), node)
            if site is not None:
                out.append(site)
            continue
        if node.onnx_op != "Softmax":
            continue
        scores, ctx = _scores_of(node.inputs[0]), _context_of(node.outputs[0])
        if scores is None or ctx is None:
            continue   # not between two activation matmuls: not an attention
        layer = _layers(out)
        k = _site("key", layer, scores.inputs[1], _operand_axes(scores, "key"), scores.name)
        v = _site("value", layer, ctx.inputs[1], _operand_axes(ctx, "value"), ctx.name)
        for s in (k, v):
            if s.source in seen:
                raise CachelessError(f"{s.source!r} is the {s.kind}s of two attentions: a shared cache is not derived")
            seen.add(s.source)
        out += [k, v]
    if not out:
        raise CachelessError("no attention found: no Softmax between an activation x activation matmul (q k^T, "
                             "through scale and mask ops) and one reading it (p v), and no ONNX Attention node")
    return tuple(out)


def _layers(sites: Sequence[Site]) -> int:
    """The index of the next attention."""
    return len({s.layer for s in sites})


# ------------------------------------------------------------------ the rewrite (ONNX)
def _value_info(name: str, dtype: str, shape: Sequence[int]) -> onnx.ValueInfoProto:
    from symbiote.ir import dtypes

    return helper.make_tensor_value_info(name, dtypes.to_onnx(dtype), list(shape))


def _compose(to_cache: Sequence[int], perm: Sequence[int]) -> list[int]:
    """The perm that reads the cache (``source`` transposed by ``to_cache``) as ``perm`` read ``source``."""
    inv = [0] * len(to_cache)
    for i, a in enumerate(to_cache):
        inv[a] = i
    return [inv[a] for a in perm]


def _append(g: onnx.GraphProto, s: CacheSite, context: int, taken: set[str]) -> None:
    """``present = Concat(past, source in the cache layout, axis=2)``; every other reader of
    ``source`` reads ``present`` (module doc)."""
    producer = next((i for i, n in enumerate(g.node) if s.source in n.output), -1)
    stem = (g.node[producer].name or s.source) if producer >= 0 else s.source
    readers = [n for n in g.node if s.source in n.input]
    perm = list(s.to_cache)
    new: list[onnx.NodeProto] = []
    new_rows = s.source
    if perm != [0, 1, 2, 3]:
        new_rows = _fresh(f"{s.source}.cache_layout", taken)
        new.append(helper.make_node("Transpose", [s.source], [new_rows], name=_fresh(f"{stem}.cache_layout", taken),
                                    perm=perm))
    new.append(helper.make_node("Concat", [s.past, new_rows], [s.present], name=_fresh(f"{stem}.append", taken), axis=2))
    back = ""
    for n in readers:
        if n.op_type == "Transpose" and perm != [0, 1, 2, 3]:
            p = [a.ints for a in n.attribute if a.name == "perm"]
            q = _compose(perm, list(p[0]) if p else [3, 2, 1, 0])
            del n.attribute[:]
            if q == [0, 1, 2, 3]:
                n.op_type = "Identity"
            else:
                n.attribute.append(helper.make_attribute("perm", q))
            n.input[0] = s.present
            continue
        if perm != [0, 1, 2, 3] and not back:
            back = _fresh(f"{s.present}.source_layout", taken)
            new.append(helper.make_node("Transpose", [s.present], [back], name=back, perm=_compose(perm, [0, 1, 2, 3])))
        for j, x in enumerate(n.input):
            if x == s.source:
                n.input[j] = back or s.present
    at = producer + 1
    for k, node in enumerate(new):
        g.node.insert(at + k, node)
    g.input.append(_value_info(s.past, s.dtype, s.past_shape(context)))
    shape = list(s.past_shape(context))
    shape[2] = context + 1
    g.output.append(_value_info(s.present, s.dtype, shape))


def _fresh(name: str, taken: set[str]) -> str:
    out, k = name, 1
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    taken.add(out)
    return out


def _attend(g: onnx.GraphProto, s: AttentionSite, context: int) -> None:
    """The Attention node's past key and value inputs (4, 5) and present outputs (1, 2)."""
    node = next(n for n in g.node if n.output and n.output[0] == s.output)
    names = [(f"past_key_{s.layer}", f"present_key_{s.layer}"), (f"past_value_{s.layer}", f"present_value_{s.layer}")]
    while len(node.input) < 4:
        node.input.append("")
    while len(node.output) < 3:
        node.output.append("")
    for j, ((past, present), shape) in enumerate(zip(names, s.past_shapes(context))):
        node.input.append(past)
        if not node.output[1 + j]:
            node.output[1 + j] = present
        g.input.append(_value_info(past, s.dtype, shape))
        out_shape = list(shape)
        out_shape[2] = context + 1
        if node.output[1 + j] not in {o.name for o in g.output}:
            g.output.append(_value_info(node.output[1 + j], s.dtype, out_shape))


def append_caches(g: onnx.GraphProto, sites: Sequence[Site], context: int) -> None:
    """The decode rule's edit of a cache-free graph (module doc): in place, on ``g``."""
    taken = {x for n in g.node for x in (*n.input, *n.output, n.name)} | {vi.name for vi in g.input}
    taken |= {t.name for t in g.initializer}
    clash = [n for s in sites for n in ((s.past, s.present) if isinstance(s, CacheSite) else ()) if n in taken]
    if clash:
        raise CachelessError(f"the graph already has a tensor named {clash[0]!r}: the cache's name")
    for s in sites:
        if isinstance(s, CacheSite):
            _append(g, s, context, taken)
        else:
            _attend(g, s, context)


__all__ = ["AttentionSite", "CacheSite", "CachelessError", "append_caches", "cache_sites"]
