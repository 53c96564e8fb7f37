"""frontend.save: IR graphs built by hand -> valid ONNX that onnxruntime runs, atomically written."""

from __future__ import annotations

import importlib
import os

import numpy as np
import onnx
import pytest
from onnx import helper

from symbiote.errors import SymbioteError
from symbiote.frontend.save import save, to_onnx
from symbiote.ir import Graph, ops

save_mod = importlib.import_module("symbiote.frontend.save")  # the module (the package attribute is the function)


def _conv_graph(seed: int = 0) -> tuple[Graph, dict[str, np.ndarray]]:
    """x -> Conv(+bias) -> Relu -> Clip(min omitted, max) -> y, with metadata."""
    rng = np.random.default_rng(seed)
    g = Graph("conv_relu", opset={"": 17}, ir_version=8, metadata={"author": "test"})
    x = g.add_input("x", (1, 3, 8, 8))
    w = g.add_const("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    b = g.add_const("conv.bias", rng.standard_normal(4).astype(np.float32))
    hi = g.add_const("clip.max", np.array(0.5, dtype=np.float32))
    y = g.add_node(ops.CONV, "Conv", [x, w, b], ["conv_out"], name="conv",
                   attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": (1, 1), "group": 1}).output
    y.shape = (1, 4, 8, 8)
    y = g.add_node(ops.ACTIVATION, "Relu", [y], ["relu_out"], name="relu").output
    y.shape = (1, 4, 8, 8)
    y = g.add_node(ops.ACTIVATION, "Clip", [y, None, hi], ["y"], name="clip").output
    y.shape = (1, 4, 8, 8)
    g.outputs.append(y)
    wa, ba = w.const, b.const
    xs = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    ref = np.zeros((1, 4, 8, 8), np.float32)
    xp = np.pad(xs, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(8):
        for j in range(8):
            ref[0, :, i, j] = np.einsum("kcrs,crs->k", wa, xp[0, :, i:i + 3, j:j + 3]) + ba
    ref = np.minimum(np.maximum(ref, 0), 0.5)
    return g, {"x": xs, "ref": ref}


def test_to_onnx_is_valid_and_runs(onnx_runner):
    _, run_onnx = onnx_runner
    g, data = _conv_graph()
    model = to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    assert model.ir_version >= 8
    assert {p.key: p.value for p in model.metadata_props} == {"author": "test"}
    clip = model.graph.node[-1]
    assert list(clip.input) == ["relu_out", "", "clip.max"]  # omitted optional input kept as ""
    (y,) = run_onnx(model, {"x": data["x"]})
    np.testing.assert_allclose(y, data["ref"], rtol=1e-5, atol=1e-5)


def test_attribute_kinds_round_trip():
    g = Graph("attrs", opset={"": 17})
    g.add_input("x", (2, 3))  # read by name inside the If branches
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", 1, [2, 3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", 1, [2, 3])])
    cond = g.add_const("cond", np.array(True))
    out = g.add_node(ops.CONTROL, "If", [cond], ["y"], name="branch", attrs={"then_branch": then_g, "else_branch": else_g}).output
    out.shape = (2, 3)
    c = g.add_node(ops.RESHAPE, "Constant", [], ["c"], name="const", attrs={"value": np.arange(6, dtype=np.float32).reshape(2, 3)}).output
    c.shape = (2, 3)
    s = g.add_node(ops.ELEMENTWISE, "Add", [out, c], ["s"], name="add").output
    s.shape = (2, 3)
    # an empty-list attribute and a float that looks like an int, with the loader's type hints
    t = g.add_node(ops.ACTIVATION, "LeakyRelu", [s], ["z"], name="leaky", attrs={"alpha": 1},
                   meta={"_attr_types": {"alpha": onnx.AttributeProto.FLOAT}}).output
    t.shape = (2, 3)
    g.outputs.append(t)
    model = to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    by_name = {n.name: n for n in model.graph.node}
    assert by_name["leaky"].attribute[0].type == onnx.AttributeProto.FLOAT
    assert by_name["branch"].attribute[0].g.node[0].op_type in ("Neg", "Identity")
    import onnxruntime as ort

    xs = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    (z,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": xs})
    np.testing.assert_allclose(z, xs + np.arange(6).reshape(2, 3))


def test_opaque_node_in_other_domain_is_written_back_with_its_domain(onnx_runner):
    _, run_onnx = onnx_runner
    g = Graph("contrib", opset={"": 17})
    a = g.add_input("a", (2, 4))
    b = g.add_const("b", np.ones((4, 3), np.float32))
    y = g.add_node(ops.OPAQUE, "FusedMatMul", [a, b], ["y"], name="fmm", domain="com.microsoft", attrs={"alpha": 2.0}).output
    y.shape = (2, 3)
    g.outputs.append(y)
    model = to_onnx(g)
    assert {o.domain for o in model.opset_import} == {"", "com.microsoft"}
    (out,) = run_onnx(model, {"a": np.ones((2, 4), np.float32)})
    np.testing.assert_allclose(out, np.full((2, 3), 8.0))


def test_save_writes_file_atomically_and_checks(tmp_path, onnx_runner):
    _, run_onnx = onnx_runner
    g, data = _conv_graph()
    path = tmp_path / "m.onnx"
    assert save(g, path) == path
    onnx.checker.check_model(str(path), full_check=True)
    (y,) = run_onnx(str(path), {"x": data["x"]})
    np.testing.assert_allclose(y, data["ref"], rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temp left, no data file


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    g, _ = _conv_graph()
    path = tmp_path / "m.onnx"
    save(g, path)
    before = path.read_bytes()
    g2, _ = _conv_graph(seed=1)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(save_mod.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save(g2, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_large_models_use_one_external_data_file(tmp_path, onnx_runner):
    _, run_onnx = onnx_runner
    g, data = _conv_graph()
    path = tmp_path / "big.onnx"
    save(g, path, external_data_threshold_bytes=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]
    model = onnx.load(str(path), load_external_data=False)
    ext = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert ext and {e.value for t in ext for e in t.external_data if e.key == "location"} == {"big.onnx.data"}
    assert os.path.getsize(path) < 1000 < os.path.getsize(tmp_path / "big.onnx.data") + 1000
    onnx.checker.check_model(str(path), full_check=True)
    (y,) = run_onnx(str(path), {"x": data["x"]})
    np.testing.assert_allclose(y, data["ref"], rtol=1e-5, atol=1e-5)
    # saving again replaces the data file rather than appending to it
    size = os.path.getsize(tmp_path / "big.onnx.data")
    save(g, path, external_data_threshold_bytes=100)
    assert os.path.getsize(tmp_path / "big.onnx.data") == size


def test_below_threshold_weights_stay_inline(tmp_path):
    g, _ = _conv_graph()
    assert save_mod.weight_bytes(g) == (4 * 3 * 3 * 3 + 4 + 1) * 4
    save(g, tmp_path / "m.onnx", external_data_threshold_bytes=save_mod.weight_bytes(g))
    assert not (tmp_path / "m.onnx.data").exists()


def test_missing_folder_is_a_user_error(tmp_path):
    g, _ = _conv_graph()
    with pytest.raises(SymbioteError, match="does not exist"):
        save(g, tmp_path / "nope" / "m.onnx")
    assert not (tmp_path / "nope").exists()


def test_ir_version_is_raised_to_what_the_opset_needs():
    g, _ = _conv_graph()
    g.ir_version = 3
    g.opset = {"": 18}
    model = to_onnx(g)
    assert model.ir_version >= 8
    onnx.checker.check_model(model)


def test_domains_used_only_inside_subgraphs_are_imported(onnx_runner):
    _, run_onnx = onnx_runner
    g = Graph("sub", opset={"": 17})
    x = g.add_input("x", (2,))
    c = g.add_input("c", (), dtype="bool")
    then_g = helper.make_graph([helper.make_node("Gelu", ["x"], ["t"], domain="com.microsoft")], "then", [], [helper.make_tensor_value_info("t", 1, [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", 1, [2])])
    y = g.add_node(ops.CONTROL, "If", [c], ["y"], name="if", attrs={"then_branch": then_g, "else_branch": else_g}).output
    y.shape = (2,)
    g.outputs.append(y)
    _ = x
    model = to_onnx(g)
    assert {o.domain for o in model.opset_import} == {"", "com.microsoft"}
    (out,) = run_onnx(model, {"x": np.ones(2, np.float32), "c": np.array(True)})
    np.testing.assert_allclose(out, [0.8413447, 0.8413447], rtol=1e-6)


def test_public_save_is_the_function_even_after_the_submodule_is_imported():
    import symbiote
    import symbiote.frontend

    assert save_mod.__name__ == "symbiote.frontend.save"  # submodule imported above
    assert symbiote.frontend.save is save and symbiote.save is save
    assert symbiote.frontend.to_onnx is to_onnx
