"""``symbiote cost --backend spatial --mappings``: each MAC layer's chosen loop nest, and the
layers no candidate mapping fits named with the reason."""

from __future__ import annotations

import json

from symbiote.cli import main


def test_cost_mappings_prints_the_loop_nest_of_each_mac_layer(capsys):
    assert main(["cost", "zoo:tiny_cnn", "--backend", "spatial", "--mappings", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["mappings"]
    assert rows and all("infeasible" not in r for r in rows)
    for r in rows:
        # outermost first: DRAM loops, GLB loops, the spatial unrolling, the RF loops
        nest = r["order"]
        assert nest.index("dram[") < nest.index("glb[") < nest.index("||") < nest.index("rf[")
        assert "split" in nest and "class" in nest
        assert r["dram_bytes"] > 0 and r["latency_cycles"] >= r["compute_cycles"] > 0
    assert main(["cost", "zoo:tiny_cnn", "--backend", "spatial", "--mappings"]) == 0
    text = capsys.readouterr().out
    assert "loop nest" in text and rows[0]["name"] in text and "dram[" in text


def test_cost_mappings_names_infeasible_layers(capsys):
    # a 1-byte partial-sum register file holds no 24-bit accumulator: no mapping fits any layer
    assert main(["cost", "zoo:tiny_cnn", "--backend", "spatial", "--set", "rf_psum_bytes=1", "--mappings"]) == 0
    text = capsys.readouterr().out
    assert "infeasible: no candidate mapping fits" in text and "rf_psum_bytes" in text
    assert "inf" in text.split("total:")[1].split("\n")[0]
