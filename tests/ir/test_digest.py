"""``graph_digest``: equal for the same model loaded twice, different when anything it
computes with changes (a bias, a batch-norm parameter, an attribute), which is what lets
caches of measurements and resume fingerprints trust it."""

from __future__ import annotations

import numpy as np

from symbiote.frontend import load
from symbiote.frontend.zoo import build
from symbiote.ir.digest import graph_digest


def test_the_same_model_loaded_twice_has_one_digest():
    m = build("tiny_cnn")
    assert graph_digest(load(m)) == graph_digest(load(m)) == graph_digest(load(m).copy())


def test_a_batch_norm_parameter_or_an_attribute_changes_the_digest():
    g = load(build("tiny_cnn"))
    base = graph_digest(g)
    b = g.copy()
    shift = next(n for n in b.nodes if n.onnx_op == "BatchNormalization").input(2)
    shift.const = np.asarray(shift.const) + np.float32(1e-3)
    assert graph_digest(b) != base
    c = g.copy()
    conv = next(n for n in c.nodes if n.onnx_op == "Conv")
    conv.attrs["strides"] = [2, 2]
    assert graph_digest(c) != base
    assert graph_digest(g) == base  # the copies' changes did not touch the original
