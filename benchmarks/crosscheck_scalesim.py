"""Cross-check the systolic template's compute cycles against SCALE-Sim 3.0.0.

SCALE-Sim (Samajdar et al., "A Systematic Methodology for Characterizing Scalability of
DNN Accelerators using SCALE-Sim", ISPASS 2020; https://github.com/scalesim-project) needs
numpy 1.x, so this script builds it in its own virtual environment (``.scalesim-venv``:
``scalesim==3.0.0``, ``numpy==1.26.4``, ``pandas==2.2.3``) and runs it in a worker
process of that environment. For every conv and GEMM layer of the chosen zoo networks it
asks SCALE-Sim for ``Total Cycles`` and ``Stall Cycles`` (COMPUTE_REPORT.csv) at each
(dataflow, array size), and compares ``total - stall`` with the closed form of
``symbiote.backends.systolic.mapping``.

Layers are taken straight from the ONNX model (onnx shape inference), independently of
``symbiote.ir.lower``; the test ``tests/backends/test_scalesim_identity.py`` checks that
``lower`` finds the same dims. SCALE-Sim has no padding, groups or batch: a convolution
becomes the SCALE-Sim layer whose input is the padded input, ``ifmap = (P-1)*stride + R``;
a grouped convolution is ``groups`` identical per-group layers (C/g channels, K/g filters;
SCALE-Sim's own depth-wise mode does the same); a GEMM ``(M, K) x (K, N)`` is the layer
``ifmap M x 1, filter 1 x 1, channels K, filters N``; a batched matmul is ``repeat``
identical GEMMs. Identical layers are simulated once.

Usage::

    python benchmarks/crosscheck_scalesim.py                    # a sample, printed
    python benchmarks/crosscheck_scalesim.py --all --workers 2 --record tests/backends/data/scalesim_compute_cycles.json
    python benchmarks/crosscheck_scalesim.py --json

SCALE-Sim simulates cycle by cycle in Python: big layers on small arrays take minutes.
``--budget-s`` bounds the run; layers are simulated cheapest first and the table is
written after every layer, so an interrupted run keeps what it measured.
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
VENV = ROOT / ".scalesim-venv"
PINS = ["scalesim==3.0.0", "numpy==1.26.4", "pandas==2.2.3"]
NETS = ("resnet18", "resnet50", "mobilenet_v2", "bert")
DATAFLOWS = ("os", "ws", "is")
ARRAYS = (8, 32, 128)
TABLE = ROOT / "tests" / "backends" / "data" / "scalesim_compute_cycles.json"

# --------------------------------------------------------------------------- layers


def onnx_layers(net: str) -> list[dict]:
    """Conv/Gemm/MatMul layers of a zoo network as SCALE-Sim layers (see module doc)."""
    import numpy as np
    import onnx

    from symbiote.frontend import zoo

    model = onnx.shape_inference.infer_shapes(zoo.build(net))
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value for d in dims)
    for init in model.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    inits = {i.name for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            w, y = shapes[node.input[1]], shapes[node.output[0]]
            g = int(attrs.get("group", 1))
            k, cg, r, s = w
            n, _, p, q = y
            sh, sw = (list(attrs.get("strides", [1, 1])) + [1, 1])[:2]
            if sh != sw:
                raise ValueError(f"{node.name}: SCALE-Sim needs equal strides")
            out.append(dict(name=node.name, ifmap_h=(p - 1) * sh + r, ifmap_w=(q - 1) * sw + s, filt_h=r, filt_w=s,
                            channels=cg, filters=k // g, stride=sh, repeat=g * n))
        elif node.op_type in ("Gemm", "MatMul"):
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            if node.op_type == "Gemm":
                m, kk = (a[1], a[0]) if attrs.get("transA", 0) else (a[0], a[1])
                nn = b[0] if attrs.get("transB", 0) else b[1]
                rep = 1
            elif len(b) == 2 or node.input[1] in inits:
                m, kk, nn, rep = int(np.prod(a[:-1])), a[-1], b[-1], 1
            else:
                batch = np.broadcast_shapes(a[:-2], b[:-2])
                m, kk, nn, rep = a[-2], a[-1], b[-1], int(np.prod(batch))
            out.append(dict(name=node.name, ifmap_h=m, ifmap_w=1, filt_h=1, filt_w=1, channels=kk, filters=nn, stride=1, repeat=rep))
    return out


def shape_key(layer: dict) -> str:
    return ",".join(str(layer[k]) for k in ("ifmap_h", "ifmap_w", "filt_h", "filt_w", "channels", "filters", "stride"))


def gemm_dims(layer: dict) -> tuple[int, int, int]:
    """(ofmap pixels, window, filters) of a SCALE-Sim layer."""
    p = (layer["ifmap_h"] - layer["filt_h"]) // layer["stride"] + 1
    q = (layer["ifmap_w"] - layer["filt_w"]) // layer["stride"] + 1
    return p * q, layer["filt_h"] * layer["filt_w"] * layer["channels"], layer["filters"]


def closed_form(layer: dict, df: str, rows: int, cols: int) -> int:
    """symbiote's compute cycles of ONE SCALE-Sim layer (no repeat), from the template itself."""
    from symbiote.backends.systolic.mapping import compute_cycles_np

    px, window, filters = gemm_dims(layer)
    return int(compute_cycles_np(px, window, filters, rows, cols, df))


# --------------------------------------------------------------------------- worker (runs in the SCALE-Sim venv)

_CFG = """[general]
run_name = crosscheck

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = 6144
filtersramszkB = 6144
ofmapsramszkB = 2048
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = 10
Dataflow = {df}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False
"""


def worker() -> None:
    """Read jobs (JSON lines) on stdin, run SCALE-Sim on each, print one JSON line per job."""
    import contextlib
    import glob
    import io

    from scalesim.scale_sim import scalesim

    for line in sys.stdin:
        job = json.loads(line)
        with tempfile.TemporaryDirectory() as d:
            Path(d, "c.cfg").write_text(_CFG.format(rows=job["rows"], cols=job["cols"], df=job["df"]))
            fields = [job["layer"][k] for k in ("ifmap_h", "ifmap_w", "filt_h", "filt_w", "channels", "filters", "stride")]
            Path(d, "t.csv").write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                                        "L0," + ",".join(map(str, fields)) + ",\n")
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                sim = scalesim(save_disk_space=True, verbose=False, config=f"{d}/c.cfg", topology=f"{d}/t.csv", layout=f"{d}/t.csv")
                sim.run_scale(top_path=d)
            report = glob.glob(f"{d}/**/COMPUTE_REPORT.csv", recursive=True)[0]
            row = Path(report).read_text().splitlines()[1].split(",")
            print(json.dumps({**job, "total": int(row[2]), "stall": int(row[3]), "sim_s": time.perf_counter() - t0}), flush=True)


# --------------------------------------------------------------------------- driver


def ensure_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PINS], check=True)
    return py


def _write_atomic(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _start_workers(py: Path, jobs: list[dict], n: int):
    """``n`` long-lived worker processes that each take the next job from one shared queue
    when done with their last (so no worker idles while another has a backlog). Returns the
    processes and an iterator over the results, in the order they finish."""
    import queue
    import threading

    todo: queue.Queue = queue.Queue()
    for j in jobs:
        todo.put({k: j[k] for k in ("df", "rows", "cols", "key", "layer")})
    done: queue.Queue = queue.Queue()

    def serve(proc: subprocess.Popen) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    break
                proc.stdin.write(json.dumps(job) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
                if not line:
                    break
                done.put(json.loads(line))
        except (BrokenPipeError, ValueError):  # the worker was stopped (--budget-s)
            pass
        finally:
            done.put(None)

    procs = [subprocess.Popen([str(py), __file__, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=tempfile.gettempdir()) for _ in range(min(n, max(1, len(jobs))))]
    for proc in procs:
        threading.Thread(target=serve, args=(proc,), daemon=True).start()

    def results():
        live = len(procs)
        while live:
            res = done.get()
            if res is None:
                live -= 1
            else:
                yield res

    return procs, results()


def plan(nets, dataflows, arrays, sample: int | None) -> tuple[dict, list[dict]]:
    layers = {net: onnx_layers(net) for net in nets}
    uniq: dict[str, dict] = {}
    for ls in layers.values():
        for layer in ls:
            uniq.setdefault(shape_key(layer), layer)
    jobs = []
    for df in dataflows:
        for a in arrays:
            for key, layer in uniq.items():
                est = closed_form(layer, df, a, a)
                jobs.append(dict(df=df, rows=a, cols=a, key=key, layer={k: layer[k] for k in layer if k not in ("name", "repeat")}, est=est))
    jobs.sort(key=lambda j: j["est"])
    if sample:
        step = max(1, len(jobs) // sample)
        jobs = jobs[::step][:sample]
    return layers, jobs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--dataflows", default=",".join(DATAFLOWS))
    ap.add_argument("--arrays", default=",".join(map(str, ARRAYS)))
    ap.add_argument("--all", action="store_true", help="every unique layer, not a sample")
    ap.add_argument("--sample", type=int, default=24, help="number of (layer, config) runs without --all")
    ap.add_argument("--max-cycles", type=int, default=0, help="skip runs whose closed form exceeds this (0: no limit)")
    ap.add_argument("--budget-s", type=float, default=0, help="stop after this many seconds (0: no limit)")
    ap.add_argument("--record", type=Path, help="merge the results into this JSON table (e.g. tests/backends/data/scalesim_compute_cycles.json)")
    ap.add_argument("--workers", type=int, default=1, help="SCALE-Sim worker processes run side by side (one per core)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    if args.worker:
        worker()
        return 0

    nets = args.nets.split(",")
    layers, jobs = plan(nets, args.dataflows.split(","), [int(a) for a in args.arrays.split(",")], None if args.all else args.sample)
    if args.max_cycles:
        jobs = [j for j in jobs if j["est"] <= args.max_cycles]
    table = json.loads(args.record.read_text()) if args.record and args.record.exists() else {}
    table.setdefault("scalesim", PINS[0])
    table.setdefault("note", "SCALE-Sim 3.0.0 COMPUTE_REPORT 'Total Cycles' and 'Stall Cycles' per unique layer; written by benchmarks/crosscheck_scalesim.py")
    table["layers"] = {**table.get("layers", {}), **{net: layers[net] for net in nets}}
    runs = table.setdefault("runs", {})
    jobs = [j for j in jobs if f"{j['df']}{j['rows']}x{j['cols']}|{j['key']}" not in runs] if args.record else jobs

    py = ensure_venv()
    procs, results = _start_workers(py, jobs, args.workers)
    t0 = time.perf_counter()
    rows, mismatches = [], 0
    if not args.json:
        print(f"{'config':<10} {'layer (ih,iw,fh,fw,c,k,s)':<34} {'scalesim':>10} {'stall':>6} {'symbiote':>10} {'diff':>5} {'sim_s':>6}")
    try:
        for res in results:
            ours = closed_form(res["layer"], res["df"], res["rows"], res["cols"])
            diff = ours - (res["total"] - res["stall"])
            mismatches += diff != 1
            cfg = f"{res['df']}{res['rows']}x{res['cols']}"
            rows.append(dict(config=cfg, layer=res["key"], scalesim=res["total"] - res["stall"], symbiote=ours, diff=diff, sim_s=round(res["sim_s"], 3)))
            if not args.json:
                print(f"{cfg:<10} {res['key']:<34} {res['total']:>10} {res['stall']:>6} {ours:>10} {diff:>5} {res['sim_s']:>6.2f}", flush=True)
            if args.record:
                runs[f"{cfg}|{res['key']}"] = {"total": res["total"], "stall": res["stall"]}
                _write_atomic(args.record, table)
            if args.budget_s and time.perf_counter() - t0 > args.budget_s:
                break
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    summary = dict(runs=len(rows), identity_holds=mismatches == 0, mismatches=mismatches,
                   formula="symbiote = SCALE-Sim (total - stall) + 1", seconds=round(time.perf_counter() - t0, 1))
    if args.json:
        print(json.dumps({**summary, "rows": rows}))
    else:
        print(f"\n{len(rows)} runs, {mismatches} mismatches of the identity symbiote = scalesim(total - stall) + 1, {summary['seconds']} s")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
