"""Regression tests for the reviewed defects: infeasible results, resume fingerprints,
bad grids and knob names, gradient budget counting, float32 floors, driver ordering."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from symbiote.backends.manager import get_template
from symbiote.cli import main
from symbiote.errors import SearchError
from symbiote.search import api, codesign
from symbiote.search import evolution as evo
from symbiote.search.driver import Search, SearchSettings, SearchState
from symbiote.search.gradient import GradientPhase, GradientSettings
from symbiote.search.objectives import Constraint, Objective, parse_objectives
from symbiote.search.synthetic import synthetic_problem

_FAST = ["--model-knobs", "none", "-q"]


def test_impossible_constraint_writes_results_marked_infeasible(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["search", "zoo:tiny_cnn", "--budget-evals", "40", "--constraint", "area_mm2<=1e-6",
               *_FAST, "-o", str(out)])
    assert rc == 0
    res = json.loads((out / "result.json").read_text())
    assert res["feasible"] is False and res["violation"] > 0
    area = res["best"]["networks"]["tiny_cnn"]["metrics"]["area_mm2"]
    assert area > 1e-6
    assert "warning" in capsys.readouterr().out.lower()
    assert "WARNING" in (out / "report.md").read_text()


def test_feasible_run_says_so(tmp_path):
    out = tmp_path / "run"
    assert main(["search", "zoo:tiny_cnn", "--budget-evals", "40", "--constraint", "area_mm2<=50",
                 *_FAST, "-o", str(out)]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["feasible"] is True and res["violation"] == 0
    assert res["best"]["networks"]["tiny_cnn"]["metrics"]["area_mm2"] <= 50


def test_resume_with_other_set_values_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["search", "zoo:tiny_cnn", "--budget-evals", "30", *_FAST, "-o", str(out)]
    assert main([*base, "--set", "rows=32"]) == 0
    assert (out / "checkpoint.npz").exists()
    capsys.readouterr()
    assert main([*base, "--resume", "--set", "rows=64"]) == 2
    err = capsys.readouterr().err
    assert "hw_fixed" in err and "Traceback" not in err
    assert main([*base, "--resume", "--set", "rows=32"]) == 0


def test_fingerprint_names_the_part_that_differs(tmp_path):
    p = synthetic_problem()
    s = SearchSettings(seed=1, budget_evals=200, population=12, use_gradient=False)
    ck = tmp_path / "ck.npz"
    with pytest.raises(KeyboardInterrupt):
        Search(p, s, context={"backend": "systolic", "models": {"a": "1"}}).run(ck, stop_after=1)
    with pytest.raises(SearchError, match="models") as e:
        Search(p, s, context={"backend": "systolic", "models": {"a": "2"}}).run(ck, resume=True)
    assert "backend" not in str(e.value)


def test_bad_categorical_grid_is_a_search_error():
    t = get_template("systolic")
    obj = parse_objectives(["edp"])
    for grid in ([], ["bogus"]):
        with pytest.raises(SearchError, match="dataflow"):
            codesign.build(t, [], model_knobs="none", objectives=obj, hw_grids={"dataflow": grid})


def test_unknown_free_knob_is_a_search_error():
    cfg = api.RunConfig(models=(), free_knobs=("clock_gz",), model_knobs="none")
    with pytest.raises(SearchError, match="clock_gz") as e:
        api.build(cfg, [])
    assert "clock_ghz" in str(e.value)
    api.build(api.RunConfig(models=(), free_knobs=("clock_ghz",), model_knobs="none"), [])


def test_empty_genome_is_a_search_error():
    t = get_template("systolic")
    cfg = api.RunConfig(models=(), model_knobs="none", hw_fixed=dict(t.space.default()))
    with pytest.raises(SearchError, match="nothing to search"):
        api.build(cfg, [])


def test_gradient_counts_every_loss_evaluation():
    ph = GradientPhase(synthetic_problem(), GradientSettings(steps=6, rounds=3))
    assert ph.evals_per_start == 6 + 3 + 1   # every step, once per round, once at the end


def test_zero_metric_has_a_finite_float32_log():
    v = Objective.parse("latency").log_value({"latency_s": jnp.zeros((2,), jnp.float32)})
    assert np.isfinite(np.asarray(v)).all()
    c = Constraint.parse("area_mm2>=1")
    assert np.isfinite(np.asarray(c.violation({"area_mm2": jnp.zeros((), jnp.float32)})))


def test_tiny_overshoot_is_a_violation():
    c = Constraint.parse("area_mm2<=1e6")
    just_over = np.nextafter(np.float32(1e6), np.float32(2e6))
    assert float(c.violation({"area_mm2": jnp.float32(just_over)})) > 0
    assert float(c.violation({"area_mm2": jnp.float32(1e6)})) == 0
    lo = Constraint.parse("area_mm2>=1e6")
    just_under = np.nextafter(np.float32(1e6), np.float32(0))
    assert float(lo.violation({"area_mm2": jnp.float32(just_under)})) > 0


def test_categorical_cover_keeps_the_default_start():
    p = synthetic_problem()
    search = Search(p, SearchSettings(budget_evals=10))
    j = [g.name for g in p.space.genes].index("dataflow")
    starts = np.tile(p.space.default(), (5, 1))
    starts[0, j] = 2
    covered = search._categorical_cover(starts)
    np.testing.assert_array_equal(covered[0], starts[0])
    assert set(covered[1:, j].tolist()) == {0, 1, 2}


def test_first_population_is_ranked():
    p = synthetic_problem()
    search = Search(p, SearchSettings(seed=2, budget_evals=500, population=16, grad_starts=4))
    st = SearchState()
    search.step(st)
    order = evo.select(st.pop.obj[:, :1] if st.pop.obj.shape[1] == 1 else st.pop.obj, st.pop.viol, len(st.pop.viol))
    np.testing.assert_array_equal(order, np.arange(len(st.pop.viol)))
