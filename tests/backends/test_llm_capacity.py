"""The capacity check of an LLM phase (search/phases.py, the roofline template's ``dram_gib``):
weights + KV cache at their formats must fit, else the design is infeasible with the reason."""

from __future__ import annotations

import json

import pytest

from symbiote.backends.manager import get_template
from symbiote.cli import main
from symbiote.frontend import zoo
from symbiote.frontend.zoo_gpt import LLAMA2_7B
from symbiote.search.phases import Phase, capacity, footprint, load_phase

# zoo:gpt_decoder's defaults: 2 layers, hidden 64, 4 heads of 16, vocabulary 256, 1024 positions
_PARAMS = (256 * 64 + 1024 * 64                          # wte, wpe
           + 2 * (4 * (64 * 64 + 64)                      # q, k, v, o with biases
                  + (64 * 256 + 256) + (256 * 64 + 64)    # fc_in, fc_out
                  + 2 * 2 * 64)                           # ln_1, ln_2
           + 2 * 64 + 64 * 256)                           # ln_f, lm_head


def test_the_roofline_template_declares_an_a100_40gb_memory():
    assert get_template("roofline").space["dram_gib"].default == 40.0     # GiB


def test_footprint_by_hand():
    g = load_phase("zoo:gpt_decoder", Phase("decode", batch=4, context=512))
    f = footprint(g, weight_bits=16, kv_bits=8)
    assert _PARAMS == 198_400
    assert f.weight_bytes == _PARAMS * 2
    # K and V of 2 layers, [4, 4, 513, 16] after the step, one byte each at 8 bits
    assert f.kv_bytes == 2 * 2 * 4 * 4 * 513 * 16


def test_a_design_whose_kv_cache_does_not_fit_is_infeasible_with_the_reason(capsys):
    argv = ["cost", "zoo:gpt_decoder", "-b", "roofline", "--phase", "decode", "--context", "512", "--batch", "4"]
    assert main([*argv, "--set", "dram_gib=0.001", "--json"]) == 0      # 1,073,742 bytes: the weights (396,800) fit alone
    cap = json.loads(capsys.readouterr().out)["phase"]["capacity"]
    assert cap["weight_bytes"] == _PARAMS * 2 and cap["kv_bytes"] == 2 * 2 * 4 * 4 * 513 * 16 * 2
    assert cap["feasible"] is False and "does not fit in dram_gib 0.001 GiB" in cap["reason"]
    assert main([*argv, "--set", "dram_gib=0.001"]) == 0
    assert "infeasible: weights 0.0003695 GiB + KV cache 0.0009785 GiB" in capsys.readouterr().out
    assert main([*argv, "--set", "dram_gib=0.002", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["phase"]["capacity"]["feasible"] is True


@pytest.mark.parametrize(("dram_gib", "fits"), [(40.0, False), (80.0, True)])
def test_llama2_7b_at_batch_16_and_4k_context_needs_more_than_an_a100_40gb(dram_gib, fits):
    """By hand, fp16: weights 6,738,681,856 x 2 bytes = 12.55 GiB; the KV cache after the step,
    32 layers x K and V x 16 sequences x 4097 positions x 4096 x 2 bytes = 32.0 GiB: 44.6 GiB."""
    m = zoo.build("gpt_decoder", **LLAMA2_7B, dtype="float16", weights="empty")
    g = load_phase(m, Phase("decode", batch=16, context=4096))
    cap = capacity(g, {"dram_gib": dram_gib}, weight_bits=16, kv_bits=16)
    assert cap.footprint.weight_bytes == 6_738_681_856 * 2
    assert cap.footprint.kv_bytes == 32 * 2 * 16 * 4097 * 4096 * 2
    assert cap.fits is fits
    # at batch 1 the 2.1 GB cache fits beside the weights in 40 GB
    one = capacity(load_phase(m, Phase("decode", batch=1, context=4096)), {"dram_gib": 40.0}, 16, 16)
    assert one.fits


def test_a_search_in_a_phase_checks_the_capacity():
    """``memory_use`` (weights + KV cache over ``dram_gib``) is a search metric; a phase's
    search adds ``memory_use<=1``; a design whose KV cache does not fit violates it."""
    from symbiote.search import api, objectives
    from symbiote.search.phases import with_capacity

    cons = with_capacity((), "roofline")
    assert [str(c) for c in cons] == ["memory_use<=1"]
    assert with_capacity((), "systolic") == ()               # no dram_gib: nothing to check
    for gib, fits in ((0.001, False), (0.002, True)):       # as in the cost test above: 1,447,424 bytes at fp16
        cfg = api.RunConfig(models=("zoo:gpt_decoder",), backend="roofline", model_knobs="none", constraints=cons,
                            objectives=objectives.parse_objectives(["tpot_ms"]), hw_fixed={"dram_gib": gib},
                            phase=Phase("decode", batch=4, context=512))
        cd = api.build(cfg)
        idx = cd.problem.space.default()[None]
        m = objectives.derive({k: v[0] for k, v in cd.problem.evaluator().metrics(idx).items()})
        assert float(m["memory_bytes"][0]) == _PARAMS * 2 + 2 * 2 * 4 * 4 * 513 * 16 * 2
        assert (float(m["memory_use"][0]) <= 1.0) is fits
        _, viol = cd.problem.evaluator()(idx)
        assert (float(viol[0]) == 0.0) is fits
