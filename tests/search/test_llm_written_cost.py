"""The written model of an LLM-phase search is priced as the search priced it: ``symbiote
cost`` of the file (its lowering at the chosen hardware) gives the latency and energy in
``result.json``, with weight-only layers and a quantized KV cache."""

from __future__ import annotations

import jax.numpy as jnp
import pytest


@pytest.mark.slow
def test_written_decoder_costs_what_the_search_reported():
    from symbiote.ir.lower import lower
    from symbiote.search import api, codesign
    from symbiote.search.driver import SearchSettings
    from symbiote.search.objectives import parse_constraints, parse_objectives
    from symbiote.search.phases import Phase
    from symbiote.search.prepare import prepare_graph

    cfg = api.RunConfig(models=("zoo:gpt_decoder",), backend="roofline", objectives=parse_objectives(["tpot_ms"]),
                        constraints=parse_constraints(["agreement>=0.9"]), model_knobs="weight_only+kv_cache",
                        settings=SearchSettings(seed=0, budget_evals=3000), logits=("logits",),
                        phase=Phase("decode", batch=4, context=64), exact_candidates=2)
    o = api.run(cfg)
    knobs = o.networks[0].model_knobs
    # the answer quantizes something (the case the written model's annotations must price)
    assert any(v != "float" for v in knobs["weight_only"].values()) or any(b <= 8 for b in knobs["kv_cache"].values())
    hw, _ = codesign._split(o.codesign.spec, o.codesign.spec.space.decode(jnp.asarray(o.best, jnp.int32)))
    written = lower(prepare_graph(o.networks[0].graph, cfg.prepare))
    m = o.codesign.template.cost(hw, written)
    assert float(m.total_latency_s) == pytest.approx(o.networks[0].metrics["latency_s"], rel=1e-5)
    assert float(m.total_energy_pj) == pytest.approx(o.networks[0].metrics["energy_pj"], rel=1e-5)
