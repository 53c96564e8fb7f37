"""The on-disk cache of kernel measurements.

An entry is keyed by the kernel's signature, the onnxruntime version, the thread count and
the CPU model (``model name`` in ``/proc/cpuinfo``), plus :data:`SCHEMA` (how kernels are
built and measured: bumped when that changes): :func:`cache_key`. Entries of one context
(version, threads, CPU) live in one JSON file, ``<dir>/<context hash>.json``, written
atomically; the directory is ``$SYMBIOTE_ORTCPU_CACHE`` when set, else
``~/.cache/symbiote/ortcpu``. :func:`lookup` returns what is cached and measures the rest
(all in one call of the measuring function, with a progress bar on a terminal when several
are missing), so a second call with the same kernels measures nothing; :data:`MEASURED`
counts the measurements made in this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from symbiote.backends.ortcpu.measure import Timing
from symbiote.fileio import write_text

ENV_DIR = "SYMBIOTE_ORTCPU_CACHE"
#: the kernel builders' and the timing's version, and the optimization level (module doc)
SCHEMA = "1-extended"

#: measurements made in this process (tests check that a warm cache makes none)
MEASURED = {"count": 0}


@dataclass(frozen=True)
class Context:
    """What a measurement depends on besides the kernel."""

    ort_version: str
    threads: int
    cpu: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.ort_version}|{self.threads}|{self.cpu}|{SCHEMA}".encode()).hexdigest()[:16]


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's ``model name`` from ``/proc/cpuinfo`` (else ``platform.processor()``)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.lower().startswith("model name") and ":" in line:
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def context(threads: int) -> Context:
    import onnxruntime as ort

    return Context(ort.__version__, int(threads), cpu_model())


def cache_key(signature: str, ctx: Context) -> str:
    """The key of one kernel measurement (a hex SHA-256)."""
    return hashlib.sha256(f"{signature}|{ctx.ort_version}|{ctx.threads}|{ctx.cpu}|{SCHEMA}".encode()).hexdigest()


def cache_dir() -> Path:
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else Path.home() / ".cache" / "symbiote" / "ortcpu"


def _path(ctx: Context) -> Path:
    return cache_dir() / f"{ctx.digest}.json"


#: what this process read or measured, by cache file (so a warm lookup reads no file)
_MEMORY: dict[Path, dict[str, Timing]] = {}


def load(ctx: Context) -> dict[str, Timing]:
    """The cached timings of a context, by :func:`cache_key` (read from disk)."""
    try:
        data = json.loads(_path(ctx).read_text())
    except (OSError, ValueError):
        return {}
    return {k: Timing(*v) for k, v in data.get("entries", {}).items()}


def save(ctx: Context, entries: dict[str, Timing]) -> None:
    merged = {**load(ctx), **entries}  # keep what another process wrote meanwhile
    body = {"context": {"ort_version": ctx.ort_version, "threads": ctx.threads, "cpu": ctx.cpu, "schema": SCHEMA},
            "entries": {k: [t.median_s, t.spread_s, t.reps] for k, t in sorted(merged.items())}}
    write_text(_path(ctx), json.dumps(body))


def store(ctx: Context, timings: dict[str, Timing]) -> None:
    """Record timings measured elsewhere (by kernel signature) as if :func:`lookup` had."""
    new = {cache_key(sig, ctx): t for sig, t in timings.items()}
    save(ctx, new)
    _MEMORY.setdefault(_path(ctx), {}).update(new)


#: ``measure(signatures, done)``: their timings, calling ``done(n)`` as ``n`` more are finished
Measure = Callable[[list[str], Callable[[int], None]], list[Timing]]


def lookup(signatures: Sequence[str], ctx: Context, measure: Measure,
           label: str = "ort-cpu: measuring kernels") -> list[Timing]:
    """The timing of each signature: cached ones read, missing ones measured (each once, in
    one call of ``measure``) and saved."""
    keys = [cache_key(s, ctx) for s in signatures]
    cached = _MEMORY.setdefault(_path(ctx), {})
    if any(k not in cached for k in keys):
        cached.update(load(ctx))
    missing = list(dict.fromkeys(s for s, k in zip(signatures, keys) if k not in cached))
    if missing:
        with _progress(len(missing), label) as done:
            got = measure(missing, done)
        MEASURED["count"] += len(missing)
        new = {cache_key(sig, ctx): t for sig, t in zip(missing, got, strict=True)}
        save(ctx, new)
        cached.update(new)
    return [cached[k] for k in keys]


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A ``done(n)`` callback advancing a progress bar on a terminal (when ``total`` > 1)."""
    if total < 2 or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{label} ({total} new)", total=total)
        yield lambda n: bar.advance(task, n)
