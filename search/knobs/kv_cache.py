"""The ``kv_cache`` model knob: the bits each KV-cache tensor of a decoder is stored at.

* **Targets**: the present outputs (:func:`symbiote.search.phases.is_present`) written by
  an in-place append (``Concat(past, new)``, :func:`symbiote.ir.lower` prices only the
  new rows): one target per cache tensor, a layer's keys and its values apart.
* **Genes**: one per target over :data:`KV_BITS` plus the held datapath's width; the
  default is the datapath's width (the model as given stores its cache at it), else 16.
* **Cost** (:func:`cache_rows`, :func:`with_kv_bits`): the append row reads and writes
  the new rows at the cache's bits; every activation x activation matmul that reads the
  cache as its second operand (the scores ``q k^T``, the context ``p v``, through view
  ops) reads it at the cache's bits, its first operand and output staying at the row's
  own activation bits (the datapath's when not given). The capacity check asks
  :func:`stored_bytes` for the cache's bytes (:func:`symbiote.search.phases.memory_bytes`).
* **Proxy**: a cache at ``b`` bits costs ``coef / T * qdq_noise(b) / qdq_noise(4)`` of
  fidelity per target (``T`` targets; :func:`symbiote.search.knobs.precision.qdq_noise`,
  the rounding noise of a symmetric ``b``-bit quantizer), ``coef`` the loss measured in
  onnxruntime with every cache at 4 bits on the calibration samples, times
  ``accuracy.CALIBRATION_MARGIN``; without samples the prior ``precision.BITS_COEF``.
* **Pass** (:func:`quantize_caches`): both inputs of the append (the past cache and the new
  rows) go through ``Clip(+-amax) -> QuantizeLinear -> DequantizeLinear`` at the target's
  bits, **per tensor, symmetric** (``amax`` = the largest ``|x|`` of the present output over
  the calibration samples, shared by both inputs), so the present output is the quantized
  cache and the attention reads it; the append is annotated with the bits (``act_bits``,
  ``weight_bits``), the matmuls reading the cache are not (``ir/lower.py`` prices an
  activation x activation matmul's second operand at its activation bits, so ``symbiote
  cost`` of the written model prices those reads at the datapath's width). Caches at 16
  bits stay float.
* **Repair**: the lowest cache bits below the original raised one grid step at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.search.knobs import Fitted, GeneSettings, Prepared, Probes, RewriteContext

#: the bit-widths a cache may take (16: float, the fp16 datapath's width)
KV_BITS = (4, 8, 16)
#: bits of the probe the proxy is fitted on
PROBE_BITS = 4
#: view ops the cache passes through on its way to the matmuls (no data moves)
_VIEWS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})


@dataclass(frozen=True)
class CacheRows:
    """A cache tensor's Workload rows: the append that writes it and the matmuls reading it."""

    name: str
    append: int
    readers: tuple[int, ...]


def _readers(value: Any) -> list[Any]:
    """The nodes reading ``value`` as a matmul's second operand, through view ops."""
    out, frontier = [], [value]
    while frontier:
        v = frontier.pop()
        for node, slot in v.uses:
            if node.onnx_op in _VIEWS and node.outputs:
                frontier.append(node.outputs[0])
            elif node.onnx_op in ("MatMul", "Einsum") and slot == 1:
                out.append(node)
    return out


def cache_rows(graph: Any, names: Sequence[str]) -> tuple[CacheRows, ...]:
    """The graph's cache tensors (module doc) and their rows in a Workload named ``names``."""
    from symbiote.ir.lower import _appends_in_place
    from symbiote.search.phases import is_present

    rows = {n: i for i, n in enumerate(names)}
    out = []
    for o in graph.outputs:
        p = o.producer
        if not is_present(o.name) or p is None or p.onnx_op != "Concat" or p.name not in rows or not _appends_in_place(p):
            continue
        readers = tuple(rows[n.name] for n in _readers(o) if n.name in rows)
        out.append(CacheRows(o.name, rows[p.name], readers))
    return tuple(out)


def with_kv_bits(wl: Any, caches: Sequence[CacheRows], bits: jax.Array, hw: Mapping[str, Any]) -> Any:
    """``wl`` with cache ``j`` at ``bits[j]`` (module doc, "Cost"); pure JAX."""
    from symbiote.backends import datapath

    if not caches:
        return wl
    dp = datapath.resolve(hw)
    given = jnp.asarray(wl.bits_given)
    wb = datapath.row_bits(dp, given, jnp.asarray(wl.weight_bits))
    ab = datapath.row_bits(dp, given, jnp.asarray(wl.act_bits))
    bits = jnp.asarray(bits, jnp.float32)
    app = jnp.asarray([c.append for c in caches])
    wb, ab = wb.at[app].set(bits), ab.at[app].set(bits)
    rd = [(r, j) for j, c in enumerate(caches) for r in c.readers]
    if rd:
        wb = wb.at[jnp.asarray([r for r, _ in rd])].set(bits[jnp.asarray([j for _, j in rd])])
    touched = jnp.asarray([c.append for c in caches] + [r for r, _ in rd])
    return wl.with_bits(wb, ab, given.at[touched].set(1.0))


def stored_bytes(graph: Any, wl: Any, hw: Mapping[str, Any]) -> Any | None:
    """The bytes of the graph's cache tensors (present outputs written by an append) at the
    bits ``wl`` stores them at: each at its append row's bits when given (this knob's
    setting), else at the widest bits its matmuls read it at; None when the graph has no such
    cache (pure JAX in ``wl`` and ``hw``)."""
    import math

    from symbiote.backends import datapath

    caches = cache_rows(graph, wl.names)
    if not caches:
        return None
    dp = datapath.resolve(hw)
    wb = datapath.row_bits(dp, wl.bits_given, wl.weight_bits)
    elems = {o.name: float(math.prod(o.shape)) for o in graph.outputs if o.shape is not None}
    total = jnp.float32(0.0)
    for c in caches:
        read = jnp.max(wb[jnp.asarray(c.readers)]) if c.readers else dp.bits
        own = jnp.where(wl.bits_given[c.append] > 0.5, wl.act_bits[c.append], read)
        total = total + elems.get(c.name, 0.0) * own / 8.0
    return total


def quantize_caches(graph: Any, bits: Mapping[str, int], amax: Mapping[str, float], act_bits: int = 16) -> Any:
    """A copy of ``graph`` with each cache in ``bits`` (at <= 8 bits) fake-quantized (module
    doc, "Pass"); ``amax``: per cache, its largest ``|x|``; ``act_bits``: the bits the matmuls
    that read a cache keep for their other operand (the datapath's)."""
    from symbiote.passes.precision import _fake_quant

    g = graph.copy()
    by_out = {o.name: o for o in g.outputs}
    for name, b in bits.items():
        if int(b) > 8:
            continue
        node = by_out[name].producer
        for slot, v in enumerate(list(node.inputs)):
            if v is not None and v.dtype == "float32":
                node.set_input(slot, _fake_quant(g, v, node, int(b), float(amax.get(name, 0.0)), f"kv{slot}", before=node))
        node.meta["act_bits"] = node.meta["weight_bits"] = int(b)   # the append, as `symbiote cost` of the file reads it
        for reader in _readers(node.outputs[0]):   # the matmuls read the cache (their second operand) at b bits
            reader.meta["weight_bits"] = int(b)
            reader.meta.setdefault("act_bits", int(act_bits))
    g.sort()
    return g


def cache_ranges(graph: Any, names: Sequence[str], inputs: list[dict] | None) -> dict[str, float]:
    """Per cache, the largest ``|x|`` of its present output over ``inputs`` (onnxruntime)."""
    from symbiote.search import accuracy

    if not inputs:
        return {}
    idx = {o.name: i for i, o in enumerate(graph.outputs)}
    outs = accuracy.outputs_of(graph, inputs)
    return {n: float(max(np.abs(o[idx[n]]).max() for o in outs)) for n in names if n in idx}


class KvCache:
    name = "kv_cache"
    kind = "kv_bits"
    order = 3
    doc = "the bits each KV-cache tensor (present output) is stored and read at"

    def targets(self, prep: Prepared) -> tuple[str, ...]:
        return tuple(c.name for c in cache_rows(prep.graph, prep.workload.names))

    def fit(self, prep: Prepared, targets: Sequence[str], probes: Probes) -> Fitted:
        from symbiote.search import accuracy
        from symbiote.search.knobs.precision import BITS_COEF, quant_noise

        caches = {c.name: c for c in cache_rows(prep.graph, prep.workload.names)}
        chosen = tuple(caches[t] for t in targets)
        coef = BITS_COEF * float(quant_noise(PROBE_BITS)) * max(len(targets), 1)
        if targets and probes.inputs:
            amax = cache_ranges(prep.graph, targets, probes.ranges or probes.inputs)
            probe = quantize_caches(prep.graph, {t: PROBE_BITS for t in targets}, amax)
            loss = 1.0 - accuracy.compare(prep.graph, probe, probes.inputs).fidelity
            coef = max(loss, 0.0) * accuracy.CALIBRATION_MARGIN
        return Fitted(self.name, tuple(targets), tuple(c.append for c in chosen),
                      {"caches": chosen, "coef": np.float32(coef)})

    def genes(self, fitted: Fitted, net: int, prefix: str, settings: GeneSettings) -> list[Any]:
        from symbiote.search.genome import Gene

        bits = tuple(sorted(set(KV_BITS) | ({settings.datapath_bits} if settings.datapath_bits else set())))
        base = settings.datapath_bits or 16
        return [Gene(f"{prefix}/{self.kind}/{t}", tuple(float(b) for b in bits), bits.index(base), self.kind, net, key=t)
                for t in fitted.targets]

    def workload(self, wl: Any, fitted: Fitted, values: jax.Array, hw: Mapping[str, Any]) -> Any:
        return with_kv_bits(wl, fitted.tables["caches"], values, hw)

    def proxy_loss(self, fitted: Fitted, values: jax.Array) -> jax.Array:
        from symbiote.search.knobs.precision import qdq_noise

        if not fitted.targets:
            return jnp.float32(0.0)
        per = jnp.float32(fitted.tables["coef"]) / len(fitted.targets)
        return jnp.sum(per * qdq_noise(values) / qdq_noise(jnp.float32(PROBE_BITS)))

    def setting(self, fitted: Fitted, j: int, value: float) -> int:
        return int(round(float(value)))

    def rewrite(self, graph: Any, chosen: Mapping[str, Any], context: RewriteContext) -> Any:
        low = {k: int(v) for k, v in chosen.items() if int(v) <= 8}
        if not low:
            return graph
        return quantize_caches(graph, low, cache_ranges(graph, tuple(low), context.inputs), context.default_bits)

    def repair(self, x: Any, default: Any, mine: Any, space: Any) -> list[Any]:
        from symbiote.search.knobs.precision import KNOB as PRECISION

        return PRECISION.repair(x, default, mine, space)


KNOB = KvCache()
