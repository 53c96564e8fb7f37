"""The built-in ``systolic`` template, registered through the same pluggy hook as any plugin."""

from __future__ import annotations

from symbiote.backends import datapath, technology
from symbiote.backends.hookspecs import hookimpl
from symbiote.backends.space import HardwareSpace, Knob
from symbiote.backends.systolic import model
from symbiote.backends.systolic.mapping import DATAFLOWS
from symbiote.backends.template import Template

SPACE = HardwareSpace((
    Knob("rows", "integer", 32, 2, 512, unit="PEs", doc="systolic array rows"),
    Knob("cols", "integer", 32, 2, 512, unit="PEs", doc="systolic array columns"),
    Knob("dataflow", "categorical", "ws", choices=DATAFLOWS, doc="output / weight / input stationary (SCALE-Sim's os, ws, is)"),
    Knob("ifmap_sram_kb", "multiple", 256, 8, 16384, multiple=8, unit="KB", doc="input feature map SRAM (double buffered)"),
    Knob("filter_sram_kb", "multiple", 256, 8, 16384, multiple=8, unit="KB", doc="filter (weight) SRAM (double buffered)"),
    Knob("ofmap_sram_kb", "multiple", 128, 8, 16384, multiple=8, unit="KB", doc="output feature map / partial-sum SRAM"),
    # 25.6 GB/s: one DDR4-3200 64-bit channel (JEDEC JESD79-4: 3200 MT/s x 8 bytes)
    Knob("dram_gbps", "continuous", 25.6, 1.0, 4096.0, unit="GB/s", doc="DRAM bandwidth"),
    Knob("clock_ghz", "continuous", 1.0, 0.1, 4.0, unit="GHz", doc="clock frequency"),
    Knob("vector_width", "pow2", 64, 1, 4096, unit="lanes", doc="vector unit lanes for non-GEMM layers"),
    datapath.knob("int8"),
    technology.node_knob(),
    technology.dram_knob(),
    Knob("weight_prefetch", "categorical", "no", choices=("no", "yes"),
         doc="double-buffered stationary operand: the next fold's weights load while the current fold streams "
             "(TPU-like); no = SCALE-Sim's fold model"),
    Knob("group_mapping", "categorical", "best", choices=("best", "per_group"),
         doc="grouped/depthwise layers: the cheapest of per-group GEMMs, packed block-diagonal GEMMs and the "
             "vector unit (best), or per-group GEMMs only, as SCALE-Sim maps them (per_group)"),
    Knob("tiling", "categorical", "best", choices=("best", "scalesim"),
         doc="loop order and tiling of T per MAC layer: the least-EDP of a few candidates (best), or SCALE-Sim's "
             "fold order only (scalesim); see tiling.py"),
    Knob("sparse_24", "categorical", "no", choices=("no", "yes"),
         doc="2:4 structured-sparsity datapath: 2:4 layers store compressed weights and skip the zero half of the "
             "reduction; +10% PE area (see model.py)"),
))

TEMPLATE = Template(
    name="systolic",
    space=SPACE,
    cost=model.cost,
    relaxed_cost=model.relaxed_cost,
    mappings=model.breakdown,
    source="built-in (symbiote.backends.systolic)",
    doc="TPU/Gemmini-like rows x cols systolic array, SCALE-Sim 3.0.0 mapping (os/ws/is), "
        "double-buffered SRAMs, DRAM refetch model, vector unit for non-GEMM layers.",
)


@hookimpl
def symbiote_register_templates() -> list[Template]:
    return [TEMPLATE]
