"""Timing onnxruntime sessions: one kernel as a one-kernel ONNX model, or a whole model.

A session is made with explicit ``intra_op_num_threads``, execution mode and optimization
level (:func:`symbiote.backends.ortcpu.kernels.session_options`); it is run ``warmup``
times untimed, then timed run by run with ``time.perf_counter_ns`` until ``reps`` runs or
``budget_s`` seconds have passed (at least ``min_reps`` runs). The median is kept; the
spread is half the interquartile range of the runs (:class:`Timing`).

Several kernels are measured interleaved (:func:`measure_net`): their sessions are made
together (in chunks of at most :data:`CHUNK` kernels and :data:`CHUNK_BYTES` of weights),
and each gets its runs in ``Settings.rounds`` slices taken in turn (:func:`interleaved`), so
a burst of load from other processes on a shared machine lands on every kernel's runs alike
instead of on a few. Each slice starts with ``Settings.slice_warmup`` untimed runs, so every
session, a kernel or a whole model, is timed warm, after its own previous run, and never
right after the other sessions' runs. (This machine's speed moves between regimes up to
1.5x apart every few seconds: the more rounds, the more alike the regimes every session
samples; :mod:`benchmarks.measured` uses 40.) (Running the kernels round robin, one run each per round, was tried:
with the whole model among them it measured every kernel and the model with cold caches,
slower than a model run again and again runs, and it predicted the zoo worse.)

A kernel's latency is its one-kernel run minus the *run overhead*, the part of a
``session.run`` that any model pays once per run, whatever its number of nodes: with ``t1``
the run of a one-element Relu and ``t8`` that of eight chained ones, a node costs
``(t8 - t1) / 7`` and the overhead is ``t1`` less that (:func:`overhead_from`; what each
node costs to dispatch stays in the kernel's latency). :func:`measure_net` measures the two
overhead models among every batch of kernels and subtracts that batch's overhead from its
kernels (a kernel at or below it is charged :data:`MIN_KERNEL_S`), chunk by chunk, so
kernels measured while the machine was busier are corrected by an overhead measured under
the same load.
The cost model charges the overhead once per model.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from symbiote.backends.ortcpu import kernels
from symbiote.errors import BackendError


@dataclass(frozen=True)
class Settings:
    """How much to run: ``warmup`` untimed runs, then up to ``reps`` timed runs within
    ``budget_s`` seconds (never fewer than ``min_reps``); interleaved, in ``rounds`` slices
    (module doc)."""

    warmup: int = 5
    reps: int = 200
    min_reps: int = 15
    budget_s: float = 0.25
    #: interleaved measurements (:func:`interleaved`): slices per session, and untimed runs
    #: at the start of each slice
    rounds: int = 6
    slice_warmup: int = 1


#: ``SYMBIOTE_ORTCPU_QUICK=1`` (tests): fewer runs per measurement
QUICK = Settings(warmup=2, reps=20, min_reps=5, budget_s=0.02, slice_warmup=0)


def default_settings() -> Settings:
    return QUICK if os.environ.get("SYMBIOTE_ORTCPU_QUICK") == "1" else Settings()


@dataclass(frozen=True)
class Timing:
    """A measured latency: the median of ``reps`` runs and half their interquartile range."""

    median_s: float
    spread_s: float
    reps: int


def summarize(samples_s: np.ndarray) -> Timing:
    """Median and half the interquartile range of run times (seconds)."""
    s = np.asarray(samples_s, np.float64)
    q25, q50, q75 = np.percentile(s, [25, 50, 75])
    return Timing(float(q50), float((q75 - q25) / 2), int(s.size))


def feeds_for(sess, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for every session input (float32 normal; integers zero)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        out[i.name] = rng.standard_normal(shape).astype(np.float32) if "float" in i.type else np.zeros(shape, np.int64)
    return out


def time_session(sess, feeds: dict[str, np.ndarray], settings: Settings) -> Timing:
    """Run ``sess`` on ``feeds``: warm-up runs, then timed runs (module doc)."""
    return summarize(run_samples(sess, feeds, settings))


def run_samples(sess, feeds: dict[str, np.ndarray], settings: Settings) -> np.ndarray:
    """The timed runs' durations in seconds, after the warm-up runs."""
    for _ in range(settings.warmup):
        sess.run(None, feeds)
    samples = []
    start = time.perf_counter()
    while len(samples) < settings.reps and (len(samples) < settings.min_reps or time.perf_counter() - start < settings.budget_s):
        t0 = time.perf_counter_ns()
        sess.run(None, feeds)
        samples.append((time.perf_counter_ns() - t0) * 1e-9)
    return np.array(samples)


def session(model, threads: int, parallel: bool = False, level: str = kernels.LEVEL):
    import onnxruntime as ort

    src = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    return ort.InferenceSession(src, kernels.session_options(threads, parallel, level), providers=["CPUExecutionProvider"])


def measure_model(model, threads: int, parallel: bool = False, settings: Settings | None = None,
                  feeds: dict[str, np.ndarray] | None = None) -> Timing:
    """The end-to-end latency of a whole model (optimized at :data:`kernels.LEVEL`), for
    comparison with the sum of its kernels."""
    sess = session(model, threads, parallel)
    return time_session(sess, feeds if feeds is not None else feeds_for(sess), settings or default_settings())


CHUNK = 256
CHUNK_BYTES = 256 * 2**20


def chunks(models: Sequence[object]) -> list[list[int]]:
    """Indices of ``models`` (ONNX models) in consecutive chunks of at most :data:`CHUNK`
    models and :data:`CHUNK_BYTES` bytes of initializers (a larger model is a chunk alone)."""
    out: list[list[int]] = []
    size = 0
    for i, m in enumerate(models):
        b = sum(len(t.raw_data) for t in m.graph.initializer)
        if not out or len(out[-1]) >= CHUNK or size + b > CHUNK_BYTES:
            out.append([])
            size = 0
        out[-1].append(i)
        size += b
    return out


def interleaved(runs: Sequence[tuple[object, dict[str, np.ndarray]]], settings: Settings) -> list[np.ndarray]:
    """The timed runs of several ``(session, feeds)``: each warmed up, then run in
    ``settings.rounds`` slices taken in turn, each slice ``settings.slice_warmup`` untimed
    runs and ``1 / rounds`` of ``settings``' timed runs and budget (module doc)."""
    n = max(1, settings.rounds)
    part = replace(settings, warmup=settings.slice_warmup, reps=math.ceil(settings.reps / n),
                   min_reps=math.ceil(settings.min_reps / n), budget_s=settings.budget_s / n)
    for x, f in runs:
        run_samples(x, f, replace(settings, reps=0, min_reps=0))      # the warm-up runs
    samples: list[list[np.ndarray]] = [[] for _ in runs]
    for _ in range(n):
        for i, (x, f) in enumerate(runs):
            samples[i].append(run_samples(x, f, part))
    return [np.concatenate(v) for v in samples]


#: the one-node and eight-node models whose runs give the run overhead (module doc)
CHAIN = 8
OVERHEAD_KERNELS = (kernels.kernel("relu", elems=1), kernels.kernel("relu_chain", elems=1, nodes=CHAIN))


def overhead_from(one: Timing, chain: Timing) -> float:
    """The run overhead in seconds from the runs of the one- and :data:`CHAIN`-node models."""
    per_node = max(chain.median_s - one.median_s, 0.0) / (CHAIN - 1)
    return max(one.median_s - per_node, 0.0)


#: what a kernel measured at or below the run overhead is charged (it is not free)
MIN_KERNEL_S = 1e-9


def net(raw: Timing, overhead_s: float) -> Timing:
    """A kernel's timing less the run overhead."""
    return Timing(max(raw.median_s - overhead_s, MIN_KERNEL_S), raw.spread_s, raw.reps)


@dataclass(frozen=True)
class NetBatch:
    """What :func:`measure_net` measured: each kernel less the run overhead, the overhead
    (median over the chunks), and the runs of the companion session, if any."""

    kernels: tuple[Timing, ...]
    overhead: Timing
    companion_s: np.ndarray


def _session_of(k: kernels.Kernel, model, threads: int):
    try:
        return session(model, threads)
    except Exception as e:  # noqa: BLE001 - name the kernel, then fail
        raise BackendError(f"ort-cpu: onnxruntime cannot run kernel {k.signature}: {e}") from e


def measure_net(ks: Sequence[kernels.Kernel], threads: int, settings: Settings | None = None,
                done: Callable[[int], None] | None = None, companion: tuple[object, dict] | None = None) -> NetBatch:
    """The kernels measured interleaved chunk by chunk, each chunk with the two overhead
    models (and ``companion``, a ``(session, feeds)`` such as a whole model) among them, and
    each kernel less its chunk's run overhead (module doc)."""
    s = settings or default_settings()
    models = [kernels.build_model(k) for k in ks]
    extra = [(x, feeds_for(x)) for x in (session(kernels.build_model(k), threads) for k in OVERHEAD_KERNELS)]
    extra += [companion] if companion is not None else []
    out: list[Timing] = []
    overs: list[float] = []
    comp: list[np.ndarray] = []
    for idx in chunks(models) or [[]]:
        sessions = [_session_of(ks[i], models[i], threads) for i in idx]
        got = interleaved([(x, feeds_for(x)) for x in sessions] + extra, s)
        over = overhead_from(summarize(got[len(idx)]), summarize(got[len(idx) + 1]))
        out += [net(summarize(v), over) for v in got[:len(idx)]]
        overs.append(over)
        comp += got[len(idx) + 2:]
        if done is not None:
            done(len(idx))
    spread = float((np.percentile(overs, 75) - np.percentile(overs, 25)) / 2)
    return NetBatch(tuple(out), Timing(float(np.median(overs)), spread, len(overs)), np.concatenate(comp) if comp else np.zeros(0))
