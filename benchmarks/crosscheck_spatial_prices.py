"""ZigZag's per-access energies on the spatial template's levels, and the template's access
counts priced with them (``crosscheck_spatial.py``'s part 2: its module doc).

Per operand, each template level (RF, GLB, DRAM) is the ZigZag memory ``to_design`` read its
knob from (:func:`levels`); elements are turned into the memory's words (ZigZag's precisions,
:data:`BITS`; a per-PE memory moves one element per access, as ZigZag counts it, a shared one
packs its port's width) and priced at the file's ``r_cost`` / ``w_cost``; MACs at the array's
``unit_energy``. What has no counterpart costs 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: ZigZag's layer operands as the template's
TEMPLATE_OP = {"I1": "I", "I2": "W", "O": "O"}


@dataclass(frozen=True)
class Price:
    """One ZigZag memory as seen by one operand: energies per word, word bits per direction;
    ``per_pe``: one instance per MAC unit (served across no axis), which ZigZag accesses one
    element at a time (a word per element however narrow), where a shared memory's words
    carry as many elements as they hold."""

    memory: str
    r_cost: float
    w_cost: float
    r_bits: int
    w_bits: int
    per_pe: bool


@dataclass(frozen=True)
class Prices:
    """ZigZag's energy table mapped onto the template's levels: per template operand (W, I,
    O) its RF, GLB and DRAM memories (``None``: ZigZag has no such memory for the operand);
    the MAC's energy."""

    rf: Mapping[str, Price | None]
    glb: Mapping[str, Price | None]
    dram: Mapping[str, Price]
    mac_pj: float


def levels(arch, op: str) -> tuple[Any, Any, Any]:
    """The ZigZag memories of operand ``op`` (ZigZag's I1/I2/O) that ``to_design`` reads the
    template's RF, GLB and DRAM knobs off (``None`` where it found none): the lowest one
    served across no axis, the highest one below the top served by every axis, the top."""
    from symbiote.backends.spatial.interop_arch import hierarchy

    lv = hierarchy(arch, op)
    every = set(arch.array.names)
    rf = next((m for m in lv if not m.served_dims), None)
    glb = next((m for m in reversed(lv[:-1]) if set(m.served_dims) == every and m is not rf), None)
    return rf, glb, lv[-1]


def _price(m) -> Price | None:
    if m is None:
        return None
    return Price(m.name, float(m.r_cost_pj), float(m.w_cost_pj), int(m.read_bw_bits), int(m.write_bw_bits),
                 not m.served_dims)


def prices(arch) -> Prices:
    """ZigZag's energies on the template's levels (module doc)."""
    rf, glb, dram = {}, {}, {}
    for op, t in TEMPLATE_OP.items():
        a, b, c = levels(arch, op)
        rf[t], glb[t], dram[t] = _price(a), _price(b), _price(c)
    return Prices(rf, glb, dram, float(arch.array.unit_energy_pj))


#: ZigZag's precisions in its record (crosscheck_spatial_zigzag.PRECISION)
BITS = {"W": 8, "I": 8, "psum": 16, "out": 8}


Traffic = Sequence[tuple[Any, float]]   # (elements, bits per element) pairs


def _words(traffic: Traffic, port_bits: int, per_pe: bool) -> Any:
    """Words of a ``port_bits`` port that move ``traffic``: per element (``ceil(bits / port)``)
    at a per-PE memory, packed (``bits / port``) at a shared one."""
    out = 0.0
    for elements, bits in traffic:
        out = out + elements * (math.ceil(bits / port_bits) if per_pe else bits / port_bits)
    return out


def _cost(p: Price | None, reads: Traffic, writes: Traffic) -> Any:
    """Energy of ``reads`` and ``writes`` at memory ``p`` (0 without ``p``)."""
    if p is None:
        return 0.0
    return _words(reads, p.r_bits, p.per_pe) * p.r_cost + _words(writes, p.w_bits, p.per_pe) * p.w_cost


def reprice(row: Mapping[str, Any], pr: Prices) -> dict[str, Any]:
    """The chosen mapping's access counts (breakdown ``row``, elements; or arrays of them) at
    ZigZag's energies ``pr``, per ``operand@memory`` (module doc, part 2) and ``MAC``. Reads
    and writes per level, as the template counts them (``backends/spatial/reuse.py``):

    * W, I: RF reads = MACs, RF writes = deliveries; GLB reads = ``glb_reads_*`` (multicast
      once), GLB writes = DRAM reads = ``dram_*``;
    * O: RF reads and writes = MACs each, plus the drains (reads) and the partial sums read
      back from the GLB (writes); GLB writes = ``psum_writes`` + ``dram_psum_reads``, GLB reads
      = ``psum_reads`` + what goes to DRAM; DRAM writes = the outputs (8 bits) + the spills
      (16 bits), DRAM reads = the spills read back.
    """
    macs = row["macs"]
    out: dict[str, Any] = {"MAC": macs * pr.mac_pj}

    def add(op: str, p: Price | None, reads: Traffic, writes: Traffic) -> None:
        if p is not None:
            key = f"{op}@{p.memory}"
            out[key] = out.get(key, 0.0) + _cost(p, reads, writes)

    for op, dl, gr, dr in (("W", "deliveries_w", "glb_reads_w", "dram_w"), ("I", "deliveries_i", "glb_reads_i", "dram_i")):
        b = BITS[op]
        add(op, pr.rf[op], [(macs, b)], [(row[dl], b)])
        add(op, pr.glb[op], [(row[gr], b)], [(row[dr], b)])
        add(op, pr.dram[op], [(row[dr], b)], [])
    ps, ob = BITS["psum"], BITS["out"]
    to_dram = [(row["outputs"], ob), (row["dram_o_writes"] - row["outputs"], ps)]
    add("O", pr.rf["O"], [(macs + row["drains"], ps)], [(macs + row["psum_reads"], ps)])
    add("O", pr.glb["O"], [(row["psum_reads"], ps), *to_dram], [(row["psum_writes"] + row["dram_psum_reads"], ps)])
    add("O", pr.dram["O"], [(row["dram_psum_reads"], ps)], to_dram)
    return out


def mac_reads_pj(row: Mapping[str, Any], z: Mapping[str, Any], pr: Prices) -> tuple[float, float]:
    """The energy of reading weights and inputs from their per-PE RFs into the MACs, as the
    template counts it (one read per MAC, ``backends/spatial/model.py``) and as ZigZag does
    (its lowest level's reads to the MAC: one per change of the operand at the MAC, the
    innermost loops irrelevant to it reusing the MAC's operand register): the two tools'
    conventions differ there whatever the mapping (module doc, part 2)."""
    ours = theirs = 0.0
    for op in ("W", "I"):
        p = pr.rf[op]
        if p is None or z["memory_levels"][op][0] != p.memory:
            continue
        ours += row["macs"] * math.ceil(BITS[op] / p.r_bits) * p.r_cost
        theirs += float(z["word_accesses"][op][0]["rd_out_to_low"]) * p.r_cost
    return ours, theirs


def zigzag_levels(z: Mapping[str, Any]) -> dict[str, float]:
    """ZigZag's energy of a layer per ``operand@memory`` and ``MAC`` (its record's row)."""
    out = {"MAC": float(z["mac_energy_pj"])}
    for op, names in z["memory_levels"].items():
        for name, e in zip(names, z["memory_energy_pj"][op], strict=True):
            out[f"{op}@{name}"] = out.get(f"{op}@{name}", 0.0) + float(e)
    return out
