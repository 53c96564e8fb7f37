"""Top-1 accuracy of an ONNX classifier in onnxruntime on a labelled .npz.

    python examples/digits/reproduce.py MODEL.onnx [--data examples/digits/test.npz]

prints ``accuracy 0.9xxx (N samples)``. The model has one input; the .npz holds an array
named like it, ``[N, ...]`` (the samples along the first axis), and ``labels`` (int [N]).
A model whose batch dimension is fixed to 1 is run one sample at a time, any other on
all samples at once. The prediction is the argmax of the model's first output over its
last axis. Works on the model ``train.py`` wrote and on the reshaped one ``symbiote
search`` writes (``OUT_DIR/digits_cnn.onnx``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parent / "test.npz"

_FLOATS = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def _samples(data: dict[str, np.ndarray], name: str, path: Path) -> np.ndarray:
    if name in data:
        return data[name]
    others = [k for k in data if k != "labels"]
    if len(others) == 1:  # one array besides the labels: it is the input, whatever its name
        return data[others[0]]
    raise SystemExit(f"{path}: no array named {name!r} (the model's input); has: {', '.join(data)}")


def _session(model_path: str | Path, optimize: bool = True):
    """An onnxruntime CPU session; ``optimize=False`` turns its graph optimizations off (as
    symbiote measures: QDQ pairs computed in float as written, not fused into integer kernels)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    if len(sess.get_inputs()) != 1:
        raise SystemExit(f"{model_path}: {len(sess.get_inputs())} inputs; this script runs models with one input")
    return sess


def predictions(sess, x: np.ndarray) -> np.ndarray:
    """Top-1 class of each sample of ``x`` (first axis: samples) under an onnxruntime session."""
    inp = sess.get_inputs()[0]
    x = x.astype(_FLOATS.get(inp.type, x.dtype), copy=False)
    shape = list(inp.shape)
    if shape and shape[0] == 1:   # batch fixed to 1: one sample at a time
        out = [sess.run(None, {inp.name: x[i:i + 1]})[0] for i in range(len(x))]
        scores = np.concatenate([np.asarray(o).reshape(1, -1) for o in out])
    else:
        scores = np.asarray(sess.run(None, {inp.name: x})[0]).reshape(len(x), -1)
    return np.argmax(scores, axis=-1)


def accuracy(model_path: str | Path, data_path: str | Path = DEFAULT_DATA, optimize: bool = True) -> float:
    """Top-1 accuracy of the model on every sample of ``data_path`` against its ``labels``
    (``optimize``: onnxruntime's default graph optimizations)."""
    data_path = Path(data_path)
    with np.load(data_path) as z:
        data = {k: z[k] for k in z.files}
    if "labels" not in data:
        raise SystemExit(f"{data_path}: no array named 'labels'; has: {', '.join(data)}")
    sess = _session(model_path, optimize)
    x = _samples(data, sess.get_inputs()[0].name, data_path)
    labels = np.asarray(data["labels"]).reshape(-1)
    if len(x) != len(labels):
        raise SystemExit(f"{data_path}: {len(x)} samples but {len(labels)} labels")
    return float(np.mean(predictions(sess, x) == labels))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="the ONNX model (one input)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="labelled samples: the input array and 'labels'")
    ap.add_argument("--ort-optimizations", choices=("on", "off"), default="on",
                    help="onnxruntime's graph optimizations (default on, as deployed; off: as symbiote measures)")
    args = ap.parse_args(argv)
    acc = accuracy(args.model, args.data, optimize=args.ort_optimizations == "on")
    with np.load(args.data) as z:
        n = len(z["labels"])
    print(f"accuracy {acc:.4f} ({n} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
