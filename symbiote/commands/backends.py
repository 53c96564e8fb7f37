"""``symbiote backends [--json]``: the registered accelerator templates, their knobs
(kind, bounds or choices, default), where each template came from, and plugins that failed
to load (by name, with the error). ``--json`` prints
``{"templates": [{"name", "origin", "doc", "knobs": [...]}], "failures": [{"plugin", "error"}]}``.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import warnings

    from symbiote.backends.manager import registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are listed below
        reg = registry()
    templates = [{"name": n, "origin": reg.origins[n], "doc": t.doc, "knobs": t.space.describe()} for n, t in sorted(reg.templates.items())]
    failures = [{"plugin": f.plugin, "error": f.error} for f in reg.failures]
    if args.json:
        json.dump({"templates": templates, "failures": failures}, sys.stdout)
        print()
        return 0
    for t in templates:
        print(f"{t['name']}  [{t['origin']}]")
        if t["doc"]:
            print(f"  {t['doc']}")
        for k in t["knobs"]:
            unit = f" {k['unit']}" if k.get("unit") else ""
            print(f"  {k['name']:<18} {k['kind']:<12} default {k['default']!s:<8}{unit:<14} {k['legal']}")
    for f in failures:
        print(f"FAILED plugin {f['plugin']}: {f['error']}")
    return 0
