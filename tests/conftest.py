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


# ----------------------------------------------------------------------------- control flow
class ControlFlowModels:
    """Small hand-built ONNX models with If / Loop / Scan (seeded weights, opset 17).

    ``if_lstm(cond)``: ``x[seq,1,inp] -> If -> Relu``; the then-branch runs an LSTM over ``x``
    (weights are outer initializers read by name), the else-branch a small MatMul on the last
    step. ``cond``: ``"true"``/``"false"`` (a Constant), ``"data"`` (``ReduceSum(x) < 0``), or
    ``"sr"`` (``Equal(sr, 16000)`` on an int64 scalar input ``sr``, silero-vad style).
    ``loop(static)``: ``h <- tanh(h @ W)`` ``trip`` times (``M`` constant) or ``n`` times
    (``n`` an input); outputs the final ``h`` and the stacked ``h`` of every iteration.
    """

    SEQ, INP, HIDDEN = 5, 4, 8

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def _w(self, name: str, *shape: int) -> onnx.TensorProto:
        return onnx.numpy_helper.from_array((self.rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    @staticmethod
    def _i64(name: str, values) -> onnx.TensorProto:
        return onnx.numpy_helper.from_array(np.array(values, np.int64), name)

    def lstm_macs(self) -> int:
        return self.SEQ * 1 * 4 * self.HIDDEN * (self.INP + self.HIDDEN)

    def if_lstm(self, cond: str) -> onnx.ModelProto:
        from onnx import TensorProto as T
        from onnx import helper as h

        seq, inp, hid = self.SEQ, self.INP, self.HIDDEN
        then_g = h.make_graph([h.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "Yh"], name="lstm", hidden_size=hid),
                               h.make_node("Squeeze", ["Yh", "ax0"], ["t"], name="squeeze")],
                              "then", [], [h.make_tensor_value_info("t", T.FLOAT, None)])
        else_g = h.make_graph([h.make_node("MatMul", ["last", "P"], ["e"], name="proj")],
                              "else", [], [h.make_tensor_value_info("e", T.FLOAT, None)])
        inputs = [h.make_tensor_value_info("x", T.FLOAT, [seq, 1, inp])]
        nodes = []
        if cond == "sr":
            inputs.append(h.make_tensor_value_info("sr", T.INT64, []))
            nodes.append(h.make_node("Equal", ["sr", "k16000"], ["c"], name="is16k"))
        elif cond == "data":
            nodes += [h.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
                      h.make_node("Less", ["s", "zero"], ["c"], name="negative")]
        else:
            nodes.append(h.make_node("Constant", [], ["c"], value=onnx.numpy_helper.from_array(np.array(cond == "true"))))
        nodes += [h.make_node("Slice", ["x", "st", "en", "ax0"], ["xs"], name="last_step"),
                  h.make_node("Reshape", ["xs", "shp"], ["last"], name="flat"),
                  h.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g, else_branch=else_g),
                  h.make_node("Relu", ["y"], ["out"], name="relu")]
        inits = [self._w("W", 1, 4 * hid, inp), self._w("R", 1, 4 * hid, hid), self._w("B", 1, 8 * hid), self._w("P", inp, hid),
                 self._i64("k16000", 16000), onnx.numpy_helper.from_array(np.array(0, np.float32), "zero"),
                 self._i64("ax0", [0]), self._i64("st", [seq - 1]), self._i64("en", [seq]), self._i64("shp", [1, inp])]
        g = h.make_graph(nodes, "if_lstm", inputs, [h.make_tensor_value_info("out", T.FLOAT, [1, hid])], inits)
        m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
        m.ir_version = 8
        return m

    def loop(self, static: bool = True, trip: int = 3) -> onnx.ModelProto:
        from onnx import TensorProto as T
        from onnx import helper as h

        hid = self.HIDDEN
        body = h.make_graph(
            [h.make_node("MatMul", ["h_in", "Wl"], ["mm"], name="step"), h.make_node("Tanh", ["mm"], ["h_out"], name="tanh"),
             h.make_node("Identity", ["cond_in"], ["cond_out"], name="keep_going"), h.make_node("Identity", ["h_out"], ["h_scan"], name="emit")],
            "body", [h.make_tensor_value_info("i", T.INT64, []), h.make_tensor_value_info("cond_in", T.BOOL, []),
                     h.make_tensor_value_info("h_in", T.FLOAT, None)],
            [h.make_tensor_value_info("cond_out", T.BOOL, []), h.make_tensor_value_info("h_out", T.FLOAT, None),
             h.make_tensor_value_info("h_scan", T.FLOAT, None)])
        inputs = [h.make_tensor_value_info("x", T.FLOAT, [1, hid])]
        if not static:
            inputs.append(h.make_tensor_value_info("n", T.INT64, []))
        nodes = [h.make_node("Loop", ["M" if static else "n", "go", "x"], ["h_final", "hs"], name="loop", body=body)]
        inits = [self._w("Wl", hid, hid), self._i64("M", trip), onnx.numpy_helper.from_array(np.array(True), "go")]
        outs = [h.make_tensor_value_info("h_final", T.FLOAT, [1, hid]),
                h.make_tensor_value_info("hs", T.FLOAT, [trip if static else "steps", 1, hid])]
        m = h.make_model(h.make_graph(nodes, "loop", inputs, outs, inits), opset_imports=[h.make_opsetid("", 17)])
        m.ir_version = 8
        return m


@pytest.fixture
def cf_models() -> ControlFlowModels:
    """Builders of small If/Loop models (see :class:`ControlFlowModels`)."""
    return ControlFlowModels()
