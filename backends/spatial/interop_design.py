"""Between a ZigZag-style :class:`.interop_arch.Architecture` and the ``spatial`` template's knobs.

:func:`to_design` reads the template's knobs (:data:`.space.SPACE`) off an architecture and
says, in its report, every part of the architecture that has no knob and what was done with it
(nothing is dropped silently); :func:`from_design` writes a design as an architecture (which
:mod:`.interop_zigzag` / :mod:`.interop_accelforge` then write as ZigZag or AccelForge files),
with the template's own per-access energies (:func:`.model.resolve`) as ZigZag's costs.

The correspondence (the template's hierarchy: per-PE register files, one per operand; a
global buffer shared by the whole array, split per operand or one shared macro; DRAM):

==========================================  ==============================================
architecture                                knob
==========================================  ==============================================
axis D1 / D2 sizes                          ``array_x`` / ``array_y`` (axes beyond the 2nd
                                            multiply ``array_y``: reported)
per operand, its lowest memory served       ``rf_weight_bytes`` (I2), ``rf_input_bytes``
across no axis (one per MAC unit)           (I1), ``rf_psum_bytes`` (O); a memory holding
                                            several operands: its size split evenly
per operand, its highest memory below the   ``glb_weight_kb`` / ``glb_input_kb`` /
top one that is shared by every axis        ``glb_output_kb`` (split evenly where shared);
                                            ``glb_split = shared`` when one memory holds
                                            all three operands, else ``split``
that memory's read bandwidth / 256 bits     ``glb_banks`` (nearest power of two)
the same bandwidth in bytes per cycle       ``noc_bytes_per_cycle`` (ZigZag has no NoC)
the top memory's read bandwidth x clock     ``dram_gbps``
``input_precision``                         ``datapath`` (int4 / int8 / int16)
the ZigZag spatial mapping the design is    ``dataflow``: exactly K on D1 and C on D2 (and
run with (``spatial_mapping``, optional;    nothing else): ``kc``; else as ``dataflows``
it decides over ``dataflows``)
``dataflows`` (K on D1 and C on D2: ws;     ``dataflow``; none: ``free``
OX/OY: os; OY and FY: rs)
==========================================  ==============================================

(The family is read by :func:`.interop_dataflow.dataflow_of`, whose module doc has the rule.)

Adapted (reported, and listed in :attr:`Translation.adapted`), where the plain reading would
misrepresent the design's run:

* a register file too small to hold one element of its operand at the template's widths
  (weights and inputs at the datapath's bits, partial sums at the accumulator's,
  ``acc_guard_bits``: 24 bits at int8 by default) grows to one element: ZigZag's ``tpu_like``
  has a 2-byte partial-sum RF (one 16-bit ZigZag partial sum), where no candidate mapping of
  any layer would fit at 24 bits;
* an operand that goes from the top memory (DRAM) straight to per-PE register files, with no
  memory shared by the whole array between (:func:`bypassed`; ``tpu_like``'s weights), gets a
  GLB of what its RFs hold (``array_x x array_y x`` its RF, in KB rounded up), not the least
  1 KB: the template has no bypass, and its GLB tile holds every RF tile below it;
* the spatial mapping selects the family: ZigZag's shipped ``tpu_like`` mapping file unrolls
  exactly K on D1 and C on D2, which is ``kc`` (no fill dims: a depthwise layer runs on one
  PE, as in ZigZag's run), where ``dataflows`` K/C (hints, which ZigZag's mapper does not
  hold the design to) give ``ws``.

No knob (reported): per-access energies and areas (the template prices memories from CACTI
at the ``node_nm`` knob and DRAM by its ``dram`` kind), latencies, ports and their
allocation, intermediate memory levels (e.g. Eyeriss's 8 KB output buffer between its
RFs and its 1 MB buffer), memories shared across some axes only, ``mem_type``, the systolic
axes, IMC fields; and the other way, the template's vector unit, NoC and clock have no ZigZag
field (:func:`from_design`'s notes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from symbiote.backends.spatial.interop_arch import (
    OPERANDS,
    ROLES,
    Architecture,
    ArrayDim,
    InteropError,
    MemoryLevel,
    OperationalArray,
    Port,
    hierarchy,
    validate,
)
from symbiote.backends.spatial.interop_dataflow import DATAFLOW_DIMS, dataflow_of
from symbiote.backends.spatial.space import SPACE

RF_KNOB = {"I2": "rf_weight_bytes", "I1": "rf_input_bytes", "O": "rf_psum_bytes"}
GLB_KNOB = {"I2": "glb_weight_kb", "I1": "glb_input_kb", "O": "glb_output_kb"}
#: ZigZag's size of a DRAM (the shipped files' ``dram: size: 10000000000``): the template has no
#: DRAM capacity knob
DRAM_BITS = 10_000_000_000
BANK_BITS = 256


@dataclass(frozen=True)
class Translation:
    """The template's design read off an architecture, and what had no knob (``report``);
    ``adapted``: the report's lines that say what was adapted and why (module doc)."""

    design: dict[str, Any]
    report: tuple[str, ...]
    adapted: tuple[str, ...] = ()


def bypassed(arch: Architecture) -> tuple[str, ...]:
    """The operands (ZigZag's I1 / I2 / O) whose data go from the top memory straight to a
    per-PE register file, with no memory shared by the whole array between (module doc)."""
    out = []
    for op in OPERANDS:
        rf, g = _rf_glb(arch, op)
        if rf is not None and g is None and rf is not hierarchy(arch, op)[-1]:
            out.append(op)
    return tuple(out)


def _rf_glb(arch: Architecture, op: str) -> tuple[MemoryLevel | None, MemoryLevel | None]:
    """Operand ``op``'s memories read as the template's RF (its lowest one served across no
    axis) and GLB (its highest one below the top served by every axis, not the RF)."""
    levels = hierarchy(arch, op)
    every = set(arch.array.names)
    rf = next((m for m in levels if not m.served_dims), None)
    g = next((m for m in reversed(levels[:-1]) if set(m.served_dims) == every and m is not rf), None)
    return rf, g


def to_design(arch: Architecture, clock_ghz: float = 1.0, spatial_mapping: Any = None,
              acc_guard_bits: int | None = None) -> Translation:
    """The ``spatial`` template's knobs for ``arch`` (module doc), validated against
    :data:`.space.SPACE` (values outside a knob's range are clipped, and reported), with the
    module doc's adaptations.

    ``spatial_mapping``: the ZigZag spatial mapping the design is run with, which selects the
    ``dataflow`` family (over ``arch.dataflows``): per axis the unrolled layer dims, as
    ``{"D1": "K", "D2": "C"}``, or as in ZigZag's mapping YAML, its ``spatial_mapping``
    (``{"D1": ["K, 32"], "D2": ["C, 32"]}``), an entry of the file (a dict with a
    ``spatial_mapping`` key) or the whole file's list of entries (its ``default`` entry); a
    dim unrolled 1 time is not unrolled.

    ``acc_guard_bits``: the partial sums' width above the product's (the knob; None: its
    default). An accelerator file has no precision (ZigZag reads it off the workload: 16-bit
    partial sums of 8-bit operands are ``acc_guard_bits = 0``)."""
    validate(arch)
    report: list[str] = []
    adapted: list[str] = []
    d: dict[str, Any] = {"clock_ghz": clock_ghz}
    if acc_guard_bits is not None:
        d["acc_guard_bits"] = acc_guard_bits
    d.update(_axes(arch, report))
    glb: dict[str, MemoryLevel] = {}
    bypass = bypassed(arch)
    for op in OPERANDS:
        levels = hierarchy(arch, op)
        top = levels[-1]
        rf, g = _rf_glb(arch, op)
        if rf is None:
            d[RF_KNOB[op]] = 1
            report.append(f"{ROLES[op]}s have no per-PE memory (every memory of {op} is shared across some axis): "
                          f"{RF_KNOB[op]} = 1 byte, the least")
        else:
            d[RF_KNOB[op]] = _split(rf, rf.size_bits / 8.0, op, RF_KNOB[op], report)
        if op in bypass:
            d[GLB_KNOB[op]] = 1                 # sized to what its RFs hold (_adapt)
        elif g is None:
            d[GLB_KNOB[op]] = 1
            report.append(f"{ROLES[op]}s have no memory shared by the whole array below the top one ({top.name}): "
                          f"{GLB_KNOB[op]} = 1 KB, the least")
        else:
            glb[op] = g
            d[GLB_KNOB[op]] = _split(g, g.size_bits / 8192.0, op, GLB_KNOB[op], report)
        for m in levels[:-1]:
            if m is not rf and m is not g:
                report.append(f"{m.name} (holding {op}, served_dimensions {list(m.served_dims)}) is a level the "
                              f"template does not have (per-PE RF, whole-array GLB, DRAM): no knob, left out")
    mems = {m.name: m for m in glb.values()}
    d["glb_split"] = "shared" if any(set(m.operands) == set(OPERANDS) for m in mems.values()) else "split"
    if d["glb_split"] == "split" and any(len(m.operands) > 1 for m in mems.values()):
        report.append("a global buffer holds two of the three operands: the template has one macro per operand "
                      "(split) or one for all three (shared); split kept, its size divided evenly")
    glb_bw = max((m.read_bw_bits for m in mems.values()), default=BANK_BITS)
    d["glb_banks"] = 2 ** max(0, round(math.log2(max(glb_bw / BANK_BITS, 1.0))))
    d["noc_bytes_per_cycle"] = glb_bw / 8.0
    report.append(f"glb_banks = {d['glb_banks']} (global buffer reads of {glb_bw} bits per cycle over "
                  f"{BANK_BITS}-bit banks) and noc_bytes_per_cycle = {glb_bw / 8.0:g} (ZigZag has no NoC: its "
                  f"buffer's read bandwidth)")
    tops = {hierarchy(arch, op)[-1].name for op in OPERANDS}
    top = max((m for m in arch.memories if m.name in tops), key=lambda m: m.size_bits)
    d["dram_gbps"] = top.read_bw_bits * clock_ghz / 8.0
    report.append(f"dram_gbps = {d['dram_gbps']:g} from {top.name}'s {top.read_bw_bits} bits per cycle at "
                  f"{clock_ghz:g} GHz (ZigZag has no clock); its r_cost / w_cost have no knob (the dram kind prices it)")
    d.update(_datapath(arch, report))
    d["dataflow"] = dataflow_of(arch, report, spatial_mapping, adapted)
    report.append("per-access energies (r_cost, w_cost, unit_energy), areas, latencies, ports and their allocation, "
                  "mem_type have no knob: the template prices memories from CACTI at node_nm, DRAM by its kind, "
                  "MACs by its datapath (node_nm, dram, vector_width left at their defaults)")
    if arch.array.systolic_dims:
        report.append(f"systolic_dimensions {list(arch.array.systolic_dims)}: no knob (the spatial template "
                      f"multicasts over its NoC)")
    if arch.array.is_imc:
        report.append("an in-memory-computing array: no knob, costed as a digital MAC array")
    design = _adapt(arch, _clip(d, report), adapted)
    report.extend(adapted)
    return Translation(design, tuple(dict.fromkeys(report)), tuple(dict.fromkeys(adapted)))


def _adapt(arch: Architecture, design: dict[str, Any], adapted: list[str]) -> dict[str, Any]:
    """``design`` with every RF that cannot hold one element of its operand at the template's
    widths grown to one element, and the GLB of each :func:`bypassed` operand sized to what its
    RFs hold (module doc); what was changed and why goes to ``adapted``."""
    from symbiote.backends import datapath
    from symbiote.backends.spatial import model

    out = dict(design)
    bits = float(datapath.resolve(SPACE.encode(out)).bits)
    acc = float(model.acc_bits(out, bits, bits))
    width = {"I2": ("weight", bits), "I1": ("input", bits), "O": ("partial sum", acc)}
    for op in OPERANDS:
        knob, (what, b) = RF_KNOB[op], width[op]
        least = math.ceil(b / 8.0)
        if out[knob] < least:
            adapted.append(f"{knob} = {least} (was {out[knob]}): {out[knob]} B cannot hold one {b:g}-bit {what} "
                           f"({out['datapath']}{', its accumulator' if op == 'O' else ''}); no candidate mapping of "
                           f"any layer would fit, so the RF grows to one element")
            out[knob] = least
    for op in bypassed(arch):
        knob, rf_knob = GLB_KNOB[op], RF_KNOB[op]
        held = max(1, math.ceil(out["array_x"] * out["array_y"] * out[rf_knob] / 1024.0))
        kb = int(min(SPACE[knob].high, held))
        adapted.append(f"{knob} = {kb} (was {out[knob]}, the least): {ROLES[op]}s go from "
                       f"{hierarchy(arch, op)[-1].name} straight to the PEs' RFs (no memory shared by the whole "
                       f"array between); the template has no bypass and its GLB tile holds every RF tile below it, "
                       f"so the GLB gets what the RFs hold (array_x x array_y x {rf_knob} = "
                       f"{out['array_x']} x {out['array_y']} x {out[rf_knob]} B{', clipped to the knob' if kb < held else ''})")
        out[knob] = kb
    return SPACE.validate(out)


def _axes(arch: Architecture, report: list[str]) -> dict[str, int]:
    dims = arch.array.dims
    x = dims[0].size
    y = math.prod(a.size for a in dims[1:]) if len(dims) > 1 else 1
    if len(dims) > 2:
        report.append(f"axes {', '.join(a.name for a in dims[2:])} have no knob (the template has X and Y): "
                      f"folded into array_y = {' x '.join(str(a.size) for a in dims[1:])} = {y}")
    if len(dims) == 1:
        report.append("a one-axis array: array_y = 1")
    return {"array_x": x, "array_y": y}


def _split(m: MemoryLevel, amount: float, op: str, knob: str, report: list[str]) -> float:
    if len(m.operands) > 1:
        report.append(f"{m.name} holds {', '.join(m.operands)}: the template gives each operand its own "
                      f"capacity, so {knob} = 1/{len(m.operands)} of it")
        amount /= len(m.operands)
    if not float(amount).is_integer():
        report.append(f"{knob}: {amount:g} rounded to {max(1, round(amount))} (an integer knob)")
    return max(1, round(amount))


def _datapath(arch: Architecture, report: list[str]) -> dict[str, str]:
    prec = arch.array.input_precision
    if prec is None:
        report.append("no input_precision: datapath left at int8")
        return {"datapath": "int8"}
    bits = max(prec)
    for name, b in (("int4", 4), ("int8", 8), ("int16", 16)):
        if bits <= b:
            if bits != b:
                report.append(f"input_precision {list(prec)}: datapath {name}, the narrowest integer format that holds it")
            return {"datapath": name}
    report.append(f"input_precision {list(prec)}: wider than int16, datapath fp32")
    return {"datapath": "fp32"}


def _clip(design: dict[str, Any], report: list[str]) -> dict[str, Any]:
    out = {}
    for name, v in design.items():
        k = SPACE[name]
        if k.numeric and not (k.low <= v <= k.high):
            clipped = min(max(v, k.low), k.high)
            report.append(f"{name} = {v:g} is outside the knob's range [{k.low:g}, {k.high:g}]: clipped to {clipped:g}")
            v = clipped
        if k.kind == "pow2" or k.kind == "integer":
            v = int(k.decode(float(v)))
        out[name] = k.validate(v, "to_design")
    return SPACE.validate(out)


# --------------------------------------------------------------------------- design -> architecture


def from_design(design: Mapping[str, Any], name: str = "spatial") -> Architecture:
    """The architecture of a ``spatial`` design (module doc), with the template's per-access
    energies at its node, datapath and DRAM kind: an access of a memory moves one word of its
    port (RF: one operand; GLB: ``glb_banks`` x 256 bits; DRAM: ``dram_gbps`` / clock bytes)
    and costs the template's energy per bit x the word's bits; the MAC costs the datapath's MAC
    at the node; areas in mm^2 (CACTI macros, the datapath's PE)."""
    from symbiote.backends import datapath, memories, technology
    from symbiote.backends.spatial import model

    d = SPACE.validate(design, "from_design")
    hw = SPACE.encode(d)
    h = model.resolve(hw)
    dp = datapath.resolve(hw)
    nw = technology.node_weights(hw)
    bits = float(dp.bits)
    acc = float(model.acc_bits(d, dp.bits, dp.bits))
    word = {"I2": bits, "I1": bits, "O": acc}
    idx = {"I2": 0, "I1": 1, "O": 2}
    f = float
    rfs = []
    for op in OPERANDS:
        knob = RF_KNOB[op]
        rfs.append(_memory(f"rf_{ROLES[op]}", d[knob] * 8, (op,), (), int(word[op]),
                           f(h.e_rf[idx[op]]) * word[op], f(memories.sram_area_mm2(d[knob] / 1024.0, nw))))
    glb_word = int(BANK_BITS * d["glb_banks"])
    if d["glb_split"] == "shared":
        kb = d["glb_weight_kb"] + d["glb_input_kb"] + d["glb_output_kb"]
        area = d["glb_banks"] * f(memories.sram_area_mm2(kb / d["glb_banks"], nw))
        glbs = [_memory("glb", kb * 8192, ("I1", "I2", "O"), ("D1", "D2"), glb_word, f(h.e_glb[0]) * glb_word, area)]
    else:
        glbs = [_memory(f"glb_{ROLES[op]}", d[GLB_KNOB[op]] * 8192, (op,), ("D1", "D2"), glb_word,
                        f(h.e_glb[idx[op]]) * glb_word,
                        d["glb_banks"] * f(memories.sram_area_mm2(d[GLB_KNOB[op]] / d["glb_banks"], nw)))
                for op in OPERANDS]
    dram_word = max(1, round(d["dram_gbps"] * 8.0 / d["clock_ghz"]))
    dram = _memory("dram", DRAM_BITS, ("I1", "I2", "O"), ("D1", "D2"), dram_word, f(h.e_dram) * dram_word, 0.0,
                   read_write=True)
    mac = f(datapath.mac_pj(dp, dp.bits, dp.bits)) * f(h.energy_scale)
    tech = technology.resolve(hw)
    array = OperationalArray(
        dims=(ArrayDim("D1", d["array_x"]), ArrayDim("D2", d["array_y"])), unit_energy_pj=mac,
        unit_area=f(dp.pe_area_mm2) * f(tech.area_scale),
        input_precision=(int(bits), int(bits)) if d["datapath"].startswith("int") else None)
    fam = d["dataflow"]
    flows = () if fam == "free" else (("D1", ((DATAFLOW_DIMS[fam][0], d["array_x"]),)),
                                      ("D2", ((DATAFLOW_DIMS[fam][1], d["array_y"]),)))
    notes = (f"from the spatial template's design {dict(d)}",
             f"no ZigZag field for: noc_bytes_per_cycle ({d['noc_bytes_per_cycle']:g} B/cycle), vector_width "
             f"({d['vector_width']}), clock_ghz ({d['clock_ghz']:g}: bandwidths are per cycle at it), node_nm, dram "
             f"and datapath (folded into the per-access energies and areas), the dataflow's fill dims and its "
             f"per-layer choice (dataflows, when given, name the primary dims only)")
    if fam == "kc":
        notes += ("dataflow kc is written as dataflows K on D1 and C on D2, which read back as ws (the hardware file "
                  "has no field for 'no fill dims'): give to_design the spatial mapping {'D1': 'K', 'D2': 'C'} to "
                  "read kc back",)
    return validate(Architecture(name, tuple(rfs) + tuple(glbs) + (dram,), array, flows, notes=notes))


def _memory(name: str, size_bits: float, operands: tuple[str, ...], served: tuple[str, ...], word: int,
            cost_pj: float, area: float, read_write: bool = False) -> MemoryLevel:
    reads = tuple((op, dd) for op in operands for dd in (("tl", "th") if op == "O" else ("tl",)))
    writes = tuple((op, dd) for op in operands for dd in (("fh", "fl") if op == "O" else ("fh",)))
    if read_write:
        ports = (Port("rw_port_1", "read_write", word, word, tuple(sorted(reads + writes, key=_order))),)
    else:
        ports = (Port("r_port_1", "read", word, word, reads), Port("w_port_1", "write", word, word, writes))
    return MemoryLevel(name, int(size_bits), operands, ports, served, r_cost_pj=cost_pj, w_cost_pj=cost_pj,
                       area=area, latency_cycles=1)


def _order(a: tuple[str, str]) -> tuple[int, int]:
    return OPERANDS.index(a[0]), ("fh", "tl", "fl", "th").index(a[1])


# --------------------------------------------------------------------------- chosen mapping -> loop nest

#: the template's loop dims as the rank variables of :func:`.interop_accelforge.gemm_workload_yaml`
#: (a GEMM is ``P = M``, ``C`` = the reduction, ``K`` = the output features) and of
#: :func:`.interop_accelforge.conv_workload_yaml`
GEMM_RANKS = {"P": "m", "C": "k", "K": "n"}
CONV_RANKS = {"N": "n", "K": "k", "C": "c", "P": "p", "Q": "q", "R": "r", "S": "s"}


def loop_nest(design: Mapping[str, Any], chosen: Mapping[str, Any], dims: Mapping[str, int],
              ranks: Mapping[str, str] = GEMM_RANKS, einsum: str = "Gemm"):
    """The loop nest the template chose for one layer, on :func:`from_design`'s architecture,
    as an :class:`.interop_accelforge.LoopNest` (what :func:`.interop_accelforge.
    mapping_to_accelforge_yaml` writes for AccelForge).

    ``chosen``: the layer's row of :func:`.model.breakdown` (``slot``, ``cls`` and the factors
    ``<level>_<dim>`` of levels dram, glb, sp, rf); ``dims``: the layer's extents by template dim
    (``{"P": 128, "C": 768, "K": 3072}``; absent dims are 1); ``ranks``: the workload's rank
    variable of each template dim (:data:`GEMM_RANKS`, :data:`CONV_RANKS`).

    The nest is the model's (:mod:`.reuse`): the DRAM loops, then the GLB loops, in the class's
    order (:data:`.mapping.ORDERS`), the spatial unrolling (the slot's X dims on D1, its Y dims
    on D2, :data:`.space.UNROLLINGS`), the RF loops (:data:`.mapping.RF_ORDERS`). In AccelForge
    a tile is kept across the loops *below* its storage node and refetched at every iteration of
    those above it, relevant or not, whereas the model keeps a tile across the irrelevant loops
    inside the innermost relevant one (module doc of :mod:`.reuse`). So each operand's storage
    node goes right below its innermost relevant loop: its GLB node among the DRAM loops, its RF
    node among the GLB loops, which are placed below the spatial unrolling (a temporal loop's
    place relative to a spatial one changes no count). Where the model keeps an RF tile across
    trailing irrelevant DRAM loops (the operand has no relevant GLB loop) AccelForge's nest
    cannot (the RF node must sit below the GLB nodes of the other operands that need those
    loops): such a mapping raises :class:`.interop_arch.InteropError` rather than give a nest
    whose counts differ."""
    from symbiote.backends.spatial import mapping
    from symbiote.backends.spatial.interop_accelforge import Loop, LoopNest
    from symbiote.backends.spatial.space import DIMS, NONE, RELEVANT, UNROLLINGS

    d = SPACE.validate(design, "loop_nest")
    cls = int(round(float(chosen["cls"])))
    unroll = UNROLLINGS[d["dataflow"]][int(round(float(chosen["slot"])))]
    axis = {DIMS[i]: "D1" for i in (unroll.x, unroll.x_fill) if i != NONE}
    axis |= {DIMS[i]: "D2" for i in (unroll.y, unroll.y_fill) if i != NONE}
    template_op = {"I2": "W", "I1": "I", "O": "O"}
    relevant = {op: {DIMS[i] for i in RELEVANT[template_op[op]]} for op in OPERANDS}

    def factor(level: str, dim: str) -> int:
        f = int(round(float(chosen[f"{level}_{dim}"])))
        if f > 1 and dim not in ranks:
            raise InteropError(f"loop_nest: the chosen mapping has {level} {dim} x{f}, a dim the workload's ranks "
                               f"{dict(ranks)} do not name")
        return f

    def loops(level: str) -> list[tuple[str, int]]:
        dims = [DIMS[i] for i in mapping.level_order(cls, level)]
        return [(x, factor(level, x)) for x in dims if factor(level, x) > 1]

    def place(lps: list[tuple[str, int]], op: str) -> int:
        """How many of ``lps`` (outer first) sit above ``op``'s node: down to its innermost relevant one."""
        return max((i + 1 for i, (x, _) in enumerate(lps) if x in relevant[op]), default=0)

    def emit(lps: list[tuple[str, int]], nodes: dict[int, list[tuple[str, tuple[str, ...]]]], first: tuple,
             tail: tuple = ()) -> list[tuple]:
        """Levels: ``first`` (a level whose loops are still open) and the nodes at their places
        among ``lps``; ``tail``: loops after the last of ``lps``."""
        out = [first]
        for i in range(len(lps) + 1):
            for mem, ops in nodes.get(i, []):
                out.append((mem, [], ops))
            if i < len(lps):
                x, f = lps[i]
                out[-1][1].append(Loop(ranks[x], f))
        out[-1][1].extend(tail)
        return out

    dram, glb, rf = loops("dram"), loops("glb"), loops("rf")
    for op in OPERANDS:
        kept = dram[place(dram, op):]
        if kept and not any(x in relevant[op] for x, _ in glb):
            raise InteropError(
                f"loop_nest: the chosen mapping keeps the {template_op[op]} RF tile across the DRAM loops "
                f"{' '.join(f'{x}{f}' for x, f in kept)} (irrelevant to it; no GLB loop is relevant to it), which an "
                f"AccelForge nest cannot: the RF node would have to sit above the GLB nodes of the other operands, "
                f"and AccelForge would refetch the tile at every iteration")
    glb_mem = {op: "glb" if d["glb_split"] == "shared" else f"glb_{ROLES[op]}" for op in OPERANDS}
    at_dram: dict[int, list] = {}
    for op in OPERANDS:
        at_dram.setdefault(place(dram, op), []).append((glb_mem[op], (op,)))
    spatial = [Loop(ranks[x], factor("sp", x), axis[x]) for x in DIMS if factor("sp", x) > 1]
    top = emit(dram, at_dram, ("dram", []))
    top[-1][1].extend(spatial)
    at_glb: dict[int, list] = {}
    for op in OPERANDS:
        at_glb.setdefault(place(glb, op), []).append((f"rf_{ROLES[op]}", (op,)))
    bottom = emit(glb, at_glb, top.pop(), tuple(Loop(ranks[x], f) for x, f in rf))
    levels = [(lv[0], tuple(lv[1])) if len(lv) == 2 else (lv[0], tuple(lv[1]), lv[2]) for lv in top + bottom]
    extents = tuple((ranks[x], int(dims.get(x, 1))) for x in DIMS if x in ranks)
    return LoopNest(einsum, extents, tuple(levels))
