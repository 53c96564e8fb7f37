"""Inline ``If`` nodes whose condition is constant: the taken branch's nodes replace the node.

:func:`inline_if` splices one lowered branch (:func:`symbiote.ir.control_flow.lowered_body`)
into the outer graph:

* the values the branch reads from outside are wired to the outer values of those names;
  its own constants become outer constants;
* its nodes become outer nodes, placed where the If was; node and value names are kept
  where free and made unique otherwise (a nested subgraph that reads a renamed value by
  name is rewritten to read the new name);
* the If's output values keep their names and consumers: the branch node that produced
  each branch output now produces it (an ``Identity`` does when the branch output is an
  outer value, a constant, or the same value as another output);
* nodes and constants that only fed the If (its condition, values only its subgraphs read)
  and are used by nothing else any more are removed.

:func:`inline_constant_ifs` repeats this, with constant folding in between, until no If has
a constant condition (a branch may hold further Ifs); an If whose branch cannot be lowered
stays as it is. The loader runs it on every model and the ``inline-if`` pass on any graph.
Inlining preserves the model's function.
"""

from __future__ import annotations

import onnx

from symbiote.errors import InvalidModelError, SymbioteError
from symbiote.frontend.build import outer_names, subgraphs
from symbiote.frontend.fold import fold_and_infer
from symbiote.frontend.rules import canonical_op
from symbiote.ir.control_flow import lowered_body, scope_of, taken_branch
from symbiote.ir.graph import Graph, Node, Value

#: rounds of inline + fold (nested constant Ifs need one each)
MAX_ROUNDS = 64


def inline_constant_ifs(graph: Graph) -> list[str]:
    """Inline every If whose condition is constant, folding after each round; returns the
    names of the inlined nodes (also appended to ``graph.meta["inlined_ifs"]``)."""
    done: list[str] = []
    skipped: dict[int, Node] = {}  # Ifs whose branch cannot be lowered stay (costed, with a note); held, so ids stay theirs
    for _ in range(MAX_ROUNDS):
        todo = [(n, b) for n in graph.nodes if id(n) not in skipped and (b := taken_branch(n)) is not None]
        if not todo:
            break
        for node, branch in todo:
            try:
                lowered_body(node, branch, scope_of(graph))
            except SymbioteError:
                skipped[id(node)] = node
                continue
            inline_if(graph, node, branch)
            done.append(node.name)
        fold_and_infer(graph)
    return done


def inline_if(graph: Graph, node: Node, branch: str) -> list[Node]:
    """Replace ``node`` (an If of ``graph``) by the nodes of its ``branch``; returns them."""
    scope = scope_of(graph)
    body = lowered_body(node, branch, scope)
    bound = set(body.meta.get("outer_bound", ()))
    vmap: dict[int, Value] = {}
    renames: dict[str, str] = {}
    for v in body.inputs:  # an If branch has no formal inputs: every input is an outer value
        vmap[id(v)] = scope.values[v.name]
    for name, v in body.constants.items():
        if name in bound:
            vmap[id(v)] = scope.values[name]
        else:
            nv = graph.add_const(name, v.const)
            vmap[id(v)] = nv
            if nv.name != name:
                renames[name] = nv.name
    if len(body.outputs) != len(node.outputs):
        raise InvalidModelError(f"If {node.name!r}: its {branch} has {len(body.outputs)} outputs but the node has "
                                f"{len(node.outputs)}")
    claimed: dict[int, Value] = {}
    for k, bo in enumerate(body.outputs):
        if bo.producer is not None and id(bo) not in claimed:
            claimed[id(bo)] = node.outputs[k]
    added: list[Node] = []
    for bn in body.nodes:
        outs = []
        for o in bn.outputs:
            target = claimed.get(id(o)) or Value(graph.unique_name(o.name))
            target.shape, target.dtype = o.shape, o.dtype
            if target.name != o.name:
                renames[o.name] = target.name
            vmap[id(o)] = target
            outs.append(target)
        meta = dict(bn.meta)
        attrs = _renamed_attrs(bn.attrs, renames, meta)
        ins = [None if v is None else vmap[id(v)] for v in bn.inputs]
        added.append(graph.add_node(bn.op, bn.onnx_op, ins, outs, name=bn.name, attrs=attrs, domain=bn.domain,
                                    meta=meta, before=node))
    for k, bo in enumerate(body.outputs):
        if claimed.get(id(bo)) is not node.outputs[k]:
            added.append(graph.add_node(canonical_op("Identity"), "Identity", [vmap[id(bo)]], [node.outputs[k]],
                                        name=f"{node.name}/{branch}/out{k}", before=node))
    feeders = [v for v in node.inputs if v is not None]
    feeders += [scope.values[n] for n in node.meta.get("_outer_inputs", ()) if n in scope.values]
    _detach(graph, node)
    _drop_dead(graph, feeders)
    graph.sort()
    graph.meta.setdefault("inlined_ifs", []).append({"node": node.name, "branch": branch})
    return added


def _detach(graph: Graph, node: Node) -> None:
    """Remove ``node`` whose outputs now have other producers."""
    for i, v in enumerate(node.inputs):
        if v is not None:
            v.uses.remove((node, i))
    node.inputs = [None] * len(node.inputs)
    graph.nodes = [n for n in graph.nodes if n is not node]


def _drop_dead(graph: Graph, values: list[Value]) -> None:
    """Remove the producers (and constants) of ``values`` that nothing uses any more, recursively."""
    reads = graph.scope_reads()
    stack = list(values)
    while stack:
        v = stack.pop()
        if v.uses or graph.is_output(v) or v.name in reads or v in graph.inputs:
            continue
        if v.is_const:
            if graph.constants.get(v.name) is v:
                del graph.constants[v.name]
            continue
        p = v.producer
        if p is None or not any(n is p for n in graph.nodes):
            continue
        if any(o.uses or graph.is_output(o) or o.name in reads for o in p.outputs):
            continue
        ins = [x for x in p.inputs if x is not None]
        by_name = {x.name: x for x in graph.values()} if p.meta.get("_outer_inputs") else {}
        ins += [by_name[n] for n in p.meta.get("_outer_inputs", ()) if n in by_name]
        graph.remove_node(p)
        reads = graph.scope_reads()
        stack.extend(ins)


def _renamed_attrs(attrs: dict, renames: dict[str, str], meta: dict) -> dict:
    """The node's attributes with nested subgraphs reading renamed values by their new name."""
    if not renames or not meta.get("_outer_inputs"):
        return dict(attrs)
    out = {}
    for k, a in attrs.items():
        if isinstance(a, onnx.GraphProto):
            out[k] = _rename_reads(a, renames)
        elif isinstance(a, list) and a and all(isinstance(g, onnx.GraphProto) for g in a):
            out[k] = [_rename_reads(g, renames) for g in a]
        else:
            out[k] = a
    reads: set[str] = set()
    for a in out.values():
        for g in a if isinstance(a, list) else [a]:
            if isinstance(g, onnx.GraphProto):
                reads |= outer_names(g)
    meta["_outer_inputs"] = sorted(reads)
    return out


def _rename_reads(g: onnx.GraphProto, renames: dict[str, str]) -> onnx.GraphProto:
    """A copy of subgraph ``g`` reading ``renames[name]`` wherever it reads an outer ``name``."""
    defined = {i.name for i in g.input} | {t.name for t in g.initializer} | {o for n in g.node for o in n.output}
    live = {k: v for k, v in renames.items() if k not in defined}
    if not live or not (outer_names(g) & set(live)):
        return g
    out = onnx.GraphProto()
    out.CopyFrom(g)
    for n in out.node:
        for i, name in enumerate(n.input):
            if name in live:
                n.input[i] = live[name]
        for sub in subgraphs(n):
            sub.CopyFrom(_rename_reads(sub, live))
    for o in out.output:
        if o.name in live:
            o.name = live[o.name]
    return out
