"""Template: an accelerator template a backend plugin registers (DESIGN.md, "Backend").

``cost(hw, wl) -> Metrics`` is pure JAX on an encoded design ``hw`` (``{knob: f32}``, see
:mod:`symbiote.backends.space`) and a :class:`~symbiote.ir.workload.Workload`: it can be
jitted, vmapped over designs (``jax.vmap(t.cost, (0, None))``) and differentiated.
``relaxed_cost`` is a smooth version of the same model for gradients (each template's doc
says how it relaxes ceil, max and categorical choices); it also accepts categorical knobs
as logits over the choices (last axis). ``legalize(hw) -> hw`` snaps a relaxed design to a
buildable one (by default ``space.legalize``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax

from symbiote.backends.metrics import Metrics
from symbiote.backends.space import HardwareSpace
from symbiote.ir.workload import Workload

CostFn = Callable[[Mapping[str, jax.Array], Workload], Metrics]


@dataclass(frozen=True)
class Template:
    name: str
    space: HardwareSpace
    cost: CostFn
    relaxed_cost: CostFn
    legalize: Callable[[Mapping[str, jax.Array]], dict[str, jax.Array]] | None = None
    #: optional: per-layer mapping details of the exact model (``symbiote cost --mappings``):
    #: ``(hw, wl) -> {column: array over the workload's rows}``, with ``is_mac`` and ``order``
    mappings: Callable[[Mapping[str, jax.Array], Workload], dict[str, Any]] | None = None
    source: str = ""
    doc: str = ""

    def __post_init__(self) -> None:
        if self.legalize is None:
            object.__setattr__(self, "legalize", self.space.legalize)

    def evaluate(self, design: Mapping[str, Any], wl: Workload) -> Metrics:
        """Validate a user design (Python values) and cost it (eager convenience)."""
        return self.cost(self.space.encode(design), wl)
