"""Fine-tuning by distillation (search/finetune.py): a pruned digits CNN wins its test accuracy
back, a quantized student keeps its quantizers, the losses mean what they say, bad setups
are refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.frontend import load
from symbiote.frontend.save import save
from symbiote.passes import parse_pipeline
from symbiote.search import finetune as ft
from symbiote.search.accuracy import calibration_inputs, compare
from symbiote.search.samples import labels_of

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"
MODEL, CALIBRATION, TEST = DIGITS / "digits_cnn.onnx", DIGITS / "calibration.npz", DIGITS / "test.npz"
ORIGINAL_ACCURACY = 0.9889  # examples/digits/README.md: the model's test accuracy in onnxruntime


@pytest.fixture(scope="module")
def digits():
    teacher = load(str(MODEL))
    test = calibration_inputs(teacher, TEST)
    return teacher, test, labels_of(TEST, len(test)), calibration_inputs(teacher, CALIBRATION)


def _weights(g) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    return {n: (tuple(v.const.shape), v.const.dtype) for n, v in g.constants.items()}


def test_finetune_wins_back_the_test_accuracy_that_pruning_lost(digits, tmp_path):
    teacher, test, labels, train = digits
    student = parse_pipeline("prune(ratio=0.5)")(teacher).graph
    pruned = compare(teacher, student, test, labels=labels)
    assert pruned.accuracy_original == pytest.approx(ORIGINAL_ACCURACY, abs=1e-4)
    assert pruned.accuracy < 0.7                                    # 0.567: pruning alone collapses it

    res = ft.finetune(student, teacher, train, steps=300, lr=3e-3, batch=32, seed=0)  # label-free, 128 samples
    assert len(res.losses) == 300 and not res.labelled
    assert np.mean(res.losses[-20:]) < 0.05 * res.losses[0]
    assert _weights(res.graph) == _weights(student)                 # pruned shapes kept
    written = load(str(save(res.graph, tmp_path / "tuned.onnx")))   # measured on the file, in onnxruntime
    after = compare(teacher, written, test, labels=labels)
    assert after.accuracy >= ORIGINAL_ACCURACY - 0.01               # 0.9889 measured (0.5667 after pruning)
    assert after.fidelity > pruned.fidelity + 0.1 and after.agreement > 0.98


def test_a_quantized_student_keeps_its_quantizers_and_is_reproducible(digits):
    teacher, test, labels, train = digits
    student = parse_pipeline("prune(ratio=0.5),set-precision(default=4,export_qdq=true)")(teacher).graph
    a = ft.finetune(student, teacher, train[:64], steps=60, lr=3e-3, batch=16, seed=3)
    b = ft.finetune(student, teacher, train[:64], steps=60, lr=3e-3, batch=16, seed=3)
    assert a.losses == b.losses                                     # seeded minibatches
    assert _weights(a.graph) == _weights(student)                   # int4 levels stay int8-stored integers
    for name, v in a.graph.constants.items():
        old = student.constants[name].const
        if name.endswith((".scale", ".zero_point")):
            np.testing.assert_array_equal(v.const, old)             # the quantizer itself is not trained
        elif np.issubdtype(v.const.dtype, np.integer):
            assert v.const.min() >= -7 and v.const.max() <= 7       # 4-bit levels
    assert any(not np.array_equal(v.const, student.constants[n].const) for n, v in a.graph.constants.items())
    assert compare(teacher, a.graph, test).fidelity > compare(teacher, student, test).fidelity


def test_labels_mix_the_cross_entropy_in(digits):
    teacher, _, _, train = digits
    student = parse_pipeline("prune(ratio=0.5)")(teacher).graph
    labels = [np.array([k % 10]) for k in range(32)]
    tg = ft.targets(teacher, train[:32], labels)
    assert tg.label_output == 0 and tg.labels.shape == (32, 1) and tg.kinds == ("scores",)
    res = ft.finetune(student, teacher, train[:32], labels=labels, steps=2, batch=8, alpha=1.0)
    assert res.labelled and res.as_dict()["alpha"] == 1.0
    with pytest.raises(ft.FinetuneError, match=r"labels must lie in \[0, 9\]"):
        ft.targets(teacher, train[:2], [np.array([3]), np.array([10])])


def test_distillation_loss_is_zero_on_a_match_and_scale_free_on_values():
    t = np.array([[[2.0, -1.0, 0.5]], [[0.0, 3.0, 1.0]]], np.float32)  # [N=2, 1, 3] scores
    v = np.array([[100.0], [300.0]], np.float32)                       # a value output, variance 10^4
    kinds, var = ("scores", "values"), (1.0, float(np.var(v)))
    assert float(ft.distill_loss([t, v], [t, v], kinds, var, 2.0)) == pytest.approx(0.0, abs=1e-6)
    # off by one teacher standard deviation on the value output: its term is 1, averaged over 2 outputs
    assert float(ft.distill_loss([t, v + 100.0], [t, v], kinds, var, 2.0)) == pytest.approx(0.5, rel=1e-5)
    # scores: KL(p || q) on the softened scores, scaled by T^2, plus the value term; integer outputs are skipped
    s = t[::-1].copy()
    p, q = (np.exp(a / 2) / np.exp(a / 2).sum(-1, keepdims=True) for a in (t, s))
    kl = 4.0 * np.mean(np.sum(p * (np.log(p) - np.log(q)), -1))
    got = ft.distill_loss([s, np.zeros(2, np.int64)], [t, np.zeros(2, np.int64)], ("scores", None), (2.0, 1.0), 2.0)
    assert float(got) == pytest.approx(kl + np.mean((s - t) ** 2) / 2.0, rel=1e-5)
    # a shift of every score of a position: invisible to the KL term, not to the value term
    shifted = float(ft.distill_loss([t + 1.0], [t], ("scores",), (1.0,), 2.0))
    assert shifted == pytest.approx(1.0, rel=1e-5)
    assert float(ft.label_loss(np.array([[0.0, 50.0]]), np.array([[1]]))) == pytest.approx(0.0, abs=1e-6)


def _gemm(name: str, k: int, n: int, out: str = "y"):
    w = numpy_helper.from_array(np.ones((k, n), np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], [out])], name,
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, n])], [w])
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps must be at least 1, not 0"),
    ({"lr": 0.0}, "learning rate must be positive"),
    ({"batch": 0}, "batch must hold at least 1 sample"),
    ({"alpha": 1.5}, r"alpha .* must be in \[0, 1\]"),
    ({"schedule": "step"}, "schedule 'step': one of cosine, constant"),
])
def test_bad_settings_are_refused(kwargs, message):
    g = _gemm("a", 4, 3)
    with pytest.raises(ft.FinetuneError, match=message):
        ft.finetune(g, g, [{"x": np.ones((1, 4), np.float32)}], **kwargs)


def test_models_that_do_not_match_are_refused_in_one_line():
    feeds = [{"x": np.ones((1, 4), np.float32)}]
    with pytest.raises(ft.FinetuneError, match=r"student's inputs \(x\[1, 5\]:float32\) differ") as e:
        ft.finetune(_gemm("s", 5, 3), _gemm("t", 4, 3), feeds, steps=1)
    assert "\n" not in str(e.value)
    with pytest.raises(ft.FinetuneError, match=r"outputs \(z\[1, 3\]:float32\) differ .* \(y\[1, 3\]:float32\)"):
        ft.finetune(_gemm("s", 4, 3, out="z"), _gemm("t", 4, 3), feeds, steps=1)
    with pytest.raises(ft.FinetuneError, match="no training samples"):
        ft.finetune(_gemm("s", 4, 3), _gemm("t", 4, 3), [], steps=1)


@pytest.mark.parametrize("steps", [1, 5, 10])
def test_a_short_run_already_learns_from_its_first_step(steps):
    # under 10 steps there is no warm-up (whose first rate is 0); a student of ones moves
    # toward a teacher of twos from step 1 on, and never errs on the schedule's length
    teacher = _gemm("t", 4, 3)
    teacher.constants["w"].const = np.full((4, 3), 2.0, np.float32)
    student = _gemm("s", 4, 3)
    feeds = [{"x": np.full((1, 4), 0.5 + i, np.float32)} for i in range(4)]
    res = ft.finetune(student, teacher, feeds, steps=steps, lr=0.05, batch=4)
    w = res.graph.constants["w"].const
    assert len(res.losses) == steps and np.all(w > 1.0) and np.all(w < 2.0)
