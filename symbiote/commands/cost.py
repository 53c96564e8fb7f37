"""``symbiote cost MODEL [--backend NAME] [--hw FILE.yaml] [--set KNOB=VALUE ...] [--mappings] [--json]``.

Prices a model on an accelerator template and prints per-layer and total metrics, the
way ``symbiote search`` costs it: the model is first put in its deployed form by the same
exact passes (``--prepare``, default ``canonicalize,fold-bn,fuse-activations``; ``none``:
as given), on the same default template (``systolic``: the hardware file's backend when
``--hw`` is given without ``--backend``). So ``symbiote cost MODEL`` gives the "before" of
``symbiote search MODEL``. Knobs come from the template's defaults, then the hardware file
(YAML: ``backend:`` plus knobs), then ``--set`` overrides. Layers without precision
annotations are costed at ``--bits`` (default 8: int8 inference; ``--bits model`` uses
the tensors' dtypes). ``--input-shape`` / ``--input-value`` fix inputs
(:mod:`symbiote.commands.modelargs`); ``--phase prefill --seq S`` / ``--phase decode
--context L`` with ``--batch B`` cost a decoder's prefill or one decode step
(:mod:`symbiote.search.phases`) and print TTFT or TPOT, tokens per second, energy per token
and the capacity check (weights + KV cache against the template's ``dram_gib``; ``infeasible:``
and the reason when they do not fit; JSON: ``"phase"``); a model whose MAC layers' weights are each one
constant gets a warning on stderr. ``--json`` prints::

    {"backend", "hardware": {...}, "precision", "prepare", "totals": {"latency_cycles", "latency_s",
     "energy_pj", "area_mm2", "edp", "compute_cycles", "utilization", "energy_breakdown_pj"},
     "layers": [{"name", "op", "latency_cycles", "compute_cycles", "energy_pj", "utilization"}]}

plus, with ``--mappings``, ``"mappings": [{"name", "order", "dram_bytes",
"compulsory_bytes", "dram_vs_compulsory", "dram_bytes_by_operand", "compute_cycles",
"latency_cycles"}]`` for each MAC layer (the loop order and tiling the template's exact model
chose: systolic's, with ``"t_tiles"`` and ``"block"``, backends/systolic/tiling.py; spatial's
``order`` is the whole loop nest, backends/spatial/mapping.py, and a layer no candidate mapping
fits has ``"infeasible"``, the reason).
"""

from __future__ import annotations

import argparse
import json
import sys

from symbiote.backends import DEFAULT_BACKEND
from symbiote.commands.modelargs import add_input_arguments, add_phase_arguments, add_prepare_argument
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
    add_phase_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--mappings", action="store_true",
                        help="also print the loop order and tiling the model chose for each MAC layer, with its DRAM traffic "
                             "against the compulsory traffic (templates that report mappings: systolic, spatial)")


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
    from symbiote.commands.modelargs import load_model, phase_of, print_warnings
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
    phase = phase_of(args)
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
    mappings = _mappings(template, design, wl) if args.mappings else None
    llm = _phase_report(phase, graph, wl, template, design, m) if phase is not None else None
    if args.json:
        out = {"backend": name, "hardware": design, "precision": precision, "prepare": args.prepare,
               "totals": totals, "layers": layers}
        if llm is not None:
            out["phase"] = llm
        if mappings is not None:
            out["mappings"] = mappings
        json.dump(out, sys.stdout)
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
    if mappings is not None:
        _print_mappings(mappings, design.get("dataflow", ""))
    if llm is not None:
        _print_phase(llm)
    return 0


def _phase_report(phase, graph, wl, template, design, m) -> dict:
    """The LLM phase's metrics (objectives.derive) and the capacity check (search/phases.py)."""
    from symbiote.search import phases

    hw = template.space.encode(design)
    totals = {k: float(v) for k, v in m.totals().items()}
    derived = phases.phase_metrics(phase, totals)
    keys = ("ttft_s", "tpot_s", "tokens_per_s", "energy_per_token_pj")
    out = {"phase": phase.kind, "batch": phase.batch, "seq": phase.new_len, "context": phase.context,
           "tokens": phase.tokens, **{k: float(derived[k]) for k in keys if k in derived}}
    wb, kvb = phases.workload_bits(wl, hw)
    cap = phases.capacity(graph, design, wb, kvb)
    out["weight_bits"], out["kv_bits"] = wb, kvb
    out["capacity"] = cap.as_dict() if cap is not None else None
    return out


def _print_phase(p: dict) -> None:
    lat = f"TTFT {p['ttft_s'] * 1e3:.4g} ms" if "ttft_s" in p else f"TPOT {p['tpot_s'] * 1e3:.4g} ms"
    print(f"{p['phase']}: batch {p['batch']}, {p['seq']} new token(s), {p['context']} cached: {lat}, "
          f"{p['tokens_per_s']:.4g} tokens/s, {p['energy_per_token_pj'] * 1e-6:.4g} uJ/token "
          f"(weights at {p['weight_bits']:g} bits, KV cache at {p['kv_bits']:g} bits)")
    cap = p["capacity"]
    if cap is None:
        print("capacity: not checked (the template declares no dram_gib)")
    else:
        print(("capacity: " if cap["feasible"] else "infeasible: ") + cap["reason"])


def _order(dataflow: str, order: float, t_tiles: float, block: float) -> str:
    """A mapping in words: the loop nest from the outermost loop in."""
    if dataflow == "os":
        return "col folds > row folds (SCALE-Sim)" if order < 0.5 else "row folds > col folds"
    nest = f"{t_tiles:.0f} T tiles > " if t_tiles > 1.5 else ""
    if block > 1.5:
        return nest + f"blocks of {block:.0f} col folds > row folds > col folds"
    return nest + "col folds > row folds" + ("" if nest else " (SCALE-Sim)")


def _mappings(template, design, wl) -> list[dict]:
    """Per MAC layer: the chosen mapping and its DRAM traffic (template.mappings). A template
    whose breakdown has ``loop_nest`` (a string per row, e.g. spatial) gives the nest itself;
    systolic's is written from its ``order``, ``t_tiles`` and ``block``."""
    import numpy as np

    if template.mappings is None:
        raise HardwareError(f"backend {template.name!r} does not report mappings (--mappings); systolic and spatial do")
    d = template.mappings(template.space.encode(design), wl)
    df = str(design.get("dataflow", ""))
    rows = []
    for i in np.flatnonzero(d["is_mac"] > 0.5):
        dram = float(d["dram_ifmap_bytes"][i] + d["dram_filter_bytes"][i] + d["dram_ofmap_bytes"][i] + d["dram_psum_bytes"][i])
        comp = float(d["compulsory_bytes"][i])
        row = {"name": wl.names[i], "dram_bytes": dram, "compulsory_bytes": comp,
               "dram_vs_compulsory": dram / comp if comp > 0 else 1.0,
               "dram_bytes_by_operand": {k: float(d[f"dram_{k}_bytes"][i]) for k in ("ifmap", "filter", "ofmap", "psum")},
               "compute_cycles": float(d["compute_cycles"][i]), "latency_cycles": float(d["latency_cycles"][i])}
        if "loop_nest" in d:
            row["order"] = d["loop_nest"][i]
            if "feasible" in d and d["feasible"][i] < 0.5:
                row["infeasible"] = d["reason"][i]
        else:
            row["order"] = _order(df, float(d["order"][i]), float(d["t_tiles"][i]), float(d["block"][i]))
            row["t_tiles"], row["block"] = int(round(float(d["t_tiles"][i]))), int(round(float(d["block"][i])))
        rows.append(row)
    return rows


def _print_mappings(rows: list[dict], dataflow: str) -> None:
    print(f"mappings ({dataflow}): loop nest from the outermost loop; DRAM traffic against compulsory (every operand moved once)")
    w = max([len(r["name"]) for r in rows] + [5])
    o = max([len(r["order"]) for r in rows] + [5])
    print(f"{'layer':<{w}}  {'loop nest':<{o}} {'dram_MB':>9} {'x_compul':>8} {'bound':>7}")
    for r in rows:
        if "infeasible" in r:
            print(f"{r['name']:<{w}}  infeasible: {r['infeasible']}")
            continue
        bound = "memory" if r["latency_cycles"] > 1.001 * r["compute_cycles"] + 1 else "compute"
        print(f"{r['name']:<{w}}  {r['order']:<{o}} {r['dram_bytes'] / 1e6:>9.4g} {r['dram_vs_compulsory']:>8.3f} {bound:>7}")
