"""Non-MAC ops as hardware runs them (ir/lower.py): views are free, a Gather reads the
rows it gathers, an append into a cache writes only the new part."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from symbiote.backends.manager import get_template
from symbiote.frontend import load
from symbiote.ir.lower import lower
from symbiote.ir.workload import FREE, MEMORY


def _cost(wl, tname="systolic"):
    t = get_template(tname)
    return t.evaluate(t.space.default() | {"datapath": "int8"}, wl).to_numpy()


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "m", inputs, outputs, list(inits))
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize("tname", ["systolic", "roofline"])
@pytest.mark.parametrize("op", ["Reshape", "Flatten", "Squeeze", "Unsqueeze"])   # (the loader drops Identity)
def test_a_view_like_op_costs_nothing(op, tname):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 1, 1])
    args = {"Reshape": (["h", "shape"], {}), "Flatten": (["h"], {"axis": 1}), "Squeeze": (["h", "axes"], {}),
            "Unsqueeze": (["h", "axes"], {}), "Identity": (["h"], {})}[op]
    inits = [numpy_helper.from_array(np.array([1, 64], np.int64), "shape"),
             numpy_helper.from_array(np.array([3] if op == "Squeeze" else [4], np.int64), "axes")]
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="relu"), helper.make_node(op, args[0], ["v"], name="view", **args[1]),
             helper.make_node("Relu", ["v"], ["y"], name="relu2")]
    g = _model(nodes, [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    wl = lower(g)
    row = wl.names.index("view")
    assert int(np.asarray(wl.kind)[row]) == FREE
    m = _cost(wl, tname)
    assert m["latency_cycles"][row] == 0 and m["energy_dram_pj"][row] == 0 and m["energy_sram_pj"][row] == 0


def test_a_gather_from_an_embedding_reads_the_rows_it_gathers():
    wl = lower(load("zoo:bert"))
    row = wl.names.index("embeddings.word_embeddings")      # the Gather of the token ids
    c = wl.to_numpy()
    # 32 token ids gather 32 rows of 128 values: 4096 elements, not the 30522 x 128 table
    assert c["weight_elems"][row] == 32 * 128
    m = _cost(wl)
    table_bytes = 30522 * 128  # what the old rule read, at 8 bits
    assert m["energy_dram_pj"][row] < 0.01 * table_bytes * 8 * 20.3


def test_a_kv_cache_append_costs_the_appended_row():
    """past [1, 2, 64, 16] + new [1, 2, 1, 16] -> present [1, 2, 65, 16]: the past stays in its
    buffer (no other use); only 2 x 16 elements are read and written."""
    past = helper.make_tensor_value_info("past", TensorProto.FLOAT, [1, 2, 64, 16])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 1, 16])
    nodes = [helper.make_node("Relu", ["x"], ["new"], name="k"),
             helper.make_node("Concat", ["past", "new"], ["present"], name="append", axis=2)]
    g = _model(nodes, [past, x], [helper.make_tensor_value_info("present", TensorProto.FLOAT, None)])
    wl = lower(g)
    row = wl.names.index("append")
    c = wl.to_numpy()
    assert int(c["kind"][row]) == MEMORY
    assert (c["in_elems"][row], c["out_elems"][row]) == (32, 32)
    m = _cost(wl)
    # 64 bytes move at 8 bits (32 read + 32 written), at the template's DRAM energy per bit
    from symbiote.backends import tables

    assert m["energy_dram_pj"][row] == pytest.approx(64 * 8 * float(tables.dram_pj_per_bit()), rel=1e-5)
    # a concat whose first input is read elsewhere too is a copy of everything
    nodes2 = [*nodes, helper.make_node("Relu", ["past"], ["p2"], name="other")]
    g2 = _model(nodes2, [past, x], [helper.make_tensor_value_info("present", TensorProto.FLOAT, None),
                                    helper.make_tensor_value_info("p2", TensorProto.FLOAT, None)])
    c2 = lower(g2).to_numpy()
    r2 = lower(g2).names.index("append")
    assert c2["out_elems"][r2] == 2 * 65 * 16
