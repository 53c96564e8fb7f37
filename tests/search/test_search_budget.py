"""The wall-time budget: the split between phases and networks (a pure function), the run's
clock and stopwatch (fake clocks), the exact checks cut when time is up, progress as log
lines when stderr is not a terminal, regrets from a too-short search alone flagged, and the
one-compile evaluator that the single-network searches read through. No timed assertion."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbiote.commands.progress import LogLines, reporter
from symbiote.search import budget as B
from symbiote.search import regret
from symbiote.search.driver import Progress, SearchSettings


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _est(exact=2.0, outputs=4.0, gradient=40.0, alone_gradient=20.0) -> B.Estimates:
    return B.Estimates(exact, outputs, gradient, alone_gradient)


# ---- the plan ------------------------------------------------------------------------
def test_one_network_gets_what_is_left_after_the_fixed_phases():
    p = B.plan(30.0, 10.0, _est(), networks=1)
    assert p.exact_s == pytest.approx(B.EXACT_RESERVE * 2.0)
    assert p.search_s == pytest.approx(30.0 - 10.0 - p.exact_s - 4.0)
    assert p.alone_searches == 0 and p.alone_s == 0
    assert p.total_s == pytest.approx(30.0)
    # a 40 s compile does not fit in half of a 13 s search: left out, and said with a budget that would fit
    assert not p.gradient
    assert len(p.notes) == 1 and "gradient phase needs ~40 s" in p.notes[0] and "--budget-seconds" in p.notes[0]


def test_gradient_kept_when_its_compile_fits_and_asked_for():
    assert B.plan(200.0, 10.0, _est(), networks=1).gradient
    assert B.plan(200.0, 10.0, _est(), networks=1).notes == ()
    assert not B.plan(200.0, 10.0, _est(), networks=1, gradient=False).gradient


def test_the_time_plans_gradient_choice_is_not_part_of_a_checkpoints_fingerprint():
    from symbiote.search.synthetic import synthetic_problem

    p = synthetic_problem()
    with_grad = SearchSettings(budget_seconds=30.0).fingerprint(p)
    assert SearchSettings(budget_seconds=9.0, gradient_in_budget=False).fingerprint(p) == with_grad
    assert SearchSettings(budget_seconds=30.0, use_gradient=False).fingerprint(p) != with_grad


def test_several_networks_split_the_search_time():
    p = B.plan(60.0, 10.0, _est(gradient=1.0, alone_gradient=0.5), networks=3)
    free = 60.0 - 10.0 - p.exact_s - 4.0
    assert p.search_s == pytest.approx(free * B.JOINT_SHARE)
    assert p.alone_searches == 3
    assert p.alone_s == pytest.approx(free * (1 - B.JOINT_SHARE) / 3)
    assert p.total_s == pytest.approx(60.0)
    assert p.gradient and p.alone_gradient


def test_searches_alone_left_out_when_their_share_is_too_short():
    p = B.plan(21.0, 10.0, _est(), networks=4)  # 4 s free: 0.5 s for each search alone
    assert p.alone_searches == 0
    assert p.search_s == pytest.approx(21.0 - 10.0 - p.exact_s - 4.0)
    assert any("regrets not measured" in n for n in p.notes)
    assert p.total_s <= 21.0 + 1e-9


def test_a_budget_the_fixed_phases_do_not_fit_says_how_long_the_run_takes():
    p = B.plan(30.0, 25.0, _est(exact=5.0), networks=2)
    assert p.search_s == B.MIN_SEARCH_S and p.alone_searches == 0
    assert p.total_s > 30.0
    assert len(p.notes) == 1  # one note, not a gradient note on top
    note = p.notes[0]
    assert "30 s budget" in note and f"about {p.total_s:.0f} s" in note and "raise --budget-seconds" in note


@settings(max_examples=200, deadline=None)
@given(budget=st.floats(1, 3600), spent=st.floats(0, 3600), exact=st.floats(0, 600), outputs=st.floats(0, 600),
       gradient=st.floats(0, 600), networks=st.integers(1, 5), grad=st.booleans())
def test_allowances_never_exceed_the_budget_unless_announced(budget, spent, exact, outputs, gradient, networks, grad):
    p = B.plan(budget, spent, _est(exact, outputs, gradient, gradient / networks), networks, grad)
    assert min(p.search_s, p.alone_s, p.exact_s, p.outputs_s) >= 0
    assert p.search_s >= B.MIN_SEARCH_S
    if p.total_s > budget + 1e-6:
        assert any(f"about {p.total_s:.0f} s" in n for n in p.notes)
    else:
        assert p.alone_searches == 0 or p.alone_s >= B.MIN_ALONE_S
    if p.gradient and grad:
        assert gradient <= B.GRADIENT_SHARE * p.search_s


def test_calibration_that_cannot_fit_is_announced_with_its_estimate():
    assert B.calibration_note("resnet18", 5.0, 28.0, 10.0, 30.0) is None
    note = B.calibration_note("gpt2", 25.0, 29.0, 10.0, 30.0)
    assert note.startswith("calibration of gpt2 needs ~25 s of the 30 s budget")
    assert "--budget-seconds" in note and "--model-knobs none" in note


def test_estimates_grow_with_the_model_and_scale_with_the_measured_speed():
    small, big = B.ModelSize(20, 5, 0.01, 0.1), B.ModelSize(120, 54, 4.1, 25.5)
    for f in (B.calibration_s, B.exact_check_s, B.outputs_s):
        assert 0 < f(small) < f(big)
    e1 = B.estimates([small, big], 2.0)
    e2 = B.estimates([small, big], 2.0, slower=2.0)
    # the speed scales a check's passes and sessions; its evaluation inferences are priced directly
    assert e2.exact_s - e1.exact_s == pytest.approx(B.exact_fixed_s(small) + B.exact_fixed_s(big))
    assert e2.reference_s == e1.reference_s > 0
    assert B.exact_check_s(big, 64) > B.exact_check_s(big, 8)  # more evaluation samples cost more
    assert e1.gradient_s == pytest.approx(B.GRADIENT_COMPILE_RATIO * 2.0) == 2 * e1.alone_gradient_s
    assert B.speed(10.0, 5.0) == 2.0
    assert B.speed(100.0, 1.0) == B.SPEED_RANGE[1] and B.speed(0.1, 1.0) == B.SPEED_RANGE[0]
    assert B.speed(5.0, 0.1) == 1.0  # too short an estimate to tell


def test_model_size_counts_mac_layers(zoo_model):
    from symbiote.frontend import load

    s = B.ModelSize.of(load(zoo_model("tiny_cnn")))
    assert 0 < s.layers < s.nodes and s.gmacs > 0 and s.mparams > 0


# ---- the clock -----------------------------------------------------------------------
def test_budget_and_stopwatch_on_a_fake_clock():
    clock, said, phases = FakeClock(), [], []
    b = B.Budget(30.0, start=95.0, clock=clock, say=said.append, phase=phases.append)
    assert b.elapsed() == 5.0 and b.left() == 25.0
    w = B.Stopwatch(b)
    w.enter("load")
    clock.t += 2
    w.enter("calibration")
    clock.t += 3
    w.enter("load")
    clock.t += 1
    w.say("too long")
    t = w.timing()
    assert t.phases == {"startup": 5.0, "load": 3.0, "calibration": 3.0}
    assert phases == ["load", "calibration", "load"] and said == ["too long"] and t.notes == ("too long",)
    assert B.Budget(None, clock=clock).left() == float("inf")
    assert json.loads(json.dumps(t.as_dict()))["phases"]["load"] == 3.0


def test_process_start_is_not_in_the_future():
    import time

    now = time.monotonic()
    assert B.process_start() <= now + 1e-3


def test_exact_checks_stop_when_time_is_up_and_say_so():
    clock, said = FakeClock(0.0), []
    watch = B.Stopwatch(B.Budget(30.0, start=0.0, clock=clock, say=said.append))
    plan = B.Plan(30.0, 10.0, 10.0, 0.0, 3.0, 4.0, 1, False, False, check_s=2.0)
    clock.t = 20.0
    got = []
    for c in B.in_time(list("abcdef"), watch, plan):
        got.append(c)
        clock.t += 4.0  # each check takes 4 s: after "a", 6 s are left, 4 of them reserved
    assert got == ["a", "f"]  # the first, then the last resort
    assert len(said) == 1 and "after 1 of 6 candidates" in said[0]
    # no time plan (--budget-evals): every candidate
    assert list(B.in_time(list("abc"), watch, None)) == ["a", "b", "c"]
    # time enough: in order until the caller stops
    clock.t = 0.0
    assert list(B.in_time(list("abc"), watch, plan))[:2] == ["a", "b"]


def test_searches_alone_get_their_share_and_are_left_out_when_late():
    clock, said = FakeClock(0.0), []
    watch = B.Stopwatch(B.Budget(30.0, start=0.0, clock=clock, say=said.append))
    plan = B.Plan(30.0, 10.0, 5.0, 3.0, 3.0, 4.0, 2, False, False)
    clock.t = 18.0  # 12 s left, 4 reserved for the outputs: 8 s for two 3 s searches
    assert plan.alone_fits(watch) and plan.alone_seconds(watch.budget.left(), 2) == 3.0
    clock.t = 24.0  # 2 s for two: less than planned
    assert plan.alone_fits(watch) and plan.alone_seconds(watch.budget.left(), 2) == pytest.approx(1.0)
    clock.t = 25.5
    assert not plan.alone_fits(watch) and "regrets are not measured" in said[-1]


# ---- progress when stderr is not a terminal ----------------------------------------------
def _p(evals: int, best: float = 2.0) -> Progress:
    return Progress(evals, 0.0, best, 1, evals)


def test_progress_is_log_lines_every_few_seconds_off_a_terminal():
    out, clock = io.StringIO(), FakeClock(10.0)
    log = LogLines(out, clock, start=10.0, every=5.0)
    log.phase("calibration")
    clock.t = 12.0
    log.update("joint", _p(48, float("inf")))      # first: written
    clock.t = 13.0
    log.update("joint", _p(500))                   # 1 s later: held
    clock.t = 17.5
    log.update("joint", _p(900, 1.5))              # 5.5 s later: written
    clock.t = 18.0
    log.update("joint", _p(1000, 1.25))            # held, then written when the phase ends
    log.phase("exact")
    lines = out.getvalue().splitlines()
    assert lines == ["[    0.0 s] calibration",
                     "[    2.0 s] search joint: 48 evaluations, best none feasible yet, front 1",
                     "[    7.5 s] search joint: 900 evaluations, best 1.5, front 1",
                     "[    8.0 s] search joint: 1000 evaluations, best 1.25, front 1",
                     "[    8.0 s] exact"]


def test_reporter_picks_log_lines_off_a_terminal_and_nothing_when_quiet():
    s = SearchSettings(budget_seconds=30.0)
    out, clock = io.StringIO(), FakeClock(0.0)
    r = reporter(False, s, 0.0, stream=out, clock=clock)
    r.phase("load")
    r.update("joint", _p(10))
    r.stop()
    assert out.getvalue().count("\n") == 2 and "search joint: 10 evaluations" in out.getvalue()
    quiet = io.StringIO()
    q = reporter(True, s, 0.0, stream=quiet, clock=clock)
    q.phase("load")
    assert q.update is None and quiet.getvalue() == ""


# ---- regret ------------------------------------------------------------------------------
def test_a_negative_regret_is_flagged_not_reported():
    r = regret.assess("resnet18", shared=1.0, alone=6.94, alone_feasible=True, alone_evals=392)
    assert r.value is None and r.alone_objective == 6.94
    assert r.note.startswith("unreliable: the search for resnet18 alone was too short (392 evaluations)")
    assert regret.assess("a", 1.0, 1.0 + 1e-6, True, 10).value == 0.0     # float noise: no regret
    assert regret.assess("a", 1.5, 1.0, True, 10).value == pytest.approx(0.5)
    assert regret.assess("a", 1.5, 1.0, True, 10).note is None
    infeasible = regret.assess("a", 1.5, 1.0, False, 10)
    assert infeasible.value is None and "meeting the constraints" in infeasible.note
    assert regret.not_measured("bert").note.startswith("not measured")


# ---- the evaluator the searches alone read through ------------------------------------------
@pytest.fixture(scope="module")
def two_cds():
    from symbiote.search import api, codesign
    from symbiote.search.objectives import parse_constraints

    cfg = api.RunConfig(models=("zoo:tiny_cnn", "zoo:lstm"), constraints=parse_constraints(["area_mm2<=2"]))
    nets = [codesign.prepare_network(m, calibrate=False) for m in cfg.models]
    joint = api.build(cfg, nets)
    alone = api.build(api.for_model(cfg, 1), [joint.networks[1]])
    return joint, alone


def test_a_network_scored_through_the_joint_evaluator_is_scored_as_alone(two_cds):
    from symbiote.search.problem import Evaluator

    joint, alone = two_cds
    view = regret.alone_evaluator(joint, alone, 1)
    rng = np.random.default_rng(0)
    idx = (rng.random((40, alone.space.dim)) * alone.space.sizes).astype(np.int32)
    o1, v1 = view(idx)
    o2, v2 = Evaluator(alone.problem)(idx)
    np.testing.assert_allclose(o1, o2, rtol=1e-5)
    np.testing.assert_allclose(v1, v2, rtol=1e-5, atol=1e-6)
    m1, m2 = view.metrics(idx[:3]), Evaluator(alone.problem).metrics(idx[:3])
    np.testing.assert_allclose(m1["edp"], m2["edp"], rtol=1e-5)


def test_one_batch_size_serves_scores_metrics_and_any_batch(two_cds):
    from symbiote.search.problem import BATCH, Evaluator

    joint, _ = two_cds
    ev = Evaluator(joint.problem)
    rng = np.random.default_rng(1)
    idx = (rng.random((BATCH + 37, joint.space.dim)) * joint.space.sizes).astype(np.int32)
    obj, viol = ev(idx)
    per_obj, per_viol = ev.network_scores(idx)
    np.testing.assert_allclose(obj, per_obj.mean(axis=-1))
    np.testing.assert_allclose(viol, per_viol.sum(axis=-1))
    o_head, _ = ev(idx[:5])
    np.testing.assert_allclose(o_head, obj[:5], rtol=1e-6)
    assert ev.metrics(idx[:2])["latency_s"].shape == (2, 2)
    assert ev._fn._cache_size() == 1  # one compile for all of it


def test_positions_of_a_single_network_genome(two_cds):
    joint, alone = two_cds
    pos = joint.space.positions_of(alone.space)
    assert [joint.space.genes[i].name for i in pos] == [g.name for g in alone.space.genes]
    from symbiote.errors import SearchError

    with pytest.raises(SearchError):
        alone.space.positions_of(joint.space)


def test_the_budget_counts_from_the_process_start_only_for_the_command_itself():
    clock = FakeClock(1000.0)
    assert B.command_start("/usr/bin/pytest", clock) == 1000.0
    assert B.command_start("/venv/bin/symbiote", clock) <= 1000.0
    assert B.command_start("/site-packages/symbiote/__main__.py", clock) <= 1000.0


def test_a_command_execd_by_an_older_process_counts_from_its_own_start():
    """``bash -c "pip install . && symbiote search ..."`` execs symbiote in the shell's process,
    which started before the install: the budget must not count the install."""
    clock = FakeClock(1000.0)
    assert B.command_start("/venv/bin/symbiote", clock, entered=999.8, started=999.5) == 999.5  # a fresh process
    assert B.command_start("/venv/bin/symbiote", clock, entered=999.8, started=950.0) == 999.8  # exec'd after 50 s


# ---- end to end (tiny models, no calibration) ----------------------------------------------
@pytest.mark.slow
def test_cli_logs_progress_off_a_terminal_and_times_its_phases(tmp_path, capsys):
    from symbiote.cli import main

    args = ["search", "zoo:tiny_cnn", "--model-knobs", "none", "--constraint", "area_mm2<=3", "--budget-seconds", "6"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err.splitlines()
    logged = [ln.split("] ", 1)[1] for ln in err if ln.startswith("[")]
    assert logged[0] == "load" and "compile" in logged and "outputs" == logged[-1]
    assert any(ln.startswith("search joint: ") and " evaluations, best " in ln for ln in logged)
    timing = json.loads((tmp_path / "a" / "result.json").read_text())["timing"]
    assert timing["budget_seconds"] == 6
    assert {"startup", "load", "compile", "search", "exact"} <= set(timing["phases"])
    assert timing["plan"]["search_s"] >= B.MIN_SEARCH_S and not timing["plan"]["gradient"]
    assert main([*args, "--quiet", "-o", str(tmp_path / "b")]) == 0
    assert not [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[")]


@pytest.mark.slow
def test_evals_budget_reproducible_and_an_unreliable_regret_is_written_as_such(two_cds, tmp_path):
    import dataclasses

    from symbiote.search import api
    from symbiote.search.objectives import parse_constraints
    from symbiote.search.outputs import result_dict
    from symbiote.search.report import write_report

    joint, _ = two_cds
    cfg = api.RunConfig(models=("zoo:tiny_cnn", "zoo:lstm"), constraints=parse_constraints(["area_mm2<=2"]),
                        model_knobs="none", settings=SearchSettings(seed=1, budget_evals=300, use_gradient=False))
    a = api.run(cfg, networks=joint.networks)
    b = api.run(cfg, networks=joint.networks)
    np.testing.assert_array_equal(a.best, b.best)
    assert [n.regret for n in a.networks] == [n.regret for n in b.networks]
    assert a.timing.plan is None and a.timing.notes == ()
    for n in a.networks:  # a search alone that was long enough: a regret, never negative
        assert (n.regret is not None and n.regret >= 0) or n.regret_note.startswith("unreliable")
    flagged = regret.assess("lstm", 1.0, 2.0, True, 48)
    nets = (a.networks[0], dataclasses.replace(a.networks[1], regret=flagged.value,
                                               alone_objective=flagged.alone_objective, regret_note=flagged.note))
    o = dataclasses.replace(a, networks=nets)
    res = result_dict(o)["best"]["networks"]["lstm"]
    assert res["regret"] is None and res["regret_note"].startswith("unreliable: the search for lstm alone")
    text = write_report(o, tmp_path).read_text()
    assert "| unreliable (below) |" in text and "**regret of lstm**: unreliable" in text
