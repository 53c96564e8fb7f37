"""The interleaved measurement's schedule (backends/ortcpu/measure.py), on stand-in sessions
that log their runs instead of timing onnxruntime: the order and count of runs is the
property, not the times."""

from __future__ import annotations

from symbiote.backends.ortcpu import measure


class _Logged:
    """A stand-in session: each run appends its name to a shared log."""

    def __init__(self, name: str, log: list[str]):
        self.name, self.log = name, log

    def run(self, _outputs, _feeds):
        self.log.append(self.name)


def _schedule(settings: measure.Settings) -> tuple[list[str], list]:
    log: list[str] = []
    got = measure.interleaved([(_Logged("a", log), {}), (_Logged("b", log), {})], settings)
    return log, got


def test_slices_alternate_and_each_starts_with_untimed_runs():
    s = measure.Settings(warmup=2, reps=8, min_reps=8, budget_s=0.0, rounds=4, slice_warmup=1)
    log, got = _schedule(s)
    # the warm-up of each session, then 4 rounds of (1 untimed + 2 timed) runs of a, then of b
    assert log == ["a", "a", "b", "b"] + (["a"] * 3 + ["b"] * 3) * 4
    assert [len(x) for x in got] == [8, 8]          # only the timed runs are returned


def test_no_slice_warmup_and_more_rounds():
    s = measure.Settings(warmup=0, reps=40, min_reps=40, budget_s=0.0, rounds=40, slice_warmup=0)
    log, got = _schedule(s)
    assert log == ["a", "b"] * 40                   # one timed run per slice, strictly alternating
    assert [len(x) for x in got] == [40, 40]
