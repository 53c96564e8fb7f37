"""A third-party backend plugin used by tests/backends/test_backends_plugins.py.

It is exposed through an entry point in group ``symbiote.backends`` exactly as an installed
distribution would expose it (the test writes the ``*.dist-info`` on sys.path).
"""

import jax.numpy as jnp
import pluggy

from symbiote.backends.metrics import Metrics
from symbiote.backends.space import HardwareSpace, Knob
from symbiote.backends.template import Template

hookimpl = pluggy.HookimplMarker("symbiote")

SPACE = HardwareSpace((
    Knob("macs_per_cycle", "continuous", 256.0, 1.0, 1e6),
    Knob("gbps", "continuous", 10.0, 0.1, 1e4),
))


def _cost(hw, wl):
    compute = wl.macs / hw["macs_per_cycle"]
    mem = (wl.in_elems + wl.out_elems + wl.weight_elems) / hw["gbps"]
    lat = compute + mem
    z = jnp.zeros_like(lat)
    area = hw["macs_per_cycle"] * 1e-3
    return Metrics(latency_cycles=lat, compute_cycles=compute, latency_s=lat * 1e-9, energy_mac_pj=wl.macs * 0.2,
                   energy_sram_pj=z, energy_dram_pj=mem * 10.0, energy_noc_pj=z, energy_leakage_pj=lat * area,
                   macs=wl.macs, utilization=wl.macs / (hw["macs_per_cycle"] * lat + 1e-9), area_mm2=area,
                   peak_macs_per_cycle=hw["macs_per_cycle"], clock_hz=jnp.float32(1e9))


TOY = Template(name="toy", space=SPACE, cost=_cost, relaxed_cost=_cost, source="symbiote-toy-backend", doc="a toy template")


@hookimpl
def symbiote_register_templates():
    return [TOY]
