"""Objectives and constraints as data.

An :class:`Objective` is a weighted product of metrics to minimize, e.g. ``"edp"``
(energy x delay), ``"latency"``, ``"energy"``, ``"area"`` or ``"latency^2*energy"``;
the search works on its logarithm, so a product is a weighted sum of log metrics.
Several objectives (``--objective latency --objective energy``) make a Pareto search.

A :class:`Constraint` is parsed from text such as ``"area_mm2<=4"``, ``"latency_ms<=5"``,
``"power_w<=2"``, ``"params<=3e6"``, ``"fidelity>=0.99"``, ``"agreement>=0.99"`` (top-1
agreement of the score outputs), ``"accuracy>=0.95"`` or ``"accuracy_drop<=0.01"`` (top-1
accuracy against the labels of ``--eval-data``); the last three are measured only:
:func:`search_constraints`. Its *violation* is 0 when
met and grows with the relative distance to the bound (a log ratio for positive
quantities), so violations of different units can be summed.

Metrics are plain dicts of arrays keyed by name (``latency_s``, ``energy_pj``,
``area_mm2``, ``params``, ``fidelity``); :func:`derive` adds the derived ones, among them
the LLM-phase metrics ``ttft_ms``, ``tpot_ms``, ``tokens_per_s`` (maximized as an objective)
and ``energy_per_token_uj`` (:mod:`symbiote.search.phases`).
Every function here is pure JAX, usable under jit/vmap/grad.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import jax.numpy as jnp

from symbiote.errors import SearchError

#: metric name -> (base metric, scale) so that value = metrics[base] * scale
_UNITS: dict[str, tuple[str, float]] = {
    "latency_s": ("latency_s", 1.0),
    "latency_ms": ("latency_s", 1e3),
    "latency_us": ("latency_s", 1e6),
    "energy_pj": ("energy_pj", 1.0),
    "energy_uj": ("energy_pj", 1e-6),
    "energy_mj": ("energy_pj", 1e-9),
    "energy_j": ("energy_pj", 1e-12),
    "area_mm2": ("area_mm2", 1.0),
    "power_w": ("power_w", 1.0),
    "edp": ("edp", 1.0),
    "params": ("params", 1.0),
    "macs": ("macs", 1.0),
    "fidelity": ("fidelity", 1.0),
    "agreement": ("agreement", 1.0),
    "accuracy": ("accuracy", 1.0),
    "accuracy_drop": ("accuracy_drop", 1.0),
    "latency_cycles": ("latency_cycles", 1.0),
    # LLM phases (search/phases.py): the step's latency as time to first token (prefill) or
    # time per output token (decode), tokens per second and energy per token (see derive)
    "ttft_ms": ("ttft_s", 1e3),
    "tpot_ms": ("tpot_s", 1e3),
    "tokens_per_s": ("tokens_per_s", 1.0),
    "energy_per_token_uj": ("energy_per_token_pj", 1e-6),
    "energy_per_token_mj": ("energy_per_token_pj", 1e-9),
    # weights + KV cache over the template's memory capacity (search/phases.py): <= 1 fits
    "memory_use": ("memory_use", 1.0),
    "memory_gib": ("memory_bytes", 1.0 / 2**30),
}

#: short objective names -> metric
_ALIASES = {"latency": "latency_s", "energy": "energy_pj", "area": "area_mm2", "power": "power_w",
            "edp": "edp", "params": "params"}

#: metrics to maximize: an objective term on one of them has its weight negated
#: (``--objective tokens_per_s`` minimizes ``tokens_per_s^-1``)
_MAXIMIZED = {"tokens_per_s"}

#: metrics that may be <= 0 (a log ratio makes no sense for them)
_LINEAR = {"fidelity", "agreement", "accuracy", "accuracy_drop"}

#: metrics that measure the model's accuracy: estimated in the search (``fidelity`` by the
#: proxy; the others have no estimate of their own, see :func:`search_constraints`),
#: measured in onnxruntime on the evaluation samples, and only the measurement decides.
#: ``accuracy`` (top-1 against the labels of ``--eval-data``) and ``accuracy_drop`` (the
#: original's accuracy minus the candidate's) need labels
ACCURACY_METRICS = ("fidelity", "agreement", "accuracy", "accuracy_drop")
#: the accuracy metrics that need labels
LABEL_METRICS = ("accuracy", "accuracy_drop")
#: accuracy metrics that may be objectives (maximized, alone: ``--objective fidelity``)
ACCURACY_OBJECTIVES = ("fidelity", "agreement", "accuracy")
#: the least loss ``1 - fidelity`` an accuracy objective tells apart (below: equally good)
ACCURACY_LOSS_FLOOR = 1e-6

METRIC_NAMES = tuple(sorted(set(_UNITS) | set(_ALIASES)))

#: the smallest positive float32: a floor before a log that does not underflow to 0
#: (1e-300 does, in float32, and log(0) = -inf)
_TINY = float(jnp.finfo(jnp.float32).tiny)
#: the least violation of a constraint that is not met (its float32 log ratio may round to 0)
_MIN_VIOLATION = float(jnp.finfo(jnp.float32).eps)


def derive(m: Mapping[str, jnp.ndarray]) -> dict[str, jnp.ndarray]:
    """Add derived metrics: ``edp`` (pJ*s, as ``symbiote cost`` reports it), ``power_w`` (W);
    for an LLM phase (:mod:`symbiote.search.phases`), whose metrics carry ``prefill_tokens``
    (``B * S``) or ``decode_tokens`` (``B``): ``ttft_s`` (the prefill's latency) or ``tpot_s``
    (the decode step's latency), ``tokens_per_s`` (``decode_tokens / tpot_s``, or
    ``prefill_tokens / ttft_s``) and ``energy_per_token_pj`` (the step's energy over its tokens);
    networks in different phases (a mix) carry ``step_tokens`` instead: tokens per second and
    energy per token only;
    with ``memory_bytes`` and ``capacity_bytes`` (weights + KV cache, and the template's memory),
    ``memory_use``, their ratio (the capacity check is ``memory_use<=1``)."""
    out = dict(m)
    if "latency_s" in m and "energy_pj" in m:
        out.setdefault("edp", m["energy_pj"] * m["latency_s"])
        out.setdefault("power_w", m["energy_pj"] * 1e-12 / jnp.maximum(m["latency_s"], 1e-30))
    for key, name in (("prefill_tokens", "ttft_s"), ("decode_tokens", "tpot_s"), ("step_tokens", None)):
        if key in m and "latency_s" in m:
            if name is not None:
                out.setdefault(name, m["latency_s"])
            out.setdefault("tokens_per_s", m[key] / jnp.maximum(m["latency_s"], 1e-30))
            if "energy_pj" in m:
                out.setdefault("energy_per_token_pj", m["energy_pj"] / m[key])
    if "memory_bytes" in m and "capacity_bytes" in m:
        out.setdefault("memory_use", m["memory_bytes"] / jnp.maximum(m["capacity_bytes"], 1.0))
    return out


#: prefix of the user's own metrics (``--metric MODULE:FUNCTION``): ``metric.NAME`` is the
#: value the function returned for the candidate, ``metric.NAME_drop`` the original's minus it
USER_PREFIX = "metric."


def is_user_metric(name: str) -> bool:
    return name.startswith(USER_PREFIX) and len(name) > len(USER_PREFIX)


def metric_value(m: Mapping[str, jnp.ndarray], name: str) -> jnp.ndarray:
    name = _ALIASES.get(name, name)
    if is_user_metric(name):
        if name not in m:
            raise SearchError(f"metric {name!r} is not computed by this search (have: {', '.join(sorted(m))})")
        return m[name]
    base, scale = _UNITS[name]
    if base not in m:
        raise SearchError(f"metric {name!r} is not computed by this search (have: {', '.join(sorted(m))})")
    return m[base] * scale


@dataclass(frozen=True)
class Objective:
    """Minimize prod(metric_i ** weight_i)."""

    terms: tuple[tuple[str, float], ...]
    text: str = ""

    @staticmethod
    def parse(text: str) -> "Objective":
        t = text.strip().lower().replace(" ", "")
        if not t:
            raise SearchError("empty objective")
        terms = []
        for part in t.split("*"):
            name, _, w = part.partition("^")
            name = _ALIASES.get(name, name)
            if name not in _UNITS:
                raise SearchError(f"objective {text!r}: unknown metric {part!r}; known: {', '.join(METRIC_NAMES)}")
            if name in _LINEAR:
                if name in ACCURACY_OBJECTIVES and t == name:
                    return Objective(((name, 1.0),), text.strip())
                raise SearchError(f"objective {text!r}: {name} is maximized on its own (--objective {name}, next to "
                                  f"a cost objective for an accuracy-versus-cost Pareto front), not in a product")
            try:
                weight = float(w) if w else 1.0
            except ValueError:
                raise SearchError(f"objective {text!r}: bad exponent {w!r}") from None
            terms.append((name, -weight if name in _MAXIMIZED else weight))
        return Objective(tuple(terms), text.strip())

    @property
    def accuracy(self) -> bool:
        """An accuracy objective (maximized: the search minimizes its loss)."""
        return len(self.terms) == 1 and self.terms[0][0] in ACCURACY_OBJECTIVES

    def log_value(self, m: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
        """log of the objective (the quantity the search minimizes). An accuracy objective is
        the log of its loss ``1 - value``; in the search every accuracy measure is estimated
        by the fidelity proxy (as for constraints: :func:`search_constraints`)."""
        if self.accuracy:
            return jnp.log(jnp.maximum(1.0 - metric_value(m, "fidelity"), ACCURACY_LOSS_FLOOR))
        return sum(w * jnp.log(jnp.maximum(metric_value(m, n), _TINY)) for n, w in self.terms)


_CONSTRAINT_RE = re.compile(r"^\s*([a-z_0-9]+|metric\.[A-Za-z_0-9]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str      # "<=" or ">="
    bound: float

    @staticmethod
    def parse(text: str) -> "Constraint":
        t = text.strip()
        mt = _CONSTRAINT_RE.match(t if t.startswith(USER_PREFIX) else t.lower())
        if not mt:
            raise SearchError(f"constraint {text!r}: expected METRIC<=VALUE or METRIC>=VALUE, e.g. area_mm2<=4 "
                              f"(or {USER_PREFIX}NAME>=VALUE for a --metric function's NAME)")
        name, op, val = mt.groups()
        name = _ALIASES.get(name, name)
        if is_user_metric(name):
            return Constraint(name, "<=" if op.startswith("<") else ">=", float(val))
        if name not in _UNITS:
            raise SearchError(f"constraint {text!r}: unknown metric {name!r}; known: {', '.join(METRIC_NAMES)}")
        try:
            bound = float(val)
        except ValueError:
            raise SearchError(f"constraint {text!r}: bad number {val!r}") from None
        if name not in _LINEAR and bound <= 0:
            raise SearchError(f"constraint {text!r}: the bound must be positive")
        return Constraint(name, "<=" if op.startswith("<") else ">=", bound)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"

    def violation(self, m: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
        """0 when met, else a positive, unit-free distance to the bound."""
        v = metric_value(m, self.metric)
        if self.metric in _LINEAR or is_user_metric(self.metric):
            d = (self.bound - v) if self.op == ">=" else (v - self.bound)
            return jnp.maximum(d, 0.0) * 100.0  # 0.01 below a fidelity bound ~ a 1% log overshoot
        d = jnp.log(jnp.maximum(v, _TINY)) - jnp.log(self.bound)
        # met or not is decided on the values themselves, the log ratio only says by how much
        missed = (v > self.bound) if self.op == "<=" else (v < self.bound)
        return jnp.where(missed, jnp.maximum(d if self.op == "<=" else -d, _MIN_VIOLATION), 0.0)


def total_violation(constraints: tuple[Constraint, ...], m: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    if not constraints:
        return jnp.zeros_like(next(iter(m.values())))
    return sum(c.violation(m) for c in constraints)


def parse_objectives(texts: list[str] | tuple[str, ...] | None) -> tuple[Objective, ...]:
    return tuple(Objective.parse(t) for t in (texts or ["edp"]))


def parse_constraints(texts: list[str] | tuple[str, ...] | None) -> tuple[Constraint, ...]:
    return tuple(Constraint.parse(t) for t in (texts or []))


def is_accuracy(c: Constraint) -> bool:
    """Accuracy metrics, the user's own (``metric.NAME``) included: measured only."""
    return c.metric in ACCURACY_METRICS or is_user_metric(c.metric)


def search_constraints(constraints: tuple[Constraint, ...]) -> tuple[Constraint, ...]:
    """The constraints as the search sees them. The proxy estimates only the fidelity, so
    the other accuracy bounds steer the search through it (the measurement then decides):
    ``agreement>=a`` as ``fidelity>=a`` (top-1 changes need the outputs to move),
    ``accuracy_drop<=d`` as ``fidelity>=1-d``, ``accuracy>=a`` and the user's metrics as the
    default floor ``fidelity>=0.99`` when no other bound steers the fidelity (an absolute
    accuracy says nothing of how far the outputs may move).
    Duplicates are dropped."""
    out: list[Constraint] = []
    # a bound the proxy cannot estimate steers at the floor only when nothing else bounds the fidelity
    floor_only = not any(c.metric in ("fidelity", "agreement", "accuracy_drop") for c in constraints)
    for c in constraints:
        if (c.metric == "accuracy" or is_user_metric(c.metric)) and not floor_only:
            continue
        if c.metric == "agreement":
            c = Constraint("fidelity", c.op, c.bound)
        elif c.metric == "accuracy_drop":
            c = Constraint("fidelity", ">=", 1.0 - c.bound)
        elif c.metric == "accuracy" or is_user_metric(c.metric):
            c = Constraint("fidelity", ">=", ACCURACY_FLOOR)
        if c not in out:
            out.append(c)
    return tuple(out)


def bounds_accuracy(c: Constraint) -> bool:
    """Whether ``c`` bounds an accuracy measure from the safe side (a floor on a measure, a
    ceiling on a drop)."""
    if is_user_metric(c.metric):
        return True  # the user's metric: whichever way is better for it, the user bounded it
    return is_accuracy(c) and (c.op == "<=" if c.metric == "accuracy_drop" else c.op == ">=")


def measured_violation(constraints: tuple[Constraint, ...], measured: Mapping[str, float | None]) -> float:
    """Total violation of the accuracy constraints by measured values (``{"fidelity": x,
    "agreement": y, ...}``); a bound on agreement, undefined without score outputs, is not
    counted when undefined; any other bounded measure that is missing counts as violated."""
    total = 0.0
    for c in constraints:
        if not is_accuracy(c):
            continue
        v = measured.get(c.metric)
        if v is not None:
            total += float(c.violation({c.metric: jnp.float32(v)}))
        elif c.metric not in ("agreement",):
            total += UNMEASURED_VIOLATION  # bounded but not measured (a plugin evaluator, a metric missing it)
    return total


#: the violation of an accuracy bound whose measure is missing for a candidate (never met)
UNMEASURED_VIOLATION = 100.0

#: the accuracy bound applied when model knobs are on and the user gave none (``--no-accuracy-floor``: off)
ACCURACY_FLOOR = 0.99


def with_accuracy_floor(model_knobs: str, constraints: tuple[Constraint, ...], enabled: bool = True,
                        scores_named: bool = False) -> tuple[tuple[Constraint, ...], tuple[Constraint, ...]]:
    """``constraints`` plus, when the search may change the model (``model_knobs`` not
    ``none``), ``enabled`` and no bound on an accuracy metric was given (:func:`bounds_accuracy`), the floor
    ``fidelity>=0.99``, and ``agreement>=0.99`` when the user named the score outputs
    (``scores_named``, ``--logits``): an inferred "score" output may be box coordinates or
    hidden features, whose argmax means nothing. Returns (the constraints, the floor added)."""
    if not enabled or model_knobs == "none" or any(bounds_accuracy(c) for c in constraints):
        return tuple(constraints), ()
    floor = (Constraint("fidelity", ">=", ACCURACY_FLOOR),)
    if scores_named:
        floor += (Constraint("agreement", ">=", ACCURACY_FLOOR),)
    return tuple(constraints) + floor, floor
