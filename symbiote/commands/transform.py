"""``symbiote transform MODEL -p PIPELINE -o OUT.onnx [--verify] [--json]``.

Runs a pass pipeline (text syntax: see passes/README.md) on MODEL (loaded with
``--input-shape`` / ``--input-value``: :mod:`symbiote.commands.modelargs`), prints what
each pass did and MACs/params before and after, writes the result. ``--verify`` runs the original and the
result in onnxruntime on the same seeded random inputs and prints the max abs/rel
difference (and the cosine similarity of the outputs when this run was not exact: a pass
such as ``resize-channels`` that only grew channels counts as exact, see
``symbiote.passes.base.run_exact``). An empty pipeline is a syntax error (exit 2).
``--json`` prints one JSON object::

    {"model", "pipeline", "exact" (this run preserved the function), "output", "steps": [{"pass", "modified", ...}],
     "before": {"macs", "params", "nodes"}, "after": {...},
     "verify": {"max_abs", "max_rel", "cosine", "outputs", "seed"} | null}
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from symbiote.commands.modelargs import add_input_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="an ONNX file, or zoo:NAME for a built-in model")
    parser.add_argument("-p", "--pipeline", required=True, help='passes, e.g. "canonicalize,fold-bn,prune(ratio=0.3)"')
    parser.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="where to write the result")
    add_input_arguments(parser)
    parser.add_argument("--verify", action="store_true", help="compare original and result in onnxruntime")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs used by --verify (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _stats(graph: Any) -> dict[str, int]:
    from symbiote.ir.analysis import graph_stats

    s = graph_stats(graph)
    return {"macs": int(s.macs), "params": int(s.params), "nodes": len(graph.nodes)}


def _short(info: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("pass", "modified", "seconds", "widths", "steps"))


def run(args: argparse.Namespace) -> int:
    from symbiote.commands.modelargs import load_model
    from symbiote.frontend.save import save
    from symbiote.passes import parse_pipeline

    pipeline = parse_pipeline(args.pipeline)  # syntax errors before the (slow) load
    graph = load_model(args, args.model)
    result = pipeline(graph)
    out = save(result.graph, args.output)
    report: dict[str, Any] = {
        "model": args.model,
        "pipeline": pipeline.spec(),
        "exact": bool(result.info.get("exact", pipeline.exact)),  # this run (growth-only resize is exact)
        "output": str(out),
        "steps": result.info["steps"],
        "before": _stats(graph),
        "after": _stats(result.graph),
        "verify": None,
    }
    if args.verify:
        from symbiote.passes.ort_check import compare

        c = compare(graph, result.graph, seed=args.seed)
        report["verify"] = {**c.as_dict(), "seed": args.seed}
    if args.json:
        print(json.dumps(report, default=str))
        return 0
    for st in report["steps"]:
        mark = "changed" if st["modified"] else "no change"
        print(f"{st['pass']:<40} {mark:<10} {st.get('seconds', 0):.3f}s  {_short(st)}")
    b, a = report["before"], report["after"]
    for k in ("macs", "params", "nodes"):
        ratio = a[k] / b[k] if b[k] else 1.0
        print(f"{k:<7} {b[k]:>14,} -> {a[k]:>14,}  ({ratio:.3f}x)")
    v = report["verify"]
    if v is not None:
        line = f"verify (seed {v['seed']}): max abs diff {v['max_abs']:.3g}, max rel diff {v['max_rel']:.3g}"
        if not report["exact"]:
            line += f", cosine similarity {v['cosine']:.6f}"
        print(line)
    print(f"wrote {out}")
    return 0
