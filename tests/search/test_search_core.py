"""The search core on a small synthetic problem: determinism, resume, constraints, NSGA-II."""

from __future__ import annotations

import numpy as np
import pytest

from symbiote.errors import SearchError
from symbiote.search import evolution as evo
from symbiote.search.driver import Search, SearchSettings
from symbiote.search.objectives import Constraint, Objective
from symbiote.search.synthetic import enumerate_optimum, synthetic_problem


def _settings(**kw):
    base = dict(seed=3, budget_evals=900, population=24, grad_starts=6, grad_every=4)
    return SearchSettings(**(base | kw))


def test_same_seed_same_result_and_other_seed_differs():
    p = synthetic_problem()
    a = Search(p, _settings()).run()
    b = Search(p, _settings()).run()
    np.testing.assert_array_equal(a.best, b.best)
    np.testing.assert_array_equal(a.front.genomes, b.front.genomes)
    assert a.evals == b.evals == 900
    assert [h[0] for h in a.history] == [h[0] for h in b.history]
    c = Search(p, _settings(seed=4, budget_evals=200, use_gradient=False, local_search=False)).run()
    d = Search(p, _settings(seed=5, budget_evals=200, use_gradient=False, local_search=False)).run()
    assert [h[2] for h in c.history] != [h[2] for h in d.history]


def test_kill_and_resume_gives_the_same_result(tmp_path):
    p = synthetic_problem(objectives=("latency", "energy"))
    full = Search(p, _settings()).run()
    ck = tmp_path / "checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        Search(p, _settings()).run(checkpoint=ck, stop_after=5)
    assert ck.exists()
    resumed = Search(p, _settings()).run(checkpoint=ck, resume=True)
    np.testing.assert_array_equal(full.best, resumed.best)
    np.testing.assert_array_equal(full.front.genomes, resumed.front.genomes)
    assert resumed.evals == full.evals
    with pytest.raises(SearchError, match="other settings"):
        Search(p, _settings(seed=9)).run(checkpoint=ck, resume=True)


def test_reported_best_meets_the_constraints():
    for bound in (0.5, 1.0, 3.0):
        p = synthetic_problem(constraints=(f"area_mm2<={bound}", "fidelity>=0.97"))
        r = Search(p, _settings(budget_evals=600)).run()
        assert r.feasible
        from symbiote.search.problem import evaluator_for
        m = evaluator_for(p).metrics(r.best[None])
        assert m["area_mm2"].max() <= bound + 1e-9
        assert m["fidelity"].min() >= 0.97 - 1e-9
        for g in r.front.genomes:
            assert evaluator_for(p).metrics(g[None])["area_mm2"].max() <= bound + 1e-9


def test_search_finds_the_enumerated_optimum_of_a_small_space():
    p = synthetic_problem(channels=False)
    _, opt = enumerate_optimum(p)
    r = Search(p, _settings(budget_evals=1500)).run()
    assert r.best_obj[0] <= opt + 1e-6


def test_budget_is_required():
    with pytest.raises(SearchError, match="budget"):
        Search(synthetic_problem(), SearchSettings())


def test_nondominated_sort_and_pareto_front():
    obj = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [6, 6], [0, 0]], float)
    viol = np.array([0, 0, 0, 0, 0, 1.0])
    ranks = evo.nondominated_ranks(obj, viol)
    assert list(ranks[:5]) == [0, 0, 0, 1, 2]
    assert ranks[5] > ranks[4]  # infeasible loses to every feasible design
    assert list(np.flatnonzero(evo.pareto_mask(obj, viol))) == [0, 1, 2]
    assert set(evo.select(obj, viol, 3)) == {0, 1, 2}


def test_mutation_stays_on_the_legal_grid():
    import jax
    p = synthetic_problem()
    g = evo.rng(jax.random.PRNGKey(0))
    pop = p.space.sample(jax.random.PRNGKey(1), 200)
    out = evo.mutate(g, pop, p.space, 0.5)
    assert (out >= 0).all() and (out < p.space.sizes).all()
    assert (out != pop).any(1).all()


def test_objective_and_constraint_parsing():
    assert Constraint.parse("area_mm2<=4") == Constraint("area_mm2", "<=", 4.0)
    assert Constraint.parse("latency_ms <= 5").metric == "latency_ms"
    assert Constraint.parse("params<=3e6").bound == 3e6
    assert Constraint.parse("fidelity>=0.99").op == ">="
    assert Objective.parse("latency^2*energy").terms == (("latency_s", 2.0), ("energy_pj", 1.0))
    m = {"latency_s": np.float32(2e-3), "energy_pj": np.float32(1e9), "area_mm2": np.float32(3.0)}
    from symbiote.search.objectives import derive
    m = derive(m)
    assert Constraint.parse("power_w<=0.4").violation(m) > 0  # 1 mJ in 2 ms = 0.5 W
    assert Constraint.parse("power_w<=0.6").violation(m) == 0
    assert Constraint.parse("latency_ms<=5").violation(m) == 0
    for bad in ("area<4x", "speed<=3", "area_mm2<=-1", "fidelity"):
        with pytest.raises(SearchError):
            Constraint.parse(bad)
    with pytest.raises(SearchError):
        Objective.parse("fidelity*edp")          # an accuracy objective stands alone (maximized)
