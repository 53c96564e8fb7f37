"""The built-in ``ort-cpu`` template, registered through the same pluggy hook as any plugin."""

from __future__ import annotations

import os

from symbiote.backends.hookspecs import hookimpl
from symbiote.backends.ortcpu import model
from symbiote.backends.space import HardwareSpace, Knob
from symbiote.backends.template import Template

#: the thread counts offered: 1 to the cores this process may use
MAX_THREADS = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))

SPACE = HardwareSpace((
    Knob("threads", "integer", 1, 1, MAX_THREADS, unit="threads",
         doc="onnxruntime intra-op threads the kernels are measured with (one cache per thread count)"),
    Knob("execution_mode", "categorical", "sequential", choices=("sequential", "parallel"),
         doc="onnxruntime execution mode of whole-model runs; a one-kernel model has no parallel branches, "
             "so kernel latencies do not depend on it"),
))

TEMPLATE = Template(
    name="ort-cpu",
    space=SPACE,
    cost=model.cost,
    relaxed_cost=model.relaxed_cost,
    source="built-in (symbiote.backends.ortcpu)",
    doc="this CPU, measured: onnxruntime's fused kernels timed one by one (median), cached on disk.",
)


@hookimpl
def symbiote_register_templates() -> list[Template]:
    return [TEMPLATE]
