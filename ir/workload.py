"""Workload: the layer table that cost models read (DESIGN.md, "Workload").

One row per layer, topologically ordered, every column a ``float32[L]`` array (``kind``
is ``int32[L]``). It is a JAX pytree (``jax.tree_util.register_dataclass``): the arrays
are leaves, the layer names, op kinds and which layers are or can become grouped
(``grouped``) are static metadata, so ``jit``/``vmap``/``grad`` see only numbers.

Layer kinds (``kind``):

* ``MAC``: a 7-D convolution loop nest ``N, K, C, P, Q, R, S`` with ``groups``, strides and
  dilation (``K`` and ``C`` are totals over all groups). GEMMs and matmuls are convolutions
  with ``P = M``, ``Q = R = S = 1``, ``C`` = the reduction dim, ``K`` = the output features;
  a batched matmul (attention) is ``repeat`` identical GEMMs; a recurrent cell is its gate
  GEMM (``C = input + hidden``, ``K = gates * hidden``) repeated ``repeat`` = steps
  (times directions) in sequence. ``w_repeat`` is how many distinct "weight" operands the
  repeats read (1 for a constant weight, ``repeat`` for an activation x activation matmul).
* ``VECTOR``: element-wise, activation, normalization, pooling, reduction, softmax:
  ``vec_ops`` operations per output element on the vector unit.
* ``MEMORY``: reshape/transpose/concat/gather/pad/opaque/control: pure data movement of
  ``in_elems + out_elems`` elements.
* ``FREE``: an activation fused into its producer (``node.meta["fused_into"]``): no cost.

Every layer also has ``in_elems`` (activation elements read), ``out_elems`` (written),
``weight_elems`` (constant operand elements), ``weight_bits``/``act_bits`` (precision),
``input_on_chip``/``output_on_chip`` (0/1: the tensor stays on chip thanks to fusion, no
DRAM traffic), ``sparsity`` (fraction of zero weights) and ``sparsity_24`` (1 when the
weights are 2:4 structured -- at most 2 non-zeros in every 4 consecutive weights along the
reduction axis, ``node.meta["sparsity_pattern"] == "2:4"`` from the ``sparsify`` pass --
else 0; a template with a 2:4 datapath stores them compressed and skips the zero half).

Model knobs: ``widths0: f32[G]`` (the width of every channel group), ``free: bool[G]``, and
per-layer linear maps so that each channel-dependent column is ``base + map @ widths``
(``k``, ``c``, ``groups``, ``in_elems``, ``out_elems``, ``repeat`` and ``w_repeat`` (a
batched matmul over attention heads), ``weight_elems`` (a vector row's per-channel
constants; for MAC layers it follows from ``k * c / groups * r * s * w_repeat``)). :meth:`Workload.with_widths` and
:meth:`Workload.with_bits` are pure jnp functions, so a cost is differentiable in them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

MAC, VECTOR, MEMORY, FREE = 0, 1, 2, 3
KIND_NAMES = ("mac", "vector", "memory", "free")

#: per-layer float columns, in order
LAYER_FIELDS = (
    "n", "k", "c", "p", "q", "r", "s", "groups", "stride_h", "stride_w", "dil_h", "dil_w",
    "repeat", "w_repeat", "vec_ops", "in_elems", "out_elems", "weight_elems",
    "weight_bits", "act_bits", "input_on_chip", "output_on_chip", "sparsity", "sparsity_24",
    "bits_given",
)
#: columns that depend linearly on the channel widths: name -> (base field, map field)
WIDTH_FIELDS = ("k", "c", "groups", "in_elems", "out_elems", "repeat", "w_repeat", "weight_elems")
#: the width columns the lowering sets directly (then maps the parts that follow an axis)
FOLLOWED = ("repeat", "w_repeat", "weight_elems")


@dataclass(frozen=True)
class Workload:
    names: tuple[str, ...]
    ops: tuple[str, ...]
    kinds: tuple[int, ...]      # static copy of ``kind`` (cost models split layers by kind at trace time)
    kind: jax.Array
    n: jax.Array
    k: jax.Array
    c: jax.Array
    p: jax.Array
    q: jax.Array
    r: jax.Array
    s: jax.Array
    groups: jax.Array
    stride_h: jax.Array
    stride_w: jax.Array
    dil_h: jax.Array
    dil_w: jax.Array
    repeat: jax.Array
    w_repeat: jax.Array
    vec_ops: jax.Array
    in_elems: jax.Array
    out_elems: jax.Array
    weight_elems: jax.Array
    weight_bits: jax.Array
    act_bits: jax.Array
    input_on_chip: jax.Array
    output_on_chip: jax.Array
    sparsity: jax.Array
    sparsity_24: jax.Array      # 0/1: weights are 2:4 structured (see the module doc)
    bits_given: jax.Array       # 0/1: weight_bits/act_bits were given (else a datapath prices the row at its own width)
    # model knobs
    widths0: jax.Array          # f32[G]
    free: jax.Array             # bool[G]
    k_base: jax.Array           # f32[L]
    k_map: jax.Array            # f32[L, G]
    c_base: jax.Array
    c_map: jax.Array
    groups_base: jax.Array
    groups_map: jax.Array
    in_elems_base: jax.Array
    in_elems_map: jax.Array
    out_elems_base: jax.Array
    out_elems_map: jax.Array
    repeat_base: jax.Array
    repeat_map: jax.Array
    w_repeat_base: jax.Array
    w_repeat_map: jax.Array
    weight_elems_base: jax.Array   # non-MAC rows' weights (a MAC row's follow k, c, groups, w_repeat)
    weight_elems_map: jax.Array
    #: static: per layer, whether it is or can become grouped (groups > 1 when lowered, or its
    #: groups follow a channel width); cost models skip grouped-layer mappings when no MAC
    #: layer is. Empty: unknown (every layer may be grouped).
    grouped: tuple[bool, ...] = ()
    #: static: per :data:`FOLLOWED` column, the rows whose map is not zero (few: attention
    #: rows, per-channel constants), so ``with_widths`` maps only those. None: every row.
    followed_rows: tuple[tuple[int, ...], ...] | None = None

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_groups(self) -> int:
        return int(self.widths0.shape[-1])

    @property
    def macs(self) -> jax.Array:
        """Multiply-accumulates per layer (0 for non-MAC layers)."""
        m = self.n * self.k * (self.c / self.groups) * self.p * self.q * self.r * self.s * self.repeat
        return jnp.where(self.kind == MAC, m, 0.0)

    def index(self, name: str) -> int:
        return self.names.index(name)

    # ------------------------------------------------------------------ model knobs
    def with_widths(self, widths: jax.Array) -> Workload:
        """The workload of the model resized to ``widths`` (one per channel group)."""
        w = jnp.asarray(widths, jnp.float32)
        new = {f: getattr(self, f + "_base") + getattr(self, f + "_map") @ w for f in WIDTH_FIELDS if f not in FOLLOWED}
        for j, f in enumerate(FOLLOWED):
            base, m = getattr(self, f + "_base"), getattr(self, f + "_map")
            rows = None if self.followed_rows is None else np.asarray(self.followed_rows[j], np.int32)
            new[f] = base + m @ w if rows is None else base.at[rows].add(m[rows] @ w)
        g = jnp.maximum(new["groups"], 1.0)
        new["weight_elems"] = jnp.where(self.kind == MAC, new["k"] * new["c"] / g * self.r * self.s * new["w_repeat"],
                                        new["weight_elems"])
        new["groups"] = g
        return dataclasses.replace(self, **new)

    def with_bits(self, weight_bits: jax.Array, act_bits: jax.Array, given: jax.Array | None = None) -> Workload:
        """The workload at the given per-layer bit-widths (``f32[L]`` each, or scalars);
        ``given``: which rows' bits count as given (default: every row)."""
        shape = self.kind.shape
        return dataclasses.replace(
            self,
            weight_bits=jnp.broadcast_to(jnp.asarray(weight_bits, jnp.float32), shape),
            act_bits=jnp.broadcast_to(jnp.asarray(act_bits, jnp.float32), shape),
            bits_given=jnp.broadcast_to(jnp.asarray(1.0 if given is None else given, jnp.float32), shape),
        )

    def to_numpy(self) -> dict[str, np.ndarray]:
        """The per-layer columns as numpy arrays (for tables and tests)."""
        return {f: np.asarray(getattr(self, f)) for f in ("kind", *LAYER_FIELDS)}


jax.tree_util.register_dataclass(
    Workload,
    data_fields=[f.name for f in dataclasses.fields(Workload) if f.name not in ("names", "ops", "kinds", "grouped", "followed_rows")],
    meta_fields=["names", "ops", "kinds", "grouped", "followed_rows"],
)


def from_columns(names: list[str], ops: list[str], cols: dict[str, np.ndarray], widths0: np.ndarray, free: np.ndarray,
                 maps: dict[str, tuple[np.ndarray, np.ndarray]]) -> Workload:
    """Build a Workload from numpy columns (used by ``ir.lower``)."""
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
    kw = {f: f32(cols[f]) for f in LAYER_FIELDS}
    for f in WIDTH_FIELDS:
        base, m = maps[f]
        kw[f + "_base"] = f32(base)
        kw[f + "_map"] = f32(m)
    return Workload(
        names=tuple(names), ops=tuple(ops), kinds=tuple(int(x) for x in cols["kind"]), kind=jnp.asarray(np.asarray(cols["kind"], np.int32)),
        widths0=f32(widths0), free=jnp.asarray(np.asarray(free, bool)),
        grouped=tuple(bool(g > 1.0 or np.any(m != 0.0)) for g, m in zip(np.asarray(cols["groups"]), np.asarray(maps["groups"][1]), strict=True)),
        followed_rows=tuple(tuple(int(r) for r in np.flatnonzero(np.any(np.asarray(maps[f][1]) != 0.0, axis=1)))
                            for f in FOLLOWED),
        **kw,
    )
