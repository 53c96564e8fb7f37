"""``Workload.with_widths`` (what the search prices for a width setting) equals the lowering
of the model that ``resize-channels`` writes at those widths, row by row: MACs, element
counts and weights, for CNNs (depthwise included), an LSTM and BERT (attention heads and
the MLP)."""

from __future__ import annotations

import numpy as np
import pytest

from symbiote.frontend import load, zoo
from symbiote.ir.channel_groups import analyze, legal_width
from symbiote.ir.lower import lower
from symbiote.passes import parse_pipeline

MODELS = {"tiny_cnn": {}, "resnet18": {"image_size": 32}, "mobilenet_v2": {"image_size": 32}, "lstm": {}, "bert": {"seq_len": 8},
          "gpt_decoder": {}}
FIELDS = ("macs", "in_elems", "out_elems", "weight_elems")


def _columns(wl) -> dict[str, np.ndarray]:
    return {"macs": np.asarray(wl.macs), **{f: np.asarray(getattr(wl, f)) for f in FIELDS[1:]}}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("share", [0.5, 0.75])
def test_with_widths_prices_the_resized_model(name, share):
    g = parse_pipeline("canonicalize,fold-bn,fuse-activations")(load(zoo.build(name, **MODELS[name]))).graph
    groups = analyze(g)
    free = [grp for grp in groups.groups if grp.free]
    assert free, name
    widths = {grp.name: legal_width(grp, max(grp.unit, int(grp.width * share))) for grp in free}
    widths = {k: v for k, v in widths.items() if v != groups.by_name(k).width}
    spec = "resize-channels(widths={" + ",".join(f"{k}:{v}" for k, v in widths.items()) + "})"
    resized = parse_pipeline(spec)(g).graph
    vec = np.asarray([widths.get(grp.name, grp.width) for grp in groups.groups], np.float32)
    want = lower(resized, analyze(resized))
    got = lower(g, groups).with_widths(vec)
    assert got.names == want.names
    a, b = _columns(got), _columns(want)
    for f in FIELDS:
        bad = [n for n, x, y in zip(want.names, a[f], b[f]) if not np.isclose(x, y, rtol=1e-5)]
        assert not bad, f"{name} {f}: {bad[:5]}"
