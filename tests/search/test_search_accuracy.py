"""The accuracy side: proxy, exact check in onnxruntime, calibration inputs, plugin hook."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiote.errors import SearchError
from symbiote.search import accuracy


@pytest.fixture(scope="module")
def tiny():
    from symbiote.frontend import load
    from symbiote.ir.channel_groups import analyze

    g = load("zoo:tiny_cnn")
    return g, analyze(g)


def test_proxy_is_one_when_growing_and_drops_when_shrinking(tiny):
    g, cg = tiny
    ids = [x.id for x in cg.free]
    p = accuracy.build_proxy(g, cg, ids)
    w0 = jnp.asarray([cg.groups[i].width for i in ids], jnp.float32)
    assert float(p.fidelity(w0, None)) == pytest.approx(1.0)
    assert float(p.fidelity(w0 * 2, None)) == pytest.approx(1.0)
    assert float(p.fidelity(w0 * 0.5, None)) < float(p.fidelity(w0 * 0.9, None)) < 1.0
    grad = jax.grad(lambda w: p.fidelity(w, None))(w0 * 0.7)
    assert (np.asarray(grad) > 0).all()  # wider keeps more importance
    bits = jnp.full(3, 8.0)
    assert float(p.fidelity(None, bits - 4)) < float(p.fidelity(None, bits)) < 1.0


def test_exact_check_and_calibrated_proxy_agree_in_direction(tiny):
    g, cg = tiny
    ids = [x.id for x in cg.free]
    inputs = accuracy.calibration_inputs(g, None, samples=2)
    same = accuracy.compare(g, accuracy.apply_model_knobs(g, {"stage2.conv.out": 80}, None), inputs)
    assert same.fidelity == pytest.approx(1.0, abs=1e-6)   # growth is exact
    assert same.top1 == 1.0
    cut = accuracy.compare(g, accuracy.apply_model_knobs(g, {"stage2.conv.out": 32}, None), inputs)
    assert cut.fidelity < 0.999
    layers = [n.name for n in g.nodes if n.op in ("conv", "gemm", "matmul")]
    p = accuracy.calibrate(accuracy.build_proxy(g, cg, ids), g, cg, ids, layers, inputs[:1])
    assert p.width_coef > 0 and p.bits_coef > 0


def test_calibration_file(tiny, tmp_path):
    g, _ = tiny
    name = g.inputs[0].name
    shape = tuple(g.inputs[0].shape)
    f = tmp_path / "cal.npz"
    np.savez(f, **{name: np.random.default_rng(0).standard_normal((3, *shape[1:])).astype(np.float32)})
    feeds = accuracy.calibration_inputs(g, f)
    assert len(feeds) == 3 and feeds[0][name].shape == shape
    np.savez(f, other=np.zeros(3))
    with pytest.raises(SearchError, match=name):
        accuracy.calibration_inputs(g, f)


def test_plugin_evaluator_hook_takes_over(tiny):
    g, _ = tiny

    class Plugin:
        @accuracy.hookimpl
        def symbiote_evaluate_accuracy(self, original, candidate, inputs):
            return {"fidelity": 0.5, "top1": 0.25, "evaluator": "my-dataset"}

    pm = accuracy.plugin_manager()
    plugin = Plugin()
    pm.register(plugin)
    try:
        r = accuracy.compare(g, g, accuracy.calibration_inputs(g, None, samples=1))
    finally:
        pm.unregister(plugin)
    assert (r.fidelity, r.top1, r.evaluator) == (0.5, 0.25, "my-dataset")
    assert accuracy.compare(g, g, accuracy.calibration_inputs(g, None, samples=1)).fidelity == pytest.approx(1.0)


def test_per_layer_sensitivity_differs_and_predicts_single_layer_quantization(tiny):
    """The calibrated proxy prices each layer by its own measured sensitivity: layers differ,
    and quantizing one layer alone costs, by the proxy, what onnxruntime measures (the proxy
    may be pessimistic by its margin and the joint-probe scale, never optimistic by > 5%)."""
    from symbiote.search import sensitivity

    g, cg = tiny
    ids = [x.id for x in cg.free]
    layers = [n.name for n in g.nodes if n.op in ("conv", "gemm", "matmul")]
    inputs = accuracy.calibration_inputs(g, None, samples=1)
    s = sensitivity.layer_sensitivities(g, layers, inputs, 4)
    assert np.isfinite(s.loss).all() and (s.loss > 0).all()
    assert s.loss.max() / s.loss.min() > 1.5                      # not equally sensitive
    again = sensitivity.layer_sensitivities(g, layers, inputs, 4)  # served from the cache
    assert again.seconds == 0.0 and np.array_equal(again.loss, s.loss)
    p = accuracy.calibrate(accuracy.build_proxy(g, cg, ids), g, cg, ids, layers, inputs)
    assert p.layer_coefs is not None and len(p.layer_coefs) == len(layers)
    for i, name in enumerate(layers):
        for b in (4, 6):
            others = {n: 16 for n in layers}  # 16 bits: left float (QDQ only at <= 8 bits)
            exact = 1.0 - accuracy.compare(g, accuracy.apply_model_knobs(g, {}, {**others, name: b}, inputs=inputs),
                                           inputs).fidelity
            bits = jnp.full(len(layers), 16.0).at[i].set(float(b))
            pred = 1.0 - float(p.fidelity(None, bits))
            assert 0.95 * exact <= pred <= 2.0 * exact + 1e-6, (name, b, pred, exact)


@pytest.mark.parametrize("model", ["tiny_cnn", "bert"])
def test_probe_quantizers_measure_exactly_what_the_exported_model_runs(model):
    """The sensitivity probe (one session, switchable fake-quantizers) and the exact check
    (set-precision's Clip/QuantizeLinear/DequantizeLinear on weights and activations) are the
    same arithmetic on the prepared models the search runs on (fused ReLU / bias+Gelu chains,
    a MatMul of two activations, one layer feeding the next): the measured losses agree."""
    from symbiote.frontend import load
    from symbiote.search import sensitivity
    from symbiote.search.prepare import DEFAULT_PREPARE, prepare_graph

    from symbiote.frontend import zoo

    # BERT's encoder outputs (its hidden states): every layer's quantization shows in them
    g = prepare_graph(load(zoo.build(model, **({"head": "encoder"} if model == "bert" else {}))), DEFAULT_PREPARE)
    layers = [n.name for n in g.nodes if n.op in ("conv", "gemm", "matmul")]
    inputs = accuracy.calibration_inputs(g, None, samples=2)
    ranges = sensitivity.activation_ranges(g, layers, inputs)
    assert all(r[0] > 0 for r in ranges.values())
    assert sum(r[1] == 0 for r in ranges.values()) == 1           # only the network output is not measured
    two = [ln for ln, r in ranges.items() if len(r) == 3]          # MatMuls of two activations
    assert bool(two) == (model == "bert")
    weights = sensitivity.layer_weights(g, layers)
    prober = sensitivity.Prober(g, weights, inputs, ranges)
    assert prober.loss({}) == pytest.approx(0.0, abs=1e-12)       # quantizers off: the identity
    cases = [([layers[0]], 4), ([layers[1]], 5), (layers[:2], 4), (layers, 6)] + [(two[:2], 4)] * bool(two)
    for sel, b in cases:
        probe = prober.loss(prober.quantized(sel, b, weights))
        q = accuracy.apply_model_knobs(g, {}, {n: (b if n in sel else 16) for n in layers}, inputs=inputs)
        # the probe prices the least per-output cosine, as the exact check's fidelity (sensitivity.py)
        exact = 1.0 - accuracy.compare(g, q, inputs).fidelity
        assert probe > 1e-9 and probe == pytest.approx(exact, rel=1e-3, abs=1e-9), (sel, b)
    # activations matter: weights alone lose less than weights + activations
    w_only = 1.0 - accuracy.compare(g, accuracy.apply_model_knobs(g, {}, {n: 4 for n in layers}), inputs).fidelity
    both = 1.0 - accuracy.compare(g, accuracy.apply_model_knobs(g, {}, {n: 4 for n in layers}, inputs=inputs),
                                  inputs).fidelity
    assert both > w_only > 0


def test_exported_activation_quantizers_are_b_bit_and_free_in_the_workload(tiny):
    from symbiote.ir.lower import lower
    from symbiote.ir.workload import FREE
    from symbiote.search import sensitivity

    g, _ = tiny
    layers = [n.name for n in g.nodes if n.op in ("conv", "gemm", "matmul")]
    inputs = accuracy.calibration_inputs(g, None, samples=1)
    q = accuracy.apply_model_knobs(g, {}, {layers[0]: 3}, inputs=inputs)
    acts = [n for n in q.nodes if n.meta.get("fused_into") == layers[0] and n.onnx_op == "QuantizeLinear"]
    assert len(acts) == 2                                           # its input and its output
    amax = sensitivity.activation_ranges(g, layers[:1], inputs)[layers[0]][0]
    scale = float(acts[0].input(1).const)
    assert scale == pytest.approx(amax / 3)                         # 3 bits: levels -3..3
    clip = acts[0].input(0).producer
    assert clip.onnx_op == "Clip" and float(clip.input(2).const) == pytest.approx(amax)
    wl = lower(q).to_numpy()                                        # quantizers are part of the layer: free
    quant_rows = [i for i, nm in enumerate(lower(q).names) if nm.startswith(f"{layers[0]}.act_")]
    assert len(quant_rows) == 6 and all(wl["kind"][i] == FREE for i in quant_rows)
