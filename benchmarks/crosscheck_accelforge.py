"""Cross-check the systolic template's access counts and energy against AccelForge.

AccelForge (the successor of Timeloop and Accelergy; PyPI ``accelforge``, Python 3.12+)
evaluates a GIVEN mapping of a workload on an architecture (``Spec.from_yaml(arch,
workload, mapping).evaluate_mapping()``, about a second; its mapping search is never run
here). This script describes symbiote's systolic array to it (``benchmarks/accelforge/``:
DRAM -> ifmap, filter and ofmap SRAMs -> a rows x cols PE array with a weight register per
PE -> MAC), with symbiote's own per-action energies (pJ per MAC, pJ per bit of each SRAM
and of DRAM, from ``model.breakdown``), and gives it symbiote's weight-stationary mapping
of one GEMM of each conv / GEMM row: im2col, ``m = T = N*P*Q`` streamed, ``k = Sr =
C/g*R*S`` over the rows, ``n = Sc = K/g`` over the columns (a grouped layer: one group's
GEMM, the row has ``groups * repeat`` of them); the T tiling, the fold order (SCALE-Sim's
``for column fold: for row fold:``, or ``for block: for row fold: for column fold in
block``) and which operand is kept or refetched as the model chose them. It compares, row
by row and level by level, AccelForge's counts with ``symbiote.backends.systolic.model.
breakdown`` (elements for SRAM and MAC, bytes for DRAM; layer totals), and the energy.

Rows: every conv and GEMM/MatMul row of zoo resnet18, mobilenet_v2 (depthwise layers as
per-group GEMMs, ``group_mapping = per_group``) and bert, plus the BERT-base FFN GEMMs
(128x768x3072, 128x3072x768), deduplicated, on two designs (:data:`DESIGNS`): the default
(32x32, 256/256/128 KB, int8) with the model's choice of T tiling, and the same with
SCALE-Sim's fold order only (``tiling = scalesim``: partial sums that outgrow the ofmap
SRAM spill). Checked by hand first: a 4x8x8 GEMM on a 4x4 array (ifmap SRAM reads
T*Sr*cf = 64, filter reads 64, ofmap writes T*Sc*rf = 64, psum reads 32, DRAM once each) and
uneven ones (4x6x5 on 4x4; 7x147x64 on 32x32, T tiled 4+3).

AccelForge runs in its own virtual environment (it needs Python 3.12, installs a top-level
``tests`` package and pulls a GPLv2 dependency, so it stays out of symbiote's dependencies):

    python3.12 -m venv /path/to/af-venv && /path/to/af-venv/bin/pip install accelforge
    export ACCELFORGE_PYTHON=/path/to/af-venv/bin/python     # or --python

Usage::

    python benchmarks/crosscheck_accelforge.py                 # the table: the record vs the current model
    python benchmarks/crosscheck_accelforge.py --json          # its summary, one JSON object
    python benchmarks/crosscheck_accelforge.py --live --json   # run AccelForge now (~1 min)
    python benchmarks/crosscheck_accelforge.py --record        # run it and write the record

The record (``tests/backends/data/accelforge_crosscheck.json``: versions, date, designs,
the mapping parameters AccelForge got, its counts and per-level energies per row) is what
``tests/backends/test_accelforge_crosscheck.py`` reads, without AccelForge: it recomputes
symbiote's side from the current model, so a change of the model's counts, or of the
mapping it chooses, fails there. ``--json`` without ``--live`` does the same comparison.

**Like with like** -- where the two tools define an access differently, the comparison is
made on the common part, from AccelForge's own counts (elements = bits / bits per value):

* ofmap SRAM: AccelForge counts a partial-sum read for every read-modify-write after the
  first (``T*Sc*(row_folds-1)``, as symbiote) AND the read that drains each finished output
  (or spilled partial sum) to DRAM, and a write for each spilled partial sum read back;
  symbiote charges neither. Compared: AccelForge's reads minus its DRAM output writes, its
  writes minus its DRAM output reads.
* SRAM fills: AccelForge writes every DRAM -> SRAM transfer into the SRAM (ifmap and filter
  SRAM writes); symbiote charges only the DRAM side. Not a compared count; the like-for-like
  energy leaves fills and drains out (``accelforge_pj``), the raw one keeps them
  (``accelforge_raw_pj``).
* the ifmap in DRAM: symbiote's DRAM holds the raw ifmap (``in_elems``), the im2col
  expansion happens on chip (the ifmap SRAM is read ``T*Sr`` times per column fold, as in
  SCALE-Sim); AccelForge's GEMM input IS the im2col matrix (``T*Sr`` values per GEMM). Its
  DRAM level stores it at ``act_bits * (in_elems/groups) / (T*Sr)`` bits per im2col value,
  i.e. ``act_bits`` per raw value, so its DRAM ifmap bits are the raw tensor's (x refetches).
* partial sums: on chip at the accumulator width (the ofmap SRAM's ``bits_per_value``);
  outputs leave at the activation width. Where partial sums spill, AccelForge's DRAM keeps
  its one width per tensor at the accumulator width (outputs included: those rows' DRAM
  energy is not compared). ``dram_psum = 2 x`` the spilled values read back x acc bits / 8.
* not modelled on either side: PE-to-PE forwarding (symbiote's ``energy_noc_pj``: AccelForge
  is given no network) and leakage; the PE weight register costs 0 on both.
* energy: AccelForge's energy of a level is linear in that level's single per-action
  energy, so the comparison with the current model rescales the recorded energy by the
  ratio of the current per-action energy to the recorded one (a new technology table does
  not need a new AccelForge run; a new count does).

**Same mapping** -- a count is compared where the mapping AccelForge got is symbiote's. Not
compared (``same_mapping`` false, with the reason in ``not_compared_because``):

* :data:`FRACTIONAL`, :data:`SPILL`: symbiote's model keeps "the part that fits" an SRAM
  half resident and refetches only the overflow fraction (``overflow(x, cap)`` in
  tiling.py), or spills only that fraction of the partial sums; no loop nest does that.
  AccelForge gets the nearest loop nest (the operand refetched whole per block of column
  folds / per T tile, every partial sum spilled every row fold), an upper bound.
* :data:`UNEVEN`: a block of column folds that does not divide the column folds (only
  where the block matters, i.e. the ifmap is refetched per block): AccelForge's analytical
  model gives every block the full ``block`` column folds.

SRAM and MAC counts do not depend on where the SRAMs sit, so they are compared everywhere
else. The energy criterion is taken on the rows mapped alike at every level; the summary
also gives it over all rows (there the nearest loop nests' extra traffic shows).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "accelforge"
RECORD = ROOT / "tests" / "backends" / "data" / "accelforge_crosscheck.json"
NETS = ("resnet18", "mobilenet_v2", "bert")
#: single GEMMs (M, K, N) besides the zoo networks: BERT-base's FFN (seq 128, hidden 768,
#: intermediate 3072), whose ifmap does not fit half the default ifmap SRAM in FFN-down
GEMMS = {"bert_base_ffn_up": (128, 768, 3072), "bert_base_ffn_down": (128, 3072, 768)}
#: the designs: the template's default (32x32 ws, 256/256/128 KB, int8) with SCALE-Sim's
#: per-group GEMMs for grouped layers, with the model's own choice of T tiling and fold
#: blocks ("default") and with SCALE-Sim's fold order only ("scalesim_order": no T tiling,
#: partial sums that outgrow the ofmap SRAM spill)
DESIGNS = {
    "default": {"group_mapping": "per_group"},
    "scalesim_order": {"group_mapping": "per_group", "tiling": "scalesim"},
}
#: compared counts (layer totals: elements, or bytes for DRAM) and the level each belongs to
COUNTS = {
    "macs": "MAC",
    "ifmap_sram_reads": "IfmapSRAM",
    "filter_sram_reads": "FilterSRAM",
    "ofmap_sram_writes": "OfmapSRAM",
    "ofmap_sram_reads": "OfmapSRAM",
    "dram_ifmap_bytes": "DRAM",
    "dram_filter_bytes": "DRAM",
    "dram_ofmap_bytes": "DRAM",
    "dram_psum_bytes": "DRAM",
}
#: why a count is not compared (``same_mapping`` false), recorded with the row
FRACTIONAL = ("symbiote keeps the part of the operand that fits its SRAM half resident and refetches the "
              "rest (overflow fraction); no loop nest does that: AccelForge refetches the whole operand "
              "(the nearest loop nest), an upper bound of symbiote's figure")
SPILL = ("symbiote spills the overflow fraction of one column fold's partial sums; AccelForge spills all "
         "of them every row fold (the nearest loop nest), an upper bound of symbiote's figure")
UNEVEN = ("the block of column folds does not divide the column folds: AccelForge's analytical model "
          "charges the partial last block the full block (ceil(cf/block)*block column folds), symbiote "
          "the column folds there are (cf); the recorded figures differ by exactly that ratio")
#: the per-action energy of each level (``breakdown`` key; the AccelForge arch's parameter)
ENERGY_OF = {"MAC": "mac_pj", "IfmapSRAM": "ifmap_pj_per_bit", "FilterSRAM": "filter_pj_per_bit",
             "OfmapSRAM": "ofmap_pj_per_bit", "DRAM": "dram_pj_per_bit"}
LEVELS = ("MAC", "IfmapSRAM", "FilterSRAM", "OfmapSRAM", "DRAM")
REL_TOL = 1e-5   # symbiote computes in f32


# --------------------------------------------------------------------------- worker (AccelForge's venv)


def worker() -> None:
    """Read jobs (JSON lines) on stdin, evaluate each mapping, print one JSON line per job."""
    import contextlib
    import io

    import accelforge as af

    for line in sys.stdin:
        job = json.loads(line)
        with contextlib.redirect_stdout(io.StringIO()):  # AccelForge's progress output
            spec = af.Spec.from_yaml(str(TEMPLATES / "systolic.arch.yaml"), str(TEMPLATES / "gemm.workload.yaml"),
                                     str(TEMPLATES / "ws.mapping.yaml"), jinja_parse_data=job["params"])
            res = spec.evaluate_mapping()
        row = res.data.iloc[0]
        actions, energy = {}, {}
        for col in res.data.columns:
            parts = col.split("<SEP>")
            if len(parts) == 5 and parts[1] == "action":
                actions[f"{parts[2]}.{parts[3]}.{parts[4]}"] = float(row[col])
            elif len(parts) == 5 and parts[1] == "energy":
                energy[f"{parts[2]}.{parts[3]}.{parts[4]}"] = float(row[col])
        print(json.dumps({"key": job["key"], "actions": actions, "energy": energy,
                          "energy_per_component": {k: float(v) for k, v in res.energy(per_component=True).items()},
                          }), flush=True)


def run_accelforge(python: str, jobs: list[dict]) -> dict[str, dict]:
    proc = subprocess.run([python, __file__, "--worker"], input="".join(json.dumps(j) + "\n" for j in jobs),
                          capture_output=True, text=True, cwd=tempfile.gettempdir(), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"AccelForge worker failed:\n{proc.stderr[-4000:]}")
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            out[r["key"]] = r
    return out


def accelforge_version(python: str) -> str:
    return subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('accelforge'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


# --------------------------------------------------------------------------- symbiote side


def design(name: str = "default"):
    from symbiote.backends.manager import get_template

    t = get_template("systolic")
    return t, t.space.default() | DESIGNS[name]


def breakdown(hw, wl) -> tuple[dict, object]:
    """symbiote's per-row counts and per-action energies (``model.breakdown``'s dict), and the
    model's own MAC + SRAM + DRAM energy per row, as numpy. One jitted evaluation per workload
    (the designs share it); eagerly, where the model offers no ``detail`` hook."""
    import inspect

    import numpy as np

    from symbiote.backends.systolic import model

    if "detail" not in inspect.signature(model.systolic_metrics).parameters:  # pragma: no cover
        met = model.cost(hw, wl)
        energy = np.asarray(met.energy_mac_pj) + np.asarray(met.energy_sram_pj) + np.asarray(met.energy_dram_pj)
        return {k: np.asarray(v, np.float64) for k, v in model.breakdown(hw, wl).items()}, energy
    detail, energy = _jitted(wl)(hw)
    return {k: np.asarray(v, np.float64) for k, v in detail.items()}, np.asarray(energy, np.float64)


_JITTED: dict[int, tuple] = {}


def _jitted(wl):
    """``model.breakdown`` (the same ``detail`` hook it reads) with the model's energies, jitted
    (one per workload object: workloads are not hashable)."""
    import jax

    from symbiote.backends.systolic import model

    if id(wl) in _JITTED and _JITTED[id(wl)][0] is wl:
        return _JITTED[id(wl)][1]

    def run(hw):
        detail: dict = {}
        met = model.systolic_metrics(hw, wl, hw["dataflow"], detail=detail)
        return detail, met.energy_mac_pj + met.energy_sram_pj + met.energy_dram_pj

    _JITTED[id(wl)] = (wl, jax.jit(run))
    return _JITTED[id(wl)][1]


@functools.cache
def _lowered(net: str):
    from symbiote.frontend import load
    from symbiote.ir.lower import lower

    return lower(load(gemm_model(*GEMMS[net]) if net in GEMMS else f"zoo:{net}"))


def gemm_model(m: int, k: int, n: int):
    """One [m, k] @ [k, n] MatMul as an ONNX model (a GEMM layer of its own)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")], "gemm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.zeros((k, n), np.float32), "w")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def layer_rows(nets=NETS + tuple(GEMMS), designs=tuple(DESIGNS)) -> list[dict]:
    """The MAC rows of the networks on the design, with symbiote's counts, deduplicated by
    everything the comparison depends on; each keeps the names of the layers it stands for."""
    import numpy as np

    from symbiote.ir.workload import MAC

    rows: dict[str, dict] = {}
    for dname, net in ((d, n) for d in designs for n in nets):
        t, knobs = design(dname)
        hw = t.space.encode(knobs)
        wl = _lowered(net)
        cols = wl.to_numpy()
        bd, e_model = breakdown(hw, wl)
        for i in np.flatnonzero(np.asarray(wl.kinds) == MAC):
            g = float(cols["groups"][i])
            gemms = g * float(cols["repeat"][i])
            row = dict(
                design=dname, T=int(cols["n"][i] * cols["p"][i] * cols["q"][i]),
                Sr=int(round(cols["c"][i] / g * cols["r"][i] * cols["s"][i])),
                Sc=int(round(cols["k"][i] / g)), gemms=int(gemms),
                in_elems=float(cols["in_elems"][i]), weight_elems=float(cols["weight_elems"][i]),
                out_elems=float(cols["out_elems"][i]),
                input_on_chip=float(cols["input_on_chip"][i]), output_on_chip=float(cols["output_on_chip"][i]),
                t_tiles=int(round(bd["t_tiles"][i])), order=int(round(bd["order"][i])), block=int(round(bd["block"][i])),
                symbiote={k: float(bd[k][i]) for k in COUNTS},
                energies={k: float(bd[k][i]) for k in ("mac_pj", "ifmap_pj_per_bit", "filter_pj_per_bit", "ofmap_pj_per_bit",
                                                          "dram_pj_per_bit", "weight_bits", "act_bits", "acc_bits")},
                model_energy_pj=float(e_model[i]),
            )
            key = json.dumps({k: row[k] for k in ("design", "T", "Sr", "Sc", "gemms", "in_elems", "weight_elems", "out_elems",
                                                  "input_on_chip", "output_on_chip", "t_tiles", "order", "block")}, sort_keys=True)
            if key in rows:
                rows[key]["layers"].append(f"{dname}|{net}:{wl.names[i]}")
            else:
                rows[key] = {**row, "key": key, "layers": [f"{dname}|{net}:{wl.names[i]}"]}
    return list(rows.values())


def placement(row: dict) -> dict:
    """Where the SRAMs sit in the AccelForge mapping (ws), and on which DRAM counts the
    mapping is the same as symbiote's (module doc)."""
    _, hw = design(row["design"])
    e = row["energies"]
    ab, wb, accb = e["act_bits"], e["weight_bits"], e["acc_bits"]
    rows, cols = int(hw["rows"]), int(hw["cols"])
    a_cap, b_cap, o_cap = (float(hw[k]) * 512.0 for k in ("ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb"))
    nt, T, Sr, Sc, g = row["t_tiles"], row["T"], row["Sr"], row["Sc"], row["gemms"]
    rf, cf = -(-Sr // rows), -(-Sc // cols)
    tt = -(-T // nt)
    a_g = row["in_elems"] * ab / 8.0 / g * (1.0 - row["input_on_chip"])
    b_g = row["weight_elems"] * wb / 8.0 / g
    pf = tt * min(Sc, cols) * accb / 8.0
    ifmap_same = cf == 1 or a_g / nt <= a_cap
    # the block of column folds that share a row fold's ifmap slice only decides the ifmap's
    # DRAM refetches: where the ifmap tile stays whole in its SRAM, no count depends on it.
    # AccelForge's model of an uneven inner loop (a partial last block) charges every block
    # its full `block` column folds, so an uneven block is given as 1 there (same counts)
    block = max(1, min(row["block"], cf))
    if ifmap_same and cf % block:
        block = 1
    filter_same = nt == 1 or b_g <= b_cap
    psum_same = rf == 1 or pf <= o_cap
    return dict(
        params=dict(T=T, Sr=Sr, Sc=Sc, rows=rows, cols=cols, t_tiles=nt, t_tile=tt, block=block,
                    act_bits=ab, weight_bits=wb, acc_bits=accb,
                    dram_input_bits=ab * (row["in_elems"] / g) / (T * Sr), dram_output_bits=ab if psum_same else accb,
                    mac_pj=e["mac_pj"], ifmap_pj_per_bit=e["ifmap_pj_per_bit"], filter_pj_per_bit=e["filter_pj_per_bit"],
                    ofmap_pj_per_bit=e["ofmap_pj_per_bit"], dram_pj_per_bit=e["dram_pj_per_bit"],
                    filter_at="top" if filter_same else "tile",
                    ifmap_at="tile" if ifmap_same else "col_fold",
                    ofmap_at="tile" if psum_same else "row_fold"),
        same={"dram_ifmap_bytes": ifmap_same, "dram_filter_bytes": filter_same,
              "dram_ofmap_bytes": True, "dram_psum_bytes": psum_same,
              "ifmap_sram_reads": cf % block == 0},
        why={k: v for k, v in (
            ("dram_ifmap_bytes", None if ifmap_same else FRACTIONAL),
            ("dram_filter_bytes", None if filter_same else FRACTIONAL),
            ("dram_psum_bytes", None if psum_same else SPILL),
            ("ifmap_sram_reads", None if cf % block == 0 else UNEVEN)) if v},
    )


def accelforge_counts(res: dict, p: dict, gemms: int) -> tuple[dict, dict, dict]:
    """Layer totals from one AccelForge GEMM: the compared counts, the like-for-like energy per
    level and the raw one (module doc)."""
    a = res["actions"]
    ab, wb, accb = p["act_bits"], p["weight_bits"], p["acc_bits"]
    ob = p["dram_output_bits"]
    o_up = a["DRAM.O.write"] / ob              # values the ofmap SRAM sends to DRAM (drains, spills)
    o_down = a["DRAM.O.read"] / ob             # spilled partial sums read back
    counts = {
        "macs": a["MAC.None.compute"],
        "ifmap_sram_reads": a["IfmapSRAM.I.read"] / ab,
        "filter_sram_reads": a["FilterSRAM.W.read"] / wb,
        "ofmap_sram_writes": a["OfmapSRAM.O.write"] / accb - o_down,
        "ofmap_sram_reads": a["OfmapSRAM.O.read"] / accb - o_up,
        "dram_ifmap_bytes": a["DRAM.I.read"] / 8.0,
        "dram_filter_bytes": a["DRAM.W.read"] / 8.0,
        "dram_ofmap_bytes": (o_up - o_down) * ab / 8.0,
        # each spilled partial sum (an accumulator) is written once and read back once
        "dram_psum_bytes": 2.0 * o_down * accb / 8.0,
    }
    raw = {lvl: 0.0 for lvl in LEVELS}
    for k, v in res["energy"].items():
        lvl = k.split(".")[0]
        if lvl in raw:
            raw[lvl] += v
    like = dict(raw)
    like["IfmapSRAM"] -= a["IfmapSRAM.I.write"] * p["ifmap_pj_per_bit"]
    like["FilterSRAM"] -= a["FilterSRAM.W.write"] * p["filter_pj_per_bit"]
    like["OfmapSRAM"] -= (o_up + o_down) * accb * p["ofmap_pj_per_bit"]
    scale = lambda d: {k: v * gemms for k, v in d.items()}  # noqa: E731
    return scale(counts), scale(like), scale(raw)


def symbiote_energy(counts: dict, e: dict) -> dict:
    """symbiote's energy per level from its counts and per-action energies."""
    ab, wb, accb = e["act_bits"], e["weight_bits"], e["acc_bits"]
    return {
        "MAC": counts["macs"] * e["mac_pj"],
        "IfmapSRAM": counts["ifmap_sram_reads"] * ab * e["ifmap_pj_per_bit"],
        "FilterSRAM": counts["filter_sram_reads"] * wb * e["filter_pj_per_bit"],
        "OfmapSRAM": (counts["ofmap_sram_writes"] + counts["ofmap_sram_reads"]) * accb * e["ofmap_pj_per_bit"],
        "DRAM": (counts["dram_ifmap_bytes"] + counts["dram_filter_bytes"] + counts["dram_ofmap_bytes"]
                 + counts["dram_psum_bytes"]) * 8.0 * e["dram_pj_per_bit"],
    }


def close(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b), 1.0)


# --------------------------------------------------------------------------- record and summary


def build_record(python: str) -> dict:
    rows = layer_rows()
    plans = {r["key"]: placement(r) for r in rows}
    jobs = [{"key": k, "params": p["params"]} for k, p in plans.items()]
    results = run_accelforge(python, jobs)
    out = []
    for r in rows:
        p = plans[r["key"]]
        counts, like, raw = accelforge_counts(results[r["key"]], p["params"], r["gemms"])
        out.append(dict(design=r["design"], layers=r["layers"], T=r["T"], Sr=r["Sr"], Sc=r["Sc"], gemms=r["gemms"], t_tiles=r["t_tiles"],
                        order=r["order"], block=r["block"], in_elems=r["in_elems"], mapping=p["params"],
                        same_mapping=p["same"], not_compared_because=p["why"],
                        accelforge=counts, accelforge_pj=like, accelforge_raw_pj=raw,
                        symbiote_at_record=r["symbiote"], symbiote_pj_at_record=symbiote_energy(r["symbiote"], r["energies"])))
    return dict(
        accelforge=accelforge_version(python),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        written_by="benchmarks/crosscheck_accelforge.py --record",
        designs={d: {k: (v.item() if hasattr(v, "item") else v) for k, v in design(d)[1].items()} for d in DESIGNS},
        nets=list(NETS) + list(GEMMS), gemms={k: list(v) for k, v in GEMMS.items()},
        arch="benchmarks/accelforge/systolic.arch.yaml, gemm.workload.yaml, ws.mapping.yaml",
        accelforge_python=subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                                         text=True, check=True).stdout.strip(),
        symbiote_commit=_git("rev-parse", "HEAD") + (" (+ uncommitted changes)" if _git("status", "--porcelain", "--", "backends") else ""),
        note=("Counts are layer totals (elements; DRAM in bytes). AccelForge evaluates one GEMM of the layer, "
              "x gemms (groups * repeat). 'accelforge_pj' is like-for-like (no SRAM fills or drains, "
              "which symbiote does not charge), 'accelforge_raw_pj' is AccelForge's own total; both "
              "without forwarding and leakage. same_mapping[count] false: not compared, for the reason in "
              "not_compared_because (see the script's module doc)."),
        rows=out,
    )


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()


def compare(record: dict, live_symbiote: dict | None = None) -> dict:
    """Per row and count: equal or not (where the mapping is the same); energy ratios
    AccelForge / symbiote per row: like-for-like (``energy_ratio_*``) and raw, over the rows
    whose mapping is the same at every level (all counts compared), and over all rows."""
    mismatches, not_same, compared, table = [], [], 0, []
    ratios, raw_ratios, all_ratios, level_ratios, by_design = [], [], [], {}, {}
    for r in record["rows"]:
        name = r["layers"][0]
        sym = live_symbiote[name] if live_symbiote else r["symbiote_at_record"]
        sym_pj = symbiote_energy(sym, sym["energies"]) if live_symbiote else r["symbiote_pj_at_record"]
        for c in COUNTS:
            if not r["same_mapping"].get(c, True):
                not_same.append((name, c, r["accelforge"][c], sym[c], r["not_compared_because"][c]))
                continue
            compared += 1
            if not close(r["accelforge"][c], sym[c]):
                mismatches.append((name, c, r["accelforge"][c], sym[c]))
        # AccelForge's energy of a level is linear in that level's one per-action energy: at
        # symbiote's current per-action energies it is the recorded one times their ratio
        scale = {lvl: (sym["energies"][ENERGY_OF[lvl]] / r["mapping"][ENERGY_OF[lvl]] if live_symbiote else 1.0)
                 for lvl in LEVELS}
        af_pj = {lvl: r["accelforge_pj"][lvl] * scale[lvl] for lvl in LEVELS}
        af_raw_pj = {lvl: r["accelforge_raw_pj"][lvl] * scale[lvl] for lvl in LEVELS}
        e_s = sum(sym_pj.values())
        ratio, raw = sum(af_pj.values()) / e_s, sum(af_raw_pj.values()) / e_s
        all_ratios.append(ratio)
        by_design.setdefault(r["design"], []).append(ratio)
        if all(r["same_mapping"].values()):
            ratios.append(ratio)
            raw_ratios.append(raw)
            for lvl in LEVELS:
                if sym_pj[lvl] > 0 or af_pj[lvl] > 0:
                    level_ratios.setdefault(lvl, []).append(af_pj[lvl] / max(sym_pj[lvl], 1e-30))
        table.append((r, sym, ratio, raw))
    worst = lambda xs: max(xs, key=lambda x: max(x, 1.0 / x))  # noqa: E731
    return dict(
        access_count_mismatches=len(mismatches), energy_ratio_median=statistics.median(ratios),
        energy_ratio_max=worst(ratios), counts_compared=compared, rows=len(record["rows"]),
        rows_same_mapping=len(ratios), counts_not_compared=len(not_same),
        energy_ratio_raw_median=statistics.median(raw_ratios), energy_ratio_raw_max=worst(raw_ratios),
        energy_ratio_all_rows_median=statistics.median(all_ratios), energy_ratio_all_rows_max=worst(all_ratios),
        energy_ratio_all_rows_by_design={d: {"median": statistics.median(v), "max": worst(v)} for d, v in by_design.items()},
        energy_level_ratio_max={lvl: worst(v) for lvl, v in level_ratios.items()},
        mismatch_list=mismatches, not_same_list=not_same, table=table,
    )


def live_symbiote_side() -> dict:
    """symbiote's current counts per layer name (``net:layer``), from the current model."""
    out = {}
    for r in layer_rows():
        for name in r["layers"]:
            out[name] = {**r["symbiote"], "energies": r["energies"], "t_tiles": r["t_tiles"]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--python", default=os.environ.get("ACCELFORGE_PYTHON", ""),
                    help="the AccelForge venv's python (default: $ACCELFORGE_PYTHON)")
    ap.add_argument("--live", action="store_true", help="run AccelForge now instead of reading the record")
    ap.add_argument("--record", nargs="?", const=RECORD, type=Path,
                    help=f"run AccelForge and write the record (default {RECORD.relative_to(ROOT)})")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = ap.parse_args(argv)
    if args.worker:
        worker()
        return 0
    if args.live or args.record:
        if not args.python or not Path(args.python).exists():
            ap.error("AccelForge's python not found: pass --python or set ACCELFORGE_PYTHON (see the module doc)")
        record = build_record(args.python)
        if args.record:
            args.record.parent.mkdir(parents=True, exist_ok=True)
            args.record.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        s = compare(record)
    else:
        record = json.loads(RECORD.read_text())
        s = compare(record, live_symbiote_side())
    if args.json:
        print(json.dumps({k: v for k, v in s.items() if k not in ("mismatch_list", "not_same_list", "table")}))
        return 0
    print(f"AccelForge {record['accelforge']} (recorded {record['date']}); designs: {record['designs']}")
    print(f"{'layer':<44} {'T':>6} {'Sr':>5} {'Sc':>5} {'g':>3} {'nt':>3}  counts(same/not)  {'E af/sym':>8} {'raw':>6}")
    for r, sym, ratio, raw in s["table"]:
        ok = sum(close(r["accelforge"][c], sym[c]) for c in COUNTS if r["same_mapping"].get(c, True))
        ns = sum(not r["same_mapping"].get(c, True) for c in COUNTS)
        name = r["layers"][0] + (f" (+{len(r['layers']) - 1})" if len(r["layers"]) > 1 else "")
        print(f"{name[:44]:<44} {r['T']:>6} {r['Sr']:>5} {r['Sc']:>5} {r['gemms']:>3} {r['t_tiles']:>3}  "
              f"{ok:>2}/{len(COUNTS) - ns} equal, {ns} n/s  {ratio:>8.4f} {raw:>6.3f}")
    for m in s["mismatch_list"]:
        print("MISMATCH", m)
    for m in s["not_same_list"]:
        print(f"not compared: {m[0]} {m[1]}: AccelForge {m[2]:.0f}, symbiote {m[3]:.0f}\n    ({m[4]})")
    print(f"\n{s['counts_compared']} counts compared on {s['rows']} rows: {s['access_count_mismatches']} mismatches "
          f"({s['counts_not_compared']} not compared, above). Energy AccelForge/symbiote on the {s['rows_same_mapping']} "
          f"rows mapped alike at every level: median {s['energy_ratio_median']:.4f}, worst {s['energy_ratio_max']:.4f} "
          f"(raw, with AccelForge's SRAM fills and drains: {s['energy_ratio_raw_median']:.4f}, {s['energy_ratio_raw_max']:.4f}); "
          f"all rows: median {s['energy_ratio_all_rows_median']:.4f}, worst {s['energy_ratio_all_rows_max']:.4f}")
    return 0 if s["access_count_mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
