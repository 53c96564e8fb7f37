"""Latency hysteresis in the search: the width picked for a requested one (pure, on recorded
sweep rows), the search's tolerance, and the plumbing from a design's width genes through
``sweep.grow`` and back (a recorded table stands in for the measurements: no timing here)."""

from __future__ import annotations

import numpy as np
import pytest

from symbiote.backends.ortcpu.hysteresis import Move, SweepRow, pick_width, search_tolerance
from symbiote.errors import SearchError

# recorded by `symbiote profile zoo:lstm --sweep lstm.0.hidden --range 64:1024:8` (1 thread):
# width, median ms, spread ms (tests/backends/test_ortcpu_hysteresis.py)
RECORDED = [
    (264, 0.274283, 0.008341), (272, 0.319947, 0.007545), (280, 0.308276, 0.015542), (288, 0.303003, 0.008823),
    (296, 0.362801, 0.009426), (304, 0.381144, 0.008440), (312, 0.356455, 0.010594),
    (912, 9.192780, 0.249078), (920, 9.728067, 0.264515), (928, 10.176410, 0.633522), (936, 9.513390, 0.182122),
    (944, 8.923184, 0.105911), (952, 8.676666, 0.194134), (960, 9.483959, 0.574641), (968, 10.863058, 0.600206),
]


def rows(data=RECORDED):
    return [SweepRow(w, m * 1e-3, s * 1e-3) for w, m, s in data]


def test_pick_width_grows_to_a_faster_width_beyond_the_noise():
    assert pick_width(rows(), 928, 0.03).width == 952          # 952 <= 928 * 1.03, faster beyond the spreads
    assert pick_width(rows(), 272, 0.1).width == 288           # 280 is faster, but within the spreads
    assert pick_width(rows(), 304, 0.1).width == 312


def test_pick_width_never_shrinks_and_keeps_the_request_without_a_clear_win():
    assert pick_width(rows(), 272, 0.0).width == 272
    assert pick_width(rows(), 288, 0.1).width == 288           # 264 is faster but smaller: never taken
    assert pick_width(rows(), 944, 0.01).width == 944          # 952 beats 944 by less than their spreads
    assert pick_width(rows(), 960, 0.01).width == 960          # 968 is slower
    assert pick_width(rows(), 100, 0.5) is None                # the requested width was not swept


def test_pick_width_only_takes_allowed_widths():
    assert pick_width(rows(), 928, 0.03, allowed={936, 944}).width == 944
    assert pick_width(rows(), 928, 0.03, allowed=set()).width == 928


def test_move_gain():
    m = Move("g", 928, 952, 10.176410e-3, 8.676666e-3)
    assert m.moved and abs(m.gain - (1 - 8.676666 / 10.176410)) < 1e-12
    assert not Move("g", 64, 64, 1e-3, 1e-3).moved and Move("g", 64, 64, 1e-3, 1e-3).gain == 0.0
    assert Move("g", 64, 64, None, None).gain == 0.0                   # nothing was measured


def test_search_tolerance():
    assert search_tolerance("ort-cpu", None) == 0.1
    assert search_tolerance("systolic", None) == 0.0
    assert search_tolerance("ort-cpu", 0.0) == 0.0
    assert search_tolerance("systolic", 0.0) == 0.0
    with pytest.raises(SearchError, match="ort-cpu"):
        search_tolerance("systolic", 0.1)
    with pytest.raises(SearchError, match="between 0 and 1"):
        search_tolerance("ort-cpu", -0.1)


def _fake_sweep(table):
    """A stand-in for ``sweep.sweep`` reading ``table`` (width -> (median ms, spread ms))."""
    def fake(wl, gid, widths, threads=1, base=None):
        return [SweepRow(int(w), table[int(w)][0] * 1e-3, table[int(w)][1] * 1e-3) for w in widths]
    return fake


def test_grow_sweeps_the_legal_widths_within_the_tolerance(monkeypatch):
    from symbiote.backends.ortcpu import sweep
    from symbiote.frontend import load
    from symbiote.frontend.zoo import lstm
    from symbiote.ir.channel_groups import analyze
    from symbiote.ir.lower import lower

    g = load(lstm(seq_len=2, input_size=8, hidden_size=32, num_layers=1))
    groups = analyze(g)
    gid = next(x.id for x in groups.groups if x.name == "lstm.0.hidden")
    wl = lower(g, groups)
    asked = []
    table = {24: (1.0, 0.01), 32: (1.2, 0.01), 40: (1.0, 0.01), 48: (0.9, 0.01), 56: (0.5, 0.01)}

    def fake(wl, gid, widths, threads=1, base=None):
        asked.append(list(widths))
        return _fake_sweep(table)(wl, gid, widths, threads, base)

    monkeypatch.setattr(sweep, "sweep", fake)
    got = sweep.grow(wl, {gid: 32}, 0.5, grids={gid: (16.0, 24.0, 32.0, 40.0, 48.0, 56.0)}, names={gid: "h"})
    assert asked == [[32, 40, 48]]                     # 56 > 32 * 1.5; 24 is smaller
    assert [(m.group, m.requested, m.width) for m in got] == [("h", 32, 48)]
    assert got[0].requested_s == pytest.approx(1.2e-3) and got[0].width_s == pytest.approx(0.9e-3)
    assert sweep.fastest_widths(wl, {gid: 32}, 0.3) == {gid: 40}       # the search's grid: 32, 40
    assert sweep.grow(wl, {gid: 32}, 0.1, grids={gid: (32.0, 40.0)})[0] == Move(str(gid), 32, 32, None, None)
    assert len(asked) == 2                             # nothing within 10%: not swept


@pytest.fixture(scope="module")
def lstm_codesign():
    from symbiote.frontend import load, zoo
    from symbiote.search import api

    graph = load(zoo.build("lstm", seq_len=2, input_size=8, hidden_size=32, num_layers=2))
    cfg = api.RunConfig(models=("lstm",), backend="ort-cpu", model_knobs="channels", eval_samples=8)
    return api.build(cfg, [api.prepare(cfg, "lstm", graph)]), cfg


def test_the_search_grows_a_design_through_its_width_genes(monkeypatch, lstm_codesign):
    from symbiote.backends.ortcpu import sweep
    from symbiote.search import hysteresis

    cd, cfg = lstm_codesign
    assert hysteresis.tolerance(cfg.hysteresis_tolerance, cd) == 0.1
    assert hysteresis.tolerance(0.0, cd) == 0
    table = {w: (1.0 + w / 100, 0.01) for w in range(8, 72, 8)} | {40: (0.5, 0.01)}
    monkeypatch.setattr(sweep, "sweep", _fake_sweep(table))
    asked = []
    monkeypatch.setattr(hysteresis, "whole_model_s", _fake_whole(asked, faster=True))
    idx = cd.baseline()
    out, moves = hysteresis.grown(cd, idx, 0.25)
    assert asked == [[{"lstm.0.hidden": 32, "lstm.1.hidden": 32}, {"lstm.0.hidden": 40, "lstm.1.hidden": 40}]]
    widths = cd.model_knobs_of(out)[0]["widths"]
    assert widths == {"lstm.0.hidden": 40, "lstm.1.hidden": 40}       # 32 -> 40, faster in the table
    assert [m.width for m in moves[0]] == [40, 40]
    changed = np.flatnonzero(out != np.asarray(idx))
    assert all(cd.space.genes[i].kind == "width" for i in changed)     # only width genes move
    same, none = hysteresis.grown(cd, idx, 0.1)                                # 32 * 1.1 < 40: nothing to try
    assert np.array_equal(same, idx) and not any(m.moved for m in none[0])
    d = hysteresis.as_dict(cd, 0.25, moves)
    entry = d["networks"][cd.networks[0].name][0]
    assert d["tolerance"] == 0.25 and entry["moved"] and entry["requested"] == 32 and entry["width"] == 40
    assert abs(entry["gain"] - (1 - 0.5 / 1.32)) < 1e-6
    assert entry["whole_model_ms"] == [2.0, 1.0] and entry["kernel_width"] is None
    assert hysteresis.as_dict(cd, 0.25, None)["networks"] == {cd.networks[0].name: []}


def _fake_whole(asked, faster):
    """A whole-model measurement: 2 ms at the requested widths, then 1 ms (faster) or 1.99 ms
    (within the noise of 0.05 ms) at the grown ones; ``asked`` records the widths given."""
    def whole_model_s(net, widths, threads, parallel):
        asked.append(widths)
        return [(2e-3, 5e-5), (1e-3 if faster else 1.99e-3, 5e-5)]
    return whole_model_s


def test_moves_the_whole_model_does_not_confirm_are_undone(monkeypatch, lstm_codesign):
    # the kernels say 40 beats 32 in each group, but the whole model at 40 is not faster
    # beyond the noise: the design keeps its requested widths, and the moves say why
    from symbiote.backends.ortcpu import sweep
    from symbiote.search import hysteresis

    cd, _ = lstm_codesign
    table = {w: (1.0 + w / 100, 0.01) for w in range(8, 72, 8)} | {40: (0.5, 0.01)}
    monkeypatch.setattr(sweep, "sweep", _fake_sweep(table))
    monkeypatch.setattr(hysteresis, "whole_model_s", _fake_whole([], faster=False))
    idx = cd.baseline()
    out, moves = hysteresis.grown(cd, idx, 0.25)
    assert np.array_equal(out, idx)
    assert [(m.width, m.kernel_width, m.moved) for m in moves[0]] == [(32, 40, False)] * 2
    entry = hysteresis.as_dict(cd, 0.25, moves)["networks"][cd.networks[0].name][0]
    assert entry["kernel_width"] == 40 and entry["whole_model_ms"] == [2.0, 1.99]


def test_the_whole_model_measurement_writes_each_width_setting(monkeypatch, lstm_codesign):
    # real onnxruntime runs (a few): one (median, spread) per setting, both positive
    from symbiote.search import hysteresis

    monkeypatch.setenv("SYMBIOTE_ORTCPU_QUICK", "1")
    cd, _ = lstm_codesign
    net = cd.networks[0]
    got = hysteresis.whole_model_s(net, [{"lstm.0.hidden": 32, "lstm.1.hidden": 32},
                                         {"lstm.0.hidden": 16, "lstm.1.hidden": 40}], 1, False)
    assert len(got) == 2 and all(m > 0 and sp >= 0 for m, sp in got)


def test_unique_keeps_the_last_candidate_last():
    from symbiote.search import hysteresis

    a, b, c = np.array([1, 2]), np.array([1, 3]), np.array([1, 2])
    assert [x.tolist() for x in hysteresis.unique([a, b, c])] == [[1, 3], [1, 2]]
    assert [x.tolist() for x in hysteresis.unique([a])] == [[1, 2]]
    assert [x.tolist() for x in hysteresis.unique([b, b, a])] == [[1, 3], [1, 2]]


def test_a_search_reports_the_moves_in_result_json(monkeypatch, tmp_path, lstm_codesign):
    # a short search on the ort-cpu template with a recorded table for the sweeps: width 40
    # measured faster than 32, so every candidate at 32 is grown to 40 before its check
    import json

    from symbiote.backends.ortcpu import sweep
    from symbiote.search import api, hysteresis
    from symbiote.search.driver import SearchSettings
    from symbiote.search.objectives import parse_constraints
    from symbiote.search.outputs import result_dict

    monkeypatch.setenv("SYMBIOTE_ORTCPU_CACHE", str(tmp_path))
    monkeypatch.setenv("SYMBIOTE_ORTCPU_QUICK", "1")
    table = {w: (1.0 + w / 100, 0.01) for w in range(8, 72, 8)} | {40: (0.5, 0.01)}
    monkeypatch.setattr(sweep, "sweep", _fake_sweep(table))
    monkeypatch.setattr(hysteresis, "whole_model_s", _fake_whole([], faster=True))
    cd, _ = lstm_codesign
    cfg = api.RunConfig(models=("lstm",), backend="ort-cpu", model_knobs="channels", eval_samples=8,
                        constraints=parse_constraints(["fidelity>=0.999"]), hysteresis_tolerance=0.25,
                        settings=SearchSettings(budget_evals=64, seed=0, use_gradient=False), exact_candidates=2)
    out = api.run(cfg, networks=list(cd.networks))
    h = result_dict(out)["hysteresis"]
    assert h["tolerance"] == 0.25
    moves = h["networks"][cd.networks[0].name]
    widths = out.networks[0].model_knobs["widths"]
    assert {m["group"] for m in moves} == set(widths)
    for m in moves:                                    # the answer's widths are the moves' widths
        assert widths[m["group"]] == m["width"] and m["width"] >= m["requested"]
        assert m["moved"] == (m["requested"] == 32)
    json.dumps(result_dict(out))
    assert result_dict(out)["settings"]["hysteresis_tolerance"] == 0.25


def test_the_command_line_defaults():
    from symbiote.commands.search import _hysteresis_lines, _model_knobs

    assert _model_knobs(None, "ort-cpu") == "channels"
    assert _model_knobs(None, "systolic") == "channels+precision"
    assert _model_knobs("channels+precision", "ort-cpu") == "channels+precision"
    # ort-cpu searches channel widths, which keep their fidelity only after fine-tuning
    from symbiote.commands.search import ORT_CPU_FINETUNE_STEPS, _finetune_steps

    assert ORT_CPU_FINETUNE_STEPS > 0 and _finetune_steps(None, "ort-cpu", "channels") == ORT_CPU_FINETUNE_STEPS
    assert _finetune_steps(None, "ort-cpu", "none") == 0 and _finetune_steps(None, "systolic", "channels") == 0
    assert _finetune_steps(0, "ort-cpu", "channels") == 0 and _finetune_steps(50, "systolic", "channels") == 50
    assert _hysteresis_lines(None) == []
    h = {"tolerance": 0.25, "networks": {"lstm": [
        {"group": "a", "requested": 32, "width": 40, "moved": True, "requested_ms": 1.32, "width_ms": 0.5, "gain": 0.62},
        {"group": "b", "requested": 64, "width": 64, "moved": False, "requested_ms": 1.0, "width_ms": 1.0, "gain": 0.0}]}}
    (line,) = _hysteresis_lines(h)
    assert "a 32->40" in line and "b " not in line
    for m in h["networks"]["lstm"]:
        m["whole_model_ms"] = [2.0, 1.5] if m["moved"] else None
    (line,) = _hysteresis_lines(h)
    assert "a 32->40" in line and "whole model 2 -> 1.5 ms" in line
    a = h["networks"]["lstm"][0]
    a.update(width=32, moved=False, kernel_width=40, whole_model_ms=[2.0, 2.1])
    (line,) = _hysteresis_lines(h)
    assert "a 32->40 measured faster in its kernels but the whole model not (2 -> 2.1 ms)" in line


def test_the_command_line_refuses_a_tolerance_off_ort_cpu(tmp_path, capsys):
    from symbiote.cli import main

    rc = main(["search", "zoo:tiny_cnn", "--backend", "systolic", "--hysteresis-tolerance", "0.2", "-o", str(tmp_path)])
    assert rc != 0 and "only the ort-cpu template" in capsys.readouterr().err
