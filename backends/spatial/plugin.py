"""The built-in ``spatial`` template, registered through the same pluggy hook as any plugin."""

from __future__ import annotations

from symbiote.backends.hookspecs import hookimpl
from symbiote.backends.spatial import breakdown, model
from symbiote.backends.spatial.mapping import N_CANDIDATES
from symbiote.backends.spatial.space import SPACE
from symbiote.backends.template import Template

TEMPLATE = Template(
    name="spatial",
    space=SPACE,
    cost=model.cost,
    relaxed_cost=model.relaxed_cost,
    mappings=breakdown.breakdown,
    source="built-in (symbiote.backends.spatial)",
    doc=f"Eyeriss/Simba-like array_x x array_y PE array with per-PE register files, a global buffer and DRAM; "
        f"each MAC layer takes the least-EDP of {N_CANDIDATES} candidate mappings (spatial unrolling of the "
        "dataflow family, RF chunk and loop order, GLB/DRAM split), loop-nest reuse analysis with multicast "
        "and spatial reduction; vector unit for non-MAC layers.",
)


@hookimpl
def symbiote_register_templates() -> list[Template]:
    return [TEMPLATE]
