"""Hysteresis detection on recorded sweep rows (no timing here)."""

from symbiote.backends.ortcpu.hysteresis import SweepRow, fastest_within, hysteresis_points

# recorded by `symbiote profile zoo:lstm --sweep lstm.0.hidden --range 64:1024:8` (1 thread):
# width, median ms, spread ms (half the interquartile range of the runs)
RECORDED = [
    (264, 0.274283, 0.008341), (272, 0.319947, 0.007545), (280, 0.308276, 0.015542), (288, 0.303003, 0.008823),
    (296, 0.362801, 0.009426), (304, 0.381144, 0.008440), (312, 0.356455, 0.010594),
    (912, 9.192780, 0.249078), (920, 9.728067, 0.264515), (928, 10.176410, 0.633522), (936, 9.513390, 0.182122),
    (944, 8.923184, 0.105911), (952, 8.676666, 0.194134), (960, 9.483959, 0.574641), (968, 10.863058, 0.600206),
]


def rows(data):
    return [SweepRow(w, m * 1e-3, s * 1e-3) for w, m, s in data]


def test_recorded_points():
    pts = hysteresis_points(rows(RECORDED))
    assert [(p.width, p.beats_width) for p in pts] == [(288, 272), (312, 304), (944, 928), (952, 928)]
    # 280 is faster than 272 but within the spreads; 936 beats 928 by less than their spreads
    assert all(p.gain > 0 for p in pts)
    assert abs(pts[0].gain - (1 - 0.303003 / 0.319947)) < 1e-9


def test_monotonic_and_noise_give_none():
    assert hysteresis_points(rows([(w, w * 0.01, 0.0) for w in range(8, 200, 8)])) == []
    noisy = [(8, 1.0, 0.1), (16, 0.95, 0.1), (24, 1.2, 0.1), (32, 1.1, 0.1)]
    assert hysteresis_points(rows(noisy)) == []


def test_order_of_rows_does_not_matter():
    assert hysteresis_points(rows(RECORDED[::-1])) == hysteresis_points(rows(RECORDED))


def test_fastest_within_grows_only():
    r = rows(RECORDED)
    assert fastest_within(r, 928, 0.03).width == 952      # 952 <= 928 * 1.03
    assert fastest_within(r, 272, 0.0).width == 272
    assert fastest_within(r, 2000, 0.1) is None


def test_candidates_grow_only_on_the_grid():
    from symbiote.backends.ortcpu.sweep import candidates

    assert candidates(64, 0.25, 8) == [64, 72, 80]
    assert candidates(64, 0.0, 8) == [64]
    assert candidates(48, 0.5, 8, unit=16) == [48, 64]


def test_fastest_widths_stay_within_tolerance(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMBIOTE_ORTCPU_CACHE", str(tmp_path))
    monkeypatch.setenv("SYMBIOTE_ORTCPU_QUICK", "1")
    from symbiote.backends.ortcpu.sweep import fastest_widths
    from symbiote.frontend import load
    from symbiote.frontend.zoo import lstm
    from symbiote.ir.channel_groups import analyze
    from symbiote.ir.lower import lower

    g = load(lstm(seq_len=2, input_size=8, hidden_size=32, num_layers=1))
    groups = analyze(g)
    gid = next(x.id for x in groups.groups if x.name == "lstm.0.hidden")
    wl = lower(g, groups)
    got = fastest_widths(wl, {gid: 32}, 0.5)
    assert got[gid] in (32, 40, 48)
    assert fastest_widths(wl, {gid: 32}, 0.0) == {gid: 32}
