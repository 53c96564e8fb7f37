"""Conformance suite run over every registered template (built-in or plugin)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiote.backends.manager import registry
from symbiote.frontend import load
from symbiote.ir.lower import lower

TEMPLATES = sorted(registry().templates)
ZOO = ("resnet18", "resnet50", "mobilenet_v2", "bert", "lstm", "tiny_cnn")


@functools.cache
def workload(name):
    return lower(load(f"zoo:{name}"))


@pytest.mark.parametrize("tname", TEMPLATES)
@pytest.mark.parametrize("model", ZOO)
def test_finite_metrics_on_every_zoo_model(tname, model):
    t = registry().get(tname)
    wl = workload(model)
    m = t.cost(t.space.encode(t.space.default()), wl)
    for k, v in m.to_numpy().items():
        assert np.all(np.isfinite(v)), (k, model)
    lat = np.asarray(m.latency_cycles)
    assert lat.shape == (len(wl),)
    # every layer is costed unless fusion made it free
    assert np.all(lat[np.asarray(wl.kind) != 3] > 0)
    assert float(m.total_energy_pj) > 0 and float(m.area_mm2) > 0


@pytest.mark.parametrize("tname", TEMPLATES)
def test_jit_vmap_equals_eager_loop(tname):
    t = registry().get(tname)
    wl = workload("tiny_cnn")
    hws = t.space.sample(jax.random.key(1), 6)
    batched = jax.jit(jax.vmap(t.cost, in_axes=(0, None)))(hws, wl)
    for i in range(6):
        one = t.cost({k: v[i] for k, v in hws.items()}, wl)
        np.testing.assert_allclose(np.asarray(batched.latency_cycles[i]), np.asarray(one.latency_cycles), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(batched.energy_pj[i]), np.asarray(one.energy_pj), rtol=1e-5)
        np.testing.assert_allclose(float(batched.area_mm2[i]), float(one.area_mm2), rtol=1e-5)


@pytest.mark.parametrize("tname", TEMPLATES)
def test_relaxed_gradients_finite_and_nonzero(tname):
    t = registry().get(tname)
    base = workload("resnet18")
    bits = jnp.where(jnp.arange(len(base)) % 2 == 0, 8.0, 32.0)  # mixed precision: every precision path is used
    wl = base.with_bits(bits, bits)
    hw = t.space.encode(t.space.default())

    def objective(h):
        m = t.relaxed_cost(h, wl)
        return jnp.log(m.total_latency_s) + jnp.log(m.total_energy_pj) + jnp.log(m.area_mm2)

    grads = jax.jit(jax.grad(objective))(hw)
    for k in t.space.knobs:
        g = float(grads[k.name])
        assert np.isfinite(g), k.name
        if k.kind == "continuous" and k.costed:
            assert g != 0.0, f"{tname}: zero gradient for continuous knob {k.name}"
        if not k.costed:
            assert g == 0.0, f"{tname}: knob {k.name} is declared without a cost term but moves the cost"


@pytest.mark.parametrize("tname", TEMPLATES)
def test_relaxed_agrees_with_exact_roughly(tname):
    t = registry().get(tname)
    wl = workload("tiny_cnn")
    hw = t.space.encode(t.space.default())
    exact, relaxed = t.cost(hw, wl), t.relaxed_cost(hw, wl)
    assert 0.5 < float(relaxed.total_latency_cycles / exact.total_latency_cycles) < 2.0


@pytest.mark.parametrize("tname", TEMPLATES)
def test_legalize_idempotent_and_in_space(tname):
    t = registry().get(tname)
    key = jax.random.key(2)
    raw = {}
    for k, kk in zip(t.space.knobs, jax.random.split(key, len(t.space.knobs)), strict=True):
        if k.kind == "categorical":
            raw[k.name] = jax.random.normal(kk, (16, len(k.choices)))  # relaxed logits
        else:
            raw[k.name] = jax.random.uniform(kk, (16,), minval=k.low * 0.5, maxval=k.high * 1.5 + 1)
    once = t.legalize(raw)
    twice = t.legalize(once)
    for name in once:
        np.testing.assert_array_equal(np.asarray(once[name]), np.asarray(twice[name]))
    assert t.space.contains(once)
    for i in range(16):
        t.space.validate(t.space.decode(once, i))
