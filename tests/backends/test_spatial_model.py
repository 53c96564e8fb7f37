"""The ``spatial`` template: loop-nest reuse analysis, masking of mappings that do not fit,
and the properties a mapper's choice must have (backends/spatial/).

The expected figures are worked out by hand in the comments from the rule of
``backends/spatial/reuse.py``'s module doc, not from the code's formulas.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.backends.common import Rows
from symbiote.backends.manager import get_template
from symbiote.backends.spatial import mapping, model, reuse
from symbiote.backends.spatial.mapping import ONE, Factors, Layers
from symbiote.backends.spatial.space import DATAFLOWS, MAPPER_EXPONENTS, MAPPERS, C, G, K, N, P, Q, R, S
from symbiote.frontend import load
from symbiote.ir.lower import lower


def _model(node, inputs, weights):
    g = helper.make_graph([node], "one", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, n) for n, w in weights.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    wl = lower(load(m))
    assert len(wl) == 1
    return wl


@functools.cache
def gemm(m, k, n):
    """One [m, k] @ [k, n] MatMul: P = m, C = k, K = n."""
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    return _model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                  {"w": np.zeros((k, n), np.float32)})


@functools.cache
def conv(c, k, hw, r):
    """One valid (unpadded) r x r convolution, c -> k channels on an hw x hw input."""
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[r, r])
    return _model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
                  {"w": np.zeros((k, c, r, r), np.float32)})


T = get_template("spatial")


def design(**knobs):
    return T.space.encode(T.space.default() | knobs)


def breakdown(wl, **knobs):
    return T.mappings(design(**knobs), wl)


def _f(x):
    return jnp.full((1, 1), float(x))


# ---- the reuse rule on a mapping worked by hand

def test_hand_worked_conv_access_counts():
    # A 3x3 valid convolution, C=2 -> K=4 channels, 4x4 outputs (6x6 inputs), stride 1: 1152 MACs.
    # Mapping (class "w": GLB and DRAM loops in the order G K C R S N P Q), outermost first:
    #   dram: P2  |  glb: R3 S3 P2  |  spatial: K4 (X) C2 (Y), 8 PEs  |  rf: Q4
    ly = Layers(tuple(jnp.full((1,), float(x)) for x in (1, 1, 4, 2, 4, 4, 3, 3)),
                *(jnp.ones((1,)) for _ in range(4)))
    rf = [ONE] * 8
    rf[Q] = _f(4)
    sp = [ONE] * 8
    sp[K], sp[C] = _f(4), _f(2)
    glb = [ONE] * 8
    glb[R], glb[S], glb[P] = _f(3), _f(3), _f(2)
    dram = [ONE] * 8
    dram[P] = _f(2)
    rem = [ONE] * 8
    rem[R], rem[S], rem[P] = _f(3), _f(3), _f(4)
    fx = Factors(tuple(rf), tuple(sp), tuple(glb), tuple(dram), tuple(rem), split=1, cls=mapping.CLASSES.index("w"))
    a = {k: float(np.asarray(v).squeeze()) for k, v in reuse.analyze(ly, fx)._asdict().items()}
    # cycles: rf Q4 x glb R3 S3 P2 x dram P2 = 144; 144 x 8 PEs = 1152 MACs (no padding)
    assert a["temporal"] == 144 and a["pes"] == 8
    # weights (relevant: K C R S): from the inside, the GLB loop P2 is irrelevant and innermost:
    # a PE's weight stays while it runs (stationary); S3 and R3 are relevant, and the DRAM loop
    # P2 above them evicts them: each PE's weight is refilled 3*3*2 = 18 times. The 8 PEs hold 8
    # distinct weights (K and C both relevant: no multicast): 8 * 18 = 144 GLB reads, every one
    # of the 72 weights twice. DRAM: above the GLB only P2, irrelevant: the GLB's weight tile
    # (all 72 weights) is read once.
    assert a["glb_reads_w"] == 144 and a["deliveries_w"] == 144 and a["dram_w"] == 72
    # inputs (relevant: C P Q R S, the window): every loop above the RF is relevant: 2*3*3*2 =
    # 36 fills of a PE's 4 inputs (one row of Q=4). The 4 PEs along X (K) need the same inputs:
    # a multicast, so the GLB sends C2 x 4 = 8 inputs per fill: 288 reads, delivered to 8 PEs x
    # 4 = 1152 RF writes (4x the reads). DRAM: per P2 iteration the GLB tile is C2 x (2 output
    # rows + 2 halo rows) x 6 columns = 48 inputs: 96 (the 2 halo rows are fetched twice).
    assert a["glb_reads_i"] == 288 and a["deliveries_i"] == 1152 and a["dram_i"] == 96
    # partial sums (relevant: K P Q): inside-out P2 (relevant) then S3, R3 (irrelevant, above a
    # relevant loop: they evict) and the DRAM P2: 2*3*3*2 = 36 drains of each PE's 4 psums:
    # 8 PEs x 4 x 36 = 1152 drains. The 2 PEs along Y (C) hold psums of the same outputs: they
    # are added on the way (spatial reduction: one forward each), so the GLB receives
    # K4 x Q4 x 36 = 576 psum writes; 64 outputs, so 576 - 64 = 512 are read back to go on
    # accumulating. DRAM: the GLB's tile of outputs (K4 x P2 x Q4 = 32) leaves once per P2
    # iteration: 64 = the outputs, no partial sum spills.
    assert a["drains"] == 1152 and a["forwards"] == 576 and a["psum_writes"] == 576
    assert a["outputs"] == 64 and a["psum_reads"] == 512
    assert a["dram_o_writes"] == 64 and a["dram_psum_reads"] == 0


def test_reuse_stationary_operand_is_not_refetched_by_inner_irrelevant_loops():
    # the same nest with the GLB order of class "i" (G N C P Q R S K) and K at the GLB level
    # instead of spatial: K4 innermost is irrelevant to the inputs, so each input tile serves the
    # four filters without a refill; weights are refilled at every K step
    ly = Layers(tuple(jnp.full((1,), float(x)) for x in (1, 1, 4, 2, 4, 4, 1, 1)), *(jnp.ones((1,)) for _ in range(4)))
    rf, sp, dram = [ONE] * 8, [ONE] * 8, [ONE] * 8
    glb = [ONE] * 8
    glb[K], glb[P], glb[Q], glb[C] = _f(4), _f(4), _f(4), _f(2)
    fx = Factors(tuple(rf), tuple(sp), tuple(glb), tuple(dram), tuple(glb), split=0, cls=mapping.CLASSES.index("i"))
    a = reuse.analyze(ly, fx)
    # inputs: loops above the (1-element) RF tile, inner-out: K4 irrelevant and innermost (reuse),
    # then Q4 P4 C2 relevant: 32 fills = the 32 inputs, each once
    assert float(np.asarray(a.glb_reads_i).squeeze()) == 32
    # weights: K4 relevant and innermost, then everything above evicts: 4 * 4 * 4 * 2 = 128
    assert float(np.asarray(a.glb_reads_w).squeeze()) == 128


@pytest.mark.parametrize("r, stride, rows", [
    (1, 2, 4),     # a 1x1 filter at stride 2 reads every other row of the 7 its 4 outputs span: 4
    (3, 2, 9),     # a 3x3 filter at stride 2: the taps overlap, the span (4-1)*2 + 3 = 9
    (2, 3, 8),     # a 2x2 filter at stride 3: 2 rows per output, 1 skipped between: 4*2 = 8 of 11
])
def test_strided_input_tile_counts_the_rows_the_taps_read(r, stride, rows):
    # the whole layer (C=2, 4x4 outputs, an r x r filter) as one GLB tile: DRAM sends it once
    ly = Layers(tuple(jnp.full((1,), float(x)) for x in (1, 1, 1, 2, 4, 4, r, r)),
                jnp.full((1,), float(stride)), jnp.full((1,), float(stride)), jnp.ones((1,)), jnp.ones((1,)))
    whole = tuple(_f(x) for x in (1, 1, 1, 2, 4, 4, r, r))
    fx = Factors((ONE,) * 8, (ONE,) * 8, whole, (ONE,) * 8, whole, split=0, cls=mapping.CLASSES.index("i"))
    a = reuse.analyze(ly, fx)
    assert float(np.asarray(a.dram_i).squeeze()) == 2 * rows * rows
    assert float(np.asarray(a.glb_tile_i).squeeze()) == 2 * rows * rows


# ---- masking

def test_tiny_global_buffer_masks_large_tiles_and_the_choice_fits():
    wl = conv(64, 64, 30, 3)
    big = breakdown(wl, glb_weight_kb=4096, glb_input_kb=4096, glb_output_kb=4096)
    small = breakdown(wl, glb_weight_kb=1, glb_input_kb=1, glb_output_kb=1)
    assert small["valid_candidates"][0] < big["valid_candidates"][0]
    assert small["feasible"][0] == 1 and np.isfinite(small["latency_cycles"][0])
    # the chosen GLB tiles (8-bit weights and inputs, 24-bit psums) fit their 1 KB buffers
    assert small["glb_tile_w"][0] * 8 <= 8192 and small["glb_tile_i"][0] * 8 <= 8192
    assert small["glb_tile_o"][0] * 24 <= 8192
    # ... which the big buffers' choice does not
    assert max(big["glb_tile_w"][0] * 8, big["glb_tile_i"][0] * 8, big["glb_tile_o"][0] * 24) > 8192
    # and it pays in DRAM traffic: smaller tiles are fetched more often
    assert small["dram_i"][0] + small["dram_w"][0] > big["dram_i"][0] + big["dram_w"][0]


def test_shared_buffer_pools_the_capacity():
    # 40 KB of weights (64*64*3*3 at 8 bits = 36 KB) fit neither 16 KB split buffer alone, but
    # tiles of the whole filter set fit the 48 KB pool
    wl = conv(64, 64, 30, 3)
    split = breakdown(wl, glb_weight_kb=16, glb_input_kb=16, glb_output_kb=16, glb_split="split")
    shared = breakdown(wl, glb_weight_kb=16, glb_input_kb=16, glb_output_kb=16, glb_split="shared")
    assert shared["valid_candidates"][0] >= split["valid_candidates"][0]
    need = shared["glb_tile_w"][0] * 8 + shared["glb_tile_i"][0] * 8 + shared["glb_tile_o"][0] * 24
    assert need <= 48 * 8192


def test_no_valid_mapping_is_infeasible_and_says_why():
    # a 1-byte partial-sum RF cannot hold one 24-bit accumulator: no candidate fits
    wl = gemm(64, 64, 64)
    m = T.cost(design(rf_psum_bytes=1), wl)
    assert np.isinf(float(m.total_latency_cycles)) and np.isinf(float(m.total_energy_pj))
    b = breakdown(wl, rf_psum_bytes=1)
    assert b["feasible"][0] == 0 and b["valid_candidates"][0] == 0
    assert "rf_psum_bytes" in b["reason"][0] and b["loop_nest"][0] == "infeasible"
    # the relaxed model stays finite (a penalty, so the gradient phase can move away)
    r = T.relaxed_cost(design(rf_psum_bytes=1), wl)
    assert np.isfinite(float(r.total_latency_cycles))


# ---- properties of the choice

def _min_dram_bytes(wl, **knobs):
    """The least DRAM traffic of any valid candidate of the (single) layer."""
    _, _, _, pairs = model.mac_rows(design(**knobs), wl, np.array([0]), design(**knobs)["dataflow"])
    cd = model.flatten(pairs)
    return float(np.min(np.where(np.asarray(cd.valid), np.asarray(cd.dram_bytes), np.inf)))


@pytest.mark.parametrize("wl", [gemm(256, 512, 256), conv(32, 64, 34, 3)], ids=["gemm", "conv"])
def test_bigger_register_files_never_increase_dram_traffic(wl):
    # the RF tiles are sized by the RFs (mapping's module doc): a bigger RF holds bigger tiles
    # (longer chunks, more channels per fill: fewer refills from the GLB, psums drained less
    # often) and makes more candidates valid. Bigger RF tiles also make bigger GLB tiles, so
    # this is a property of the mapping space's design rather than of its construction: the
    # least DRAM traffic must not grow from RFs of 16 elements up (below, a TPU-like PE of one
    # element each still maps, see the next test)
    last = np.inf
    for b in (16, 64, 256, 1024):
        got = _min_dram_bytes(wl, rf_weight_bytes=b, rf_input_bytes=b, rf_psum_bytes=4 * b,
                              glb_weight_kb=8, glb_input_kb=8, glb_output_kb=8)
        assert got <= last * (1 + 1e-6), b
        last = got


def test_register_files_of_one_element_still_map_every_layer():
    # a TPU-like PE: one weight, one input, one accumulator-wide partial sum
    for wl in (gemm(256, 512, 256), conv(32, 64, 34, 3), conv(32, 64, 34, 1)):
        got = _min_dram_bytes(wl, rf_weight_bytes=1, rf_input_bytes=1, rf_psum_bytes=4)
        assert np.isfinite(got) and got > 0


def test_bigger_global_buffer_never_increases_dram_traffic():
    wl = conv(32, 64, 34, 3)
    last = np.inf
    for kb in (1, 4, 16, 64, 256):
        got = _min_dram_bytes(wl, glb_weight_kb=kb, glb_input_kb=kb, glb_output_kb=kb)
        assert got <= last * (1 + 1e-6), kb
        last = got


def test_multicast_divides_glb_reads_by_the_irrelevant_spatial_dims():
    # weight-stationary GEMM on 16 x 16 PEs: K (filters) on X is irrelevant to the inputs, so
    # every input read from the GLB feeds the 16 PEs of a row; C on Y is relevant to them
    wl = gemm(64, 256, 256)
    b = breakdown(wl, dataflow="ws")
    assert b["sp_K"][0] == 16 and b["sp_C"][0] == 16
    assert b["deliveries_i"][0] == pytest.approx(16 * b["glb_reads_i"][0])
    # weights: K and C both relevant, one read per PE
    assert b["deliveries_w"][0] == pytest.approx(b["glb_reads_w"][0])


def test_weight_vs_output_stationary_on_a_gemm():
    wl = gemm(256, 256, 256)
    ws = breakdown(wl, dataflow="ws")
    os_ = breakdown(wl, dataflow="os")
    # ws unrolls the reduction (C) over Y: partial sums are added PE to PE on their way out, one
    # forward per PE but the last of each column; os unrolls only output dims: each output
    # accumulates in one PE, no forwarding. (Which spends less NoC energy in all is the mapping
    # space's affair, not a property: since the RF tiles fill the RFs, ws's PEs accumulate over
    # a chunk of C in place and drain rarely, and os's chosen mapping re-reads inputs instead.)
    assert ws["forwards"][0] > 0
    assert ws["forwards"][0] == pytest.approx(ws["drains"][0] * (1 - 1 / ws["sp_C"][0]))
    assert os_["forwards"][0] == 0 and os_["sp_C"][0] == 1
    # ws's PEs hold distinct weights (K and C both unrolled): no weight multicast; os unrolls P
    # on Y, irrelevant to weights: each weight read feeds a whole column
    assert ws["deliveries_w"][0] == pytest.approx(ws["glb_reads_w"][0])
    assert os_["deliveries_w"][0] == pytest.approx(os_["sp_P"][0] * os_["glb_reads_w"][0])
    # inputs: K on X is irrelevant to them in both: multicast along X
    for b in (ws, os_):
        assert b["deliveries_i"][0] == pytest.approx(b["sp_K"][0] * b["glb_reads_i"][0])
    # both keep all 256 PEs busy on this GEMM
    assert ws["pes"][0] == 256 and os_["pes"][0] == 256


def test_large_buffers_move_each_operand_across_dram_once():
    # everything fits the GLB: the chosen mapping's DRAM traffic is the compulsory traffic
    wl = gemm(128, 256, 128)
    b = breakdown(wl, glb_weight_kb=1024, glb_input_kb=1024, glb_output_kb=1024)
    assert b["dram_w"][0] == 256 * 128 and b["dram_i"][0] == 128 * 256 and b["dram_psum_reads"][0] == 0


def test_soft_minimum_tends_to_the_exact_choice():
    wl = lower(load("zoo:tiny_cnn"))
    hw = design()
    exact = float(T.cost(hw, wl).edp)
    gaps = [abs(float(model.metrics(hw, wl, hw["dataflow"], temperature=t).edp) / exact - 1.0)
            for t in (1.0, 0.1, 0.01, 0.001)]
    assert gaps[0] > gaps[-1]
    assert all(b <= a + 1e-6 for a, b in zip(gaps, gaps[1:], strict=False))
    assert gaps[-1] < 1e-3


def test_candidate_count_and_dataflow_families():
    assert mapping.N_CANDIDATES >= 64
    # a fixed family keeps its unrolling: ws puts K on X and C on Y on every layer
    wl = lower(load("zoo:tiny_cnn"))
    b = breakdown(wl, dataflow="ws")
    mac = b["is_mac"] > 0
    names = [n for n, m in zip(b["loop_nest"], mac, strict=True) if m]
    assert all("(ws" in n for n in names)
    assert G == 0 and N == 1  # the dims order the breakdown's columns use (space.DIMS)


def test_row_class_holds_the_filter_rows_that_fit():
    # Eyeriss's 1-D convolution (class row): a filter row S against a row of outputs Q, and as
    # many filter rows R as the weight and input RFs hold beside it, then a slice of channels
    ly = Layers(tuple(jnp.full((1,), float(x)) for x in (1, 1, 64, 64, 14, 14, 3, 3)), *(jnp.ones((1,)) for _ in range(4)))
    rem = tuple(_f(x) for x in (1, 1, 64, 64, 14, 14, 3, 3))

    def tile(w_cap, i_cap, o_cap, r_left=3, q_left=14):
        left = rem[:Q] + (_f(q_left), _f(r_left)) + rem[S:]
        f = mapping.rf_factors(left, "row", ly, (_f(w_cap), _f(i_cap), _f(o_cap)))
        d = {n: float(np.asarray(x).squeeze()) for n, x in zip("GNKCPQRS", f, strict=True)}
        w = d["C"] * d["R"] * d["S"]
        i = d["C"] * (d["P"] + d["R"] - 1) * (d["Q"] + d["S"] - 1)     # stride 1
        return d, w <= w_cap and i <= i_cap and d["Q"] * d["P"] <= o_cap
    # 64 weights and inputs, 8 psums: S 3, Q 7 (14 in two), the whole 3 x 3 window, 2 channels
    d, fits = tile(64, 64, 8)
    assert (d["S"], d["Q"], d["R"], d["C"]) == (3, 7, 3, 2) and fits
    # an input RF of 16: one input row of 9 fits, not two: one filter row
    d, fits = tile(64, 16, 8)
    assert (d["S"], d["Q"], d["R"]) == (3, 7, 1) and fits
    # the unrolling took R (rs): no filter row is left for the RF
    d, fits = tile(64, 64, 8, r_left=1)
    assert d["R"] == 1 and fits
    # the unrolling took Q (qc): the row runs down the output rows, P 7 (14 in two) with the
    # whole window, 3 x 9 inputs per channel: 2 channels
    d, fits = tile(64, 64, 8, q_left=1)
    assert (d["S"], d["Q"], d["P"], d["R"], d["C"]) == (3, 1, 7, 3, 2) and fits


def test_free_family_offers_q_by_c():
    # free's slots: ws, qc (Q on X, C on Y; X filled with K where Q is smaller), os K/P, rs
    free = DATAFLOWS.index("free")
    assert mapping.UNROLL_NAMES[free] == ("ws", "qc", "os_kp", "rs")
    wl = conv(64, 32, 9, 3)                   # 7 x 7 outputs, C 64, K 32
    ly = mapping.layers(wl, np.array([0]))
    sp = mapping.spatial(ly, mapping.unroll_table(free), 16.0, 16.0)
    qc = {n: float(np.asarray(x).reshape(-1, 4)[0, 1]) if not isinstance(x, float) else x
          for n, x in zip("GNKCPQRS", sp, strict=True)}
    assert (qc["Q"], qc["K"], qc["C"], qc["P"]) == (7, 2, 16, 1)


@functools.cache
def depthwise(c, hw, r):
    """One valid r x r depthwise convolution (group = c: G = c, K = C = 1 per group)."""
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="dw", kernel_shape=[r, r], group=c)
    return _model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
                  {"w": np.zeros((c, 1, r, r), np.float32)})


def test_kc_family_unrolls_only_k_and_c():
    # kc: K on X and C on Y with no fill dims (a TPU-like array). A depthwise layer has K = C = 1
    # per group: kc runs it on one PE, one group at a time; ws fills X with the groups (G) and
    # Y with the filter rows (R)
    wl = depthwise(32, 10, 3)
    kc = breakdown(wl, dataflow="kc")
    ws = breakdown(wl, dataflow="ws")
    assert kc["pes"][0] == 1 and "(kc," in kc["loop_nest"][0]
    assert all(kc[f"sp_{d}"][0] == 1 for d in ("G", "N", "K", "C", "P", "Q", "R", "S"))
    assert ws["sp_G"][0] == 16 and ws["sp_R"][0] == 3 and ws["pes"][0] == 48
    assert kc["compute_cycles"][0] == 32 * 8 * 8 * 3 * 3          # every MAC in turn
    # on a dense GEMM with K and C at least the array's sides, kc and ws agree (no PE to fill)
    g = gemm(64, 256, 256)
    a, b = breakdown(g, dataflow="kc"), breakdown(g, dataflow="ws")
    assert (a["sp_K"][0], a["sp_C"][0], a["pes"][0]) == (16, 16, 256)
    for f in ("compute_cycles", "latency_cycles", "e_mac", "e_sram", "e_dram", "e_noc"):
        assert a[f][0] == pytest.approx(b[f][0], rel=1e-6), f


# ---- the mapper's objective (space.MAPPERS)

#: 8 KB global buffers: on tiny_cnn the least-energy, least-latency and least-EDP mappings differ
SMALL_GLB = {"glb_weight_kb": 8, "glb_input_kb": 8, "glb_output_kb": 8}


def _chosen(wl, **knobs):
    """Per MAC layer, the chosen mapping's (energy, latency, candidate index)."""
    b = breakdown(wl, **knobs)
    mac = b["is_mac"] > 0
    return (b["e_mac"] + b["e_sram"] + b["e_dram"] + b["e_noc"])[mac], b["latency_cycles"][mac], \
        b["candidate"][mac].astype(int)


def test_energy_and_latency_mappers_never_lose_to_edp_on_their_figure():
    # with exponent a < 1 on the other figure, an energy choice n of more energy than the EDP
    # choice e would need E_n L_n^a <= E_e L_e^a and E_e L_e <= E_n L_n, i.e. with r = E_e / E_n < 1,
    # r <= L_n / L_e <= r^(1/a) < r: impossible (the model's first-order L^a keeps this for
    # a log(L) below 1); and likewise for latency
    wl = lower(load("zoo:tiny_cnn"))
    slow = {**SMALL_GLB, "dram_gbps": 4.0}     # DRAM-bound: the mapping's DRAM traffic sets the latency
    e_edp, l_edp, _ = _chosen(wl, **slow)
    e_en, l_en, _ = _chosen(wl, mapper="energy", **slow)
    e_lat, l_lat, _ = _chosen(wl, mapper="latency", **slow)
    assert np.all(e_en <= e_edp * (1 + 1e-6)) and np.any(e_en < e_edp * (1 - 1e-2))
    assert np.all(l_lat <= l_edp * (1 + 1e-6)) and np.any(l_lat < l_edp * (1 - 1e-2))
    # ... and neither beats the EDP choice on EDP: what one figure gains the other pays
    assert np.all(e_en * l_en >= e_edp * l_edp * (1 - 1e-6))
    assert np.all(e_lat * l_lat >= e_edp * l_edp * (1 - 1e-6))
    # a design without the knob is costed as edp (its default)
    hw = design(**SMALL_GLB)
    del hw["mapper"]
    assert float(T.cost(hw, wl).edp) == float(T.cost(design(**SMALL_GLB), wl).edp)


@pytest.mark.parametrize("mapper", ["energy", "latency"])
def test_mapper_picks_the_valid_candidate_of_least_energy_or_latency(mapper):
    # recomputed from every candidate's figures: the chosen one has the least of the mapper's
    # figure among the valid candidates, but for the tie-break: the other figure x, at exponent
    # a (taken as 1 + a log(x), log within 0.06: model's module doc), may trade at most a factor
    # (1 + a log(x_max)) / (1 + a (log(x_min) - 0.06)) of it over the valid candidates; where no
    # candidate lies in that band the choice is the least, and among the candidates of that
    # least, one of the least other figure
    wl = lower(load("zoo:tiny_cnn"))
    hw = design(mapper=mapper, **SMALL_GLB)
    cd = model.flatten(model.mac_rows(hw, wl, Rows(wl).mac, hw["dataflow"])[3])
    valid = np.asarray(cd.valid)
    energy = np.asarray(cd.e_mac + cd.e_sram + cd.e_dram + cd.e_noc, np.float64)
    latency = np.asarray(cd.latency, np.float64)
    own, other = (energy, latency) if mapper == "energy" else (latency, energy)
    own, other = np.where(valid, own, np.inf), np.where(valid, other, np.nan)
    a = MAPPER_EXPONENTS[MAPPERS.index(mapper)][0 if mapper == "energy" else 1]
    e, lat, idx = _chosen(wl, mapper=mapper, **SMALL_GLB)
    rows = np.arange(len(idx))
    got = e if mapper == "energy" else lat
    np.testing.assert_allclose(own[rows, idx], got, rtol=1e-6)
    least = own.min(-1)
    band = least * (1 + a * np.log(np.nanmax(other, -1))) / (1 + a * (np.log(np.nanmin(other, -1)) - 0.06))
    assert np.all(got >= least * (1 - 1e-6)) and np.all(got <= band * (1 + 1e-6))
    clear = ~np.any((own > least[:, None]) & (own <= band[:, None] * (1 + 1e-6)), axis=-1)
    assert clear.any()
    np.testing.assert_allclose(got[clear], least[clear], rtol=1e-6)
    tied = own <= least[:, None] * (1 + 1e-6)
    best_other = np.where(tied, other, np.inf).min(-1)
    np.testing.assert_allclose(other[rows, idx][clear], best_other[clear], rtol=1e-6)


@pytest.mark.parametrize("mapper", [*MAPPERS, "logits"])
def test_relaxed_cost_is_finite_and_differentiable_with_each_mapper(mapper):
    wl = lower(load("zoo:tiny_cnn"))
    hw = design() if mapper == "logits" else design(mapper=mapper)
    if mapper == "logits":
        hw["mapper"] = jnp.array([0.5, -0.2, 0.1])  # a relaxed choice: the exponents mixed

    def objective(h):
        m = T.relaxed_cost(h, wl)
        return jnp.log(m.total_latency_s) + jnp.log(m.total_energy_pj)

    value, grads = jax.value_and_grad(objective)(hw)
    assert np.isfinite(float(value))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads.values())
    assert float(grads["clock_ghz"]) != 0.0 and float(grads["array_x"]) != 0.0
    if mapper == "logits":
        assert np.any(np.asarray(grads["mapper"]) != 0.0)
