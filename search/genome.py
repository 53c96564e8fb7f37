"""The genome: hardware knobs and model knobs in one pytree.

Every knob is a :class:`Gene` with a sorted grid of *legal* values (a categorical
knob's values are its choice indices). A legal genome is an ``int32[D]`` vector of
grid indices, so mutation, crossover and enumeration work on the grid and the
whole population is a plain ``int32[P, D]`` array evaluated in one vmapped call.
The gradient phase works on the *relaxed* coordinates ``z``: the log of the knob
value for numeric knobs (continuous between the smallest and largest legal value),
and snaps back to the grid (``snap``) at the end.

Genes come in three kinds: ``hw`` (the template's knobs), ``width`` (one per free
channel group of one network) and ``bits`` (one per layer of one network).
:meth:`GenomeSpace.structure` gives the readable pytree view :class:`Genome`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.errors import SearchError


@dataclass(frozen=True)
class Gene:
    name: str                      # e.g. "rows", "resnet50/width/conv1.out", "resnet50/bits/conv1"
    values: tuple[float, ...]      # legal values, ascending (categorical: 0..n-1)
    default: int = 0               # index of the default value
    kind: str = "hw"               # "hw" | "width" | "bits"
    net: int = -1                  # network index for model genes, -1 for hardware
    categorical: bool = False
    labels: tuple[str, ...] = ()   # categorical choice names
    log: bool = True               # relax in log space (numeric, positive values)
    key: str = ""                  # the knob/group/layer name without prefix

    def __post_init__(self) -> None:
        if not self.values:
            raise SearchError(f"knob {self.name!r} has no legal value")
        if list(self.values) != sorted(self.values):
            raise SearchError(f"knob {self.name!r}: legal values must be ascending")
        if not 0 <= self.default < len(self.values):
            raise SearchError(f"knob {self.name!r}: default index {self.default} out of range")

    @property
    def size(self) -> int:
        return len(self.values)

    def label(self, index: int) -> Any:
        if self.categorical:
            return self.labels[index] if self.labels else int(index)
        v = self.values[index]
        return int(v) if float(v).is_integer() else float(v)


@dataclass(frozen=True)
class ModelKnobs:
    widths: dict[str, int]   # free channel group name -> width
    bits: dict[str, int]     # layer name -> bit-width


@dataclass(frozen=True)
class Genome:
    """Readable view of one legal genome."""

    hw: dict[str, Any]
    models: tuple[ModelKnobs, ...]


@dataclass(frozen=True, eq=False)
class GenomeSpace:
    genes: tuple[Gene, ...]
    networks: tuple[str, ...] = ()
    _table: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = [g.name for g in self.genes]
        if len(set(names)) != len(names):
            raise SearchError("duplicate knob names in the genome")
        vmax = max((g.size for g in self.genes), default=1)
        table = np.zeros((len(self.genes), vmax), np.float32)
        for i, g in enumerate(self.genes):
            table[i, : g.size] = g.values
            table[i, g.size:] = g.values[-1]
        object.__setattr__(self, "_table", table)

    # ---- sizes and arrays -------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.genes)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([g.size for g in self.genes], np.int32)

    @property
    def table(self) -> np.ndarray:
        return self._table

    @property
    def categorical(self) -> np.ndarray:
        return np.array([g.categorical for g in self.genes], bool)

    @property
    def log_mask(self) -> np.ndarray:
        return np.array([g.log and not g.categorical for g in self.genes], bool)

    def indices(self, kind: str, net: int | None = None) -> np.ndarray:
        return np.array([i for i, g in enumerate(self.genes)
                         if g.kind == kind and (net is None or g.net == net)], np.int32)

    def n_points(self) -> float:
        return float(np.prod(self.sizes.astype(np.float64)))

    def positions_of(self, sub: "GenomeSpace") -> np.ndarray:
        """Where each gene of ``sub`` (a space of some of these genes, e.g. one network's
        problem of a multi-model one) sits in this space: int[sub.dim], matched by name."""
        where = {g.name: i for i, g in enumerate(self.genes)}
        out = []
        for g in sub.genes:
            i = where.get(g.name)
            if i is None or self.genes[i].values != g.values:
                raise SearchError(f"knob {g.name!r} is not a knob of this genome with the same legal values")
            out.append(i)
        return np.array(out, np.int64)

    # ---- legal genomes ------------------------------------------------------------
    def default(self) -> np.ndarray:
        return np.array([g.default for g in self.genes], np.int32)

    def decode(self, idx: jnp.ndarray) -> jnp.ndarray:
        """Legal index vector int32[..., D] -> knob values f32[..., D] (JAX)."""
        t = jnp.asarray(self._table)
        return t[jnp.arange(self.dim), idx]

    def sample(self, key: jax.Array, n: int) -> np.ndarray:
        u = jax.random.uniform(key, (n, self.dim))
        return np.minimum((np.asarray(u) * self.sizes).astype(np.int32), self.sizes - 1)

    def sample_anchored(self, key: jax.Array, n: int, spread: float = 0.25) -> np.ndarray:
        """Random hardware, model knobs near the model as given: each model knob stays at
        its default or moves a few grid steps (probability ``spread`` per genome)."""
        k1, k2, k3 = jax.random.split(key, 3)
        out = self.sample(k1, n)
        model = np.array([g.kind != "hw" for g in self.genes], bool)
        if not model.any():
            return out
        g = np.random.default_rng(np.asarray(jax.random.key_data(k2), np.uint32).ravel().tolist())
        base = np.broadcast_to(self.default(), (n, self.dim))
        moved = g.random((n, 1)) < spread
        hit = (g.random((n, self.dim)) < 0.1) & moved
        step = g.integers(-2, 3, (n, self.dim))
        near = np.clip(base + np.where(hit, step, 0), 0, self.sizes - 1)
        return np.where(model[None, :], near, out).astype(np.int32)

    # ---- relaxation -------------------------------------------------------------
    def lo_hi(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([self._z1(g, g.values[0]) for g in self.genes], np.float32)
        hi = np.array([self._z1(g, g.values[-1]) for g in self.genes], np.float32)
        return lo, hi

    @staticmethod
    def _z1(g: Gene, v: float) -> float:
        return float(np.log(v)) if (g.log and not g.categorical) else float(v)

    def to_z(self, idx: np.ndarray) -> np.ndarray:
        """Legal indices -> relaxed coordinates (log value, or the category index)."""
        v = self._table[np.arange(self.dim), idx]
        return np.where(self.log_mask, np.log(np.maximum(v, 1e-30)), v).astype(np.float32)

    def from_z(self, z: jnp.ndarray) -> jnp.ndarray:
        """Relaxed coordinates -> (continuous) knob values (JAX, differentiable)."""
        return jnp.where(jnp.asarray(self.log_mask), jnp.exp(z), z)

    def snap(self, z: np.ndarray) -> np.ndarray:
        """Relaxed coordinates [..., D] -> nearest legal indices (in z space)."""
        z = np.asarray(z, np.float32)
        tz = np.where(self.log_mask[:, None], np.log(np.maximum(self._table, 1e-30)), self._table)
        d = np.abs(z[..., :, None] - tz)
        d = np.where(np.arange(tz.shape[1]) < self.sizes[:, None], d, np.inf)
        return np.argmin(d, axis=-1).astype(np.int32)

    # ---- readable view --------------------------------------------------------
    def structure(self, idx: np.ndarray) -> Genome:
        hw: dict[str, Any] = {}
        models = [ModelKnobs({}, {}) for _ in self.networks]
        for g, i in zip(self.genes, np.asarray(idx).tolist()):
            if g.kind == "hw":
                hw[g.key or g.name] = g.label(i)
            elif g.kind == "width":
                models[g.net].widths[g.key] = int(g.values[i])
            elif g.kind == "bits":
                models[g.net].bits[g.key] = int(g.values[i])
        return Genome(hw, tuple(models))


def width_grid(width0: int, *, min_frac: float = 0.25, max_frac: float = 2.0, step: int = 0,
               max_points: int = 64) -> tuple[float, ...]:
    """Legal widths of a channel group: shrink to ``min_frac`` and grow to ``max_frac``.

    The grid keeps the original width, multiples of ``step`` (8 when the group is
    wide enough, else 1) and at most ``max_points`` values.
    """
    lo = max(1, int(np.floor(width0 * min_frac)))
    hi = max(lo, int(np.ceil(width0 * max_frac)))
    if step <= 0:
        step = 8 if width0 >= 32 else (4 if width0 >= 8 else 1)
    vals = set(range(int(np.ceil(lo / step)) * step or step, hi + 1, step)) | {width0}
    vals = sorted(v for v in vals if v >= 1)
    if len(vals) > max_points:
        keep = np.unique(np.round(np.geomspace(vals[0], vals[-1], max_points)).astype(int))
        vals = sorted({min(vals, key=lambda x: abs(x - k)) for k in keep} | {width0})
    return tuple(float(v) for v in vals)


def make_hw_gene(name: str, values: list[float] | tuple[float, ...], default_value: float | None = None, *,
                 categorical_labels: tuple[str, ...] = ()) -> Gene:
    """A hardware gene from a list of legal values (or categorical labels)."""
    if categorical_labels:
        n = len(categorical_labels)
        d = categorical_labels.index(default_value) if default_value in categorical_labels else 0
        return Gene(name, tuple(float(i) for i in range(n)), d, "hw", -1, True, tuple(categorical_labels),
                    False, name)
    vals = tuple(sorted(float(v) for v in values))
    if default_value is None:
        d = len(vals) // 2
    else:
        d = int(np.argmin([abs(np.log(v) - np.log(default_value)) if v > 0 else abs(v - default_value)
                           for v in vals]))
    return Gene(name, vals, d, "hw", -1, False, (), all(v > 0 for v in vals), name)
