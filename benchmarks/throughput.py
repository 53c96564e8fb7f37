"""Throughput of a template's cost model (default: systolic) on zoo:resnet50.

Prints full-network designs evaluated per second with ``jit(vmap(cost))`` (totals: latency,
energy, EDP per design) as the search evaluates them (the technology knobs it holds by
default, ``search.api.HELD_BY_DEFAULT``, fixed: with the datapath format fixed, every
precision-dependent term of a layer is computed once, not per design) and with every knob
varying (``designs_per_s_all_knobs_free``), gradient evaluations per second of the relaxed model with
``jit(vmap(grad))`` over ``--grad-batch`` designs (fixed dataflow, the gradient phase's use;
``grads_mixed_per_s`` with every categorical knob as logits, e.g. the dataflows mixed), and
the time of one eager (un-jitted) Python
evaluation, for the ratio. A template whose mapping breakdown counts its candidate mappings
(``spatial``: ``candidates``) has that count printed: every MAC layer of every design is
mapped among that many candidates within the figure. ``--json`` prints one JSON object with
``designs_per_s``, ``grads_per_s``, ``grads_mixed_per_s``, ``eager_s``,
``candidates_per_layer`` (null when the template does not report it).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp


#: the issue targets of each template's full-network designs/s (systolic: the throughput issue;
#: spatial: issue 15, with >= 64 candidate mappings per MAC layer)
TARGETS = {"systolic": "target >= 200,000", "spatial": "target >= 5,000 with >= 64 candidate mappings per layer"}
GRAD_TARGETS = {"systolic": "target >= 20,000"}


def _candidates_per_layer(t, wl) -> int | None:
    """The candidate mappings per MAC layer a template's breakdown reports (``candidates``)."""
    if t.mappings is None:
        return None
    n = t.mappings(t.space.encode(t.space.default()), wl).get("candidates")
    return None if n is None else int(n)


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
    ap.add_argument("--grad-batch", type=int, default=None,
                    help="designs per vmapped gradient call (default: --batch; the spatial template's reverse pass "
                         "holds every candidate of every layer: 512 fits in a few GB)")
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
    GD = min(args.grad_batch or D, D)
    ghws = {k: v[:GD] for k, v in hws.items()}
    grads_per_s = _rate(grad_fn, (ghws, wl), GD, args.repeats)
    cat = [k.name for k in t.space.knobs if k.kind == "categorical"]
    mixed = dict(ghws)
    for name in cat:
        mixed[name] = jnp.zeros((GD, len(t.space[name].choices)))
    grads_mixed_per_s = _rate(grad_fn, (mixed, wl), GD, max(1, args.repeats // 2)) if cat else grads_per_s

    hw0 = t.space.encode(t.space.default())
    with jax.disable_jit():
        t.cost(hw0, wl)
        t0 = time.perf_counter()
        jax.block_until_ready(t.cost(hw0, wl).edp)
        eager_s = time.perf_counter() - t0

    candidates = _candidates_per_layer(t, wl)
    out = {"model": args.model, "backend": args.backend, "layers": len(wl), "batch": D, "grad_batch": GD,
           "candidates_per_layer": candidates,
           "designs_per_s": round(designs_per_s), "designs_per_s_all_knobs_free": round(designs_all_free),
           "held": held, "grads_per_s": round(grads_per_s),
           "grads_mixed_per_s": round(grads_mixed_per_s), "eager_s": eager_s,
           "speedup_vs_eager": round(designs_per_s * eager_s), "devices": str(jax.devices())}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{args.model} on {args.backend}: {len(wl)} layers, batches of {D} designs, {jax.devices()}")
    if candidates is not None:
        print(f"  {'candidate mappings per MAC layer':<44} {candidates:>14,}")
    target = TARGETS.get(args.backend, "no target")
    print(f"  {'full-network designs/s (jit+vmap)':<44} {designs_per_s:>14,.0f}   ({target}; "
          f"{', '.join(held)} held, as the search holds them)")
    print(f"  {'  ... with every knob varying':<44} {designs_all_free:>14,.0f}   (a searched datapath makes "
          "every precision-dependent term per design)")
    print(f"  {'relaxed-model gradients/s (jit+vmap+grad)':<44} {grads_per_s:>14,.0f}   "
          f"({GRAD_TARGETS.get(args.backend, 'no target')}; batches of {GD})")
    print(f"  {'  ... with categorical knobs as logits':<44} {grads_mixed_per_s:>14,.0f}")
    print(f"  {'one eager Python evaluation':<44} {eager_s * 1e3:>12.1f} ms")
    print(f"  {'jit+vmap speedup over eager':<44} {designs_per_s * eager_s:>14,.0f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
