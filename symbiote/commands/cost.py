"""``symbiote cost MODEL [--backend NAME] [--hw FILE.yaml] [--set KNOB=VALUE ...] [--json]``.

Prices a model on an accelerator template and prints per-layer and total metrics, the
way ``symbiote search`` costs it: the model is first put in its deployed form by the same
exact passes (``--prepare``, default ``canonicalize,fold-bn,fuse-activations``; ``none``:
as given), on the same default template (``systolic``: the hardware file's backend when
``--hw`` is given without ``--backend``). So ``symbiote cost MODEL`` gives the "before" of
``symbiote search MODEL``. Knobs come from the template's defaults, then the hardware file
(YAML: ``backend:`` plus knobs), then ``--set`` overrides. Layers without precision
annotations are costed at ``--bits`` (default 8: int8 inference; ``--bits model`` uses
the tensors' dtypes). ``--input-shape`` / ``--input-value`` fix inputs
(:mod:`symbiote.commands.modelargs`); a model whose MAC layers' weights are each one
constant gets a warning on stderr. ``--json`` prints::

    {"backend", "hardware": {...}, "precision", "prepare", "totals": {"latency_cycles", "latency_s",
     "energy_pj", "area_mm2", "edp", "compute_cycles", "utilization", "energy_breakdown_pj"},
     "layers": [{"name", "op", "latency_cycles", "compute_cycles", "energy_pj", "utilization"}]}
"""

from __future__ import annotations

import argparse
import json
import sys

from symbiote.backends import DEFAULT_BACKEND
from symbiote.commands.modelargs import add_input_arguments, add_prepare_argument
from symbiote.errors import HardwareError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="an ONNX file, or zoo:NAME (e.g. zoo:resnet18)")
    parser.add_argument("--backend", "-b", metavar="NAME",
                        help=f"template name (see `symbiote backends`); default: the hardware file's, else {DEFAULT_BACKEND}")
    parser.add_argument("--hw", metavar="FILE.yaml", help="hardware file: backend: NAME plus knobs")
    parser.add_argument("--set", metavar="KNOB=VALUE", action="append", default=[], dest="sets", help="override a knob (repeatable)")
    parser.add_argument("--bits", default="8", help="bit-width of layers without precision annotations: a number, or 'model' for the tensor dtypes (default 8)")
    add_prepare_argument(parser)
    add_input_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _bits(spec: str) -> int | None:
    if spec == "model":
        return None
    try:
        b = int(spec)
    except ValueError:
        b = 0
    if not 1 <= b <= 64:
        raise HardwareError(f"--bits {spec!r}: expected an integer in [1, 64] or 'model'")
    return b


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from symbiote.backends import hwfile
    from symbiote.backends.manager import registry
    from symbiote.commands.modelargs import load_model, print_warnings
    from symbiote.ir.lower import lower
    from symbiote.search.degenerate import constant_weights
    from symbiote.search.prepare import parse_prepare, prepare_graph

    file_backend, file_design = hwfile.read(args.hw) if args.hw else (None, {})
    name = args.backend or file_backend or DEFAULT_BACKEND
    if args.backend and file_backend and args.backend != file_backend:
        raise HardwareError(f"{args.hw}: written for backend {file_backend!r}, not {args.backend!r}")
    template = registry().get(name)
    design = hwfile.resolve(template.space, file_design, hwfile.parse_sets(args.sets), where=str(args.hw or ""))
    bits = _bits(args.bits)
    parse_prepare(args.prepare)  # syntax errors before the (slow) load
    graph = load_model(args, args.model)
    print_warnings(constant_weights(graph, args.model))
    wl = lower(prepare_graph(graph, args.prepare), default_bits=bits)
    m = template.cost(template.space.encode(design), wl)
    per = {k: np.asarray(v) for k, v in m.to_numpy().items()}
    energy = np.asarray(m.energy_pj)
    precision = f"{bits}-bit weights and activations for unannotated layers" if bits else "tensor dtypes for unannotated layers"
    totals = {k: float(v) for k, v in m.totals().items()}
    totals["energy_breakdown_pj"] = {k: float(v) for k, v in m.energy_breakdown().items()}
    layers = [
        {"name": n, "op": op, "latency_cycles": float(per["latency_cycles"][i]), "compute_cycles": float(per["compute_cycles"][i]),
         "energy_pj": float(energy[i]), "utilization": float(per["utilization"][i])}
        for i, (n, op) in enumerate(zip(wl.names, wl.ops, strict=True))
    ]
    if args.json:
        json.dump({"backend": name, "hardware": design, "precision": precision, "prepare": args.prepare,
                   "totals": totals, "layers": layers}, sys.stdout)
        print()
        return 0
    print(f"backend {name}: " + ", ".join(f"{k}={v}" for k, v in design.items()))
    print(f"precision: {precision}; model prepared with: {args.prepare}")
    w = max([len(row["name"]) for row in layers] + [5])
    print(f"{'layer':<{w}}  {'op':<14} {'latency_cyc':>12} {'compute_cyc':>12} {'energy_pj':>12} {'util':>6}")
    for row in layers:
        print(f"{row['name']:<{w}}  {row['op']:<14} {row['latency_cycles']:>12.0f} {row['compute_cycles']:>12.0f} {row['energy_pj']:>12.4g} {row['utilization']:>6.1%}")
    print(f"total: {totals['latency_cycles']:.0f} cycles = {totals['latency_s'] * 1e3:.4g} ms, {totals['energy_pj'] * 1e-6:.4g} uJ, "
          f"{totals['area_mm2']:.4g} mm2, EDP {totals['edp']:.4g} pJ*s, utilization {totals['utilization']:.1%}")
    print("energy: " + ", ".join(f"{k} {v * 1e-6:.4g} uJ" for k, v in totals["energy_breakdown_pj"].items()))
    return 0
