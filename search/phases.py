"""LLM inference phases: a decoder-only model costed as its prefill or as one decode step.

It lives in ``search`` (not ``ir``) because it loads models (the frontend, which ``ir`` never
imports) and feeds the objectives (:mod:`symbiote.search.objectives`) and the commands.

**Inputs of a decoder** (the names Hugging Face and ``torch.onnx`` exports use):

* *token inputs*: the rank-2 integer inputs (``input_ids``, ``position_ids``,
  ``token_type_ids``) are ``[B, S]``; ``attention_mask`` is ``[B, L + S]``;
* *past inputs*: the rank-4 inputs whose name starts with ``past`` (``past_key_0``,
  ``past_key_values.0.key``), laid out ``[B, heads, L, head_dim]`` (sequence axis 2); their
  heads and head size are the file's static dims;
* *present outputs*: the outputs whose name starts with ``present``: the cache after the step.

**Phases** (:class:`Phase`, ``--phase prefill --seq S`` or ``--phase decode --context L``,
with ``--batch B``):

* ``prefill``: the model on ``S`` tokens with an empty cache: token inputs ``[B, S]``. A
  model exported with a cache is first rewritten (:func:`symbiote.search.phases_graph.drop_past`):
  each past input is removed and the node that appends to it (``Concat(past, new)``) becomes
  ``Identity(new)``, so the present outputs are the new keys and values (``S`` rows per
  layer, written once). ONNX allows an empty past (``L = 0``) but input shapes here are
  positive, hence the rewrite.
* ``decode``: one query position (``S = 1``) attending to ``L`` cached keys and values: the
  past inputs are ``[B, heads, L, head_dim]``; the cache append is in place
  (``ir/lower.py``: only the new row is written), the attention reads the ``L + 1`` rows.
  A model exported without a cache is given one by a documented rule
  (:mod:`symbiote.search.phases_cacheless`): its attention is found structurally (``q k^T``
  -> scale/mask -> Softmax -> ``p v``, or an ONNX ``Attention`` node), each per-token op runs
  at sequence 1, and each attention's keys and values are appended in place to a cache of
  ``L`` rows per layer (past inputs and present outputs as a cached export names them), so
  it is priced as the same model exported with a cache; a model whose attention is not
  found raises :class:`PhaseError` saying why.

In both phases ``q @ Transpose(k)`` (``torch.onnx``'s attention scores) is read as one Einsum
(:func:`symbiote.search.phases_graph.keys_in_place`, an exact rewrite), so the key cache is
read once, not copied first. The rewrites edit the loaded model's nodes for the time of the
load only (its weights are never copied). In the Workload every MAC weight is read once per step for the whole batch (a GEMM's
``M = B * S`` rows share one read of the weight), an embedding Gather reads ``B * S`` rows
of its table, and each layer's attention reads its whole key and value cache once per step.

**A mix** (:class:`PhaseMix`, ``--phase mix --mix 'prefill:seq=512:w=1,decode:context=2048:w=4'``,
search only): each phase is one network of the multi-network search (``symbiote.search.api``
loads the model once per phase) and its weight the exponent of the geometric mean the search
scores (:func:`symbiote.search.problem.log_mean`); the networks then carry ``step_tokens``
(:func:`token_metrics`) and each one's ``ttft_s`` or ``tpot_s`` is added to its reported
metrics (:func:`phase_figures`).

**Metrics** (:func:`phase_metrics` for ``symbiote cost``, :func:`search_metrics` inside a
search): the phase's token count (``B * S`` prefill, ``B`` decode) goes into the metrics, from
which :func:`symbiote.search.objectives.derive` gives ``ttft_s`` / ``tpot_s``,
``tokens_per_s`` and ``energy_per_token_pj``.

**Capacity**: the weights plus the KV cache after the step (the present outputs) must fit the
memory the template declares (``dram_gib``, GiB = 2^30 bytes; footprints are printed in GiB
too); activations and runtime workspace are not counted. ``symbiote cost`` prints the check
(:func:`capacity`, :func:`footprint`: every floating-point constant of more than one element
at the widest weight bits of the design's MAC rows, integer ones at their own width, int64
index tensors left out; the cache at the attention matmuls' bits, :func:`workload_bits`).
In a search, :func:`memory_bytes` prices each MAC weight at its own row's bits (the precision
and weight-only knobs) and the KV cache at the ``kv_cache`` knob's bits (it supplies the
rule: :func:`symbiote.search.knobs.kv_cache.stored_bytes`), and the metric ``memory_use`` =
footprint / capacity is bounded by ``memory_use<=1`` (:func:`with_capacity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from symbiote.errors import SymbioteError
from symbiote.ir import dtypes
from symbiote.ir.graph import Graph

PHASES = ("prefill", "decode")
#: bytes in a GiB, the unit of ``dram_gib``
GIB = float(2**30)


class PhaseError(SymbioteError):
    """A phase that the model cannot be costed in (no cache for decode, unknown inputs)."""


@dataclass(frozen=True)
class Phase:
    """``kind`` ``prefill`` (``seq`` tokens, empty cache) or ``decode`` (one token, ``context`` cached)."""

    kind: str
    batch: int = 1
    seq: int = 1
    context: int = 0

    def __post_init__(self) -> None:
        if self.kind not in PHASES:
            raise PhaseError(f"--phase {self.kind!r}: expected one of {', '.join(PHASES)}")
        for k in ("batch", "seq"):
            if getattr(self, k) < 1:
                raise PhaseError(f"--{k} {getattr(self, k)}: must be at least 1")
        if self.kind == "decode" and self.context < 1:
            raise PhaseError(f"--phase decode needs --context L >= 1 (got {self.context})")

    @property
    def tokens(self) -> int:
        """Tokens the step processes: ``B * S`` in prefill, ``B`` (one new token each) in decode."""
        return self.batch * (self.seq if self.kind == "prefill" else 1)

    @property
    def new_len(self) -> int:
        return self.seq if self.kind == "prefill" else 1

    def describe(self) -> str:
        if self.kind == "prefill":
            return f"prefill: batch {self.batch}, {self.seq} tokens"
        return f"decode: batch {self.batch}, 1 token attending to {self.context} cached"


    @property
    def label(self) -> str:
        """A short name for the phase, for a network of a mix: ``prefill512``, ``decode2048-b16``."""
        n = self.seq if self.kind == "prefill" else self.context
        return f"{self.kind}{n}" + (f"-b{self.batch}" if self.batch != 1 else "")


@dataclass(frozen=True)
class PhaseMix:
    """Several phases in one search (``--phase mix --mix SPEC``, :func:`parse_mix`): each phase
    is one network of the multi-network search, whose score is the geometric mean over networks
    of each objective weighted by ``weight`` (an exponent: the score is
    ``prod(obj_i ** (w_i / sum w))``, :func:`symbiote.search.problem.log_mean`)."""

    phases: tuple[Phase, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.phases or len(self.phases) != len(self.weights):
            raise PhaseError("--mix: expected at least one phase, each with a weight")
        if any(not (w > 0 and math.isfinite(w)) for w in self.weights):
            raise PhaseError(f"--mix: weights must be positive and finite, got {list(self.weights)}")
        labels = [p.label for p in self.phases]
        if len(set(labels)) != len(labels):
            raise PhaseError(f"--mix: a phase is given twice ({', '.join(labels)})")

    def describe(self) -> str:
        return ", ".join(f"{p.describe()} (weight {w:g})" for p, w in zip(self.phases, self.weights))


#: what a phase of ``--mix`` may set, and for which kind
_MIX_KEYS = {"seq": "prefill", "context": "decode", "batch": None, "w": None}


def parse_mix(text: str, batch: int = 1) -> PhaseMix:
    """``--mix 'prefill:seq=512:w=1,decode:context=2048:w=4'``: phases joined by ``,``, each
    ``KIND`` then ``:KEY=VALUE`` fields: ``seq`` (prefill, default 128), ``context`` (decode,
    needed), ``batch`` (default ``batch``, the ``--batch``), ``w`` (the weight, default 1)."""
    phases, weights = [], []
    for part in (t.strip() for t in text.split(",")):
        kind, *fields = [f.strip() for f in part.split(":")]
        if kind not in PHASES:
            raise PhaseError(f"--mix {text!r}: {part!r} must start with {' or '.join(PHASES)}, e.g. "
                             "'prefill:seq=512:w=1,decode:context=2048:w=4'")
        kv: dict[str, float] = {}
        for f in fields:
            key, sep, value = f.partition("=")
            if not sep or key not in _MIX_KEYS or _MIX_KEYS[key] not in (None, kind) or key in kv:
                legal = [k for k, only in _MIX_KEYS.items() if only in (None, kind)]
                raise PhaseError(f"--mix {text!r}: {f!r} in {part!r}: expected KEY=VALUE once each, KEY one of "
                                 f"{', '.join(legal)}")
            try:
                kv[key] = float(value) if key == "w" else int(value)
            except ValueError:
                raise PhaseError(f"--mix {text!r}: {f!r}: {value!r} is not a number") from None
        phases.append(Phase(kind, batch=int(kv.get("batch", batch)), seq=int(kv.get("seq", 128 if kind == "prefill" else 1)),
                            context=int(kv.get("context", 0))))
        weights.append(float(kv.get("w", 1.0)))
    return PhaseMix(tuple(phases), tuple(weights))


def phase_figures(graph: Graph, m: Mapping[str, float]) -> dict[str, float]:
    """A network's metrics with its phase's figure: ``ttft_s`` (prefill) or ``tpot_s`` (decode),
    the step's latency, where the search's metrics do not carry it (a mix: its networks are in
    different phases, :func:`token_metrics`)."""
    meta = graph.meta.get("phase")
    if not meta or "latency_s" not in m:
        return dict(m)
    return {**m, ("ttft_s" if meta["kind"] == "prefill" else "tpot_s"): m.get(
        "ttft_s" if meta["kind"] == "prefill" else "tpot_s", m["latency_s"])}


def is_past(name: str) -> bool:
    return name.lower().startswith("past")


def is_present(name: str) -> bool:
    return name.lower().startswith("present")


def _dims(vi: onnx.ValueInfoProto) -> list[Any]:
    t = vi.type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim] if t.HasField("shape") else []


def input_shapes(model: onnx.ModelProto, phase: Phase) -> dict[str, tuple[int, ...]]:
    """The shapes of the decoder's token and past inputs in ``phase`` (module doc)."""
    g = model.graph
    inits = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    s, total = phase.new_len, phase.context + phase.new_len
    out: dict[str, tuple[int, ...]] = {}
    for vi in g.input:
        if vi.name in inits:
            continue
        dims, elem = _dims(vi), vi.type.tensor_type.elem_type
        if is_past(vi.name) and len(dims) == 4:
            if not all(isinstance(d, int) and d > 0 for d in (dims[1], dims[3])):
                raise PhaseError(f"past input {vi.name!r} {dims}: heads and head size (dims 1 and 3) must be static")
            out[vi.name] = (phase.batch, dims[1], max(phase.context, 1), dims[3])
        elif vi.name == "attention_mask" and len(dims) == 2:
            out[vi.name] = (phase.batch, total)
        elif len(dims) == 2 and elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
            out[vi.name] = (phase.batch, s)
    if not any(len(v) == 2 for v in out.values()):
        raise PhaseError("--phase: the model has no token input (a rank-2 integer input such as input_ids)")
    return out


def has_cache(model: onnx.ModelProto) -> bool:
    return any(is_past(vi.name) and len(_dims(vi)) == 4 for vi in model.graph.input)


def without_past(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with each past input removed and its append ``Concat(past, new)`` replaced by
    ``Identity(new)`` (the prefill of a model exported with a cache; module doc)."""
    from symbiote.search.phases_graph import drop_past

    out = onnx.ModelProto()
    out.CopyFrom(model)
    drop_past(out.graph)
    return out


def load_phase(src: Any, phase: Phase, input_shapes_: Mapping[str, Sequence[int]] | None = None,
               input_values: Mapping[str, Any] | None = None) -> Graph:
    """The model ``src`` (a path, ``zoo:NAME`` or ModelProto) as a graph of its ``phase``;
    ``input_shapes_`` adds or overrides shapes of other inputs. A model without a cache at
    decode is lowered by the rule of :mod:`symbiote.search.phases_cacheless`."""
    from symbiote.frontend.load import read_model
    from symbiote.search.phases_graph import drop_past, keys_in_place

    model, base_dir, label, _ = read_model(src)
    cache = has_cache(model)
    edits: list[Callable[[onnx.GraphProto], object]] = [keys_in_place]
    if phase.kind == "prefill" and cache:
        edits.insert(0, drop_past)
    if phase.kind == "decode" and not cache:  # appended first: a Transpose it composes may become [0, 1, 3, 2]
        edits.insert(0, _cache_appends(model, phase, input_shapes_, input_values, base_dir, label))
    graph = _lowered(model, phase, edits, input_shapes_, input_values, base_dir, label)
    graph.meta["phase"] = {"kind": phase.kind, "tokens": phase.tokens}
    if phase.kind == "decode" and not cache:
        graph.meta["phase"]["rule"] = "cacheless"
    return graph


def with_cache(src: Any, phase: Phase) -> onnx.ModelProto:
    """A copy of a model exported without a cache as the decode rule rewrites it for ``phase``
    (past inputs, in-place appends, present outputs: :mod:`symbiote.search.phases_cacheless`),
    runnable in onnxruntime; :func:`load_phase` prices this graph (after the exact ``q k^T``
    rewrite of :func:`symbiote.search.phases_graph.keys_in_place`)."""
    from symbiote.frontend.load import read_model

    model, base_dir, label, _ = read_model(src)
    if phase.kind != "decode" or has_cache(model):
        raise PhaseError(f"{label}: the decode rule is for --phase decode of a model without a cache")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    _cache_appends(model, phase, None, None, base_dir, label)(out.graph)
    return out


def _lowered(model: onnx.ModelProto, phase: Phase, edits: Sequence[Callable[[onnx.GraphProto], object]],
             input_shapes_: Mapping[str, Sequence[int]] | None, input_values: Mapping[str, Any] | None,
             base_dir: Any, label: str) -> Graph:
    """``model`` with ``edits`` applied for the time of the load, lowered at ``phase``'s input shapes."""
    from symbiote.frontend.load import convert_opset, lower
    from symbiote.search.phases_cacheless import CachelessError
    from symbiote.search.phases_graph import PhaseGraphError, edited

    def edit(g: onnx.GraphProto) -> None:
        for e in edits:
            e(g)

    try:
        with edited(model, edit) as m:
            shapes = input_shapes(m, phase)
            shapes.update({k: tuple(v) for k, v in (input_shapes_ or {}).items()})
            return lower(convert_opset(m, label), shapes, base_dir, label, None, input_values)
    except (PhaseGraphError, CachelessError) as e:
        raise PhaseError(f"{label}: {e}") from None


def _cache_appends(model: onnx.ModelProto, phase: Phase, input_shapes_: Mapping[str, Sequence[int]] | None,
                   input_values: Mapping[str, Any] | None, base_dir: Any, label: str) -> Callable[[onnx.GraphProto], None]:
    """The edit that gives a cache-free ``model`` its decode step (:mod:`symbiote.search.phases_cacheless`):
    the attention is found on the model loaded at one token."""
    from symbiote.search.phases_cacheless import CachelessError, append_caches, cache_sites
    from symbiote.search.phases_graph import keys_in_place

    one = _lowered(model, Phase("prefill", batch=phase.batch, seq=1), [keys_in_place], input_shapes_, input_values,
                   base_dir, label)
    try:
        sites = cache_sites(one)
    except CachelessError as e:
        raise PhaseError(f"{label}: --phase decode of a model exported without a cache: {e}") from None
    return lambda g: append_caches(g, sites, phase.context)


def token_metrics(graphs: Sequence[Graph]) -> dict[str, np.ndarray]:
    """``{"prefill_tokens" or "decode_tokens": f32[N]}`` when every graph was loaded in the same
    phase (``graph.meta["phase"]``, :func:`load_phase`), so that :func:`objectives.derive` gives
    ``ttft_s`` or ``tpot_s``, ``tokens_per_s`` and ``energy_per_token_pj``; ``{"step_tokens": ...}``
    when they are in different phases (a mix: ``tokens_per_s`` and ``energy_per_token_pj`` only,
    each network's ``ttft_s`` or ``tpot_s`` is its latency: :func:`phase_figures`); else ``{}``."""
    metas = [g.meta.get("phase") for g in graphs]
    kinds = {m["kind"] for m in metas if m}
    if not metas or any(m is None for m in metas):
        return {}
    key = f"{kinds.pop()}_tokens" if len(kinds) == 1 else "step_tokens"
    return {key: np.asarray([m["tokens"] for m in metas], np.float32)}


def search_metrics(graphs: Sequence[Graph], base: Sequence[Any], wls: Sequence[Any], hw: Mapping[str, Any]) -> dict[str, Any]:
    """The phase metrics of a search's networks (pure JAX in the design ``hw`` and the knobs'
    workloads ``wls``; ``base``: the workloads as prepared): :func:`token_metrics` and, when
    the template declares ``dram_gib``, ``memory_bytes`` (:func:`memory_bytes`) and
    ``capacity_bytes``, from which :func:`objectives.derive` gives ``memory_use``."""
    import jax.numpy as jnp

    out: dict[str, Any] = {k: jnp.asarray(v) for k, v in token_metrics(graphs).items()}
    if out and "dram_gib" in hw:
        out["memory_bytes"] = jnp.stack([memory_bytes(g, b, w, hw) for g, b, w in zip(graphs, base, wls, strict=True)])
        out["capacity_bytes"] = jnp.broadcast_to(jnp.asarray(hw["dram_gib"], jnp.float32) * GIB, out["memory_bytes"].shape)
    return out


def memory_bytes(graph: Graph, base: Any, wl: Any, hw: Mapping[str, Any]) -> Any:
    """Weights + KV cache in bytes, as the search's knobs set them (pure JAX): each MAC row's
    constant weight at the row's bits (a row without bits of its own at the datapath's), the
    other constants (embedding tables, norms, biases: the graph's float constants less the
    prepared workload's MAC weights) at the datapath's bits, and the present outputs at the
    bits :func:`symbiote.search.knobs.kv_cache.stored_bytes` gives (the ``kv_cache`` knob's
    setting, else the bits of the matmuls reading the cache); present outputs not written by
    an append at the widest bits of the activation x activation matmuls."""
    import jax.numpy as jnp

    from symbiote.backends import datapath
    from symbiote.ir.workload import MAC

    dp = datapath.resolve(hw)
    wb = datapath.row_bits(dp, wl.bits_given, wl.weight_bits)
    mac = wl.kind == MAC
    kv_bits = jnp.max(jnp.where(mac & (wl.w_repeat > 1), wb, 0.0))
    kv_bits = jnp.where(kv_bits > 0, kv_bits, dp.bits)
    mac_w = jnp.sum(jnp.where(mac & (wl.w_repeat == 1), wl.weight_elems * wb, 0.0)) / 8.0
    from symbiote.search.knobs.kv_cache import stored_bytes

    kv = stored_bytes(graph, wl, hw)  # the kv_cache knob's rule, where the cache is an append
    kv = _kv_elems(graph) * kv_bits / 8.0 if kv is None else kv
    return mac_w + _other_weight_elems(graph, base) * dp.bits / 8.0 + kv


def _float_const_elems(graph: Graph) -> float:
    return float(sum(v.size for v in graph.constants.values()
                     if v.const is not None and v.size > 1 and np.issubdtype(np.asarray(v.const).dtype, np.floating)))


def _other_weight_elems(graph: Graph, base: Any) -> float:
    from symbiote.ir.workload import MAC

    kind, rep, we = (np.asarray(x) for x in (base.kind, base.w_repeat, base.weight_elems))
    return max(_float_const_elems(graph) - float(we[(kind == MAC) & (rep == 1)].sum()), 0.0)


def _kv_elems(graph: Graph) -> float:
    return float(sum(math.prod(o.shape) for o in graph.outputs if is_present(o.name) and o.shape is not None))


# ------------------------------------------------------------------ capacity
@dataclass(frozen=True)
class Footprint:
    """Bytes the model keeps in memory during the step."""

    weight_bytes: float
    kv_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weight_bytes + self.kv_bytes


def footprint(graph: Graph, weight_bits: float, kv_bits: float) -> Footprint:
    """Weights (floating-point constants at ``weight_bits``, integer ones of more than one
    element other than int64 index tensors at their own width) and the KV cache (the present
    outputs at ``kv_bits``)."""
    w = 0.0
    for v in graph.constants.values():
        if v.const is None or v.size <= 1 or v.dtype in ("int64", "bool"):
            continue
        floating = np.issubdtype(np.asarray(v.const).dtype, np.floating)
        w += v.size * (weight_bits if floating else dtypes.bits(v.dtype)) / 8.0
    kv = sum(math.prod(o.shape) * kv_bits / 8.0 for o in graph.outputs if is_present(o.name) and o.shape is not None)
    return Footprint(w, float(kv))


@dataclass(frozen=True)
class Capacity:
    """Whether a footprint fits ``capacity_bytes``; ``reason`` says why not."""

    footprint: Footprint
    capacity_bytes: float

    @property
    def fits(self) -> bool:
        return self.footprint.total_bytes <= self.capacity_bytes

    @property
    def reason(self) -> str:
        f = self.footprint
        words = (f"weights {f.weight_bytes / GIB:.4g} GiB + KV cache {f.kv_bytes / GIB:.4g} GiB = "
                 f"{f.total_bytes / GIB:.4g} GiB")
        if self.fits:
            return f"{words} fits in dram_gib {self.capacity_bytes / GIB:.4g} GiB"
        return f"{words} does not fit in dram_gib {self.capacity_bytes / GIB:.4g} GiB"

    def as_dict(self) -> dict[str, Any]:
        return {"weight_bytes": self.footprint.weight_bytes, "kv_bytes": self.footprint.kv_bytes,
                "capacity_bytes": self.capacity_bytes, "feasible": self.fits, "reason": self.reason}


def capacity(graph: Graph, design: Mapping[str, Any], weight_bits: float, kv_bits: float) -> Capacity | None:
    """The capacity check of ``graph`` on a design; None when the template declares no ``dram_gib``."""
    if "dram_gib" not in design:
        return None
    return Capacity(footprint(graph, weight_bits, kv_bits), float(design["dram_gib"]) * GIB)


def phase_metrics(phase: Phase, totals: Mapping[str, Any]) -> dict[str, Any]:
    """The step's totals with the phase's token count, through :func:`objectives.derive`
    (``ttft_s`` or ``tpot_s``, ``tokens_per_s``, ``energy_per_token_pj``)."""
    from symbiote.search.objectives import derive

    key = "prefill_tokens" if phase.kind == "prefill" else "decode_tokens"
    return derive({**totals, key: float(phase.tokens)})


def workload_bits(wl: Any, hw: Mapping[str, Any]) -> tuple[float, float]:
    """(weight bits, KV bits) a design stores ``wl`` at, as it prices the rows (a row without
    bits of its own at the datapath's): the widest weight bits of the MAC rows with a constant
    weight, and the widest bits of the activation x activation matmuls, which read the cache
    (else of the weights: integer index inputs such as ``input_ids`` never count)."""
    from symbiote.backends import datapath
    from symbiote.ir.workload import MAC

    dp = datapath.resolve(hw)
    wb = np.asarray(datapath.row_bits(dp, wl.bits_given, wl.weight_bits))
    mac = np.asarray(wl.kind) == MAC
    const_w = mac & (np.asarray(wl.w_repeat) == 1)
    act_w = mac & (np.asarray(wl.w_repeat) > 1)
    w = float(wb[const_w].max()) if const_w.any() else float(wb.max())
    return w, float(wb[act_w].max()) if act_w.any() else w


def with_capacity(constraints: tuple[Any, ...], backend: str) -> tuple[Any, ...]:
    """``constraints`` plus the capacity check ``memory_use<=1`` when the template declares
    ``dram_gib`` and no bound on ``memory_use`` was given (a search in a phase)."""
    from symbiote.backends.manager import get_template
    from symbiote.search.objectives import Constraint

    if "dram_gib" not in get_template(backend).space or any(c.metric == "memory_use" for c in constraints):
        return tuple(constraints)
    return (*constraints, Constraint("memory_use", "<=", 1.0))
