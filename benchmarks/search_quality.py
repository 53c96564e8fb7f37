"""How good is the search? Prints, side by side, from one run:

(a) exhaustive: on a systolic space small enough to enumerate (>= 200,000 legal designs,
    zoo:resnet50, area_mm2<=4), the brute-force optimum EDP vs what ``symbiote``'s search
    reaches, and after how many seconds (wall clock, jit compilation included) it is within
    1% of the optimum;
(b) baselines: at equal evaluation budgets (default 1,000 and 10,000), the median over
    seeds of the best EDP found by symbiote, random search, optuna's TPE sampler and
    nevergrad's NGOpt, on the same cost function (systolic knobs plus channel-width knobs
    of zoo:resnet18; constraint violations make a design count as infinitely bad for the
    baselines, which see the constraint through a penalty);
(c) joint vs hardware-only: EDP of the best design found by a joint model+hardware search
    (channels+precision) over a hardware-only search, both at fidelity>=0.99, measured in
    onnxruntime on the evaluation samples (64 seeded random inputs apart from the
    calibration ones) as the least per-output cosine, with the top-1 agreement and their
    95% intervals beside it, on resnet50 and mobilenet_v2. Both runs check the model at
    the datapath's precision (int8: the hardware-only run's model is quantized too).

``--json`` prints one object: {"exhaustive_gap", "seconds_to_1pct", "ratio_vs_random",
"ratio_vs_optuna", "ratio_vs_nevergrad", "joint_vs_hw_only": {"resnet50", "mobilenet_v2"}}
(ratios: the baseline's EDP over symbiote's, bigger is better; measured at the largest budget).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

A_GRID = {
    "rows": [8, 12, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256],
    "cols": [8, 12, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256],
    "dataflow": ["os", "ws", "is"],
    "ifmap_sram_kb": [16, 32, 64, 128, 256, 512, 1024, 2048],
    "filter_sram_kb": [16, 32, 64, 128, 256, 512, 1024, 2048],
    "ofmap_sram_kb": [16, 32, 64, 128, 256, 512, 1024, 2048],
    "vector_width": [16, 32, 64, 128],
}
FIXED = {"dram_gbps": 25.6, "clock_ghz": 1.0}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def problem(models, model_knobs, constraints, grids=None, fixed=FIXED):
    from symbiote.search import api
    from symbiote.search.objectives import parse_constraints, parse_objectives

    cfg = api.RunConfig(models=tuple(models), objectives=parse_objectives(["edp"]),
                        constraints=parse_constraints(constraints), model_knobs=model_knobs,
                        hw_fixed=fixed, hw_grids=grids)
    return cfg, api.build(cfg)


# ------------------------------------------------------------------ (a)
def part_a(seconds: float, seed: int) -> dict:
    from symbiote.search.driver import Search, SearchSettings
    from symbiote.search.problem import evaluator_for

    _, cd = problem(["zoo:resnet50"], "none", ["area_mm2<=4"], A_GRID, fixed=FIXED)
    sp = cd.space
    n = int(sp.n_points())
    t0 = time.perf_counter()
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sp.sizes], indexing="ij"), -1).reshape(-1, sp.dim)
    obj, viol = evaluator_for(cd.problem)(grid.astype(np.int32))
    o = np.where(viol <= 0, obj[:, 0], np.inf)
    opt = float(np.exp(o.min()))
    legal = int(np.isfinite(o).sum())
    t_enum = time.perf_counter() - t0
    log(f"(a) enumerated {n} designs ({legal} meet area_mm2<=4) in {t_enum:.1f} s; optimum EDP {opt:.6g}")
    # the search, in a fresh evaluator (its compilation is part of the measured time)
    _, cd2 = problem(["zoo:resnet50"], "none", ["area_mm2<=4"], A_GRID, fixed=FIXED)
    t0 = time.perf_counter()
    r = Search(cd2.problem, SearchSettings(seed=seed, budget_seconds=seconds)).run()
    wall = time.perf_counter() - t0
    best = float(np.exp(r.best_obj[0]))
    to_1pct = next((s for e, s, b in r.history if b <= opt * 1.01), None)
    log(f"(a) search: EDP {best:.6g} (gap {best / opt - 1:+.3%}) after {r.evals} evaluations in {wall:.1f} s; "
        f"within 1% after {to_1pct if to_1pct is None else round(to_1pct, 2)} s")
    return {"designs": n, "legal": legal, "optimum": opt, "search_best": best, "gap": best / opt - 1,
            "seconds_to_1pct": to_1pct, "search_seconds": wall, "enumeration_seconds": t_enum}


# ------------------------------------------------------------------ (b)
def _penalized(ev, idx):
    obj, viol = ev(idx)
    return np.where(viol <= 0, np.exp(obj[:, 0]), np.inf), obj[:, 0] + 10.0 * viol


def run_symbiote(cd, budget, seed):
    from symbiote.search.driver import Search, SearchSettings

    r = Search(cd.problem, SearchSettings(seed=seed, budget_evals=budget)).run()
    return float(np.exp(r.best_obj[0])) if r.feasible else float("inf")


def run_random(cd, budget, seed):
    import jax

    from symbiote.search.problem import evaluator_for

    idx = cd.space.sample(jax.random.PRNGKey(seed), budget)
    vals, _ = _penalized(evaluator_for(cd.problem), idx)
    return float(vals.min())


def run_optuna(cd, budget, seed, batch=16):
    import optuna

    from symbiote.search.problem import evaluator_for

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ev = evaluator_for(cd.problem)
    sp = cd.space
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    best = float("inf")
    done = 0
    while done < budget:
        k = min(batch, budget - done)
        trials = [study.ask() for _ in range(k)]
        idx = np.array([[t.suggest_int(f"g{j}", 0, int(s) - 1) for j, s in enumerate(sp.sizes)] for t in trials], np.int32)
        vals, pen = _penalized(ev, idx)
        for t, p in zip(trials, pen):
            study.tell(t, float(p) if np.isfinite(p) else 1e9)
        best = min(best, float(vals.min()))
        done += k
    return best


def run_nevergrad(cd, budget, seed, batch=16):
    import nevergrad as ng

    from symbiote.search.problem import evaluator_for

    ev = evaluator_for(cd.problem)
    sp = cd.space
    # an integer box (rounded): NGOpt's choice for discrete Choice/TransitionChoice
    # parametrizations is ~100x slower per ask on this machine
    size = sp.sizes.astype(float)
    param = ng.p.Array(shape=(sp.dim,), lower=np.zeros(sp.dim), upper=size - 1e-6).set_integer_casting()
    param.random_state = np.random.RandomState(seed)
    opt = ng.optimizers.NGOpt(parametrization=param, budget=budget, num_workers=batch)
    best = float("inf")
    done = 0
    while done < budget:
        k = min(batch, budget - done)
        cands = [opt.ask() for _ in range(k)]
        idx = np.clip(np.array([c.value for c in cands]).astype(np.int32), 0, sp.sizes - 1)
        vals, pen = _penalized(ev, idx)
        for c, p in zip(cands, pen):
            opt.tell(c, float(p) if np.isfinite(p) else 1e9)
        best = min(best, float(vals.min()))
        done += k
    return best


def _b_problem():
    return problem(["zoo:resnet18"], "channels", ["area_mm2<=4"], fixed={**FIXED, "vector_width": 64})[1]


_METHODS = {"symbiote": run_symbiote, "random": run_random, "optuna": run_optuna, "nevergrad": run_nevergrad}
_CD = None  # the (b) problem, built once per process


def _init_worker():
    global _CD
    _CD = _b_problem()


def _run_job(job):
    method, budget, seed = job
    t0 = time.perf_counter()
    best = _METHODS[method](_CD, budget, seed)
    return job, best, time.perf_counter() - t0


def _job_cost(job):
    """Rough relative cost, to start the longest jobs first. TPE's per-trial work grows with its
    history: a 10k-trial run took ~54x a 1k one here (1,190 s vs 22 s per seed)."""
    method, budget, _ = job
    return budget * budget if method == "optuna" else budget


def part_b(budgets, seeds, methods, optuna_seeds_large: int, workers: int = 1) -> dict:
    """Each (method, budget, seed) is an independent job, so ``workers`` > 1 runs them in a pool of
    processes (each builds the problem once); a seed's result does not depend on ``workers``."""
    unknown = sorted(set(methods) - set(_METHODS))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {sorted(_METHODS)}")
    _init_worker()   # this process runs the jobs when workers <= 1
    log(f"(b) space: {_CD.space.dim} knobs, {_CD.space.n_points():.3g} designs")
    n_seeds = {(m, b): min(seeds, optuna_seeds_large) if (m == "optuna" and b > 1000) else seeds
               for b in budgets for m in methods}
    jobs = sorted(((m, b, s) for (m, b), n in n_seeds.items() for s in range(n)), key=_job_cost, reverse=True)
    found: dict = {}

    def record(job, best, secs):
        found[job] = (best, secs)
        log(f"(b) budget {job[1]:>6}  {job[0]:<10} seed {job[2]}: best EDP {best:.6g} ({secs:.0f} s)")

    t0 = time.perf_counter()
    if workers <= 1:
        for job in jobs:
            record(*_run_job(job))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker) as ex:
            for fut in as_completed([ex.submit(_run_job, j) for j in jobs]):
                record(*fut.result())
    log(f"(b) {len(jobs)} runs on {max(workers, 1)} worker(s) in {time.perf_counter() - t0:.0f} s")
    out: dict = {}
    for b in budgets:
        out[b] = {}
        for m in methods:
            vals = [found[(m, b, s)][0] for s in range(n_seeds[(m, b)])]
            out[b][m] = {"median": statistics.median(vals), "values": vals,
                         "seconds": sum(found[(m, b, s)][1] for s in range(n_seeds[(m, b)]))}
            log(f"(b) budget {b:>6}  {m:<10} median best EDP {out[b][m]['median']:.6g} over {len(vals)} seeds "
                f"({out[b][m]['seconds']:.0f} s summed over seeds)")
    return out


# ------------------------------------------------------------------ (c)
def part_c(models, budget, seed) -> dict:
    from symbiote.search import api
    from symbiote.search.driver import SearchSettings
    from symbiote.search.objectives import parse_constraints, parse_objectives

    out = {}
    for m in models:
        res = {}
        for knobs in ("none", "channels+precision"):
            cfg = api.RunConfig(models=(f"zoo:{m}",), objectives=parse_objectives(["edp"]),
                                constraints=parse_constraints(["area_mm2<=4", "fidelity>=0.99"]), model_knobs=knobs,
                                settings=SearchSettings(seed=seed, budget_evals=budget))
            t0 = time.perf_counter()
            o = api.run(cfg)
            n = o.networks[0]
            acc = n.accuracy
            iv = acc.get("interval") or {}
            res[knobs] = {"edp": n.metrics["edp"], "fidelity": acc["fidelity"], "fidelity_interval": iv.get("fidelity"),
                          "agreement": acc.get("agreement"), "agreement_interval": iv.get("agreement"),
                          "proxy_fidelity": acc.get("proxy_fidelity"), "samples": acc.get("samples"),
                          "feasible": o.feasible, "answer_note": o.answer_note, "model_knobs": n.model_knobs,
                          "seconds": time.perf_counter() - t0}
            log(f"(c) {m:<13} {knobs:<19} EDP {n.metrics['edp']:.6g}  fidelity {acc['fidelity']:.5f} "
                f"{iv.get('fidelity')}  agreement {acc.get('agreement')} {iv.get('agreement')} "
                f"(onnxruntime, {acc.get('samples')} evaluation samples)  proxy {acc.get('proxy_fidelity')}  "
                f"feasible {o.feasible}{'  note: ' + o.answer_note if o.answer_note else ''}")
        out[m] = {**res, "ratio": res["none"]["edp"] / res["channels+precision"]["edp"]}
        log(f"(c) {m:<13} joint vs hardware-only: {out[m]['ratio']:.2f}x")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", default="1000,10000")
    ap.add_argument("--methods", default="symbiote,random,optuna,nevergrad")
    ap.add_argument("--a-seconds", type=float, default=10.0)
    ap.add_argument("--optuna-seeds-large", type=int, default=10,
                    help="seeds for optuna above 1,000 evaluations (TPE's work per trial grows with the history: "
                         "one 10k-trial run took 18-22 min on this 2-core machine, two side by side)")
    ap.add_argument("--workers", type=int, default=1,
                    help="processes running the (b) seeds side by side (results do not depend on it)")
    ap.add_argument("--c-budget", type=int, default=30000)
    ap.add_argument("--parts", default="a,b,c")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    res: dict = {}
    if "a" in parts:
        res["a"] = part_a(args.a_seconds, 0)
    if "b" in parts:
        res["b"] = part_b([int(x) for x in args.budgets.split(",")], args.seeds, args.methods.split(","),
                          args.optuna_seeds_large, args.workers)
    if "c" in parts:
        res["c"] = part_c(["resnet50", "mobilenet_v2"], args.c_budget, 0)
    summary: dict = {}
    if "a" in res:
        summary["exhaustive_gap"] = res["a"]["gap"]
        summary["seconds_to_1pct"] = res["a"]["seconds_to_1pct"]
    if "b" in res:
        top = res["b"][max(res["b"])]
        s = top.get("symbiote", {}).get("median")
        for m in ("random", "optuna", "nevergrad"):
            if m in top and s:
                summary[f"ratio_vs_{m}"] = top[m]["median"] / s
        summary["by_budget"] = {str(b): {m: v["median"] for m, v in d.items()} for b, d in res["b"].items()}
    if "c" in res:
        summary["joint_vs_hw_only"] = {m: v["ratio"] for m, v in res["c"].items()}
    if args.json:
        print(json.dumps(summary))
    else:
        print()
        if "a" in res:
            a = res["a"]
            print(f"(a) exhaustive optimum EDP {a['optimum']:.6g} over {a['designs']} designs; search reaches "
                  f"{a['search_best']:.6g} (gap {a['gap']:+.3%}), within 1% after {a['seconds_to_1pct']} s")
        if "b" in res:
            print(f"(b) median best EDP over {args.seeds} seeds")
            ms = list(next(iter(res['b'].values())))
            print("    budget  " + "".join(f"{m:>14}" for m in ms))
            for b, d in res["b"].items():
                print(f"    {b:>6}  " + "".join(f"{d[m]['median']:>14.6g}" for m in ms))
            for k in ("ratio_vs_random", "ratio_vs_optuna", "ratio_vs_nevergrad"):
                if k in summary:
                    print(f"    {k}: {summary[k]:.3f}x")
        if "c" in res:
            for m, v in res["c"].items():
                j, h = v['channels+precision'], v['none']
                print(f"(c) {m}: hardware-only EDP {h['edp']:.6g} (fidelity {h['fidelity']:.4f}, agreement "
                      f"{h['agreement']}, feasible {h['feasible']}), joint {j['edp']:.6g}: {v['ratio']:.2f}x "
                      f"(fidelity {j['fidelity']:.4f} {j['fidelity_interval']}, agreement {j['agreement']} "
                      f"{j['agreement_interval']}, feasible {j['feasible']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
