"""The ``spatial`` template's dataflow family of a ZigZag design (:func:`dataflow_of`).

ZigZag holds a design to a spatial unrolling in a separate mapping file (``spatial_mapping``:
per array axis, the layer dims unrolled and their factors, e.g. ``D1: [K, 32]``,
``D2: [C, 32]``); the accelerator file's ``dataflows`` field is a hint that ZigZag 3.9.1
parses and never uses. The family is read from the mapping when one is given, else from the
hint:

* exactly K on the first axis and C on the others, and nothing else (from a mapping only):
  ``kc`` (no fill dims, as the run: a depthwise layer on one PE);
* else the first of :data:`HINT_FAMILIES` whose primary dims (:data:`DATAFLOW_DIMS`) are
  unrolled on the first axis and on the others (its fill dims may unroll more);
* else ``free``; no mapping and no hint: ``free``.

:func:`unrolled` reads a mapping in any of the forms ``to_design`` accepts (``{"D1": "K"}``,
ZigZag's ``spatial_mapping`` dict, an entry of the mapping file, or the file's list of
entries, its ``default`` one); a dim unrolled once is not unrolled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from symbiote.backends.spatial.interop_arch import Architecture, InteropError

#: ZigZag layer dims of the template's dataflow families' primary unrollings (X on D1, Y on D2)
DATAFLOW_DIMS = {"ws": ("K", "C"), "os": ("OX", "OY"), "rs": ("OY", "FY"), "kc": ("K", "C")}
#: the families read off ``dataflows`` or a spatial mapping that unrolls their primary dims (among
#: others); ``kc`` only from a spatial mapping that unrolls exactly K on D1 and C on D2
HINT_FAMILIES = ("ws", "os", "rs")


def dataflow_of(arch: Architecture, report: list[str], spatial_mapping: Any = None,
                adapted: list[str] | None = None) -> str:
    """The ``dataflow`` family of ``arch`` (module doc): from ``spatial_mapping`` when given
    (the ``kc`` note goes to ``adapted``), else from ``arch.dataflows``; what decided it goes to
    ``report``."""
    names = arch.array.names
    if spatial_mapping is not None:
        axes = unrolled(spatial_mapping, names)
        shown = {a: list(ds) for a, ds in axes.items()}
        if arch.dataflows:
            report.append(f"dataflows {dict(arch.dataflows)} left aside: the spatial mapping {shown} decides the family")
        first = set(axes.get(names[0], ()))
        rest = {x for a in names[1:] for x in axes.get(a, ())}
        if first == {"K"} and rest == {"C"}:
            note = (f"dataflow = kc: the spatial mapping {shown} unrolls exactly K on {names[0]} and C on "
                    f"{'/'.join(names[1:])} and nothing else, the template's kc family (no fill dims: a layer with "
                    f"fewer filters or channels than the axes, e.g. a depthwise one, leaves PEs idle, as in the "
                    f"run; its unroll factors are chosen per layer, not fixed)")
            (adapted if adapted is not None else report).append(note)
            return "kc"
        return family(first, rest, f"spatial mapping {shown}", report)
    flows = dict(arch.dataflows)
    if not flows:
        return "free"
    first = {dim for dim, _ in flows.get(names[0], ())}
    rest = {dim for a in names[1:] for dim, _ in flows.get(a, ())}
    return family(first, rest, f"dataflows {flows}", report)


def family(first: set[str], rest: set[str], what: str, report: list[str]) -> str:
    """The first of :data:`HINT_FAMILIES` whose primary dims are unrolled on the first axis and
    on the others, else ``free``."""
    for family in HINT_FAMILIES:
        x, y = DATAFLOW_DIMS[family]
        if x in first and y in rest:
            report.append(f"{what}: the template's {family} family (its unroll factors are chosen per layer, not "
                          f"fixed; its fill dims may unroll more)")
            return family
    report.append(f"{what}: no template family unrolls these dims: dataflow free")
    return "free"


def unrolled(spatial_mapping: Any, names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Per array axis, the layer dims a ZigZag spatial mapping unrolls (more than once)."""
    m = spatial_mapping
    if isinstance(m, (list, tuple)):
        entries = [e for e in m if isinstance(e, Mapping)]
        m = next((e for e in entries if e.get("name") == "default"), entries[0] if len(entries) == 1 else None)
        if m is None:
            raise InteropError("spatial mapping: a list of mapping entries without a 'default' one")
    if isinstance(m, Mapping) and "spatial_mapping" in m:
        m = m["spatial_mapping"]
    if not isinstance(m, Mapping):
        raise InteropError(f"spatial mapping: expected a mapping of array axes to unrolled dims, got {m!r}"[:300])
    out: dict[str, tuple[str, ...]] = {}
    for axis, dims in m.items():
        if axis not in names:
            raise InteropError(f"spatial mapping: {axis} is not an axis of the operational array ({', '.join(names)})")
        items = [dims] if isinstance(dims, str) or (isinstance(dims, (list, tuple)) and len(dims) == 2
                                                     and isinstance(dims[1], int)) else list(dims)
        got = []
        for u in items:
            if isinstance(u, str):
                parts = [p.strip() for p in u.strip("()").split(",")]
            elif isinstance(u, (list, tuple)) and u:
                parts = [str(u[0]).strip(), *u[1:]]
            else:
                raise InteropError(f"spatial mapping: {axis}: {u!r} is not 'DIM' or 'DIM, FACTOR'")
            if not parts[0] or len(parts) > 2:
                raise InteropError(f"spatial mapping: {axis}: {u!r} is not 'DIM' or 'DIM, FACTOR'")
            if len(parts) == 2:
                try:
                    factor = int(parts[1])
                except (TypeError, ValueError):
                    raise InteropError(f"spatial mapping: {axis}: {u!r}: the factor is not an integer") from None
                if factor <= 1:
                    continue
            got.append(parts[0])
        out[str(axis)] = tuple(got)
    return out
