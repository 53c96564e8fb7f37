"""Plugin system: a third-party distribution's entry point is loaded and used end to end;
a broken plugin is reported by name without taking the others down."""

import sys
import warnings
from pathlib import Path

import pytest

from symbiote.backends.manager import load_registry
from symbiote.errors import BackendError
from symbiote.ir.graph import Graph
from symbiote.ir.lower import lower

DATA = Path(__file__).parent / "data" / "plugins"


@pytest.fixture()
def fake_dists(tmp_path, monkeypatch):
    """Install two fake distributions (dist-info with entry_points.txt) on sys.path."""
    for dist, mod in (("symbiote_toy_backend", "symbiote_toy_backend"), ("symbiote_broken_backend", "symbiote_broken_backend")):
        info = tmp_path / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[symbiote.backends]\n{dist.removeprefix('symbiote_').removesuffix('_backend')} = {mod}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(DATA))
    yield
    for m in ("symbiote_toy_backend", "symbiote_broken_backend"):
        sys.modules.pop(m, None)


def _gemm_graph() -> Graph:
    import numpy as np

    g = Graph("g")
    x = g.add_input("x", (4, 16))
    w = g.add_const("w", np.ones((16, 8), np.float32))
    n = g.add_node("matmul", "MatMul", [x, w], ["y"])
    n.output.shape = (4, 8)
    g.outputs.append(n.output)
    return g


def test_third_party_plugin_end_to_end_and_broken_reported(fake_dists):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = load_registry()
    assert {"systolic", "roofline", "toy"} <= set(reg.templates)
    assert "symbiote_toy_backend" in reg.origins["toy"] and "0.1" in reg.origins["toy"]
    assert [f.plugin for f in reg.failures] == ["broken"]
    assert "ImportError" in reg.failures[0].error
    assert any("broken" in str(w.message) for w in caught)
    toy = reg.get("toy")
    m = toy.evaluate({"macs_per_cycle": 64}, lower(_gemm_graph()))
    assert float(m.total_latency_cycles) == pytest.approx(4 * 16 * 8 / 64 + (64 + 32 + 128) / 10.0)
    with pytest.raises(BackendError, match="broken"):
        reg.get("nope")


def test_builtins_register_through_the_hook():
    reg = load_registry(eps=[])
    assert set(reg.templates) == {"systolic", "roofline", "ort-cpu", "spatial"}
    assert all("built-in" in reg.origins[n] for n in reg.templates)


def test_plugin_returning_garbage_is_reported():
    import types

    from symbiote.backends.hookspecs import hookimpl

    class EP:
        name = "garbage"
        value = "x:y"
        dist = None

        def load(self):
            mod = types.SimpleNamespace()
            mod.symbiote_register_templates = hookimpl(lambda: ["not a template"])
            return mod

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = load_registry(eps=[EP()])
    assert "systolic" in reg.templates
    assert [f.plugin for f in reg.failures] == ["garbage"]
