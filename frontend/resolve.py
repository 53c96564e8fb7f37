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

*Anonymous* dims (:func:`is_anonymous`: no name, ``?`` as paddle2onnx writes every
unknown dim, tf2onnx's ``unk__N``) are never shared symbols: two dims both named ``?``
are unrelated, so they are neither bound nor looked up.

:func:`resolve_values` checks the values the user fixes for some inputs
(``input_values={"sr": 16000}``): each becomes an array of the input's declared dtype
whose shape fits the declared one; that shape then resolves the input like a given one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from symbiote.errors import ShapeError
from symbiote.ir import dtypes

Dim = int | str | None  # static value, symbol, or nothing declared

_BATCH_NAME = re.compile(r"^(n|b|bs|batch|batch_?size|.*batch.*|num_?batch(es)?)$", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"^(unk__\d+|none|\?|-1|s\d+|dim_?\d+|d\d+|dynamic.*|p2o\.dynamicdimension\.\d+|)$", re.IGNORECASE)
_ANONYMOUS = re.compile(r"^(\?|unk__\d+|)$")


@dataclass(frozen=True)
class DeclaredInput:
    """A graph input as the file declares it (``dims`` is None when no shape is declared)."""

    name: str
    dims: tuple[Dim, ...] | None
    dtype: str | None = None  # element type name (``symbiote.ir.dtypes``), None if not declared


def is_anonymous(dim: Dim) -> bool:
    """An unknown dim with no name of its own (``None``, ``""``, ``?``, ``unk__N``): never a shared symbol."""
    return dim is None or (isinstance(dim, str) and bool(_ANONYMOUS.match(dim.strip())))


def _symbol(dim: Dim) -> str | None:
    """The shared symbol a declared dim names, or None (static or anonymous)."""
    return dim if isinstance(dim, str) and not is_anonymous(dim) else None


def is_batch_like(index: int, dim: Dim) -> bool:
    if isinstance(dim, str) and _BATCH_NAME.match(dim):
        return True
    return index == 0 and (dim is None or (isinstance(dim, str) and bool(_PLACEHOLDER.match(dim))))


def _how(name: str, dims: Sequence[Dim] | None) -> str:
    """How to give the shape, with the file's static dims filled in (``D`` for each unknown one)."""
    text = "x".join(str(d) if isinstance(d, int) and d > 0 else "D" for d in (dims or ("D", "D")))
    return f"give it with input_shapes={{{name!r}: [...]}} or --input-shape {name}={text}"


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
            if _symbol(d) is not None:
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
    sym = _symbol(d)
    if sym is not None and sym in symbols:
        return symbols[sym]
    if is_batch_like(k, d):
        if sym is not None:
            symbols[sym] = 1
        return 1
    what = f"dim {k} ({d!r})" if d else f"dim {k}"
    raise ShapeError(f"{source}: input {decl.name!r} {what} is unknown; {_how(decl.name, decl.dims)}")


def resolve_values(
    inputs: Sequence[DeclaredInput],
    values: Mapping[str, Any] | None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    source: str = "model",
) -> dict[str, np.ndarray]:
    """The arrays the user fixes for some inputs, each of the input's declared dtype and a
    shape that fits its declared one (a single value fills an all-ones shape). Raises
    :class:`ShapeError` naming the input when the name is not an input, or the value does
    not fit its declared rank, static dims, dtype, or a shape ``shapes`` gives for it."""
    by_name = {i.name: i for i in inputs}
    unknown = [k for k in values or {} if k not in by_name]
    if unknown:
        raise ShapeError(
            f"{source}: input_values names {', '.join(repr(k) for k in unknown)}, which is not an input of the model "
            f"(inputs: {', '.join(by_name) or 'none'})"
        )
    return {name: _fit_value(by_name[name], value, (shapes or {}).get(name), source) for name, value in (values or {}).items()}


def _fit_value(decl: DeclaredInput, value: Any, given: Sequence[int] | None, source: str) -> np.ndarray:
    what = f"{source}: input_values[{decl.name!r}]"
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise ShapeError(f"{what} is not an array ({e})") from None
    if arr.dtype == object:
        raise ShapeError(f"{what} = {value!r} is not a rectangular array of numbers")
    want = _numpy_dtype(decl.dtype)
    if want is not None:
        try:
            with np.errstate(all="ignore"):
                cast = arr.astype(want)
            # integers and booleans must round-trip exactly; a float target takes any number
            # (0.1 into float32 rounds, as the model's own input would)
            fits = (np.issubdtype(want, np.floating) and np.issubdtype(arr.dtype, np.number)
                    and not np.issubdtype(arr.dtype, np.complexfloating)) or bool(np.array_equal(cast, arr))
        except (TypeError, ValueError):
            fits = False
        if not fits:
            raise ShapeError(f"{what} = {_short(arr)} does not fit the input's dtype {decl.dtype}")
        arr = cast
    if decl.dims is not None:
        rank = len(decl.dims)
        if arr.ndim != rank:
            ones = all(not isinstance(d, int) or d == 1 for d in decl.dims)
            if not (arr.size == 1 and ones):
                raise ShapeError(f"{what} has shape {list(arr.shape)}, but the input has rank {rank} (declared {_dims_text(decl.dims)})")
            arr = arr.reshape((1,) * rank)
        for k, d in enumerate(decl.dims):
            if isinstance(d, int) and d > 0 and d != arr.shape[k]:
                raise ShapeError(f"{what} has shape {list(arr.shape)}, but the input declares dim {k} = {d} ({_dims_text(decl.dims)})")
    if given is not None and tuple(int(d) for d in given) != tuple(arr.shape):
        raise ShapeError(f"{what} has shape {list(arr.shape)}, but input_shapes gives {list(given)}")
    arr = np.array(arr)
    arr.setflags(write=False)
    return arr


def _numpy_dtype(name: str | None) -> np.dtype | None:
    if name is None or name == "string":
        return None
    try:
        return np.dtype(dtypes.to_numpy(name))
    except (KeyError, TypeError):
        return None


def _dims_text(dims: Sequence[Dim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _short(arr: np.ndarray) -> str:
    text = np.array2string(arr, threshold=6)
    return text if len(text) < 60 else text[:57] + "..."
