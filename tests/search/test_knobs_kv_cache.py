"""The ``kv_cache`` model knob: the cache's bytes at its bits (hand-computed), the capacity
check asking the knob, and the rewritten model in onnxruntime."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from symbiote.backends.manager import get_template
from symbiote.frontend import zoo
from symbiote.ir.channel_groups import analyze
from symbiote.ir.lower import lower
from symbiote.search import accuracy, knobs, phases
from symbiote.search.knobs import kv_cache

B, L, H, HEADS, LAYERS = 2, 16, 32, 2, 2
D = H // HEADS


@pytest.fixture(scope="module")
def decode():
    model = zoo.build("gpt_decoder", layers=LAYERS, hidden=H, heads=HEADS, vocab_size=64)
    g = phases.load_phase(model, phases.Phase("decode", batch=B, context=L))
    wl = lower(g, analyze(g))
    return g, wl, knobs.Prepared(g, analyze(g), wl)


@pytest.fixture(scope="module")
def hw():
    t = get_template("roofline")
    return t, {k.name: jnp.float32(k.encode(k.default)) for k in t.space.knobs}


def _at(wl, f, bits, hw_):
    return kv_cache.KNOB.workload(wl, f, jnp.full(len(f.targets), float(bits)), hw_)


def test_one_target_per_cache_tensor_with_its_append_and_readers(decode):
    g, wl, prep = decode
    targets = kv_cache.KNOB.targets(prep)
    assert targets == tuple(f"present_{kv}_{i}" for i in range(LAYERS) for kv in ("key", "value"))
    rows = {c.name: c for c in kv_cache.cache_rows(g, wl.names)}
    assert wl.names[rows["present_key_0"].append] == "transformer.h.0.attn.k_cache"
    assert [wl.names[r] for r in rows["present_key_0"].readers] == ["transformer.h.0.attn.scores"]
    assert [wl.names[r] for r in rows["present_value_1"].readers] == ["transformer.h.1.attn.context"]


def test_the_decode_steps_cache_read_at_8_bits_is_half_that_at_16(decode, hw):
    g, wl, prep = decode
    t, h = hw
    f = kv_cache.KNOB.fit(prep, kv_cache.KNOB.targets(prep), knobs.Probes())
    cache_elems = B * HEADS * (L + 1) * D          # one layer's keys after the append
    row = wl.names.index("transformer.h.0.attn.scores")
    app = wl.names.index("transformer.h.0.attn.k_cache")
    assert float(wl.weight_elems[row]) == cache_elems
    for bits in (16, 8, 4):
        w = _at(wl, f, bits, h)
        # the scores read the key cache at the cache's bits: elements x bits / 8 bytes
        assert float(w.weight_elems[row] * w.weight_bits[row] / 8) == cache_elems * bits / 8
        assert float(w.bits_given[row]) == 1.0
        # the query and the scores stay at the datapath's width (fp16)
        assert float(w.act_bits[row]) == 16.0
        # the append writes one new row per head and batch at the cache's bits
        assert float(w.out_elems[app] * w.act_bits[app] / 8) == B * HEADS * D * bits / 8
    r16, r8 = (float(_at(wl, f, b, h).weight_bits[row]) for b in (16, 8))
    assert r8 * 2 == r16
    # the capacity check asks the knob: 4 caches of B x heads x (L + 1) x D at the bits
    for bits in (16, 8):
        got = float(kv_cache.stored_bytes(g, _at(wl, f, bits, h), h))
        assert got == 2 * LAYERS * cache_elems * bits / 8
    m16 = float(phases.memory_bytes(g, wl, _at(wl, f, 16, h), h))
    m8 = float(phases.memory_bytes(g, wl, _at(wl, f, 8, h), h))
    assert m16 - m8 == pytest.approx(2 * LAYERS * cache_elems * 1.0)
    # the default (the fp16 datapath's width) is the model as given
    assert float(t.cost(h, _at(wl, f, 16, h)).total_energy_pj) == pytest.approx(float(t.cost(h, wl).total_energy_pj))
    assert float(t.cost(h, _at(wl, f, 4, h)).total_energy_pj) < float(t.cost(h, wl).total_energy_pj)


def test_the_rewritten_model_runs_and_its_agreement_drops_as_bits_drop(decode):
    g, _, prep = decode
    inputs = accuracy.calibration_inputs(g, None, samples=8)
    targets = kv_cache.KNOB.targets(prep)
    fid, agree = {}, {}
    for bits in (16, 8, 4, 2):
        out = kv_cache.KNOB.rewrite(g, {t: bits for t in targets}, knobs.RewriteContext(inputs=inputs))
        n_q = sum(n.onnx_op == "QuantizeLinear" for n in out.nodes)
        assert n_q == (0 if bits == 16 else 2 * len(targets))   # the past and the new rows of each
        r = accuracy.compare(g, out, inputs, logits=("logits",))
        fid[bits], agree[bits] = r.fidelity, r.agreement
    assert fid[16] == pytest.approx(1.0) and agree[16] == 1.0
    assert fid[16] > fid[8] > fid[4] > fid[2]
    assert agree[8] >= agree[4] >= agree[2] and agree[2] < 1.0


def test_the_proxy_is_fitted_on_a_probe_and_falls_with_bits(decode):
    g, _, prep = decode
    inputs = accuracy.calibration_inputs(g, None, samples=2)
    targets = kv_cache.KNOB.targets(prep)
    f = kv_cache.KNOB.fit(prep, targets, knobs.Probes(inputs, inputs))
    probe = kv_cache.quantize_caches(g, {t: 4 for t in targets}, kv_cache.cache_ranges(g, targets, inputs))
    measured = 1.0 - accuracy.compare(g, probe, inputs).fidelity
    loss = [float(kv_cache.KNOB.proxy_loss(f, jnp.full(len(targets), float(b)))) for b in (4, 8, 16)]
    assert loss[0] == pytest.approx(measured * accuracy.CALIBRATION_MARGIN, rel=1e-4)
    assert loss[0] > loss[1] > loss[2] >= 0.0


def test_no_cache_no_target():
    g = phases.load_phase(zoo.build("gpt_decoder", layers=1, hidden=32, heads=2, vocab_size=64, cache=False),
                          phases.Phase("prefill", batch=1, seq=4))
    wl = lower(g)
    assert kv_cache.KNOB.targets(knobs.Prepared(g, None, wl)) == ()
    assert kv_cache.stored_bytes(g, wl, {}) is None
    assert np.isfinite(float(phases.memory_bytes(g, wl, wl, {"dram_gib": jnp.float32(1.0)})))
