"""Time the pipeline fold-bn, prune(0.3), resize-channels(multiple=16) on zoo:resnet50.

Goal (issue 3): under 2 s on one CPU core of the project machine. Loading the model is
timed separately and not counted. Prints a line per figure, or one JSON object (--json).

    python benchmarks/passes_resnet50.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

GOAL_S = 2.0
PIPELINE = "fold-bn,prune(ratio=0.3),resize-channels(multiple=16)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from symbiote.frontend import load
    from symbiote.ir.analysis import graph_stats
    from symbiote.passes import parse_pipeline

    t0 = time.perf_counter()
    graph = load("zoo:resnet50")
    load_s = time.perf_counter() - t0
    pipeline = parse_pipeline(PIPELINE)
    times, steps = [], {}
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        res = pipeline(graph)
        times.append(time.perf_counter() - t0)
        steps = {s["pass"]: s["seconds"] for s in res.info["steps"]}
    best = min(times)
    s0, s1 = graph_stats(graph), graph_stats(res.graph)
    out = {
        "pipeline": PIPELINE,
        "model": "zoo:resnet50",
        "load_s": round(load_s, 4),
        "pipeline_s_best": round(best, 4),
        "pipeline_s_all": [round(t, 4) for t in times],
        "per_pass_s": steps,
        "goal_s": GOAL_S,
        "goal_ratio": round(best / GOAL_S, 4),
        "macs_ratio": round(s1.macs / s0.macs, 4),
        "params_ratio": round(s1.params / s0.params, 4),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{PIPELINE} on zoo:resnet50: {best:.3f} s (best of {len(times)}; goal {GOAL_S} s, ratio {best / GOAL_S:.2f})")
        for k, v in steps.items():
            print(f"  {k:<32} {v:.3f} s")
        print(f"load {load_s:.3f} s (not counted); MACs x{out['macs_ratio']}, params x{out['params_ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
