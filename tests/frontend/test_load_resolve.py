"""Input-shape resolution: user shapes by name, batch-like defaults, shared symbols, clear errors."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from symbiote.errors import ShapeError
from symbiote.frontend import load
from symbiote.frontend.resolve import DeclaredInput, is_batch_like, resolve_inputs


def test_batch_like_dims():
    assert is_batch_like(0, "batch") and is_batch_like(1, "batch_size") and is_batch_like(2, "N")
    assert is_batch_like(0, None) and is_batch_like(0, "unk__7") and is_batch_like(0, "s0")
    assert not is_batch_like(1, None) and not is_batch_like(1, "sequence") and not is_batch_like(2, "s31")
    assert not is_batch_like(0, "sequence")


def test_user_shapes_bind_shared_symbols():
    ins = [DeclaredInput("input_ids", ("batch", "seq")), DeclaredInput("mask", ("batch", "seq")),
           DeclaredInput("pos", (1, "seq"))]
    got = resolve_inputs(ins, {"input_ids": [2, 128]})
    assert got == {"input_ids": (2, 128), "mask": (2, 128), "pos": (1, 128)}


def test_defaults_and_static_dims():
    ins = [DeclaredInput("x", (None, 3, 224, 224)), DeclaredInput("y", ("seq", "batch", 8))]
    with pytest.raises(ShapeError, match=r"'y' dim 0 \('seq'\)"):
        resolve_inputs(ins, None)
    got = resolve_inputs(ins, {"y": [5, 2, 8]})
    assert got == {"x": (1, 3, 224, 224), "y": (5, 2, 8)}


def test_conflicting_symbol_values():
    ins = [DeclaredInput("a", ("n", "k")), DeclaredInput("b", ("n", "k"))]
    with pytest.raises(ShapeError, match="'k' is given two values"):
        resolve_inputs(ins, {"a": [1, 4], "b": [1, 5]})


def test_no_declared_shape_needs_a_given_one():
    with pytest.raises(ShapeError, match="'x' declares no shape"):
        resolve_inputs([DeclaredInput("x", None)], None)
    assert resolve_inputs([DeclaredInput("x", None)], {"x": (3, 4)}) == {"x": (3, 4)}


def test_load_uses_given_shapes_and_recomputes_everything():
    x = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    node = helper.make_node("GlobalAveragePool", ["pixel_values"], ["y"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [99, 99, 99, 99])  # wrong on purpose
    m = helper.make_model(helper.make_graph([node], "g", [x], [y]))
    m.ir_version = 9
    g = load(m, input_shapes={"pixel_values": (4, 3, 64, 32)})
    assert g.inputs[0].shape == (4, 3, 64, 32) and g.outputs[0].shape == (4, 3, 1, 1)
    with pytest.raises(ShapeError, match=r"'pixel_values' dim 2 \('height'\)"):
        load(m)


def test_anonymous_dims_are_never_shared():
    from symbiote.frontend.resolve import is_anonymous

    assert is_anonymous("?") and is_anonymous("") and is_anonymous(None) and is_anonymous("unk__12")
    assert not is_anonymous("batch") and not is_anonymous("s0") and not is_anonymous("seq")
    # paddle2onnx names every unknown dim '?': two of them may differ
    ins = [DeclaredInput("image", ("?", 3, "?", "?")), DeclaredInput("scale", ("?", 2))]
    got = resolve_inputs(ins, {"image": [1, 3, 48, 192]})
    assert got == {"image": (1, 3, 48, 192), "scale": (1, 2)}  # the batch-like first dim still defaults to 1
    with pytest.raises(ShapeError, match=r"'image' dim 2 \('\?'\) is unknown"):
        resolve_inputs(ins, None)
    unk = [DeclaredInput("a", ("unk__1", "unk__2")), DeclaredInput("b", ("unk__2", 4))]
    assert resolve_inputs(unk, {"a": [2, 5]}) == {"a": (2, 5), "b": (1, 4)}


def test_load_takes_two_question_mark_dims_with_different_values():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["?", 3, "?", "?"])
    node = helper.make_node("GlobalAveragePool", ["x"], ["y"])
    m = helper.make_model(helper.make_graph([node], "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["?", 3, 1, 1])]))
    m.ir_version = 9
    g = load(m, input_shapes={"x": (2, 3, 48, 192)})
    assert g.inputs[0].shape == (2, 3, 48, 192) and g.outputs[0].shape == (2, 3, 1, 1)
