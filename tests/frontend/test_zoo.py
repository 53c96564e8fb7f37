"""The zoo builders: valid ONNX, runnable, deterministic, and the published sizes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper, shape_inference

from symbiote.errors import SymbioteError
from symbiote.frontend import zoo

SMALL = ("resnet18", "mobilenet_v2", "bert", "lstm", "tiny_cnn", "resnet50")


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    m = shape_inference.infer_shapes(model, strict_mode=True)
    out = {t.name: list(t.dims) for t in m.graph.initializer}
    for vi in [*m.graph.value_info, *m.graph.input, *m.graph.output]:
        out[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    return out


def reference_macs(model: onnx.ModelProto) -> int:
    """An independent MAC count from ONNX shape inference (Conv, Gemm, MatMul, LSTM)."""
    shp = _shapes(model)
    total = 0
    for n in model.graph.node:
        if n.op_type == "Conv":
            total += int(np.prod(shp[n.output[0]])) * int(np.prod(shp[n.input[1]][1:]))
        elif n.op_type == "Gemm":
            m, k = shp[n.input[0]]
            total += m * k * shp[n.output[0]][1]
        elif n.op_type == "MatMul":
            total += int(np.prod(shp[n.input[0]])) * shp[n.input[1]][-1]
        elif n.op_type == "LSTM":
            seq, batch, _ = shp[n.input[0]]
            w, r = shp[n.input[1]], shp[n.input[2]]
            total += seq * batch * (w[1] * w[2] + r[1] * r[2])
    return total


def learned_params(model: onnx.ModelProto) -> int:
    """Trainable parameters (BN running statistics and index constants excluded)."""
    return sum(
        int(np.prod(t.dims))
        for t in model.graph.initializer
        if t.data_type == onnx.TensorProto.FLOAT and "running_" not in t.name and len(t.dims) > 0
    )


def test_names_lists_the_required_builders():
    assert {"resnet18", "resnet50", "mobilenet_v2", "bert", "lstm", "tiny_cnn"} <= set(zoo.names())


@pytest.mark.parametrize("name", SMALL)
def test_builds_valid_onnx_that_runs(name, zoo_model, onnx_runner):
    random_feeds, run_onnx = onnx_runner
    model = zoo_model(name)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    outs = run_onnx(model, random_feeds(model))
    declared = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    assert [list(o.shape) for o in outs] == declared
    for o in outs:
        assert np.isfinite(o).all()
        assert float(np.std(o)) > 1e-3  # not a constant output: the weights do something


@pytest.mark.parametrize("name", ["tiny_cnn", "bert", "lstm"])
def test_same_seed_same_model_other_seed_other_weights(name):
    a, b, c = zoo.build(name), zoo.build(name, seed=0), zoo.build(name, seed=1)
    assert a.SerializeToString() == b.SerializeToString()
    big = max(range(len(a.graph.initializer)), key=lambda i: int(np.prod(a.graph.initializer[i].dims)))
    wa = numpy_helper.to_array(a.graph.initializer[big])
    wc = numpy_helper.to_array(c.graph.initializer[big])
    assert wa.shape == wc.shape and not np.array_equal(wa, wc)


def test_readable_unique_node_names(zoo_model):
    model = zoo_model("resnet50")
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == len(names)
    assert {"conv1", "bn1", "layer1.0.conv1", "layer4.2.conv3", "layer2.0.downsample.0", "fc"} <= set(names)
    inits = {t.name for t in model.graph.initializer}
    assert "layer1.0.conv1.weight" in inits and "fc.bias" in inits


@pytest.mark.parametrize(
    ("name", "gmacs", "tol", "mparams", "ptol"),
    [
        # He et al. 2016 / torchvision model cards; Sandler et al. 2018 (see frontend/zoo.py)
        ("resnet18", 1.82, 0.02, 11.69, 0.05),
        ("resnet50", 4.09, 0.05, 25.56, 0.2),
        ("mobilenet_v2", 0.300, 0.01, 3.50, 0.05),
    ],
)
def test_published_macs_and_params(name, gmacs, tol, mparams, ptol, zoo_model):
    model = zoo_model(name)
    assert reference_macs(model) / 1e9 == pytest.approx(gmacs, abs=tol)
    assert learned_params(model) / 1e6 == pytest.approx(mparams, abs=ptol)


def test_published_macs_by_symbiote_analysis(zoo_model):
    """The IR's own analysis agrees with the published figures."""
    from symbiote.frontend import load
    from symbiote.ir import analysis

    for name, gmacs, tol, mparams in (("resnet50", 4.09, 0.05, 25.5), ("resnet18", 1.82, 0.02, 11.7), ("mobilenet_v2", 0.300, 0.01, 3.5)):
        stats = analysis.graph_stats(load(zoo_model(name)))
        assert stats.macs / 1e9 == pytest.approx(gmacs, abs=tol), name
        assert stats.params / 1e6 == pytest.approx(mparams, abs=0.2), name


@pytest.mark.slow
def test_bert_base_has_bert_base_size():
    model = zoo.build("bert_base", seq_len=8)
    assert learned_params(model) / 1e6 == pytest.approx(110.0, abs=1.0)
    gathers = [n for n in model.graph.node if n.op_type == "Gather"]
    assert any(n.input[0] == "embeddings.word_embeddings.weight" for n in gathers)
    assert sum(n.op_type == "LayerNormalization" for n in model.graph.node) == 1 + 2 * 12


def test_bert_is_configurable(onnx_runner):
    random_feeds, run_onnx = onnx_runner
    kw = dict(layers=3, hidden=64, heads=4, seq_len=16, intermediate=96, vocab_size=200)
    model = zoo.build("bert", num_labels=5, **kw)
    assert sum(n.op_type == "Softmax" for n in model.graph.node) == 3
    (logits,) = run_onnx(model, random_feeds(model))
    assert logits.shape == (1, 5)
    # attention MACs: 4 projections + 2 attention matmuls + 2 FFN matmuls per layer, + pooler, + classifier
    s, h, f = 16, 64, 96
    assert reference_macs(model) == 3 * (4 * s * h * h + 2 * s * s * h + 2 * s * h * f) + h * h + h * 5
    encoder = zoo.build("bert", head="encoder", **kw)
    hidden, pooled = run_onnx(encoder, random_feeds(encoder))
    assert hidden.shape == (1, 16, 64) and pooled.shape == (1, 64)
    assert reference_macs(encoder) == reference_macs(model) - h * 5
    with pytest.raises(zoo.ZooError, match="head='decoder'"):
        zoo.build("bert", head="decoder")


def test_lstm_has_two_lstm_layers(zoo_model):
    model = zoo_model("lstm")
    assert [n.op_type for n in model.graph.node].count("LSTM") == 2
    assert model.graph.node[-1].op_type == "Gemm"


def test_symbolic_batch_is_declared_as_dim_param(onnx_runner):
    random_feeds, run_onnx = onnx_runner
    model = zoo.build("tiny_cnn", batch="N")
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "N"
    feeds = {"pixel_values": np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)}
    assert run_onnx(model, feeds)[0].shape == (3, 10)


def test_mobilenet_width_multiplier_shrinks_the_model():
    half = zoo.build("mobilenet_v2", width_mult=0.5, image_size=96)
    full = zoo.build("mobilenet_v2", image_size=96)
    assert reference_macs(half) < 0.5 * reference_macs(full)


@pytest.mark.parametrize(
    ("name", "kwargs", "needle"),
    [
        ("resnet1000", {}, "resnet1000"),
        ("tiny_cnn", {"colour": 3}, "colour"),
        ("bert", {"hidden": 100, "heads": 3}, "heads"),
        ("lstm", {"hidden_size": 0}, "hidden_size"),
        ("resnet50", {"opset": 9}, "opset"),
    ],
)
def test_bad_names_and_arguments_raise_a_user_error(name, kwargs, needle):
    with pytest.raises(SymbioteError, match=needle):
        zoo.build(name, **kwargs)


def test_zoo_prefix_and_symbiote_zoo_alias():
    import symbiote.zoo

    assert symbiote.zoo.build is zoo.build
    assert zoo.build("zoo:tiny_cnn").graph.name == "tiny_cnn"
