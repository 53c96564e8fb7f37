"""Model knobs, one module each: everything the search needs to know about one way of
changing the model lives in the knob's module.

A model knob (:class:`ModelKnob`) supplies:

* ``targets(prep)``: which channel groups or layers get it (the rule its pass applies);
* ``fit(prep, targets, probes)``: what it needs before the search, a :class:`Fitted`: its
  targets, Workload rows and tables (e.g. its accuracy-proxy coefficients, measured in
  onnxruntime on the calibration samples of ``probes``; without samples, a prior);
* ``genes(fitted, net, prefix, settings)``: its genes (legal values on a grid; gene kind
  ``kind``);
* ``workload(wl, fitted, values, hw)``: its effect on the Workload, pure JAX (also on the
  relaxed values of the gradient phase);
* ``proxy_loss(fitted, values)``: its term of the accuracy proxy, a fidelity loss (JAX);
* ``setting(fitted, j, value)``: the readable setting of target ``j`` (reports, passes);
* ``rewrite(graph, chosen, context)``: the model with a chosen setting written in, by the
  knob's passes; the exact check applies the knobs in ``order`` (channels, sparsity,
  weight_only, then precision, whose activation ranges are measured on the model the others
  left, then kv_cache, whose cache ranges are too); the Workload effects apply in the same order;
* ``repair(x, default, mine, space)``: the steps of the exact check's repair ladder from a
  design back towards the model as given, for this knob's genes (``mine``).

:data:`REGISTERED` lists the knob modules; each defines ``KNOB`` (and may define ``EXCLUDES``,
the knobs it cannot be searched with: :func:`check_together`). Adding a knob is one
module plus its line here: the co-design problem (:mod:`symbiote.search.codesign`), the
exact check and the reports (:mod:`symbiote.search.api`) ask this registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from symbiote.errors import SearchError

if TYPE_CHECKING:
    import jax

#: the knob modules, by name (each defines ``KNOB``)
REGISTERED: dict[str, str] = {
    "channels": "symbiote.search.knobs.channels",
    "precision": "symbiote.search.knobs.precision",
    "sparsity": "symbiote.search.knobs.sparsity",
    "kv_cache": "symbiote.search.knobs.kv_cache",
    "weight_only": "symbiote.search.knobs.weight_only",
}


@dataclass(frozen=True, eq=False)
class Prepared:
    """A prepared network as the knobs see it: its graph, channel groups and Workload."""

    graph: Any
    groups: Any
    workload: Any


@dataclass(frozen=True, eq=False)
class Probes:
    """The calibration samples a knob's fit may run: ``inputs`` (the probes' feeds) and
    ``ranges`` (the feeds activation ranges are measured on). Empty: fit a prior.
    ``recovery``: the fine-tuning each candidate gets before its exact check
    (:class:`symbiote.search.finetune.Recovery`; None: none), which a knob's proxy may
    measure on a probe so that the search does not reject what fine-tuning wins back."""

    inputs: list = field(default_factory=list)
    ranges: list = field(default_factory=list)
    recovery: Any = None


@dataclass(frozen=True)
class GeneSettings:
    """The run's choices that shape the knobs' genes."""

    bits: tuple[int, ...] = (4, 5, 6, 8, 16)   # bit-widths a layer may take
    datapath_bits: int | None = None           # the held datapath's width (the model as given)
    width_range: tuple[float, float] = (0.25, 2.0)


@dataclass(frozen=True, eq=False)
class RewriteContext:
    """What writing a setting into a model may need: the calibration samples (activation
    ranges) and the bits of layers without a setting (the datapath's)."""

    inputs: list | None = None
    default_bits: int = 8


@dataclass(frozen=True, eq=False)
class Fitted:
    """A knob fitted to one network: its targets (layer names), their Workload rows, and
    the knob's own arrays (``tables``: name -> array, e.g. option values and proxy terms)."""

    knob: str
    targets: tuple[str, ...]
    rows: tuple[int, ...]
    tables: Mapping[str, Any] = field(default_factory=dict)
    options: tuple[tuple[str, ...], ...] = ()      # per target, its legal settings (labels)
    default: tuple[int, ...] = ()                   # per target, the index of "as given"


class ModelKnob(Protocol):
    name: str
    kind: str          # its genes' kind
    order: float       # when the exact check writes it (lower first)
    doc: str

    def targets(self, prep: Prepared) -> tuple[str, ...]: ...

    def fit(self, prep: Prepared, targets: Sequence[str], probes: Probes) -> Fitted: ...

    def genes(self, fitted: Fitted, net: int, prefix: str, settings: GeneSettings) -> list[Any]: ...

    def workload(self, wl: Any, fitted: Fitted, values: jax.Array, hw: Mapping[str, Any]) -> Any: ...

    def proxy_loss(self, fitted: Fitted, values: jax.Array) -> jax.Array: ...

    def setting(self, fitted: Fitted, j: int, value: float) -> Any: ...

    def rewrite(self, graph: Any, chosen: Mapping[str, Any], context: RewriteContext) -> Any: ...

    def repair(self, x: Any, default: Any, mine: Any, space: Any) -> list[Any]: ...


@lru_cache(maxsize=None)
def get(name: str) -> ModelKnob:
    """The registered knob ``name``."""
    if name not in REGISTERED:
        raise SearchError(f"unknown model knob {name!r}; registered: {', '.join(REGISTERED)}")
    return importlib.import_module(REGISTERED[name]).KNOB


def names() -> tuple[str, ...]:
    return tuple(REGISTERED)


def check_together(chosen: Sequence[str]) -> None:
    """Refuse knobs that set the same thing on the same layers (a module's ``EXCLUDES``:
    the knob names it cannot be searched with)."""
    for k in chosen:
        bad = [x for x in getattr(importlib.import_module(REGISTERED[k]), "EXCLUDES", ()) if x in chosen]
        if bad:
            raise SearchError(f"model knobs {k!r} and {bad[0]!r} both set the format of the same layers: "
                              "search one of them")


def ordered(chosen: Sequence[str]) -> tuple[str, ...]:
    """Knob names in the order the exact check writes them."""
    return tuple(sorted(chosen, key=lambda k: get(k).order))


def categorical_genes(fitted: Fitted, net: int, prefix: str, kind: str) -> list[Any]:
    """One categorical gene per target over its ``options`` (default: ``fitted.default``)."""
    from symbiote.search.genome import Gene

    return [Gene(f"{prefix}/{kind}/{t}", tuple(float(i) for i in range(len(opts))), d, kind, net, True,
                 tuple(opts), False, t) for t, opts, d in zip(fitted.targets, fitted.options, fitted.default)]


def reset_step(x: Any, default: Any, mine: Any) -> list[Any]:
    """The simplest repair: this knob's genes back to the model as given, in one step."""
    import numpy as np

    if not (x[mine] != default[mine]).any():
        return []
    y = np.array(x, copy=True)
    y[mine] = default[mine]
    return [y]
