"""Each bad input gives one SymbioteError subclass whose message names the fault; nothing is written."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.errors import InvalidModelError, ModelLoadError, ShapeError, SymbioteError, UnsafePathError
from symbiote.frontend import load

F = TensorProto.FLOAT


def good_model(dims=(1, 4)):
    x = helper.make_tensor_value_info("x", F, list(dims))
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g", [x],
                          [helper.make_tensor_value_info("y", F, None)], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    return m


@pytest.fixture
def folder(tmp_path):
    """A folder whose contents must be the same after a failed load (nothing written)."""
    before = set(os.listdir(tmp_path))
    yield tmp_path
    assert set(os.listdir(tmp_path)) == before | _created.pop(str(tmp_path), set())


_created: dict[str, set[str]] = {}


def write(folder, name, data: bytes):
    (folder / name).write_bytes(data)
    _created.setdefault(str(folder), set()).add(name)
    return folder / name


def one_line(e: SymbioteError) -> str:
    msg = str(e)
    assert "\n" not in msg and msg
    return msg


def test_missing_file(folder):
    with pytest.raises(ModelLoadError) as e:
        load(folder / "nope.onnx")
    assert "nope.onnx" in one_line(e.value) and "no such file" in str(e.value)


def test_truncated_file(folder):
    data = good_model().SerializeToString()
    path = write(folder, "cut.onnx", data[: len(data) // 2])
    with pytest.raises(ModelLoadError) as e:
        load(path)
    assert "cut.onnx" in one_line(e.value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes(folder, seed):
    path = write(folder, f"rand{seed}.onnx", np.random.default_rng(seed).bytes(2048))
    with pytest.raises(ModelLoadError) as e:
        load(path)
    assert f"rand{seed}.onnx" in one_line(e.value)


def test_text_file(folder):
    path = write(folder, "notes.onnx", b"this is a README, not a model\nsecond line\n")
    with pytest.raises(ModelLoadError, match="text file") as e:
        load(path)
    assert "notes.onnx" in one_line(e.value)


def test_empty_file(folder):
    with pytest.raises(ModelLoadError, match="empty"):
        load(write(folder, "empty.onnx", b""))


def test_cycle():
    x = helper.make_tensor_value_info("x", F, [2])
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["b"], name="second")]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("b", F, None)]))
    with pytest.raises(InvalidModelError, match="cycle") as e:
        load(m)
    assert "first" in one_line(e.value) or "second" in str(e.value)


def test_input_produced_by_nothing():
    m = good_model()
    m.graph.node.append(helper.make_node("Add", ["y", "ghost"], ["z"], name="adder"))
    with pytest.raises(InvalidModelError) as e:
        load(m)
    msg = one_line(e.value)
    assert "'ghost'" in msg and "adder" in msg


def test_initializer_with_wrong_byte_size():
    m = good_model()
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:-4]
    with pytest.raises(InvalidModelError) as e:
        load(m)
    msg = one_line(e.value)
    assert "'w'" in msg and "44 bytes" in msg and "48" in msg


@pytest.mark.parametrize("dims", [(0, 4), (1, -3)])
def test_zero_or_negative_dim_in_file(dims):
    with pytest.raises(ShapeError, match=f"'x' dim {1 if dims[1] < 0 else 0} is {min(dims)}"):
        load(good_model(dims))


def test_minus_one_dim_in_file_is_dynamic():
    """paddle2onnx writes -1 for a dynamic dim: a first one is a batch (1), any other must be given."""
    assert load(good_model((-1, 4))).inputs[0].shape == (1, 4)
    with pytest.raises(ShapeError, match=r"'x' dim 1 is unknown.*--input-shape x=1xD"):
        load(good_model((1, -1)))
    assert load(good_model((1, -1)), input_shapes={"x": (1, 4)}).inputs[0].shape == (1, 4)


@pytest.mark.parametrize("given", [[0, 4], [1, -4]])
def test_zero_or_negative_dim_given(given):
    with pytest.raises(ShapeError, match="must be positive"):
        load(good_model(), input_shapes={"x": given})


def test_unknown_dim_without_shape():
    with pytest.raises(ShapeError) as e:
        load(good_model(("batch", "features")))
    msg = one_line(e.value)
    assert "'x'" in msg and "dim 1 ('features')" in msg and "input_shapes" in msg
    assert load(good_model(("batch", "features")), input_shapes={"x": [2, 4]}).outputs[0].shape == (2, 3)


def test_given_shape_for_unknown_input_or_wrong_rank():
    with pytest.raises(ShapeError, match="'pixels'.*not an input"):
        load(good_model(), input_shapes={"pixels": [1, 4]})
    with pytest.raises(ShapeError, match="rank 2"):
        load(good_model(), input_shapes={"x": [1, 4, 1]})


def test_inconsistent_shapes_name_the_node():
    with pytest.raises(ShapeError) as e:
        load(good_model(), input_shapes={"x": [1, 5]})
    assert "'mm'" in one_line(e.value) and "inner dims" in str(e.value)


def _external_model(location: str):
    m = good_model()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in {"location": location, "offset": "0", "length": "48"}.items():
        entry = t.external_data.add()
        entry.key, entry.value = k, v
    return m


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_external_data_outside_model_folder_is_refused(tmp_path, monkeypatch, kind):
    inside, outside = tmp_path / "model", tmp_path / "secret"
    inside.mkdir()
    outside.mkdir()
    (outside / "w.bin").write_bytes(np.ones(12, np.float32).tobytes())
    location = {"dotdot": "../secret/w.bin", "absolute": str(outside / "w.bin"), "symlink": "link.bin"}[kind]
    if kind == "symlink":
        os.symlink(outside / "w.bin", inside / "link.bin")
    path = inside / "m.onnx"
    onnx.save_model(_external_model(location), path)
    import symbiote.frontend.external as ext

    def never(*a, **k):
        raise AssertionError("read a file outside the model's folder")

    monkeypatch.setattr(ext.np, "fromfile", never)
    with pytest.raises(UnsafePathError) as e:
        load(path)
    msg = one_line(e.value)
    assert "'w'" in msg and "outside" in msg or "not a path inside" in msg


def test_external_data_file_missing(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save_model(_external_model("w.bin"), path)
    with pytest.raises(ModelLoadError, match="w.bin.*does not exist"):
        load(path)


def test_external_data_inside_folder_loads(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.arange(12, dtype=np.float32).tobytes())
    path = tmp_path / "m.onnx"
    onnx.save_model(_external_model("w.bin"), path)
    g = load(path)
    np.testing.assert_array_equal(g.constants["w"].const, np.arange(12, dtype=np.float32).reshape(4, 3))


def test_every_error_is_a_symbiote_error():
    for cls in (ModelLoadError, InvalidModelError, ShapeError, UnsafePathError):
        assert issubclass(cls, SymbioteError)
    with pytest.raises(TypeError):
        load(12345)  # a programming error, not a user error
