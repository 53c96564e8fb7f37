"""The template's chosen mapping of a layer as a ZigZag mapping entry, so that ZigZag can
evaluate exactly that mapping (its ``spatial_mapping`` and a complete ``temporal_ordering``).

ZigZag 3.x (``zigzag-dse``) takes, per layer, a mapping entry with the spatial unrolling per
array axis (``D1: ["K, 13"]``) and, optionally, the temporal loops innermost first
(``temporal_ordering: [[FX, 7], [FY, 7], ...]``). When the ordering is *complete* (its factors
multiply, per layer dim, to ``ceil(size / spatial unrolling)``) ZigZag skips its LOMA search
and costs that ordering; its memory allocator then assigns the loops, innermost first, to each
operand's memory levels as far as they fit. An incomplete ordering would make ZigZag search
instead: :func:`zigzag_mapping` writes complete ones only (for the layer padded as the
template's mapping pads it).

How the template's nest (:mod:`.reuse`: DRAM loops, GLB loops, the spatial unrolling, RF loops)
is written:

* the spatial unrolling: the slot's X dims (primary, then fill) on ``D1``, its Y dims on ``D2``
  (:data:`.space.UNROLLINGS`; ``to_design`` reads ZigZag's D1 / D2 as ``array_x`` / ``array_y``);
  a fill of 1 is left out, a primary dim is written even at 1 (ZigZag would generate an
  unrolling for an axis the entry leaves out);
* the temporal loops innermost first: the RF loops, the GLB loops, the DRAM loops, each level's
  in the reverse of the class's order at that level (:func:`.mapping.level_order`, outermost
  first);
* the dims: a convolution's ``B K G OX OY C FX FY`` are the template's ``N K G Q P C S R``; a
  GEMM's ``D C K`` (``B`` for a batched one) are ``P C K`` (``G``).

What ZigZag keeps of it: the loop order, the factors and the unrolling. Which memory level
holds which loops is ZigZag's allocator's choice (the template's GLB / DRAM boundary is not
written: ZigZag's mapping schema has no field for it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from symbiote.backends.spatial.interop_arch import InteropError

#: ZigZag's layer dim of each template dim: a convolution (``O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]``)
CONV_DIMS = {"N": "B", "G": "G", "K": "K", "C": "C", "P": "OY", "Q": "OX", "R": "FY", "S": "FX"}
#: ... and a GEMM (``O[d][k]+=I[d][c]*W[c][k]``; batched: ``O[b][d][k]+=I[b][d][c]*W[b][c][k]``)
GEMM_DIMS = {"G": "B", "P": "D", "C": "C", "K": "K"}
LEVELS = ("rf", "glb", "dram")     # innermost first


def _factor(row: Mapping[str, Any], level: str, dim: str) -> int:
    return int(round(float(row[f"{level}_{dim}"])))


def zigzag_mapping(design: Mapping[str, Any], row: Mapping[str, Any], sizes: Mapping[str, int],
                   dims: Mapping[str, str] = CONV_DIMS) -> dict[str, Any]:
    """The mapping entry (``spatial_mapping``, ``temporal_ordering``) of one layer's chosen
    mapping (``row``: its :func:`.model.breakdown` row: ``slot``, ``cls`` and the factors
    ``<level>_<dim>``) on ``design`` (the template's knobs: its ``dataflow``), and the layer's
    extents that mapping runs (``loop_sizes``, by ZigZag dim). ``sizes``: the layer's ZigZag loop
    sizes (``{"K": 64, "OX": 112, ...}``); ``dims``: the ZigZag dim of each template dim
    (:data:`CONV_DIMS`, :data:`GEMM_DIMS`).

    The template pads: a dim's factors over the levels may multiply past its size (``K`` 64 as
    13 x 5), the last iterations computing nothing useful, and it costs them. ZigZag's ordering
    must multiply to ``ceil(size / unrolling)`` exactly, so the entry is for the layer padded to
    the mapping's extents (``loop_sizes``: K 65), which costs the padded iterations as the
    template does; ``padded`` lists the dims that differ. Each array axis names its primary
    dim even when it unrolls 1 (so that ZigZag keeps the unrolling and generates none).

    Raises :class:`InteropError` for a factor above 1 on a dim the layer has not, or extents
    that do not cover the layer's."""
    from symbiote.backends.spatial import mapping
    from symbiote.backends.spatial.space import DIMS, NONE, UNROLLINGS

    unroll = UNROLLINGS[design["dataflow"]][int(round(float(row["slot"])))]
    cls = int(round(float(row["cls"])))
    spatial: dict[str, list[str]] = {}
    for axis, (primary, fill) in (("D1", (unroll.x, unroll.x_fill)), ("D2", (unroll.y, unroll.y_fill))):
        f = _factor(row, "sp", DIMS[primary])
        # an axis unrolling 1 names its primary dim, or K (every layer has one) where the layer has not that dim
        spatial[axis] = [f"{_zz(dims, DIMS[primary]) if f > 1 else dims.get(DIMS[primary], 'K')}, {f}"]
        if fill != NONE and _factor(row, "sp", DIMS[fill]) > 1:
            spatial[axis].append(f"{_zz(dims, DIMS[fill])}, {_factor(row, 'sp', DIMS[fill])}")
    temporal: list[list[Any]] = []
    for level in LEVELS:
        for d in reversed([DIMS[i] for i in mapping.level_order(cls, level)]):
            f = _factor(row, level, d)
            if f > 1:
                temporal.append([_zz(dims, d), f])
    extents: dict[str, int] = {}
    for d in DIMS:
        total = math.prod(_factor(row, lvl, d) for lvl in (*LEVELS, "sp"))
        if d not in dims:
            if total > 1:
                _zz(dims, d)
            continue
        size = int(sizes.get(dims[d], 1))
        if total < size:
            raise InteropError(f"zigzag_mapping: dim {d} covers {total} of the layer's {size}")
        extents[dims[d]] = total
    loop_sizes = {k: extents.get(k, int(v)) for k, v in sizes.items()}
    return {"spatial_mapping": spatial, "temporal_ordering": temporal, "loop_sizes": loop_sizes,
            "padded": sorted(k for k, v in loop_sizes.items() if v != int(sizes[k]))}


def _zz(dims: Mapping[str, str], d: str) -> str:
    if d not in dims:
        raise InteropError(f"zigzag_mapping: the mapping has a factor above 1 on dim {d}, which the layer has not "
                           f"(its dims: {dict(dims)})")
    return dims[d]


def zigzag_mapping_yaml(entry: Mapping[str, Any], links: Mapping[str, str], name: str = "default") -> str:
    """A ZigZag mapping file of one entry (:func:`zigzag_mapping`), with the memory operand
    links (``{"O": "O", "W": "I2", "I": "I1"}``)."""
    import yaml

    doc = [{"name": name, "memory_operand_links": dict(links), **{k: entry[k] for k in ("spatial_mapping",
                                                                                      "temporal_ordering")
                                                                  if entry.get(k)}}]
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
