"""Einsum and opset-23 Attention: exact shapes (vs onnxruntime), MACs (vs hand counts),
and lowering to MAC rows whose total equals ir.analysis."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from symbiote.errors import ShapeError
from symbiote.frontend import load
from symbiote.ir import ops
from symbiote.ir.analysis import graph_stats
from symbiote.ir.lower import lower
from symbiote.ir.workload import MAC, VECTOR

F = TensorProto.FLOAT


def _model(op, in_shapes, attrs, n_out=1, consts=None, opset=23, names=None):
    names = names or [f"x{i}" for i in range(len(in_shapes))]
    consts = consts or {}
    inputs = [helper.make_tensor_value_info(n, F, s) for n, s in zip(names, in_shapes) if n and n not in consts]
    inits = [helper.make_tensor(n, F, a.shape, a.reshape(-1)) for n, a in consts.items()]
    outs = [f"y{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, name="n0", **attrs)
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info(o, F, None) for o in outs],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _ort_shapes(model, in_shapes, names=None, consts=None):
    names = names or [f"x{i}" for i in range(len(in_shapes))]
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in zip(names, in_shapes) if n and n not in (consts or {})}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [tuple(o.shape) for o in sess.run(None, feeds)]


def _check_lowering(g, expected_macs):
    stats = graph_stats(g)
    assert stats.macs == expected_macs
    assert not stats.opaque
    wl = lower(g)
    kinds = np.asarray(wl.kind)
    assert float(np.asarray(wl.macs).sum()) == pytest.approx(expected_macs, rel=1e-6)
    assert all(kinds[i] == MAC for i, m in enumerate(np.asarray(wl.macs)) if m > 0)
    return wl


EINSUMS = [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], 2 * 3 * 4 * 5),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 8), (2, 3, 7, 8)], 2 * 3 * 5 * 7 * 8),
    ("...ij,jk->...ik", [(2, 6, 3, 4), (4, 5)], 2 * 6 * 3 * 4 * 5),
    ("ij,jk", [(3, 4), (4, 5)], 3 * 4 * 5),                              # implicit output "ik"
    ("bsd,df->bsf", [(2, 7, 16), (16, 32)], 2 * 7 * 16 * 32),
    ("ij->ji", [(3, 4)], 0),
    # three operands, left to right: (ij,jk -> ik) = 2*3*4, then (ik,kl -> il) = 2*4*5
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], 2 * 3 * 4 + 2 * 4 * 5),
]


@pytest.mark.parametrize("eq,shapes,macs", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum_shape_macs_and_lowering(eq, shapes, macs):
    model = _model("Einsum", shapes, {"equation": eq}, opset=17)
    g = load(model)
    node = g.nodes[0]
    assert node.op == ops.MATMUL
    assert node.output.shape == _ort_shapes(model, shapes)[0]
    wl = _check_lowering(g, macs)
    if len(shapes) == 2:
        assert len(wl) == 1 and int(wl.kind[0]) == MAC
    if len(shapes) == 3:
        assert wl.names == ("n0/step0", "n0/step1")


def test_einsum_with_weight_operand_first_is_a_gemm_on_the_weight():
    w = np.ones((16, 32), np.float32)
    model = _model("Einsum", [(16, 32), (2, 7, 16)], {"equation": "df,bsd->bsf"}, consts={"x0": w}, opset=17)
    g = load(model)
    assert g.nodes[0].output.shape == (2, 7, 32)
    c = _check_lowering(g, 2 * 7 * 16 * 32).to_numpy()
    assert (c["p"][0], c["c"][0], c["k"][0], c["w_repeat"][0], c["weight_elems"][0]) == (14, 16, 32, 1, 512)
    assert c["in_elems"][0] == 2 * 7 * 16


def test_batched_einsum_is_repeat_times_gemm():
    c = lower(load(_model("Einsum", [(2, 3, 5, 8), (2, 3, 7, 8)], {"equation": "bhqd,bhkd->bhqk"}, opset=17))).to_numpy()
    assert (c["repeat"][0], c["p"][0], c["c"][0], c["k"][0], c["w_repeat"][0]) == (6, 5, 8, 7, 6)


def test_einsum_bad_equation_names_the_node():
    with pytest.raises(ShapeError, match="n0"):
        load(_model("Einsum", [(3, 4), (5, 6)], {"equation": "ij,jk->ik"}, opset=17))


ATTENTIONS = [
    # 4-D MHA: b, h, s, d
    ([(2, 4, 5, 8), (2, 4, 7, 8), (2, 4, 7, 6)], {}, None),
    # 3-D GQA: q_num_heads=4 over kv_num_heads=2, head 4, v head 6
    ([(2, 5, 16), (2, 7, 8), (2, 7, 12)], {"q_num_heads": 4, "kv_num_heads": 2}, None),
    # 4-D with a KV cache of 3 past steps and all four outputs
    ([(2, 4, 5, 8), (2, 2, 7, 8), (2, 2, 7, 6), None, (2, 2, 3, 8), (2, 2, 3, 6)], {"is_causal": 1}, 4),
]


def _attention_macs(shapes, attrs):
    q, k, v = shapes[:3]
    past = shapes[4][2] if len(shapes) > 4 else 0
    if len(q) == 4:
        b, h, sq, d = q
        skv, dv = k[2], v[3]
    else:
        h, hkv = attrs["q_num_heads"], attrs["kv_num_heads"]
        b, sq, d, skv, dv = q[0], q[1], q[2] // h, k[1], v[2] // hkv
    t = past + skv
    return b * h * sq * t * d + b * h * sq * t * dv  # Q.K^T + P.V


@pytest.mark.parametrize("shapes,attrs,n_out", ATTENTIONS)
def test_attention_shapes_macs_and_rows(shapes, attrs, n_out):
    names = ["q", "k", "v", "", "pk", "pv"][: len(shapes)]
    in_shapes = [s or () for s in shapes]
    model = _model("Attention", in_shapes, attrs, n_out=n_out or 1, names=names)
    got = _ort_shapes(model, in_shapes, names=names)
    g = load(model)
    node = g.nodes[0]
    assert node.op == ops.MATMUL
    assert [o.shape for o in node.outputs] == got
    macs = _attention_macs(shapes, attrs)
    wl = _check_lowering(g, macs)
    assert wl.names == ("n0/qk", "n0/softmax", "n0/av")
    assert [int(k) for k in np.asarray(wl.kind)] == [MAC, VECTOR, MAC]
    c = wl.to_numpy()
    assert c["out_elems"][0] == c["in_elems"][1] == c["out_elems"][1] == c["in_elems"][2]
    if n_out == 4:  # the scores rows hold as many elements as qk_matmul_output
        assert c["out_elems"][0] == np.prod(got[3])


def test_attention_3d_without_heads_is_a_named_error():
    with pytest.raises(ShapeError, match="n0"):
        load(_model("Attention", [(2, 5, 16), (2, 7, 16), (2, 7, 16)], {}, names=["q", "k", "v"]))
