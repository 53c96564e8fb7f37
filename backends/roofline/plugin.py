"""The built-in ``roofline`` template, registered through the same pluggy hook as any plugin."""

from __future__ import annotations

from symbiote.backends import datapath, technology
from symbiote.backends.hookspecs import hookimpl
from symbiote.backends.roofline import model
from symbiote.backends.space import HardwareSpace, Knob
from symbiote.backends.template import Template

# Defaults: an NVIDIA A100-SXM4-40GB (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020):
# 108 SMs, 1.41 GHz boost, 312 dense FP16 tensor TFLOPS = 156 TMAC/s -> 1024 MACs/cycle/SM,
# TF32 at half the FP16 rate, 1555 GB/s HBM2, 40 MB L2; 128x128 CTA tiles as in CUTLASS.
SPACE = HardwareSpace((
    Knob("macs_per_cycle", "pow2", 1024, 1, 65536, unit="MAC/cycle/unit", doc="peak 16-bit MACs per cycle per unit (x16/bits below 16 bits)"),
    Knob("fp32_rate", "continuous", 0.5, 0.01, 1.0, doc="fraction of the 16-bit rate above 16 bits"),
    Knob("units", "integer", 108, 1, 1024, unit="units", doc="parallel units (SMs / cores)"),
    Knob("tile_m", "pow2", 128, 8, 512, doc="compute tile rows"),
    Knob("tile_n", "pow2", 128, 8, 512, doc="compute tile columns"),
    Knob("align", "pow2", 8, 1, 128, unit="elements", doc="dims must be multiples of this for the fast path"),
    Knob("misaligned_rate", "continuous", 0.25, 0.01, 1.0, doc="fraction of peak when a dim is misaligned"),
    Knob("vector_lanes", "pow2", 64, 1, 4096, unit="lanes/unit", doc="vector lanes per unit for non-GEMM layers"),
    Knob("dram_gbps", "continuous", 1555.0, 1.0, 20000.0, unit="GB/s", doc="memory bandwidth"),
    Knob("cache_mb", "continuous", 40.0, 0.125, 1024.0, unit="MB", doc="on-chip cache"),
    Knob("clock_ghz", "continuous", 1.41, 0.1, 5.0, unit="GHz", doc="clock frequency"),
    # 40 GB of HBM2 on the A100-SXM4-40GB (NVIDIA A100 Tensor Core GPU datasheet, 2020), counted
    # in GiB as GPU memory is (HBM dies hold 2^n Gbit); no cost term: the capacity check of an
    # LLM phase (search/phases.py) compares it with weights + KV cache
    Knob("dram_gib", "continuous", 40.0, 0.001, 4096.0, unit="GiB", doc="memory capacity (2^30 bytes) for the LLM "
         "capacity check: weights + KV cache must fit", costed=False),
    Knob("launch_cycles", "continuous", 3000.0, 0.0, 1e6, unit="cycles", doc="per-layer launch overhead (~2 us kernel launch)"),
    datapath.knob("fp16"),
    technology.node_knob(),
    # ddr3 keeps today's energy per DRAM bit; the A100's memory is dram=hbm2e (technology.py)
    technology.dram_knob(),
    Knob("sparse_24", "categorical", "no", choices=("no", "yes"),
         doc="2:4 sparse tensor cores (A100): 2:4 layers store compressed weights and run at 2x math rate; "
             "+10% MAC-unit area (see model.py)"),
))

TEMPLATE = Template(
    name="roofline",
    space=SPACE,
    cost=model.cost,
    relaxed_cost=model.relaxed_cost,
    source="built-in (symbiote.backends.roofline)",
    doc="GPU/CPU-like roofline with tile and wave quantization, alignment fast path, cache refetch.",
)


@hookimpl
def symbiote_register_templates() -> list[Template]:
    return [TEMPLATE]
