"""Train the small digits CNN and write the files beside this script.

    pip install scikit-learn        # the data set (load_digits ships with it, offline)
    python examples/digits/train.py

scikit-learn's handwritten digits (1797 images of 8x8 pixels, values 0-16, ten classes)
are split once with a fixed seed: 60% train, 20% calibration, 20% test; pixels are
scaled to [0, 1]. A small CNN is trained with JAX + optax (Adam, fixed seeds):

    x[1,1,8,8] -> Conv 1->16 3x3 pad 1 -> Relu -> Conv 16->32 3x3 pad 1 -> Relu
               -> MaxPool 2x2 -> Flatten -> Gemm 512->10 -> logits[1,10]

and written as ONNX with ``onnx.helper`` (opset 17), checked with ``onnx.checker`` and run
in onnxruntime on the test split, whose accuracy is printed. Files written:

* ``digits_cnn.onnx``: the model (input ``x`` [1,1,8,8] float32, output ``logits`` [1,10]);
* ``calibration.npz``: ``x`` [128,1,8,8], the first samples of the calibration split
  (``symbiote search --calibration``);
* ``test.npz``: ``x`` [N,1,8,8] and ``labels`` int64 [N], the whole test split
  (``symbiote search --eval-data`` and ``reproduce.py``).

Running it again rewrites the same files, byte for byte on the same machine and library
versions (fixed seeds; the .npz archives carry a fixed timestamp).
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import optax
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
SEED = 0
TRAIN_FRACTION, CALIBRATION_FRACTION = 0.6, 0.2   # the rest is the test split
CALIBRATION_SAMPLES = 128                         # written to calibration.npz
STEPS = 400
BATCH = 64
LEARNING_RATE = 3e-3
INPUT, OUTPUT = "x", "logits"
CHANNELS = (16, 32)


# ---- data -----------------------------------------------------------------------------
def load_split(seed: int = SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train" | "calibration" | "test": (x [N,1,8,8] float32 in [0,1], labels int64 [N])}``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_train = int(round(TRAIN_FRACTION * len(y)))
    n_cal = int(round(CALIBRATION_FRACTION * len(y)))
    parts = {"train": order[:n_train], "calibration": order[n_train:n_train + n_cal],
             "test": order[n_train + n_cal:]}
    return {k: (np.ascontiguousarray(x[i]), y[i]) for k, i in parts.items()}


# ---- model ----------------------------------------------------------------------------
def init_params(seed: int = SEED) -> dict[str, jnp.ndarray]:
    """Seeded He-normal weights (LeCun-normal for the last layer; ONNX layouts: conv OIHW, Gemm [in,
    out]), zero biases."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    c1, c2 = CHANNELS

    def normal(key, shape, fan_in, gain=2.0):
        return jax.random.normal(key, shape, jnp.float32) * np.float32(np.sqrt(gain / fan_in))

    return {"w1": normal(k1, (c1, 1, 3, 3), 9), "b1": jnp.zeros((c1,), jnp.float32),
            "w2": normal(k2, (c2, c1, 3, 3), 9 * c1), "b2": jnp.zeros((c2,), jnp.float32),
            "w3": normal(k3, (c2 * 16, 10), c2 * 16, gain=1.0), "b3": jnp.zeros((10,), jnp.float32)}


def forward(params: dict[str, jnp.ndarray], x: jnp.ndarray) -> jnp.ndarray:
    """Logits [B,10] of x [B,1,8,8]: the same computation as the ONNX graph."""
    dn = ("NCHW", "OIHW", "NCHW")
    h = jax.lax.conv_general_dilated(x, params["w1"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn)
    h = jax.nn.relu(h + params["b1"][None, :, None, None])
    h = jax.lax.conv_general_dilated(h, params["w2"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn)
    h = jax.nn.relu(h + params["b2"][None, :, None, None])
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    return h.reshape(h.shape[0], -1) @ params["w3"] + params["b3"]


def train(x: np.ndarray, y: np.ndarray, steps: int = STEPS, seed: int = SEED) -> dict[str, np.ndarray]:
    """Adam on seeded minibatches of (x, y); the trained parameters as numpy arrays."""
    params = init_params(seed)
    opt = optax.adam(LEARNING_RATE)
    state = opt.init(params)

    def loss_fn(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(forward(p, xb), yb).mean()

    @jax.jit
    def step(p, s, xb, yb):
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    rng = np.random.default_rng(seed + 1)
    order = np.empty(0, np.int64)
    for _ in range(steps):
        if len(order) < BATCH:  # reshuffled epochs, drawn from one seeded stream
            order = np.concatenate([order, rng.permutation(len(y))])
        idx, order = order[:BATCH], order[BATCH:]
        params, state, _ = step(params, state, jnp.asarray(x[idx]), jnp.asarray(y[idx].astype(np.int32)))
    return {k: np.asarray(v, np.float32) for k, v in params.items()}


def to_onnx(params: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The network as ONNX (opset 17, batch 1), written node by node with ``onnx.helper``."""
    c2 = params["w2"].shape[0]
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in params.items()]
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", [INPUT, "w1", "b1"], ["conv1"], name="conv1", **conv),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("Conv", ["relu1", "w2", "b2"], ["conv2"], name="conv2", **conv),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "w3", "b3"], [OUTPUT], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, 10])], inits)
    graph.value_info.extend([
        helper.make_tensor_value_info("pool", TensorProto.FLOAT, [1, c2, 4, 4]),
        helper.make_tensor_value_info("flat", TensorProto.FLOAT, [1, c2 * 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="symbiote examples/digits/train.py")
    model.ir_version = 8  # opset 17's IR version: readable by every onnx/onnxruntime the project supports
    onnx.checker.check_model(model, full_check=True)
    return model


# ---- files ----------------------------------------------------------------------------
def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed``'s format, with a fixed timestamp: the same arrays, the same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, a in arrays.items():
            body = io.BytesIO()
            np.lib.format.write_array(body, np.ascontiguousarray(a), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, body.getvalue())
    path.write_bytes(buf.getvalue())


def onnxruntime_accuracy(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the ONNX model in onnxruntime, one sample at a time (batch 1)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    pred = [int(np.argmax(sess.run([OUTPUT], {INPUT: x[i:i + 1]})[0])) for i in range(len(y))]
    return float(np.mean(np.asarray(pred) == y))


def main(out_dir: Path = HERE) -> float:
    split = load_split()
    params = train(*split["train"])
    model = to_onnx(params)
    x_test, y_test = split["test"]
    acc = onnxruntime_accuracy(model, x_test, y_test)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "digits_cnn.onnx").write_bytes(model.SerializeToString())
    write_npz(out_dir / "calibration.npz", {INPUT: split["calibration"][0][:CALIBRATION_SAMPLES]})
    write_npz(out_dir / "test.npz", {INPUT: x_test, "labels": y_test})
    print(f"train {len(split['train'][1])}, calibration {CALIBRATION_SAMPLES} of {len(split['calibration'][1])}, "
          f"test {len(y_test)} samples")
    print(f"test accuracy (onnxruntime) {acc:.4f} ({len(y_test)} samples)")
    return acc


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
