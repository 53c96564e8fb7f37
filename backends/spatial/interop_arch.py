"""An accelerator architecture as ZigZag and AccelForge describe one: typed, frozen, tool-neutral.

This is the common form the interoperability modules read into and write from
(:mod:`.interop_zigzag`: ZigZag 3.x accelerator YAML; :mod:`.interop_accelforge`: AccelForge
architecture and mapping YAML), and that :func:`to_design` / :func:`from_design` turn into the
``spatial`` template's knobs and back. It follows ZigZag's model of a core, the richer of the
two for a single accelerator:

* an **operational array** of MAC units with one or more named axes (``D1``, ``D2``, ``D3``...)
  and their sizes, the energy of one MAC (pJ) and the area of one unit (the file's unit);
* a list of **memory levels**, lowest (closest to the MACs) first, as ZigZag lists them. Each
  has a size in bits; the **memory operands** it holds (``I1`` inputs, ``I2`` weights, ``O``
  outputs and partial sums: ZigZag's names, linked to a layer's ``I``/``W``/``O`` by its
  mapping file's ``memory_operand_links``, ``I: I1, W: I2, O: O`` in every file ZigZag ships;
  one memory may hold several operands: a *shared* memory); its **ports** (name, read / write /
  read_write, minimum and maximum bandwidth in bits per cycle, and which operand and data
  direction each port carries: ``fh`` from higher level, ``tl`` to lower, ``fl`` from lower,
  ``th`` to higher); the read and write energy per access (pJ; an access moves one word of the
  port's bandwidth); area; latency in cycles; and its **served dimensions**: the array axes one
  instance of it is shared across (``[]``: one instance per MAC unit; all axes: one instance
  for the whole array). A memory exists in ``prod(size of the axes it does not serve)``
  instances (:func:`instances`).

Fields a tool defines that nothing here models are kept verbatim (``extra``) so that a file read
and written back loses nothing; :func:`validate` checks the references between the parts
(operands, axes, port allocations) and raises :class:`InteropError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from symbiote.errors import HardwareError

#: ZigZag's memory operands: inputs (activations), weights, outputs / partial sums
OPERANDS = ("I1", "I2", "O")
#: the operand's role in a layer (the names AccelForge's renames and symbiote's templates use)
ROLES = {"I1": "input", "I2": "weight", "O": "output"}
#: data directions a port allocation names: from higher, to lower, from lower, to higher level
DIRECTIONS = ("fh", "tl", "fl", "th")
PORT_KINDS = ("read", "write", "read_write")
#: directions that write into the memory (a read port cannot carry them) and that read from it
WRITE_DIRECTIONS = ("fh", "fl")
READ_DIRECTIONS = ("tl", "th")


class InteropError(HardwareError):
    """An accelerator file (ZigZag or AccelForge) is malformed, or a design cannot be expressed
    in the other tool's terms; the message names the file and the field."""


Extra = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Port:
    """One port of a memory: ``kind`` is read, write or read_write; bandwidths in bits per
    cycle; ``allocation``: the (operand, direction) pairs it carries."""

    name: str
    kind: str
    bw_min_bits: int
    bw_max_bits: int
    allocation: tuple[tuple[str, str], ...]

    @property
    def reads(self) -> bool:
        return self.kind in ("read", "read_write")

    @property
    def writes(self) -> bool:
        return self.kind in ("write", "read_write")


@dataclass(frozen=True)
class MemoryLevel:
    """One memory of the hierarchy (see the module doc); energies in pJ per access of one word
    (``None``: not given, e.g. left to ZigZag's CACTI extraction)."""

    name: str
    size_bits: int
    operands: tuple[str, ...]
    ports: tuple[Port, ...]
    served_dims: tuple[str, ...]
    r_cost_pj: float | None = None
    w_cost_pj: float | None = None
    area: float | None = None
    latency_cycles: int = 1
    mem_type: str = "sram"
    auto_cost_extraction: bool = False
    force_double_buffering: bool = False
    extra: Extra = ()

    @property
    def read_bw_bits(self) -> int:
        """The widest read of one port (bits per cycle): the word a read access moves."""
        return max((p.bw_max_bits for p in self.ports if p.reads), default=0)

    @property
    def write_bw_bits(self) -> int:
        return max((p.bw_max_bits for p in self.ports if p.writes), default=0)

    @property
    def read_ports(self) -> int:
        """Ports that can read (read and read_write)."""
        return sum(p.reads for p in self.ports)

    @property
    def write_ports(self) -> int:
        return sum(p.writes for p in self.ports)

    def port_kinds(self) -> dict[str, int]:
        """How many ports of each kind (``{"read": 1, "write": 1, "read_write": 0}``)."""
        return {k: sum(p.kind == k for p in self.ports) for k in PORT_KINDS}


@dataclass(frozen=True)
class ArrayDim:
    name: str
    size: int


@dataclass(frozen=True)
class OperationalArray:
    """The MAC array: its axes, one MAC's energy (pJ) and one unit's area (the file's unit).
    ``systolic_dims``: axes along which operands move one unit per cycle (ZigZag 3.9); the
    ``imc_*`` fields describe an in-memory-computing array, kept as given."""

    dims: tuple[ArrayDim, ...]
    unit_energy_pj: float | None = None
    unit_area: float | None = None
    input_precision: tuple[int, ...] | None = None
    systolic_dims: tuple[str, ...] = ()
    is_imc: bool = False
    imc_type: str | None = None
    adc_resolution: float | None = None
    bit_serial_precision: float | None = None
    extra: Extra = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dims)

    @property
    def units(self) -> int:
        return math.prod(d.size for d in self.dims)

    def size(self, name: str) -> int:
        for d in self.dims:
            if d.name == name:
                return d.size
        raise KeyError(name)


@dataclass(frozen=True)
class Architecture:
    """An accelerator: a name, its memories (lowest first) and its operational array.
    ``dataflows``: ZigZag's optional fixed spatial unrollings, per array axis the (layer dim,
    factor) pairs. ``extra``: top-level fields kept as read. ``notes``: what a reader noticed
    and did (a duplicated key, a field kept verbatim); not part of equality."""

    name: str
    memories: tuple[MemoryLevel, ...]
    array: OperationalArray
    dataflows: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    extra: Extra = ()
    notes: tuple[str, ...] = field(default=(), compare=False)


# --------------------------------------------------------------------------- queries


def memory(arch: Architecture, name: str) -> MemoryLevel:
    for m in arch.memories:
        if m.name == name:
            return m
    raise InteropError(f"{arch.name}: no memory named {name!r} (memories: {', '.join(m.name for m in arch.memories)})")


def hierarchy(arch: Architecture, operand: str) -> tuple[MemoryLevel, ...]:
    """The memories holding ``operand``, lowest first."""
    return tuple(m for m in arch.memories if operand in m.operands)


def instances(arch: Architecture, mem: MemoryLevel) -> int:
    """How many copies of ``mem`` the chip has: one per point of the axes it does not serve."""
    return math.prod(d.size for d in arch.array.dims if d.name not in mem.served_dims)


def shared(mem: MemoryLevel) -> bool:
    """A memory holding more than one operand."""
    return len(mem.operands) > 1


def with_note(arch: Architecture, *notes: str) -> Architecture:
    return replace(arch, notes=arch.notes + tuple(notes))


# --------------------------------------------------------------------------- checks


def validate(arch: Architecture, where: str = "") -> Architecture:
    """``arch`` itself when consistent; else :class:`InteropError` naming the field.

    Checks: unique memory and axis names, positive sizes, known operands and directions, served
    dimensions among the array's axes, ports with unique names, min <= max bandwidth, every
    allocation on an operand of its memory and in a direction its port kind can carry, and every
    operand held by at least one memory.
    """
    at = f"{where}: " if where else f"{arch.name}: "
    names = [d.name for d in arch.array.dims]
    if not names:
        raise InteropError(f"{at}operational_array.dimensions: no array axes")
    _unique(names, f"{at}operational_array.dimensions")
    for d in arch.array.dims:
        if d.size < 0:
            raise InteropError(f"{at}operational_array.sizes: axis {d.name} has size {d.size} (must be >= 0)")
    for s in arch.array.systolic_dims:
        if s not in names:
            raise InteropError(f"{at}operational_array.systolic_dimensions: {s!r} is not an axis ({', '.join(names)})")
    _unique([m.name for m in arch.memories], f"{at}memories")
    for m in arch.memories:
        _validate_memory(m, names, f"{at}memories.{m.name}")
    for op in OPERANDS:
        if not hierarchy(arch, op):
            raise InteropError(f"{at}memories: no memory holds operand {op} ({ROLES[op]}s)")
    for axis, unrolls in arch.dataflows:
        if axis not in names:
            raise InteropError(f"{at}dataflows.{axis}: not an axis of the operational array ({', '.join(names)})")
        for dim, factor in unrolls:
            if factor < 1:
                raise InteropError(f"{at}dataflows.{axis}: {dim} unrolled {factor} times (must be >= 1)")
    return arch


def _unique(names: list[str], where: str) -> None:
    seen = set()
    for n in names:
        if n in seen:
            raise InteropError(f"{where}: {n!r} appears twice")
        seen.add(n)


def _validate_memory(m: MemoryLevel, axes: list[str], at: str) -> None:
    if m.size_bits <= 0:
        raise InteropError(f"{at}.size: {m.size_bits} bits (must be > 0)")
    if not m.operands:
        raise InteropError(f"{at}.operands: holds no operand")
    for op in m.operands:
        if op not in OPERANDS:
            raise InteropError(f"{at}.operands: {op!r} is not one of {', '.join(OPERANDS)}")
    _unique(list(m.operands), f"{at}.operands")
    for d in m.served_dims:
        if d not in axes:
            raise InteropError(f"{at}.served_dimensions: {d!r} is not an axis of the operational array "
                               f"({', '.join(axes)})")
    if not m.auto_cost_extraction:
        for fld, v in (("r_cost", m.r_cost_pj), ("w_cost", m.w_cost_pj), ("area", m.area)):
            if v is None:
                raise InteropError(f"{at}.{fld}: missing (required unless auto_cost_extraction is true)")
    if not m.ports:
        raise InteropError(f"{at}.ports: no ports")
    _unique([p.name for p in m.ports], f"{at}.ports")
    for p in m.ports:
        pat = f"{at}.ports.{p.name}"
        if p.kind not in PORT_KINDS:
            raise InteropError(f"{pat}.type: {p.kind!r} is not one of {', '.join(PORT_KINDS)}")
        if p.bw_min_bits > p.bw_max_bits:
            raise InteropError(f"{pat}: bandwidth_min {p.bw_min_bits} > bandwidth_max {p.bw_max_bits}")
        if p.bw_max_bits <= 0:
            raise InteropError(f"{pat}.bandwidth_max: {p.bw_max_bits} (must be > 0)")
        for op, direction in p.allocation:
            if op not in m.operands:
                raise InteropError(f"{pat}.allocation: operand {op} is not held by {m.name} "
                                   f"(operands: {', '.join(m.operands)})")
            if direction not in DIRECTIONS:
                raise InteropError(f"{pat}.allocation: direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
            if direction in WRITE_DIRECTIONS and p.kind == "read":
                raise InteropError(f"{pat}.allocation: a read port carries '{op}, {direction}' (a write into {m.name})")
            if direction in READ_DIRECTIONS and p.kind == "write":
                raise InteropError(f"{pat}.allocation: a write port carries '{op}, {direction}' (a read from {m.name})")


def top_down(arch: Architecture) -> tuple[MemoryLevel, ...]:
    """The memories from the top (DRAM) down, in an order where each memory is shared across at
    least the axes of every memory below it (the nesting a single hierarchy of containers, as
    AccelForge's or Timeloop's, needs); per operand, ZigZag's order is kept.

    The file's order reversed, stably sorted by the number of axes served (more first); raises
    :class:`InteropError` naming the memories when the served axes of two memories are not
    nested (one shared across D1 only, another across D2 only), or when an operand's order would
    change.
    """
    order = sorted(reversed(arch.memories), key=lambda m: -len(m.served_dims))
    for upper, lower in zip(order, order[1:]):
        if not set(lower.served_dims) <= set(upper.served_dims):
            raise InteropError(
                f"{arch.name}: memories {upper.name} (served_dimensions {list(upper.served_dims)}) and {lower.name} "
                f"({list(lower.served_dims)}) are not nested: one hierarchy of array containers cannot place both")
    for op in OPERANDS:
        file_order = [m.name for m in reversed(hierarchy(arch, op))]
        if [m.name for m in order if op in m.operands] != file_order:
            raise InteropError(f"{arch.name}: operand {op}'s memories {file_order} (top first) would serve wider "
                               f"array axes below narrower ones; not expressible as one container hierarchy")
    return tuple(order)
