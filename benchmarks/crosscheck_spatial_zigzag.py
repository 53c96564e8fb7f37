"""Record ZigZag's own per-layer results (LOMA mapping search) on its shipped designs.

ZigZag (PyPI ``zigzag-dse``, KU Leuven MICAS, MIT licence) searches, per layer, the
spatial unrolling and the temporal loop order and tiling (LOMA) on an accelerator given as
a YAML file, and prices the mapping it keeps with its analytical model (energy in pJ from
per-access costs, latency in cycles with port stalls). This script runs it on the conv and
GEMM/MatMul layers of symbiote's zoo resnet18, mobilenet_v2 and bert and BERT-base's two
FFN GEMMs, on two designs ZigZag
ships (:data:`DESIGNS`: ``eyeriss_like``, 14 x 12 PEs with per-PE register files, and
``tpu_like``, a 32 x 32 weight-stationary array), each distinct layer as one ZigZag call, and
records per distinct layer the energy (total, MAC, per memory level and operand), the latency
(cycles: computation, on- and off-loading), the utilization, the word accesses per level,
the mapping ZigZag chose (spatial and temporal, per operand and memory level) and the wall
time of its ZigZag call, and per network the sums (its wall time: the sum over its layers,
duplicates included, as ZigZag evaluates each layer of a network on its own). The record is what the spatial template's cross-check and its tests
read, without ZigZag (``tests/backends/data/zigzag_spatial_crosscheck.json``).

How the layers are given to ZigZag (its own ONNX parsers' forms, ``zigzag/parser/onnx``):

* a convolution: ``O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]`` with
  ``ix=stride*ox+dilation*fx`` (depthwise and grouped layers through ``G``), the input's
  size and padding from the Workload row (``in_elems``; symmetric padding, the odd pixel
  at the end, as ONNX's ``SAME_UPPER``);
* a GEMM of a weight: ``O[d][k]+=I[d][c]*W[c][k]`` (``D`` = the rows, ``N*P*Q``); a
  MatMul of two activations repeated ``repeat`` times (attention's heads):
  ``O[b][d][k]+=I[b][d][c]*W[b][c][k]`` with ``B = repeat``;
* precisions: 8-bit weights and inputs, 16-bit partial sums, 8-bit final outputs (ZigZag's
  examples' and ONNX parser's defaults); every layer reads its input and weights from the
  top memory (no inter-layer reuse: ZigZag's default flow);
* mapping files: ``tpu_like`` uses ZigZag's shipped ``inputs/mapping/tpu_like.yaml``
  (``D1: K 32``, ``D2: C 32``); ``eyeriss_like`` ships none, so it gets only the operand
  links and ZigZag's spatial mapping generator picks the unrolling
  (``nb_spatial_mappings_generated = 3``, the API's default); LOMA with ``lpf_limit = 6``
  (the API's default), optimizing ``energy`` (``--opt``).

ZigZag runs in its own virtual environment (Python 3.12; not a symbiote dependency)::

    python3.12 -m venv /path/to/zz-venv && /path/to/zz-venv/bin/pip install zigzag-dse==3.9.1 six
    export ZIGZAG_PYTHON=/path/to/zz-venv/bin/python          # or --python

``--validate`` checks the other direction, ZigZag reading what symbiote writes
(``backends/spatial/interop_zigzag.py``): each accelerator file of ``tests/backends/data/``
(ZigZag's shipped ``eyeriss_like`` and ``tpu_like``, the tests' ``test_3d`` and, converted to
the port schema, ``test_legacy``) and the spatial template's designs of
:data:`TEMPLATE_DESIGNS` (``from_design``) are written by ``to_zigzag`` and given to ZigZag's
own validator and accelerator factory; where there is an original file, ZigZag's normalized
form of the written file must equal that of the original.

Usage::

    python benchmarks/crosscheck_spatial_zigzag.py --validate   # ZigZag parses what to_zigzag writes
    python benchmarks/crosscheck_spatial_zigzag.py --record     # run ZigZag (about an hour), write the record
                                                                # (each network's result is kept as it comes in
                                                                # <record>.partial.jsonl: a rerun resumes)
    python benchmarks/crosscheck_spatial_zigzag.py              # summarize the record
    python benchmarks/crosscheck_spatial_zigzag.py --json       # the summary as one JSON object
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
RECORD = ROOT / "tests" / "backends" / "data" / "zigzag_spatial_crosscheck.json"
#: the zoo networks, and BERT-base's FFN GEMMs as the AccelForge cross-check has them
#: (``crosscheck_accelforge.GEMMS``: seq 128, hidden 768, intermediate 3072)
NETS = ("resnet18", "mobilenet_v2", "bert", "bert_base_ffn_up", "bert_base_ffn_down")
#: ZigZag's shipped designs (``zigzag/inputs/hardware/<name>.yaml``) and the mapping file each
#: gets: a shipped one (``zigzag/inputs/mapping/<name>``) or only the operand links (None)
DESIGNS = {"eyeriss_like": None, "tpu_like": "tpu_like.yaml"}
#: the memory operand links of both designs' mapping files (ZigZag's operands to the layer's)
LINKS = {"O": "O", "W": "I2", "I": "I1"}
LINKS_ONLY = "- name: default\n  memory_operand_links: {O: O, W: I2, I: I1}\n"
PRECISION = {"W": 8, "I": 8, "O": 16, "O_final": 8}
LPF_LIMIT = 6
#: spatial-template designs written as ZigZag files by ``--validate``
TEMPLATE_DESIGNS = ({}, {"array_x": 32, "array_y": 8, "glb_split": "shared", "glb_banks": 8, "dataflow": "ws"},
                    {"dataflow": "rs", "node_nm": "28", "dram": "hbm2e", "dram_gbps": 460.8, "clock_ghz": 0.8})
SPATIAL_MAPPINGS = 3


# --------------------------------------------------------------------------- worker (ZigZag's venv)


def worker() -> None:
    """Read jobs (JSON lines: design, mapping, layers) on stdin; print one JSON line per job."""
    import contextlib
    import io
    import logging

    import zigzag
    from zigzag.api import get_hardware_performance_zigzag
    from zigzag.opt.loma.engine import LomaEngine

    logging.disable(logging.CRITICAL)
    pkg = Path(zigzag.__file__).parent
    search = LomaEngine.run
    for line in sys.stdin:
        job = json.loads(line)
        with tempfile.TemporaryDirectory() as tmp:
            mapping = Path(tmp) / "mapping.yaml"
            if job.get("mapping_yaml"):
                mapping.write_text(job["mapping_yaml"])
            elif job["mapping"]:
                mapping.write_text((pkg / "inputs" / "mapping" / job["mapping"]).read_text())
            else:
                mapping.write_text(LINKS_ONLY)
            LomaEngine.run = _refuse_search if job.get("mapping_yaml") else search
            t0 = time.perf_counter()
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    energy, latency, cmes = get_hardware_performance_zigzag(
                        job["layers"], str(pkg / "inputs" / "hardware" / f"{job['design']}.yaml"), str(mapping),
                        opt=job["opt"], dump_folder=str(Path(tmp) / "out"), lpf_limit=LPF_LIMIT,
                        nb_spatial_mappings_generated=SPATIAL_MAPPINGS, loma_show_progress_bar=False)
            except Exception as e:  # noqa: BLE001 - one job's failure is its result
                if not job.get("mapping_yaml"):
                    raise
                print(json.dumps({"key": job["key"], "error": f"{type(e).__name__}: {e}"}), flush=True)
                continue
            wall = time.perf_counter() - t0
        layers = [_cme_row(cme) for cme, _ in cmes[0][1]]
        print(json.dumps({"key": job["key"], "wall_s": wall, "energy_pj": energy, "latency_cycles": latency,
                          "layers": layers}), flush=True)


def _refuse_search(self):
    """LOMA's search, refused: ZigZag calls it for a mapping entry whose temporal ordering it
    does not find complete, where the job asked for that ordering to be costed as given."""
    raise RuntimeError("ZigZag did not find the given temporal ordering complete and would search (LOMA)")


def validate_worker() -> None:
    """Read jobs (JSON lines: name, written YAML, original YAML or null) on stdin; print one JSON
    line each: ZigZag's validator accepts the written file, its factory builds the accelerator,
    and the normalized data equals the original's."""
    import logging

    import yaml
    from zigzag.parser.accelerator_factory import AcceleratorFactory
    from zigzag.parser.accelerator_validator import AcceleratorValidator

    logging.disable(logging.CRITICAL)

    def normalized(text: str):
        v = AcceleratorValidator(yaml.safe_load(text))
        return v.validate(), v.normalized_data

    for line in sys.stdin:
        job = json.loads(line)
        ok, data = normalized(job["written"])
        built = None
        if ok:
            acc = AcceleratorFactory(data).create()
            built = f"{acc.name}: {len(acc.memory_hierarchy.mem_level_list)} memory levels"
        same = None if job["original"] is None else normalized(job["original"])[1] == data
        print(json.dumps({"name": job["name"], "valid": ok, "built": built, "same_as_original": same}), flush=True)


def validate_files(python: str) -> list[dict]:
    from symbiote.backends.spatial.interop_design import from_design
    from symbiote.backends.spatial.interop_zigzag import from_zigzag, zigzag_yaml
    from symbiote.backends.spatial.space import SPACE

    data = ROOT / "tests" / "backends" / "data"
    jobs = []
    for name in ("eyeriss_like", "tpu_like", "test_3d", "test_legacy"):
        path = data / f"zigzag_{name}.yaml"
        jobs.append({"name": name, "written": zigzag_yaml(from_zigzag(path)),
                     "original": None if name == "test_legacy" else path.read_text()})
    for i, knobs in enumerate(TEMPLATE_DESIGNS):
        jobs.append({"name": f"spatial design {i}: {knobs or 'defaults'}",
                     "written": zigzag_yaml(from_design(SPACE.validate(knobs))), "original": None})
    proc = subprocess.run([python, __file__, "--validate-worker"], input="".join(json.dumps(j) + "\n" for j in jobs),
                          capture_output=True, text=True, cwd=tempfile.gettempdir(), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ZigZag validation worker failed:\n{proc.stderr[-4000:]}")
    return [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]


def _cme_row(c) -> dict:
    """One layer's figures and mapping from a ZigZag CostModelEvaluation."""
    from zigzag.utils import json_repr_handler

    mh = c.accelerator.memory_hierarchy
    links = c.memory_operand_links
    levels = {str(op): [m.name for m in mh.get_memory_levels(links.layer_to_mem_op(op))] for op in c.mem_energy_breakdown}
    energy = json_repr_handler(c.mem_energy_breakdown)
    accesses = json_repr_handler(c.memory_word_access)
    return dict(
        name=c.layer.name, energy_pj=float(c.energy_total), mac_energy_pj=float(c.mac_energy),
        mem_energy_pj=float(c.mem_energy), latency_cycles=float(c.latency_total2),
        computation_cycles=float(c.latency_total0), onloading_cycles=float(c.latency_total1 - c.latency_total0),
        offloading_cycles=float(c.latency_total2 - c.latency_total1), ideal_cycles=float(c.ideal_cycle),
        mac_utilization=float(c.mac_utilization2), spatial_utilization=float(c.mac_spatial_utilization),
        memory_levels=levels, memory_energy_pj=energy, word_accesses=accesses,
        spatial_mapping={str(op): [[str(u) for u in lvl] for lvl in lvls]
                         for op, lvls in c.spatial_mapping_int.mapping_dict_origin.items()},
        temporal_mapping={str(op): [[[str(d), _num(f)] for d, f in lvl] for lvl in lvls]
                          for op, lvls in c.temporal_mapping.mapping_dic_stationary.items()},
    )


def _num(x) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def run_zigzag(python: str, jobs: list[dict], partial: Path | None = None) -> dict[str, dict]:
    """Each job's result; with ``partial``, results already in that file (JSON lines, one per
    job) are reused and each new one is appended as soon as ZigZag returns it, so that an
    interrupted ``--record`` resumes where it stopped."""
    done: dict[str, dict] = {}
    if partial and partial.exists():
        done = {r["key"]: r for r in (json.loads(x) for x in partial.read_text().splitlines() if x.startswith("{"))}
    todo = [j for j in jobs if j["key"] not in done]
    if not todo:
        return done
    with subprocess.Popen([python, __file__, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir()) as proc:
        def feed() -> None:   # in a thread: the worker's answers fill its stdout pipe while it reads
            proc.stdin.write("".join(json.dumps(j) + "\n" for j in todo))
            proc.stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        for line in proc.stdout:
            if line.startswith("{"):
                r = json.loads(line)
                done[r["key"]] = r
                if partial:
                    with partial.open("a") as f:
                        f.write(line if line.endswith("\n") else line + "\n")
                print(f"  {r['key']}: " + (r["error"][:200] if "error" in r else f"({r['layers'][0]['name']}): "
                                              f"{r['wall_s']:.1f} s"), file=sys.stderr, flush=True)
        writer.join()
        err = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"ZigZag worker failed:\n{err[-4000:]}")
    return done


def tool_version(python: str, dist: str) -> str:
    return subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                          capture_output=True, text=True, check=True).stdout.strip()


# --------------------------------------------------------------------------- layers


def zigzag_layer(i: int, name: str, row: dict) -> dict:
    """One Workload MAC row as a ZigZag layer (module doc)."""
    n, k, c, p, q, r, s, g = (int(round(row[x])) for x in ("n", "k", "c", "p", "q", "r", "s", "groups"))
    rep = int(round(row["repeat"]))
    gemm = r == 1 and s == 1 and int(row["stride_h"]) == 1 and int(row["stride_w"]) == 1 and g == 1 and (
        q == 1 or p == 1 or row["kind_hint"] == "gemm")
    base = {"id": i, "name": name, "operand_precision": dict(PRECISION), "operand_source": {"I": i, "W": i}}
    if gemm:
        d = n * p * q
        if rep > 1:
            return {**base, "operator_type": "Gemm", "equation": "O[b][d][k]+=I[b][d][c]*W[b][c][k]",
                    "dimension_relations": [], "loop_dims": ["B", "C", "D", "K"], "loop_sizes": [rep, c, d, k]}
        return {**base, "operator_type": "Gemm", "equation": "O[d][k]+=I[d][c]*W[c][k]",
                "dimension_relations": [], "loop_dims": ["C", "D", "K"], "loop_sizes": [c, d, k]}
    sh, sw, dh, dw = (int(row[x]) for x in ("stride_h", "stride_w", "dil_h", "dil_w"))
    out = {**base, "operator_type": "Conv", "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
           "dimension_relations": [f"ix={sw}*ox+{dw}*fx", f"iy={sh}*oy+{dh}*fy"],
           "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
           "loop_sizes": [n * rep, k // g, g, q, p, c // g, s, r]}
    side = math.isqrt(int(round(row["in_elems"] / max(n * c, 1))))
    if side * side * n * c == int(round(row["in_elems"])) and p == q:
        pad = max(0, (p - 1) * sh + (r - 1) * dh + 1 - side)
        out |= {"pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [side, side],
                "padding": [[pad // 2, pad - pad // 2], [pad // 2, pad - pad // 2]]}
    return out


def padded_layer(layer: dict, loop_sizes: dict[str, int]) -> dict:
    """``layer`` (:func:`zigzag_layer`) with its loop sizes set to ``loop_sizes`` (by dim, at
    least the layer's: a mapping's padded extents, ``interop_zigzag_mapping.zigzag_mapping``);
    a convolution's output rows and columns past the input read more zero padding (the input
    stays its size; the padding after it grows)."""
    out = {**layer, "loop_sizes": [int(loop_sizes.get(d, s)) for d, s in zip(layer["loop_dims"], layer["loop_sizes"],
                                                                               strict=True)]}
    if "pr_loop_sizes" not in layer:
        return out
    size = dict(zip(out["loop_dims"], out["loop_sizes"], strict=True))
    pads = []
    for rel, side, (before, _) in zip(layer["dimension_relations"], layer["pr_loop_sizes"], layer["padding"], strict=True):
        # "ix=2*ox+1*fx": the input extent (o - 1) * stride + (f - 1) * dilation + 1
        _, rhs = rel.split("=")
        (stride, o), (dil, f) = (t.split("*") for t in rhs.split("+"))
        need = (size[o.upper()] - 1) * int(stride) + (size[f.upper()] - 1) * int(dil) + 1
        pads.append([before, max(0, need - side - before)])
    return out | {"padding": pads}


def network_layers(net: str) -> list[dict]:
    """The conv / GEMM rows of a zoo network as ZigZag layers, in order (duplicates kept: ZigZag
    evaluates every layer of a network)."""
    import numpy as np

    from crosscheck_accelforge import _lowered
    from symbiote.ir.workload import MAC

    wl = _lowered(net)
    cols = wl.to_numpy()
    out = []
    for j, i in enumerate(np.flatnonzero(np.asarray(wl.kinds) == MAC)):
        row = {k: float(v[i]) for k, v in cols.items() if k != "kind"}
        row["kind_hint"] = "conv" if net in ("resnet18", "mobilenet_v2") else "gemm"
        out.append(zigzag_layer(j, str(wl.names[i]), row))
    return out


# --------------------------------------------------------------------------- record and summary


def signature(layer: dict) -> str:
    """What ZigZag's result for a layer depends on (not its id, name or sources)."""
    body = json.dumps({k: v for k, v in layer.items() if k not in ("id", "name", "operand_source")}, sort_keys=True)
    return hashlib.sha1(body.encode()).hexdigest()[:12]


def build_record(python: str, opt: str, nets=NETS, designs=tuple(DESIGNS), partial: Path | None = None) -> dict:
    """ZigZag on each distinct layer of the networks (one call per layer and design, timed); a
    network's figures and wall time are the sums over its layers, duplicates included (ZigZag
    evaluates every layer of a workload on its own: its time for the whole network is that sum,
    less the one accelerator parse per call)."""
    layers = {net: network_layers(net) for net in nets}
    # mobilenet_v2 (depthwise layers slow on eyeriss_like) last: the other networks come in first
    order = sorted(nets, key=lambda net: net == "mobilenet_v2")
    unique: dict[str, dict] = {}
    names: dict[str, list[str]] = {}
    for net in order:
        for lay in layers[net]:
            sig = signature(lay)
            unique.setdefault(sig, {**lay, "id": 0, "operand_source": {"I": 0, "W": 0}})
            names.setdefault(sig, []).append(f"{net}:{lay['name']}")
    jobs = [{"key": f"{d}|{sig}", "design": d, "mapping": DESIGNS[d], "layers": [lay], "opt": opt}
            for sig, lay in unique.items() for d in designs]
    results = run_zigzag(python, jobs, partial)
    table = []
    for job in jobs:
        res, lay = results[job["key"]], job["layers"][0]
        sig = job["key"].split("|")[1]
        table.append({**res["layers"][0], "design": job["design"], "signature": sig, "wall_s": res["wall_s"],
                      "name": names[sig][0], "layers": names[sig],
                      "layer": dict(operator_type=lay["operator_type"], loop_dims=lay["loop_dims"],
                                     loop_sizes=lay["loop_sizes"], equation=lay["equation"],
                                    dimension_relations=lay["dimension_relations"], padding=lay.get("padding"))})
    by = {(r["design"], r["signature"]): r for r in table}
    runs = []
    for d in designs:
        for net in nets:
            rows = [by[(d, signature(lay))] for lay in layers[net]]
            runs.append(dict(design=d, net=net, layers=[f"{lay['name']}" for lay in layers[net]],
                             signatures=[signature(lay) for lay in layers[net]],
                             energy_pj=sum(r["energy_pj"] for r in rows), latency_cycles=sum(r["latency_cycles"] for r in rows),
                             wall_s=sum(r["wall_s"] for r in rows)))
    return dict(
        zigzag=tool_version(python, "zigzag-dse"),
        python=subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                              text=True, check=True).stdout.strip(),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        written_by="benchmarks/crosscheck_spatial_zigzag.py --record" + (f" --opt {opt}" if opt != "energy" else ""),
        total_wall_s=sum(r["wall_s"] for r in table),
        machine=f"{os.cpu_count()} CPUs shared with other work (load average {os.getloadavg()[0]:.1f} at the end)",
        designs={d: {"accelerator": f"zigzag/inputs/hardware/{d}.yaml",
                     "mapping": f"zigzag/inputs/mapping/{m}" if m else LINKS_ONLY} for d, m in DESIGNS.items()},
        settings=dict(opt=opt, temporal_mapping_search_engine="loma", temporal_mapping_type="uneven",
                      lpf_limit=LPF_LIMIT, nb_spatial_mappings_generated=SPATIAL_MAPPINGS, precision=PRECISION),
        note=("layers: one row per design and distinct layer (signature: a hash of ZigZag's layer description; "
              "'layers' names every net:layer it stands for): ZigZag's figures for the mapping LOMA kept "
              "(energy in pJ, latency in cycles), its memory levels per layer operand (lowest first) with the "
              "energy and word accesses of each, that mapping (spatial: per operand and level, the unrollings; "
              "temporal: per operand and level, the loops innermost first) and wall_s, the ZigZag call's time. "
              "runs: per design and network, the sums over its layers in order (duplicates included), wall_s "
              "included: ZigZag's time for the whole network."),
        layers=table,
        runs=runs,
    )


def summarize(record: dict) -> dict:
    return dict(
        zigzag=record["zigzag"], date=record["date"], opt=record["settings"]["opt"],
        distinct_layers=len({r["signature"] for r in record["layers"]}),
        runs=[{"design": r["design"], "net": r["net"], "layers": len(r["layers"]), "wall_s": round(r["wall_s"], 2),
               "energy_uj": r["energy_pj"] / 1e6, "latency_cycles": r["latency_cycles"],
               "wall_s_per_layer": round(r["wall_s"] / max(len(r["layers"]), 1), 3)} for r in record["runs"]],
        wall_s_per_network_max=max(r["wall_s"] for r in record["runs"]),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--validate-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--validate", action="store_true", help="check that ZigZag parses what to_zigzag writes")
    ap.add_argument("--python", default=os.environ.get("ZIGZAG_PYTHON", ""),
                    help="the ZigZag venv's python (default: $ZIGZAG_PYTHON)")
    ap.add_argument("--record", nargs="?", const=RECORD, type=Path,
                    help=f"run ZigZag and write the record (default {RECORD.relative_to(ROOT)})")
    ap.add_argument("--opt", default="energy", choices=("energy", "latency", "EDP"), help="LOMA's objective")
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=NETS)
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = ap.parse_args(argv)
    if args.worker:
        worker()
        return 0
    if args.validate_worker:
        validate_worker()
        return 0
    if args.validate:
        if not args.python or not Path(args.python).exists():
            ap.error("ZigZag's python not found: pass --python or set ZIGZAG_PYTHON (see the module doc)")
        rows = validate_files(args.python)
        ok = all(r["valid"] and r["built"] and r["same_as_original"] is not False for r in rows)
        if args.json:
            print(json.dumps({"zigzag": tool_version(args.python, "zigzag-dse"), "files": rows, "all_ok": ok}))
        else:
            for r in rows:
                print(f"{r['name']:<60} valid {r['valid']}, built {r['built']}, same as original {r['same_as_original']}")
            print("all ok" if ok else "NOT ALL OK")
        return 0 if ok else 1
    if args.record:
        if not args.python or not Path(args.python).exists():
            ap.error("ZigZag's python not found: pass --python or set ZIGZAG_PYTHON (see the module doc)")
        partial = args.record.with_suffix(".partial.jsonl")
        record = build_record(args.python, args.opt, tuple(args.nets), tuple(args.designs), partial)
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        partial.unlink(missing_ok=True)
    else:
        record = json.loads(RECORD.read_text())
    s = summarize(record)
    if args.json:
        print(json.dumps(s))
        return 0
    print(f"ZigZag {s['zigzag']} (recorded {s['date']}), LOMA optimizing {s['opt']}")
    print(f"{'design':<14} {'net':<18} {'layers':>6} {'wall s':>8} {'s/layer':>8} {'energy uJ':>11} {'latency cyc':>13}")
    for r in s["runs"]:
        print(f"{r['design']:<14} {r['net']:<18} {r['layers']:>6} {r['wall_s']:>8.1f} {r['wall_s_per_layer']:>8.2f} "
              f"{r['energy_uj']:>11.2f} {r['latency_cycles']:>13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
