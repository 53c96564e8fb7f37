"""Several phases in one search (``--phase mix``): each phase is a network of the multi-network
search, weighted in its geometric mean. The mixed objective is the weighted geometric mean
of the phases' objectives measured one by one by ``symbiote cost`` on the returned design, and
a heavier decode weight moves the chosen design to the one a decode-only search picks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from symbiote.backends.manager import get_template
from symbiote.errors import SearchError
from symbiote.search import api, objectives
from symbiote.search.driver import SearchSettings
from symbiote.search.phases import Phase, PhaseError, PhaseMix, parse_mix
from symbiote.search.problem import log_mean

#: a small hardware space (15 designs, every other knob at its default) searched to its optimum
GRIDS = {"macs_per_cycle": [16, 64, 256, 1024, 4096], "cache_mb": [0.5, 4.0, 32.0]}
PREFILL, DECODE = Phase("prefill", seq=256), Phase("decode", context=1024)
OBJECTIVE = "latency*area"


def _run(phase) -> api.RunOutcome:
    fixed = {k.name: k.default for k in get_template("roofline").space.knobs if k.name not in GRIDS}
    cfg = api.RunConfig(models=("zoo:gpt_decoder",), backend="roofline", model_knobs="none",
                        objectives=objectives.parse_objectives([OBJECTIVE]), phase=phase, hw_grids=GRIDS,
                        hw_fixed=fixed, settings=SearchSettings(seed=0, budget_evals=400), eval_samples=2,
                        calibration_samples=1)
    return api.run(cfg)


def _cost(phase: Phase, hardware: dict, capsys) -> float:
    """The objective of ``phase`` on ``hardware``, as ``symbiote cost --json`` prices it."""
    from symbiote.cli import main

    where = ["--seq", str(phase.seq)] if phase.kind == "prefill" else ["--context", str(phase.context)]
    sets = [a for k, v in hardware.items() for a in ("--set", f"{k}={v}")]
    assert main(["cost", "zoo:gpt_decoder", "-b", "roofline", "--phase", phase.kind, *where, *sets, "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    m = objectives.derive({k: np.float64(v) for k, v in totals.items() if isinstance(v, float)})
    return float(np.exp(float(objectives.Objective.parse(OBJECTIVE).log_value(m))))


def test_the_mix_objective_is_the_weighted_geometric_mean_of_each_phase_s_cost(capsys):
    out = _run(PhaseMix((PREFILL, DECODE), (1.0, 4.0)))
    assert [n.name for n in out.networks] == ["gpt_decoder-prefill256", "gpt_decoder-decode1024"]
    assert out.codesign.problem.weights == (1.0, 4.0)
    ttft, tpot = _cost(PREFILL, out.hardware, capsys), _cost(DECODE, out.hardware, capsys)
    want = (ttft ** 1.0 * tpot ** 4.0) ** (1.0 / 5.0)
    assert out.objective == pytest.approx(want, rel=1e-5)
    assert out.mix["objective"] == pytest.approx(want, rel=1e-5)
    rows = out.mix["phases"]
    assert [r["weight"] for r in rows] == [1.0, 4.0]
    assert rows[0]["objective"] == pytest.approx(ttft, rel=1e-5) and rows[1]["objective"] == pytest.approx(tpot, rel=1e-5)
    # each phase's own figure: the prefill's TTFT and the decode step's TPOT, its latency
    assert rows[0]["ttft_ms"] == pytest.approx(out.networks[0].metrics["latency_s"] * 1e3)
    assert rows[1]["tpot_ms"] == pytest.approx(out.networks[1].metrics["latency_s"] * 1e3)
    assert "tpot_s" in out.networks[1].metrics and "ttft_s" in out.networks[0].metrics


def test_a_heavier_decode_weight_moves_the_design_to_the_decode_only_pick():
    knobs = lambda o: {k: o.hardware[k] for k in GRIDS}  # noqa: E731
    prefill_only, decode_only = knobs(_run(PREFILL)), knobs(_run(DECODE))
    assert prefill_only != decode_only                     # the phases want different hardware
    light = _run(PhaseMix((PREFILL, DECODE), (100.0, 1.0)))
    heavy = _run(PhaseMix((PREFILL, DECODE), (1.0, 100.0)))
    assert knobs(light) == prefill_only and knobs(heavy) == decode_only
    # the decode phase's objective gets better, the prefill's worse
    of = lambda o, i: o.mix["phases"][i]["objective"]      # noqa: E731
    assert of(heavy, 1) < of(light, 1) and of(heavy, 0) > of(light, 0)


def test_log_mean_weights_are_exponents():
    logs = np.log(np.array([[2.0, 8.0]]))
    assert float(np.exp(log_mean(logs, None))[0]) == pytest.approx(4.0)
    assert float(np.exp(log_mean(logs, (1.0, 2.0)))[0]) == pytest.approx((2.0 * 8.0 ** 2) ** (1 / 3))


def test_parse_mix_and_its_errors():
    mix = parse_mix("prefill:seq=512:w=1, decode:context=2048:w=4:batch=8", batch=2)
    assert mix == PhaseMix((Phase("prefill", batch=2, seq=512), Phase("decode", batch=8, context=2048)), (1.0, 4.0))
    assert [p.label for p in mix.phases] == ["prefill512-b2", "decode2048-b8"]
    for bad, why in (("train:seq=4", "must start with prefill or decode"), ("prefill:context=4", "KEY one of"),
                     ("decode:context=4:w=0", "positive"), ("decode", "--context L"),
                     ("decode:context=4,decode:context=4", "given twice"), ("prefill:seq=x", "not a number")):
        with pytest.raises(PhaseError, match=why):
            parse_mix(bad)


def test_a_mix_searches_the_hardware_on_objectives_every_phase_has():
    mix = PhaseMix((PREFILL, DECODE), (1.0, 1.0))
    base = dict(models=("zoo:gpt_decoder",), backend="roofline", phase=mix)
    with pytest.raises(SearchError, match="model knobs of its own"):
        api.check_mix(api.RunConfig(**base, model_knobs="precision"))
    with pytest.raises(SearchError, match="tpot_ms is one phase's figure"):
        api.check_mix(api.RunConfig(**base, model_knobs="none", objectives=objectives.parse_objectives(["tpot_ms"])))


def test_the_command_line_mix(capsys, tmp_path):
    from symbiote.cli import main

    assert main(["cost", "zoo:gpt_decoder", "--phase", "mix", "--mix", "decode:context=8"]) == 2
    assert "--phase mix is for search" in capsys.readouterr().err
    assert main(["cost", "zoo:gpt_decoder", "--phase", "decode", "--context", "8", "--mix", "decode:context=8"]) == 2
    assert "--mix is for --phase mix" in capsys.readouterr().err
    assert main(["search", "zoo:gpt_decoder", "-b", "roofline", "--phase", "mix", "--mix",
                 "prefill:seq=32:w=1,decode:context=64:w=3", "--objective", "latency", "--budget-evals", "40",
                 "-q", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "phase gpt_decoder-prefill32 (prefill: batch 1, 32 tokens, weight 1): TTFT" in out
    assert "phase gpt_decoder-decode64 (decode: batch 1, 1 token attending to 64 cached, weight 3): TPOT" in out
    assert "mix: weighted geometric mean of latency" in out
    result = json.loads((tmp_path / "result.json").read_text())
    assert [r["weight"] for r in result["mix"]["phases"]] == [1.0, 3.0]
