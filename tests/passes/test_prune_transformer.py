"""Structured pruning of transformers: whole attention heads and the residual stream's
hidden size (symbiote.ir.channel_heads, passes/prune.py, passes/resize.py)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from symbiote.errors import PassError
from symbiote.frontend import load, zoo
from symbiote.frontend.save import to_onnx
from symbiote.ir.analysis import graph_stats
from symbiote.ir.channel_groups import analyze
from symbiote.passes import parse_pipeline
from symbiote.passes.ort_check import random_inputs, run

HEADS = "encoder.layer.0.attention.self.query.matmul.out"
HIDDEN = "embeddings.word_embeddings.out"


@pytest.fixture(scope="module")
def bert():
    """zoo:bert as built: a sequence classifier (2 layers, hidden 128, 2 heads of 64, FFN 512,
    seq 32, output ``logits``); nothing outside fixes the residual stream's width."""
    return load(zoo.build("bert"))


@pytest.fixture(scope="module")
def encoder():
    """zoo:bert with head=encoder (BertModel: outputs last_hidden_state and pooler_output):
    the hidden size is part of the model's interface, so it stays."""
    return load(zoo.build("bert", head="encoder"))


@pytest.fixture(scope="module")
def classifier():
    """A smaller zoo:bert classifier (seq 16, vocabulary 1000)."""
    return load(zoo.build("bert", seq_len=16, vocab_size=1000))


def _split_head_counts(graph) -> list[int]:
    return [int(n.input(1).const[2]) for n in graph.nodes if n.name.endswith("split_heads")]


def _runs_like(original, pruned) -> None:
    pruned.verify()
    onnx.checker.check_model(to_onnx(pruned))
    want = run(original, random_inputs(original, seed=0))
    got = run(pruned, random_inputs(pruned, seed=0))
    assert [v.shape for v in pruned.inputs] == [v.shape for v in original.inputs]
    assert [o.shape for o in got] == [o.shape for o in want]
    assert all(np.isfinite(o).all() for o in got)


def test_prune_half_of_zoo_bert_removes_heads_hidden_size_and_mlp(bert):
    res = parse_pipeline("prune(ratio=0.5)")(bert)
    g = res.graph
    # heads, hidden and FFN all halve: about a quarter of the MACs (attention scores halve only once)
    assert graph_stats(g).macs <= 0.3 * graph_stats(bert).macs
    assert _split_head_counts(bert) == [2] * 6 and _split_head_counts(g) == [1] * 6  # Q, K, V of 2 layers
    widths = res.info["steps"][0]["widths"]
    assert widths[HEADS] == [128, 64] and widths["encoder.layer.0.intermediate.dense.matmul.out"] == [512, 256]
    assert widths[HIDDEN] == [128, 64]
    for p in ("query", "key", "value"):
        assert g.constants[f"encoder.layer.0.attention.self.{p}.weight"].shape == (64, 64)
    assert g.constants["encoder.layer.0.attention.output.dense.weight"].shape == (64, 64)
    assert g.constants["classifier.weight"].shape == (2, 64)  # the logits keep their width
    _runs_like(bert, g)


def test_prune_half_of_the_encoder_keeps_the_hidden_size_of_its_outputs(encoder):
    res = parse_pipeline("prune(ratio=0.5)")(encoder)
    g = res.graph
    assert graph_stats(g).macs <= 0.55 * graph_stats(encoder).macs
    assert _split_head_counts(g) == [1] * 6
    # the hidden size reaches the model output last_hidden_state: it stays (outputs keep their shapes)
    assert not analyze(encoder).by_name(HIDDEN).free and HIDDEN not in res.info["steps"][0]["widths"]
    assert g.constants["encoder.layer.0.attention.output.dense.weight"].shape == (64, 128)
    _runs_like(encoder, g)


def test_prune_half_of_bert_base():
    g0 = load(zoo.build("bert_base", seq_len=32, vocab_size=1000))
    g = parse_pipeline("prune(ratio=0.5)")(g0).graph
    assert graph_stats(g).macs <= 0.55 * graph_stats(g0).macs
    assert _split_head_counts(g0) == [12] * 36 and _split_head_counts(g) == [6] * 36
    _runs_like(g0, g)


def test_prune_shrinks_the_hidden_size_along_the_residual_stream(classifier):
    g0 = classifier
    res = parse_pipeline("prune(ratio=0.5)")(g0)
    g = res.graph
    assert res.info["steps"][0]["widths"][HIDDEN] == [128, 64]
    lns = [n for n in g.nodes if n.onnx_op == "LayerNormalization"]
    assert len(lns) == 5 and all(n.input(1).shape == (64,) and n.input(2).shape == (64,) for n in lns)
    assert g.constants["embeddings.word_embeddings.weight"].shape == (1000, 64)
    for n in g.nodes:  # every residual Add and projection on the stream follows
        if n.name.endswith("residual"):
            assert n.output.shape[-1] == 64
    assert g.constants["classifier.weight"].shape == (2, 64)  # the output keeps its width
    assert graph_stats(g).macs <= 0.3 * graph_stats(g0).macs
    _runs_like(g0, g)


def test_head_importance_keeps_the_strongest_head(bert):
    strong = {}
    g = bert.copy()
    for p in ("query", "key", "value"):  # make head 1 of layer 0 dominate
        v = g.constants[f"encoder.layer.0.attention.self.{p}.weight"]
        w = v.const.copy()
        w[:, 64:] *= 10
        v.const = w
        strong[p] = w[:, 64:]
    out = parse_pipeline(f"prune(widths={{{HEADS}:64}})")(g).graph
    for p in ("query", "key", "value"):
        np.testing.assert_array_equal(out.constants[f"encoder.layer.0.attention.self.{p}.weight"].const, strong[p])


def test_a_width_that_splits_a_head_is_refused(bert):
    for spec in (f"prune(widths={{{HEADS}:96}})", f"resize-channels(widths={{{HEADS}:160}})"):
        with pytest.raises(PassError, match="not a multiple of 64.*whole heads"):
            parse_pipeline(spec)(bert)


def test_growth_adds_whole_heads_exactly_and_never_grows_the_hidden_size(classifier):
    g0 = classifier
    feeds = random_inputs(g0, seed=0)
    want = run(g0, feeds)
    res = parse_pipeline("resize-channels(scale=1.5,mode=up)")(g0)
    widths = res.info["steps"][0]["widths"]
    assert widths[HEADS] == [128, 192] and HIDDEN not in widths and res.info["steps"][0]["exact"]
    assert _split_head_counts(res.graph) == [3] * 6
    for a, b in zip(want, run(res.graph, feeds)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(a).max())))
    with pytest.raises(PassError, match="cannot grow.*LayerNormalization"):
        parse_pipeline(f"resize-channels(widths={{{HIDDEN}:192}})")(g0)
    multiple = parse_pipeline("resize-channels(multiple=48)")(g0).info["steps"][0]["widths"]
    assert multiple[HEADS][1] % 64 == 0 and multiple[HEADS][1] % 48 == 0  # lcm(48, head_dim)
