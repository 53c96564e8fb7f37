"""ir.lower: layer table contents, fusion annotations, precision, width maps and speed."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.backends.manager import registry
from symbiote.ir.channel_groups import ChannelGroup, ChannelGroups
from symbiote.ir.graph import Graph
from symbiote.ir.lower import lower
from symbiote.ir.workload import FREE, MAC, VECTOR


def _net(meta_relu=None, conv_meta=None):
    g = Graph("net")
    x = g.add_input("x", (1, 3, 8, 8))
    w1 = g.add_const("w1", np.zeros((6, 3, 3, 3), np.float32))
    c1 = g.add_node("conv", "Conv", [x, w1], ["c1"], name="conv1", attrs={"pads": [1, 1, 1, 1], "strides": [1, 1]}, meta=conv_meta)
    c1.output.shape = (1, 6, 8, 8)
    r = g.add_node("activation", "Relu", [c1.output], ["r1"], name="relu1", meta=meta_relu)
    r.output.shape = (1, 6, 8, 8)
    wd = g.add_const("wd", np.zeros((6, 1, 3, 3), np.float32))
    d = g.add_node("conv", "Conv", [r.output, wd], ["d1"], name="dw", attrs={"group": 6, "pads": [1, 1, 1, 1]})
    d.output.shape = (1, 6, 8, 8)
    f = g.add_node("reshape", "Flatten", [d.output], ["f"], name="flat", attrs={"axis": 1})
    f.output.shape = (1, 384)
    w2 = g.add_const("w2", np.zeros((10, 384), np.float32))
    fc = g.add_node("gemm", "Gemm", [f.output, w2], ["y"], name="fc", attrs={"transB": 1})
    fc.output.shape = (1, 10)
    g.outputs.append(fc.output)
    return g


def _groups():
    axes = {("c1", 1): ((0, 1),), ("r1", 1): ((0, 1),), ("d1", 1): ((0, 1),), ("f", 1): ((0, 64),)}
    return ChannelGroups((ChannelGroup(0, "conv1.out", 6, True),), axes)


def test_rows_and_dims():
    wl = lower(_net())
    assert wl.names == ("conv1", "relu1", "dw", "flat", "fc")
    assert list(np.asarray(wl.kind)) == [MAC, VECTOR, MAC, FREE, MAC]   # a Flatten is a view
    c = wl.to_numpy()
    assert (c["k"][0], c["c"][0], c["p"][0], c["q"][0], c["r"][0], c["s"][0]) == (6, 3, 8, 8, 3, 3)
    assert c["groups"][2] == 6 and c["c"][2] == 6
    assert (c["p"][4], c["c"][4], c["k"][4]) == (1, 384, 10)
    np.testing.assert_allclose(np.asarray(wl.macs), [6 * 3 * 64 * 9, 0, 6 * 64 * 9, 0, 3840])
    assert c["act_bits"][0] == 8 and lower(_net(), default_bits=None).to_numpy()["act_bits"][0] == 32


def test_fusion_annotations():
    wl = lower(_net(meta_relu={"fused_into": "conv1", "fusion_group": 1}, conv_meta={"fusion_group": 1}))
    c = wl.to_numpy()
    assert c["kind"][1] == FREE and c["output_on_chip"][0] == 1 and c["input_on_chip"][1] == 1
    t = registry().get("systolic")
    hw = t.space.encode({})
    fused, plain = t.cost(hw, wl), t.cost(hw, lower(_net()))
    assert float(fused.latency_cycles[1]) == 0.0 and float(plain.latency_cycles[1]) > 0
    assert float(fused.energy_dram_pj[0]) < float(plain.energy_dram_pj[0])


def test_with_widths_reshapes_and_is_differentiable():
    wl = lower(_net(), _groups())
    assert wl.widths0.tolist() == [6.0] and wl.free.tolist() == [True]
    w2 = wl.with_widths(jnp.array([12.0]))
    c = w2.to_numpy()
    assert c["k"][0] == 12 and c["c"][2] == 12 and c["groups"][2] == 12 and c["c"][4] == 768
    assert c["out_elems"][1] == 12 * 64 and c["weight_elems"][4] == 7680
    np.testing.assert_allclose(float(w2.macs[4]), 7680)
    same = wl.with_widths(wl.widths0).to_numpy()
    for k, v in wl.to_numpy().items():
        np.testing.assert_allclose(same[k], v, err_msg=k)
    t = registry().get("systolic")
    hw = t.space.encode({})
    gw = jax.grad(lambda w: t.relaxed_cost(hw, wl.with_widths(w)).total_energy_pj)(wl.widths0)
    assert np.isfinite(gw).all() and float(gw[0]) > 0


def test_with_bits_changes_energy():
    wl = lower(_net())
    t = registry().get("systolic")
    hw = t.space.encode({})
    e8 = float(t.cost(hw, wl).total_energy_pj)
    e16 = float(t.cost(hw, wl.with_bits(16.0, 16.0)).total_energy_pj)
    assert e16 > e8


def test_lower_is_fast_on_bert_base():
    from symbiote.frontend import load
    from symbiote.frontend.zoo import names

    name = "bert_base" if "bert_base" in names() else "bert"
    g = load(f"zoo:{name}")
    lower(g)
    t0 = time.perf_counter()
    wl = lower(g)
    assert time.perf_counter() - t0 < 1.0
    assert len(wl) == len(g.nodes)
