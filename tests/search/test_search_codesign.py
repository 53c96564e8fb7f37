"""Co-design end to end on tiny models with the systolic template: regret, constraints,
the written model in onnxruntime, the command line."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from symbiote.cli import main
from symbiote.search import api
from symbiote.search.driver import SearchSettings
from symbiote.search.objectives import parse_constraints, parse_objectives


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    import onnx

    from symbiote.frontend import zoo

    d = tmp_path_factory.mktemp("models")
    small = d / "small_cnn.onnx"
    onnx.save(zoo.build("tiny_cnn", channels=(8, 16, 24), seed=1), small)
    cfg = api.RunConfig(models=("zoo:tiny_cnn", str(small)), objectives=parse_objectives(["edp"]),
                        constraints=parse_constraints(["area_mm2<=2", "fidelity>=0.98"]),
                        settings=SearchSettings(seed=0, budget_evals=400, population=24, use_gradient=False))
    out = d / "out"
    outcome = api.run(cfg, out)
    from symbiote.search.outputs import write_all
    from symbiote.search.report import write_report

    write_all(outcome, out)
    write_report(outcome, out)
    return outcome, out


def test_multi_model_reports_regret_per_network(two_models):
    o, out = two_models
    assert [n.name for n in o.networks] == ["tiny_cnn", "small_cnn"]
    for n in o.networks:
        assert n.regret is not None and n.alone_objective is not None
        # the shared design, priced for this network, against the one searched for it alone
        assert n.regret == pytest.approx(n.metrics["edp"] / n.alone_objective - 1, rel=1e-4, abs=1e-4)
        assert n.regret > -0.5
    res = json.loads((out / "result.json").read_text())
    assert set(res["best"]["networks"]) == {"tiny_cnn", "small_cnn"}
    assert all(v["regret"] is not None for v in res["best"]["networks"].values())
    assert res["seed"] == 0
    geo = np.exp(np.mean(np.log([n.metrics["edp"] for n in o.networks])))
    assert o.objective == pytest.approx(geo, rel=1e-4)


def test_reported_best_never_violates_constraints(two_models):
    o, _ = two_models
    for n in o.networks:
        assert n.metrics["area_mm2"] <= 2.0
        assert n.accuracy["fidelity"] >= 0.98      # measured in onnxruntime, not the proxy
        assert n.metrics["fidelity"] >= 0.98


def test_written_models_run_in_onnxruntime(two_models):
    o, out = two_models
    for n in o.networks:
        path = out / f"{n.name}.onnx"
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {i.name: np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in i.shape])
                 .astype(np.float32) for i in sess.get_inputs()}
        y = sess.run(None, feeds)[0]
        assert np.isfinite(y).all()
        assert n.accuracy["onnx_file_fidelity"] >= 0.98
    for f in ("report.md", "pareto.csv", "hardware.yaml", "convergence.png", "pareto.png", "layers_tiny_cnn.png"):
        assert (out / f).stat().st_size > 0
    assert "regret" in (out / "report.md").read_text()


def test_hardware_yaml_loads_in_symbiote_cost(two_models, capsys):
    o, out = two_models
    hw = yaml.safe_load((out / "hardware.yaml").read_text())
    assert hw["backend"] == "systolic"
    assert {k: v for k, v in hw.items() if k != "backend"} == o.hardware
    capsys.readouterr()
    assert main(["cost", str(out / "tiny_cnn.onnx"), "--hw", str(out / "hardware.yaml"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["hardware"]["rows"] == o.hardware["rows"]


def test_cli_search_runs_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["search", "zoo:tiny_cnn", "--budget-evals", "150", "--model-knobs", "none", "--constraint", "area_mm2<=3", "-q"]
    assert main([*args, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "report:" in text and str(out / "report.md") in text
    first = json.loads((out / "result.json").read_text())["best"]
    # hardware.yaml and the written model price the same in `symbiote cost` (hardware-only:
    # the model is the prepared one, batch norms folded and activations fused)
    assert main(["cost", str(out / "tiny_cnn.onnx"), "--hw", str(out / "hardware.yaml"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["totals"]["edp"] == pytest.approx(first["networks"]["tiny_cnn"]["metrics"]["edp"], rel=1e-4)
    # `symbiote cost` prepares the model as the search does, so the model as exported prices
    # the same; left unprepared it costs more (a round trip per batch norm / activation)
    assert main(["cost", "zoo:tiny_cnn", "--hw", str(out / "hardware.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["edp"] == pytest.approx(got["totals"]["edp"], rel=1e-4)
    assert main(["cost", "zoo:tiny_cnn", "--hw", str(out / "hardware.yaml"), "--prepare", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["edp"] > 1.2 * got["totals"]["edp"]
    # same seed, same result
    out2 = tmp_path / "run2"
    assert main([*args, "-o", str(out2)]) == 0
    assert json.loads((out2 / "result.json").read_text())["best"] == first
    capsys.readouterr()
    assert main(["search", "zoo:tiny_cnn", "--constraint", "speed<=3", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "speed" in err and "Traceback" not in err
    assert main(["search", "zoo:tiny_cnn", "--resume", "-o", str(tmp_path / "nothing")]) == 2
