"""Framework wrappers: export with the framework's own exporter, load, save, compare in onnxruntime."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest

from symbiote.errors import SymbioteError
from symbiote.frontend import frameworks
from symbiote.frontend.save import to_onnx


def _ort(model: onnx.ModelProto, feeds):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


# ----------------------------------------------------------------------------- missing frameworks


@pytest.mark.parametrize(
    ("fn", "args", "module", "extra"),
    [
        ("from_torch", (None, ()), "torch", "torch"),
        ("from_tensorflow", (None,), "tensorflow", "tensorflow"),
        ("from_jax", (lambda x: x, ()), "jax2onnx", "jax2onnx"),
        ("from_sklearn", (None, []), "sklearn", "sklearn"),
    ],
)
def test_missing_framework_names_the_pip_extra(fn, args, module, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(frameworks.MissingFrameworkError, match=rf"symbiote\[{extra}\]") as e:
        getattr(frameworks, fn)(*args)
    assert isinstance(e.value, SymbioteError)


def test_lazy_reexport_from_frontend():
    import symbiote.frontend as fe

    assert fe.from_torch is frameworks.from_torch and fe.from_sklearn is frameworks.from_sklearn


# ----------------------------------------------------------------------------- torch


def _torch_models():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class ConvBnRes(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.down = nn.Conv2d(3, 8, 1)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = torch.relu(self.bn2(self.conv2(y)) + self.down(x))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))

    class Lstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(6, 12, num_layers=2, batch_first=True)
            self.head = nn.Linear(12, 3)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.head(y[:, -1])

    class Block(nn.Module):
        """A tiny pre-LN transformer block (attention written out, GELU MLP)."""

        def __init__(self, d=16, heads=2):
            super().__init__()
            self.heads = heads
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):
            b, s, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
            split = lambda t: t.reshape(b, s, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
            q, k, v = split(q), split(k), split(v)
            att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(b, s, d))
            return x + self.mlp(self.ln2(x))

    torch.manual_seed(0)
    models = {"conv_bn_res": (ConvBnRes(), torch.randn(1, 3, 12, 12)),
              "lstm": (Lstm(), torch.randn(1, 7, 6)),
              "transformer_block": (Block(), torch.randn(1, 10, 16))}
    for m, _ in models.values():
        for mod in m.modules():  # non-trivial batch-norm statistics
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
        m.eval()
    return torch, models


@pytest.mark.parametrize("dynamo", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", ["conv_bn_res", "lstm", "transformer_block"])
def test_from_torch_round_trips(name, dynamo, monkeypatch):
    torch, models = _torch_models()
    if dynamo:
        pytest.importorskip("onnxscript")
    module, x = models[name]
    with torch.no_grad():
        want = module(x).numpy()
    seen = []
    real = frameworks.torch_to_onnx

    def spy(*a, **k):  # keep the exporter's own model to compare with
        seen.append(real(*a, **k))
        return seen[-1]

    monkeypatch.setattr(frameworks, "torch_to_onnx", spy)
    graph = frameworks.from_torch(module, (x,), dynamo=dynamo)
    (exported,) = seen
    if dynamo:
        assert {o.domain: o.version for o in exported.opset_import}[""] >= 18
    graph.verify()
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    feed_name = model.graph.input[0].name
    (got,) = _ort(model, {feed_name: x.numpy()})
    (direct,) = _ort(exported, {exported.graph.input[0].name: x.numpy()})
    np.testing.assert_allclose(got, direct, rtol=1e-5, atol=1e-6)  # the round trip is exact
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)  # and matches torch


def test_from_torch_export_failure_is_a_user_error():
    torch, _ = _torch_models()

    class Bad(torch.nn.Module):
        def forward(self, x):
            return x.numpy()  # not traceable

    with pytest.raises(frameworks.ExportError, match="Bad"):
        frameworks.from_torch(Bad(), (torch.randn(2),))


# ----------------------------------------------------------------------------- scikit-learn


def test_from_sklearn_pipeline_matches_predict():
    pytest.importorskip("sklearn")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1
    pipe = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)
    FloatTensorType = skl2onnx.common.data_types.FloatTensorType
    graph = frameworks.from_sklearn(pipe, [("X", FloatTensorType([5, 4]))])
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    assert any(o.domain == "ai.onnx.ml" for o in model.opset_import)
    (got,) = _ort(model, {"X": X[:5]})
    np.testing.assert_allclose(got.ravel(), pipe.predict(X[:5]), rtol=1e-4, atol=1e-4)
