"""ZigZag 3.x accelerator YAML: read (:func:`from_zigzag`) and write (:func:`to_zigzag`).

ZigZag (KU Leuven MICAS, MIT licence; PyPI ``zigzag-dse``) describes one core as::

    name: eyeriss_like
    memories:                      # lowest level first
      rf_64B_A:
        size: 512                  # bits
        r_cost: 1.0                # pJ per read access (one word of the port's bandwidth)
        w_cost: 1.5
        area: 0.3
        latency: 1
        operands: [I1]             # I1 inputs, I2 weights, O outputs; several: a shared memory
        ports:
          - {name: r_port_1, type: read, bandwidth_min: 8, bandwidth_max: 8, allocation: [I1, tl]}
          - {name: w_port_1, type: write, bandwidth_min: 8, bandwidth_max: 8, allocation: [I1, fh]}
        served_dimensions: []      # array axes one instance is shared across
    operational_array:
      unit_energy: 0.5             # pJ per MAC
      unit_area: 0.1
      dimensions: [D1, D2]
      sizes: [14, 12]

The schema is ZigZag's own validator (``zigzag/parser/accelerator_validator.py``, 3.9.1): per
memory ``size``, ``latency``, ``operands``, ``ports``, ``served_dimensions`` required;
``r_cost``, ``w_cost``, ``area`` required unless ``auto_cost_extraction``; optional
``mem_type`` (``sram``), ``auto_cost_extraction``, ``force_double_buffering``; the array's
``dimensions`` and ``sizes`` required, ``unit_energy``, ``unit_area``, ``input_precision``,
``systolic_dimensions`` (3.9), ``is_imc``, ``imc_type``, ``adc_resolution``,
``bit_serial_precision`` optional; an optional top-level ``dataflows`` (per axis ``"K, 16"``
unrollings).

Both port schemas of the 3.x series are read:

* ``ports`` (ZigZag >= 3.8.2, the one above): a list of named ports with their own bandwidths;
* ``legacy`` (3.0 - 3.8.1): per memory ``r_bw``, ``w_bw`` (bits per cycle), ``r_port``,
  ``w_port``, ``rw_port`` (counts), optional ``min_r_granularity`` / ``min_w_granularity``, and
  ``ports`` as one dict per operand (in ``operands`` order) mapping a direction to a port name
  (``{fh: w_port_1, tl: r_port_1}``). Read as named ports ``r_port_i`` (bandwidth
  ``min_r_granularity or r_bw`` .. ``r_bw``), ``w_port_i``, ``rw_port_i`` (ZigZag's own
  conversion of its shipped files, commit 94b8e93 "Allow different bandwidth per MemoryPort");
  a read_write port whose read and write bandwidths differ has no single bandwidth in the newer
  schema and is refused (:class:`.interop_arch.InteropError`).

:func:`to_zigzag` writes either (``schema=``). Nothing a file holds is dropped silently: fields
this reader does not know are kept verbatim in the :class:`.interop_arch.Architecture`'s
``extra`` (written back as they were) and named in its ``notes``; a key given twice in one
mapping (ZigZag's own ``tpu_like.yaml`` repeats ``ports``) is read as YAML readers, ZigZag's
included, read it (the last one wins) and named in ``notes``. A legacy file's explicit
``min_r_granularity`` equal to ``r_bw`` is not written back (it is the default: same value).
Errors name the file and the field (``file.yaml: memories.sram_1M.size: ...``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from symbiote.backends.spatial.interop_arch import (
    DIRECTIONS,
    Architecture,
    ArrayDim,
    InteropError,
    MemoryLevel,
    OperationalArray,
    Port,
    top_down,
    validate,
)
from symbiote.fileio import write_text

SCHEMAS = ("ports", "legacy")
MEMORY_KEYS = ("size", "r_cost", "w_cost", "area", "latency", "mem_type", "auto_cost_extraction", "operands",
               "ports", "served_dimensions", "force_double_buffering")
LEGACY_KEYS = ("r_bw", "w_bw", "r_port", "w_port", "rw_port", "min_r_granularity", "min_w_granularity")
PORT_KEYS = ("name", "type", "bandwidth_min", "bandwidth_max", "allocation")
ARRAY_KEYS = ("unit_energy", "unit_area", "dimensions", "sizes", "input_precision", "systolic_dimensions", "is_imc",
              "imc_type", "adc_resolution", "bit_serial_precision")
TOP_KEYS = ("name", "memories", "operational_array", "dataflows")
_ALLOCATION = re.compile(r"^\s*(I1|I2|O)\s*,\s*(fh|tl|fl|th)\s*$")
_UNROLL = re.compile(r"^\s*([A-Za-z]+\d*)\s*,\s*(\d+)\s*$")
_LEGACY_PORT = re.compile(r"^(r|w|rw)_port_(\d+)$")


# --------------------------------------------------------------------------- reading


class _Loader(yaml.SafeLoader):
    """A safe loader that records keys given twice in one mapping (the last one wins)."""

    duplicates: list[str]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            loader.duplicates.append(f"{key!r} (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, where: str) -> tuple[Any, tuple[str, ...]]:
    """The YAML document and the keys it gives twice; :class:`InteropError` for bad YAML."""
    loader = _Loader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        raise InteropError(f"{where}: not valid YAML: {' '.join(str(e).split())}") from None
    finally:
        loader.dispose()
    return data, tuple(loader.duplicates)


def from_zigzag(path: str | os.PathLike) -> Architecture:
    """Read a ZigZag 3.x accelerator YAML file (either port schema)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise InteropError(f"{p}: cannot read accelerator file: {e.strerror}") from None
    data, dups = load_yaml(text, str(p))
    arch = parse_zigzag(data, str(p))
    if dups:
        arch = Architecture(arch.name, arch.memories, arch.array, arch.dataflows, arch.extra,
                            tuple(f"key {d} given twice in one mapping; the last one is used, as ZigZag's reader "
                                  f"does" for d in dups) + arch.notes)
    return arch


def parse_zigzag(data: Any, where: str = "<zigzag>") -> Architecture:
    """An :class:`Architecture` from a ZigZag accelerator document (a dict as YAML gives it)."""
    doc = _mapping(data, where, "the document")
    notes: list[str] = []
    name = _get(doc, "name", str, where, "name")
    mems = _mapping(_req(doc, "memories", where, "memories"), where, "memories")
    memories = tuple(_memory(str(n), _mapping(m, where, f"memories.{n}"), where, notes) for n, m in mems.items())
    array = _array(_mapping(_req(doc, "operational_array", where, "operational_array"), where, "operational_array"),
                   where, notes)
    dataflows = _dataflows(doc.get("dataflows"), where)
    extra = _extra(doc, TOP_KEYS, where, "", notes)
    return validate(Architecture(name, memories, array, dataflows, extra, tuple(notes)), where)


def _memory(name: str, m: Mapping, where: str, notes: list[str]) -> MemoryLevel:
    at = f"memories.{name}"
    legacy = any(k in m for k in LEGACY_KEYS) or any(isinstance(p, dict) and "name" not in p and "type" not in p
                                                      for p in (m.get("ports") or []))
    operands = tuple(_str_list(_req(m, "operands", where, f"{at}.operands"), where, f"{at}.operands"))
    ports = _legacy_ports(m, operands, where, at) if legacy else _ports(m, where, at)
    known = MEMORY_KEYS + (LEGACY_KEYS if legacy else ())
    return MemoryLevel(
        name=name,
        size_bits=_get(m, "size", int, where, f"{at}.size"),
        operands=operands,
        ports=ports,
        served_dims=tuple(_str_list(_req(m, "served_dimensions", where, f"{at}.served_dimensions"), where,
                                    f"{at}.served_dimensions")),
        r_cost_pj=_opt(m, "r_cost", float, where, f"{at}.r_cost"),
        w_cost_pj=_opt(m, "w_cost", float, where, f"{at}.w_cost"),
        area=_opt(m, "area", float, where, f"{at}.area"),
        latency_cycles=_get(m, "latency", int, where, f"{at}.latency"),
        mem_type=_opt(m, "mem_type", str, where, f"{at}.mem_type") or "sram",
        auto_cost_extraction=bool(_opt(m, "auto_cost_extraction", bool, where, f"{at}.auto_cost_extraction")),
        force_double_buffering=bool(_opt(m, "force_double_buffering", bool, where, f"{at}.force_double_buffering")),
        extra=_extra(m, known, where, at + ".", notes),
    )


def _ports(m: Mapping, where: str, at: str) -> tuple[Port, ...]:
    out = []
    for i, p in enumerate(_list(_req(m, "ports", where, f"{at}.ports"), where, f"{at}.ports")):
        pat = f"{at}.ports[{i}]"
        p = _mapping(p, where, pat)
        unknown = sorted(set(p) - set(PORT_KEYS))
        if unknown:
            raise InteropError(f"{where}: {pat}: unknown field(s) {', '.join(map(str, unknown))} "
                               f"(a port has {', '.join(PORT_KEYS)})")
        pname = _get(p, "name", str, where, f"{pat}.name")
        pat = f"{at}.ports.{pname}"
        out.append(Port(
            name=pname,
            kind=_get(p, "type", str, where, f"{pat}.type"),
            bw_min_bits=_get(p, "bandwidth_min", int, where, f"{pat}.bandwidth_min"),
            bw_max_bits=_get(p, "bandwidth_max", int, where, f"{pat}.bandwidth_max"),
            allocation=tuple(_allocation(a, where, f"{pat}.allocation")
                             for a in _list(_req(p, "allocation", where, f"{pat}.allocation"), where,
                                            f"{pat}.allocation")),
        ))
    return tuple(out)


def _allocation(a: Any, where: str, at: str) -> tuple[str, str]:
    match = _ALLOCATION.match(a) if isinstance(a, str) else None
    if not match:
        raise InteropError(f"{where}: {at}: {a!r} is not 'OPERAND, DIRECTION' (operand I1, I2 or O; "
                           f"direction {', '.join(DIRECTIONS)})")
    return match.group(1), match.group(2)


def _legacy_ports(m: Mapping, operands: tuple[str, ...], where: str, at: str) -> tuple[Port, ...]:
    r_bw = _get(m, "r_bw", int, where, f"{at}.r_bw")
    w_bw = _get(m, "w_bw", int, where, f"{at}.w_bw")
    r_min = _opt(m, "min_r_granularity", int, where, f"{at}.min_r_granularity") or r_bw
    w_min = _opt(m, "min_w_granularity", int, where, f"{at}.min_w_granularity") or w_bw
    counts = {k: _get(m, f"{k}_port", int, where, f"{at}.{k}_port") for k in ("r", "w", "rw")}
    if counts["rw"] and (r_bw, r_min) != (w_bw, w_min):
        raise InteropError(f"{where}: {at}: a read_write port with r_bw {r_bw} / min {r_min} but w_bw {w_bw} / min "
                           f"{w_min}: ZigZag's port schema gives a port one bandwidth, so this memory has none")
    kind = {"r": "read", "w": "write", "rw": "read_write"}
    bw = {"r": (r_min, r_bw), "w": (w_min, w_bw), "rw": (r_min, r_bw)}
    names = [f"{k}_port_{i}" for k in ("r", "w", "rw") for i in range(1, counts[k] + 1)]
    alloc: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
    per_op = _list(_req(m, "ports", where, f"{at}.ports"), where, f"{at}.ports")
    if len(per_op) != len(operands):
        raise InteropError(f"{where}: {at}.ports: {len(per_op)} entries for {len(operands)} operands "
                           f"({', '.join(operands)}): the legacy schema gives one per operand, in that order")
    for op, entry in zip(operands, per_op):
        entry = _mapping(entry, where, f"{at}.ports[{op}]")
        for direction, pname in entry.items():
            if direction not in DIRECTIONS:
                raise InteropError(f"{where}: {at}.ports[{op}]: {direction!r} is not a direction ({', '.join(DIRECTIONS)})")
            if pname not in alloc:
                raise InteropError(f"{where}: {at}.ports[{op}].{direction}: port {pname!r} does not exist "
                                   f"(r_port {counts['r']}, w_port {counts['w']}, rw_port {counts['rw']}: "
                                   f"{', '.join(names) or 'none'})")
            alloc[pname].append((op, direction))
    return tuple(Port(n, kind[_LEGACY_PORT.match(n).group(1)], *bw[_LEGACY_PORT.match(n).group(1)], tuple(alloc[n]))
                 for n in names)


def _array(a: Mapping, where: str, notes: list[str]) -> OperationalArray:
    at = "operational_array"
    dims = _str_list(_req(a, "dimensions", where, f"{at}.dimensions"), where, f"{at}.dimensions")
    sizes = _list(_req(a, "sizes", where, f"{at}.sizes"), where, f"{at}.sizes")
    if len(dims) != len(sizes):
        raise InteropError(f"{where}: {at}: {len(dims)} dimensions but {len(sizes)} sizes")
    sizes = [_int(s, where, f"{at}.sizes[{i}]") for i, s in enumerate(sizes)]
    prec = a.get("input_precision")
    return OperationalArray(
        dims=tuple(ArrayDim(d, s) for d, s in zip(dims, sizes)),
        unit_energy_pj=_opt(a, "unit_energy", float, where, f"{at}.unit_energy"),
        unit_area=_opt(a, "unit_area", float, where, f"{at}.unit_area"),
        input_precision=None if prec is None else tuple(_int(x, where, f"{at}.input_precision")
                                                        for x in _list(prec, where, f"{at}.input_precision")),
        systolic_dims=tuple(_str_list(a.get("systolic_dimensions") or [], where, f"{at}.systolic_dimensions")),
        is_imc=bool(_opt(a, "is_imc", bool, where, f"{at}.is_imc")),
        imc_type=_opt(a, "imc_type", str, where, f"{at}.imc_type"),
        adc_resolution=_opt(a, "adc_resolution", float, where, f"{at}.adc_resolution"),
        bit_serial_precision=_opt(a, "bit_serial_precision", float, where, f"{at}.bit_serial_precision"),
        extra=_extra(a, ARRAY_KEYS, where, at + ".", notes),
    )


def _dataflows(d: Any, where: str) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    if d is None:
        return ()
    out = []
    for axis, unrolls in _mapping(d, where, "dataflows").items():
        pairs = []
        for u in _list(unrolls, where, f"dataflows.{axis}"):
            match = _UNROLL.match(u) if isinstance(u, str) else None
            if not match:
                raise InteropError(f"{where}: dataflows.{axis}: {u!r} is not 'DIM, FACTOR' (e.g. 'K, 16')")
            pairs.append((match.group(1), int(match.group(2))))
        out.append((str(axis), tuple(pairs)))
    return tuple(out)


def _extra(d: Mapping, known: tuple[str, ...], where: str, at: str, notes: list[str]) -> tuple[tuple[str, Any], ...]:
    extra = tuple((str(k), v) for k, v in d.items() if k not in known)
    for k, _ in extra:
        notes.append(f"{at}{k}: not a field symbiote reads; kept as given and written back")
    return extra


# --------------------------------------------------------------------------- field helpers


def _mapping(x: Any, where: str, at: str) -> Mapping:
    if not isinstance(x, dict):
        raise InteropError(f"{where}: {at}: expected a mapping, got {type(x).__name__} {x!r}"[:300])
    return x


def _list(x: Any, where: str, at: str) -> list:
    if not isinstance(x, list):
        raise InteropError(f"{where}: {at}: expected a list, got {type(x).__name__} {x!r}"[:300])
    return x


def _str_list(x: Any, where: str, at: str) -> list[str]:
    items = _list(x, where, at)
    for v in items:
        if not isinstance(v, str):
            raise InteropError(f"{where}: {at}: expected names, got {v!r}")
    return items


def _req(d: Mapping, key: str, where: str, at: str) -> Any:
    if key not in d:
        raise InteropError(f"{where}: {at}: missing (required)")
    return d[key]


def _int(x: Any, where: str, at: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int | float) or (isinstance(x, float) and not x.is_integer()):
        raise InteropError(f"{where}: {at}: expected an integer, got {x!r}")
    return int(x)


def _convert(x: Any, typ: type, where: str, at: str) -> Any:
    if typ is int:
        return _int(x, where, at)
    if typ is float:
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise InteropError(f"{where}: {at}: expected a number, got {x!r}")
        return float(x)
    if typ is bool:
        if not isinstance(x, bool):
            raise InteropError(f"{where}: {at}: expected true or false, got {x!r}")
        return x
    if not isinstance(x, str):
        raise InteropError(f"{where}: {at}: expected a string, got {x!r}")
    return x


def _get(d: Mapping, key: str, typ: type, where: str, at: str) -> Any:
    return _convert(_req(d, key, where, at), typ, where, at)


def _opt(d: Mapping, key: str, typ: type, where: str, at: str) -> Any:
    return None if d.get(key) is None else _convert(d[key], typ, where, at)


# --------------------------------------------------------------------------- writing


def zigzag_document(arch: Architecture, schema: str = "ports") -> dict:
    """The ZigZag YAML document of ``arch`` (a dict in ZigZag's key order)."""
    if schema not in SCHEMAS:
        raise ValueError(f"schema {schema!r} is not one of {SCHEMAS}")
    validate(arch)
    memories = {m.name: _memory_doc(m, schema, arch.name) for m in arch.memories}
    doc: dict[str, Any] = {"name": arch.name, "memories": memories, "operational_array": _array_doc(arch.array)}
    if arch.dataflows:
        doc["dataflows"] = {axis: [f"{d}, {f}" for d, f in unrolls] for axis, unrolls in arch.dataflows}
    doc.update(dict(arch.extra))
    return doc


def _memory_doc(m: MemoryLevel, schema: str, arch_name: str) -> dict:
    d: dict[str, Any] = {"size": m.size_bits}
    if schema == "legacy":
        d.update(_legacy_port_fields(m, arch_name))
    for key, v in (("r_cost", m.r_cost_pj), ("w_cost", m.w_cost_pj), ("area", m.area)):
        if v is not None:
            d[key] = v
    if schema == "legacy":
        kinds = m.port_kinds()
        d.update(r_port=kinds["read"], w_port=kinds["write"], rw_port=kinds["read_write"])
    d["latency"] = m.latency_cycles
    if m.mem_type != "sram":
        d["mem_type"] = m.mem_type
    if m.auto_cost_extraction:
        d["auto_cost_extraction"] = True
    d["operands"] = list(m.operands)
    if schema == "legacy":
        d["ports"] = [{direction: p.name for p in m.ports for op2, direction in p.allocation if op2 == op}
                      for op in m.operands]
    else:
        d["ports"] = [{"name": p.name, "type": p.kind, "bandwidth_min": p.bw_min_bits, "bandwidth_max": p.bw_max_bits,
                       "allocation": [f"{op}, {direction}" for op, direction in p.allocation]} for p in m.ports]
    d["served_dimensions"] = list(m.served_dims)
    if m.force_double_buffering:
        d["force_double_buffering"] = True
    d.update(dict(m.extra))
    return d


def _legacy_port_fields(m: MemoryLevel, arch_name: str) -> dict:
    """``r_bw``, ``w_bw`` and granularities of the legacy schema; :class:`InteropError` when the
    ports do not have the legacy form (names ``r_port_i``... numbered from 1 in order, one
    bandwidth per direction)."""
    at = f"{arch_name}: memories.{m.name}"
    expected = [f"{k}_port_{i}" for k, kind in (("r", "read"), ("w", "write"), ("rw", "read_write"))
                for i in range(1, m.port_kinds()[kind] + 1)]
    if [p.name for p in m.ports] != expected or any(_LEGACY_PORT.match(p.name).group(1) != {
            "read": "r", "write": "w", "read_write": "rw"}[p.kind] for p in m.ports):
        raise InteropError(f"{at}.ports: {[p.name for p in m.ports]} cannot be written in the legacy schema, whose "
                           f"ports are r_port_1.., w_port_1.., rw_port_1.. in that order")
    carried = [a for p in m.ports for a in p.allocation]
    twice = sorted({f"{op}, {d}" for op, d in carried if carried.count((op, d)) > 1})
    if twice:
        raise InteropError(f"{at}.ports: {'; '.join(twice)} carried by several ports: the legacy schema names one "
                           f"port per operand and direction")
    reads = {(p.bw_min_bits, p.bw_max_bits) for p in m.ports if p.reads}
    writes = {(p.bw_min_bits, p.bw_max_bits) for p in m.ports if p.writes}
    if len(reads) > 1 or len(writes) > 1:
        raise InteropError(f"{at}.ports: ports of one direction with different bandwidths ({sorted(reads | writes)}) "
                           f"cannot be written in the legacy schema (one r_bw, one w_bw)")
    (r_min, r_bw), = reads or {(0, 0)}
    (w_min, w_bw), = writes or {(0, 0)}
    d: dict[str, Any] = {"r_bw": r_bw, "w_bw": w_bw}
    if r_min != r_bw:
        d["min_r_granularity"] = r_min
    if w_min != w_bw:
        d["min_w_granularity"] = w_min
    return d


def _array_doc(a: OperationalArray) -> dict:
    d: dict[str, Any] = {}
    if a.is_imc:
        d["is_imc"] = True
    if a.imc_type is not None:
        d["imc_type"] = a.imc_type
    if a.input_precision is not None:
        d["input_precision"] = list(a.input_precision)
    if a.bit_serial_precision is not None:
        d["bit_serial_precision"] = _num(a.bit_serial_precision)
    if a.adc_resolution is not None:
        d["adc_resolution"] = _num(a.adc_resolution)
    if a.unit_energy_pj is not None:
        d["unit_energy"] = a.unit_energy_pj
    if a.unit_area is not None:
        d["unit_area"] = a.unit_area
    d["dimensions"] = [x.name for x in a.dims]
    d["sizes"] = [x.size for x in a.dims]
    if a.systolic_dims:
        d["systolic_dimensions"] = list(a.systolic_dims)
    d.update(dict(a.extra))
    return d


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def zigzag_yaml(arch: Architecture, schema: str = "ports") -> str:
    return yaml.safe_dump(zigzag_document(arch, schema), sort_keys=False, default_flow_style=None, width=100)


def to_zigzag(arch: Architecture, path: str | os.PathLike, schema: str = "ports") -> None:
    """Write ``arch`` as a ZigZag accelerator YAML file (atomically); ``schema``: ``ports``
    (ZigZag >= 3.8.2) or ``legacy`` (3.0 - 3.8.1)."""
    write_text(path, zigzag_yaml(arch, schema))


# --------------------------------------------------------------------------- ZigZag mappings

#: ZigZag's layer operands and the memory operands its shipped mapping files link them to
LAYER_OPERANDS = {"I": "I1", "W": "I2", "O": "O"}
#: ZigZag's GEMM dims (``O[d][k] += I[d][c] * W[c][k]``, its ONNX parser's) as the rank variables
#: of :func:`.interop_accelforge.gemm_workload_yaml`
GEMM_RANKS = {"D": "m", "C": "k", "K": "n"}
_LOOP = re.compile(r"^\(\s*([A-Za-z]+\d*)\s*,\s*([\d.]+)\s*\)$")


def loop_nest_from_zigzag(arch: Architecture, temporal: Mapping[str, Any], spatial: Mapping[str, Any],
                          memory_levels: Mapping[str, Any], extents: Mapping[str, int],
                          ranks: Mapping[str, str] = GEMM_RANKS, einsum: str = "Gemm"):
    """A mapping ZigZag chose (its cost model's ``temporal_mapping.mapping_dic_stationary`` and
    ``spatial_mapping_int``, as ``benchmarks/crosscheck_spatial_zigzag.py`` records them: per
    layer operand, per memory level, lowest first) as an :class:`.interop_accelforge.LoopNest`
    on ``arch`` (the same accelerator read by :func:`from_zigzag`), for AccelForge to evaluate.

    * the temporal loops: one order, innermost first, shared by every operand, which each cuts
      into its levels; a level's memory keeps its operand's tile over the loops of that level
      and below (ZigZag's stationary form already moves an irrelevant loop into the level that
      keeps the operand across it), so its storage node goes right above the level's loops;
    * the spatial unrolling: one (dim, factor) per array axis; the record does not name the
      axis, so each goes to the first axis left that holds it, in the axes' order; ZigZag's
      integer factor may fall short of the dim where it maps unevenly (a dim of 128 on 12 PEs
      with 10 temporal iterations), so the factor written is ``ceil(dim / temporal bounds)``;
      the loops are placed just above the first storage node of a memory not shared across
      the axis.

    ZigZag keeps each operand's hierarchy apart; a single AccelForge nest cannot always follow
    it: where a per-PE memory keeps one operand across a loop that a memory shared by the array
    must sit below for another operand (Eyeriss-like designs), the spatial loops have no place,
    and :func:`.interop_accelforge.mapping_nodes` says so (:class:`InteropError`).

    ``extents``: the layer's sizes by ZigZag dim; ``ranks``: the workload's rank variable of
    each ZigZag dim (:data:`GEMM_RANKS`)."""
    from symbiote.backends.spatial.interop_accelforge import Loop, LoopNest

    def parse(items: Any, at: str) -> list[tuple[str, float]]:
        out = []
        for x in items:
            if isinstance(x, str):
                m = _LOOP.match(x)
                if not m:
                    raise InteropError(f"ZigZag mapping: {at}: {x!r} is not '(DIM, FACTOR)'")
                out.append((m.group(1), float(m.group(2))))
            else:
                out.append((str(x[0]), float(x[1])))
        return out

    ops = sorted(temporal)
    inner_first = [lp for lvl in temporal[ops[0]] for lp in parse(lvl, f"temporal_mapping.{ops[0]}")]
    for op in ops[1:]:
        other = [lp for lvl in temporal[op] for lp in parse(lvl, f"temporal_mapping.{op}")]
        if other != inner_first:
            raise InteropError(f"ZigZag mapping: operand {op}'s loops {other} are not operand {ops[0]}'s "
                               f"{inner_first}: one loop order is expected")
    n = len(inner_first)
    outer_first = list(reversed(inner_first))
    for d, _ in inner_first:
        if d not in ranks:
            raise InteropError(f"ZigZag mapping: dim {d} has no rank variable in {dict(ranks)}")
    # storage nodes: (position among the outer-first loops, memory, memory operand)
    nodes: list[tuple[int, str, str]] = []
    for op in ops:
        names = memory_levels[op]
        if len(names) != len(temporal[op]):
            raise InteropError(f"ZigZag mapping: operand {op} has {len(names)} memory levels and "
                               f"{len(temporal[op])} temporal levels")
        inner = 0
        for name, lvl in zip(names, temporal[op]):
            inner += len(lvl)
            nodes.append((n - inner, name, LAYER_OPERANDS[op]))
    # the spatial unrolling, one per axis in order; factors cover what the temporal loops leave
    unrolled: list[tuple[str, float]] = []
    for lvl in spatial[ops[0]]:
        unrolled += parse(lvl, f"spatial_mapping.{ops[0]}")
    axes = arch.array.dims
    if len(unrolled) > len(axes):
        raise InteropError(f"ZigZag mapping: {len(unrolled)} spatial unrollings for {len(axes)} array axes")
    temporal_of = {d: math.prod(int(f) for x, f in inner_first if x == d) for d in extents}
    sp = []
    free = list(axes)
    for d, _ in unrolled:
        bound = -(-int(extents[d]) // temporal_of.get(d, 1))
        axis = next((a for a in free if bound <= a.size), None)   # ZigZag's records name no axis
        if axis is None:
            raise InteropError(f"ZigZag mapping: {d} needs {bound} units of an axis; left: "
                               f"{[(a.name, a.size) for a in free]}")
        free.remove(axis)
        sp.append(Loop(ranks[d], bound, axis.name))
    by_name = {m.name: m for m in arch.memories}
    order = {m.name: i for i, m in enumerate(top_down(arch))}
    nodes.sort(key=lambda x: (x[0], order[x[1]]))
    levels: list[list] = []
    placed_sp = False
    for i in range(n + 1):
        for pos, name, op in (x for x in nodes if x[0] == i):
            if not placed_sp and any(lp.axis not in by_name[name].served_dims for lp in sp):
                levels[-1][1].extend(sp)
                placed_sp = True
            levels.append([name, [], (op,)])
        if i < n:
            d, f = outer_first[i]
            levels[-1][1].append(Loop(ranks[d], int(f)))
    if not placed_sp:
        levels[-1][1].extend(sp)
    return LoopNest(einsum, tuple((ranks[d], int(e)) for d, e in extents.items()),
                    tuple((name, tuple(lps), op) for name, lps, op in levels))
