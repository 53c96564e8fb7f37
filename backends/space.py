"""HardwareSpace: the typed knobs of an accelerator template.

A knob is one of

* ``integer``: any integer in ``[low, high]``;
* ``pow2``: a power of two in ``[low, high]``;
* ``multiple``: a multiple of ``multiple`` in ``[low, high]``;
* ``categorical``: one of ``choices`` (strings), encoded as its index; a user may give a
  number whose ``str()`` is a choice (``node_nm: 28``), else an integer is read as the
  choice's index, except on a knob whose choices are all numbers;
* ``continuous``: any real in ``[low, high]``.

A *design* is a dict ``{knob: value}`` of Python values (``{"rows": 32, "dataflow": "ws"}``);
its *encoding* is a dict ``{knob: float32}`` (categoricals as their index), and a batch of
designs is ``{knob: f32[D]}`` (``to_arrays``): that is what ``template.cost`` takes, under
``jax.vmap``. ``validate`` checks a user's dict and raises :class:`HardwareError` naming the
knob and its legal values; ``legalize`` snaps encoded (possibly relaxed) values to legal ones
in jnp, so it works under jit/vmap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.errors import HardwareError

KINDS = ("integer", "pow2", "multiple", "categorical", "continuous")


@dataclass(frozen=True)
class Knob:
    name: str
    kind: str
    default: Any
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()
    multiple: int = 1
    unit: str = ""
    doc: str = ""
    #: False: a capacity only constraints read (e.g. the roofline's ``dram_gib``), with no
    #: term in latency, energy or area (the conformance suite then expects no gradient)
    costed: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"knob {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "categorical":
            if self.default not in self.choices:
                raise ValueError(f"knob {self.name}: default {self.default!r} not in {self.choices}")
        elif not (self.low <= self.default <= self.high):
            raise ValueError(f"knob {self.name}: default {self.default} outside [{self.low}, {self.high}]")

    # ------------------------------------------------------------------ describing
    @property
    def numeric(self) -> bool:
        return self.kind != "categorical"

    def legal_values(self) -> str:
        """A short human description of the legal values (for error messages and listings)."""
        if self.kind == "categorical":
            return "one of " + ", ".join(self.choices)
        if self.kind == "pow2":
            return "a power of two in [" + f"{_fmt(self.low)}, {_fmt(self.high)}]"
        if self.kind == "multiple":
            return f"a multiple of {self.multiple} in [{_fmt(self.low)}, {_fmt(self.high)}]"
        if self.kind == "integer":
            return f"an integer in [{_fmt(self.low)}, {_fmt(self.high)}]"
        return f"a number in [{_fmt(self.low)}, {_fmt(self.high)}]"

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "default": self.default, "legal": self.legal_values()}
        if self.kind == "categorical":
            d["choices"] = list(self.choices)
        else:
            d["low"], d["high"] = self.low, self.high
        if self.kind == "multiple":
            d["multiple"] = self.multiple
        if self.unit:
            d["unit"] = self.unit
        if self.doc:
            d["doc"] = self.doc
        return d

    # ------------------------------------------------------------------ checking
    def validate(self, value: Any, where: str = "") -> Any:
        """The canonical Python value; HardwareError naming the knob and its legal values."""
        at = f"{where}: " if where else ""
        bad = HardwareError(f"{at}knob {self.name}={value!r} is not legal: expected {self.legal_values()}")
        if self.kind == "categorical":
            v = str(value).strip().lower() if isinstance(value, str) else value
            if v in self.choices:
                return v
            # a number whose str() is a choice means that choice (``node_nm: 28`` in YAML); on a
            # knob whose choices are all numbers an integer is never an index (3 is not "16")
            number = isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()
            if number and str(int(v)) in self.choices:
                return str(int(v))
            if number and all(c.isdigit() for c in self.choices):
                raise bad
            if isinstance(v, int | float) and float(v).is_integer() and 0 <= int(v) < len(self.choices):
                return self.choices[int(v)]
            raise bad
        try:
            x = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            raise bad from None
        if not math.isfinite(x) or x < self.low or x > self.high:
            raise bad
        if self.kind == "continuous":
            return x
        if not x.is_integer():
            raise bad
        n = int(x)
        if self.kind == "pow2" and (n <= 0 or n & (n - 1)):
            raise bad
        if self.kind == "multiple" and n % self.multiple:
            raise bad
        return n

    def encode(self, value: Any) -> float:
        return float(self.choices.index(value)) if self.kind == "categorical" else float(value)

    def decode(self, x: float) -> Any:
        """The legal Python value nearest to an encoding."""
        x = float(np.asarray(self.snap(jnp.float32(x))))
        if self.kind == "categorical":
            return self.choices[int(x)]
        return x if self.kind == "continuous" else int(round(x))

    def snap(self, x: jax.Array) -> jax.Array:
        """Nearest legal encoding (jnp; idempotent)."""
        if self.kind == "categorical":
            return jnp.clip(jnp.round(x), 0, len(self.choices) - 1)
        lo, hi = jnp.float32(self.low), jnp.float32(self.high)
        x = jnp.clip(x, lo, hi)
        if self.kind == "integer":
            return jnp.clip(jnp.round(x), math.ceil(self.low), math.floor(self.high))
        if self.kind == "pow2":
            lo2, hi2 = math.ceil(math.log2(self.low)), math.floor(math.log2(self.high))
            return jnp.round(jnp.exp2(jnp.clip(jnp.round(jnp.log2(jnp.maximum(x, 1e-30))), lo2, hi2)))
        if self.kind == "multiple":
            m = self.multiple
            return jnp.clip(jnp.round(x / m) * m, math.ceil(self.low / m) * m, math.floor(self.high / m) * m)
        return x

    def grid(self, max_points: int = 64) -> list[Any]:
        """Legal values along this knob (all of them when few; else a geometric sample)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "pow2":
            return [2**e for e in range(math.ceil(math.log2(self.low)), math.floor(math.log2(self.high)) + 1)]
        if self.kind == "multiple":
            vals = list(range(math.ceil(self.low / self.multiple) * self.multiple, int(self.high) + 1, self.multiple))
        elif self.kind == "integer":
            vals = list(range(math.ceil(self.low), math.floor(self.high) + 1))
        else:
            lo = max(self.low, 1e-9)
            return [float(v) for v in np.geomspace(lo, self.high, min(max_points, 16))]
        if len(vals) <= max_points:
            return vals
        geo = np.geomspace(max(vals[0], 1), vals[-1], max_points)
        return sorted({self.decode(float(v)) for v in geo})

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` legal encodings drawn with ``key`` (log-uniform for numeric knobs with low > 0)."""
        if self.kind == "categorical":
            return jax.random.randint(key, (n,), 0, len(self.choices)).astype(jnp.float32)
        u = jax.random.uniform(key, (n,))
        if self.low > 0:
            x = jnp.exp(jnp.log(self.low) + u * (jnp.log(self.high) - jnp.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        return self.snap(x)


def choice_weights(hw: Mapping[str, Any], name: str, n: int, default: int = 0) -> jnp.ndarray:
    """Weights over the ``n`` choices of categorical knob ``name`` in an encoded design: one-hot
    for an index (an exact design; rounded and clipped), the softmax of logits on the last axis
    (a relaxed design), one-hot at ``default`` when the design has no such knob."""
    if name not in hw:
        return jax.nn.one_hot(default, n)
    x = jnp.asarray(hw[name], jnp.float32)
    if x.ndim and x.shape[-1] == n:
        return jax.nn.softmax(x, axis=-1)
    return jax.nn.one_hot(jnp.clip(jnp.round(x), 0, n - 1).astype(jnp.int32), n)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class HardwareSpace:
    knobs: tuple[Knob, ...]
    _index: Mapping[str, Knob] = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {k.name: k for k in self.knobs})
        if len(self._index) != len(self.knobs):
            raise ValueError("duplicate knob names")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    def __getitem__(self, name: str) -> Knob:
        return self._index[name]

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def __iter__(self):
        return iter(self.knobs)

    def default(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.knobs}

    def validate(self, design: Mapping[str, Any], where: str = "", *, complete: bool = True) -> dict[str, Any]:
        """Check a user design; fill missing knobs with defaults (``complete``)."""
        at = f"{where}: " if where else ""
        for name in design:
            if name not in self._index:
                raise HardwareError(f"{at}unknown knob {name!r}: known knobs are {', '.join(self.names)}")
        out = self.default() if complete else {}
        for name, value in design.items():
            out[name] = self._index[name].validate(value, where)
        return out

    # ------------------------------------------------------------------ encodings
    def encode(self, design: Mapping[str, Any]) -> dict[str, jax.Array]:
        """One design as ``{knob: f32 scalar}`` (missing knobs take their defaults)."""
        d = self.validate(design)
        return {k.name: jnp.float32(k.encode(d[k.name])) for k in self.knobs}

    def to_arrays(self, designs: Sequence[Mapping[str, Any]]) -> dict[str, jax.Array]:
        """A batch of designs as ``{knob: f32[D]}`` for ``jax.vmap(template.cost, (0, None))``."""
        vals = [self.validate(d) for d in designs]
        return {k.name: jnp.asarray(np.array([k.encode(v[k.name]) for v in vals], np.float32)) for k in self.knobs}

    def decode(self, arrays: Mapping[str, Any], index: int | None = None) -> dict[str, Any]:
        """Python values of one design (``index`` picks one of a batch)."""
        out = {}
        for k in self.knobs:
            x = np.asarray(arrays[k.name])
            x = x[index] if index is not None else x
            out[k.name] = k.decode(float(np.reshape(x, -1)[0]) if x.ndim else float(x))
        return out

    def sample(self, key: jax.Array, n: int) -> dict[str, jax.Array]:
        """``n`` random legal designs as ``{knob: f32[n]}``."""
        keys = jax.random.split(key, len(self.knobs))
        return {k.name: k.sample(kk, n) for k, kk in zip(self.knobs, keys, strict=True)}

    def grid(self, knob: str, max_points: int = 64) -> list[Any]:
        return self._index[knob].grid(max_points)

    def legalize(self, hw: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """Snap every knob of an encoded design (or batch) to its nearest legal value (jnp).

        A relaxed categorical given as logits/probabilities (last axis = choices) becomes its
        argmax index.
        """
        out = {}
        for k in self.knobs:
            x = jnp.asarray(hw[k.name], jnp.float32)
            if k.kind == "categorical" and x.ndim and x.shape[-1] == len(k.choices) and len(k.choices) > 1:
                x = jnp.argmax(x, axis=-1).astype(jnp.float32)
            out[k.name] = k.snap(x)
        return out

    def contains(self, hw: Mapping[str, Any]) -> bool:
        """True when every encoded value is legal (numpy check, for tests)."""
        try:
            for k in self.knobs:
                for x in np.ravel(np.asarray(hw[k.name])):
                    k.validate(k.choices[int(x)] if k.kind == "categorical" and float(x).is_integer() and 0 <= x < len(k.choices) else float(x))
        except HardwareError:
            return False
        return True

    def describe(self) -> list[dict[str, Any]]:
        return [k.describe() for k in self.knobs]

    def numeric(self) -> Iterable[Knob]:
        return (k for k in self.knobs if k.numeric)
