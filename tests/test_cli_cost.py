"""`symbiote cost` costs a model the way `symbiote search` does: the same prepare passes,
the same default template, the same default hardware as the search's "before"."""

from __future__ import annotations

import json

import pytest

from symbiote.cli import main
from symbiote.search import api
from symbiote.search.prepare import DEFAULT_PREPARE
from symbiote.search.problem import evaluator_for


def _cost(argv, capsys) -> dict:
    assert main(["cost", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cost_prepares_the_model_and_defaults_to_the_search_template(capsys):
    got = _cost(["zoo:tiny_cnn"], capsys)
    assert got["backend"] == api.RunConfig(models=()).backend == "systolic"
    assert got["prepare"] == DEFAULT_PREPARE
    raw = _cost(["zoo:tiny_cnn", "--prepare", "none"], capsys)
    # unprepared, each batch norm and activation is a DRAM round trip of its own
    assert raw["totals"]["edp"] > 1.2 * got["totals"]["edp"]
    assert len(raw["layers"]) > len(got["layers"])
    assert main(["cost", "zoo:tiny_cnn", "--prepare", "fold-bn,prune(ratio=0.5)"]) == 2
    err = capsys.readouterr().err
    assert "--prepare" in err and "prune" in err and "Traceback" not in err


@pytest.mark.parametrize("sets, knobs", [([], "none"), (["rows=16", "dataflow=os"], "channels+precision")])
def test_cost_equals_the_search_baseline(sets, knobs, capsys):
    """The search's "before" is the template's default design (held and --set knobs at
    their values) on the prepared model, whatever the model knobs: what `cost` prices."""
    from symbiote.backends import hwfile

    cfg = api.RunConfig(models=("zoo:tiny_cnn",), model_knobs=knobs, hw_fixed=hwfile.parse_sets(sets))
    cd = api.build(cfg)
    base = api._per_net(evaluator_for(cd.problem), cd.baseline())[0]
    got = _cost(["zoo:tiny_cnn", *[a for s in sets for a in ("--set", s)]], capsys)
    assert got["hardware"] == cd.hardware(cd.baseline())
    for k in ("latency_s", "energy_pj", "area_mm2", "edp"):
        assert got["totals"][k] == pytest.approx(base[k], rel=1e-5), k


@pytest.mark.slow
def test_cost_of_resnet18_equals_the_search_report_before(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["search", "zoo:resnet18", "--budget-evals", "4", "--model-knobs", "none", "-q", "-o", str(out)]) == 0
    before = json.loads((out / "result.json").read_text())["best"]["networks"]["resnet18"]["baseline"]
    capsys.readouterr()
    got = _cost(["zoo:resnet18"], capsys)["totals"]
    assert got["latency_s"] == pytest.approx(before["latency_s"], rel=1e-5)
    assert got["edp"] == pytest.approx(before["edp"], rel=1e-5)
    assert f"{before['latency_s'] * 1e3:.4g} ->" in (out / "report.md").read_text()
