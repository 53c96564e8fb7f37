"""The decode step of a decoder exported without a cache (search/phases_cacheless.py): priced
as the same model exported with a cache (same MACs, same bytes per layer), the KV cache read
once and one row per layer appended (bytes by hand), the rewritten graph computing what the
cached export computes, and a clear error when no attention is found."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from symbiote.backends import technology
from symbiote.backends.manager import get_template
from symbiote.frontend import zoo
from symbiote.ir.lower import lower
from symbiote.ir.workload import MAC
from symbiote.search.phases import Phase, PhaseError, load_phase, with_cache

L_, H, HEADS, V, P, FF = 2, 32, 4, 50, 64, 128       # layers, hidden, heads, vocab, positions, ffn
D = H // HEADS
CFG = dict(layers=L_, hidden=H, heads=HEADS, vocab_size=V, max_positions=P, intermediate=FF)
B, CTX = 3, 10


def _wl(model, phase=Phase("decode", batch=B, context=CTX)):
    return lower(load_phase(model, phase), default_bits=16)


def _per_layer_bytes(wl) -> dict[str, float]:
    """Bytes each layer's rows move at 16 bits (inputs, outputs and weights), by the layer
    prefix of the row names (``transformer.h.{i}.`` of the zoo, ``/h.{i}/`` of torch)."""
    c = wl.to_numpy()
    out: dict[str, float] = {}
    for i, name in enumerate(wl.names):
        m = re.search(r"h\.(\d+)[./]", name)
        key = f"layer {m.group(1)}" if m else "outside the layers"
        out[key] = out.get(key, 0.0) + 2.0 * float(c["in_elems"][i] + c["out_elems"][i] + c["weight_elems"][i])
    return out


def _same_costs(a, b) -> None:
    assert float(a.macs.sum()) == float(b.macs.sum())
    assert _per_layer_bytes(a) == pytest.approx(_per_layer_bytes(b), rel=1e-9)
    tpl = get_template("roofline")
    design = tpl.space.default() | {"dram": "hbm2e"}
    ma, mb = tpl.evaluate(design, a), tpl.evaluate(design, b)
    assert float(mb.total_latency_s) == pytest.approx(float(ma.total_latency_s), rel=1e-6)
    assert float(mb.total_energy_pj) == pytest.approx(float(ma.total_energy_pj), rel=1e-6)


def test_a_cacheless_decoder_at_decode_is_priced_as_its_cached_export():
    cached, cacheless = _wl(zoo.build("gpt_decoder", **CFG)), _wl(zoo.build("gpt_decoder", **CFG, cache=False))
    _same_costs(cached, cacheless)
    g = load_phase(zoo.build("gpt_decoder", **CFG, cache=False), Phase("decode", batch=B, context=CTX))
    assert g.meta["phase"] == {"kind": "decode", "tokens": B, "rule": "cacheless"}
    assert sorted(v.name for v in g.inputs if v.name.startswith("past")) == \
        sorted(f"past_{n}_{i}" for i in range(L_) for n in ("key", "value"))
    assert {tuple(o.shape) for o in g.outputs if o.name.startswith("present")} == {(B, HEADS, CTX + 1, D)}


def test_the_cacheless_decode_reads_the_kv_cache_once_and_appends_one_row_per_layer():
    wl = _wl(zoo.build("gpt_decoder", **CFG, cache=False))
    c = wl.to_numpy()
    t = CTX + 1
    appends = [i for i, n in enumerate(wl.names) if n.endswith(".append")]
    assert len(appends) == 2 * L_                                  # a key and a value cache per layer
    for i in appends:   # one row of B x heads x head_dim written, nothing of the old L rows read
        assert (c["in_elems"][i], c["out_elems"][i], c["weight_elems"][i]) == (B * HEADS * D, B * HEADS * D, 0)
    for i in range(L_):
        p = f"transformer.h.{i}.attn"
        assert c["weight_elems"][wl.names.index(f"{p}.scores")] == B * HEADS * t * D    # all of K, once
        assert c["weight_elems"][wl.names.index(f"{p}.context")] == B * HEADS * t * D   # all of V, once
        assert c["p"][wl.names.index(f"{p}.scores")] == 1                                # one query row
        assert c["p"][wl.names.index(f"{p}.q_proj.matmul")] == B                         # sequence 1
    tpl = get_template("roofline")
    m = tpl.evaluate(tpl.space.default() | {"dram": "hbm2e"}, wl).to_numpy()
    pj_per_byte = 8 * technology.DRAM_PJ_PER_BIT[technology.DRAM_KINDS.index("hbm2e")]
    # the K append of layer 0 at fp16: reads and writes 3 x 4 x 8 elements, 2 bytes each = 384 bytes
    k0 = wl.names.index("transformer.h.0.attn.k.transpose.append")
    assert m["energy_dram_pj"][k0] == pytest.approx(2 * (B * HEADS * D) * 2 * pj_per_byte, rel=1e-5)
    assert 2 * (B * HEADS * D) * 2 == 384
    # the scores read q (B H D), all of K (B H T D) and write B H T scores: (96 + 1056 + 132) x 2 bytes
    s0 = wl.names.index("transformer.h.0.attn.scores")
    assert m["energy_dram_pj"][s0] == pytest.approx(2 * (B * HEADS * D + B * HEADS * t * D + B * HEADS * t) * pj_per_byte,
                                                    rel=1e-5)


def _run(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _pasts(rng, names, shape):
    return {n: rng.standard_normal(shape).astype(np.float32) for n in names}


def test_the_rewritten_model_computes_the_cached_export_s_decode_step():
    free = zoo.build("gpt_decoder", **CFG, cache=False, batch="batch", seq_len="seq")
    rewritten = with_cache(free, Phase("decode", batch=B, context=CTX))
    cached = zoo.build("gpt_decoder", **CFG, batch=B, seq_len=1, past_len=CTX)
    rng = np.random.default_rng(0)
    feeds = {"input_ids": np.array([[1], [2], [3]]), "position_ids": np.full((B, 1), CTX)}
    feeds |= _pasts(rng, [f"past_{n}_{i}" for i in range(L_) for n in ("key", "value")], (B, HEADS, CTX, D))
    want = dict(zip([o.name for o in cached.graph.output], _run(cached, feeds)))
    got = dict(zip([o.name for o in rewritten.graph.output], _run(rewritten, feeds)))
    assert set(got) == set(want)
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


def _attention_op_model(cache: bool) -> onnx.ModelProto:
    """An embedding, q/k/v projections and one ONNX Attention node (opset 23, 3-D inputs)."""
    rng = np.random.default_rng(0)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, [V if n == "emb" else H, H],
                                rng.standard_normal((V if n == "emb" else H, H)).astype(np.float32).ravel())
             for n in ("emb", "wq", "wk", "wv", "wo")]
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["x"]),
             *[helper.make_node("MatMul", ["x", w], [f"{w}_out"]) for w in ("wq", "wk", "wv")]]
    ins = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", H])]
    a_in, a_out = ["wq_out", "wk_out", "wv_out"], ["a"]
    if cache:
        a_in += ["", "past_key_0", "past_value_0"]
        a_out += ["present_key_0", "present_value_0"]
        ins += [helper.make_tensor_value_info(f"past_{n}_0", TensorProto.FLOAT, ["b", HEADS, "p", D]) for n in ("key", "value")]
        outs += [helper.make_tensor_value_info(f"present_{n}_0", TensorProto.FLOAT, ["b", HEADS, "t", D]) for n in ("key", "value")]
    nodes += [helper.make_node("Attention", a_in, a_out, q_num_heads=HEADS, kv_num_heads=HEADS),
              helper.make_node("MatMul", ["a", "wo"], ["y"])]
    return helper.make_model(helper.make_graph(nodes, "g", ins, outs, inits), opset_imports=[helper.make_opsetid("", 23)])


def test_an_onnx_attention_node_gets_its_past_inputs():
    cached, cacheless = _wl(_attention_op_model(True)), _wl(_attention_op_model(False))
    _same_costs(cached, cacheless)
    c = cacheless.to_numpy()
    qk = cacheless.names.index("attention/qk")
    assert c["weight_elems"][qk] == B * HEADS * (CTX + 1) * D      # all of K, once


def test_no_attention_is_a_clear_error():
    rng = np.random.default_rng(0)
    w = helper.make_tensor("emb", TensorProto.FLOAT, [V, H], rng.standard_normal((V, H)).astype(np.float32).ravel())
    head = helper.make_tensor("head", TensorProto.FLOAT, [H, V], rng.standard_normal((H, V)).astype(np.float32).ravel())
    g = helper.make_graph([helper.make_node("Gather", ["emb", "input_ids"], ["x"]),
                           helper.make_node("MatMul", ["x", "head"], ["s"]),
                           helper.make_node("Softmax", ["s"], ["logits"], axis=-1)], "bag",
                          [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s", V])], [w, head])
    with pytest.raises(PhaseError, match="no attention found: no Softmax between an activation x activation matmul"):
        load_phase(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), Phase("decode", context=4))


# ---------------------------------------------------------------- a real framework export
def _torch_gpt():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(H), nn.LayerNorm(H)
            self.qkv, self.o = nn.Linear(H, 3 * H), nn.Linear(H, H)
            self.fc, self.out = nn.Linear(H, FF), nn.Linear(FF, H)

        def forward(self, x, past=None):
            b, s, _ = x.shape
            q, k, v = (t.view(b, s, HEADS, D).transpose(1, 2) for t in self.qkv(self.ln1(x)).split(H, dim=2))
            if past is not None:
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
            t = k.shape[2]
            att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
            causal = torch.ones(t, t, dtype=torch.bool).tril()[t - s:t, :]
            att = att.masked_fill(~causal, float("-inf")).softmax(-1)
            x = x + self.o((att @ v).transpose(1, 2).reshape(b, s, H))
            return x + self.out(nn.functional.gelu(self.fc(self.ln2(x)))), (k, v)

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(V, H), nn.Embedding(P, H)
            self.h = nn.ModuleList(Block() for _ in range(L_))
            self.ln, self.head = nn.LayerNorm(H), nn.Linear(H, V, bias=False)

        def forward(self, ids, pos, *past):
            x, present = self.wte(ids) + self.wpe(pos), []
            for i, blk in enumerate(self.h):
                x, kv = blk(x, (past[2 * i], past[2 * i + 1]) if past else None)
                present += list(kv)
            return (self.head(self.ln(x)), *present) if past else self.head(self.ln(x))

    torch.manual_seed(0)
    return torch, GPT().eval()


def _export(torch, net, cache: bool) -> onnx.ModelProto:
    """``torch.onnx.export`` (the TorchScript exporter, opset 17) with or without past_key_values."""
    import warnings

    ids, pos = torch.zeros(1, 4, dtype=torch.long), torch.arange(4)[None]
    names, outs = ["input_ids", "position_ids"], ["logits"]
    dyn = {"input_ids": {0: "b", 1: "s"}, "position_ids": {0: "b", 1: "s"}}
    args: tuple = (ids, pos)
    if cache:
        past = [f"past_{n}_{i}" for i in range(L_) for n in ("key", "value")]
        names += past
        outs += [p.replace("past", "present") for p in past]
        dyn |= {p: {0: "b", 2: "past"} for p in past}
        args += tuple(torch.zeros(1, HEADS, 3, D) for _ in past)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, args, f, input_names=names, output_names=outs, dynamic_axes=dyn, dynamo=False,
                          opset_version=17)
    return onnx.load_from_string(f.getvalue())


def test_a_torch_export_without_a_cache_is_priced_as_its_export_with_one():
    torch, net = _torch_gpt()
    cacheless, cached = _export(torch, net, False), _export(torch, net, True)
    assert not any(i.name.startswith("past") for i in cacheless.graph.input)
    a, b = _wl(cached), _wl(cacheless)
    _same_costs(a, b)
    # torch folds k.transpose(1, 2).transpose(-2, -1) into one Transpose from [B, S, heads, D]:
    # the cache is appended after a transpose of the new row, and the scores read it once
    c = b.to_numpy()
    assert max(c["in_elems"][i] for i, n in enumerate(b.names) if "Transpose" in n) == B * HEADS * D
    assert sorted(c["weight_elems"][i] for i in range(len(b)) if c["kind"][i] == MAC and c["w_repeat"][i] > 1) == \
        [B * HEADS * (CTX + 1) * D] * (2 * L_)
    # the rewritten export computes what torch computes with the cache
    rewritten = with_cache(cacheless, Phase("decode", batch=B, context=CTX))
    rng = np.random.default_rng(1)
    past = _pasts(rng, [f"past_{n}_{i}" for i in range(L_) for n in ("key", "value")], (B, HEADS, CTX, D))
    ids, pos = np.array([[1], [2], [3]]), np.full((B, 1), CTX)
    with torch.no_grad():
        want = net(torch.from_numpy(ids), torch.from_numpy(pos), *(torch.from_numpy(past[k]) for k in past))
    got = dict(zip([o.name for o in rewritten.graph.output], _run(rewritten, {"input_ids": ids, "position_ids": pos} | past)))
    np.testing.assert_allclose(got["logits"], want[0].numpy(), rtol=1e-4, atol=1e-5)
    for j, k in enumerate(past):
        np.testing.assert_allclose(got[k.replace("past", "present")], want[1 + j].numpy(), rtol=1e-4, atol=1e-5)


def test_a_torch_dynamo_export_without_a_cache_gets_its_decode_step():
    """The exporter torch uses by default (``dynamo=True``, opset 18+): the same MACs as the
    TorchScript export's decode step, one append per cache, and torch's cached step computed."""
    torch, net = _torch_gpt()
    pytest.importorskip("onnxscript")
    import warnings

    s = torch.export.Dim("s", max=P - 4)
    dims = ({0: torch.export.Dim("b"), 1: s}, {0: torch.export.Dim("b"), 1: s})
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 4, dtype=torch.long), torch.arange(4)[None]), f,
                          input_names=["input_ids", "position_ids"], output_names=["logits"], dynamo=True,
                          dynamic_shapes=dims, verbose=False)
    model = onnx.load_from_string(f.getvalue())
    wl = _wl(model)
    assert float(wl.macs.sum()) == float(_wl(_export(torch, net, False)).macs.sum())
    assert len([n for n in wl.names if n.endswith(".append")]) == 2 * L_
    rewritten = with_cache(model, Phase("decode", batch=B, context=CTX))
    past = _pasts(np.random.default_rng(2), [f"past_{n}_{i}" for i in range(L_) for n in ("key", "value")],
                  (B, HEADS, CTX, D))
    ids, pos = np.array([[4], [5], [6]]), np.full((B, 1), CTX)
    with torch.no_grad():
        want = net(torch.from_numpy(ids), torch.from_numpy(pos), *(torch.from_numpy(past[k]) for k in past))
    got = _run(rewritten, {"input_ids": ids, "position_ids": pos} | past)
    np.testing.assert_allclose(got[0], want[0].numpy(), rtol=1e-4, atol=1e-5)
