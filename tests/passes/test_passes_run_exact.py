"""Empty pipelines are syntax errors; a run's exactness (growth-only resize) reaches transform."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest

from symbiote.cli import main
from symbiote.errors import PipelineSyntaxError
from symbiote.frontend import load
from symbiote.passes import FixedPoint, Pass, Pipeline, parse_pipeline


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_pipeline_is_a_syntax_error(text):
    with pytest.raises(PipelineSyntaxError, match="empty pipeline"):
        parse_pipeline(text)


@pytest.mark.parametrize("text", ["", "  "])
def test_transform_empty_pipeline_exits_2(tmp_path, capsys, text):
    out = tmp_path / "o.onnx"
    rc = main(["transform", "zoo:tiny_cnn", "-p", text, "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "empty pipeline" in err and "Traceback" not in err
    assert not out.exists()


def _transform(tmp_path, capsys, pipeline, *extra):
    rc = main(["transform", "zoo:tiny_cnn", "-p", pipeline, "-o", str(tmp_path / "o.onnx"), "--verify", *extra])
    assert rc == 0
    return capsys.readouterr().out


def test_growth_only_resize_is_reported_exact(tmp_path, capsys):
    rep = json.loads(_transform(tmp_path, capsys, "resize-channels(multiple=48,mode=up)", "--json"))
    assert rep["exact"] is True and rep["steps"][0]["exact"] is True
    assert rep["verify"]["max_abs"] < 1e-4
    text = _transform(tmp_path, capsys, "resize-channels(multiple=48,mode=up)")
    assert "max abs diff" in text and "cosine" not in text


def test_shrinking_resize_is_reported_inexact(tmp_path, capsys):
    rep = json.loads(_transform(tmp_path, capsys, "resize-channels(scale=0.5)", "--json"))
    assert rep["exact"] is False and rep["steps"][0]["exact"] is False
    assert "cosine similarity" in _transform(tmp_path, capsys, "resize-channels(scale=0.5)")


@dataclass(frozen=True)
class _Noop(Pass):
    name: ClassVar[str] = "noop-inexact"
    exact: ClassVar[bool] = False
    change: bool = False

    def apply(self, graph):
        return self.change, {}


def test_run_exact_of_pipelines_and_fixed_points():
    g = load("zoo:tiny_cnn")
    assert Pipeline([_Noop()])(g).info["exact"] is True            # an inexact pass that changed nothing
    assert Pipeline([_Noop(change=True)])(g).info["exact"] is False
    assert FixedPoint(Pipeline([_Noop()])).__call__(g).info["exact"] is True
    nested = Pipeline([Pipeline([_Noop(change=True)])])(g)
    assert nested.info["exact"] is False and nested.info["steps"][0]["exact"] is False
