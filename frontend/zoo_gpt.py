"""``zoo:gpt_decoder``: a GPT-style decoder-only language model, with or without a KV cache.

Built with the ONNX helper API like the other zoo models (:mod:`symbiote.frontend.zoo`),
with seeded random weights (``std = 0.02``, GPT-2's ``initializer_range``: Radford et al.,
"Language Models are Unsupervised Multitask Learners", 2019, released config).

The graph, as Hugging Face / ``torch.onnx`` exports of a decoder write it:

* inputs ``input_ids`` and ``position_ids`` (int64 ``[B, S]``); with ``cache=True`` also
  ``past_key_{i}`` / ``past_value_{i}`` (``[B, heads, L, head_dim]``) for each layer ``i``;
* token embedding ``wte`` by Gather, learned position embedding ``wpe`` by Gather
  (``positions="none"`` leaves it out, as rotary models have no table);
* per layer, pre-LN (GPT-2): ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``; separate
  query, key and value projections (MatMul + Add, as BERT's layout; GPT-2 fuses them in one
  ``c_attn``, which prices the same bytes and MACs), heads split by Reshape + Transpose;
  with a cache, ``present_key_{i} = Concat(past_key_{i}, key, axis=2)`` (likewise values),
  both graph outputs;
* the scores ``q k^T`` as one ``Einsum("bhqd,bhkd->bhqk")`` (as ``torch.onnx`` exports
  ``torch.einsum``): the key cache is read once, transposed inside the product (``ir/lower.py``
  prices a ``Transpose`` + ``MatMul`` export as a copy of the cache first, a form the LLM
  phases rewrite to this Einsum: ``search/phases_graph.py``); scaled by ``1/sqrt(head_dim)``;
* the causal mask: key position ``t`` is visible from query position ``p`` when
  ``t <= p`` (``LessOrEqual(Range(0, T), position_ids)``, computed once from the
  positions, so it holds at any past length ``L`` with ``T = L + S``), applied by Where;
* MLP: ``mlp="gelu"`` (``fc_in`` -> GELU written with Erf -> ``fc_out``, GPT-2) or
  ``mlp="swiglu"`` (``down(silu(gate(x)) * up(x))``, Llama's, no biases);
* final LayerNorm ``ln_f`` and an **untied** LM head ``lm_head.weight`` ``[hidden, vocab]``
  (as Llama-2's ``tie_word_embeddings: false``; GPT-2 ties it to ``wte``), output
  ``logits`` ``[B, S, vocab]``.

``dtype="float16"`` writes every float tensor in fp16. ``weights="empty"`` stores every
weight as a sparse initializer with no values (all zeros, full shape), so a full-size
configuration (Llama-2-7B: :data:`LLAMA2_7B`) costs no memory to build: the loader's dense
zeros are untouched pages; such a model is for costing only, its outputs are zeros.
Not modelled: rotary position embeddings (element-wise work on ``q`` and ``k``) and
RMSNorm, which the builder writes as LayerNormalization (the same bytes moved).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from symbiote.frontend.zoo import DEFAULT_OPSET, Dim, ZooError, _Builder, _check_opset, _check_positive, _vi

#: GPT-2's initializer_range (module doc)
INIT_STD = 0.02
#: additive value of a masked score (large negative; fits fp16)
MASKED = -1e4

#: Llama-2-7B's shape (Touvron et al., "Llama 2: Open Foundation and Fine-Tuned Chat
#: Models", 2023, Table 1 and the released config.json: 32 layers, hidden 4096, 32 heads,
#: intermediate 11008, vocabulary 32000, 4096 positions, untied embeddings) as builder
#: arguments; 6.74 B parameters with ``positions="none"``.
LLAMA2_7B: dict[str, Any] = dict(layers=32, hidden=4096, heads=32, intermediate=11008, vocab_size=32000,
                                 max_positions=4096, mlp="swiglu", bias=False, positions="none")


class _GptBuilder(_Builder):
    """The zoo builder with fp16 and shape-only ("empty") weights."""

    def __init__(self, seed: int, dtype: str, weights: str) -> None:
        super().__init__(seed)
        self.np_dtype = np.float16 if dtype == "float16" else np.float32
        self.elem = TensorProto.FLOAT16 if dtype == "float16" else TensorProto.FLOAT
        self.empty = weights == "empty"
        self.sparse: list[onnx.SparseTensorProto] = []

    def weight(self, name: str, shape: tuple[int, ...], std: float = INIT_STD) -> str:
        if self.empty:
            values = helper.make_tensor(name, self.elem, [0], [])
            idx = helper.make_tensor(f"{name}.indices", TensorProto.INT64, [0], [])
            self.sparse.append(helper.make_sparse_tensor(values, idx, list(shape)))
            self._init_names.add(name)
            return name
        w = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        return self.tensor(name, w.astype(self.np_dtype))

    def scalar(self, name: str, value: float) -> str:
        if name not in self._init_names:
            self.tensor(name, np.array(value, dtype=self.np_dtype))
        return name

    def dense(self, x: str, cin: int, cout: int, name: str, bias: bool) -> str:
        y = self.node("MatMul", [x, self.weight(f"{name}.weight", (cin, cout))], f"{name}.matmul" if bias else name)
        return self.node("Add", [y, self.weight(f"{name}.bias", (cout,))], f"{name}.add") if bias else y

    def norm(self, x: str, c: int, name: str) -> str:
        if self.empty:
            return self.node("LayerNormalization", [x, self.weight(f"{name}.weight", (c,)), self.weight(f"{name}.bias", (c,))],
                             name, axis=-1, epsilon=1e-5)
        g = self.tensor(f"{name}.weight", self.rng.uniform(0.9, 1.1, size=(c,)).astype(self.np_dtype))
        b = self.tensor(f"{name}.bias", (self.rng.standard_normal(c) * INIT_STD).astype(self.np_dtype))
        return self.node("LayerNormalization", [x, g, b], name, axis=-1, epsilon=1e-5)


def _check_choices(**kw: tuple[str, tuple[str, ...]]) -> None:
    for k, (v, choices) in kw.items():
        if v not in choices:
            raise ZooError(f"zoo: {k}={v!r} must be one of {', '.join(choices)}")


def gpt_decoder(*, seed: int = 0, batch: Dim = 1, seq_len: Dim = 8, past_len: Dim = 16, layers: int = 2, hidden: int = 64,
                heads: int = 4, intermediate: int | None = None, vocab_size: int = 256, max_positions: int = 1024,
                cache: bool = True, mlp: str = "gelu", bias: bool = True, positions: str = "learned",
                dtype: str = "float32", weights: str = "random", opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """A GPT-style decoder (module doc). ``intermediate`` defaults to 4 * hidden; ``past_len``
    is the cache length ``L`` (used only with ``cache=True``)."""
    intermediate = 4 * hidden if intermediate is None else intermediate
    _check_positive(batch=batch, seq_len=seq_len, past_len=past_len, layers=layers, hidden=hidden, heads=heads,
                    intermediate=intermediate, vocab_size=vocab_size, max_positions=max_positions)
    _check_choices(mlp=(mlp, ("gelu", "swiglu")), positions=(positions, ("learned", "none")),
                   dtype=(dtype, ("float32", "float16")), weights=(weights, ("random", "empty")))
    if hidden % heads:
        raise ZooError(f"zoo: hidden={hidden} is not divisible by heads={heads}")
    opset = _check_opset(opset)
    d = hidden // heads
    b = _GptBuilder(seed, dtype, weights)
    x = b.node("Gather", [b.weight("transformer.wte.weight", (vocab_size, hidden)), "input_ids"], "transformer.wte", axis=0)
    if positions == "learned":
        pe = b.node("Gather", [b.weight("transformer.wpe.weight", (max_positions, hidden)), "position_ids"], "transformer.wpe", axis=0)
        x = b.node("Add", [x, pe], "transformer.embed")
    split = b.const("attn.split_heads_shape", [0, 0, heads, d])
    merge = b.const("attn.merge_heads_shape", [0, 0, hidden])
    scale = b.scalar("attn.scale", 1.0 / math.sqrt(d))
    masked = b.scalar("attn.masked", MASKED)
    outputs: list[onnx.ValueInfoProto] = []
    inputs = [_vi("input_ids", TensorProto.INT64, [batch, seq_len]), _vi("position_ids", TensorProto.INT64, [batch, seq_len])]
    mask = ""
    for i in range(layers):
        p = f"transformer.h.{i}"
        h = b.norm(x, hidden, f"{p}.ln_1")

        def heads_of(t: str, which: str) -> str:
            t = b.node("Reshape", [t, split], f"{p}.attn.{which}.split_heads")
            return b.node("Transpose", [t], f"{p}.attn.{which}.transpose", perm=[0, 2, 1, 3])  # [B, H, S, D]

        q = heads_of(b.dense(h, hidden, hidden, f"{p}.attn.q_proj", bias), "q")
        k = heads_of(b.dense(h, hidden, hidden, f"{p}.attn.k_proj", bias), "k")
        v = heads_of(b.dense(h, hidden, hidden, f"{p}.attn.v_proj", bias), "v")
        if cache:
            for name, t in (("key", "k"), ("value", "v")):
                inputs.append(_vi(f"past_{name}_{i}", b.elem, [batch, heads, past_len, d]))
                outputs.append(_vi(f"present_{name}_{i}", b.elem, [batch, heads, "total_len" if isinstance(past_len, str) or isinstance(seq_len, str) else past_len + seq_len, d]))
            k = b.node("Concat", [f"past_key_{i}", k], f"{p}.attn.k_cache", out=[f"present_key_{i}"], axis=2)
            v = b.node("Concat", [f"past_value_{i}", v], f"{p}.attn.v_cache", out=[f"present_value_{i}"], axis=2)
        if not mask:
            mask = _causal_mask(b, k)
        s = b.node("Einsum", [q, k], f"{p}.attn.scores", equation="bhqd,bhkd->bhqk")   # [B, H, S, T]
        s = b.node("Mul", [s, scale], f"{p}.attn.scale")
        s = b.node("Where", [mask, s, masked], f"{p}.attn.mask")
        s = b.node("Softmax", [s], f"{p}.attn.softmax", axis=-1)
        c = b.node("MatMul", [s, v], f"{p}.attn.context")                                   # [B, H, S, D]
        c = b.node("Transpose", [c], f"{p}.attn.context.transpose", perm=[0, 2, 1, 3])
        c = b.node("Reshape", [c, merge], f"{p}.attn.merge_heads")
        x = b.node("Add", [x, b.dense(c, hidden, hidden, f"{p}.attn.o_proj", bias)], f"{p}.attn.residual")
        x = b.node("Add", [x, _mlp(b, b.norm(x, hidden, f"{p}.ln_2"), hidden, intermediate, f"{p}.mlp", mlp, bias)],
                   f"{p}.mlp.residual")
    x = b.norm(x, hidden, "transformer.ln_f")
    b.node("MatMul", [x, b.weight("lm_head.weight", (hidden, vocab_size))], "lm_head", out=["logits"])
    model = b.model("gpt_decoder", inputs, [_vi("logits", b.elem, [batch, seq_len, vocab_size]), *outputs], opset,
                    f"GPT-style decoder {layers}x{hidden} heads={heads} ffn={intermediate} mlp={mlp} cache={cache}, "
                    f"{weights} weights seed={seed}")
    model.graph.sparse_initializer.extend(b.sparse)
    return model


def _causal_mask(b: _GptBuilder, k: str) -> str:
    """``[B, 1, S, T]``: key position ``t`` visible from query position ``p`` iff ``t <= p``."""
    total = b.node("Shape", [k], "attn.mask.total_len", start=2, end=3)
    total = b.node("Squeeze", [total, b.const("attn.mask.squeeze_axes", [0])], "attn.mask.total_len_scalar")
    keys = b.node("Range", [b.const("attn.mask.zero", np.array(0, np.int64)), total, b.const("attn.mask.one", np.array(1, np.int64))],
                  "attn.mask.key_positions")
    queries = b.node("Unsqueeze", ["position_ids", b.const("attn.mask.unsqueeze_axes", [1, 3])], "attn.mask.query_positions")
    return b.node("LessOrEqual", [keys, queries], "attn.mask")


def _mlp(b: _GptBuilder, x: str, hidden: int, inter: int, p: str, kind: str, bias: bool) -> str:
    if kind == "swiglu":
        g = b.dense(x, hidden, inter, f"{p}.gate_proj", bias)
        g = b.node("Mul", [g, b.node("Sigmoid", [g], f"{p}.act.sigmoid")], f"{p}.act")
        return b.dense(b.node("Mul", [g, b.dense(x, hidden, inter, f"{p}.up_proj", bias)], f"{p}.gate"), inter, hidden, f"{p}.down_proj", bias)
    f = b.dense(x, hidden, inter, f"{p}.fc_in", bias)
    # GELU(x) = 0.5 x (1 + erf(x / sqrt 2)), as torch.onnx exports it before opset 20
    g = b.node("Erf", [b.node("Mul", [f, b.scalar("gelu.rsqrt2", 1.0 / math.sqrt(2.0))], f"{p}.gelu.div")], f"{p}.gelu.erf")
    g = b.node("Add", [g, b.scalar("gelu.one", 1.0)], f"{p}.gelu.add")
    g = b.node("Mul", [b.node("Mul", [f, b.scalar("gelu.half", 0.5)], f"{p}.gelu.half"), g], f"{p}.gelu")
    return b.dense(g, inter, hidden, f"{p}.fc_out", bias)


__all__ = ["gpt_decoder", "LLAMA2_7B"]
