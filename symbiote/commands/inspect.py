"""``symbiote inspect MODEL``: a per-layer table (name, IR op, ONNX op, output shape, MACs, params) and totals.

MODEL is an ONNX file or ``zoo:NAME`` (see ``symbiote.zoo.names()``). ``--input-shape
NAME=DIMS`` (e.g. ``pixel_values=1x3x224x224``, repeatable) fixes dynamic input dims.
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

from symbiote.errors import ShapeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="an ONNX file, or zoo:NAME for a built-in model (e.g. zoo:resnet50)")
    parser.add_argument(
        "--input-shape",
        metavar="NAME=DIMS",
        action="append",
        default=[],
        help="shape of a model input with dynamic dims, e.g. pixel_values=1x3x224x224 (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def parse_input_shapes(specs: list[str]) -> dict[str, tuple[int, ...]]:
    """``["x=1x3x224x224"]`` -> ``{"x": (1, 3, 224, 224)}``; raises ShapeError naming the bad spec."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, sep, dims = spec.partition("=")
        name = name.strip()
        if not sep or not name or not dims.strip():
            raise ShapeError(f"--input-shape {spec!r}: expected NAME=DIMS, e.g. pixel_values=1x3x224x224")
        try:
            shape = tuple(int(d) for d in dims.strip().lower().replace(",", "x").split("x"))
        except ValueError:
            raise ShapeError(f"--input-shape {spec!r}: dims must be integers separated by 'x'") from None
        bad = [d for d in shape if d <= 0]
        if bad:
            raise ShapeError(f"--input-shape {spec!r}: dim {bad[0]} must be positive")
        if name in shapes:
            raise ShapeError(f"--input-shape: input {name!r} is given twice")
        shapes[name] = shape
    return shapes


def report(model: str, graph: Any, stats: Any) -> dict[str, Any]:
    """The JSON-able report of a loaded graph and its ``graph_stats``."""
    consts = {id(v) for v in graph.constants.values()}
    return {
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
    console.print(f"model {rep['model']}  opset {rep['opset']}  inputs {inputs}")
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


def run(args: argparse.Namespace) -> int:
    from symbiote.frontend import load
    from symbiote.ir.analysis import graph_stats

    shapes = parse_input_shapes(args.input_shape)
    graph = load(args.model, input_shapes=shapes or None)
    rep = report(args.model, graph, graph_stats(graph))
    if args.json:
        print(json.dumps(rep))
    else:
        print_table(rep)
    return 0
