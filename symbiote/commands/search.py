"""``symbiote search MODEL [MODEL ...] --backend NAME -o DIR``: co-design the model(s) and
the accelerator.

Writes ``result.json``, ``hardware.yaml``, one reshaped ``<model>.onnx`` per network,
``pareto.csv`` and ``report.md`` (with PNG plots) into ``-o DIR``; checkpoints the search
there at least every 30 s, and ``--resume`` continues a killed run to the same result.
"""

from __future__ import annotations

import argparse
import sys
import time

from symbiote.search.prepare import DEFAULT_PREPARE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", metavar="MODEL", nargs="+", help="ONNX files or zoo:NAME (several: one shared design)")
    parser.add_argument("--backend", "-b", default="systolic", metavar="NAME", help="accelerator template (default systolic)")
    parser.add_argument("--objective", action="append", metavar="OBJ",
                        help="edp (default), latency, energy, area or a product like latency^2*energy; "
                             "repeat for a Pareto search")
    parser.add_argument("--constraint", action="append", metavar="C",
                        help="e.g. area_mm2<=4, latency_ms<=5, power_w<=2, params<=3e6, fidelity>=0.99 (repeatable)")
    parser.add_argument("--model-knobs", default="channels+precision",
                        choices=("none", "channels", "precision", "channels+precision"),
                        help="what the search may change in the model (default channels+precision)")
    parser.add_argument("--prepare", default=DEFAULT_PREPARE, metavar="PIPELINE",
                        help="exact passes run on each model first, so it is costed as deployed "
                             f"(default {DEFAULT_PREPARE!r}; 'none': the model as given)")
    parser.add_argument("--bits", default="4,5,6,8,16", help="bit-widths a layer may take (default 4,5,6,8,16)")
    parser.add_argument("--budget-seconds", type=float, help="stop after this many seconds")
    parser.add_argument("--budget-evals", type=int, help="stop after this many cost evaluations (exactly reproducible)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KNOB=VALUE",
                        help="hold a hardware knob at a value (repeatable)")
    parser.add_argument("--free-knob", action="append", default=[], metavar="KNOB",
                        help="also search a technology knob held by default (dram_gbps, clock_ghz)")
    parser.add_argument("--calibration", metavar="FILE.npz", help="calibration inputs for the accuracy check "
                        "(arrays named like the model inputs); default: seeded random inputs")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in -o DIR")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from symbiote.backends import hwfile
    from symbiote.errors import SearchError
    from symbiote.search import api
    from symbiote.search.driver import SearchSettings
    from symbiote.search.objectives import parse_constraints, parse_objectives
    from symbiote.search.outputs import write_all
    from symbiote.search.report import write_report

    if args.budget_seconds is None and args.budget_evals is None:
        args.budget_seconds = 60.0
    if args.budget_evals is not None and args.budget_evals < 1:
        raise SearchError(f"--budget-evals must be >= 1, got {args.budget_evals}")
    if args.budget_seconds is not None and args.budget_seconds <= 0:
        raise SearchError(f"--budget-seconds must be > 0, got {args.budget_seconds}")
    try:
        bits = tuple(sorted({int(b) for b in args.bits.split(",") if b.strip()}))
    except ValueError:
        raise SearchError(f"--bits {args.bits!r}: expected numbers separated by commas, e.g. 4,8,16") from None
    if not bits or any(not 2 <= b <= 32 for b in bits):
        raise SearchError(f"--bits {args.bits!r}: bit-widths must be between 2 and 32")
    out = Path(args.output)
    if args.resume and not (out / "checkpoint.npz").exists():
        raise SearchError(f"--resume: no checkpoint in {out}")
    cfg = api.RunConfig(
        models=tuple(args.models), backend=args.backend,
        objectives=parse_objectives(args.objective), constraints=parse_constraints(args.constraint),
        model_knobs=args.model_knobs,
        settings=SearchSettings(seed=args.seed, budget_evals=args.budget_evals, budget_seconds=args.budget_seconds),
        hw_fixed=hwfile.parse_sets(args.sets), free_knobs=tuple(args.free_knob), bits_choices=bits,
        calibration=args.calibration, prepare=args.prepare,
    )
    t0 = time.perf_counter()
    progress, stop = _progress(args.quiet, cfg.settings)
    try:
        outcome = api.run(cfg, out, resume=args.resume, progress=progress)
    finally:
        stop()
    write_all(outcome, out)
    report = write_report(outcome, out)
    for n in outcome.networks:
        acc = n.accuracy or {}
        reg = f", regret {n.regret:+.1%}" if n.regret is not None else ""
        print(f"{n.name}: EDP {n.baseline['edp']:.4g} -> {n.metrics['edp']:.4g} pJ*s "
              f"({n.baseline['edp'] / max(n.metrics['edp'], 1e-300):.2f}x), latency {n.metrics['latency_s'] * 1e3:.4g} ms, "
              f"area {n.metrics['area_mm2']:.3g} mm2, fidelity {acc.get('fidelity', float('nan')):.4f}{reg}")
    print(f"hardware: {', '.join(f'{k}={v}' for k, v in outcome.hardware.items())}")
    if not outcome.feasible:
        print(f"warning: no design met the constraints; the least-violating one is reported "
              f"(violation {outcome.violation:.3g}); see result.json 'feasible'")
    print(f"done in {time.perf_counter() - t0:.1f} s ({outcome.result.evals} evaluations); report: {report}")
    return 0


def _progress(quiet: bool, settings):
    if quiet or not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), transient=False)
    bar.start()
    tasks: dict[str, int] = {}
    total = settings.budget_evals if settings.budget_evals is not None else settings.budget_seconds

    def update(phase: str, p) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total, info="")
        done = p.evals if settings.budget_evals is not None else p.elapsed_s
        best = f"{p.best:.4g}" if p.best != float("inf") else "none feasible yet"
        bar.update(tasks[phase], completed=done,
                   info=f"{p.evals} evals, best {best}, front {p.front_size}")

    return update, bar.stop
