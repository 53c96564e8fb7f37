"""Control flow (If, Loop, Scan): the body that is costed, how many times it runs, and the
shapes the node gives.

A control-flow node keeps its bodies verbatim (``onnx.GraphProto`` attributes) and reads
outer values by name. :func:`bodies` lowers each body to an IR graph of its own
(:func:`symbiote.frontend.subgraph.lower_body`), bound to the outer values it reads and
to formal inputs typed from the node's inputs; lowered bodies are cached, keyed by the
body and the shapes, dtypes and constants bound to it, so analyses, lowering and the
verifier share one lowering (treat a returned body as read-only).

* **If**: :func:`taken_branch` is the branch a constant condition selects (the loader and
  the ``inline-if`` pass inline it). Otherwise both branches are analysed and the node is
  costed as the dearer one, by MACs then bytes. Each output's shape is the branches'
  output shape when both agree (only the taken branch's when the condition is constant).
* **Loop**: with a static trip count (a constant ``M`` input) the body is costed ``M``
  times (``M`` is an upper bound when the body's condition can stop it earlier);
  otherwise the node is opaque ("trip count not static"). Carried values keep their shape
  when the body does; scan outputs get the trip count as their leading dim.
* **Scan**: the trip count is the static length of the scanned axis of its sequence
  inputs; the body is costed that many times; scan outputs get it at their output axis.

:func:`plan` answers all of this for one node as a :class:`Plan` with a one-line note;
``ir.analysis``, ``ir.lower``, ``ir.shapes`` and ``inspect`` all read it from here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from symbiote.errors import SymbioteError
from symbiote.ir.graph import Graph, Node, Shape, Value

if TYPE_CHECKING:
    from symbiote.ir.analysis import GraphStats

CONTROL_OPS = frozenset({"If", "Loop", "Scan"})
#: a Loop ``M`` at or above this is a while-loop bound, not a trip count
MAX_STATIC_TRIP = 1 << 31
#: lowered bodies kept (each entry holds its proto and bound constants alive)
CACHE_SIZE = 128

_DEFAULT_DOMAINS = ("", "ai.onnx")
_IF_BRANCHES = ("then_branch", "else_branch")
Out = tuple[Shape | None, str | None]


@dataclass(frozen=True)
class Scope:
    """The values a graph's subgraphs can read by name, and the graph's opset."""

    values: Mapping[str, Value]
    opset: Mapping[str, int]


@dataclass(frozen=True)
class Body:
    """One body of a control-flow node, lowered (``graph`` None when it cannot be: ``error`` says why)."""

    attr: str
    graph: Graph | None
    error: str = ""


@dataclass(frozen=True)
class Plan:
    """How a control-flow node is costed: ``costed`` runs ``repeat`` times (None: opaque)."""

    node: str
    onnx_op: str
    bodies: tuple[Body, ...]
    stats: tuple[GraphStats | None, ...]   # graph_stats of each body (None where not lowered)
    costed: Body | None
    costed_stats: GraphStats | None
    repeat: int
    note: str


#: (body attribute id, opset, formal types, bound values) -> (attribute, bound constants, body): the
#: entry keeps what its key's ids name alive, so an id cannot be reused while it is cached
_CACHE: OrderedDict[tuple, tuple[Any, ...]] = OrderedDict()


def is_control_flow(node: Node) -> bool:
    return node.onnx_op in CONTROL_OPS and node.domain in _DEFAULT_DOMAINS


def has_control_flow(graph: Graph) -> bool:
    return any(is_control_flow(n) for n in graph.nodes)


def scope_of(graph: Graph) -> Scope:
    return Scope({v.name: v for v in graph.values()}, dict(graph.opset))


# ------------------------------------------------------------------ bodies
def _proto(value: Any):
    import onnx

    if isinstance(value, onnx.GraphProto):
        return value
    if isinstance(value, Graph):  # a subgraph kept as IR
        from symbiote.frontend.save import graph_proto

        return graph_proto(value)
    return None


def body_attrs(node: Node) -> tuple[str, ...]:
    """The attributes holding the node's bodies."""
    return _IF_BRANCHES if node.onnx_op == "If" else ("body",)


def _formal(node: Node, proto) -> list[tuple[Shape | None, str | None]]:
    """The (shape, dtype) of each formal input of the node's body."""
    if node.onnx_op == "If":
        return []
    if node.onnx_op == "Loop":
        carried = [(_shape(v), v.dtype if v is not None else None) for v in node.inputs[2:]]
        return [((), "int64"), ((), "bool"), *carried][: len(proto.input)]
    m = int(node.attrs.get("num_scan_inputs", 0))
    n_state = len(node.inputs) - m
    axes = list(node.attrs.get("scan_input_axes") or [0] * m)
    out = [(_shape(v), v.dtype if v is not None else None) for v in node.inputs[:n_state]]
    for j, v in enumerate(node.inputs[n_state:]):
        s = _shape(v)
        if s:
            a = int(axes[j] if j < len(axes) else 0) % len(s)
            s = s[:a] + s[a + 1:]
        out.append((s, v.dtype if v is not None else None))
    return out


def _shape(v: Value | None) -> Shape | None:
    return None if v is None or v.shape is None else tuple(v.shape)


def lowered_body(node: Node, attr: str, scope: Scope) -> Graph:
    """The IR of one body of ``node`` (cached; read-only). Raises SymbioteError when it
    cannot be lowered."""
    from symbiote.frontend.build import outer_names
    from symbiote.frontend.subgraph import lower_body

    raw = node.attrs.get(attr)
    proto = _proto(raw)
    if proto is None:
        raise SymbioteError(f"node {node.name!r} ({node.onnx_op}) has no {attr!r} subgraph")
    formal = _formal(node, proto)
    reads = sorted(outer_names(proto))
    bound = [scope.values.get(n) for n in reads]
    key = (id(raw), tuple(sorted(scope.opset.items())), tuple(formal),
           tuple((n, None if v is None else (v.shape, v.dtype, id(v.const) if v.is_const else None)) for n, v in zip(reads, bound)))
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit[-1]
    body = lower_body(proto, formal, scope.values, scope.opset, f"node {node.name!r} ({node.onnx_op}) {attr}")
    _CACHE[key] = (raw, [v.const for v in bound if v is not None and v.is_const], body)
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return body


def bodies(node: Node, scope: Scope) -> tuple[Body, ...]:
    """Every body of the node, lowered where possible."""
    out = []
    for attr in body_attrs(node):
        try:
            out.append(Body(attr, lowered_body(node, attr, scope)))
        except SymbioteError as e:
            out.append(Body(attr, None, str(e)))
    return tuple(out)


# ------------------------------------------------------------------ conditions and trip counts
def taken_branch(node: Node) -> str | None:
    """The branch a constant If condition selects, or None."""
    if node.onnx_op != "If" or node.domain not in _DEFAULT_DOMAINS:
        return None
    c = node.input(0)
    if c is None or not c.is_const or np.asarray(c.const).size != 1:
        return None
    return "then_branch" if bool(np.asarray(c.const).reshape(-1)[0]) else "else_branch"


def trip_count(node: Node) -> tuple[int | None, str]:
    """The node's static trip count, or None and why not."""
    if node.onnx_op == "Loop":
        m = node.input(0)
        if m is None:
            return None, "trip count not static (no trip-count input M: it runs until its condition is false)"
        if not m.is_const:
            return None, f"trip count not static (M {m.name!r} is computed at run time)"
        value = int(np.asarray(m.const).reshape(-1)[0])
        if value >= MAX_STATIC_TRIP:
            return None, f"trip count not static (M = {value} is a while-loop bound)"
        cond = node.input(1)
        if cond is not None and cond.is_const and not bool(np.asarray(cond.const).reshape(-1)[0]):
            return 0, ""
        return max(value, 0), ""
    if node.onnx_op == "Scan":
        m = int(node.attrs.get("num_scan_inputs", 0))
        seqs = node.inputs[len(node.inputs) - m:] if m else []
        axes = list(node.attrs.get("scan_input_axes") or [0] * m)
        for j, v in enumerate(seqs):
            if v is not None and v.shape is not None and v.shape:
                return int(v.shape[int(axes[j]) % len(v.shape)] if j < len(axes) else v.shape[0]), ""
        return None, "trip count not static (the scanned inputs' shapes are unknown)"
    return 1, ""


def _stops_early(body: Graph, node: Node) -> bool:
    """Whether a Loop body's condition output can end the loop before M iterations."""
    c = body.outputs[0] if body.outputs else None
    while c is not None and c.producer is not None and c.producer.onnx_op == "Identity":
        c = c.producer.input(0)
    if c is None:
        return False
    if c.is_const:
        return not bool(np.asarray(c.const).reshape(-1)[0])
    formal_cond = body.inputs[1] if len(body.inputs) > 1 else None
    init = node.input(1)
    passthrough = c is formal_cond
    return not (passthrough and (init is None or (init.is_const and bool(np.asarray(init.const).reshape(-1)[0]))))


# ------------------------------------------------------------------ shapes
def output_types(node: Node, scope: Scope) -> list[Out] | None:
    """One (shape, dtype) per output of a control-flow node, from its bodies' outputs."""
    found = bodies(node, scope)
    if node.onnx_op == "If":
        taken = taken_branch(node)  # a constant condition: the other branch never runs (it may not even fit)
        live = [b for b in found if taken is None or b.attr == taken]
        return [_agree([_body_out(b, k) for b in live]) for k in range(len(node.outputs))]
    body = found[0].graph
    if body is None:
        return None
    trip, _ = trip_count(node)
    early = node.onnx_op == "Loop" and _stops_early(body, node)
    if node.onnx_op == "Loop":
        n_carried = len(node.inputs) - 2
        first = 1
        initial = node.inputs[2:]
        out_axes = [0] * len(node.outputs)
    else:
        n_carried = len(node.inputs) - int(node.attrs.get("num_scan_inputs", 0))
        first = 0
        initial = node.inputs[:n_carried]
        out_axes = list(node.attrs.get("scan_output_axes") or [0] * (len(node.outputs) - n_carried))
    outs: list[Out] = []
    for k in range(len(node.outputs)):
        j = first + k
        if j >= len(body.outputs):
            outs.append((None, None))
            continue
        o = body.outputs[j]
        if k < n_carried:
            init = initial[k] if k < len(initial) else None
            keeps = o.shape is not None and init is not None and init.shape is not None and tuple(o.shape) == tuple(init.shape)
            outs.append((tuple(o.shape) if keeps else None, o.dtype))
        else:
            if trip is None or o.shape is None or early:  # an early stop leaves fewer than `trip` rows
                outs.append((None, o.dtype))
                continue
            s = tuple(o.shape)
            a = int(out_axes[k - n_carried]) if k - n_carried < len(out_axes) else 0
            a = a % (len(s) + 1)
            outs.append((s[:a] + (trip,) + s[a:], o.dtype))
    return outs


def _body_out(b: Body, k: int) -> Out:
    if b.graph is None or k >= len(b.graph.outputs):
        return (None, None)
    o = b.graph.outputs[k]
    return (tuple(o.shape) if o.shape is not None else None, o.dtype)


def _agree(outs: list[Out]) -> Out:
    shapes = {s for s, _ in outs}
    dts = [d for _, d in outs if d is not None]
    shape = shapes.pop() if len(shapes) == 1 else None
    return (shape, dts[0] if dts else None)


# ------------------------------------------------------------------ costing
def plan(node: Node, scope: Scope) -> Plan:
    """Which body of a control-flow node is costed, how many times, and a note saying so."""
    from symbiote.ir.analysis import graph_stats

    found = bodies(node, scope)
    stats = tuple(graph_stats(b.graph) if b.graph is not None else None for b in found)
    what = f"{node.onnx_op} {node.name!r}"
    failed = [b for b in found if b.graph is None]
    why = "; ".join(f"{b.attr} cannot be analysed ({b.error})" for b in failed)
    if node.onnx_op == "If":
        return _plan_if(node, found, stats, what, why)
    body, st = found[0], stats[0]
    trip, reason = trip_count(node)
    if body.graph is None or st is None:
        return Plan(node.name, node.onnx_op, found, stats, None, None, 1, f"{what}: opaque; {why}")
    if trip is None:
        return Plan(node.name, node.onnx_op, found, stats, None, None, 1, f"{what}: {reason}; opaque (costed as data movement)")
    bound = " (an upper bound: its condition can stop it earlier)" if node.onnx_op == "Loop" and _stops_early(body.graph, node) else ""
    note = f"{what}: body costed x{trip} (static trip count{bound}): {st.macs * trip:,} MACs"
    return Plan(node.name, node.onnx_op, found, stats, body, st, trip, note)


def plans(graph: Graph) -> dict[int, Plan]:
    """The :func:`plan` of every control-flow node of the graph, by ``id(node)``."""
    if not has_control_flow(graph):
        return {}
    scope = scope_of(graph)
    return {id(n): plan(n, scope) for n in graph.nodes if is_control_flow(n)}


def _plan_if(node: Node, found: tuple[Body, ...], stats: tuple, what: str, why: str) -> Plan:
    taken = taken_branch(node)
    ok = [(b, s) for b, s in zip(found, stats) if s is not None]
    if taken is not None:
        for b, s in ok:
            if b.attr == taken:
                return Plan(node.name, node.onnx_op, found, stats, b, s, 1,
                            f"{what}: condition is constant; costed as the taken branch {taken!r} ({s.macs:,} MACs)")
    if not ok:
        return Plan(node.name, node.onnx_op, found, stats, None, None, 1, f"{what}: opaque; {why}")
    b, s = max(ok, key=lambda bs: (bs[1].macs, _bytes(bs[1])))
    if len(ok) == 1:
        return Plan(node.name, node.onnx_op, found, stats, b, s, 1,
                    f"{what}: {why}; costed as the branch {b.attr!r} ({s.macs:,} MACs)")
    other = [x for x, _ in ok if x is not b][0]
    other_macs = stats[found.index(other)].macs
    return Plan(node.name, node.onnx_op, found, stats, b, s, 1,
                f"{what}: condition depends on input; costed as the dearer branch {b.attr!r} ({s.macs:,} MACs vs {other_macs:,})")


def _bytes(s: GraphStats) -> int:
    return sum(layer.bytes_read + layer.bytes_written for layer in s.layers)
