"""``symbiote passes [--json]``: list the registered passes (built-in and plugins) with their arguments."""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _doc(cls: type) -> str:
    return " ".join((cls.__doc__ or "").split())


def run(args: argparse.Namespace) -> int:
    from symbiote.passes.registry import argument_table, registered

    table = registered()
    rows = []
    for name, cls in table.items():
        exact = cls.exact if isinstance(cls.exact, bool) else "depends"
        argv = [{"name": a, "type": t, **({} if d is MISSING else {"default": d})} for a, t, d in argument_table(cls)]
        rows.append({"name": name, "exact": exact, "module": cls.__module__, "doc": _doc(cls), "arguments": argv})
    if args.json:
        print(json.dumps({"passes": rows}, default=str))
        return 0
    for r in rows:
        sig = ", ".join(f"{a['name']}: {a['type']}" + (f" = {a['default']}" if "default" in a else "") for a in r["arguments"])
        print(f"{r['name']}({sig})  [exact: {r['exact']}]")
        print(f"    {r['doc']}")
    return 0
