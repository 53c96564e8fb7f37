"""The ``ort-cpu`` cost: measured kernel latencies in onnxruntime on this CPU.

**Exact** (:func:`cost`): each Workload row is mapped to the kernel onnxruntime runs for it
(:func:`symbiote.backends.ortcpu.plan.row_kernels`, with onnxruntime's fusion rules) at the
row's dimensions rounded to integers; the kernel's latency is read from the on-disk cache or
measured (:mod:`~symbiote.backends.ortcpu.cache`, :mod:`~symbiote.backends.ortcpu.measure`)
at the design's ``threads``, minus the run overhead (measured with each batch of kernels:
:func:`symbiote.backends.ortcpu.measure.measure_net`), which is charged once, to the first
costed row. A row another row's kernel absorbed is charged :data:`MIN_KERNEL_S` (1 ns) when
it is not FREE (every costed row stays positive), else nothing. The lookup runs on the host
through ``jax.pure_callback`` (``vmap_method="sequential"``: one lookup per design), so the
cost jits and vmaps like any template's; kernels are measured lazily, only those asked for.

**Relaxed** (:func:`relaxed_cost`, for gradients): a surrogate interpolated in log space
over the width grid. A MAC row whose ``K`` or ``C`` follows the width of a free channel
group is bracketed on the grid that dimension takes when its groups move by the search's
steps (:func:`grid_step`, anchored at the original dimension), its kernel measured at the
corners, and ``log latency`` interpolated bilinearly in ``(log K, log C)``: exact on grid
points, with a gradient in the widths between them. A depth-wise row (``groups`` follows
the width) moves ``C`` with ``K``. Other rows are measured at the Workload's original
widths and scaled linearly by their output elements.

**Energy is not modelled**: RAPL counters (``/sys/class/powercap/intel-rapl*``) were not
readable where this was written, so ``energy = PLACEHOLDER_POWER_W x latency`` (1 W: a
placeholder, not a measurement; energy objectives rank designs as latency does), reported
as the ``mac`` part of the energy breakdown. **Area is not modelled**: the constant
``PLACEHOLDER_AREA_MM2`` (1 mm2). Neither is a knob, so a search cannot trade them.
``clock_hz`` is a nominal 1 GHz, so ``latency_cycles`` are nanoseconds. The CPU's peak is
not modelled: ``utilization`` is 0 and ``peak_macs_per_cycle`` the largest float32 (the
total utilization is 0 too). Every kernel runs in float32, whatever a row's bits.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.backends.metrics import Metrics
from symbiote.backends.ortcpu import cache, fusion, measure, plan
from symbiote.backends.ortcpu.measure import Timing
from symbiote.ir.workload import FREE, MAC, Workload

#: the columns a kernel is rebuilt from, in the order they are passed to the host
COLUMNS = ("n", "k", "c", "p", "q", "r", "s", "groups", "stride_h", "stride_w", "dil_h", "dil_w",
           "repeat", "w_repeat", "vec_ops", "in_elems", "out_elems", "weight_elems")
NOMINAL_CLOCK_HZ = 1e9
#: not measured (module doc): energy is this power times the latency; area is this constant
PLACEHOLDER_POWER_W = 1.0
PLACEHOLDER_AREA_MM2 = 1.0
MIN_KERNEL_S = measure.MIN_KERNEL_S
#: the cache entry holding the run overhead (:mod:`~symbiote.backends.ortcpu.measure`)
OVERHEAD = "run_overhead"


@functools.cache
def rules() -> frozenset[str]:
    """onnxruntime's fusion rules (probed once per process)."""
    return fusion.fusion_rules()


def lookup(by_sig: Mapping[str, Any], threads: int, label: str = "ort-cpu: measuring kernels") -> tuple[dict[str, Timing], float]:
    """The timings (run overhead removed) of kernels by signature, and the run overhead in
    seconds: cached, or measured together in one batch and cached."""
    def measure_missing(missing: list[str], done) -> list[Timing]:
        ks = [by_sig[s] for s in missing if s != OVERHEAD]
        got = measure.measure_net(ks, threads, done=done)
        done(len(missing) - len(ks))                        # the run overhead's entry
        it = iter(got.kernels)
        return [got.overhead if s == OVERHEAD else next(it) for s in missing]

    sigs = [*by_sig, OVERHEAD]
    timings = cache.lookup(sigs, cache.context(threads), measure_missing, label)
    return dict(zip(sigs[:-1], timings, strict=False)), timings[-1].median_s


def host_latencies(threads: float, cols: np.ndarray, ops: tuple[str, ...], kinds: tuple[int, ...]) -> np.ndarray:
    """Per-row latency in seconds of the rows in ``cols`` (``[..., F, L]``, F = :data:`COLUMNS`)
    at ``threads`` threads: cached or measured kernels (module doc)."""
    cols = np.asarray(cols, np.float64)
    flat = cols.reshape(-1, *cols.shape[-2:])
    plans = [plan.row_kernels(dict(zip(COLUMNS, c, strict=True)), ops, kinds, rules()) for c in flat]
    lat, overhead = lookup({p.kernel.signature: p.kernel for rows in plans for p in rows if p.kernel is not None},
                           max(1, int(round(float(threads)))))
    out = np.zeros((flat.shape[0], flat.shape[-1]), np.float32)
    for j, rows in enumerate(plans):
        for i, p in enumerate(rows):
            if p.kernel is not None:
                out[j, i] = lat[p.kernel.signature].median_s
            elif p.absorbed and kinds[i] != FREE:
                out[j, i] = MIN_KERNEL_S
        costed = np.flatnonzero(out[j] > 0)
        if costed.size:
            out[j, costed[0]] += overhead
    return out.reshape(*cols.shape[:-2], cols.shape[-1])


def _callback(threads: jax.Array, cols: jax.Array, wl: Workload) -> jax.Array:
    fn = functools.partial(host_latencies, ops=wl.ops, kinds=wl.kinds)
    shape = jax.ShapeDtypeStruct(cols.shape[:-2] + cols.shape[-1:], jnp.float32)
    return jax.pure_callback(fn, shape, jax.lax.stop_gradient(threads), jax.lax.stop_gradient(cols), vmap_method="sequential")


def _stack(wl: Workload) -> jax.Array:
    return jnp.stack([jnp.asarray(getattr(wl, f), jnp.float32) for f in COLUMNS])


def _metrics(hw: Mapping[str, jax.Array], wl: Workload, latency_s: jax.Array) -> Metrics:
    zero = jnp.zeros_like(latency_s)
    cycles = latency_s * NOMINAL_CLOCK_HZ
    return Metrics(
        latency_cycles=cycles,
        compute_cycles=cycles,
        latency_s=latency_s,
        energy_mac_pj=PLACEHOLDER_POWER_W * latency_s * 1e12,
        energy_sram_pj=zero,
        energy_dram_pj=zero,
        energy_noc_pj=zero,
        energy_leakage_pj=zero,
        macs=wl.macs,
        utilization=zero,
        area_mm2=jnp.float32(PLACEHOLDER_AREA_MM2) + 0.0 * hw["threads"],
        peak_macs_per_cycle=jnp.float32(np.finfo(np.float32).max),
        clock_hz=jnp.float32(NOMINAL_CLOCK_HZ),
    )


def cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    lat = _callback(hw["threads"], _stack(wl), wl)
    return _metrics(hw, wl, lat)


def grid_step(w0: jax.Array) -> jax.Array:
    """The search's width step for a channel group of original width ``w0``
    (:func:`symbiote.search.genome.width_grid`: 8 from 32 channels up, 4 from 8, else 1)."""
    return jnp.where(w0 >= 32, 8.0, jnp.where(w0 >= 8, 4.0, 1.0))


def bracket(x: jax.Array, x0: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Grid points ``lo <= x < hi`` on the grid ``x0 + i * step`` and the weight of ``hi``
    in log space; where ``step`` is 0 (the dimension follows no free width) ``x`` rounded is
    both points, weight 0."""
    xs = jax.lax.stop_gradient(x)
    moves = step > 0
    st = jnp.where(moves, step, 1.0)
    lo = jnp.maximum(x0 + jnp.floor((xs - x0) / st) * st, st)
    hi = lo + st
    w = jnp.clip((jnp.log(jnp.maximum(x, 1e-6)) - jnp.log(lo)) / (jnp.log(hi) - jnp.log(lo)), 0.0, 1.0)
    fixed = jnp.maximum(jnp.round(xs), 1.0)
    return jnp.where(moves, lo, fixed), jnp.where(moves, hi, fixed), jnp.where(moves, w, 0.0)


def dim_steps(m: jax.Array, wl: Workload) -> jax.Array:
    """Per row, the step of a dimension with width map ``m`` (``[L, G]``) when every free
    group it follows moves one grid step (0: it follows none)."""
    if not m.shape[-1]:
        return jnp.zeros(m.shape[:-1])
    return jnp.abs(m) @ jnp.where(wl.free, grid_step(wl.widths0), 0.0)


def relaxed_cost(hw: Mapping[str, jax.Array], wl: Workload) -> Metrics:
    wl0 = wl.with_widths(wl.widths0) if wl.num_groups else wl
    depthwise = dim_steps(wl.groups_map, wl) > 0
    klo, khi, wk = bracket(wl.k, wl0.k, dim_steps(wl.k_map, wl))
    clo, chi, wc = bracket(wl.c, wl0.c, dim_steps(wl.c_map, wl))
    clo, chi, wc = (jnp.where(depthwise, a, b) for a, b in ((klo, clo), (khi, chi), (wk, wc)))
    is_mac = wl.kind == MAC
    base = jnp.where(is_mac, _stack(jax.lax.stop_gradient(wl)), _stack(wl0))
    ik, ic, ig = COLUMNS.index("k"), COLUMNS.index("c"), COLUMNS.index("groups")

    def corner(k, c):
        b = base.at[ik].set(jnp.where(is_mac, k, base[ik])).at[ic].set(jnp.where(is_mac, c, base[ic]))
        return b.at[ig].set(jnp.where(depthwise & is_mac, c, b[ig]))

    corners = jnp.stack([corner(klo, clo), corner(khi, clo), corner(klo, chi), corner(khi, chi)])
    raw = _callback(hw["threads"], corners, wl)
    lg = jnp.log(jnp.maximum(raw, 1e-12))
    mac = jnp.exp((1 - wk) * (1 - wc) * lg[0] + wk * (1 - wc) * lg[1] + (1 - wk) * wc * lg[2] + wk * wc * lg[3])
    scale = wl.out_elems / jnp.maximum(wl0.out_elems, 1.0)
    lat = jnp.where(is_mac, mac, raw[0] * scale)
    return _metrics(hw, wl, lat)
