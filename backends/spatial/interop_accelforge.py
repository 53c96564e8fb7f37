"""AccelForge YAML: an :class:`.interop_arch.Architecture` as an AccelForge architecture spec
(:func:`to_accelforge` / :func:`from_accelforge`), one layer as an AccelForge workload
(:func:`gemm_workload_yaml`, :func:`conv_workload_yaml`) and a per-layer loop nest as an
AccelForge mapping (:func:`mapping_to_accelforge_yaml`), so that AccelForge
(``Spec.from_yaml(arch, workload, mapping).evaluate_mapping()``, PyPI ``accelforge``, Python
3.12; see ``benchmarks/crosscheck_accelforge.py`` for how this repository runs it) evaluates
exactly a mapping symbiote or ZigZag chose.

The architecture, from the top down (:func:`.interop_arch.top_down`)::

    arch:
      nodes:
      - !Memory {name: dram, size: ..., tensors: {keep: input | weight | output}, actions: [read, write]}
      - !Memory ...                                   # memories shared across every axis
      - !Container {name: array_D1_D2, spatial: [{name: D1, fanout: 14}, {name: D2, fanout: 12}]}
      - !Memory ...                                   # one per MAC unit (ZigZag's served_dimensions: [])
      - !Compute {name: MAC, actions: [compute]}

* a memory sits below the containers of the axes it is not shared across and above those it
  is (ZigZag's ``served_dimensions``); a container holds the axes between two memories;
* ``tensors.keep``: the memory's operands by their roles (``input``, ``weight``,
  ``output``: the workload's ``renames`` name its tensors so, as :func:`gemm_workload_yaml`
  writes them);
* actions: ``read`` / ``write`` with ZigZag's ``r_cost`` / ``w_cost`` as the energy of one
  access of ``bits_per_action`` = the widest read / write port (a ZigZag access moves one word
  of the port's bandwidth), ``throughput`` = ports that can read (write) x the clock; compute:
  ``unit_energy`` per MAC, one per cycle. Energies stay in the file's pJ (AccelForge's totals
  are then in pJ, as in ``benchmarks/accelforge/systolic.arch.yaml``); areas in the file's unit;
  no leakage (ZigZag has none).

What AccelForge's architecture has no place for is named in the written file's header and
rebuilt by :func:`from_accelforge` from defaults, listed in the returned architecture's
``notes``: the ports (one read and one write port, or one read_write, of the action's width),
the latency in cycles, ``mem_type``, ``auto_cost_extraction``, ``force_double_buffering``,
the systolic axes, ZigZag's ``dataflows`` and IMC fields. A design whose memories are shared
across axes that do not nest (one memory across D1 only, another across D2 only) has no single
container hierarchy and is refused (:class:`.interop_arch.InteropError`).

A mapping (:class:`LoopNest`) lists storage nodes, outer first, each with the loops directly
below it, outermost first: temporal loops and spatial ones (``Loop(dim, bound, axis)``, placed
below every memory shared across the axis and above the others). A storage node keeps a memory's
operands (all of them, or a subset: a memory holding several operands may keep each at its own
place); every operand of every memory has exactly one, an operand's memories in their
top-down order, those of different operands in any order. In AccelForge a tile is kept across
the loops below its node and refetched at every iteration of those above it, relevant or not
(so a weight register placed above a loop over the rows keeps its weight while that loop
runs). The written mapping has, in order, each ``!Storage`` node, its loops as ``!Temporal`` /
``!Spatial`` nodes with AccelForge's ``tile_shape`` (the product of the bounds of the same
dim's loops inside the loop: where the bounds' product exceeds the extent, the outermost loop
of the dim runs ``ceil(extent / tile)`` times and the last tile is partial: AccelForge's
imperfect tiles, and the padding of :mod:`.mapping`'s factors), and the ``!Compute`` node.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from symbiote.backends.spatial.interop_arch import (
    OPERANDS,
    ROLES,
    Architecture,
    ArrayDim,
    InteropError,
    MemoryLevel,
    OperationalArray,
    Port,
    top_down,
    hierarchy,
    validate,
)
from symbiote.fileio import write_text

COMPUTE = "MAC"
#: the workload's tensor of each operand, as :func:`gemm_workload_yaml` names them
TENSORS = {"I1": "I", "I2": "W", "O": "O"}
_ROLE_OPERAND = {v: k for k, v in ROLES.items()}
LOST = ("ports (rebuilt: one read and one write port of the action's width)", "latency (cycles; 1)",
        "mem_type, auto_cost_extraction, force_double_buffering", "systolic_dimensions, input_precision, IMC fields",
        "dataflows")


# --------------------------------------------------------------------------- YAML with tags


@dataclass(frozen=True)
class Tagged:
    """A YAML mapping with an AccelForge node tag (``!Memory``, ``!Temporal``...)."""

    tag: str
    fields: tuple[tuple[str, Any], ...]

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.fields).get(key, default)


class _Dumper(yaml.SafeDumper):
    pass


class _Loader(yaml.SafeLoader):
    pass


def _represent(dumper: yaml.SafeDumper, node: Tagged) -> yaml.Node:
    flow = node.tag in ("Storage", "Temporal", "Spatial", "Compute")
    return dumper.represent_mapping("!" + node.tag, dict(node.fields), flow_style=flow or None)


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
    return Tagged(suffix, tuple(loader.construct_mapping(node, deep=True).items()))


_Dumper.add_representer(Tagged, _represent)
_Loader.add_multi_constructor("!", _construct)


def _dump(doc: Any, header: str = "") -> str:
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + body


# --------------------------------------------------------------------------- architecture


def containers(arch: Architecture) -> tuple[tuple[int, tuple[ArrayDim, ...]], ...]:
    """Where the array's axes go in the top-down order: ``(i, axes)`` = a container holding
    ``axes`` just above the ``i``-th memory of :func:`.interop_arch.top_down` (``i = len`` of
    the memories: just above the compute units)."""
    order = top_down(arch)
    out = []
    above = {d.name for d in arch.array.dims}   # axes still to place (served by all above)
    for i, m in enumerate(order):
        drop = tuple(d for d in arch.array.dims if d.name in above and d.name not in m.served_dims)
        if drop:
            out.append((i, drop))
            above -= {d.name for d in drop}
    rest = tuple(d for d in arch.array.dims if d.name in above)
    if rest:
        out.append((len(order), rest))
    return tuple(out)


def container_name(axes: Sequence[ArrayDim]) -> str:
    return "array_" + "_".join(d.name for d in axes)


def _keep(m: MemoryLevel) -> str:
    return " | ".join(ROLES[op] for op in m.operands)


def _memory_node(m: MemoryLevel, clock_hz: float) -> Tagged:
    if m.r_cost_pj is None or m.w_cost_pj is None:
        raise InteropError(f"memories.{m.name}: r_cost / w_cost not given (left to ZigZag's CACTI extraction): "
                           f"AccelForge needs each action's energy; give them in the ZigZag file")
    actions = [
        {"name": "read", "energy": m.r_cost_pj, "bits_per_action": m.read_bw_bits or 1,
         "throughput": m.read_ports * clock_hz},
        {"name": "write", "energy": m.w_cost_pj, "bits_per_action": m.write_bw_bits or m.read_bw_bits or 1,
         "throughput": (m.write_ports or m.read_ports) * clock_hz},
    ]
    return Tagged("Memory", (("name", m.name), ("size", m.size_bits), ("leak_power", 0), ("area", m.area or 0.0),
                             ("tensors", {"keep": _keep(m)}), ("actions", actions)))


def accelforge_arch_document(arch: Architecture, clock_ghz: float = 1.0) -> dict:
    """The AccelForge architecture document of ``arch`` (see the module doc)."""
    validate(arch)
    clock_hz = clock_ghz * 1e9
    order = top_down(arch)
    where = dict(containers(arch))
    nodes: list[Tagged] = []
    for i, m in enumerate(order):
        if i in where:
            nodes.append(_container_node(where[i]))
        nodes.append(_memory_node(m, clock_hz))
    if len(order) in where:
        nodes.append(_container_node(where[len(order)]))
    a = arch.array
    nodes.append(Tagged("Compute", (("name", COMPUTE), ("leak_power", 0), ("area", a.unit_area or 0.0),
                                    ("actions", [{"name": "compute", "energy": a.unit_energy_pj or 0.0,
                                                  "throughput": clock_hz}]))))
    return {"arch": {"nodes": nodes}}


def _container_node(axes: Sequence[ArrayDim]) -> Tagged:
    return Tagged("Container", (("name", container_name(axes)),
                                ("spatial", [{"name": d.name, "fanout": d.size} for d in axes])))


def accelforge_arch_yaml(arch: Architecture, clock_ghz: float = 1.0) -> str:
    header = (f"{arch.name}: written by symbiote (backends/spatial/interop_accelforge.py) from a ZigZag-style "
              f"architecture.\nEnergies in pJ per access of bits_per_action bits (per MAC for the compute); "
              f"areas in the source's unit; clock {clock_ghz} GHz.\nNot expressible here (rebuilt from defaults "
              f"when read back): " + "; ".join(LOST) + ".")
    return _dump(accelforge_arch_document(arch, clock_ghz), header)


def to_accelforge(arch: Architecture, path: str | os.PathLike, clock_ghz: float = 1.0) -> None:
    """Write ``arch`` as an AccelForge architecture YAML file (atomically)."""
    write_text(path, accelforge_arch_yaml(arch, clock_ghz))


def from_accelforge(path: str | os.PathLike, clock_ghz: float = 1.0) -> Architecture:
    """Read an AccelForge architecture of the form :func:`to_accelforge` writes (memories,
    containers and one compute node in one hierarchy; numeric sizes, energies and throughputs;
    ``keep`` sets of ``input`` / ``weight`` / ``output``), back into an :class:`Architecture`;
    what AccelForge cannot hold is rebuilt from defaults and listed in ``notes``."""
    p = Path(path)
    try:
        text = p.read_text()
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except OSError as e:
        raise InteropError(f"{p}: cannot read architecture file: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise InteropError(f"{p}: not valid YAML: {' '.join(str(e).split())}") from None
    first = text.split("\n", 1)[0]
    name = first[2:].split(": written by symbiote", 1)[0] if ": written by symbiote" in first else p.name.split(".")[0]
    return parse_accelforge(doc, str(p), clock_ghz, name)


def parse_accelforge(doc: Any, where: str = "<accelforge>", clock_ghz: float = 1.0, name: str = "accelforge") -> Architecture:
    if not isinstance(doc, dict) or not isinstance(doc.get("arch"), dict) or not isinstance(doc["arch"].get("nodes"), list):
        raise InteropError(f"{where}: arch.nodes: missing (an AccelForge architecture is 'arch: {{nodes: [...]}}')")
    clock_hz = clock_ghz * 1e9
    axes: list[ArrayDim] = []
    mems: list[MemoryLevel] = []
    compute = None
    all_axes = [ArrayDim(str(s["name"]), int(s["fanout"])) for n in doc["arch"]["nodes"]
                if isinstance(n, Tagged) and n.tag == "Container" for s in n.get("spatial", [])]
    for i, node in enumerate(doc["arch"]["nodes"]):
        at = f"arch.nodes[{i}]"
        if not isinstance(node, Tagged):
            raise InteropError(f"{where}: {at}: expected a !Memory, !Container or !Compute node, got {node!r}"[:300])
        if node.tag == "Container":
            axes += [ArrayDim(str(s["name"]), int(s["fanout"])) for s in node.get("spatial", [])]
        elif node.tag == "Memory":
            served = tuple(d.name for d in all_axes if d not in axes)
            mems.append(_memory_from(node, served, clock_hz, where, f"{at} ({node.get('name')})"))
        elif node.tag == "Compute":
            compute = node
        else:
            raise InteropError(f"{where}: {at}: node kind !{node.tag} is not read (only !Memory, !Container, !Compute)")
    if compute is None:
        raise InteropError(f"{where}: arch.nodes: no !Compute node")
    energy = {a["name"]: a for a in compute.get("actions", [])}.get("compute", {}).get("energy")
    array = OperationalArray(dims=tuple(all_axes), unit_energy_pj=None if energy is None else float(energy),
                             unit_area=float(compute.get("area", 0.0)))
    return validate(Architecture(name, tuple(reversed(mems)), array,
                                 notes=tuple(f"not in AccelForge's architecture, rebuilt from defaults: {x}" for x in LOST)),
                    where)


def _memory_from(node: Tagged, served: tuple[str, ...], clock_hz: float, where: str, at: str) -> MemoryLevel:
    keep = str((node.get("tensors") or {}).get("keep", ""))
    roles = [r.strip() for r in keep.split("|") if r.strip()]
    bad = [r for r in roles if r not in _ROLE_OPERAND]
    if bad or not roles:
        raise InteropError(f"{where}: {at}.tensors.keep: {keep!r}: expected roles input | weight | output")
    acts = {a["name"]: a for a in node.get("actions", [])}
    for k in ("read", "write"):
        if k not in acts:
            raise InteropError(f"{where}: {at}.actions: no {k} action")
    operands = tuple(op for op in OPERANDS if ROLES[op] in roles)
    rb, wb = int(acts["read"].get("bits_per_action", 1)), int(acts["write"].get("bits_per_action", 1))
    reads = max(1, round(float(acts["read"].get("throughput", clock_hz)) / clock_hz))
    writes = max(1, round(float(acts["write"].get("throughput", clock_hz)) / clock_hz))
    ports = tuple([Port(f"r_port_{i + 1}", "read", rb, rb, tuple((op, d) for op in operands for d in ("tl", "th")))
                   for i in range(reads)]
                  + [Port(f"w_port_{i + 1}", "write", wb, wb, tuple((op, d) for op in operands for d in ("fh", "fl")))
                     for i in range(writes)])
    size = node.get("size")
    if not isinstance(size, int | float) or isinstance(size, bool) or not math.isfinite(size):
        raise InteropError(f"{where}: {at}.size: {size!r}: expected a finite number of bits")
    return MemoryLevel(name=str(node.get("name")), size_bits=int(size), operands=operands, ports=ports,
                       served_dims=served, r_cost_pj=float(acts["read"].get("energy", 0.0)),
                       w_cost_pj=float(acts["write"].get("energy", 0.0)), area=float(node.get("area", 0.0)))


# --------------------------------------------------------------------------- workloads


def gemm_workload_yaml(m: int, k: int, n: int, bits: Mapping[str, int] | None = None, einsum: str = "Gemm") -> str:
    """One ``O[m, n] = I[m, k] * W[k, n]`` GEMM as an AccelForge workload (rank variables m, k,
    n; tensors I, W, O renamed to input, weight, output). ``bits``: per tensor (default 8)."""
    b = {"I": 8, "W": 8, "O": 8, **(bits or {})}
    doc = {"workload": {
        "iteration_space_shape": {"m": f"0 <= m < {m}", "k": f"0 <= k < {k}", "n": f"0 <= n < {n}"},
        "bits_per_value": {t: b[t] for t in ("I", "W", "O")},
        "einsums": [{"name": einsum, "tensor_accesses": [
            {"name": "I", "projection": ["m", "k"]}, {"name": "W", "projection": ["k", "n"]},
            {"name": "O", "projection": ["m", "n"], "output": True}],
            "renames": {"input": "I", "weight": "W", "output": "O"}}]}}
    return _dump(doc, f"GEMM {m}x{k}x{n}: written by symbiote (backends/spatial/interop_accelforge.py)")


def conv_workload_yaml(n: int, k: int, c: int, p: int, q: int, r: int, s: int, stride: tuple[int, int] = (1, 1),
                       dilation: tuple[int, int] = (1, 1), bits: Mapping[str, int] | None = None,
                       einsum: str = "Conv") -> str:
    """One convolution ``O[n,k,p,q] += I[n,c,h,w] * W[k,c,r,s]`` with ``h = stride*p + dilation*r``
    as an AccelForge workload (rank variables n k c p q r s)."""
    b = {"I": 8, "W": 8, "O": 8, **(bits or {})}
    (sh, sw), (dh, dw) = stride, dilation
    dims = {"n": n, "k": k, "c": c, "p": p, "q": q, "r": r, "s": s}
    doc = {"workload": {
        "iteration_space_shape": {d: f"0 <= {d} < {v}" for d, v in dims.items()},
        "bits_per_value": {t: b[t] for t in ("I", "W", "O")},
        "einsums": [{"name": einsum, "tensor_accesses": [
            {"name": "I", "projection": {"N": "n", "C": "c", "H": f"{sh}*p + {dh}*r", "W": f"{sw}*q + {dw}*s"}},
            {"name": "W", "projection": ["k", "c", "r", "s"]},
            {"name": "O", "projection": ["n", "k", "p", "q"], "output": True}],
            "renames": {"input": "I", "weight": "W", "output": "O"}}]}}
    return _dump(doc, "convolution: written by symbiote (backends/spatial/interop_accelforge.py)")


# --------------------------------------------------------------------------- mappings


@dataclass(frozen=True)
class Loop:
    """One loop: ``bound`` iterations over the layer's rank variable ``dim``; ``axis``: the
    array axis it is unrolled over (a spatial loop), ``None`` for a temporal loop."""

    dim: str
    bound: int
    axis: str | None = None


@dataclass(frozen=True)
class LoopNest:
    """A per-layer mapping: the layer's extents, and its storage nodes, outer first, each with
    the loops directly below it, outermost first (module doc). A level is ``(memory, loops)``
    (a storage node of all the memory's operands) or ``(memory, loops, operands)`` (of those
    operands only: a memory holding several operands may keep each at its own place)."""

    einsum: str
    extents: tuple[tuple[str, int], ...]
    levels: tuple[tuple, ...]


def _levels(nest: LoopNest, by_name: Mapping[str, MemoryLevel]) -> list[tuple[str, tuple[Loop, ...], tuple[str, ...]]]:
    out = []
    for lv in nest.levels:
        if len(lv) not in (2, 3) or lv[0] not in by_name:
            raise InteropError(f"mapping of {nest.einsum}: level {lv!r} is not (memory, loops[, operands]) with a "
                               f"memory of the architecture ({', '.join(by_name)})")
        ops = tuple(lv[2]) if len(lv) == 3 else by_name[lv[0]].operands
        bad = [op for op in ops if op not in by_name[lv[0]].operands]
        if bad or not ops:
            raise InteropError(f"mapping of {nest.einsum}: {lv[0]} does not hold {bad or 'no operand'}")
        out.append((lv[0], tuple(lv[1]), ops))
    return out


def mapping_nodes(arch: Architecture, nest: LoopNest, tensors: Mapping[str, str] | None = None) -> list[Tagged]:
    """The AccelForge mapping nodes of ``nest`` on ``arch``; :class:`InteropError` naming the
    memory or loop when the nest does not fit the architecture: an operand of a memory with no
    storage node or with two, an operand's memories out of their top-down order, a spatial loop
    above a memory shared across its axis or below one that is not, bounds that do not cover an
    extent or use more units than an axis has."""
    names = {**TENSORS, **(tensors or {})}
    top_down(arch)  # the architecture has one container hierarchy
    axis_box = {d.name: axes for _, axes in containers(arch) for d in axes}
    by_name = {m.name: m for m in arch.memories}
    levels = _levels(nest, by_name)
    given = [(m, op) for m, _, ops in levels for op in ops]
    missing = [f"{m.name}.{op}" for m in arch.memories for op in m.operands if (m.name, op) not in given]
    twice = sorted({f"{m}.{op}" for m, op in given if given.count((m, op)) > 1})
    if missing or twice:
        raise InteropError(f"mapping of {nest.einsum} on {arch.name}: every memory's operands once "
                           f"(missing {missing}, given twice {twice})")
    for op in OPERANDS:
        want = [m.name for m in reversed(hierarchy(arch, op))]
        got = [m for m, o in given if o == op]
        if got != want:
            raise InteropError(f"mapping of {nest.einsum} on {arch.name}: operand {op}'s memories are {got}, "
                               f"they must come from the top down: {want}")
    extents = dict(nest.extents)
    every = [lp for _, loops, _ in levels for lp in loops]
    for lp in every:
        if lp.dim not in extents:
            raise InteropError(f"mapping of {nest.einsum}: loop {lp.dim} x{lp.bound}: {lp.dim!r} is not a dim of the "
                               f"layer ({', '.join(extents)})")
    covered = {d: math.prod(lp.bound for lp in every if lp.dim == d) for d in extents}
    short = {d: f"{covered[d]} < {e}" for d, e in extents.items() if covered[d] < e}
    if short:
        raise InteropError(f"mapping of {nest.einsum}: the loops' bounds do not cover the layer's extents: {short}")
    tile = dict(covered)          # a loop's tile: the product of the bounds of its dim's loops inside it
    used: dict[str, int] = {}
    placed: set[tuple[str, str]] = set()
    nodes: list[Tagged] = []
    for mname, loops, ops in levels:
        m = by_name[mname]
        nodes.append(Tagged("Storage", (("tensors", [names[op] for op in ops]), ("component", m.name))))
        placed |= {(m.name, op) for op in ops}
        for loop in loops:
            at = f"mapping of {nest.einsum}: {m.name}: loop {loop.dim} x{loop.bound}"
            if loop.bound < 1:
                raise InteropError(f"{at}: bound must be >= 1")
            tile[loop.dim] //= loop.bound
            if loop.axis is None:
                nodes.append(Tagged("Temporal", (("rank_variable", loop.dim), ("tile_shape", tile[loop.dim]))))
                continue
            if loop.axis not in axis_box:
                raise InteropError(f"{at}: {loop.axis!r} is not an axis of {arch.name} ({', '.join(arch.array.names)})")
            wrong = sorted({x.name for x in arch.memories for op in x.operands
                            if (loop.axis in x.served_dims) != ((x.name, op) in placed)})
            if wrong:
                raise InteropError(f"{at} on {loop.axis}: the memories shared across {loop.axis} must come before it "
                                   f"and the others after it; not so for {wrong}")
            size = arch.array.size(loop.axis)
            used[loop.axis] = used.get(loop.axis, 1) * loop.bound
            if used[loop.axis] > size:
                raise InteropError(f"{at}: axis {loop.axis} has {size} units, the loops on it use {used[loop.axis]}")
            nodes.append(Tagged("Spatial", (("rank_variable", loop.dim), ("tile_shape", tile[loop.dim]),
                                            ("name", loop.axis), ("component", container_name(axis_box[loop.axis])))))
    nodes.append(Tagged("Compute", (("einsum", nest.einsum), ("component", COMPUTE))))
    return nodes


def mapping_to_accelforge_yaml(arch: Architecture, nest: LoopNest, tensors: Mapping[str, str] | None = None) -> str:
    """The AccelForge mapping YAML of ``nest`` on ``arch`` (``tensors``: the workload's tensor
    name of each operand, default :data:`TENSORS`)."""
    lines = [f"{nest.einsum} on {arch.name}: written by symbiote (backends/spatial/interop_accelforge.py)"]
    for lv in nest.levels:
        m, loops = lv[0], lv[1]
        m = m if len(lv) == 2 else f"{m} ({', '.join(names_of(lv[2], tensors))})"
        lines.append(f"  {m}: " + (", ".join(f"{lp.dim} x{lp.bound}" + (f" on {lp.axis}" if lp.axis else "")
                                              for lp in loops) or "-"))
    return _dump({"mapping": {"nodes": mapping_nodes(arch, nest, tensors)}}, "\n".join(lines))


def names_of(operands, tensors: Mapping[str, str] | None = None) -> list[str]:
    names = {**TENSORS, **(tensors or {})}
    return [names[op] for op in operands]


def write_mapping(arch: Architecture, nest: LoopNest, path: str | os.PathLike,
                  tensors: Mapping[str, str] | None = None) -> None:
    write_text(path, mapping_to_accelforge_yaml(arch, nest, tensors))
