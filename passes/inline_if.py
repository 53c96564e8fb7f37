"""``inline-if``: replace every ``If`` whose condition is constant by its taken branch (exact).

Constant folding runs first, so a condition computed from constants or static shapes
counts as constant; the branch's nodes then become nodes of the outer graph (its
outer-scope reads wired to the outer values, names kept unique) and folding repeats
until no If has a constant condition (:mod:`symbiote.frontend.inline`). The loader
already does this for every model it loads, so the pass matters after passes that make
a condition constant, and on graphs built by hand. To fix a condition that depends on an
input (a sample rate), load with ``input_values={"sr": 16000}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from symbiote.ir.graph import Graph
from symbiote.passes.base import Pass


@dataclass(frozen=True)
class InlineIf(Pass):
    """Inline every If whose condition is constant after folding (the taken branch replaces it)."""

    name: ClassVar[str] = "inline-if"
    exact: ClassVar[bool] = True

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        from symbiote.frontend.fold import fold_and_infer
        from symbiote.frontend.inline import inline_constant_ifs

        fold_and_infer(graph)
        inlined = inline_constant_ifs(graph)
        return bool(inlined), {"inlined": inlined}
