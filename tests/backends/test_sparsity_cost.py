"""Weight sparsity in the cost models (the rules in each template's module doc).

A 16x64 @ 64x16 GEMM at 8 bits (1024 weights, everything fits on chip): 2:4 rows on a
``sparse_24 = yes`` design run half the reduction and store ``0.5 * (8 + 2) = 5`` bits per
weight; on ``no`` only MAC energy is gated; unstructured sparsity only gates MAC energy.
The expected numbers are worked out by hand below from the documented rules.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.backends import memories, tables, technology
from symbiote.backends.manager import get_template, registry
from symbiote.frontend import load
from symbiote.ir.lower import lower
from symbiote.passes import parse_pipeline

M, K, N = 16, 64, 16          # activations [M, K] @ weights [K, N]
W_ELEMS = K * N               # 1024 weights, 1 byte each dense at 8 bits
A_BYTES, O_BYTES = M * K, M * N


def _gemm():
    w = np.random.default_rng(0).standard_normal((K, N)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "gemm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return load(m)


@functools.cache
def workloads():
    g = _gemm()
    out = {"dense": lower(g),
           "24": lower(parse_pipeline('sparsify(pattern="2:4")')(g).graph),
           "unstructured": lower(parse_pipeline("sparsify(0.5)")(g).graph)}
    assert len(out["dense"]) == 1
    assert out["24"].to_numpy()["sparsity_24"].tolist() == [1.0] and out["24"].to_numpy()["sparsity"].tolist() == [0.5]
    assert out["unstructured"].to_numpy()["sparsity_24"].tolist() == [0.0]
    return out


def _metrics(tname, wl_key, **knobs):
    """On an int8 datapath: the rows' 8 bits are the datapath's (roofline's default is fp16)."""
    t = get_template(tname)
    return t.evaluate(t.space.default() | {"datapath": "int8"} | knobs, workloads()[wl_key]).to_numpy()


def _dram_bytes(m):
    return m["energy_dram_pj"] / (8 * float(tables.dram_pj_per_bit()))


# ---------------------------------------------------------------- systolic, 8x8 array
# ws: Sr = window = K = 64, Sc = filters = N = 16, T = px = M = 16; per fold 2*8 + 8 + T - 2
#   dense: ceil(64/8) * ceil(16/8) = 16 folds x 38 = 608; 2:4 halves the window: 4 * 2 x 38 = 304
# os: Sr = px = 16, Sc = 16, T = window; per fold 8 + 8 + T - 2
#   dense: 2 * 2 x 78 = 312; 2:4: 2 * 2 x 46 = 184
# is: Sr = window, Sc = px = 16, T = filters = 16: like ws, 608 -> 304
SYSTOLIC_CYCLES = {"ws": (608, 304), "os": (312, 184), "is": (608, 304)}
ARRAY = {"rows": 8, "cols": 8}


@pytest.mark.parametrize("df", ["ws", "os", "is"])
def test_systolic_24_on_a_sparse_design(df):
    dense = _metrics("systolic", "dense", dataflow=df, sparse_24="yes", **ARRAY)
    sparse = _metrics("systolic", "24", dataflow=df, sparse_24="yes", **ARRAY)
    want_dense, want_sparse = SYSTOLIC_CYCLES[df]
    assert dense["compute_cycles"][0] == want_dense
    assert sparse["compute_cycles"][0] == want_sparse
    # every operand fits its SRAM: compulsory traffic, weights at 5 of 8 bits
    assert _dram_bytes(dense)[0] == pytest.approx(A_BYTES + W_ELEMS + O_BYTES, rel=1e-6)
    assert _dram_bytes(sparse)[0] == pytest.approx(A_BYTES + W_ELEMS * 5 / 8 + O_BYTES, rel=1e-6)
    assert sparse["energy_mac_pj"][0] == pytest.approx(0.5 * dense["energy_mac_pj"][0], rel=1e-6)


def test_systolic_24_filter_sram_reads_are_compressed():
    # ws: the stationary filter is read once per GEMM: Sr * Sc = 64 * 16 = 1024 weights at
    # 8 bits dense, 5 bits compressed; ifmap and ofmap reads are those of the dense mapping
    dense = _metrics("systolic", "dense", dataflow="ws", sparse_24="yes", **ARRAY)
    sparse = _metrics("systolic", "24", dataflow="ws", sparse_24="yes", **ARRAY)
    e_f = float(memories.sram_pj_per_bit(256.0, technology.node_weights({})))  # default filter SRAM: 256 KB, 45 nm
    saved = dense["energy_sram_pj"][0] - sparse["energy_sram_pj"][0]
    assert saved == pytest.approx(1024 * (8 - 5) * e_f, rel=1e-5)


@pytest.mark.parametrize("df", ["ws", "os", "is"])
def test_systolic_24_on_a_dense_design_only_gates_energy(df):
    dense = _metrics("systolic", "dense", dataflow=df, **ARRAY)
    sparse = _metrics("systolic", "24", dataflow=df, **ARRAY)
    assert sparse["energy_mac_pj"][0] == pytest.approx(0.5 * dense["energy_mac_pj"][0], rel=1e-6)
    for k, v in dense.items():
        if k not in ("energy_mac_pj",):
            np.testing.assert_array_equal(sparse[k], v, err_msg=k)


@pytest.mark.parametrize("design", ["no", "yes"])
def test_systolic_unstructured_only_gates_energy(design):
    dense = _metrics("systolic", "dense", sparse_24=design, **ARRAY)
    sparse = _metrics("systolic", "unstructured", sparse_24=design, **ARRAY)
    assert sparse["energy_mac_pj"][0] == pytest.approx(0.5 * dense["energy_mac_pj"][0], rel=1e-6)
    for k in ("compute_cycles", "latency_cycles", "energy_dram_pj", "energy_sram_pj", "energy_noc_pj"):
        np.testing.assert_array_equal(sparse[k], dense[k], err_msg=k)


def test_systolic_sparse_design_area():
    no = _metrics("systolic", "dense", sparse_24="no", **ARRAY)
    yes = _metrics("systolic", "dense", sparse_24="yes", **ARRAY)
    # +10% of the 64 PEs' area (8-bit weights and activations)
    pe = float(tables.pe_area_mm2(8.0, 8.0))
    assert float(yes["area_mm2"] - no["area_mm2"]) == pytest.approx(0.10 * 64 * pe, rel=1e-5)
    # a dense layer costs the same cycles and traffic on either design
    for k in ("compute_cycles", "energy_dram_pj", "energy_sram_pj", "energy_mac_pj"):
        np.testing.assert_array_equal(yes[k], no[k], err_msg=k)


# ---------------------------------------------------------------- roofline (A100 defaults)
# 8 bits: rate = 1024 * 16/8 = 2048 MAC/cycle; 1 tile of 128x128, 1 wave;
# compute = ceil(K * 128 * 128 / 2048): K = 64 -> 512, halved -> 256.
# cache bits = tiles * K * (tile_m * 8 + tile_n * wbits) + out bytes * 8:
#   dense 64 * (1024 + 1024) + 2048 = 133120, 2:4 64 * (1024 + 640) + 2048 = 108544
def test_roofline_24_on_a_sparse_design():
    dense = _metrics("roofline", "dense", sparse_24="yes")
    sparse = _metrics("roofline", "24", sparse_24="yes")
    assert dense["compute_cycles"][0] == 512
    assert sparse["compute_cycles"][0] == 256
    assert _dram_bytes(dense)[0] == pytest.approx(A_BYTES + W_ELEMS + O_BYTES, rel=1e-6)
    assert _dram_bytes(sparse)[0] == pytest.approx(A_BYTES + W_ELEMS * 5 / 8 + O_BYTES, rel=1e-6)
    assert sparse["energy_sram_pj"][0] / dense["energy_sram_pj"][0] == pytest.approx(108544 / 133120, rel=1e-6)
    assert sparse["energy_mac_pj"][0] == pytest.approx(0.5 * dense["energy_mac_pj"][0], rel=1e-6)


def test_roofline_24_on_a_dense_design_only_gates_energy():
    dense = _metrics("roofline", "dense")
    sparse = _metrics("roofline", "24")
    assert sparse["energy_mac_pj"][0] == pytest.approx(0.5 * dense["energy_mac_pj"][0], rel=1e-6)
    for k, v in dense.items():
        if k != "energy_mac_pj":
            np.testing.assert_array_equal(sparse[k], v, err_msg=k)


@pytest.mark.parametrize("design", ["no", "yes"])
def test_roofline_unstructured_only_gates_energy(design):
    dense = _metrics("roofline", "dense", sparse_24=design)
    sparse = _metrics("roofline", "unstructured", sparse_24=design)
    assert sparse["energy_mac_pj"][0] == pytest.approx(0.5 * dense["energy_mac_pj"][0], rel=1e-6)
    for k in ("compute_cycles", "latency_cycles", "energy_dram_pj", "energy_sram_pj"):
        np.testing.assert_array_equal(sparse[k], dense[k], err_msg=k)


def test_roofline_sparse_design_area():
    no = _metrics("roofline", "dense", sparse_24="no")
    yes = _metrics("roofline", "dense", sparse_24="yes")
    pe = float(tables.pe_area_mm2(8.0, 8.0))                 # an int8 MAC unit (the datapath of _metrics)
    assert float(yes["area_mm2"] - no["area_mm2"]) == pytest.approx(0.10 * 108 * 1024 * pe, rel=1e-5)


# ---------------------------------------------------------------- conformance over the knob
@functools.cache
def sparse_zoo(name):
    g = load(f"zoo:{name}")
    return lower(g), lower(parse_pipeline('sparsify(pattern="2:4")')(g).graph)


@pytest.mark.parametrize("tname", ["systolic", "roofline"])
@pytest.mark.parametrize("model", ["tiny_cnn", "resnet18", "bert"])
def test_sparse_design_on_24_models(tname, model):
    t = registry().get(tname)
    dense, sparse = sparse_zoo(model)
    assert float(jnp.sum(sparse.sparsity_24)) > 0
    yes = t.cost(t.space.encode(t.space.default() | {"sparse_24": "yes"}), sparse)
    no = t.cost(t.space.encode(t.space.default()), sparse)
    for k, v in yes.to_numpy().items():
        assert np.all(np.isfinite(v)), (k, model)
    assert np.all(np.asarray(yes.latency_cycles)[np.asarray(sparse.kind) != 3] > 0)
    is24 = np.asarray(sparse.sparsity_24) == 1
    assert np.all(np.asarray(yes.compute_cycles)[is24] < np.asarray(no.compute_cycles)[is24])
    assert np.all(np.asarray(yes.compute_cycles)[~is24] == np.asarray(no.compute_cycles)[~is24])
    assert float(yes.total_latency_cycles) <= float(no.total_latency_cycles)
    assert float(yes.area_mm2) > float(no.area_mm2)
    # no sparse rows: the knob changes nothing but the area (and leakage)
    d_yes = t.cost(t.space.encode(t.space.default() | {"sparse_24": "yes"}), dense)
    d_no = t.cost(t.space.encode(t.space.default()), dense)
    np.testing.assert_array_equal(np.asarray(d_yes.latency_cycles), np.asarray(d_no.latency_cycles))


@pytest.mark.parametrize("tname", ["systolic", "roofline"])
def test_jit_vmap_and_relaxed_over_the_knob(tname):
    t = registry().get(tname)
    _, wl = sparse_zoo("tiny_cnn")
    hws = t.space.sample(jax.random.key(3), 8)
    hws["sparse_24"] = jnp.asarray([0.0, 1.0] * 4)
    batched = jax.jit(jax.vmap(t.cost, in_axes=(0, None)))(hws, wl)
    for i in range(8):
        one = t.cost({k: v[i] for k, v in hws.items()}, wl)
        np.testing.assert_allclose(np.asarray(batched.latency_cycles[i]), np.asarray(one.latency_cycles), rtol=1e-5)
        np.testing.assert_allclose(float(batched.area_mm2[i]), float(one.area_mm2), rtol=1e-5)
    # relaxed: logits over ("no", "yes") interpolate between the two designs, with gradients
    hw = t.space.encode(t.space.default())
    exact = {c: t.cost(t.space.encode(t.space.default() | {"sparse_24": c}), wl) for c in ("no", "yes")}
    for c, logits in (("no", [20.0, -20.0]), ("yes", [-20.0, 20.0])):
        r = t.relaxed_cost(hw | {"sparse_24": jnp.asarray(logits)}, wl)
        assert float(r.area_mm2) == pytest.approx(float(exact[c].area_mm2), rel=1e-5)
        assert 0.5 < float(r.total_latency_cycles / exact[c].total_latency_cycles) < 2.0

    def objective(logits):
        m = t.relaxed_cost(hw | {"sparse_24": logits}, wl)
        return jnp.log(m.total_latency_s) + jnp.log(m.area_mm2)

    g = jax.grad(objective)(jnp.zeros(2))
    assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).sum()) > 0
    # a legal design with the knob decodes and validates
    assert t.space.decode(t.space.legalize({**hw, "sparse_24": jnp.asarray([0.0, 3.0])}))["sparse_24"] == "yes"
