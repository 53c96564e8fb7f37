"""Pipeline syntax, registry errors, the plugin manager (third-party passes), Pipeline/FixedPoint."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from typing import ClassVar

import pytest

from symbiote.errors import PipelineSyntaxError
from symbiote.passes import FixedPoint, Pass, Pipeline, hookimpl, parse_pipeline
from symbiote.passes.registry import make_plugin_manager, registered
from symbiote.passes.syntax import parse_steps


def test_parse_values():
    (st,) = parse_steps('p(1, x=2.5, b=true, s="a b", w={conv1.out:48,layer1.0.conv1.out:32,"/a/b":1}, l=[1,2])')
    assert st.args == (1,)
    assert dict(st.kwargs) == {"x": 2.5, "b": True, "s": "a b", "w": {"conv1.out": 48, "layer1.0.conv1.out": 32, "/a/b": 1}, "l": [1, 2]}


def test_parse_issue_example():
    p = parse_pipeline("canonicalize,fold-bn,fuse-activations,prune(ratio=0.3,criterion=l1),resize-channels(multiple=16)")
    assert [q.name for q in p] == ["canonicalize", "fold-bn", "fuse-activations", "prune", "resize-channels"]
    assert p.passes[3].ratio == 0.3 and p.passes[4].multiple == 16
    assert not p.exact
    assert parse_pipeline(p.spec()) == p  # spec round-trips


@pytest.mark.parametrize("text,match", [
    ("prun(0.3)", "did you mean 'prune'"),
    ("prune(rato=0.3)", "did you mean 'ratio'"),
    ("prune(ratio=abc)", "ratio"),
    ("prune(ratio=0.3,criterion=l3)", "l1, l2, bn_gamma, random"),
    ("prune(ratio=0.3", "expected"),
    ("fold-bn fuse-bias", "expected ','"),
    ("resize-channels(widths={a:1,a:2})", "duplicate key"),
    ("resize-channels(widths=3)", "expected a dict"),
    ("prune(ratio=0.3,ratio=0.2)", "twice"),
    ("prune(ratio=1.5)", "ratio must be"),
    ("fold-bn(1)", "at most 0 positional"),
])
def test_errors(text, match):
    with pytest.raises(PipelineSyntaxError, match=match):
        parse_pipeline(text)


@dataclass(frozen=True)
class Rename(Pass):
    """A third-party pass: renames the graph."""

    to: str = "renamed"
    name: ClassVar[str] = "rename-graph"

    def apply(self, graph):
        graph.name = self.to
        return True, {"to": self.to}


class _Plugin:
    @hookimpl
    def symbiote_register_passes(self):
        return [Rename]


def test_third_party_pass_through_plugin_manager(models):
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(_Plugin())
    assert "rename-graph" in registered(pm) and "prune" in registered(pm)
    res = parse_pipeline("fold-bn,rename-graph(to=zz)", pm)(models["zoo:tiny_cnn"])
    assert res.graph.name == "zz" and models["zoo:tiny_cnn"].name != "zz"


def test_entry_point_plugin(tmp_path, monkeypatch):
    (tmp_path / "myplug.py").write_text(textwrap.dedent("""
        from dataclasses import dataclass
        from typing import ClassVar
        from symbiote.passes import Pass, hookimpl

        @dataclass(frozen=True)
        class Noop(Pass):
            name: ClassVar[str] = "my-noop"
            def apply(self, graph):
                return False, {}

        @hookimpl
        def symbiote_register_passes():
            return [Noop]
    """))
    dist = tmp_path / "myplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[symbiote.passes]\nmyplug = myplug\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = make_plugin_manager()
    assert "my-noop" in registered(pm)
    sys.modules.pop("myplug", None)


def test_pipeline_and_fixed_point(models):
    g = models["hand:residual"]
    r = Pipeline([parse_pipeline("fold-bn").passes[0]])(g)
    assert r.modified and r.info["steps"][0]["folded"] > 0
    fp = FixedPoint(parse_pipeline("fold-bn,canonicalize"))(g)
    assert fp.modified and fp.info["rounds"] == 2  # second round changes nothing
    assert not parse_pipeline("fold-bn")(fp.graph).modified
