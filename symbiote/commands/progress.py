"""What ``symbiote search`` shows on stderr while it runs.

On a terminal: a line for the run (its phase, and the budget used) and a bar per search
(the joint one, then each network alone). Elsewhere (a batch job, a pipe, a log file):
:class:`LogLines`, a line when a phase begins and, while a search runs, one at most every
:data:`LOG_EVERY_S` seconds, each with the time since the start, the phase, evaluations
and the best objective. ``--quiet``: nothing.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

#: seconds between two log lines of a search (when stderr is not a terminal)
LOG_EVERY_S = 5.0


def _best(p: Any) -> str:
    return f"{p.best:.4g}" if math.isfinite(p.best) else "none feasible yet"


@dataclass
class LogLines:
    """Progress as log lines on ``stream``, timed on ``clock`` from ``start``: a line when a
    phase begins, and for a search at most one every ``every`` seconds, plus its last state
    when it ends (the next phase or search begins)."""

    stream: TextIO
    clock: Callable[[], float]
    start: float
    every: float = LOG_EVERY_S
    last: float = -math.inf
    search: str = ""
    pending: Any = None          # the search's latest progress, not yet written

    def _line(self, text: str) -> None:
        self.stream.write(f"[{self.clock() - self.start:7.1f} s] {text}\n")
        self.stream.flush()

    def _search_line(self, p: Any) -> None:
        self._line(f"search {self.search}: {p.evals} evaluations, best {_best(p)}, front {p.front_size}")
        self.pending = None

    def _flush(self) -> None:
        if self.pending is not None:
            self._search_line(self.pending)

    def phase(self, name: str) -> None:
        self._flush()
        self._line(name)

    def update(self, search: str, p: Any) -> None:
        """A search's progress (``search``: "joint" or a network searched alone)."""
        if search != self.search:
            self._flush()
            self.search, self.last = search, -math.inf
        now = self.clock()
        self.pending = p
        if now - self.last >= self.every:
            self.last = now
            self._search_line(p)


@dataclass(frozen=True)
class Reporter:
    update: Callable[[str, Any], None] | None   # api.run's ``progress``
    phase: Callable[[str], None]                 # budget.Budget's ``phase``
    stop: Callable[[], None]


def _nothing(*_: Any) -> None:
    return None


def reporter(quiet: bool, settings: Any, start: float, stream: TextIO | None = None,
             clock: Callable[[], float] = time.monotonic, every: float = LOG_EVERY_S) -> Reporter:
    """The progress display for a search with ``settings`` (its budget), started at ``start``
    on ``clock``: a rich display on a terminal, else log lines; nothing when ``quiet``."""
    stream = stream if stream is not None else sys.stderr
    if quiet:
        return Reporter(None, _nothing, _nothing)
    if not stream.isatty():
        log = LogLines(stream, clock, start, every)
        return Reporter(log.update, log.phase, _nothing)
    return _bars(settings, start, stream, clock)


def _bars(settings: Any, start: float, stream: TextIO, clock: Callable[[], float]) -> Reporter:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), console=Console(file=stream), transient=False)
    bar.start()
    timed = settings.budget_evals is None
    run = bar.add_task("run", total=settings.budget_seconds if timed else None, info="")
    tasks: dict[str, int] = {}

    def phase(name: str) -> None:
        bar.update(run, completed=clock() - start if timed else None, info=name)

    def update(search: str, p: Any) -> None:
        if search not in tasks:
            tasks[search] = bar.add_task(search, total=None if timed else settings.budget_evals, info="")
        bar.update(tasks[search], completed=None if timed else p.evals,
                   info=f"{p.evals} evals, best {_best(p)}, front {p.front_size}")
        if timed:
            bar.update(run, completed=clock() - start)

    return Reporter(update, phase, bar.stop)
