"""Predicted vs measured latency of the ``ort-cpu`` template on every zoo model.

For each zoo model: the *predicted* latency is the ``ort-cpu`` cost of the model as the
search costs it (prepared by ``canonicalize,fold-bn,fuse-activations``, lowered, each
row's kernel measured alone: :mod:`symbiote.backends.ortcpu.model`); the *measured*
latency is the whole model run end to end in onnxruntime (the zoo's ONNX file as written,
optimized at the same level, same threads, seeded inputs from
:func:`symbiote.passes.ort_check.random_inputs`). Printed: both, each model's error
``(predicted - measured) / measured``, the mean absolute percentage error and the share of
models within +-10% (nn-Meter's figure of merit). ``--json`` prints one object instead.
The machine is shared and its speed drifts, so both figures are measured together: the
model's kernels are measured interleaved (:func:`symbiote.backends.ortcpu.measure.measure_net`,
chunk by chunk) with the whole model as one more session in each chunk, so a burst
of load lands on both alike; the kernel timings go into a new, empty cache (``--cache``:
the user's, ``$SYMBIOTE_ORTCPU_CACHE`` or ``~/.cache/symbiote/ortcpu``) and the template's
cost then reads them (it measures nothing itself: checked).

The runs are :func:`settings`: :data:`ROUNDS` interleaved slices per session (the
template's default is 6) and ``--budget`` seconds of timed runs per kernel and for the
model. This machine's speed moves between regimes up to 1.5x apart every few seconds, and
the whole model is one session among up to hundreds: with 6 slices its runs sampled 6
moments against the kernels' many, and a model's error moved by 10% from run to run.
At 40 slices the whole model samples the machine as the kernels do. The run takes about
2 minutes at the default budget. Run it on a quiet machine: under other processes' load
the whole model slows down more than its kernels measured alone (with two other jobs on
this 2-core machine, load average 4, the big models' errors reached -25% to -37%), so the
figures then say more about the load than about the template.

    python benchmarks/measured.py [--threads 1] [--models a,b] [--json] [--cache] [--budget S]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

#: interleaved slices per session (module doc), and the default timed seconds per session
ROUNDS = 40
BUDGET_S = 0.5


def settings(budget_s: float = BUDGET_S):
    """The benchmark's runs: ``budget_s`` timed seconds per session over :data:`ROUNDS`
    slices, at least one timed run per slice, each slice after one untimed run."""
    from symbiote.backends.ortcpu.measure import Settings

    return Settings(warmup=5, reps=50 * ROUNDS, min_reps=ROUNDS, budget_s=budget_s, rounds=ROUNDS, slice_warmup=1)


#: zoo models at reduced sizes (name -> zoo arguments, and why); every other model is full size
REDUCED: dict[str, tuple[dict, str]] = {}


@dataclass(frozen=True)
class Row:
    model: str
    predicted_ms: float
    measured_ms: float
    measured_spread_ms: float
    kernels: int
    error: float
    seconds: float


def compare(name: str, threads: int, parallel: bool, budget_s: float = BUDGET_S) -> Row:
    from symbiote.backends.manager import get_template
    from symbiote.backends.ortcpu import cache, measure, plan
    from symbiote.backends.ortcpu.model import COLUMNS, OVERHEAD, rules
    from symbiote.frontend import load, zoo
    from symbiote.ir.lower import lower
    from symbiote.ir.workload import FREE
    from symbiote.passes.ort_check import random_inputs
    from symbiote.search.prepare import prepare_graph

    t0 = time.perf_counter()
    onnx_model = zoo.build(name, **REDUCED.get(name, ({}, ""))[0])
    graph = load(onnx_model)
    wl = lower(prepare_graph(graph, "canonicalize,fold-bn,fuse-activations"))
    cols = {f: np.asarray(getattr(wl, f)) for f in COLUMNS}
    ks = {p.kernel.signature: p.kernel for p in plan.row_kernels(cols, wl.ops, wl.kinds, rules()) if p.kernel is not None}
    whole = measure.session(onnx_model, threads, parallel)
    names = {i.name for i in whole.get_inputs()}
    feeds = {k: v for k, v in random_inputs(graph).items() if k in names}
    sigs = list(ks)
    got = measure.measure_net([ks[s] for s in sigs], threads, settings(budget_s), companion=(whole, feeds))  # in every chunk
    timings = {**dict(zip(sigs, got.kernels, strict=True)), OVERHEAD: got.overhead}
    ctx = cache.context(threads)
    cache.store(ctx, timings)
    before = cache.MEASURED["count"]
    design = {"threads": threads, "execution_mode": "parallel" if parallel else "sequential"}
    predicted = float(get_template("ort-cpu").evaluate(design, wl).total_latency_s)
    assert cache.MEASURED["count"] == before, "the template measured kernels the benchmark did not"
    whole_t = measure.summarize(got.companion_s)
    return Row(name, predicted * 1e3, whole_t.median_s * 1e3, whole_t.spread_s * 1e3, int(np.sum(np.asarray(wl.kind) != FREE)),
               (predicted - whole_t.median_s) / whole_t.median_s, time.perf_counter() - t0)


def summary(rows: list[Row]) -> dict[str, float]:
    errs = np.array([abs(r.error) for r in rows])
    return {"mape": float(errs.mean()) if len(errs) else float("nan"),
            "within_10pct": float(np.mean(errs <= 0.10)) if len(errs) else float("nan")}


def main(argv: list[str] | None = None) -> int:
    from symbiote.backends.ortcpu import cache
    from symbiote.frontend import zoo

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parallel", action="store_true", help="parallel execution mode (default sequential)")
    ap.add_argument("--models", default=",".join(zoo.names()))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cache", action="store_true", help="use the user's kernel cache instead of a new, empty one")
    ap.add_argument("--budget", type=float, default=BUDGET_S, help="timed seconds per kernel and for the model")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.cache:
            os.environ[cache.ENV_DIR] = tmp
        rows = [compare(m.strip(), args.threads, args.parallel, args.budget) for m in args.models.split(",") if m.strip()]
    s = summary(rows)
    ctx = cache.context(args.threads)
    if args.json:
        json.dump({"threads": args.threads, "cpu": ctx.cpu, "onnxruntime": ctx.ort_version, "rows": [asdict(r) for r in rows],
                   "reduced": {k: v[1] for k, v in REDUCED.items()}, **s}, sys.stdout)
        print()
        return 0
    print(f"ort-cpu: predicted (sum of measured kernels) vs measured end to end; {ctx.cpu}, onnxruntime "
          f"{ctx.ort_version}, {args.threads} thread(s), {'parallel' if args.parallel else 'sequential'}")
    print(f"{'model':<14} {'kernels':>7} {'predicted_ms':>12} {'measured_ms':>11} {'+-':>7} {'error':>8} {'run_s':>6}")
    for r in rows:
        print(f"{r.model:<14} {r.kernels:>7} {r.predicted_ms:>12.4f} {r.measured_ms:>11.4f} {r.measured_spread_ms:>7.4f} "
              f"{r.error:>+8.1%} {r.seconds:>6.1f}")
    print(f"MAPE {s['mape']:.1%}; within +-10%: {s['within_10pct']:.0%} of {len(rows)} models")
    for k, (kw, why) in REDUCED.items():
        print(f"reduced: {k} {kw} ({why})")
    if not REDUCED:
        print("every zoo model at its full size")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
