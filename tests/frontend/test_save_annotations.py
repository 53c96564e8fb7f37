"""Annotations left by passes survive save/load, and a QDQ-exported model costs like its annotated IR."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

import symbiote
from symbiote.backends.manager import get_template
from symbiote.ir.lower import lower
from symbiote.ir.workload import FREE
from symbiote.passes.registry import parse_pipeline


def _cost(graph):
    t = get_template("systolic")
    m = t.evaluate(t.space.default(), lower(graph))
    return float(m.total_latency_cycles), float(m.total_energy_pj)


def test_node_annotations_round_trip(tmp_path):
    g = symbiote.load("zoo:tiny_cnn")
    out = parse_pipeline("set-precision(default=4),sparsify(ratio=0.5)")(g).graph
    annotated = {n.name: {k: v for k, v in n.meta.items() if not k.startswith("_")} for n in out.nodes}
    assert any("weight_bits" in m for m in annotated.values())
    path = tmp_path / "m.onnx"
    symbiote.save(out, path)
    onnx.checker.check_model(str(path), full_check=True)
    ort.InferenceSession(str(path))  # onnxruntime accepts node metadata
    back = symbiote.load(path)
    for n in back.nodes:
        assert {k: v for k, v in n.meta.items() if not k.startswith("_")} == annotated[n.name], n.name
    assert _cost(back) == _cost(out)


def test_qdq_exported_weights_cost_as_stored_weights(tmp_path):
    g = symbiote.load("zoo:tiny_cnn")
    plain = parse_pipeline("set-precision(default=4)")(g).graph
    qdq = parse_pipeline("set-precision(default=4,export_qdq=true)")(g).graph
    path = tmp_path / "q.onnx"
    symbiote.save(qdq, path)
    back = symbiote.load(path)
    wl = lower(back)
    formats = [i for i, name in enumerate(wl.names) if back.node(name).onnx_op in ("QuantizeLinear", "DequantizeLinear")]
    assert formats and all(int(wl.kind[i]) == FREE for i in formats)
    ref = lower(plain)
    for name in ref.names:  # every layer of the plain model is priced the same way
        i, j = ref.names.index(name), wl.names.index(name)
        for col in ("kind", "weight_elems", "in_elems", "weight_bits", "act_bits", "repeat", "w_repeat"):
            np.testing.assert_allclose(float(getattr(wl, col)[j]), float(getattr(ref, col)[i]), err_msg=f"{name}.{col}")
    np.testing.assert_allclose(_cost(back), _cost(plain), rtol=1e-6)
