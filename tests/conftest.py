"""Shared fixtures: zoo models built once per session, a seeded onnxruntime runner."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest

#: small-but-real configurations used by the round-trip tests (full sizes for the CNNs)
ZOO_CONFIGS: dict[str, dict] = {
    "resnet18": {},
    "resnet50": {},
    "mobilenet_v2": {},
    "bert": {},
    "lstm": {},
    "tiny_cnn": {},
}


@pytest.fixture(scope="session")
def zoo_model() -> Callable[..., onnx.ModelProto]:
    """``zoo_model(name, **kwargs)``: a zoo model, built once per session per argument set.

    Callers must not mutate the returned proto (copy it first).
    """
    from symbiote.frontend import zoo

    cache: dict[tuple, onnx.ModelProto] = {}

    def get(name: str, **kwargs) -> onnx.ModelProto:
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = zoo.build(name, **kwargs)
        return cache[key]

    return get


def random_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random inputs for every graph input that is not an initializer (unknown dims -> 1)."""
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tt.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        if np.issubdtype(dtype, np.integer):
            feeds[vi.name] = rng.integers(0, 100, size=shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[vi.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def run_onnx(model: onnx.ModelProto | str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run a model (proto or path) in onnxruntime on CPU."""
    import onnxruntime as ort

    src = model if isinstance(model, str) else model.SerializeToString()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.fixture(scope="session")
def onnx_runner():
    """(random_feeds, run_onnx) helpers for tests in any folder."""
    return random_feeds, run_onnx
