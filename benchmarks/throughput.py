"""Throughput of the systolic cost model on zoo:resnet50.

Prints full-network designs evaluated per second with ``jit(vmap(cost))`` (totals: latency,
energy, EDP per design) as the search evaluates them (the technology knobs it holds by
default, ``search.api.HELD_BY_DEFAULT``, fixed: with the datapath format fixed, every
precision-dependent term of a layer is computed once, not per design) and with every knob
varying (``designs_per_s_all_knobs_free``), gradient evaluations per second of the relaxed model with
``jit(vmap(grad))`` (fixed dataflow, the gradient phase's use; ``grads_mixed_per_s`` with
dataflow logits mixing the three dataflows), and the time of one eager (un-jitted) Python
evaluation, for the ratio. ``--json`` prints one JSON object with ``designs_per_s``,
``grads_per_s``, ``grads_mixed_per_s``, ``eager_s``.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp


def _rate(fn, args, n_items: int, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile
    t0 = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return n_items * repeats / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="zoo:resnet50")
    ap.add_argument("--backend", default="systolic")
    ap.add_argument("--batch", type=int, default=8192, help="designs per vmapped call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from symbiote.backends.manager import registry
    from symbiote.frontend import load
    from symbiote.ir.lower import lower

    t = registry().get(args.backend)
    wl = lower(load(args.model))
    D = args.batch
    hws = t.space.sample(jax.random.key(0), D)

    def totals(h, w):
        m = t.cost(h, w)
        return m.total_latency_s, m.total_energy_pj, m.edp

    # as the search evaluates designs: the technology knobs it holds unless freed
    # (search.api.HELD_BY_DEFAULT: DRAM bandwidth, clock, datapath format, node, DRAM kind) fixed, the rest
    # varying per design; and with every knob varying (--free-knob for each held one)
    from symbiote.search.api import HELD_BY_DEFAULT

    held = [k for k in HELD_BY_DEFAULT if k in t.space]
    fixed = {k: jnp.float32(t.space[k].encode(t.space[k].default)) for k in held}

    def held_totals(h, w):
        return totals({**h, **fixed}, w)

    searched = {k: v for k, v in hws.items() if k not in held}
    designs_per_s = _rate(jax.jit(jax.vmap(held_totals, ({k: 0 for k in searched}, None))), (searched, wl), D,
                          args.repeats)
    designs_all_free = _rate(jax.jit(jax.vmap(totals, (0, None))), (hws, wl), D, args.repeats)

    def objective(h, w):
        return jnp.log(t.relaxed_cost(h, w).edp)

    grad_fn = jax.jit(jax.vmap(jax.grad(objective), (0, None)))
    grads_per_s = _rate(grad_fn, (hws, wl), D, args.repeats)
    cat = [k.name for k in t.space.knobs if k.kind == "categorical"]
    mixed = dict(hws)
    for name in cat:
        mixed[name] = jnp.zeros((D, len(t.space[name].choices)))
    grads_mixed_per_s = _rate(grad_fn, (mixed, wl), D, max(1, args.repeats // 2)) if cat else grads_per_s

    hw0 = t.space.encode(t.space.default())
    with jax.disable_jit():
        t.cost(hw0, wl)
        t0 = time.perf_counter()
        jax.block_until_ready(t.cost(hw0, wl).edp)
        eager_s = time.perf_counter() - t0

    out = {"model": args.model, "backend": args.backend, "layers": len(wl), "batch": D,
           "designs_per_s": round(designs_per_s), "designs_per_s_all_knobs_free": round(designs_all_free),
           "held": held, "grads_per_s": round(grads_per_s),
           "grads_mixed_per_s": round(grads_mixed_per_s), "eager_s": eager_s,
           "speedup_vs_eager": round(designs_per_s * eager_s), "devices": str(jax.devices())}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{args.model} on {args.backend}: {len(wl)} layers, batches of {D} designs, {jax.devices()}")
    print(f"  {'full-network designs/s (jit+vmap)':<44} {designs_per_s:>14,.0f}   (target >= 200,000; "
          f"{', '.join(held)} held, as the search holds them)")
    print(f"  {'  ... with every knob varying':<44} {designs_all_free:>14,.0f}   (a searched datapath makes "
          "every precision-dependent term per design)")
    print(f"  {'relaxed-model gradients/s (jit+vmap+grad)':<44} {grads_per_s:>14,.0f}   (target >= 20,000)")
    print(f"  {'  ... with dataflow logits (3 dataflows)':<44} {grads_mixed_per_s:>14,.0f}")
    print(f"  {'one eager Python evaluation':<44} {eager_s * 1e3:>12.1f} ms")
    print(f"  {'jit+vmap speedup over eager':<44} {designs_per_s * eager_s:>14,.0f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
