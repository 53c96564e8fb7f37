"""``symbiote transform`` and ``symbiote passes``."""

from __future__ import annotations

import json

import onnx

from symbiote.cli import main


def test_transform_json_verify(tmp_path, capsys):
    out = tmp_path / "o.onnx"
    rc = main(["transform", "zoo:tiny_cnn", "-p", "fold-bn,prune(ratio=0.5)", "-o", str(out), "--verify", "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["after"]["macs"] < rep["before"]["macs"] and rep["exact"] is False
    assert [s["pass"] for s in rep["steps"]] == ["fold-bn", "prune(ratio=0.5)"]
    assert 0 < rep["verify"]["cosine"] <= 1.0 + 1e-9
    onnx.checker.check_model(onnx.load(str(out)))


def test_transform_text_exact(tmp_path, capsys):
    rc = main(["transform", "zoo:tiny_cnn", "-p", "fold-bn,resize-channels(multiple=48,mode=up)", "-o", str(tmp_path / "o.onnx"), "--verify"])
    text = capsys.readouterr().out
    assert rc == 0 and "macs" in text and "wrote" in text
    diff = float(text.split("max abs diff ")[1].split(",")[0])
    assert diff < 1e-4  # fold-bn and growth are exact


def test_transform_bad_pipeline(tmp_path, capsys):
    rc = main(["transform", "zoo:tiny_cnn", "-p", "fold-bm", "-o", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "fold-bn" in err and "Traceback" not in err


def test_passes_list(capsys):
    assert main(["passes", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["passes"]}
    assert {"canonicalize", "fold-bn", "prune", "resize-channels", "set-precision", "fuse-layers", "sparsify"} <= set(rows)
    assert [a["name"] for a in rows["prune"]["arguments"]] == ["ratio", "widths", "criterion", "seed"]
