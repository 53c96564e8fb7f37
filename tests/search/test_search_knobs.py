"""Conformance of every registered model knob (search/knobs/), and the sparsity knob."""

from __future__ import annotations

import numpy as np
import pytest

from symbiote.backends.manager import get_template
from symbiote.errors import SearchError
from symbiote.frontend import load, zoo
from symbiote.ir.channel_groups import analyze
from symbiote.ir.lower import lower
from symbiote.search import accuracy, api, codesign, knobs
from symbiote.search.driver import SearchSettings
from symbiote.search.objectives import parse_constraints


@pytest.fixture(scope="module")
def tiny():
    g = load(zoo.build("tiny_cnn", image_size=16, channels=(8, 16, 16)))
    return g, lower(g, analyze(g))


@pytest.fixture(scope="module")
def inputs(tiny):
    return accuracy.calibration_inputs(tiny[0], None, samples=2)


def _prep(tiny):
    graph, wl = tiny
    return knobs.Prepared(graph, analyze(graph), wl)


def _extreme(genes) -> list[float]:
    """Per gene, its lowest legal value (narrowest, fewest bits), or its highest when the
    default is the lowest (a categorical knob whose first option is "as given")."""
    return [g.values[0] if g.default > 0 else g.values[-1] for g in genes]


@pytest.fixture(scope="module")
def decoder():
    """The decode step of a small decoder with a KV cache, for knobs of LLMs (``kv_cache``)."""
    from symbiote.search.phases import Phase, load_phase

    g = load_phase(zoo.build("gpt_decoder", layers=1, hidden=32, heads=2, vocab_size=64), Phase("decode", batch=2, context=8))
    return g, lower(g, analyze(g))


#: knobs with no target on a CNN, checked on the decoder instead
ON_DECODER = ("kv_cache",)


@pytest.mark.parametrize("name", knobs.names())
def test_every_registered_knob_prices_the_model_as_given_at_its_default_and_is_real_elsewhere(name, tiny, inputs,
                                                                                              decoder):
    import jax.numpy as jnp

    if name in ON_DECODER:
        tiny = decoder
        inputs = accuracy.calibration_inputs(decoder[0], None, samples=2)
    graph, wl = tiny
    prep = _prep(tiny)
    knob = knobs.get(name)
    targets = knob.targets(prep)
    assert targets, f"{name}: no target on {graph.name}"
    f = knob.fit(prep, targets, knobs.Probes(inputs, inputs))
    assert f.targets == targets
    genes = knob.genes(f, 0, "t", knobs.GeneSettings(datapath_bits=8))
    assert len(genes) == len(targets) and all(g.kind == knob.kind for g in genes)
    t = get_template("systolic")
    hw = {k.name: jnp.float32(k.encode(k.default)) for k in t.space.knobs}   # an int8 datapath
    default = jnp.asarray([g.values[g.default] for g in genes], jnp.float32)
    # the default is the model as given (at the datapath's precision): the same cost
    base = t.cost(hw, wl)
    at_default = t.cost(hw, knob.workload(wl, f, default, hw))
    assert float(at_default.total_energy_pj) == pytest.approx(float(base.total_energy_pj), rel=1e-5)
    assert float(at_default.total_latency_cycles) == pytest.approx(float(base.total_latency_cycles), rel=1e-5)
    # the farthest legal setting: another cost, a larger proxy loss, a model that runs and differs
    far = jnp.asarray(_extreme(genes), jnp.float32)
    assert float(t.cost(hw, knob.workload(wl, f, far, hw)).total_energy_pj) != pytest.approx(
        float(base.total_energy_pj), rel=1e-6)
    assert float(knob.proxy_loss(f, far)) > float(knob.proxy_loss(f, default))
    chosen = {tt: knob.setting(f, j, float(far[j])) for j, tt in enumerate(targets)}
    changed = knob.rewrite(graph, chosen, knobs.RewriteContext(inputs=inputs, default_bits=8))
    assert accuracy.compare(graph, changed, inputs).fidelity < 1.0
    # its repair leads back to the model as given
    from symbiote.search.genome import GenomeSpace

    space = GenomeSpace(tuple(genes), ("t",))
    x = np.array([g.values.index(v) for g, v in zip(genes, _extreme(genes))], np.int32)
    mine = np.ones(len(genes), bool)
    steps = knob.repair(x, space.default(), mine, space)
    assert steps and all((s[mine] >= np.minimum(x, space.default())[mine]).all() for s in steps)
    if name != "channels":   # channels repair restores shrunk groups only (growth is exact)
        assert np.array_equal(steps[-1], space.default())


def test_sparsity_options_and_their_cost_and_proxy(tiny, inputs):
    graph, wl = tiny
    knob = knobs.get("sparsity")
    f = knob.fit(_prep(tiny), knob.targets(_prep(tiny)), knobs.Probes(inputs, inputs))
    by = dict(zip(f.targets, f.options))
    # the stem conv reduces over 3 input channels x 3 x 3 (C=3: no 2:4 groups); the others can
    stem = [t for t in f.targets if graph.node(t).input(1).shape[1] % 4]
    assert stem and all("2:4" not in by[t] for t in stem)
    assert any("2:4" in o for o in f.options)
    assert all(o[0] == "dense" for o in f.options)
    # the proxy loss grows with the zeroed fraction (removed weight energy is monotone)
    import jax.numpy as jnp

    losses = [float(knob.proxy_loss(f, jnp.full(len(f.targets), float(i)))) for i in range(4)]
    assert losses == sorted(losses) and losses[0] == 0.0 < losses[1]


def test_a_search_with_the_sparsity_knob_writes_and_checks_sparse_weights(tiny):
    graph, _ = tiny
    # a design with the 2:4 datapath (sparse_24=yes), where 2:4 layers halve their compute
    cfg = api.RunConfig(models=("tiny",), model_knobs="sparsity", eval_samples=16, hw_fixed={"sparse_24": "yes"},
                        constraints=parse_constraints(["fidelity>=0.9"]),
                        settings=SearchSettings(budget_evals=600, seed=0, use_gradient=False))
    out = api.run(cfg, networks=[api.prepare(cfg, "tiny", graph)])
    chosen = out.networks[0].model_knobs["sparsity"]
    assert set(chosen) == set(out.codesign.networks[0].fitted["sparsity"].targets)
    written = out.networks[0].graph
    for layer, setting in chosen.items():
        w = written.node(layer).input(1)
        w = np.asarray((w.producer.input(0) if not w.is_const else w).const)   # through the int8 DequantizeLinear
        zeros = float(np.mean(w == 0))
        if setting == "dense":
            assert zeros < 0.05
        elif setting == "2:4":
            assert zeros >= 0.5 - 1e-9
        else:
            assert zeros == pytest.approx(float(setting.rstrip("%")) / 100, abs=0.02)
    assert out.feasible and out.networks[0].accuracy["fidelity"] >= 0.9
    assert any(v != "dense" for v in chosen.values())           # the knob was used, and it pays
    assert out.networks[0].metrics["edp"] < out.networks[0].baseline["edp"]


def test_model_knobs_text_is_checked():
    assert codesign.parse_model_knobs("channels+sparsity") == ("channels", "sparsity")
    assert knobs.ordered(("precision", "sparsity", "channels")) == ("channels", "sparsity", "precision")
    assert codesign.parse_model_knobs("none") == ()
    with pytest.raises(SearchError, match="sparsity"):
        codesign.parse_model_knobs("channels+widths")


def test_channels_and_sparsity_together_never_ask_for_an_impossible_2_4_layer():
    """2:4 is offered only where channel resizing keeps the reduction axis a multiple of 4: a
    4-channel group moves in steps of 1 (a 5-channel input cannot be 2:4)."""
    from symbiote.search.knobs.sparsity import allows_24

    g = load(zoo.build("tiny_cnn", image_size=16, channels=(4, 32, 16)))
    net = codesign.prepare_network("t", graph=g, calibrate=False, knobs=("sparsity",))
    f = net.fitted["sparsity"]
    by = dict(zip(f.targets, f.options))
    fed_by_4 = [n.name for n in g.nodes if n.name in by and n.input(1).shape[1] == 4]
    assert fed_by_4 and all("2:4" not in by[t] for t in fed_by_4)
    assert not allows_24(4) and allows_24(8) and allows_24(32) and not allows_24(36 - 2)
    cfg = api.RunConfig(models=("t",), model_knobs="channels+sparsity", eval_samples=8,
                        constraints=parse_constraints(["fidelity>=0.5"]),
                        settings=SearchSettings(budget_evals=400, seed=1, use_gradient=False))
    out = api.run(cfg, networks=[api.prepare(cfg, "t", g)])   # every checked candidate could be written
    assert out.networks[0].graph is not None


def test_the_sparsity_proxy_has_a_prior_without_calibration(tiny):
    knob = knobs.get("sparsity")
    f = knob.fit(_prep(tiny), knob.targets(_prep(tiny)), knobs.Probes())
    import jax.numpy as jnp

    assert float(knob.proxy_loss(f, jnp.full(len(f.targets), 3.0))) > 0.0    # 75% is not free
