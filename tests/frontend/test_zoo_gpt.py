"""zoo:gpt_decoder (frontend/zoo_gpt.py): loads, verifies, runs in onnxruntime; its cache is
the one the uncached model would compute; the mask is causal; full-size configs are cheap."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from symbiote.frontend import load, zoo
from symbiote.frontend.zoo_gpt import LLAMA2_7B

LAYERS, HIDDEN, HEADS, VOCAB = 2, 32, 4, 50
D = HIDDEN // HEADS


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _cached_model(**kw) -> onnx.ModelProto:
    return zoo.build("gpt_decoder", layers=LAYERS, hidden=HIDDEN, heads=HEADS, vocab_size=VOCAB,
                     batch="batch", seq_len="seq", past_len="past", **kw)


def _feeds(ids: np.ndarray, start: int, past: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    b, s = ids.shape
    f = {"input_ids": ids, "position_ids": np.broadcast_to(np.arange(start, start + s), (b, s)).astype(np.int64)}
    empty = np.zeros((b, HEADS, 0, D), np.float32)
    for i in range(LAYERS):
        f[f"past_key_{i}"] = empty if past is None else past[2 * i]
        f[f"past_value_{i}"] = empty if past is None else past[2 * i + 1]
    return f


def test_it_is_registered_loads_and_verifies():
    assert "gpt_decoder" in zoo.names()
    m = zoo.build("gpt_decoder")
    onnx.checker.check_model(m, full_check=True)
    g = load("zoo:gpt_decoder")
    g.verify()
    names = [v.name for v in g.inputs]
    assert names[:2] == ["input_ids", "position_ids"] and "past_key_0" in names and "past_value_1" in names
    assert [o.name for o in g.outputs][0] == "logits"
    assert tuple(g.outputs[0].shape) == (1, 8, 256)
    present = {o.name: tuple(o.shape) for o in g.outputs[1:]}
    assert present["present_key_0"] == (1, 4, 16 + 8, 16)         # [B, heads, L + S, head_dim]
    nocache = load(zoo.build("gpt_decoder", cache=False))
    assert [v.name for v in nocache.inputs] == ["input_ids", "position_ids"] and len(nocache.outputs) == 1


def test_the_cache_holds_what_the_uncached_model_computes():
    """Prefill 5 tokens, then decode 3 more through the cache: the logits equal those of one
    pass over all 8 tokens (the present outputs are the past of the next step)."""
    sess = _session(_cached_model())
    ids = np.random.default_rng(0).integers(0, VOCAB, size=(2, 8)).astype(np.int64)
    full = sess.run(None, _feeds(ids, 0))[0]
    out = sess.run(None, _feeds(ids[:, :5], 0))
    past = out[1:]
    assert past[0].shape == (2, HEADS, 5, D)
    steps = []
    for t in range(5, 8):
        out = sess.run(None, _feeds(ids[:, t:t + 1], t, past))
        steps.append(out[0])
        past = out[1:]
    assert past[0].shape == (2, HEADS, 8, D)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full[:, 5:], rtol=1e-4, atol=1e-5)


def test_the_mask_is_causal():
    sess = _session(zoo.build("gpt_decoder", cache=False, layers=LAYERS, hidden=HIDDEN, heads=HEADS, vocab_size=VOCAB, seq_len=6))
    ids = np.arange(6, dtype=np.int64)[None] + 3
    a = sess.run(None, {"input_ids": ids, "position_ids": np.arange(6, dtype=np.int64)[None]})[0]
    ids2 = ids.copy()
    ids2[0, 4] = 40
    b = sess.run(None, {"input_ids": ids2, "position_ids": np.arange(6, dtype=np.int64)[None]})[0]
    np.testing.assert_array_equal(a[:, :4], b[:, :4])          # earlier positions never see token 4
    assert not np.allclose(a[:, 4:], b[:, 4:])


def test_swiglu_fp16_and_the_same_seed_gives_the_same_model():
    m = zoo.build("gpt_decoder", mlp="swiglu", bias=False, positions="none", dtype="float16", layers=1, hidden=32, heads=2,
                  vocab_size=40, seq_len=3, past_len=2)
    feeds = {"input_ids": np.array([[1, 2, 3]]), "position_ids": np.array([[2, 3, 4]]),
             "past_key_0": np.zeros((1, 2, 2, 16), np.float16), "past_value_0": np.zeros((1, 2, 2, 16), np.float16)}
    logits = _session(m).run(None, feeds)[0]
    assert logits.dtype == np.float16 and logits.shape == (1, 3, 40) and np.isfinite(logits).all()
    assert zoo.build("gpt_decoder", seed=3).SerializeToString() == zoo.build("gpt_decoder", seed=3).SerializeToString()
    with pytest.raises(zoo.ZooError, match="mlp"):
        zoo.build("gpt_decoder", mlp="relu")


def test_llama2_7b_at_full_size_with_empty_weights():
    """Shape-only weights: the 6.74 B parameters of Llama-2-7B cost no memory to build.
    By hand: 32 layers x (4 x 4096^2 attention + 3 x 4096 x 11008 MLP + 2 x 2 x 4096 norms)
    + 32000 x 4096 x 2 (embedding and untied head) + 2 x 4096 (final norm): Llama-2-7B's
    6,738,415,616 plus the 266,240 biases of LayerNorm standing in for RMSNorm."""
    m = zoo.build("gpt_decoder", **LLAMA2_7B, dtype="float16", weights="empty", seq_len=1, past_len=4)
    assert m.ByteSize() < 1_000_000
    g = load(m)
    params = sum(v.size for v in g.constants.values() if v.dtype == "float16" and v.size > 1)
    by_hand = 32 * (4 * 4096**2 + 3 * 4096 * 11008 + 4 * 4096) + 2 * 32000 * 4096 + 2 * 4096
    assert params == by_hand == 6_738_415_616 + 266_240
