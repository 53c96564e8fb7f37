"""Co-design a small CNN and a systolic accelerator in about a minute.

    python examples/codesign_quickstart.py [OUT_DIR]

Searches the hardware knobs of the built-in ``systolic`` template together with the
channel widths and per-layer bit-widths of ``zoo:resnet18``, under a 4 mm2 area budget
and an output fidelity of at least 0.99 (checked in onnxruntime), then writes the
reshaped model, the hardware file and a report with plots.
"""

from __future__ import annotations

import sys

from symbiote.search import api
from symbiote.search.driver import SearchSettings
from symbiote.search.objectives import parse_constraints, parse_objectives
from symbiote.search.outputs import write_all
from symbiote.search.report import write_report


def main(out_dir: str = "codesign_out") -> None:
    cfg = api.RunConfig(
        models=("zoo:resnet18",),
        backend="systolic",
        objectives=parse_objectives(["edp"]),
        constraints=parse_constraints(["area_mm2<=4", "fidelity>=0.99"]),
        model_knobs="channels+precision",
        settings=SearchSettings(seed=0, budget_seconds=30),
    )
    outcome = api.run(cfg, out_dir)
    write_all(outcome, out_dir)
    report = write_report(outcome, out_dir)
    net = outcome.networks[0]
    print(f"hardware: {outcome.hardware}")
    print(f"EDP {net.baseline['edp']:.4g} -> {net.metrics['edp']:.4g} pJ*s, "
          f"fidelity in onnxruntime {net.accuracy['fidelity']:.4f}")
    print(f"report: {report}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
