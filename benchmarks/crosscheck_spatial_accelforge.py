"""Check that AccelForge accepts and evaluates the architecture, workload and mapping YAML that
``backends/spatial/interop_accelforge.py`` writes.

For each design (ZigZag accelerator files in ``tests/backends/data/``: ZigZag's shipped
``eyeriss_like`` and ``tpu_like`` and the three-axis ``test_3d`` written for the interop tests),
the script reads the file (``from_zigzag``), writes it as an AccelForge architecture
(``to_accelforge``), writes one GEMM (BERT-base's FFN-up, 128 x 768 x 3072, 8-bit operands) as
an AccelForge workload and a hand-written loop nest of that GEMM on the design
(:data:`NESTS`) as an AccelForge mapping (``mapping_to_accelforge_yaml``), has AccelForge 1.0
(its own venv, as ``benchmarks/crosscheck_accelforge.py`` runs it) evaluate the mapping, and
compares what AccelForge counts with the loop nest's own reuse arithmetic done here by hand:

* MACs = M*K*N;
* DRAM reads of the weights: the weight tensor once (every nest below keeps each weight on
  chip for all the rows that use it: the loops above its on-chip memories all index n);
* AccelForge's energy per component = its action counts x the per-action energies in the file
  (the written energies are the ones AccelForge uses; to 1e-6, AccelForge sums in float32);
* the arch read back (``from_accelforge``) has the same memories, operands, sizes, served
  axes, energies and array as the ZigZag file.

With ``--spatial`` it also writes the ``spatial`` template's own choice: for each design of
:data:`SPATIAL_DESIGNS`, ``model.breakdown`` picks the GEMM's mapping, ``interop_design.
from_design`` / ``loop_nest`` write the design and that mapping, AccelForge evaluates them, and
the script prints, per access count of ``backends/spatial/reuse.py`` that AccelForge also
counts, both figures, their ratio (elements: AccelForge's actions x bits per action / bits per
value) and that ratio over the model's padding (the template counts a partial last tile whole,
AccelForge as partial: :func:`padding`); ``equal_up_to_padding`` per design. A preview for the
template's cross-check, not a target of this script (``all_ok`` asks only that AccelForge
accepts the files and counts the MACs).

With ``--zigzag`` it also has AccelForge evaluate the mappings ZigZag chose (the GEMM rows
of ``tests/backends/data/zigzag_spatial_crosscheck.json``, on ZigZag's own designs read by
``from_zigzag``: ``interop_zigzag.loop_nest_from_zigzag``), 8-bit inputs and weights, 16-bit
outputs (ZigZag's partial sums; its final outputs leave at 8 bits, so its top-level output
traffic is half of AccelForge's here), and prints both tools' energy per memory and in all.
Where ZigZag's per-operand hierarchies have no single AccelForge nest the row says why.

Usage::

    python benchmarks/crosscheck_spatial_accelforge.py --python /path/to/af-venv/bin/python [--spatial] [--json]

(``ACCELFORGE_PYTHON`` instead of ``--python``; AccelForge's venv: see crosscheck_accelforge.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
DATA = ROOT / "tests" / "backends" / "data"
GEMM = (128, 768, 3072)   # m, k, n: BERT-base FFN-up (crosscheck_accelforge.GEMMS)
DESIGNS = ("eyeriss_like", "tpu_like", "test_3d")


def nests():
    """A weight- or output-stationary loop nest of the GEMM per design, every tile within its
    memory (see the comments)."""
    from symbiote.backends.spatial.interop_accelforge import Loop as L
    from symbiote.backends.spatial.interop_accelforge import LoopNest

    ext = (("m", GEMM[0]), ("k", GEMM[1]), ("n", GEMM[2]))
    return {
        # 14 x 12: n on D1 (12 of 14 used), k on D2; the inputs whole in sram_1M; per PE 64
        # weights (64 B RF) and 8 partial sums, 8 inputs
        "eyeriss_like": LoopNest("Gemm", ext, (
            ("dram", (L("n", 16),)), ("sram_1M", (L("n", 16),)), ("sram_64KB", ()),
            ("sram_8KB", (L("m", 16), L("n", 12, "D1"), L("k", 12, "D2"))),
            ("rf_16B", ()), ("rf_64B_W", (L("k", 64),)), ("rf_64B_A", (L("m", 8),)))),
        # 32 x 32 weight-stationary (ZigZag's tpu_like mapping: K on D1, C on D2): one weight
        # per PE reused over all 128 rows, one partial sum per PE
        "tpu_like": LoopNest("Gemm", ext, (
            ("dram", (L("n", 96),)), ("sram_2MB", (L("k", 24), L("n", 32, "D1"), L("k", 32, "D2"))),
            ("rf_128B", (L("m", 128),)), ("rf_2B", ()))),
        # 8 x 4 x 2: n on D1 and k on D2 under the glb, m on D3 under lb_o (shared along D3)
        "test_3d": LoopNest("Gemm", ext, (
            ("dram", (L("n", 384),)), ("glb", (L("k", 192), L("n", 8, "D1"), L("k", 4, "D2"))),
            ("lb_o", (L("m", 2, "D3"),)), ("rf_w", (L("m", 64),)), ("rf_io", ()))),
    }


#: spatial-template designs whose chosen mapping of the GEMM AccelForge evaluates (``--spatial``)
SPATIAL_DESIGNS = ({}, {"glb_split": "shared", "dataflow": "ws", "array_x": 32, "array_y": 32},
                   {"dataflow": "rs", "rf_psum_bytes": 128})
#: (reuse.Accesses / breakdown count, AccelForge component.tensor.action, the template operand)
SPATIAL_COUNTS = (("macs", "MAC.None.compute", None), ("deliveries_w", "rf_weight.W.write", "W"),
                  ("deliveries_i", "rf_input.I.write", "I"), ("glb_reads_w", "{glb_w}.W.read", "W"),
                  ("glb_reads_i", "{glb_i}.I.read", "I"), ("dram_w", "dram.W.read", "W"),
                  ("dram_i", "dram.I.read", "I"), ("dram_o_writes", "dram.O.write", "O"))


def spatial_jobs() -> tuple[list[dict], list[dict]]:
    """AccelForge jobs for the template's chosen mapping of the GEMM on each of
    :data:`SPATIAL_DESIGNS`, and symbiote's side (the breakdown row, the architecture)."""
    import numpy as np

    from crosscheck_accelforge import gemm_model
    from symbiote.backends.spatial import interop_accelforge as iaf
    from symbiote.backends.spatial import interop_design as idz
    from symbiote.backends.spatial import model
    from symbiote.backends.spatial.space import SPACE
    from symbiote.frontend import load
    from symbiote.ir.lower import lower

    wl = lower(load(gemm_model(*GEMM)))
    jobs, sides = [], []
    for i, knobs in enumerate(SPATIAL_DESIGNS):
        d = SPACE.validate(knobs)
        bd = model.breakdown(SPACE.encode(d), wl)
        j = int(np.flatnonzero(np.asarray(bd["is_mac"]) > 0)[0])
        row = {k: (v[j] if isinstance(v, (list, np.ndarray)) else v) for k, v in bd.items()}
        arch = idz.from_design(d, name=f"spatial{i}")
        nest = idz.loop_nest(d, row, {"P": GEMM[0], "C": GEMM[1], "K": GEMM[2]})
        key = f"spatial{i}"
        jobs.append({"key": key, "arch": iaf.accelforge_arch_yaml(arch, d["clock_ghz"]),
                     "workload": iaf.gemm_workload_yaml(*GEMM), "mapping": iaf.mapping_to_accelforge_yaml(arch, nest)})
        sides.append({"key": key, "design": knobs, "row": row, "arch": arch})
    return jobs, sides


def accelforge_elements(arch, res: dict, bits: dict[str, float]) -> dict[str, float]:
    """AccelForge's counts of :data:`SPATIAL_COUNTS` in elements: a memory's actions times its
    access width over the operand's bits (``bits``: W, I, O); MACs as they are."""
    from symbiote.backends.spatial.interop_arch import memory

    shared = any(m.name == "glb" for m in arch.memories)
    names = {"glb_w": "glb" if shared else "glb_weight", "glb_i": "glb" if shared else "glb_input"}
    out = {}
    for ours, theirs, op in SPATIAL_COUNTS:
        key = theirs.format(**names)
        actions = res["actions"].get(key, 0.0)
        if op is None:
            out[ours] = actions
        else:
            comp, _, act = key.split(".")
            m = memory(arch, comp)
            out[ours] = actions * (m.read_bw_bits if act == "read" else m.write_bw_bits) / bits[op]
    return out


def spatial_compare(side: dict, res: dict) -> dict:
    row = side["row"]
    elems = accelforge_elements(side["arch"], res, {"W": 8.0, "I": 8.0, "O": 8.0})   # 8-bit values
    counts = {}
    for ours, _, op in SPATIAL_COUNTS:
        af = elems[ours]
        ratio = af / float(row[ours]) if float(row[ours]) else None
        pad = padding(row, op)
        counts[ours] = {"symbiote": float(row[ours]), "accelforge": af, "ratio": ratio, "padding": pad,
                        "ratio_unpadded": None if ratio is None else ratio / pad}
    return {"design": side["design"], "loop_nest": row.get("loop_nest"), "counts": counts,
            "equal_up_to_padding": all(c["ratio_unpadded"] is not None and abs(c["ratio_unpadded"] - 1.0) < 1e-6
                                       for c in counts.values())}


def padding(row: dict, op: str | None) -> float:
    """AccelForge counts a partial last tile as partial, the template's model counts it whole
    (its factors' product may exceed a dim: ``backends/spatial/mapping.py``): over the GEMM dims
    an operand's tiles span, the ratio of the extent to the padded extent."""
    if op is None:
        return 1.0
    extent = {"P": GEMM[0], "C": GEMM[1], "K": GEMM[2]}
    spans = {"W": ("C", "K"), "I": ("P", "C"), "O": ("P", "K")}[op]
    out = 1.0
    for d in spans:
        padded = 1
        for lvl in ("dram", "glb", "sp", "rf"):
            padded *= int(round(float(row[f"{lvl}_{d}"])))
        out *= extent[d] / padded
    return out


def zigzag_jobs() -> tuple[list[dict], list[dict]]:
    """AccelForge jobs for ZigZag's recorded GEMM mappings, and the rows they stand for (with
    ``why`` where no single AccelForge nest holds the mapping)."""
    from symbiote.backends.spatial import interop_accelforge as iaf
    from symbiote.backends.spatial.interop_arch import InteropError
    from symbiote.backends.spatial.interop_zigzag import from_zigzag, loop_nest_from_zigzag

    record = json.loads((DATA / "zigzag_spatial_crosscheck.json").read_text())
    archs = {d: from_zigzag(DATA / f"zigzag_{d}.yaml") for d in record["designs"]}
    jobs, rows = [], []
    for r in record["layers"]:
        lay = r["layer"]
        if lay["operator_type"] != "Gemm" or lay["loop_dims"] != ["C", "D", "K"]:
            continue
        ext = dict(zip(lay["loop_dims"], lay["loop_sizes"]))
        key = f"zz|{r['design']}|{r['signature']}"
        row = {"key": key, "design": r["design"], "layer": r["name"], "zigzag": r}
        arch = archs[r["design"]]
        try:
            nest = loop_nest_from_zigzag(arch, r["temporal_mapping"], r["spatial_mapping"], r["memory_levels"], ext)
            mapping = iaf.mapping_to_accelforge_yaml(arch, nest)
        except InteropError as e:
            rows.append({**row, "why": str(e)})
            continue
        jobs.append({"key": key, "arch": iaf.accelforge_arch_yaml(arch),
                     "workload": iaf.gemm_workload_yaml(ext["D"], ext["C"], ext["K"], {"O": 16}), "mapping": mapping})
        rows.append(row)
    return jobs, rows


def zigzag_compare(row: dict, res: dict | None) -> dict:
    z = row["zigzag"]
    out = {"design": row["design"], "layer": row["layer"], "zigzag_pj": z["energy_pj"]}
    if res is None:
        return {**out, "accelforge_pj": None, "why": row["why"]}
    per_mem: dict[str, float] = {"MAC": z["mac_energy_pj"]}
    for op, names in z["memory_levels"].items():
        for name, e in zip(names, z["memory_energy_pj"][op]):
            per_mem[name] = per_mem.get(name, 0.0) + e
    af = sum(res["energy"].values())
    return {**out, "accelforge_pj": af, "ratio": af / z["energy_pj"],
            "per_memory": {k: {"zigzag": v, "accelforge": res["energy"].get(k, 0.0)} for k, v in per_mem.items()}}


def worker() -> None:
    """Read jobs (JSON lines of YAML texts) on stdin; evaluate each; print one JSON line each."""
    import contextlib
    import io

    import accelforge as af

    for line in sys.stdin:
        job = json.loads(line)
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for part in ("arch", "workload", "mapping"):
                p = Path(tmp) / f"{part}.yaml"
                p.write_text(job[part])
                paths.append(str(p))
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                res = af.Spec.from_yaml(*paths).evaluate_mapping()
            wall = time.perf_counter() - t0
        row = res.data.iloc[0]
        actions = {}
        for col in res.data.columns:
            parts = col.split("<SEP>")
            if len(parts) == 5 and parts[1] == "action":
                actions[f"{parts[2]}.{parts[3]}.{parts[4]}"] = float(row[col])
        print(json.dumps({"key": job["key"], "wall_s": wall, "actions": actions,
                          "energy": {k: float(v) for k, v in res.energy(per_component=True).items()},
                          "latency": float(row["Total<SEP>latency"])}), flush=True)


def run_accelforge(python: str, jobs: list[dict]) -> dict[str, dict]:
    proc = subprocess.run([python, __file__, "--worker"], input="".join(json.dumps(j) + "\n" for j in jobs),
                          capture_output=True, text=True, cwd=tempfile.gettempdir(), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"AccelForge worker failed:\n{proc.stderr[-4000:]}")
    return {r["key"]: r for r in (json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{"))}


def expected_dram_weight_bits(nest, bits: int = 8) -> float:
    """The weight tensor once (module doc: true of every nest of :func:`nests`)."""
    m, k, n = GEMM
    return k * n * bits


def check(design: str, res: dict, arch, nest) -> dict:
    from symbiote.backends.spatial.interop_arch import memory

    m, k, n = GEMM
    a = res["actions"]
    macs = a["MAC.None.compute"]
    dram_w_bits = a["dram.W.read"] * memory(arch, "dram").read_bw_bits
    energy_from_counts = {}
    for key, count in a.items():
        comp, _, act = key.split(".")
        if comp == "MAC":
            e = arch.array.unit_energy_pj
        else:
            mem = memory(arch, comp)
            e = mem.r_cost_pj if act == "read" else mem.w_cost_pj
        energy_from_counts[comp] = energy_from_counts.get(comp, 0.0) + count * e
    worst = max(abs(energy_from_counts[c] - v) / max(abs(v), 1e-30) for c, v in res["energy"].items() if v)
    return dict(design=design, macs=macs, macs_expected=m * k * n, macs_ok=macs == m * k * n,
                dram_weight_bits=dram_w_bits, dram_weight_bits_expected=expected_dram_weight_bits(nest),
                dram_weight_ok=abs(dram_w_bits - expected_dram_weight_bits(nest)) < 1e-6 * dram_w_bits,
                energy_pj=sum(res["energy"].values()), energy_consistency_rel_err=worst,
                latency=res["latency"], accelforge_wall_s=round(res["wall_s"], 3))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--python", default=os.environ.get("ACCELFORGE_PYTHON", ""),
                    help="the AccelForge venv's python (default: $ACCELFORGE_PYTHON)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--spatial", action="store_true", help="also the spatial template's chosen mapping (module doc)")
    ap.add_argument("--zigzag", action="store_true", help="also ZigZag's recorded GEMM mappings (module doc)")
    args = ap.parse_args(argv)
    if args.worker:
        worker()
        return 0
    if not args.python or not Path(args.python).exists():
        ap.error("AccelForge's python not found: pass --python or set ACCELFORGE_PYTHON")
    from crosscheck_accelforge import accelforge_version
    from symbiote.backends.spatial import interop_accelforge as iaf
    from symbiote.backends.spatial.interop_zigzag import from_zigzag

    archs = {d: from_zigzag(DATA / f"zigzag_{d}.yaml") for d in DESIGNS}
    ns = nests()
    jobs = [{"key": d, "arch": iaf.accelforge_arch_yaml(archs[d]), "workload": iaf.gemm_workload_yaml(*GEMM),
             "mapping": iaf.mapping_to_accelforge_yaml(archs[d], ns[d])} for d in DESIGNS]
    sjobs, sides = spatial_jobs() if args.spatial else ([], [])
    zjobs, zrows = zigzag_jobs() if args.zigzag else ([], [])
    results = run_accelforge(args.python, jobs + sjobs + zjobs)
    zz = [zigzag_compare(r, results.get(r["key"])) for r in zrows]
    rows = [check(d, results[d], archs[d], ns[d]) for d in DESIGNS]
    spatial = [spatial_compare(side, results[side["key"]]) for side in sides]
    ok_spatial = all(abs(x["counts"]["macs"]["ratio"] - 1.0) < 1e-6 for x in spatial)
    back = {}
    for d in DESIGNS:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / f"{d}.yaml"
            iaf.to_accelforge(archs[d], p)
            b = iaf.from_accelforge(p)
        a = archs[d]
        same = lambda m: (m.name, m.operands, m.size_bits, m.served_dims, m.r_cost_pj, m.w_cost_pj)  # noqa: E731
        back[d] = ([same(m) for m in a.memories] == [same(m) for m in b.memories]
                   and a.array.dims == b.array.dims and a.array.unit_energy_pj == b.array.unit_energy_pj)
    ok = all(r["macs_ok"] and r["dram_weight_ok"] and r["energy_consistency_rel_err"] < 1e-6 for r in rows) and all(back.values())
    ok = ok and ok_spatial
    summary = {"accelforge": accelforge_version(args.python), "gemm": list(GEMM), "rows": rows,
               "arch_read_back_same": back, "spatial": spatial, "zigzag_mappings": zz, "all_ok": ok}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"AccelForge {summary['accelforge']}: GEMM {GEMM[0]}x{GEMM[1]}x{GEMM[2]}")
        for r in rows:
            print(f"{r['design']:<14} MACs {r['macs']:.0f} ({'ok' if r['macs_ok'] else 'WRONG'}), DRAM weight bits "
                  f"{r['dram_weight_bits']:.0f} ({'ok' if r['dram_weight_ok'] else 'vs ' + str(r['dram_weight_bits_expected'])}), "
                  f"energy {r['energy_pj'] / 1e6:.2f} uJ (counts x file energies: rel err {r['energy_consistency_rel_err']:.1e}), "
                  f"AccelForge {r['accelforge_wall_s']} s; arch read back same: {back[r['design']]}")
        for x in spatial:
            print(f"spatial {x['design'] or 'defaults'}: {x['loop_nest']}")
            for name, c in x["counts"].items():
                print(f"    {name:<14} symbiote {c['symbiote']:>14.0f}  AccelForge {c['accelforge']:>14.0f}  "
                      f"ratio {c['ratio']:.4f}  (the model's padding {c['padding']:.4f}: unpadded {c['ratio_unpadded']:.6f})")
            print(f"    equal up to the padding: {x['equal_up_to_padding']}")
        for x in zz:
            if x["accelforge_pj"] is None:
                print(f"zigzag {x['design']:<13} {x['layer'][:40]:<40} not one AccelForge nest: {x['why'][:110]}")
                continue
            mems = ", ".join(f"{k} {v['accelforge'] / v['zigzag']:.3f}" if v["zigzag"] > 1e-6 else
                             f"{k} {v['accelforge']:.3g} pJ vs 0" for k, v in x["per_memory"].items())
            print(f"zigzag {x['design']:<13} {x['layer'][:40]:<40} ZigZag {x['zigzag_pj'] / 1e6:9.3f} uJ  AccelForge "
                  f"{x['accelforge_pj'] / 1e6:9.3f} uJ  ratio {x['ratio']:.3f}  (per memory AF/ZZ: {mems})")
        print("all ok" if ok else "NOT ALL OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
