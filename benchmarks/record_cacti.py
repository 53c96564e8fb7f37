"""Record SRAM energy, leakage and area from CACTI 7 into ``backends/data/cacti_sram.json``.

CACTI (N. Muralimanohar, R. Balasubramonian, N. Jouppi, "CACTI 6.0", HPL-2009-85; CACTI 7:
R. Balasubramonian et al., "CACTI 7: New Tools for Interconnect Exploration in Innovative
Off-Chip Memories", ACM TACO 14(2), 2017) comes here as the Python package
``hwcomponents-cacti`` (the Accelergy/Timeloop CACTI plug-in, which bundles the CACTI 7
sources), run in its own virtual environment: it needs Python >= 3.12 and is no dependency
of symbiote. The cost models read the recorded table (:mod:`symbiote.backends.memories`);
neither they nor the tests need CACTI.

Setup (once; the bundled ``cacti`` binary is linked against a newer glibc than Debian 12's,
so it is rebuilt from the bundled sources, which takes under a minute)::

    python3.12 -m venv /work/venvs/cacti
    /work/venvs/cacti/bin/pip install hwcomponents==1.0.114 hwcomponents-cacti==1.0.40
    cd /work/venvs/cacti/lib/python3.12/site-packages/hwcomponents_cacti/cacti && rm -rf obj_dbg obj_opt cacti && make

``--setup`` does these steps (``--base-python`` names the Python >= 3.12 to build it with).

Usage (run with any Python: without ``hwcomponents_cacti`` importable the script re-runs
itself with ``--python``, default ``$SYMBIOTE_CACTI_PYTHON`` or ``/work/venvs/cacti/bin/python``)::

    python benchmarks/record_cacti.py --record backends/data/cacti_sram.json --workers 2
    python benchmarks/record_cacti.py --json      # a summary of the recorded table

What is recorded, and why (every row one CACTI run, ``-cache type "ram"``, one read/write
port, the plug-in's default configuration ``default_cfg.cfg`` otherwise: ITRS low-standby-
power (``itrs-lstp``) cells and periphery, 300 K, "fast" access mode, CACTI's optimizer
weighted to leakage within 20% of the best delay and 10% of the best dynamic energy):

* capacities: every power of two from 8 KB to 256 MiB, the 1.5x points between them
  (12 KB, 24 KB, ... 24 MiB = TPU v1's unified buffer) and 108 KB (Eyeriss's global
  buffer). The systolic template's SRAM knobs span 8 KB ... 16 MiB; the roofline's cache
  goes further, hence the sizes up to 256 MiB;
* access width (CACTI's block size and output bus width): 64, 128, 256, 512 and 1024
  bits. The systolic array reads one element per array row (or column) per cycle, i.e.
  ``rows x bits`` wide: 256 bits is the default 32-row int8 array, TPU v1's 256-row int8
  array reads 2048 bits per cycle from several such macros side by side. The cost model
  uses the 256-bit rows (:data:`symbiote.backends.memories.WIDTH_BITS`);
* banking: one UCA bank, inside which CACTI chooses the partitioning into sub-arrays and
  mats (``Ndwl``, ``Ndbl``, ``Nspd``, ``Ndcm``, recorded); and, at 256 bits, 4 and 16
  banks stated (``-UCA bank``; the energies are per access, the leakage of all banks);
* technology: 90, 65, 45, 32 and 22 nm, the nodes CACTI 7 ships parameters for
  (``tech_params/*.dat``; its 16 nm file is disabled in ``parameter.cc``), and 28 nm,
  which CACTI itself interpolates between 32 and 22 nm;
* cell type: ``itrs-lstp`` (the plug-in's default) for everything; at 256 bits and one
  bank also ``itrs-lop`` (low operating power) and ``itrs-hp`` (high performance): the
  leakage of the three differs by four orders of magnitude, the dynamic energy by ~2x;
* a register-file-sized section (``rf``): 0.25 ... 4 KB at 32 and 64 bits.

Energies are CACTI's "Dynamic read/write energy" per access (pJ), also per bit (divided by
the width); leakage is "Standby leakage per bank" times the banks (mW); area is the macro's
(mm^2). A run CACTI cannot organize is left out (listed under ``failed``).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "backends" / "data" / "cacti_sram.json"
DEFAULT_PYTHON = os.environ.get("SYMBIOTE_CACTI_PYTHON", "/work/venvs/cacti/bin/python")
PINS = ["hwcomponents==1.0.114", "hwcomponents-cacti==1.0.40"]

NODES_NM = (90, 65, 45, 32, 28, 22)
POW2_KB = tuple(8 * 2**i for i in range(16))                         # 8 KB ... 256 MiB
MID_KB = tuple(12 * 2**i for i in range(12))                         # 12 KB ... 24 MiB
CAPACITIES_KB = tuple(sorted({*POW2_KB, *MID_KB, 108}))
WIDTHS = (64, 128, 256, 512, 1024)
MODEL_WIDTH = 256
BANKS = (4, 16)
CELLS = ("itrs-lstp", "itrs-lop", "itrs-hp")
RF_KB = (0.25, 0.5, 1, 2, 4)
RF_WIDTHS = (32, 64)
COLUMNS = ("section", "cell", "width_bits", "banks", "node_nm", "capacity_kb", "read_pj", "write_pj",
           "read_pj_per_bit", "write_pj_per_bit", "leakage_mw", "area_mm2", "access_ns", "cycle_ns",
           "ndwl", "ndbl", "nspd", "ndcm")


def jobs() -> list[dict]:
    out = []
    for node in NODES_NM:
        for kb in CAPACITIES_KB:
            for w in WIDTHS:
                out.append(dict(section="sram", cell=CELLS[0], width_bits=w, banks=1, node_nm=node, capacity_kb=kb))
            for cell in CELLS[1:]:
                out.append(dict(section="sram", cell=cell, width_bits=MODEL_WIDTH, banks=1, node_nm=node, capacity_kb=kb))
            for b in BANKS:
                out.append(dict(section="sram", cell=CELLS[0], width_bits=MODEL_WIDTH, banks=b, node_nm=node, capacity_kb=kb))
        for kb in RF_KB:
            for w in RF_WIDTHS:
                out.append(dict(section="rf", cell=CELLS[0], width_bits=w, banks=1, node_nm=node, capacity_kb=kb))
    out.sort(key=lambda j: j["capacity_kb"])  # the cheap runs first: an interrupted run keeps them
    return out


# --------------------------------------------------------------------------- runs in the CACTI venv


def _pkg_dir() -> Path:
    import hwcomponents_cacti

    return Path(hwcomponents_cacti.__file__).resolve().parent


def cacti_config(job: dict) -> str:
    """The plug-in's default configuration with this job's attributes appended, as its
    ``_Memory._call_cacti`` writes it (only the cell type is changed here)."""
    cfg = (_pkg_dir() / "default_cfg.cfg").read_text().replace('"itrs-lstp', f'"{job["cell"]}')
    size = int(round(job["capacity_kb"] * 1024))
    block = job["width_bits"] // 8
    return cfg + ("\n############## User-Specified Hardware Attributes ##############\n"
                  f"-size (bytes) {size}\n-read-write port  1\n-block size (bytes) {block}\n"
                  f"-technology (u) {job['node_nm'] / 1000}\n-output/input bus width  {block * 8}\n"
                  f"-UCA bank {job['banks']}\n-cache type \"ram\"\n-tag size (b) 0\n-associativity 1\n")


def run_cacti(job: dict) -> dict | None:
    """One CACTI run; the job with its results, or None when CACTI finds no organization."""
    cacti_dir = _pkg_dir() / "cacti"
    with tempfile.TemporaryDirectory() as d:
        inp = Path(d, "in.cfg")
        inp.write_text(cacti_config(job))
        r = subprocess.run(["./cacti", "-infile", str(inp)], cwd=cacti_dir, capture_output=True, text=True)
        out = Path(str(inp) + ".out")
        if r.returncode != 0 or not out.exists():
            return None
        row = list(csv.DictReader(io.StringIO(out.read_text())))[-1]
    row = {k.strip(): v.strip() for k, v in row.items() if k}
    w = job["width_bits"]
    rd, wr = float(row["Dynamic read energy (nJ)"]) * 1e3, float(row["Dynamic write energy (nJ)"]) * 1e3
    return {**job, "read_pj": rd, "write_pj": wr, "read_pj_per_bit": rd / w, "write_pj_per_bit": wr / w,
            "leakage_mw": float(row["Standby leakage per bank(mW)"]) * job["banks"], "area_mm2": float(row["Area (mm2)"]),
            "access_ns": float(row["Access time (ns)"]), "cycle_ns": float(row["Random cycle time (ns)"]),
            **{k.lower(): int(float(row[k])) for k in ("Ndwl", "Ndbl", "Nspd", "Ndcm")}}


def self_check() -> None:
    """This script's CACTI call gives what the plug-in's own ``SRAM`` model gives."""
    from hwcomponents_cacti import SRAM

    job = dict(section="sram", cell="itrs-lstp", width_bits=256, banks=1, node_nm=45, capacity_kb=64)
    ours = run_cacti(job)
    ref = SRAM(tech_node=45e-9, width=256, size=64 * 8192)
    assert ours is not None
    for a, b in ((ours["read_pj"], ref.read_energy * 1e12), (ours["write_pj"], ref.write_energy * 1e12),
                 (ours["leakage_mw"], ref.cacti_leak_power * 1e3), (ours["area_mm2"], ref.cacti_area * 1e6)):
        assert abs(a - b) <= 1e-6 * abs(b), (ours, a, b)


def versions() -> dict:
    from importlib.metadata import version

    h = (_pkg_dir() / "cacti" / "version_cacti.h").read_text()
    fields = {}
    for line in h.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] == "#define":
            fields[parts[1]] = parts[2].split("/*")[0].strip().strip('"')
    cacti = f"{fields.get('VER_MAJOR_CACTI')}.{fields.get('VER_MINOR_CACTI')} ({fields.get('VER_COMMENT_CACTI')}, {fields.get('VER_UPDATE_CACTI')})"
    return {"cacti": cacti, "hwcomponents": version("hwcomponents"), "hwcomponents-cacti": version("hwcomponents-cacti"),
            "python": sys.version.split()[0]}


def record(path: Path, workers: int) -> dict:
    from multiprocessing import Pool

    self_check()
    todo = jobs()
    rows, failed = [], []
    with Pool(workers) as pool:
        for job, res in zip(todo, pool.imap(run_cacti, todo, chunksize=1), strict=True):
            (rows if res else failed).append(res or job)
    rows.sort(key=lambda r: (r["section"], r["cell"], r["width_bits"], r["banks"], r["node_nm"], r["capacity_kb"]))
    table = {
        "meta": {
            **versions(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ"),
            "command": "python benchmarks/record_cacti.py --record backends/data/cacti_sram.json --workers " + str(workers),
            "config": "hwcomponents_cacti default_cfg.cfg (cell type changed per row), -cache type \"ram\", 1 read/write port",
            "note": "see benchmarks/record_cacti.py's doc: energies per access (pJ) and per bit, leakage of all banks (mW), "
                    "macro area (mm^2); 28 nm is CACTI's own interpolation between its 32 and 22 nm parameters",
            "model_width_bits": MODEL_WIDTH,
        },
        "columns": list(COLUMNS),
        "rows": [[r[c] for c in COLUMNS] for r in rows],
        "failed": [[j[c] for c in COLUMNS[:6]] for j in failed],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(dumps(table))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return table


def dumps(table: dict) -> str:
    """One row per line (diffable), floats to 6 significant digits."""
    def num(x):
        return float(f"{x:.6g}") if isinstance(x, float) else x

    head = {k: v for k, v in table.items() if k not in ("rows", "failed")}
    lines = ",\n".join("  " + json.dumps([num(x) for x in r]) for r in table["rows"])
    failed = ",\n".join("  " + json.dumps(r) for r in table["failed"])
    body = json.dumps(head, indent=1, sort_keys=True)[:-2]
    return f'{body},\n "rows": [\n{lines}\n ],\n "failed": [\n{failed}\n ]\n}}\n'


# --------------------------------------------------------------------------- driver (any Python)


def summary(table: dict) -> dict:
    cols = table["columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in table["rows"]]

    def pick(node, kb, cell="itrs-lstp", w=MODEL_WIDTH, banks=1):
        (r,) = [r for r in rows if r["section"] == "sram" and r["cell"] == cell and r["width_bits"] == w
                and r["banks"] == banks and r["node_nm"] == node and r["capacity_kb"] == kb]
        return {k: r[k] for k in ("read_pj_per_bit", "write_pj_per_bit", "leakage_mw", "area_mm2")}

    return {"meta": table["meta"], "rows": len(rows), "failed": len(table["failed"]),
            "at_256_bits_lstp": {f"{kb} KB @ {node} nm": pick(node, kb) for node, kb in
                                 ((45, 8), (45, 1024), (45, 16384), (65, 108), (28, 24576), (22, 16384))},
            "cells_16MiB_45nm": {c: pick(45, 16384, cell=c) for c in CELLS}}


def setup(base_python: str, venv: Path) -> None:
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", *PINS], check=True)
    pkg = subprocess.run([str(py), "-c", "import hwcomponents_cacti, os; print(os.path.dirname(hwcomponents_cacti.__file__))"],
                         check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run("rm -rf obj_dbg obj_opt cacti && make", shell=True, cwd=Path(pkg) / "cacti", check=True,
                   stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", type=Path, help=f"run CACTI and write the table here (e.g. {TABLE.relative_to(ROOT)})")
    ap.add_argument("--workers", type=int, default=1, help="CACTI processes side by side")
    ap.add_argument("--json", action="store_true", help="print a summary of the table as one JSON object")
    ap.add_argument("--python", default=DEFAULT_PYTHON, help="the Python of the CACTI venv (when this one lacks hwcomponents_cacti)")
    ap.add_argument("--setup", type=Path, metavar="VENV", help="create the CACTI venv here, install the pins, rebuild CACTI")
    ap.add_argument("--base-python", default="python3.12", help="the Python >= 3.12 --setup builds the venv with")
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])
    if args.setup:
        setup(args.base_python, args.setup)
        return 0
    if args.record:
        import importlib.util

        if importlib.util.find_spec("hwcomponents_cacti") is None:  # not this venv: the CACTI one runs it
            return subprocess.run([args.python, __file__, *(argv if argv is not None else sys.argv[1:])]).returncode
        table = record(args.record, args.workers)
    else:
        table = json.loads(TABLE.read_text())
    s = summary(table)
    if args.json:
        print(json.dumps(s))
    else:
        print(json.dumps(s, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
