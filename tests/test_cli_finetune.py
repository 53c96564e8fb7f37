"""`symbiote finetune`: trains a pruned model back towards its original, writes a model
onnxruntime runs and a report of the measures before and after; bad inputs are one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from symbiote.cli import main

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
MODEL, CALIBRATION, TEST = DIGITS / "digits_cnn.onnx", DIGITS / "calibration.npz", DIGITS / "test.npz"


@pytest.fixture(scope="module")
def pruned(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finetune") / "pruned.onnx"
    assert main(["transform", str(MODEL), "-p", "prune(ratio=0.5)", "-o", str(out)]) == 0
    return out


def test_finetune_end_to_end_writes_a_running_model_and_its_report(pruned, tmp_path, capsys):
    from symbiote.passes.ort_check import run_model

    out = tmp_path / "tuned.onnx"
    capsys.readouterr()
    # --data alone: its first half (64 samples) trains, the other 64 evaluate
    assert main(["finetune", str(pruned), "--teacher", str(MODEL), "--data", str(CALIBRATION), "--steps", "60",
                 "--lr", "3e-3", "--batch", "16", "-o", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    rep = json.loads(cap.out)
    assert rep == json.loads((tmp_path / "tuned.finetune.json").read_text())
    assert (rep["training_samples"], rep["evaluation_samples"]) == (64, 64)
    assert "samples 0-63 train, 64-127 evaluate" in rep["split"]
    assert rep["training"]["steps"] == 60 and not rep["training"]["labelled"]
    assert rep["training"]["loss_last"] < rep["training"]["loss_first"]
    b, a = rep["before"], rep["after"]
    assert a["fidelity"] > b["fidelity"] + 0.05 and a["agreement"] > b["agreement"]
    assert b["accuracy"] is None and a["accuracy"] is None                  # no labels in the file
    assert "finetune: step 60/60" in cap.err                                # progress, off a terminal
    y = run_model(str(out), {"x": np.load(TEST)["x"][:1]})[0]
    assert y.shape == (1, 10) and np.all(np.isfinite(y))


def test_finetune_reports_accuracy_with_labelled_eval_data(pruned, tmp_path, capsys):
    out = tmp_path / "t.onnx"
    assert main(["finetune", str(pruned), "--teacher", str(MODEL), "--data", str(CALIBRATION), "--eval-data",
                 str(TEST), "--steps", "40", "--lr", "3e-3", "-o", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "(teacher 0.9889)" in text and f"wrote {out}" in text
    rep = json.loads((tmp_path / "t.finetune.json").read_text())
    assert rep["evaluation_samples"] == 360 and rep["after"]["accuracy"] > rep["before"]["accuracy"]


def test_without_data_seeded_random_inputs_train_and_evaluate(pruned, tmp_path, capsys):
    assert main(["finetune", str(pruned), "--teacher", str(MODEL), "--samples", "16", "--steps", "5",
                 "-o", str(tmp_path / "r.onnx"), "--json", "-q"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["split"].startswith("seeded random inputs: 16 train (seed 0)")
    assert (rep["training_samples"], rep["evaluation_samples"]) == (16, 64)


@pytest.mark.parametrize("teacher, extra, message", [
    (MODEL, ["--steps", "0"], "steps must be at least 1, not 0"),
    (MODEL, ["--lr", "-1"], "learning rate must be positive"),
    ("zoo:tiny_cnn", [], "student's inputs (x[1, 1, 8, 8]:float32) differ from the teacher's"),
    (MODEL, ["--data", "LABELS_ONLY"], "no array named 'x'"),
    (MODEL, ["--data", str(CALIBRATION), "--eval-data", str(CALIBRATION)], "are the same file"),
])
def test_bad_inputs_are_one_line_errors(pruned, tmp_path, capsys, teacher, extra, message):
    bad = tmp_path / "labels.npz"
    np.savez(bad, labels=np.arange(4))
    extra = [str(bad) if a == "LABELS_ONLY" else a for a in extra]
    capsys.readouterr()
    assert main(["finetune", str(pruned), "--teacher", str(teacher), *extra, "-o", str(tmp_path / "o.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("symbiote finetune: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "o.onnx").exists()
