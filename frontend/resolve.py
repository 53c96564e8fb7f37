"""Input-shape resolution: turn the file's declared (possibly symbolic) input shapes into
static ones.

Rules, in order:

1. A shape the user gives (``input_shapes={"pixel_values": (1, 3, 224, 224)}``) wins; its
   rank must match the declared one. Symbolic dims it covers (``"batch"``, ``"s31"``) are
   bound, so other inputs sharing a symbol get the same value.
2. A static positive dim in the file is used as is; a zero or negative one is an error.
3. A *batch-like* dim defaults to 1: one whose name says batch (``batch``, ``batch_size``,
   ``N``, ``bs``...), or the first dim of an input when it is unnamed or named by an
   exporter's placeholder (``unk__12``, ``None``, ``?``, ``s0``-style dynamo symbols).
4. Any other unknown dim raises :class:`ShapeError` naming the input, the dim index and
   its symbol, and how to give it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from symbiote.errors import ShapeError

Dim = int | str | None  # static value, symbol, or nothing declared

_BATCH_NAME = re.compile(r"^(n|b|bs|batch|batch_?size|.*batch.*|num_?batch(es)?)$", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"^(unk__\d+|none|\?|-1|s\d+|dim_?\d+|d\d+|dynamic.*|)$", re.IGNORECASE)


@dataclass(frozen=True)
class DeclaredInput:
    """A graph input as the file declares it (``dims`` is None when no shape is declared)."""

    name: str
    dims: tuple[Dim, ...] | None


def is_batch_like(index: int, dim: Dim) -> bool:
    if isinstance(dim, str) and _BATCH_NAME.match(dim):
        return True
    return index == 0 and (dim is None or (isinstance(dim, str) and bool(_PLACEHOLDER.match(dim))))


def _how(name: str, rank: int | None) -> str:
    dims = "x".join(["D"] * (rank or 2))
    return f"give it with input_shapes={{{name!r}: [...]}} or --input-shape {name}={dims}"


def resolve_inputs(
    inputs: Sequence[DeclaredInput],
    user: Mapping[str, Sequence[int]] | None,
    source: str = "model",
) -> dict[str, tuple[int, ...]]:
    """Static shapes of every input, by name (see the module docstring for the rules)."""
    user = dict(user or {})
    by_name = {i.name: i for i in inputs}
    unknown = [k for k in user if k not in by_name]
    if unknown:
        raise ShapeError(
            f"{source}: input_shapes names {', '.join(repr(k) for k in unknown)}, which is not an input of the model "
            f"(inputs: {', '.join(by_name) or 'none'})"
        )
    symbols: dict[str, int] = {}
    out: dict[str, tuple[int, ...]] = {}
    for name, given in user.items():
        decl = by_name[name]
        try:
            dims = tuple(int(d) for d in given)
        except (TypeError, ValueError) as e:
            raise ShapeError(f"{source}: input_shapes[{name!r}] = {given!r} is not a list of ints") from e
        for k, d in enumerate(dims):
            if d <= 0:
                raise ShapeError(f"{source}: input {name!r}: given dim {k} is {d}; dims must be positive")
        if decl.dims is not None and len(decl.dims) != len(dims):
            raise ShapeError(f"{source}: input {name!r} has rank {len(decl.dims)} but input_shapes gives {list(dims)}")
        for k, d in enumerate(decl.dims or ()):
            if isinstance(d, int) and d > 0 and d != dims[k]:
                pass  # the user overrides a static dim on purpose (e.g. another image size)
            if isinstance(d, str) and d:
                if symbols.get(d, dims[k]) != dims[k]:
                    raise ShapeError(f"{source}: dim {d!r} is given two values: {symbols[d]} and {dims[k]} (input {name!r})")
                symbols[d] = dims[k]
        out[name] = dims
    for decl in inputs:
        if decl.name in out:
            continue
        if decl.dims is None:
            raise ShapeError(f"{source}: input {decl.name!r} declares no shape; {_how(decl.name, None)}")
        dims = []
        for k, d in enumerate(decl.dims):
            dims.append(_resolve_dim(decl, k, d, symbols, source))
        out[decl.name] = tuple(dims)
    return out


def _resolve_dim(decl: DeclaredInput, k: int, d: Dim, symbols: dict[str, int], source: str) -> int:
    if isinstance(d, int):
        if d <= 0:
            raise ShapeError(f"{source}: input {decl.name!r} dim {k} is {d}; dims must be positive")
        return d
    if isinstance(d, str) and d in symbols:
        return symbols[d]
    if is_batch_like(k, d):
        if isinstance(d, str) and d:
            symbols[d] = 1
        return 1
    what = f"dim {k} ({d!r})" if d else f"dim {k}"
    raise ShapeError(f"{source}: input {decl.name!r} {what} is unknown; {_how(decl.name, len(decl.dims or ()))}")
