"""Model knobs, one module each: everything the search needs to know about a way of
changing the model lives in the knob's module.

A model knob (:class:`ModelKnob`) supplies:

* ``targets(graph, workload)``: which layers get it (the same rule its pass applies);
* ``fit(graph, workload, targets, inputs)``: what it needs before the search (e.g. its
  accuracy-proxy coefficients, measured on the calibration samples), a :class:`Fitted`;
* ``genes(fitted, net_index, prefix)``: its genes (one per target, legal values on a grid);
* ``workload(wl, fitted, values)``: its effect on the Workload, pure JAX (also on the relaxed
  values of the gradient phase);
* ``proxy_loss(fitted, values)``: its term of the accuracy proxy (a fidelity loss, JAX);
* ``label(fitted, target, index)``: the readable value of a gene (for reports and passes);
* ``passes(chosen)``: the passes that write a chosen setting into the model (run by the
  exact check after channel resizing and before precision, the order a deployment flow
  applies them).

Its repair is generic: the exact check's repair ladder sets a knob's genes back to their
defaults (the model as given), one knob at a time.

:data:`REGISTERED` lists the knob modules; each defines ``KNOB``. Adding a knob is one
module plus its line here: the co-design problem (:mod:`symbiote.search.codesign`), the
exact check and the reports (:mod:`symbiote.search.api`) ask this registry.
(``channels`` and ``precision``, the first two knobs, still live in codesign.py,
accuracy.py and sensitivity.py.)
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
    "sparsity": "symbiote.search.knobs.sparsity",
}


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
    doc: str

    def targets(self, graph: Any, workload: Any) -> tuple[str, ...]: ...

    def fit(self, graph: Any, workload: Any, targets: Sequence[str], inputs: list[dict]) -> Fitted: ...

    def workload(self, wl: Any, fitted: Fitted, values: jax.Array) -> Any: ...

    def proxy_loss(self, fitted: Fitted, values: jax.Array) -> jax.Array: ...

    def passes(self, chosen: Mapping[str, Any]) -> list[Any]: ...


@lru_cache(maxsize=None)
def get(name: str) -> ModelKnob:
    """The registered knob ``name``."""
    if name not in REGISTERED:
        raise SearchError(f"unknown model knob {name!r}; registered: {', '.join(REGISTERED)}")
    return importlib.import_module(REGISTERED[name]).KNOB


def names() -> tuple[str, ...]:
    return tuple(REGISTERED)


def label(fitted: Fitted, j: int, index: int) -> str:
    """The readable setting of target ``j`` at gene index ``index``."""
    return fitted.options[j][int(index)]
