"""LLM phases (search/phases.py): the decode step reads every weight once per step for the
whole batch, the KV cache once, and appends one row per layer (bytes by hand); prefill at S
is the ONNX graph at sequence S; the phase metrics are derived where objectives are."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from symbiote.backends import technology
from symbiote.backends.manager import get_template
from symbiote.frontend import load, zoo
from symbiote.ir.lower import lower
from symbiote.ir.workload import FREE, MAC
from symbiote.search import objectives
from symbiote.search.phases import Phase, PhaseError, load_phase, phase_metrics, without_past

L_, H, HEADS, V, P, FF = 2, 32, 4, 50, 64, 128       # layers, hidden, heads, vocab, positions, ffn
D = H // HEADS
CFG = dict(layers=L_, hidden=H, heads=HEADS, vocab_size=V, max_positions=P, intermediate=FF)


def _decode(batch: int, context: int):
    g = load_phase(zoo.build("gpt_decoder", **CFG), Phase("decode", batch=batch, context=context))
    return lower(g, default_bits=16)


def _row(wl, name):
    return wl.names.index(name)


def _linear_params() -> int:
    """Every MAC weight and bias of one layer, by hand: q, k, v, o (h x h + h each), fc_in
    (h x 4h + 4h), fc_out (4h x h + h)."""
    return 4 * (H * H + H) + (H * FF + FF) + (FF * H + H)


def test_the_decode_step_reads_each_weight_once_for_the_whole_batch():
    b, ctx = 3, 10
    wl = _decode(b, ctx)
    c = wl.to_numpy()
    for batch in (1, 3):   # a projection's weight is read once per step, whatever the batch
        assert _decode(batch, ctx).to_numpy()["weight_elems"][_row(wl, "transformer.h.0.attn.q_proj.matmul")] == H * H
    assert c["p"][_row(wl, "transformer.h.0.attn.q_proj.matmul")] == b      # the batch's 3 rows share it
    attn = [i for i, n in enumerate(wl.names) if n.endswith(("attn.scores", "attn.context"))]
    weights = c["weight_elems"].copy()
    weights[attn] = 0
    weights[c["kind"] == FREE] = 0                    # views (Reshape, Unsqueeze) read nothing
    t = ctx + 1
    by_hand = (L_ * (_linear_params() + 2 * 2 * H     # + ln_1, ln_2 (weight and bias)
                     + 5)                             # scalars: attention scale, mask value, GELU's 1/sqrt2, 1, 0.5
               + 2 * H + H * V                        # ln_f, lm_head
               + b * H + b * H                        # the gathered rows of wte and wpe: one per sequence
               + t)                                   # the key positions 0..T-1 of the causal mask (a folded Range)
    assert weights.sum() == by_hand
    # MAC weights only, in bytes at 16 bits: each linear weight once (biases are Add rows)
    mac_w = sum(c["weight_elems"][i] for i in range(len(wl)) if c["kind"][i] == MAC and i not in attn)
    assert mac_w * 2 == 2 * (L_ * (4 * H * H + 2 * H * FF) + H * V)


def test_the_decode_step_reads_the_kv_cache_once_and_appends_one_row_per_layer():
    b, ctx = 3, 10
    wl = _decode(b, ctx)
    c = wl.to_numpy()
    t = ctx + 1                                       # the L cached rows and the new one
    for i in range(L_):
        p = f"transformer.h.{i}.attn"
        assert c["weight_elems"][_row(wl, f"{p}.scores")] == b * HEADS * t * D      # all of K, once
        assert c["weight_elems"][_row(wl, f"{p}.context")] == b * HEADS * t * D     # all of V, once
        for cache in ("k_cache", "v_cache"):
            r = _row(wl, f"{p}.{cache}")
            assert (c["in_elems"][r], c["out_elems"][r]) == (b * HEADS * D, b * HEADS * D)   # one row appended
    # in bytes on the roofline template at fp16: the K append moves 2 x 3 x 4 x 8 x 2 = 384 bytes,
    # the scores read q (B H D), all of K (B H T D) and write B H T scores, 2 bytes each
    tpl = get_template("roofline")
    m = tpl.evaluate(tpl.space.default() | {"dram": "hbm2e"}, wl).to_numpy()
    pj_per_byte = 8 * technology.DRAM_PJ_PER_BIT[technology.DRAM_KINDS.index("hbm2e")]
    k_append = _row(wl, "transformer.h.0.attn.k_cache")
    assert m["energy_dram_pj"][k_append] == pytest.approx(2 * (b * HEADS * D) * 2 * pj_per_byte, rel=1e-5)
    scores = _row(wl, "transformer.h.0.attn.scores")
    assert m["energy_dram_pj"][scores] == pytest.approx(2 * (b * HEADS * D + b * HEADS * t * D + b * HEADS * t) * pj_per_byte, rel=1e-5)


def test_prefill_at_s_is_the_onnx_graph_at_sequence_s():
    s, b = 7, 2
    direct = lower(load(zoo.build("gpt_decoder", **CFG, cache=False, seq_len=s, batch=b)), default_bits=16)
    phased = lower(load_phase(zoo.build("gpt_decoder", **CFG, cache=False), Phase("prefill", batch=b, seq=s)), default_bits=16)
    assert phased.names == direct.names
    for k, v in direct.to_numpy().items():
        np.testing.assert_array_equal(phased.to_numpy()[k], v, err_msg=k)
    # with a cache: the past inputs are dropped, the present outputs are the S new rows, and the
    # MAC work is the cache-free model's
    cached = load_phase(zoo.build("gpt_decoder", **CFG), Phase("prefill", batch=b, seq=s))
    assert not [v for v in cached.inputs if v.name.startswith("past")]
    assert {tuple(o.shape) for o in cached.outputs[1:]} == {(b, HEADS, s, D)}
    assert float(lower(cached, default_bits=16).macs.sum()) == float(direct.macs.sum())


def test_the_rewritten_prefill_model_computes_what_an_empty_cache_does():
    m = zoo.build("gpt_decoder", **CFG, batch="batch", seq_len="seq", past_len="past")
    ids = np.array([[3, 1, 4, 1, 5]], np.int64)
    feeds = {"input_ids": ids, "position_ids": np.arange(5, dtype=np.int64)[None]}
    empty = {f"past_{n}_{i}": np.zeros((1, HEADS, 0, D), np.float32) for i in range(L_) for n in ("key", "value")}
    run = lambda model, f: ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, f)  # noqa: E731
    want, got = run(m, feeds | empty), run(without_past(m), feeds)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_decode_needs_a_context_and_a_cacheless_model_gets_one():
    with pytest.raises(PhaseError, match="context"):
        Phase("decode")
    # a model exported without a cache is given one by the decode rule (search/phases_cacheless.py;
    # tests/search/test_phases_cacheless.py); a model without attention is an error there
    g = load_phase(zoo.build("gpt_decoder", **CFG, cache=False), Phase("decode", context=4))
    assert g.meta["phase"]["rule"] == "cacheless"


def test_phase_metrics_and_objectives():
    totals = {"latency_s": 0.02, "energy_pj": 4e9, "area_mm2": 1.0}
    d = phase_metrics(Phase("decode", batch=16, context=100), totals)
    assert objectives.metric_value(d, "tpot_ms") == pytest.approx(20.0)
    assert objectives.metric_value(d, "tokens_per_s") == pytest.approx(16 / 0.02)
    assert objectives.metric_value(d, "energy_per_token_uj") == pytest.approx(4e9 / 16 * 1e-6)
    p = phase_metrics(Phase("prefill", batch=2, seq=64), totals)
    assert objectives.metric_value(p, "ttft_ms") == pytest.approx(20.0) and "tpot_s" not in p
    # tokens per second is maximized: its objective term has a negative weight
    assert objectives.Objective.parse("tokens_per_s").terms == (("tokens_per_s", -1.0),)
    faster = phase_metrics(Phase("decode", batch=16, context=100), totals | {"latency_s": 0.01})
    obj = objectives.Objective.parse("tokens_per_s")
    assert float(obj.log_value(faster)) < float(obj.log_value(d))
    assert float(objectives.Constraint.parse("tpot_ms<=10").violation(d)) > 0


def test_a_search_in_a_phase_prices_tpot_and_tokens_per_second():
    """``RunConfig(phase=...)`` loads every model in the phase; the search's metrics carry the
    token count, so ``tpot_ms`` and ``tokens_per_s`` are objectives (search/codesign.py)."""
    from symbiote.search import api

    cfg = api.RunConfig(models=("zoo:gpt_decoder",), backend="roofline", model_knobs="none",
                        objectives=objectives.parse_objectives(["tpot_ms"]), phase=Phase("decode", batch=4, context=32))
    cd = api.build(cfg)
    assert cd.networks[0].graph.meta["phase"] == {"kind": "decode", "tokens": 4}
    ev = cd.problem.evaluator()
    m = objectives.derive({k: v[0] for k, v in ev.metrics(cd.problem.space.default()[None]).items()})  # [P, N] -> [N]
    assert float(m["decode_tokens"][0]) == 4.0
    assert float(m["tpot_s"][0]) == float(m["latency_s"][0])
    assert float(m["tokens_per_s"][0]) == pytest.approx(4.0 / float(m["latency_s"][0]), rel=1e-5)


def test_the_command_line_phase_options(capsys):
    from symbiote.cli import main

    assert main(["cost", "zoo:gpt_decoder", "--seq", "3"]) == 2
    assert "--seq and --context need --phase" in capsys.readouterr().err
    assert main(["cost", "zoo:gpt_decoder", "--phase", "prefill", "--context", "3"]) == 2
    assert "--context is for --phase decode" in capsys.readouterr().err
    assert main(["cost", "zoo:gpt_decoder", "-b", "roofline", "--phase", "prefill", "--seq", "5", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "prefill: batch 2, 5 new token(s), 0 cached: TTFT" in out and "capacity: weights" in out


def _as_transpose_matmul(model):
    """The zoo model with each score Einsum written as torch.onnx exports it: MatMul(q, Transpose(k))."""
    from onnx import helper

    nodes = []
    for n in model.graph.node:
        if n.op_type == "Einsum":
            t = helper.make_node("Transpose", [n.input[1]], [n.name + ".kT"], name=n.name + ".kT", perm=[0, 1, 3, 2])
            nodes += [t, helper.make_node("MatMul", [n.input[0], n.name + ".kT"], list(n.output), name=n.name)]
        else:
            nodes.append(n)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def test_a_transposed_key_matmul_reads_the_cache_once_and_the_model_is_left_as_it_was():
    b, ctx, t = 3, 10, 11
    at = dict(CFG, batch=b, seq_len=1, past_len=ctx)
    m = _as_transpose_matmul(zoo.build("gpt_decoder", **at))
    before = m.SerializeToString()
    wl = lower(load_phase(m, Phase("decode", batch=b, context=ctx)), default_bits=16)
    assert m.SerializeToString() == before                      # the rewrite lasted the load only
    c = wl.to_numpy()
    assert not [n for n in wl.names if n.endswith(".kT")]        # no copy of the key cache
    assert c["weight_elems"][_row(wl, "transformer.h.0.attn.scores")] == b * HEADS * t * D
    einsum = _decode(b, ctx)
    assert float(wl.macs.sum()) == float(einsum.macs.sum())
    assert c["weight_elems"].sum() == einsum.to_numpy()["weight_elems"].sum()
    # the original graph runs the same in onnxruntime as the Einsum form
    feeds = {"input_ids": np.array([[1], [2], [3]]), "position_ids": np.full((3, 1), ctx)}
    rng = np.random.default_rng(0)
    feeds |= {f"past_{n}_{i}": rng.standard_normal((b, HEADS, ctx, D)).astype(np.float32) for i in range(L_) for n in ("key", "value")}
    run = lambda model: ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]  # noqa: E731
    np.testing.assert_allclose(run(m), run(zoo.build("gpt_decoder", **at)), rtol=1e-5, atol=1e-6)
