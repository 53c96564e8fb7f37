"""A readable text form of a graph (``str(graph)``)."""

from __future__ import annotations

from symbiote.ir.graph import Graph, Value


def _v(v: Value | None) -> str:
    if v is None:
        return "_"
    shape = "?" if v.shape is None else "x".join(str(d) for d in v.shape) or "scalar"
    return f"%{v.name}:{v.dtype}[{shape}]"


def format_graph(graph: Graph) -> str:
    lines = [f"graph {graph.name} (opset {graph.opset.get('', '?')}) {{"]
    for v in graph.inputs:
        lines.append(f"  input  {_v(v)}")
    if graph.constants:
        nbytes = sum(v.nbytes for v in graph.constants.values())
        lines.append(f"  # {len(graph.constants)} constants, {nbytes} bytes")
    for n in graph.nodes:
        outs = ", ".join(_v(o) for o in n.outputs)
        ins = ", ".join(("$" + v.name) if v is not None and v.is_const else _v(v) for v in n.inputs)
        attrs = ""
        if n.attrs:
            shown = {k: a for k, a in n.attrs.items() if not hasattr(a, "node")}
            attrs = " {" + ", ".join(f"{k}={a}" for k, a in shown.items()) + "}"
        meta = ""
        public = {k: m for k, m in n.meta.items() if not k.startswith("_")}
        if public:
            meta = "  # " + ", ".join(f"{k}={m}" for k, m in public.items())
        lines.append(f"  {outs} = {n.op}.{n.onnx_op}({ins}){attrs}{meta}  @{n.name}")
    for v in graph.outputs:
        lines.append(f"  output {_v(v)}")
    lines.append("}")
    return "\n".join(lines)
