"""Run graphs in onnxruntime and compare them: the check behind ``transform --verify``
and the conformance tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from symbiote.errors import ModelRunError
from symbiote.ir import dtypes
from symbiote.ir.graph import Graph


@dataclass(frozen=True)
class Comparison:
    max_abs: float   # max |a - b| over every output element
    max_rel: float   # max |a - b| / (|a| + 1e-6 * max|a| + 1e-12)... see rel_diff
    cosine: float    # cosine similarity of all outputs concatenated (1.0 = same direction)
    outputs: int

    def as_dict(self) -> dict[str, float]:
        return {"max_abs": self.max_abs, "max_rel": self.max_rel, "cosine": self.cosine, "outputs": self.outputs}


#: ops an index tensor passes through unchanged in value on its way to a Gather
_INDEX_PATH = frozenset({"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity", "Expand"})


def index_range(graph: Graph, v) -> int | None:
    """The number of rows of the constant table an integer input indexes, when it reaches a
    Gather's indices (through value-preserving ops: Cast, Reshape, ...): a vocabulary, a
    position table, token types. None when it does not."""
    frontier, seen, sizes = [v], set(), []
    while frontier:
        x = frontier.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        for node, i in x.uses:
            if node.onnx_op == "Gather" and i == 1:
                data = node.input(0)
                axis = int(node.attrs.get("axis", 0) or 0)
                if data is not None and data.shape is not None and isinstance(data.shape[axis], int):
                    sizes.append(int(data.shape[axis]))
            elif node.onnx_op in _INDEX_PATH and i == 0:
                frontier.extend(node.outputs)
    return min(sizes) if sizes else None


def random_inputs(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs that look like real ones: floats ~ N(0, 1) (normalized images, features);
    an integer input that indexes a table (token ids into a vocabulary, token types,
    positions: :func:`index_range`) uniform over the table's rows; other integers named like
    a mask all ones (nothing masked), else in {0, 1}; booleans in {False, True}."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for v in graph.inputs:
        if v.shape is None:
            raise ValueError(f"input {v.name!r} has no static shape")
        np_dt = dtypes.to_numpy(v.dtype)
        if dtypes.is_float(v.dtype):
            feeds[v.name] = rng.standard_normal(v.shape).astype(np_dt)
        elif v.dtype == "bool":
            feeds[v.name] = rng.integers(0, 2, v.shape).astype(bool)
        else:
            rows = index_range(graph, v)
            if rows is not None:
                feeds[v.name] = rng.integers(0, rows, v.shape).astype(np_dt)
            elif "mask" in v.name.lower():
                feeds[v.name] = np.ones(v.shape, np_dt)
            else:
                feeds[v.name] = rng.integers(0, 2, v.shape).astype(np_dt)
    return feeds


def to_model(graph: Graph):
    from symbiote.frontend.save import to_onnx

    return to_onnx(graph)


def check_model(graph: Graph) -> None:
    """onnx.checker on the exported model (raises onnx.checker.ValidationError)."""
    import onnx

    onnx.checker.check_model(to_model(graph))


def session(model: Any):
    """An onnxruntime CPU session of an ONNX model (ModelProto, bytes or path) with graph
    optimizations off, so what runs is what was written."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    src = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def run_model(model: Any, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run an ONNX model in a :func:`session`; feeds it does not take are ignored."""
    return _run_all(session(model), [feeds])[0]


def _run_all(sess: Any, feeds_list: Sequence[Mapping[str, np.ndarray]]) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    names = {i.name for i in sess.get_inputs()}
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # a failure is raised (and reported) by the caller, not logged twice
    return [sess.run(None, {k: v for k, v in feeds.items() if k in names}, quiet) for feeds in feeds_list]


def run_many(graph: Graph, feeds_list: Sequence[Mapping[str, np.ndarray]]) -> list[list[np.ndarray]]:
    """The graph's outputs in onnxruntime on each feed, from one session. Raises
    :class:`symbiote.errors.ModelRunError` (one line, what to do) when the model fails on them."""
    sess = session(to_model(graph))
    try:
        return _run_all(sess, feeds_list)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelRunError(_rejects(graph, feeds_list[0] if feeds_list else {}, e)) from None


def run(graph: Graph, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Export ``graph`` and run it in onnxruntime (see :func:`run_model`)."""
    return run_model(to_model(graph), feeds)


def compare_outputs(a: list[np.ndarray], b: list[np.ndarray]) -> Comparison:
    if len(a) != len(b):
        raise ValueError(f"output counts differ: {len(a)} vs {len(b)}")
    max_abs = max_rel = 0.0
    fa, fb = [], []
    for x, y in zip(a, b):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"output shapes differ: {x.shape} vs {y.shape}")
        if x.size == 0:
            continue
        d = np.abs(x - y)
        max_abs = max(max_abs, float(d.max()))
        scale = np.abs(x) + 1e-6 * float(np.abs(x).max()) + 1e-12
        max_rel = max(max_rel, float((d / scale).max()))
        fa.append(x.reshape(-1))
        fb.append(y.reshape(-1))
    va = np.concatenate(fa) if fa else np.zeros(1)
    vb = np.concatenate(fb) if fb else np.zeros(1)
    na, nb = np.linalg.norm(va), np.linalg.norm(vb)
    cos = float(va @ vb / (na * nb)) if na > 0 and nb > 0 else float(na == nb)
    return Comparison(max_abs, max_rel, cos, len(a))


def compare(original: Graph, result: Graph, seed: int = 0) -> Comparison:
    """Run both graphs on the same seeded random inputs and compare their outputs.

    Raises :class:`symbiote.errors.ModelRunError` when the original model itself fails on
    those inputs: the model, not the passes, rejects them (fix such inputs with
    ``input_values`` / ``--input-value``)."""
    feeds = random_inputs(original, seed)
    (before,) = run_many(original, [feeds])
    return compare_outputs(before, run(result, feeds))


def _rejects(graph: Graph, feeds: Mapping[str, np.ndarray], error: Exception) -> str:
    first = " ".join(str(error).split())[:300]
    scalars = [k for k, v in feeds.items() if v.ndim == 0 or v.size == 1]
    hint = (f"; if an input takes only some values (e.g. a sample rate), fix it with --input-value NAME=VALUE "
            f"(scalar inputs here: {', '.join(scalars)})" if scalars else "")
    return (f"{graph.meta.get('source', graph.name)}: the original model fails in onnxruntime on seeded random inputs "
            f"(floats ~ N(0, 1), integers in {{0, 1}}, unless given as data): {first}{hint}")


def allclose(original: Graph, result: Graph, rtol: float = 1e-4, atol: float = 1e-5, seed: int = 0) -> bool:
    feeds = random_inputs(original, seed)
    return all(np.allclose(x, y, rtol=rtol, atol=atol) for x, y in zip(run(original, feeds), run(result, feeds)))
