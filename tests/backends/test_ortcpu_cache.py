"""The ort-cpu kernel cache: keys, persistence, and that a warm cache measures nothing."""

import numpy as np
import pytest

from symbiote.backends.ortcpu import cache
from symbiote.backends.ortcpu.measure import Timing, summarize

CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\n"


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_DIR, str(tmp_path / "c"))
    monkeypatch.setenv("SYMBIOTE_ORTCPU_QUICK", "1")
    return tmp_path / "c"


def test_key_changes_with_threads_version_cpu_and_kernel():
    base = cache.Context("1.20.0", 1, "cpu A")
    k = cache.cache_key("conv(n=1)", base)
    assert k == cache.cache_key("conv(n=1)", cache.Context("1.20.0", 1, "cpu A"))
    others = [cache.Context("1.20.0", 2, "cpu A"), cache.Context("1.21.0", 1, "cpu A"), cache.Context("1.20.0", 1, "cpu B")]
    assert len({k, *(cache.cache_key("conv(n=1)", c) for c in others), cache.cache_key("conv(n=2)", base)}) == 5


def test_cpu_model_from_cpuinfo():
    assert cache.cpu_model(CPUINFO) == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert cache.cpu_model("")  # falls back to the platform, never empty


def test_default_dir_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV_DIR, raising=False)
    assert cache.cache_dir().parts[-3:] == (".cache", "symbiote", "ortcpu")
    monkeypatch.setenv(cache.ENV_DIR, str(tmp_path))
    assert cache.cache_dir() == tmp_path


def test_lookup_measures_each_missing_kernel_once_and_persists(tmp_cache):
    ctx = cache.Context("x", 1, "cpu")
    calls = []

    def fake(sigs, done):
        calls.extend(sigs)
        done(len(sigs))
        return [Timing(len(s) * 1e-6, 0.0, 3) for s in sigs]

    got = cache.lookup(["a", "bb", "a"], ctx, fake)
    assert calls == ["a", "bb"] and [t.median_s for t in got] == [1e-6, 2e-6, 1e-6]
    cache._MEMORY.clear()                     # a new process: read from disk
    assert cache.lookup(["bb", "a"], ctx, fake)[0].median_s == 2e-6
    assert calls == ["a", "bb"]
    other = cache.Context("x", 2, "cpu")      # another thread count: its own entries
    cache.lookup(["a"], other, fake)
    assert calls == ["a", "bb", "a"]


def test_second_cost_call_measures_nothing(tmp_cache):
    from symbiote.backends.manager import get_template
    from symbiote.frontend.zoo import tiny_cnn
    from symbiote.frontend import load
    from symbiote.ir.lower import lower

    t = get_template("ort-cpu")
    wl = lower(load(tiny_cnn(image_size=8, channels=(4, 8, 8))))
    hw = t.space.encode(t.space.default())
    before = cache.MEASURED["count"]
    first = np.asarray(t.cost(hw, wl).latency_s)
    assert cache.MEASURED["count"] > before
    after_first = cache.MEASURED["count"]
    cache._MEMORY.clear()
    second = np.asarray(t.cost(hw, wl).latency_s)
    assert cache.MEASURED["count"] == after_first
    np.testing.assert_array_equal(first, second)
    assert list(tmp_cache.glob("*.json"))


def test_summarize_median_and_spread():
    t = summarize(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert t.median_s == 3.0 and t.spread_s == 1.0 and t.reps == 5
