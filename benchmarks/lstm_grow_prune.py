"""Grow-and-prune for recurrent models: a search's LSTM against the original, measured side by side.

Runs ``symbiote search MODEL --backend ort-cpu --constraint fidelity>=0.99`` (plus the
given search arguments) into a folder (or reads one already written: ``--search-dir``),
then measures the original model and the model the search wrote, whole-model onnxruntime
runs at the same thread count, optimized at the level the ``ort-cpu`` template uses,
interleaved (:func:`symbiote.backends.ortcpu.measure.interleaved`: warm-up, then rounds
taken in turn, so load from other processes lands on both alike), repeated ``--repeats``
times and reported as the median of the per-repeat medians (and the least and largest of
them). Printed: one row per model with its parameters (float weights of its
initializers), the measured latency, the search's predicted latency (the ``ort-cpu``
cost: sum of measured kernels), the fidelity and agreement measured by the search's exact
check (``result.json``), and the channel widths; then the speed-up. ``--widths W0,W1,...``
adds the original with its LSTM hidden sizes resized by hand (no fine-tuning) to the
same measurement, for reference. ``--json`` prints one object instead.

    python benchmarks/lstm_grow_prune.py [--model zoo:lstm] [--search-dir DIR]
        [--threads 1] [--repeats 5] [--json] [-- SEARCH ARGS...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CONSTRAINT = "fidelity>=0.99"


@dataclass(frozen=True)
class Side:
    """One model measured: its latency (median of the repeats' medians, their least and largest)."""

    name: str
    params: int
    latency_ms: float
    latency_min_ms: float
    latency_max_ms: float
    predicted_ms: float | None
    fidelity: float | None
    agreement: float | None
    widths: dict[str, int]


def float_params(model) -> int:
    """The number of float weights among a model's initializers."""
    from onnx import TensorProto

    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in floats))


def side_by_side(models: list, threads: int, repeats: int) -> list[tuple[float, float, float]]:
    """Per model, ``(median, least, largest)`` in ms of the medians of ``repeats`` interleaved
    measurements of whole-model runs (the same seeded inputs for every model)."""
    from symbiote.backends.ortcpu import measure

    sessions = [measure.session(m, threads) for m in models]
    feeds = measure.feeds_for(sessions[0])
    settings = measure.Settings(warmup=20, reps=600, min_reps=60, budget_s=1.5)
    meds = np.array([[measure.summarize(s).median_s for s in measure.interleaved([(x, feeds) for x in sessions], settings)]
                     for _ in range(repeats)]) * 1e3
    return [(float(np.median(meds[:, i])), float(meds[:, i].min()), float(meds[:, i].max())) for i in range(len(models))]


def run_search(model: str, out: Path, extra: list[str]) -> None:
    from symbiote.cli import main as cli

    rc = cli(["search", model, "--backend", "ort-cpu", "--constraint", CONSTRAINT, "-o", str(out), "-q", *extra])
    if rc:
        raise SystemExit(f"symbiote search exited with {rc}")


def resized(model: str, width: int):
    """``model`` with every free channel group named ``*.hidden`` at ``width`` (no fine-tuning)."""
    from symbiote.frontend import load
    from symbiote.frontend.save import to_onnx
    from symbiote.ir.channel_groups import analyze
    from symbiote.passes.resize import ResizeChannels

    g = load(model)
    names = [x.name for x in analyze(g).free if x.name.endswith(".hidden")]
    return to_onnx(ResizeChannels(widths={n: width for n in names})(g).graph), {n: width for n in names}


def compare(model: str, out: Path, threads: int, repeats: int, widths: list[int]) -> dict:
    import onnx

    from symbiote.frontend import load
    from symbiote.frontend.save import to_onnx
    from symbiote.ir.channel_groups import analyze

    result = json.loads((out / "result.json").read_text())
    (name, net), = result["best"]["networks"].items()
    written = onnx.load(str(out / f"{name}.onnx"))
    g0 = load(model)
    original = to_onnx(g0)
    w0 = {x.name: int(x.width) for x in analyze(g0).free}
    extra = [resized(model, w) for w in widths]
    lat = side_by_side([original, written, *(m for m, _ in extra)], threads, repeats)
    acc = net.get("accuracy") or {}
    sides = [Side("original", float_params(original), *lat[0], net["baseline"]["latency_s"] * 1e3, 1.0, 1.0, w0),
             Side("searched", float_params(written), *lat[1], net["metrics"]["latency_s"] * 1e3, acc.get("fidelity"),
                  acc.get("agreement"), {**w0, **net["model_knobs"]["widths"]})]
    sides += [Side(f"resized {w} (no fine-tuning)", float_params(m), *lat[2 + i], None, None, None, {**w0, **ws})
              for i, (w, (m, ws)) in enumerate(zip(widths, extra, strict=True))]
    return {"model": model, "threads": threads, "repeats": repeats, "search_dir": str(out),
            "hysteresis": result.get("hysteresis"), "finetune": result["settings"].get("finetune"),
            "model_knobs": result["settings"].get("model_knobs"), "feasible": result["feasible"],
            "rows": [asdict(s) for s in sides], "speedup": sides[0].latency_ms / sides[1].latency_ms}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="zoo:lstm")
    ap.add_argument("--search-dir", help="a search's output folder (default: run the search into a temporary one)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--widths", default="", help="also measure the original with its hidden sizes at these widths")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",") if w.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.search_dir) if args.search_dir else Path(tmp)
        if not args.search_dir:
            run_search(args.model, out, extra)
        r = compare(args.model, out, args.threads, args.repeats, widths)
    if args.json:
        json.dump(r, sys.stdout)
        print()
        return 0
    from symbiote.backends.ortcpu.cache import context

    ctx = context(args.threads)
    print(f"{args.model}: the original against the model `symbiote search --backend ort-cpu --constraint {CONSTRAINT}"
          f"{' ' + ' '.join(extra) if extra else ''}` wrote ({r['search_dir']}); whole-model onnxruntime {ctx.ort_version} "
          f"runs, {args.threads} thread(s), {ctx.cpu}, interleaved, median of {args.repeats} repeats' medians")
    fmt = lambda x, f: "n/a" if x is None else format(x, f)  # noqa: E731
    print(f"{'model':<30} {'params':>8} {'measured_ms':>11} {'[min, max]':>19} {'predicted_ms':>12} {'fidelity':>8} "
          f"{'agreement':>9}  widths")
    for s in r["rows"]:
        print(f"{s['name']:<30} {s['params']:>8} {s['latency_ms']:>11.4f} [{s['latency_min_ms']:.4f}, {s['latency_max_ms']:.4f}]"
              f" {fmt(s['predicted_ms'], '12.4f'):>12} {fmt(s['fidelity'], '.4f'):>8} {fmt(s['agreement'], '.4f'):>9}  "
              f"{','.join(f'{k}={v}' for k, v in s['widths'].items())}")
    a, b = r["rows"][0], r["rows"][1]
    print(f"searched vs original: {a['params'] / max(b['params'], 1):.2f}x fewer parameters, measured "
          f"{r['speedup']:.2f}x faster ({a['latency_ms']:.4f} -> {b['latency_ms']:.4f} ms); feasible: {r['feasible']}; "
          f"model knobs: {r['model_knobs']}; fine-tuning: {r['finetune']}")
    h = r["hysteresis"]
    if h:
        moved = [f"{m['group']} {m['requested']}->{m['width']} ({m['gain']:.1%})" for ms in h["networks"].values()
                 for m in ms if m["moved"]]
        print(f"hysteresis (tolerance {h['tolerance']:g}): {', '.join(moved) or 'no group moved'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
