"""SRAM costs from CACTI (backends/memories.py) against the recorded table
(backends/data/cacti_sram.json, written by benchmarks/record_cacti.py; no CACTI needed here).

Expected values are CACTI's recorded rows or published figures, not the interpolation under
test recomputed."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiote.backends import memories, tables, technology
from symbiote.backends.manager import get_template

NODES = technology.NODES_NM


def one_hot(node_nm: int) -> jnp.ndarray:
    return jax.nn.one_hot(NODES.index(node_nm), len(NODES))


def cacti(node_nm: int) -> dict[str, np.ndarray]:
    """CACTI's rows of the organization the model uses, by capacity."""
    r = memories.recorded(node_nm)
    r["pj_per_bit"] = 0.5 * (r["read_pj_per_bit"] + r["write_pj_per_bit"])
    return r


def model(node_nm: int, kb) -> dict[str, np.ndarray]:
    nw = one_hot(node_nm)
    kb = jnp.asarray(kb, jnp.float32)
    return {"pj_per_bit": np.asarray(memories.sram_pj_per_bit(kb, nw)), "area_mm2": np.asarray(memories.sram_area_mm2(kb, nw)),
            "leakage_mw": np.asarray(memories.sram_leakage_mw(kb, nw))}


def test_the_table_says_where_it_comes_from_and_covers_the_knobs():
    meta = memories.TABLE["meta"]
    assert meta["cacti"].startswith("7.0") and meta["hwcomponents-cacti"] and meta["hwcomponents"]
    assert "record_cacti.py" in meta["command"] and meta["date"][:2] == "20"
    assert meta["model_width_bits"] == memories.WIDTH_BITS
    for node in (*memories.CACTI_NODES_NM, 28):
        kb = cacti(node)["capacity_kb"]
        # the systolic SRAM knobs (8 KB ... 16 MiB) and the roofline's cache to 256 MB lie inside the table
        assert kb[0] <= 8 and kb[-1] >= 256 * 1024
        assert {2**i * 8 for i in range(12)} <= set(kb.tolist())      # every power of two 8 KB ... 16 MiB


@pytest.mark.parametrize("node", [65, 45])
def test_at_a_recorded_capacity_the_model_is_cactis_value(node):
    """65 and 45 nm are CACTI's own nodes: every recorded capacity comes back exactly."""
    ref = cacti(node)
    got = model(node, ref["capacity_kb"])
    for k in memories.COSTS:
        np.testing.assert_allclose(got[k], ref[k], rtol=2e-5, err_msg=k)


@pytest.mark.parametrize("node", NODES)
def test_energy_area_and_leakage_grow_with_capacity(node):
    kb = np.geomspace(8, 16384, 400)
    got = model(node, kb)
    for k in memories.COSTS:
        assert np.all(np.diff(got[k]) > 0), k
    # and an SRAM twice the size costs less than twice the energy per bit, about twice the area
    two = model(node, np.array([1024.0, 2048.0]))
    assert 1.0 < two["pj_per_bit"][1] / two["pj_per_bit"][0] < 2.0
    assert 1.6 < two["area_mm2"][1] / two["area_mm2"][0] < 2.4


def test_between_recorded_capacities_the_model_stays_between_the_neighbours():
    ref = cacti(45)
    kb = np.sqrt(ref["capacity_kb"][:-1] * ref["capacity_kb"][1:])    # geometric midpoints
    got = model(45, kb)
    for k in memories.COSTS:
        lo, hi = np.minimum(ref[k][:-1], ref[k][1:]), np.maximum(ref[k][:-1], ref[k][1:])
        assert np.all((got[k] >= lo * (1 - 1e-5)) & (got[k] <= hi * (1 + 1e-5))), k


@pytest.mark.parametrize("node", NODES)
def test_a_16_mib_sram_bit_costs_a_small_fraction_of_a_dram_bit(node):
    """Horowitz (ISSCC 2014, 45 nm): a DDR3 bit ~20 pJ, on-chip SRAM bits far less. A 16 MiB
    SRAM bit costs under half a DDR3 bit at every node (65 nm: 0.38), under a quarter at 45 nm
    and below (0.20 at 45 nm), and at 28 nm and below less than even an HBM bit
    (technology.py: 3.3-4 pJ/bit)."""
    e16 = float(model(node, 16384.0)["pj_per_bit"])
    assert e16 < 0.5 * tables.DRAM_PJ_PER_BIT
    if node <= 45:
        assert e16 < 0.25 * tables.DRAM_PJ_PER_BIT
    if node <= 28:
        assert e16 < min(technology.DRAM_PJ_PER_BIT)


def test_28nm_is_the_log_node_interpolation_of_cactis_32_and_22nm():
    """The model's 28 nm: log(value) linear in log(node) between CACTI's 32 and 22 nm rows;
    CACTI's own 28 nm run (device parameters interpolated, organization re-optimized) is
    recorded too: the two agree to within the bounds below at every capacity."""
    a, b = cacti(32), cacti(22)
    t = math.log(32 / 28) / math.log(32 / 22)
    got = model(28, a["capacity_kb"])
    own = cacti(28)
    np.testing.assert_array_equal(own["capacity_kb"], a["capacity_kb"])
    for k, tol in (("pj_per_bit", 0.25), ("area_mm2", 0.25), ("leakage_mw", 1.0)):
        np.testing.assert_allclose(got[k], a[k] ** (1 - t) * b[k] ** t, rtol=2e-5, err_msg=k)
        ratio = got[k] / own[k]
        assert np.all(np.abs(np.log(ratio)) < math.log(1 + tol)), (k, ratio.min(), ratio.max())


@pytest.mark.parametrize("node", [16, 7])
def test_below_22nm_the_22nm_values_scale_with_the_node_factors(node):
    """CACTI 7 stops at 22 nm: 16 and 7 nm are its 22 nm values times technology's factor
    ratio S[node] / S(22 nm), S(22) the log-log interpolation of the factors between 28 and 16 nm."""
    ref = cacti(22)
    got = model(node, ref["capacity_kb"])
    t = math.log(28 / 22) / math.log(28 / 16)
    i28, i16, i = NODES.index(28), NODES.index(16), NODES.index(node)

    def ratio(s):
        return s[i] / (s[i28] ** (1 - t) * s[i16] ** t)

    e, a = ratio(technology.ENERGY_SCALE), ratio(technology.AREA_SCALE)
    assert e < 1 and a < 1
    np.testing.assert_allclose(got["pj_per_bit"], ref["pj_per_bit"] * e, rtol=2e-5)
    np.testing.assert_allclose(got["area_mm2"], ref["area_mm2"] * a, rtol=2e-5)
    np.testing.assert_allclose(got["leakage_mw"], ref["leakage_mw"] * e, rtol=2e-5)


def test_smaller_nodes_cost_less_energy_and_area():
    kb = np.array([8.0, 108.0, 1024.0, 16384.0])
    by_node = [model(n, kb) for n in NODES]                      # 65, 45, 28, 16, 7 nm
    for k in ("pj_per_bit", "area_mm2"):
        vals = np.stack([m[k] for m in by_node])
        assert np.all(np.diff(vals, axis=0) < 0), k


def test_tpu_v1_unified_buffer_area():
    """Jouppi et al., ISCA 2017: TPU v1 (28 nm) has a 24 MiB unified buffer, 29% of a die of
    less than 331 mm^2, i.e. at most ~96 mm^2 on the die plot. The model's one 24 MiB macro of
    256-bit rows at 28 nm is compared, not fitted: CACTI's macro is about 0.31x of that share
    (29.5 mm^2; CACTI's own 28 nm run: 29.9 mm^2, and 34.6 mm^2 with 1024-bit rows). The
    die-plot share also holds what a CACTI macro does not: the TPU reads and writes 256 bytes
    per cycle, and the block's wiring and whitespace. The bounds only pin the order of
    magnitude: a change of the table or the interpolation that moves it shows here."""
    got = float(model(28, 24 * 1024.0)["area_mm2"])
    published = 0.29 * 331.0
    print(f"TPU v1 unified buffer: model {got:.1f} mm^2, die plot <= {published:.1f} mm^2, ratio {got / published:.2f}")
    assert 0.2 < got / published < 1.0


def test_differentiable_jittable_and_vmappable():
    nw45 = one_hot(45)
    g = jax.grad(lambda kb: memories.sram_pj_per_bit(kb, nw45))
    for kb in (8.0, 100.0, 5000.0, 16384.0, 500000.0):
        d = float(g(jnp.float32(kb)))
        assert math.isfinite(d) and d > 0, kb
    # node weights mix in log space (a relaxed design's softmax): a weighted geometric mean
    logits = jnp.array([0.3, 1.0, -0.5, 0.2, 0.0])
    w = jax.nn.softmax(logits)
    mixed = float(memories.sram_area_mm2(512.0, w))
    logs = [np.log(float(model(n, 512.0)["area_mm2"])) for n in NODES]
    assert mixed == pytest.approx(np.exp(sum(float(w[i]) * logs[i] for i in range(len(NODES)))), rel=1e-5)
    # jit(vmap) over designs, each with its own capacity and node
    kb = jnp.asarray(np.random.default_rng(0).uniform(8, 16384, 257), jnp.float32)
    idx = np.random.default_rng(1).integers(0, len(NODES), 257)
    nws = jax.nn.one_hot(idx, len(NODES))
    batched = jax.jit(jax.vmap(memories.sram_leakage_mw))(kb, nws)
    one = [float(model(NODES[i], float(k))["leakage_mw"]) for i, k in zip(idx[:8], kb[:8], strict=True)]
    np.testing.assert_allclose(np.asarray(batched[:8]), one, rtol=1e-5)


@pytest.fixture(scope="module")
def tiny():
    import symbiote
    from symbiote.ir.channel_groups import analyze
    from symbiote.ir.lower import lower

    g = symbiote.load("zoo:tiny_cnn")
    return lower(g, analyze(g))


@pytest.mark.parametrize("tname", ["systolic", "roofline"])
@pytest.mark.parametrize("node", ["45", "28"])
def test_the_models_charge_cacti_sram_area_and_leakage(tiny, tname, node):
    """A design's SRAM area is its macros' CACTI area at the node, and its leakage the logic's
    per-mm^2 leakage over the rest of the chip plus the SRAMs' CACTI leakage power."""
    t = get_template(tname)
    srams = {"ifmap_sram_kb": 1024, "filter_sram_kb": 96, "ofmap_sram_kb": 8} if tname == "systolic" else {"cache_mb": 4.0}
    design = t.space.default() | {"node_nm": node} | srams
    m = t.evaluate(design, tiny).to_numpy()
    kbs = list(srams.values()) if tname == "systolic" else [4096.0]
    sram_area = sum(float(model(int(node), float(kb))["area_mm2"]) for kb in kbs)
    sram_leak = sum(float(model(int(node), float(kb))["leakage_mw"]) for kb in kbs)
    bigger = t.evaluate(design | ({"ifmap_sram_kb": 2048} if tname == "systolic" else {"cache_mb": 8.0}), tiny).to_numpy()
    grown = float(model(int(node), 2048.0 if tname == "systolic" else 8192.0)["area_mm2"]) \
        - float(model(int(node), 1024.0 if tname == "systolic" else 4096.0)["area_mm2"])
    assert bigger["area_mm2"].max() - m["area_mm2"].max() == pytest.approx(grown, rel=1e-3)
    logic_mw_per_mm2 = float(technology.resolve(t.space.encode(design)).leakage_mw_per_mm2)
    expect = (logic_mw_per_mm2 * (m["area_mm2"].max() - sram_area) + sram_leak) * m["latency_s"] * 1e9
    np.testing.assert_allclose(m["energy_leakage_pj"], expect, rtol=1e-4)
