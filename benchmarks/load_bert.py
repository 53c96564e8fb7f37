"""Load + lower a BERT-base-sized model vs a bare ``onnx.load`` of the same file.

Target (issue 2): symbiote.load + lowering <= 2x the time of ``onnx.load``.
Builds ``zoo:bert_base`` (12 layers, hidden 768, 12 heads, FFN 3072, seq 128: 109.5 M
params, ~438 MB) into a temporary file, then times the best of ``--repeat`` runs of

* ``onnx.load(path)``                         (protobuf parse incl. weights)
* ``symbiote.load(path)`` + ``ir.lower.lower`` (``ir.analysis.graph_stats`` if lower is absent)

and prints the ratio; ``--json`` prints one JSON object
``{"onnx_load_s", "symbiote_load_s", "ratio", ...}``. ``--profile`` prints the top
cumulative entries of cProfile for the symbiote side.

    python benchmarks/load_bert.py [--repeat 3] [--json] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import onnx

import symbiote
from symbiote.frontend import zoo


def _lowering():
    try:
        from symbiote.ir.lower import lower

        return "ir.lower.lower", lower
    except ImportError:
        from symbiote.ir.analysis import graph_stats

        return "ir.analysis.graph_stats", graph_stats


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        del out
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per side; the best is kept")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--profile", action="store_true", help="cProfile the symbiote side once")
    args = ap.parse_args(argv)

    lower_name, lower = _lowering()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bert_base.onnx"
        model = zoo.build("bert_base", seq_len=args.seq_len)
        n_params = sum(int(__import__("numpy").prod(t.dims)) for t in model.graph.initializer)
        onnx.save(model, str(path))
        del model
        size_bytes = path.stat().st_size

        def bare():
            return onnx.load(str(path))

        def ours():
            graph = symbiote.load(str(path))
            return lower(graph)

        ours()  # warm-up: imports, first-touch of the page cache
        bare()
        onnx_s = _best(bare, args.repeat)
        ours_s = _best(ours, args.repeat)
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(ours)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)

    ratio = ours_s / onnx_s
    result = {"onnx_load_s": round(onnx_s, 4), "symbiote_load_s": round(ours_s, 4), "ratio": round(ratio, 3),
              "params": n_params, "file_bytes": size_bytes, "lowering": lower_name, "target_ratio": 2.0}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"BERT-base ({n_params / 1e6:.1f} M params, {size_bytes / 1e6:.0f} MB)")
        print(f"  onnx.load               {onnx_s:8.3f} s")
        print(f"  symbiote.load + {lower_name.split('.')[-1]:<8}{ours_s:8.3f} s")
        print(f"  ratio {ratio:.2f}x (target <= 2x): {'OK' if ratio <= 2.0 else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
