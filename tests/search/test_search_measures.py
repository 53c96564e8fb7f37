"""Trusting the answer: accuracy measured per output (search/measures.py), calibration and
evaluation on disjoint samples (search/samples.py), verdicts from measurements (search/api.py)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.errors import SearchError
from symbiote.frontend import load
from symbiote.search import accuracy, api, measures, samples, verdict
from symbiote.search.objectives import (Constraint, measured_violation, parse_constraints, search_constraints,
                                        with_accuracy_floor)


def _two_outputs(w_scores: np.ndarray) -> onnx.ModelProto:
    """x[1,8] -> boxes[1,4] (x @ wb * 1000) and scores[1,10] (x @ w_scores): the boxes are
    ~1000x larger than the class scores, as a detector's coordinates are."""
    rng = np.random.default_rng(0)
    wb = rng.standard_normal((8, 4)).astype(np.float32)
    inits = [numpy_helper.from_array(wb, "wb"), numpy_helper.from_array(w_scores, "ws"),
             numpy_helper.from_array(np.array(1000.0, np.float32), "k")]
    nodes = [helper.make_node("MatMul", ["x", "wb"], ["b0"], name="box"), helper.make_node("Mul", ["b0", "k"], ["boxes"]),
             helper.make_node("MatMul", ["x", "ws"], ["scores"], name="cls")]
    g = helper.make_graph(nodes, "det", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 4]),
                           helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_per_output_fidelity_catches_a_wrecked_small_output_the_concatenated_cosine_hides():
    from symbiote.passes.ort_check import compare_outputs

    rng = np.random.default_rng(1)
    original = load(_two_outputs(rng.standard_normal((8, 10)).astype(np.float32)))
    wrecked = load(_two_outputs(rng.standard_normal((8, 10)).astype(np.float32)))  # class scores unrelated
    inputs = accuracy.calibration_inputs(original, None, samples=16)
    r = accuracy.compare(original, wrecked, inputs, bootstrap=200)
    by = {o["name"]: o for o in r.outputs}
    assert by["boxes"]["cosine"] == pytest.approx(1.0, abs=1e-6) and by["boxes"]["top1"] == 1.0
    assert by["scores"]["cosine"] < 0.6 and by["scores"]["rel_l2"] > 0.5
    assert r.fidelity == pytest.approx(by["scores"]["cosine"])         # the least cosine over outputs
    assert r.concatenated_cosine > 0.999                               # the old measure saw nothing
    old = [compare_outputs(accuracy.outputs_of(original, [f])[0], accuracy.outputs_of(wrecked, [f])[0]).cosine
           for f in inputs]
    assert min(old) > 0.999
    assert r.agreement is not None and r.agreement < 0.6               # class predictions changed
    lo, hi = r.interval["fidelity"]
    assert lo <= r.fidelity <= hi and hi - lo > 0
    same = accuracy.compare(original, original, inputs)
    assert same.fidelity == pytest.approx(1.0) and same.agreement == 1.0


def test_top1_and_top5_agreement_per_position():
    ref = np.zeros((1, 3, 10), np.float32)
    ref[0, :, 0] = 5.0                                 # every position predicts class 0
    cand = ref.copy()
    cand[0, 1, 7] = 9.0                                # position 1 now predicts 7; 0 is still 2nd
    st = measures.stats([[ref]], [[cand]], ["logits"])
    m = measures.measure(st)
    assert m.outputs[0].top1 == pytest.approx(2 / 3) and m.agreement == pytest.approx(2 / 3)
    assert m.outputs[0].top5 == 1.0                    # class 0 stays among the top 5
    small = measures.measure(measures.stats([[ref[..., :4]]], [[cand[..., :4]]], ["logits"]))
    assert small.outputs[0].top5 is None               # top-5 only over more than 5 entries
    # --logits: only the named outputs count as scores
    named = measures.measure(measures.stats([[ref, ref]], [[cand, ref]], ["a", "b"], logits=["b"]))
    assert named.outputs[0].top1 is None and named.agreement == 1.0
    with pytest.raises(SearchError, match="nosuch"):
        api.check_logits(["nosuch"], [load(_two_outputs(np.ones((8, 10), np.float32)))])
    api.check_logits(["scores"], [load(_two_outputs(np.ones((8, 10), np.float32)))])
    # no score output: no agreement
    flat = measures.measure(measures.stats([[np.ones((4, 1), np.float32)]], [[np.ones((4, 1), np.float32)]], ["y"]))
    assert flat.agreement is None and flat.fidelity == pytest.approx(1.0)


def test_agreement_is_a_constraint_measured_not_estimated():
    (c,) = parse_constraints(["agreement>=0.99"])
    assert (c.metric, c.op, c.bound) == ("agreement", ">=", 0.99)
    assert measured_violation((c,), {"agreement": 0.95}) > 0
    assert measured_violation((c,), {"agreement": 0.995}) == 0
    assert measured_violation((c,), {"agreement": None}) == 0      # no score output: undefined, not counted
    # the search has no agreement estimate: it steers by the fidelity proxy instead
    both = parse_constraints(["agreement>=0.99", "fidelity>=0.99", "area_mm2<=4"])
    assert [str(x) for x in search_constraints(both)] == ["fidelity>=0.99", "area_mm2<=4"]
    with pytest.raises(SearchError):
        Constraint.parse("agreemnt>=0.9")


def test_accuracy_floor_applies_only_when_model_knobs_are_unbounded():
    area = parse_constraints(["area_mm2<=4"])
    cons, floor = with_accuracy_floor("channels+precision", area)
    assert [str(c) for c in floor] == ["fidelity>=0.99"] and cons == area + floor  # "scores" only inferred
    cons, floor = with_accuracy_floor("channels+precision", area, scores_named=True)  # --logits given
    assert [str(c) for c in floor] == ["fidelity>=0.99", "agreement>=0.99"] and cons == area + floor
    assert with_accuracy_floor("channels+precision", area, enabled=False) == (area, ())
    assert with_accuracy_floor("none", area) == (area, ())
    own = parse_constraints(["agreement>=0.9"])
    assert with_accuracy_floor("precision", own) == (own, ())


def test_calibration_and_evaluation_samples_are_disjoint(tmp_path):
    g = load(_two_outputs(np.ones((8, 10), np.float32)))
    s = samples.split(g, seed=3)
    assert len(s.evaluation) >= 64 and len(s.calibration) == 4
    cal = {f["x"].tobytes() for f in s.calibration}
    assert not cal & {f["x"].tobytes() for f in s.evaluation}       # no evaluation sample was calibrated on
    f = tmp_path / "data.npz"
    x = np.random.default_rng(0).standard_normal((7, 8)).astype(np.float32)
    np.savez(f, x=x)
    half = samples.split(g, calibration=f)
    assert len(half.calibration) == 4 and len(half.evaluation) == 3
    assert np.array_equal(half.calibration[0]["x"], x[0:1]) and np.array_equal(half.evaluation[0]["x"], x[4:5])
    ev = tmp_path / "eval.npz"
    np.savez(ev, x=x[:2])
    both = samples.split(g, calibration=f, eval_data=ev)
    assert len(both.calibration) == 7 and len(both.evaluation) == 2
    one = tmp_path / "one.npz"
    np.savez(one, x=x[:1])
    with pytest.raises(SearchError, match="eval-data"):
        samples.split(g, calibration=one)


def test_verdict_comes_from_the_measurement_and_the_proxy_is_clipped():
    fid = parse_constraints(["fidelity>=0.99", "area_mm2<=4"])
    # the proxy's fidelity (-17.5: far outside a cosine's range) plays no part in the cost verdict
    assert verdict.cost_violation([{"area_mm2": 3.0, "fidelity": -17.5}], fid) == 0
    assert verdict.cost_violation([{"area_mm2": 5.0, "fidelity": 1.0}], fid) > 0
    # the first candidate meets the costs and the proxy but not the measurement: the second wins
    assert verdict.decide([(0.0, 0.3), (0.0, 0.0)]) == (1, True)
    assert verdict.decide([(0.0, 0.3), (0.1, 0.0)]) == (1, False)      # nothing meets both: least violating
    r = accuracy.AccuracyReport(0.5, float("nan"), 0.0, 64, agreement=None)
    d = verdict.accuracy_dict(r, {"fidelity": -17.5}, "seeded")
    assert d["proxy_fidelity"] == -1.0 and d["fidelity"] == 0.5


@pytest.mark.slow
def test_run_marks_infeasible_what_the_proxy_accepts_but_onnxruntime_rejects(monkeypatch):
    from symbiote.search.driver import SearchSettings

    real = accuracy.compare
    checked: list[int] = []

    def measured_badly(original, candidate, inputs, **kw):
        r = real(original, candidate, inputs, **kw)
        if "reference" not in kw:                                    # the proxy's probes: untouched
            return r
        checked.append(len(inputs))
        return accuracy.AccuracyReport(0.5, r.top1, r.max_abs, r.samples, agreement=r.agreement, outputs=r.outputs)

    cfg = api.RunConfig(models=("zoo:tiny_cnn",), constraints=parse_constraints(["fidelity>=0.9"]),
                        settings=SearchSettings(budget_evals=64, use_gradient=False), exact_candidates=2)
    good = api.run(cfg)
    assert good.feasible and good.networks[0].accuracy["fidelity"] >= 0.9
    monkeypatch.setattr(accuracy, "compare", measured_badly)
    bad = api.run(cfg)
    assert not bad.feasible and bad.violation > 0 and bad.networks[0].accuracy["fidelity"] == 0.5
    assert checked and min(checked) >= 64                              # measured on the evaluation samples
    assert -1.0 <= bad.networks[0].accuracy["proxy_fidelity"] <= 1.0


@pytest.mark.slow
def test_cli_reports_per_output_measures_on_the_evaluation_half(tmp_path):
    import json

    from symbiote.cli import main

    model = tmp_path / "det.onnx"
    onnx.save(_two_outputs(np.random.default_rng(1).standard_normal((8, 10)).astype(np.float32)), str(model))
    data = tmp_path / "data.npz"
    np.savez(data, x=np.random.default_rng(2).standard_normal((10, 8)).astype(np.float32))
    out = tmp_path / "run"
    assert main(["search", str(model), "--calibration", str(data), "--logits", "scores", "--model-knobs",
                 "precision", "--constraint", "agreement>=0.5", "--budget-evals", "8", "-q", "-o", str(out)]) == 0
    res = json.loads((out / "result.json").read_text())
    acc = res["best"]["networks"]["det"]["accuracy"]
    assert acc["samples"] == 5 and "5-9 evaluate" in acc["samples_from"]      # the second half of the file
    names = {o["name"]: o for o in acc["outputs"]}
    assert set(names) == {"boxes", "scores"} and names["boxes"]["top1"] is None  # only --logits count
    assert acc["agreement"] == names["scores"]["top1"]
    assert res["constraints"] == ["agreement>=0.5"] and res["accuracy_floor"] == []
    report = (out / "report.md").read_text()
    assert "## Accuracy per output" in report and "| scores |" in report
    assert main(["search", str(model), "--logits", "nosuch", "--budget-evals", "8", "-q",
                 "-o", str(tmp_path / "x")]) != 0                         # a user error, said on stderr


def test_the_same_file_cannot_calibrate_and_evaluate(tmp_path):
    from symbiote.frontend.zoo import build
    from symbiote.search.samples import split

    g = load(build("tiny_cnn"))
    x = g.inputs[0]
    path = tmp_path / "data.npz"
    np.savez(path, **{x.name: np.zeros((4, *x.shape[1:]), np.float32)})
    with pytest.raises(SearchError, match="same file"):
        split(g, calibration=path, eval_data=str(path))


def _labelled(tmp_path, n: int = 24):
    """The two-output model, n evaluation samples in a file with labels: the original's own
    predictions on the first half, a wrong class on the rest (accuracy 0.5 exactly)."""
    rng = np.random.default_rng(3)
    ws = rng.standard_normal((8, 10)).astype(np.float32)
    graph = load(_two_outputs(ws))
    x = rng.standard_normal((n, 1, 8)).astype(np.float32)
    pred = np.argmax(x[:, 0] @ ws, -1)
    labels = np.where(np.arange(n) < n // 2, pred, (pred + 1) % 10).astype(np.int64)
    np.savez(tmp_path / "eval.npz", x=x, labels=labels)
    return graph, ws, tmp_path / "eval.npz"


def test_labels_give_the_task_accuracy_of_both_models_and_its_drop(tmp_path):
    graph, ws, path = _labelled(tmp_path)
    sp = samples.split(graph, eval_data=path)
    assert len(sp.labels) == len(sp.evaluation) == 24
    same = accuracy.compare(graph, graph, sp.evaluation, labels=sp.labels, logits=("scores",), bootstrap=100)
    assert same.accuracy == same.accuracy_original == 0.5 and same.accuracy_drop == 0.0
    # a candidate whose class scores are another matrix: its accuracy is what its own arg-max gives
    wo = np.random.default_rng(9).standard_normal((8, 10)).astype(np.float32)
    other = load(_two_outputs(wo))
    r = accuracy.compare(graph, other, sp.evaluation, labels=sp.labels, logits=("scores",), bootstrap=100)
    x = np.concatenate([f["x"] for f in sp.evaluation])
    expect = float(np.mean(np.argmax(x @ wo, -1) == np.asarray(sp.labels).ravel()))
    assert r.accuracy == pytest.approx(expect) and r.accuracy_drop == pytest.approx(0.5 - expect)
    lo, hi = r.interval["accuracy_drop"]
    assert lo <= r.accuracy_drop <= hi
    assert r.measured()["accuracy_drop"] == r.accuracy_drop


def test_labels_with_two_score_outputs_and_no_logits_are_an_error(tmp_path):
    graph, _, path = _labelled(tmp_path)
    sp = samples.split(graph, eval_data=path)
    with pytest.raises(SearchError, match="--logits"):
        accuracy.compare(graph, graph, sp.evaluation, labels=sp.labels)


def test_bad_labels_are_refused(tmp_path):
    graph, _, _ = _labelled(tmp_path)
    np.savez(tmp_path / "few.npz", x=np.zeros((4, 1, 8), np.float32), labels=np.zeros(3, np.int64))
    with pytest.raises(SearchError, match="3 entries for 4 samples"):
        samples.split(graph, eval_data=tmp_path / "few.npz")
    np.savez(tmp_path / "float.npz", x=np.zeros((4, 1, 8), np.float32), labels=np.zeros(4, np.float32))
    with pytest.raises(SearchError, match="integer"):
        samples.split(graph, eval_data=tmp_path / "float.npz")


def test_accuracy_constraints_parse_steer_and_count_as_a_floor():
    drop = Constraint.parse("accuracy_drop<=0.02")
    assert drop.metric == "accuracy_drop" and drop.op == "<=" and drop.bound == 0.02
    assert search_constraints((drop,)) == (Constraint("fidelity", ">=", 0.98),)
    assert search_constraints((Constraint.parse("accuracy>=0.9"),)) == (Constraint("fidelity", ">=", 0.99),)
    cons, floor = with_accuracy_floor("channels", (drop,))
    assert floor == () and cons == (drop,)                       # the user's bound replaces the floor
    assert measured_violation((drop,), {"accuracy_drop": 0.01}) == 0.0
    assert measured_violation((drop,), {"accuracy_drop": 0.05}) > 0.0


def test_an_accuracy_constraint_without_labels_is_refused_before_the_search():
    graph = load(_two_outputs(np.random.default_rng(1).standard_normal((8, 10)).astype(np.float32)))
    cfg = api.RunConfig(models=("det",), constraints=(Constraint.parse("accuracy_drop<=0.01"),), eval_samples=4,
                        settings=api.SearchSettings(budget_evals=10))
    with pytest.raises(SearchError, match="labels"):
        api.run(cfg, networks=[api.prepare(cfg, "det", graph)])


def test_sensitivity_probes_price_the_least_per_output_cosine_as_the_check_measures():
    """The proxy's per-layer probes measured one cosine over every output concatenated: the
    class-score layer of a detector looked harmless next to its 1000x larger boxes."""
    from symbiote.search import sensitivity as sens

    ws = np.random.default_rng(5).standard_normal((8, 10)).astype(np.float32)
    graph = load(_two_outputs(ws))
    inputs = accuracy.calibration_inputs(graph, None, samples=4)
    res = sens.layer_sensitivities(graph, ["cls"], inputs, 3)
    quantized = load(_two_outputs(sens.quantize_weight(ws, 3)))        # the same 3-bit weights, written out
    r = accuracy.compare(graph, quantized, inputs)
    assert res.loss[0] == pytest.approx(1.0 - r.fidelity, rel=1e-3)
    assert res.loss[0] > 100 * (1.0 - r.concatenated_cosine)           # what the old probes priced


def _metric_module(tmp_path, monkeypatch, body: str) -> str:
    (tmp_path / "my_task_metric.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    import sys

    sys.modules.pop("my_task_metric", None)
    importlib.invalidate_caches()
    return "my_task_metric:score"


def test_the_users_metric_is_measured_on_the_written_candidate_and_decides(tmp_path, monkeypatch):
    from symbiote.search import metric as user_metric

    # the metric re-reads the written file: the share of class-score arg-maxes equal to class 3
    # over fixed inputs (any function of the model file would do)
    spec = _metric_module(tmp_path, monkeypatch, '''
import numpy as np, onnxruntime as ort
def score(path):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((32, 1, 8)).astype(np.float32)
    preds = [int(np.argmax(s.run(["scores"], {"x": xi})[0])) for xi in x]
    return {"hit3": float(np.mean(np.array(preds) == 3)), "calls": 1}
''')
    user_metric.load.cache_clear()
    rng = np.random.default_rng(2)
    graph = load(_two_outputs(rng.standard_normal((8, 10)).astype(np.float32)))
    got = user_metric.evaluate(spec, graph)
    assert set(got) == {"hit3", "calls"} and 0.0 <= got["hit3"] <= 1.0
    m = user_metric.measured({"hit3": 0.25}, {"hit3": 0.5})
    assert m == {"metric.hit3": 0.25, "metric.hit3_drop": 0.25}
    c = Constraint.parse("metric.hit3_drop<=0.1")
    assert c.metric == "metric.hit3_drop" and c.op == "<="
    assert measured_violation((c,), m) > 0 and measured_violation((c,), {"metric.hit3_drop": 0.0}) == 0
    # in a run: reported next to the other measures, and a constraint it names decides
    cfg = api.RunConfig(models=("det",), model_knobs="precision", eval_samples=8, metric=spec,
                        constraints=(Constraint.parse("metric.hit3_drop<=0.0"),),
                        settings=api.SearchSettings(budget_evals=40, use_gradient=False))
    out = api.run(cfg, networks=[api.prepare(cfg, "det", graph)])
    acc = out.networks[0].accuracy
    assert set(acc["metric"]) == {"metric.hit3", "metric.hit3_drop", "metric.calls", "metric.calls_drop"}
    assert (acc["metric"]["metric.hit3_drop"] <= 0.0) == out.feasible


def test_a_bad_metric_is_a_clear_error(tmp_path, monkeypatch):
    from symbiote.search import metric as user_metric

    graph = load(_two_outputs(np.random.default_rng(2).standard_normal((8, 10)).astype(np.float32)))
    spec = _metric_module(tmp_path, monkeypatch, "def score(path):\n    return {'x': float('nan')}\n")
    user_metric.load.cache_clear()
    with pytest.raises(SearchError, match="not finite"):
        user_metric.evaluate(spec, graph)
    with pytest.raises(SearchError, match="cannot import"):
        user_metric.load("no_such_module_here:score")
    cfg = api.RunConfig(models=("det",), constraints=(Constraint.parse("metric.top1>=0.5"),), eval_samples=4,
                        settings=api.SearchSettings(budget_evals=10))
    with pytest.raises(SearchError, match="--metric"):
        api.run(cfg, networks=[api.prepare(cfg, "det", graph)])


def test_a_bounded_measure_that_was_not_measured_is_never_met():
    acc = Constraint.parse("accuracy>=0.9")
    assert measured_violation((acc,), {"fidelity": 1.0, "accuracy": None}) > 0          # e.g. a plugin evaluator
    assert measured_violation((Constraint.parse("metric.map>=0.5"),), {"fidelity": 1.0}) > 0
    assert measured_violation((Constraint.parse("agreement>=0.9"),), {"agreement": None}) == 0   # no score output


def test_an_unestimated_bound_does_not_tighten_the_users_own_fidelity_bound():
    cons = parse_constraints(["fidelity>=0.95", "accuracy>=0.9"])
    assert search_constraints(cons) == (Constraint("fidelity", ">=", 0.95),)
    assert search_constraints(parse_constraints(["accuracy>=0.9"])) == (Constraint("fidelity", ">=", 0.99),)
