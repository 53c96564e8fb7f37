"""What is priced is what is checked, and measurements are reused only for the same model.

* A bit-width knob goes only to layers that ``set-precision`` writes at a bit-width: an
  LSTM, which it keeps in float, must not get one (it used to be priced at, say, 4 bits
  while the check ran it in float).
* The sensitivity cache is keyed by the whole graph: two models that differ only in a
  bias get their own sensitivities (the key used to hash only the MAC weights).
"""

from __future__ import annotations

import numpy as np

from symbiote.frontend import load
from symbiote.frontend.zoo import build
from symbiote.search.codesign import prepare_network


def test_recurrent_layers_get_no_bit_width_knob():
    graph = load(build("lstm", seq_len=4, input_size=8, hidden_size=8, num_layers=2, num_classes=4))
    lstms = [n.name for n in graph.nodes if n.onnx_op == "LSTM"]
    assert len(lstms) == 2
    net = prepare_network("zoo:lstm", graph=graph, calibrate=False)
    assert net.layer_names, "the Gemm head keeps its knob"
    assert not set(net.layer_names) & set(lstms)
    assert all(graph.node(n).onnx_op in ("Conv", "ConvTranspose", "Gemm", "MatMul") for n in net.layer_names)


def test_sensitivities_of_a_model_that_differs_only_in_a_bias_are_measured_again():
    from symbiote.search.sensitivity import layer_sensitivities

    a = load(build("tiny_cnn"))
    b = a.copy()
    bn = next(n for n in b.nodes if n.onnx_op == "BatchNormalization")
    shift = bn.input(2)  # the batch norm's bias: not a MAC layer's weight
    shift.const = (np.asarray(shift.const) + 5.0).astype(np.asarray(shift.const).dtype)
    layers = [n.name for n in a.nodes if n.onnx_op in ("Conv", "Gemm", "MatMul")]
    rng = np.random.default_rng(0)
    x = a.inputs[0]
    inputs = [{x.name: rng.standard_normal(x.shape).astype(np.float32)}]
    first = layer_sensitivities(a, layers, inputs, probe_bits=4)
    again = layer_sensitivities(a, layers, inputs, probe_bits=4)
    other = layer_sensitivities(b, layers, inputs, probe_bits=4)
    assert again.seconds == 0.0  # the same model: served from the cache
    assert other.seconds > 0.0  # another model: measured, not served another model's figures
    assert not np.allclose(first.loss, other.loss)
