"""Control flow is costed, not dropped: an If on input data counts its dearer branch, a Loop
or Scan with a static trip count counts its body that many times, anything else is opaque
with a note; shapes after control flow come from the bodies; inspect says all of it."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.frontend import load
from symbiote.ir import control_flow
from symbiote.ir.analysis import graph_stats
from symbiote.ir.lower import lower
from symbiote.ir.workload import MAC, MEMORY

F = TensorProto.FLOAT


def _swap_branches(m: onnx.ModelProto) -> onnx.ModelProto:
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    node = [n for n in m2.graph.node if n.op_type == "If"][0]
    a = {x.name: x.g for x in node.attribute}
    then_g, else_g = onnx.GraphProto(), onnx.GraphProto()
    then_g.CopyFrom(a["else_branch"])
    else_g.CopyFrom(a["then_branch"])
    del node.attribute[:]
    node.attribute.extend([helper.make_attribute("then_branch", then_g), helper.make_attribute("else_branch", else_g)])
    return m2


@pytest.mark.parametrize("swap", [False, True])
def test_input_dependent_if_is_costed_as_its_dearer_branch(cf_models, swap):
    m = cf_models.if_lstm("data")
    g = load(_swap_branches(m) if swap else m)
    node = g.node("branch")
    assert node.onnx_op == "If" and node.output.shape == (1, cf_models.HIDDEN)
    dear = "else_branch" if swap else "then_branch"
    cheap_macs = cf_models.INP * cf_models.HIDDEN  # the other branch: a 1x4 @ 4x8 MatMul
    s = graph_stats(g)
    assert s.macs == cf_models.lstm_macs()
    assert [layer.macs for layer in s.layers if layer.name == "branch"] == [cf_models.lstm_macs()]
    lstm_params = 4 * cf_models.HIDDEN * (cf_models.INP + cf_models.HIDDEN) + 8 * cf_models.HIDDEN
    assert s.params == lstm_params  # the branch's weights are outer initializers: counted once, P (else) not costed
    assert s.control_flow == (f"If 'branch': condition depends on input; costed as the dearer branch {dear!r} "
                              f"({cf_models.lstm_macs():,} MACs vs {cheap_macs:,})",)
    assert s.subgraph_ops == {"LSTM": 1, "MatMul": 1, "Squeeze": 1} and s.opaque == {}
    wl = lower(g)
    rows = [n for n in wl.names if n.startswith("branch/")]
    assert rows == [f"branch/{dear}/lstm", f"branch/{dear}/squeeze"]
    assert float(np.asarray(wl.macs).sum()) == cf_models.lstm_macs()
    assert wl.kinds[wl.index(f"branch/{dear}/lstm")] == MAC


def test_plan_of_a_constant_condition_is_the_taken_branch(cf_models):
    """An If built with a constant condition (the loader would inline it) costs the taken branch."""
    g = load(cf_models.if_lstm("data"))
    node = g.node("branch")
    cond = g.add_const("always_false", np.array(False))
    node.set_input(0, cond)
    p = control_flow.plan(node, control_flow.scope_of(g))
    assert p.costed.attr == "else_branch" and "condition is constant" in p.note
    assert graph_stats(g).macs == cf_models.INP * cf_models.HIDDEN


def test_loop_with_a_static_trip_count_costs_its_body_that_many_times(cf_models):
    hid = cf_models.HIDDEN
    g = load(cf_models.loop(static=True, trip=3))
    assert [o.shape for o in g.node("loop").outputs] == [(1, hid), (3, 1, hid)]
    s = graph_stats(g)
    assert s.macs == 3 * hid * hid and s.params == hid * hid and s.opaque == {}
    assert s.control_flow == (f"Loop 'loop': body costed x3 (static trip count): {3 * hid * hid:,} MACs",)
    wl = lower(g)
    i = wl.index("loop/body/step")
    cols = wl.to_numpy()
    assert cols["repeat"][i] == 3 and cols["kind"][i] == MAC and cols["weight_elems"][i] == hid * hid
    assert cols["in_elems"][i] == 3 * hid and float(np.asarray(wl.macs).sum()) == s.macs


def test_loop_with_a_dynamic_trip_count_is_opaque_with_a_note(cf_models):
    g = load(cf_models.loop(static=False))
    s = graph_stats(g)
    assert s.macs == 0 and s.opaque == {"Loop": 1}
    assert len(s.control_flow) == 1 and "trip count not static" in s.control_flow[0] and "'n'" in s.control_flow[0]
    assert s.subgraph_ops == {"Identity": 2, "MatMul": 1, "Tanh": 1}  # named even though not costed
    assert g.node("loop").outputs[1].shape is None
    wl = lower(g)
    assert wl.names == ("loop",) and wl.kinds == (MEMORY,)


def test_while_loop_bound_is_not_a_trip_count(cf_models):
    m = cf_models.loop(static=True)
    for t in m.graph.initializer:
        if t.name == "M":
            t.CopyFrom(numpy_helper.from_array(np.array(2**63 - 1, np.int64), "M"))
    s = graph_stats(load(m))
    assert s.opaque == {"Loop": 1} and "while-loop bound" in s.control_flow[0]


def _scan_model(seq: int = 6, inp: int = 3, hid: int = 5) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    body = helper.make_graph(
        [helper.make_node("MatMul", ["x_t", "Wx"], ["a"]), helper.make_node("MatMul", ["h", "Wh"], ["b"]),
         helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Tanh", ["s"], ["h_next"]),
         helper.make_node("Identity", ["h_next"], ["y_t"])],
        "cell", [helper.make_tensor_value_info("h", F, [1, hid]), helper.make_tensor_value_info("x_t", F, [1, inp])],
        [helper.make_tensor_value_info("h_next", F, [1, hid]), helper.make_tensor_value_info("y_t", F, [1, hid])])
    nodes = [helper.make_node("Scan", ["h0", "x"], ["h_last", "ys"], name="rnn", body=body, num_scan_inputs=1)]
    inits = [numpy_helper.from_array(rng.standard_normal((inp, hid)).astype(np.float32), "Wx"),
             numpy_helper.from_array(rng.standard_normal((hid, hid)).astype(np.float32), "Wh")]
    g = helper.make_graph(nodes, "scan", [helper.make_tensor_value_info("h0", F, [1, hid]), helper.make_tensor_value_info("x", F, [seq, 1, inp])],
                          [helper.make_tensor_value_info("h_last", F, [1, hid]), helper.make_tensor_value_info("ys", F, [seq, 1, hid])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_scan_costs_its_body_once_per_step():
    g = load(_scan_model(seq=6, inp=3, hid=5))
    assert [o.shape for o in g.node("rnn").outputs] == [(1, 5), (6, 1, 5)]
    s = graph_stats(g)
    assert s.macs == 6 * (3 * 5 + 5 * 5) and s.params == 3 * 5 + 5 * 5
    assert "x6" in s.control_flow[0]
    assert float(np.asarray(lower(g).macs).sum()) == s.macs


def test_inspect_reports_control_flow(cf_models):
    from symbiote.commands.inspect import print_table, report

    g = load(cf_models.if_lstm("data"))
    rep = report("vad.onnx", g, graph_stats(g))
    assert rep["totals"]["macs"] == cf_models.lstm_macs() and rep["totals"]["opaque"] == {}
    assert rep["subgraph_ops"] == {"LSTM": 1, "MatMul": 1, "Squeeze": 1}
    assert len(rep["control_flow"]) == 1 and "dearer branch 'then_branch'" in rep["control_flow"][0]
    out = io.StringIO()
    print_table(rep, file=out)
    text = out.getvalue()
    assert "If 'branch': condition depends on input; costed as the dearer branch 'then_branch'" in text
    assert "ops inside subgraphs: LSTM x1, MatMul x1, Squeeze x1" in text and "opaque ops: none" in text

    inlined = load(cf_models.if_lstm("sr"), input_values={"sr": 16000})
    rep = report("vad.onnx", inlined, graph_stats(inlined))
    assert rep["input_values"] == {"sr": 16000}
    assert rep["control_flow"] == ["If 'branch': condition is constant; inlined its then_branch"]
    assert rep["totals"]["macs"] == cf_models.lstm_macs()


def _nested_model(cf) -> onnx.ModelProto:
    """silero-vad's nesting: an If on input data whose then-branch first picks its LSTM's
    input with an If on a constant (the shape of that If's output is known only from its
    taken branch), then runs the LSTM; the else-branch is a cheap MatMul."""
    seq, inp, hid = cf.SEQ, cf.INP, cf.HIDDEN
    pick_then = helper.make_graph([helper.make_node("Identity", ["x"], ["xa_t"], name="keep")], "pick_then", [],
                                  [helper.make_tensor_value_info("xa_t", F, None)])
    pick_else = helper.make_graph([helper.make_node("Unsqueeze", ["x", "ax0"], ["xa_e"], name="never_taken")], "pick_else",
                                  [], [helper.make_tensor_value_info("xa_e", F, None)])  # another shape: must not matter
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["ca"], value=numpy_helper.from_array(np.array(True))),
         helper.make_node("If", ["ca"], ["xa"], name="pick", then_branch=pick_then, else_branch=pick_else),
         helper.make_node("LSTM", ["xa", "W", "R", "B"], ["Y", "Yh"], name="lstm", hidden_size=hid),
         helper.make_node("Squeeze", ["Yh", "ax0"], ["t"], name="squeeze")],
        "outer_then", [], [helper.make_tensor_value_info("t", F, None)])
    else_g = helper.make_graph([helper.make_node("MatMul", ["last", "P"], ["e"], name="proj")], "outer_else", [],
                               [helper.make_tensor_value_info("e", F, None)])
    nodes = [helper.make_node("Slice", ["x", "st", "en", "ax0"], ["xs"], name="last_step"),
             helper.make_node("Reshape", ["xs", "shp"], ["last"], name="flat"),
             helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
             helper.make_node("Less", ["s", "zero"], ["c"], name="negative"),
             helper.make_node("If", ["c"], ["y"], name="outer", then_branch=then_g, else_branch=else_g),
             helper.make_node("Relu", ["y"], ["out"], name="relu")]
    base = cf.if_lstm("data").graph
    g = helper.make_graph(nodes, "nested", list(base.input), list(base.output), list(base.initializer))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_a_constant_if_nested_in_a_costed_branch_is_costed_with_it(cf_models):
    """The LSTM whose input comes through a nested constant If is costed with the outer
    branch: the nested If's output shape is its taken branch's, whatever the other branch
    gives (it was unknown, and the LSTM 0 MACs, when both branches had to agree)."""
    m = _nested_model(cf_models)
    onnx.checker.check_model(m, full_check=True)
    g = load(m)
    s = graph_stats(g)
    assert s.macs == cf_models.lstm_macs()
    assert "costed as the dearer branch 'then_branch'" in s.control_flow[0]
    assert g.node("outer").output.shape == (1, cf_models.HIDDEN)


def test_a_loop_that_can_stop_early_has_no_static_scan_length():
    """M=10 is only an upper bound when the body's condition can end the loop sooner
    (here after 3 iterations): the stacked output's length is not known statically."""
    body = helper.make_graph(
        [helper.make_node("Less", ["i", "three"], ["cond_out"], name="more"),
         helper.make_node("Identity", ["h_in"], ["h_out"], name="carry"),
         helper.make_node("Identity", ["h_in"], ["h_scan"], name="emit")],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("h_in", F, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("h_out", F, None),
         helper.make_tensor_value_info("h_scan", F, None)],
        [numpy_helper.from_array(np.array(2, np.int64), "three")])
    g = helper.make_graph([helper.make_node("Loop", ["M", "go", "x"], ["h_final", "hs"], name="loop", body=body)], "early",
                          [helper.make_tensor_value_info("x", F, [1])],
                          [helper.make_tensor_value_info("h_final", F, [1]), helper.make_tensor_value_info("hs", F, None)],
                          [numpy_helper.from_array(np.array(10, np.int64), "M"), numpy_helper.from_array(np.array(True), "go")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    import onnxruntime as ort

    ran = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": np.ones(1, np.float32)})
    assert ran[1].shape[0] < 10  # the loop did stop early
    graph = load(m)
    assert graph.node("loop").outputs[1].shape is None
    assert graph.node("loop").outputs[0].shape == (1,)
