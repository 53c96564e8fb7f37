"""The ``weight_only`` model knob: weights at their bits plus group scales, activations at
theirs, the blocked-DequantizeLinear model in onnxruntime, and its exclusion of ``precision``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from symbiote.backends.manager import get_template
from symbiote.errors import SearchError
from symbiote.frontend import zoo
from symbiote.ir.channel_groups import analyze
from symbiote.ir.lower import lower
from symbiote.search import accuracy, codesign, knobs, phases
from symbiote.search.knobs import weight_only as wo

H, INTER = 128, 256


@pytest.fixture(scope="module")
def decode():
    model = zoo.build("gpt_decoder", layers=1, hidden=H, heads=4, intermediate=INTER, vocab_size=64)
    g = phases.load_phase(model, phases.Phase("decode", batch=2, context=8))
    wl = lower(g, analyze(g))
    return g, wl, knobs.Prepared(g, analyze(g), wl)


def test_group_quantization_by_hand():
    w = np.array([[1.0, -2.0], [0.5, 4.0], [-3.0, 1.0], [0.25, -0.5]], np.float32)   # [K=4, N=2]
    q, s = wo.quantize_groups(w, 4, 2, axis=0)          # groups of 2 rows, 4 bits: |q| <= 7
    assert s.shape == (2, 2)
    np.testing.assert_allclose(s, [[1.0 / 7, 4.0 / 7], [3.0 / 7, 1.0 / 7]], rtol=1e-6)
    assert np.abs(q).max() <= 7
    np.testing.assert_allclose(wo.dequantize_groups(q, s, 0), w, atol=0.5 * float(s.max()) + 1e-6)
    assert wo.stored_bits("int4/g128", 4096) == 4 + 16 / 128
    assert wo.stored_bits("int8/ch", 256) == 8 + 16 / 256
    assert wo.legal("int4/g64", 128) and not wo.legal("int4/g128", 128) and not wo.legal("int4/g64", 96)


def test_weight_rows_at_weight_bits_activations_at_activation_bits(decode):
    g, wl, prep = decode
    t = get_template("roofline")
    hw = {k.name: jnp.float32(k.encode(k.default)) for k in t.space.knobs}          # fp16 datapath
    targets = wo.KNOB.targets(prep)
    assert "transformer.h.0.mlp.fc_in.matmul" in targets and "lm_head" in targets
    assert not any("scores" in x or "context" in x for x in targets)   # activation x activation
    f = wo.KNOB.fit(prep, targets, knobs.Probes())
    j = targets.index("transformer.h.0.mlp.fc_in.matmul")
    assert f.options[j] == ("float", "int8/ch", "int4/ch", "int4/g64", "int4/g32")   # K = 128
    row = f.rows[j]
    for label, bits in (("float", 16.0), ("int8/ch", 8 + 16 / H), ("int4/ch", 4 + 16 / H), ("int4/g32", 4.5)):
        v = jnp.asarray([float(opts.index(label)) if label in opts else 0.0 for opts in f.options])
        w = wo.KNOB.workload(wl, f, v, hw)
        assert float(w.weight_bits[row]) == pytest.approx(bits)
        assert float(w.act_bits[row]) == 16.0                        # activations stay at the datapath's
        # the weight bytes the roofline reads: elements x bits / 8
        assert float(w.weight_elems[row] * w.weight_bits[row] / 8) == pytest.approx(H * INTER * bits / 8)
    # the model as given at the default; int4 weights cut the bytes of a memory-bound decode
    zero = jnp.zeros(len(targets))
    assert float(t.cost(hw, wo.KNOB.workload(wl, f, zero, hw)).total_energy_pj) == pytest.approx(
        float(t.cost(hw, wl).total_energy_pj))
    far = jnp.asarray([float(len(o) - 1) for o in f.options])
    assert float(t.cost(hw, wo.KNOB.workload(wl, f, far, hw)).total_energy_pj) < float(t.cost(hw, wl).total_energy_pj)
    # the capacity check prices each weight at its row's bits
    assert float(phases.memory_bytes(g, wl, wo.KNOB.workload(wl, f, far, hw), hw)) < float(
        phases.memory_bytes(g, wl, wl, hw))


def test_blocked_dequantize_runs_in_onnxruntime_and_agreement_drops_with_bits(decode):
    g, _, prep = decode
    inputs = accuracy.calibration_inputs(g, None, samples=8)
    targets = wo.KNOB.targets(prep)
    assert wo.blocked_exact(g)
    fid = {}
    for label in ("int8/ch", "int4/g32", "int4/ch"):
        out = wo.KNOB.rewrite(g, {t: label for t in targets}, knobs.RewriteContext(default_bits=16))
        dq = [n for n in out.nodes if n.onnx_op == "DequantizeLinear"]
        assert len(dq) == len(targets) and out.opset[""] == 21
        assert all(n.attrs["block_size"] >= 32 for n in dq)
        wl2 = lower(out)
        i = wl2.names.index("lm_head")
        bits, group = wo.OPTIONS[label]
        k_in = next(n for n in g.nodes if n.name == "lm_head").input(1).shape[0]    # the input axis: 64
        # the file is priced as the search prices it: the integers plus an fp16 scale per group
        assert float(wl2.weight_bits[i]) == pytest.approx(bits + 16.0 / (group or k_in))
        assert float(wl2.act_bits[i]) == 16.0
        fid[label] = accuracy.compare(g, out, inputs, logits=("logits",)).fidelity
    assert 1.0 > fid["int8/ch"] > fid["int4/ch"]
    assert fid["int4/g32"] > fid["int4/ch"]          # smaller groups, smaller error
    # as given: the same graph
    assert wo.KNOB.rewrite(g, {t: "float" for t in targets}, knobs.RewriteContext()) is g


def test_weight_only_and_precision_are_not_searched_together():
    with pytest.raises(SearchError, match="weight_only"):
        codesign.parse_model_knobs("precision+weight_only")
    assert codesign.parse_model_knobs("weight_only+kv_cache") == ("weight_only", "kv_cache")
    assert knobs.ordered(("precision", "weight_only", "sparsity")) == ("sparsity", "weight_only", "precision")


def test_repair_raises_int4_to_int8_then_returns_to_float(decode):
    from symbiote.search.genome import GenomeSpace

    _, _, prep = decode
    f = wo.KNOB.fit(prep, wo.KNOB.targets(prep), knobs.Probes())
    genes = wo.KNOB.genes(f, 0, "t", knobs.GeneSettings())
    space = GenomeSpace(tuple(genes), ("t",))
    x = np.array([len(g.values) - 1 for g in genes], np.int32)          # every layer at its last int4 option
    steps = wo.KNOB.repair(x, space.default(), np.ones(len(genes), bool), space)
    assert len(steps) == 2
    assert all(g.labels[int(v)] == "int8/ch" for g, v in zip(genes, steps[0]))
    assert np.array_equal(steps[1], space.default())
