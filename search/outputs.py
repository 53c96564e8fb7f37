"""What a search leaves in its output folder (every file written atomically).

* ``result.json``: the best design (hardware knobs, model knobs, metrics per network,
  the exact accuracy check on the evaluation samples: per output cosine, relative L2 error,
  top-1/top-5 agreement, the run's fidelity and agreement with bootstrap 95% intervals, and
  the proxy's estimate beside them as ``proxy_fidelity``, clipped to [-1, 1]; ``metrics``'
  ``fidelity``, here and in the Pareto front and ``pareto.csv``, is that estimate, clipped
  alike; ``feasible`` comes from the measurement; ``answer_note`` says why the answer
  leaves the models as given although model knobs were searched, else null), regret in multi-model mode, with ``regret_note`` saying why
  when it is unreliable), the baseline, the Pareto front, ``timing`` (seconds per phase,
  the ``--budget-seconds`` plan and what was announced about it),
  the run's settings (with each model's input shapes and values) and seed, the
  convergence history, and ``warnings``: degenerate inputs found before the search
  (``{"kind", "model", "message"}``, :mod:`symbiote.search.degenerate`);
* ``hardware.yaml``: the design, loadable by ``symbiote cost MODEL --hw hardware.yaml``;
* ``<network>.onnx`` per network: the reshaped model, re-read and run in onnxruntime
  after writing;
* ``pareto.csv``: one row per design of the Pareto front (with an accuracy objective,
  ``--objective fidelity``, the first designs' fidelity and agreement measured in
  onnxruntime as the answer's are: ``measured_fidelity``, ``measured_agreement``, and
  ``accuracy`` per design in ``result.json``'s front); ``hysteresis``: with latency
  hysteresis on (``--hysteresis-tolerance``, ort-cpu), the tolerance and per network each
  free group's requested and chosen width with the measured kernel times and the gain
  (null: off).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from symbiote.fileio import write_text
from symbiote.search.api import RunOutcome, input_options




def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def result_dict(o: RunOutcome) -> dict[str, Any]:
    cfg = o.config
    s = cfg.settings
    return _clean({
        "backend": cfg.backend,
        "models": list(cfg.models),
        "objective": o.objective,
        "feasible": o.feasible,
        "answer_note": o.answer_note,
        "violation": o.violation,
        "warnings": [w.as_dict() for w in o.warnings],
        "objectives": [ob.text for ob in o.codesign.problem.objectives],
        "constraints": [str(c) for c in (o.constraints or o.codesign.problem.constraints)],
        "accuracy_floor": [str(c) for c in o.floor],
        "best": {
            "hardware": o.hardware,
            "networks": {n.name: {"model_knobs": n.model_knobs, "metrics": n.metrics, "baseline": n.baseline,
                                  "accuracy": n.accuracy, "regret": n.regret, "regret_note": n.regret_note,
                                  "alone_objective": n.alone_objective} for n in o.networks},
        },
        "hardware_only": None if o.hardware_only is None else {
            "hardware": o.hardware_only["hardware"],
            "networks": {n.name: m for n, m in zip(o.networks, o.hardware_only["metrics"])}},
        "pareto_front": o.front,
        "exact_check_rejected": o.rejected,
        "hysteresis": o.hysteresis,
        "mix": o.mix,
        "settings": {"seed": s.seed, "budget_evals": s.budget_evals, "budget_seconds": s.budget_seconds,
                     "model_knobs": cfg.model_knobs, "population": s.population, "grad_starts": s.grad_starts,
                     "grad_every": s.grad_every, "gradient": asdict(s.gradient), "bits_choices": list(cfg.bits_choices),
                     "hw_fixed": dict(o.codesign.hw_fixed), "calibration": cfg.calibration,
                     "calibration_samples": cfg.calibration_samples, "eval_data": cfg.eval_data,
                     "eval_samples": cfg.eval_samples, "logits": list(cfg.logits),
                     "accuracy_floor": cfg.accuracy_floor, "prepare": cfg.prepare,
                     "finetune": asdict(cfg.recovery),
                     "hysteresis_tolerance": None if o.hysteresis is None else o.hysteresis["tolerance"],
                     "inputs": input_options(cfg)},
        "seed": s.seed,
        "search": {"evaluations": o.result.evals, "seconds": o.result.elapsed_s, "iterations": o.result.iterations,
                   "genes": o.codesign.space.dim, "space_size": o.codesign.space.n_points()},
        "timing": o.timing.as_dict() if o.timing is not None else None,
        "history": [list(h) for h in o.result.history],
    })


def pareto_csv(o: RunOutcome) -> str:
    buf = io.StringIO()
    hw_keys = list(o.hardware)
    nets = [n.name for n in o.networks]
    obj_keys = list(o.front[0]["objectives"]) if o.front else []
    measured = any("accuracy" in p for p in o.front)
    extra = ("measured_fidelity", "measured_agreement") if measured else ()
    cols = ["rank", *hw_keys, *obj_keys,
            *[f"{n}.{m}" for n in nets for m in ("latency_s", "energy_pj", "area_mm2", "edp", "fidelity", *extra)]]
    w = csv.writer(buf)
    w.writerow(cols)
    for i, p in enumerate(o.front):
        row = [i, *[p["hardware"][k] for k in hw_keys], *[p["objectives"][k] for k in obj_keys]]
        for j in range(len(nets)):
            m = p["metrics"][j]
            row += [m.get(k) for k in ("latency_s", "energy_pj", "area_mm2", "edp", "fidelity")]
            if measured:
                acc = (p.get("accuracy") or [{}] * len(nets))[j]
                row += [acc.get("fidelity"), acc.get("agreement")]
        w.writerow(row)
    return buf.getvalue()


def verify_onnx(path: Path, original, inputs: list[dict]) -> float:
    """Run the written file in onnxruntime; its fidelity to the original (the least
    per-output cosine, :mod:`symbiote.search.measures`)."""
    import onnxruntime as ort

    from symbiote.search import measures
    from symbiote.search.accuracy import outputs_of

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    b = [sess.run(None, {k: v for k, v in feeds.items() if k in names}) for feeds in inputs]
    st = measures.stats(outputs_of(original, inputs), b, [v.name for v in original.outputs])
    return measures.measure(st).fidelity


def write_all(o: RunOutcome, out_dir: str | Path) -> dict[str, Path]:
    from symbiote.backends import hwfile
    from symbiote.frontend import save
    from symbiote.search.api import split_of

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    hwfile.write(out / "hardware.yaml", o.config.backend, o.hardware)
    files["hardware"] = out / "hardware.yaml"
    for net, n_out in zip(o.codesign.networks, o.networks):
        dest = out / f"{net.name}.onnx"
        save(n_out.graph, dest)  # atomic itself
        inputs = split_of(o.config, net.graph).evaluation[:1]  # the evaluation samples, as the exact check
        cos = verify_onnx(dest, net.graph, inputs)
        if n_out.accuracy is not None:
            n_out.accuracy["onnx_file_fidelity"] = cos
        files[net.name] = dest
    write_text(out / "pareto.csv", pareto_csv(o))
    files["pareto"] = out / "pareto.csv"
    write_text(out / "result.json", json.dumps(_finite(result_dict(o)), indent=2, allow_nan=False) + "\n")
    files["result"] = out / "result.json"
    return files


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None: strict JSON (``allow_nan=False``),
    which every parser reads (a measure that is undefined, e.g. agreement with no score output)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
