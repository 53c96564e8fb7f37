"""The ``channels`` model knob on a transformer: its gene grid asks each channel group for
its granularity (whole attention heads) and whether it may grow (not a LayerNorm'd width)."""

from __future__ import annotations

import numpy as np
import pytest

from symbiote.frontend import load, zoo
from symbiote.ir.analysis import graph_stats
from symbiote.ir.channel_groups import analyze
from symbiote.ir.lower import lower
from symbiote.search import knobs
from symbiote.search.knobs.channels import gene_grid

HIDDEN = "embeddings.word_embeddings.out"


@pytest.fixture(scope="module")
def prep():
    g = load(zoo.build("bert", seq_len=8, hidden=96, heads=3, vocab_size=500))  # a classifier: the hidden size is free (and shrink-only)
    cg = analyze(g)
    return knobs.Prepared(g, cg, lower(g, cg))


def test_gene_grid_of_a_head_group_holds_only_whole_heads(prep):
    knob = knobs.get("channels")
    targets = knob.targets(prep)
    f = knob.fit(prep, targets, knobs.Probes())
    genes = {g.key: g for g in knob.genes(f, 0, "t", knobs.GeneSettings())}
    heads = [t for t in targets if prep.groups.by_name(t).unit > 1]
    assert len(heads) == 2 and all(prep.groups.by_name(t).unit == 32 for t in heads)
    for t in heads:
        vals = genes[t].values
        assert all(v % 32 == 0 for v in vals) and 96.0 in vals and len(vals) > 2
        assert vals[genes[t].default] == 96.0
    hidden = genes[HIDDEN].values
    assert max(hidden) == 96.0 and min(hidden) < 96.0  # shrink-only
    mlp = genes["encoder.layer.0.intermediate.dense.matmul.out"].values
    assert max(mlp) > 384.0  # an ordinary group still grows
    # the proxy's retained-importance curve removes whole heads: linear inside a head
    ids = list(f.tables["ids"])
    row = f.tables["curves"][ids.index(prep.groups.by_name(heads[0]).id)]
    assert row[0] == 0.0 and row[96] == pytest.approx(1.0)
    assert row[16] == pytest.approx(row[32] / 2) and row[48] == pytest.approx((row[32] + row[64]) / 2)


def test_gene_grid_function():
    assert gene_grid(768, 64, True, (0.25, 2.0)) == tuple(float(v) for v in range(192, 1537, 64))
    assert gene_grid(128, 1, False, (0.25, 2.0))[-1] == 128.0
    assert all(v % 64 == 0 for v in gene_grid(64, 64, True, (0.25, 2.0)))


def test_rewrite_with_the_narrowest_legal_widths_runs(prep):
    from symbiote.passes.ort_check import random_inputs, run

    knob = knobs.get("channels")
    targets = knob.targets(prep)
    f = knob.fit(prep, targets, knobs.Probes())
    genes = knob.genes(f, 0, "t", knobs.GeneSettings())
    chosen = {g.key: int(g.values[0]) for g in genes}
    out = knob.rewrite(prep.graph, chosen, knobs.RewriteContext())
    out.verify()
    after = analyze(out)
    for t, w in chosen.items():
        assert after.by_name(t).width == w
    assert graph_stats(out).macs < 0.25 * graph_stats(prep.graph).macs
    got = run(out, random_inputs(out, seed=0))
    assert got[0].shape == (1, 2) and np.isfinite(got[0]).all()
