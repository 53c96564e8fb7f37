"""``symbiote inspect MODEL``: a per-layer table (name, IR op, ONNX op, output shape, MACs, params) and totals.

MODEL is an ONNX file or ``zoo:NAME`` (see ``symbiote.zoo.names()``). ``--input-shape
NAME=DIMS`` (e.g. ``pixel_values=1x3x224x224``, repeatable) fixes dynamic input dims,
``--input-value NAME=VALUE`` (e.g. ``sr=16000``) makes an input a constant, ``--phase``
(with ``--seq``/``--context``/``--batch``) shows a decoder's prefill or decode step
(:mod:`symbiote.commands.modelargs`). A model whose MAC layers' weights are each one
constant gets a warning on stderr (:func:`symbiote.search.degenerate.constant_weights`).
``--json`` prints one JSON object::

    {"model", "opset", "inputs": [{"name", "shape", "dtype"}],
     "layers": [{"name", "op", "onnx_op", "output_shapes", "macs", "params"}],
     "totals": {"macs", "params", "layers", "opaque": {op: count}}}
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from symbiote.commands.modelargs import add_input_arguments, add_phase_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="an ONNX file, or zoo:NAME for a built-in model (e.g. zoo:resnet50)")
    add_input_arguments(parser)
    add_phase_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def report(model: str, graph: Any, stats: Any) -> dict[str, Any]:
    """The JSON-able report of a loaded graph and its ``graph_stats``.

    Models with control flow also get ``"control_flow"`` (one note per If/Loop/Scan saying
    how it was costed, or that it was inlined) and ``"subgraph_ops"`` (ONNX op type -> count
    inside every subgraph); models loaded with ``input_values`` get ``"input_values"``.
    """
    consts = {id(v) for v in graph.constants.values()}
    rep: dict[str, Any] = {
        "model": model,
        "opset": int(graph.opset.get("", graph.opset.get("ai.onnx", 0))),
        "inputs": [
            {"name": v.name, "shape": list(v.shape) if v.shape is not None else None, "dtype": v.dtype}
            for v in graph.inputs
            if id(v) not in consts
        ],
        "layers": [
            {
                "name": s.name,
                "op": s.op,
                "onnx_op": s.onnx_op,
                "output_shapes": [list(sh) if sh is not None else None for sh in s.output_shapes],
                "macs": int(s.macs),
                "params": int(s.params),
            }
            for s in stats.layers
        ],
        "totals": {
            "macs": int(stats.macs),
            "params": int(stats.params),
            "layers": len(stats.layers),
            "opaque": {k: int(v) for k, v in sorted(stats.opaque.items())},
        },
    }
    inlined = [f"If {d['node']!r}: condition is constant; inlined its {d['branch']}" for d in graph.meta.get("inlined_ifs", ())]
    notes = inlined + list(getattr(stats, "control_flow", ()))
    if notes:
        rep["control_flow"] = notes
    sub_ops = getattr(stats, "subgraph_ops", {})
    if sub_ops:
        rep["subgraph_ops"] = {k: int(v) for k, v in sorted(sub_ops.items())}
    if graph.meta.get("input_values"):
        rep["input_values"] = dict(graph.meta["input_values"])
    return rep


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _shapes_text(shapes: list[Any]) -> str:
    return ", ".join("?" if s is None else "x".join(str(d) for d in s) or "scalar" for s in shapes)


def print_table(rep: dict[str, Any], file: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    out = file or sys.stdout
    console = Console(file=out, width=max(120, Console(file=out).width), highlight=False)
    inputs = ", ".join(f"{i['name']}:{i['dtype']}[{_shapes_text([i['shape']])}]" for i in rep["inputs"])
    console.print(f"model {rep['model']}  opset {rep['opset']}  inputs {inputs}", markup=False)
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col, justify in (("name", "left"), ("op", "left"), ("onnx_op", "left"), ("output shape", "left"), ("MACs", "right"), ("params", "right")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for layer in rep["layers"]:
        table.add_row(layer["name"], layer["op"], layer["onnx_op"], _shapes_text(layer["output_shapes"]), f"{layer['macs']:,}", f"{layer['params']:,}")
    console.print(table)
    t = rep["totals"]
    console.print(f"total: {t['layers']} layers, {t['macs']:,} MACs ({_human(t['macs'])}), {t['params']:,} params ({_human(t['params'])})")
    if t["opaque"]:
        console.print("opaque ops: " + ", ".join(f"{k} x{v}" for k, v in t["opaque"].items()))
    else:
        console.print("opaque ops: none")
    if rep.get("input_values"):
        console.print("input values: " + ", ".join(f"{k}={v}" for k, v in rep["input_values"].items()))
    if rep.get("subgraph_ops"):
        console.print("ops inside subgraphs: " + ", ".join(f"{k} x{v}" for k, v in rep["subgraph_ops"].items()))
    if rep.get("control_flow"):
        console.print("control flow:")
        for note in rep["control_flow"]:
            console.print(f"  {note}", markup=False)


def run(args: argparse.Namespace) -> int:
    from symbiote.commands.modelargs import load_model, print_warnings
    from symbiote.ir.analysis import graph_stats
    from symbiote.search.degenerate import constant_weights

    graph = load_model(args, args.model)
    print_warnings(constant_weights(graph, args.model))
    rep = report(args.model, graph, graph_stats(graph))
    if args.json:
        print(json.dumps(rep))
    else:
        print_table(rep)
    return 0
