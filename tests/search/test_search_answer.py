"""Never worse than leaving the model alone: the answer is the feasible checked design with
the best objective, the hardware-only search's best among the candidates (search/api.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from symbiote.frontend import load, zoo
from symbiote.search import api, verdict
from symbiote.search.driver import SearchSettings
from symbiote.search.objectives import parse_constraints

#: a small hardware space both searches enumerate many times over in their budgets
GRIDS = {"rows": [4, 8, 16, 32], "cols": [4, 8, 16, 32], "dataflow": ["os", "ws", "is"],
         "ifmap_sram_kb": [8, 64], "filter_sram_kb": [8, 64], "ofmap_sram_kb": [8, 64], "vector_width": [8, 64],
         "sparse_24": ["no"]}


@pytest.fixture(scope="module")
def tiny():
    return load(zoo.build("tiny_cnn", image_size=16, channels=(8, 16, 16)))


def _cfg(knobs: str, **kw) -> api.RunConfig:
    return api.RunConfig(models=("tiny",), model_knobs=knobs, hw_grids=GRIDS, eval_samples=16,
                         settings=SearchSettings(budget_evals=1500, seed=0, use_gradient=False), **kw)


def test_knobs_that_cannot_meet_the_constraint_return_the_hardware_only_design(tiny):
    # any narrower channel group changes a random-weight network's outputs by far more than
    # 1e-5 of cosine (measured); growing one is exact but only costs more: no model change
    # can win, so the answer must be the hardware-only search's best with the model as given
    # an fp32 datapath: the model as given is checked in float, exactly (the int8 default
    # would quantize it, and 8 bits alone cost more than 1e-5 of cosine)
    bound = parse_constraints(["fidelity>=0.99999"])
    joint_cfg = _cfg("channels", constraints=bound, hw_fixed={"datapath": "fp32"})
    joint = api.run(joint_cfg, networks=[api.prepare(joint_cfg, "tiny", tiny)])
    none_cfg = _cfg("none", constraints=bound, hw_fixed={"datapath": "fp32"})
    alone = api.run(none_cfg, networks=[api.prepare(none_cfg, "tiny", tiny)])
    assert joint.feasible and alone.feasible
    groups = joint.codesign.networks[0].groups
    widths = joint.networks[0].model_knobs["widths"]
    assert all(w == groups.by_name(g).width for g, w in widths.items())      # the model as given
    assert joint.objective <= alone.objective * (1 + 1e-9)                   # never worse than hardware-only
    assert joint.answer_note is not None and "models as given" in joint.answer_note
    assert joint.networks[0].accuracy["fidelity"] >= 0.99999


def test_a_better_joint_design_still_wins_over_the_hardware_only_one(tiny):
    # with room to trade accuracy the joint answer changes the model and beats hardware-only
    cfg = _cfg("channels", constraints=parse_constraints(["fidelity>=0.5"]))
    out = api.run(cfg, networks=[api.prepare(cfg, "tiny", tiny)])
    none_cfg = _cfg("none")
    alone = api.run(none_cfg, networks=[api.prepare(none_cfg, "tiny", tiny)])
    assert out.feasible and out.answer_note is None
    assert out.objective < alone.objective


def test_the_verdict_takes_the_best_feasible_objective_not_the_first():
    assert verdict.decide([(0.0, 0.0), (0.0, 0.0), (1.0, 0.0)], [5.0, 3.0, 1.0]) == (1, True)
    assert verdict.decide([(0.0, 0.1), (0.2, 0.0)], [1.0, 2.0]) == (0, False)     # least violating
    assert verdict.decide([(0.0, 0.0), (0.0, 0.0)]) == (0, True)                  # no objectives: the first


def test_result_json_says_why_the_models_are_left_as_given(tiny, tmp_path):
    from symbiote.search.outputs import write_all

    cfg = _cfg("channels", constraints=parse_constraints(["fidelity>=0.99999"]), hw_fixed={"datapath": "fp32"})
    out = api.run(cfg, networks=[api.prepare(cfg, "tiny", tiny)])
    write_all(out, tmp_path)
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["feasible"] is True and "models as given" in res["answer_note"]
    net = res["best"]["networks"]["tiny"]
    assert net["accuracy"]["fidelity"] >= 0.99999 and np.isfinite(net["metrics"]["edp"])


def _quantized_layers(graph) -> int:
    return sum(n.onnx_op == "DequantizeLinear" and n.input(0).is_const and n.input(0).dtype == "int8"
               for n in graph.nodes)


@pytest.mark.parametrize("dp, quantized", [("int8", True), ("fp16", False)])
def test_model_knobs_none_checks_the_model_at_the_datapaths_precision(tiny, dp, quantized):
    cfg = _cfg("none", hw_fixed={"datapath": dp})
    out = api.run(cfg, networks=[api.prepare(cfg, "tiny", tiny)])
    assert out.hardware["datapath"] == dp
    checked = out.networks[0].graph
    convs = sum(n.onnx_op in ("Conv", "Gemm") for n in tiny.nodes)
    # what is priced (the rows at the datapath's bits) is what is checked
    assert _quantized_layers(checked) == (convs if quantized else 0)
    fid = out.networks[0].accuracy["fidelity"]
    assert (fid < 1.0 - 1e-7) if quantized else fid == pytest.approx(1.0, abs=1e-6)


def test_the_bit_gene_default_is_the_datapaths_width(tiny):
    from symbiote.search import codesign

    for dp, b in (("int8", 8), ("int16", 16), ("fp32", 32)):
        cfg = _cfg("precision", hw_fixed={"datapath": dp})
        cd = api.build(cfg, [api.prepare(cfg, "tiny", tiny)])
        bits = {int(v) for v in cd.model_knobs_of(cd.space.default())[0]["bits"].values()}
        assert bits == {b} and codesign.datapath_bits(cd.template, cd.hardware(cd.space.default())) == b


def test_an_accuracy_objective_gives_a_measured_accuracy_versus_edp_front(tiny, tmp_path):
    from symbiote.search.objectives import Objective
    from symbiote.search.outputs import write_all

    cfg = _cfg("precision", objectives=(Objective.parse("edp"), Objective.parse("fidelity")),
               hw_fixed={"datapath": "int16"})
    out = api.run(cfg, networks=[api.prepare(cfg, "tiny", tiny)])
    front = out.front
    assert len(front) >= 3                                       # a trade-off, not one point
    edps = [p["objectives"]["edp"] for p in front]
    assert edps == sorted(edps)
    measured = [p["accuracy"][0]["fidelity"] for p in front if "accuracy" in p]
    assert len(measured) == min(len(front), api.MEASURED_FRONT)
    # cheaper designs are measured less faithful: the front trades accuracy for EDP
    assert measured[0] < measured[-1]
    write_all(out, tmp_path)
    head = (tmp_path / "pareto.csv").read_text().splitlines()[0]
    assert "tiny.measured_fidelity" in head and "fidelity" in head


def test_accuracy_objectives_stand_alone():
    from symbiote.errors import SearchError
    from symbiote.search.objectives import Objective

    assert Objective.parse("agreement").accuracy and not Objective.parse("edp").accuracy
    with pytest.raises(SearchError, match="on its own"):
        Objective.parse("edp*fidelity")


def test_with_two_models_the_hardware_only_design_serves_both(tiny):
    other = load(zoo.build("tiny_cnn", image_size=16, channels=(8, 8, 16), seed=3))
    bound = parse_constraints(["fidelity>=0.99999"])

    def run(knobs):
        cfg = api.RunConfig(models=("a", "b"), model_knobs=knobs, hw_grids=GRIDS, eval_samples=8, constraints=bound,
                            hw_fixed={"datapath": "fp32"},
                            settings=SearchSettings(budget_evals=1500, seed=0, use_gradient=False))
        return api.run(cfg, networks=[api.prepare(cfg, "a", tiny), api.prepare(cfg, "b", other)])

    joint, alone = run("channels"), run("none")
    assert joint.feasible and joint.answer_note is not None
    for n in joint.networks:                               # both models as given
        groups = {g.name: g.width for g in joint.codesign.networks[[m.name for m in joint.networks].index(n.name)].groups.groups}
        assert all(w == groups[g] for g, w in n.model_knobs["widths"].items())
    assert joint.objective <= alone.objective * (1 + 1e-9)


def test_a_repair_step_moves_to_the_best_hardware_met_for_its_model_knobs():
    """A ladder step keeps the model knobs it was given and takes, among the hardware
    designs the search met, the one of least objective that meets the constraints."""
    from symbiote.search.api import _rehomed

    model = np.array([True, True, False, False])             # genes: 2 model, 2 hardware
    pool = np.array([[0, 0], [3, 1], [2, 2], [1, 3]], np.int32)

    def ev(trial):                                           # objective: -(hw0 + hw1); hw0 == 3 breaks a constraint
        hw = trial[:, 2:].astype(float)
        return -hw.sum(1, keepdims=True), np.where(trial[:, 2] == 3, 1.0, 0.0)

    g = np.array([5, 6, 0, 0], np.int32)
    out = _rehomed(ev, g, model, pool)
    assert out[:2].tolist() == [5, 6] and out[2:].tolist() in ([2, 2], [1, 3])
    none_ok = _rehomed(lambda t: (np.zeros((len(t), 1)), np.ones(len(t))), g, model, pool)
    assert none_ok.tolist() == g.tolist()
