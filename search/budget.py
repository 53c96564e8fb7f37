"""The wall-time budget of a run (``--budget-seconds``): what each phase is expected to
take, and how much of the budget each phase gets.

The budget covers the whole run, reckoned from the process start (the command start):

=============  ==========================================================  ===================
phase          what                                                        how it is counted
=============  ==========================================================  ===================
startup        imports, argument parsing                                   measured
load           loading the models                                          measured
calibration    ``--prepare`` passes, the accuracy proxy's probes            estimated (announced
               in onnxruntime (:mod:`symbiote.search.sensitivity`)         when it cannot fit),
                                                                           then measured
build          the problem, the degenerate-input checks                    measured
compile        jit of the problem's evaluator (one batch size: one         measured (the
               compile, :mod:`symbiote.search.problem`)                    baseline's metrics)
search         the joint search, the gradient phase's compile included     planned: what is left
exact          exact checks of the best candidates in onnxruntime          1.5 checks reserved;
                                                                           more while time is left
regret         the single-network searches of a multi-model run            planned share
outputs        result files, the report, the exit                          estimated reserve
=============  ==========================================================  ===================

:func:`plan` is the split: the measured phases and the estimates of those still to come
in, an allowance per phase out; the allowances never add up to more than the budget
unless even the fixed phases cannot fit, and then the plan's notes say how long the run
will take. A step that cannot fit is announced before it starts (the notes go to
stderr). The estimates are linear in the model's size with constants measured on a
2-core x86 machine (``benchmarks/budget.py`` checks the whole); they only set reserves,
as every phase is measured as it runs.

``--budget-evals`` runs use none of this: their stopping point is a count of evaluations,
so a seed gives one result.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

#: the joint search's share of the search time in a multi-model run; the rest is shared
#: by the single-network searches (the same split as ``--budget-evals``)
JOINT_SHARE = 0.5
#: the gradient phase is used when its compilation takes at most this share of a search
GRADIENT_SHARE = 0.5
#: a search is given at least this long (its first iteration always runs)
MIN_SEARCH_S = 1.0
#: a single-network search (for a regret) shorter than this would not say much: left out
MIN_ALONE_S = 1.0

# ---- estimates (seconds on a 2-core x86 machine, fitted to zoo:tiny_cnn, resnet18, bert,
# mobilenet_v2, lstm and resnet50 runs there; see the module doc) ------------------------
#: onnxruntime, one inference: per node and per GMAC
ORT_NODE_S = 5e-5
ORT_GMAC_S = 0.028
#: the calibration, besides its probes (sessions, passes)
CALIBRATION_S = 0.5
#: one exact check besides its inferences: fixed, per node and per million weights (the
#: passes quantize and write every weight, one session per graph loads them; measured:
#: resnet18's 11.7 M ~1 s)
EXACT_S = 0.5
EXACT_NODE_S = 0.007
EXACT_MPARAM_S = 0.08
#: quantizer nodes a layer adds to the checked model (weights, input and output activations)
QDQ_NODES_PER_LAYER = 12
#: one evaluation sample in a reused session, per GMAC (measured, resnet18 on 2 cores: 0.037 s
#: float, 0.042 s quantized a sample; the search's samples are not scaled by :func:`speed`,
#: whose calibration phase is mostly passes and session builds)
EVAL_GMAC_S = 0.02
#: writing a network's ``.onnx`` and running it once: per node and per GMAC
WRITE_NODE_S = 3e-3
WRITE_GMAC_S = 0.32
#: the report (matplotlib, plots, per-layer details): per run, per network and per node
#: (a per-layer plot); the process exit
REPORT_S = 2.5
REPORT_NETWORK_S = 0.6
REPORT_NODE_S = 0.02
EXIT_S = 0.5
#: exact checks reserved, in checks: the first candidate misses a fidelity bound about as
#: often as not (the search goes to the proxy's edge), and a miss costs a second check; 1.5
#: keeps a run within ~10% of its budget either way
EXACT_RESERVE = 1.5
#: more checks reserved when each candidate is fine-tuned first (``--finetune-steps``): a
#: fine-tuned candidate at the proxy's edge misses by a little more often than not, and the
#: repair ladder (search/api.py) then steps its widths toward the original, one fine-tuned
#: check a step; measured on zoo:lstm on ort-cpu: the second to fourth check is the first to pass
TUNED_EXTRA_CHECKS = 1.0
#: with fine-tuning, the search's candidates with other model knobs sit at the same edge of
#: the proxy as its best and miss with it; only the best is checked before the repair ladder
#: (measured on zoo:lstm, ort-cpu, ``--budget-evals 1500``: the 6 front candidates all missed
#: fidelity>=0.99 after fine-tuning, the first ladder step passed)
TUNED_CANDIDATES = 1
#: the evaluator's compile before it is measured: per problem and per network
COMPILE_S = 0.5
COMPILE_NETWORK_S = 1.1
#: the gradient phase's compile over the evaluator's (measured: 5-14x; pessimistic)
GRADIENT_COMPILE_RATIO = 10.0
#: how far the measured speed may scale the estimates (:func:`speed`)
SPEED_RANGE = (0.5, 4.0)


@dataclass(frozen=True)
class ModelSize:
    """What the onnxruntime phases' durations grow with."""

    nodes: int            # graph nodes
    layers: int           # MAC layers (each probed by the calibration, quantized by the exact check)
    gmacs: float          # multiply-accumulates of one inference, in billions
    mparams: float = 0.0  # the MAC layers' weights, in millions

    @staticmethod
    def of(graph) -> "ModelSize":
        from symbiote.ir import analysis, ops

        layers = [n for n in graph.nodes if n.op in ops.COMPUTE]
        weights = sum(v.size for n in layers for v in analysis.weight_inputs(n))
        return ModelSize(len(graph.nodes), len(layers), sum(analysis.macs(n) for n in layers) / 1e9, weights / 1e6)


def inference_s(size: ModelSize, extra_nodes: int = 0) -> float:
    """One inference in onnxruntime (``extra_nodes``: quantizers added to the model)."""
    return ORT_NODE_S * (size.nodes + extra_nodes) + ORT_GMAC_S * size.gmacs


def calibration_s(size: ModelSize, samples: int = 4) -> float:
    """The proxy's fit (:func:`symbiote.search.accuracy.calibrate`): activation ranges on
    ``samples`` inputs, a width probe, each layer quantized alone at two bit-widths and all
    of them at two more, in a model with a 4-node quantizer on up to 3 activations a layer."""
    return CALIBRATION_S + (2 * size.layers + 5 + samples) * inference_s(size, 12 * size.layers)


def exact_check_s(size: ModelSize, eval_samples: int = 64) -> float:
    """One candidate's exact check (:func:`symbiote.search.api.exact_check`): the passes, the
    activation ranges, the quantized model run on the ``eval_samples`` evaluation inputs
    (the original's outputs on them come once per network: :func:`reference_s`)."""
    return exact_fixed_s(size) + eval_samples * eval_sample_s(size, QDQ_NODES_PER_LAYER * size.layers)


def exact_fixed_s(size: ModelSize) -> float:
    """An exact check's passes and session, without its inferences."""
    return EXACT_S + EXACT_NODE_S * size.nodes + EXACT_MPARAM_S * size.mparams


def eval_sample_s(size: ModelSize, extra_nodes: int = 0) -> float:
    """One evaluation sample in a reused session (``extra_nodes``: quantizers)."""
    return ORT_NODE_S * (size.nodes + extra_nodes) + EVAL_GMAC_S * size.gmacs


def reference_s(size: ModelSize, eval_samples: int = 64) -> float:
    """The original's outputs on the evaluation inputs, once per network (the first exact check)."""
    return eval_samples * eval_sample_s(size)


def outputs_s(size: ModelSize) -> float:
    """A network's share of the outputs: its ``.onnx`` written and run once, its plots."""
    return (WRITE_NODE_S + REPORT_NODE_S) * size.nodes + WRITE_GMAC_S * size.gmacs + REPORT_NETWORK_S


def compile_s(networks: int) -> float:
    """The evaluator's compile, before it is measured."""
    return COMPILE_S + COMPILE_NETWORK_S * networks


def speed(measured_s: float, estimated_s: float) -> float:
    """How much slower than the estimates this machine runs now (a phase measured against
    its estimate; 1 when too short to tell), within :data:`SPEED_RANGE`."""
    if estimated_s < 0.5 or measured_s <= 0:
        return 1.0
    return min(max(measured_s / estimated_s, SPEED_RANGE[0]), SPEED_RANGE[1])


@dataclass(frozen=True)
class Estimates:
    """The phases still to come when the search is planned (seconds)."""

    exact_s: float               # one exact check (every network)
    outputs_s: float             # result files, the report, the exit
    gradient_s: float            # compiling the joint problem's gradient phase
    alone_gradient_s: float = 0.0  # compiling one single-network problem's gradient phase
    reference_s: float = 0.0     # the originals' outputs on the evaluation inputs (once)


def estimates(sizes: list[ModelSize], compile_measured_s: float, slower: float = 1.0,
              eval_samples: int = 64) -> Estimates:
    """From the networks' sizes, the measured compile of the evaluator, and how much slower
    than the fitted constants onnxruntime runs now (:func:`speed` of the calibration)."""
    g = GRADIENT_COMPILE_RATIO * compile_measured_s
    return Estimates(exact_s=sum(exact_check_s(s, eval_samples) + (slower - 1.0) * exact_fixed_s(s) for s in sizes),
                     outputs_s=REPORT_S + EXIT_S + sum(outputs_s(s) for s in sizes),
                     gradient_s=g, alone_gradient_s=g / max(1, len(sizes)),
                     reference_s=sum(reference_s(s, eval_samples) for s in sizes))


@dataclass(frozen=True)
class Plan:
    """Seconds per phase still to come; the notes say what does not fit."""

    budget_s: float
    spent_s: float               # measured before the search (startup to compile)
    search_s: float              # the joint search, its gradient compile included
    alone_s: float               # each single-network search (0: none runs)
    exact_s: float               # reserved for the exact checks (:data:`EXACT_RESERVE` checks)
    outputs_s: float             # reserved for the files, the report and the exit
    networks: int
    gradient: bool               # the joint search runs gradient phases
    alone_gradient: bool         # the single-network searches do
    notes: tuple[str, ...] = ()
    check_s: float = 0.0         # one exact check, estimated

    @property
    def alone_searches(self) -> int:
        """How many single-network searches run (for the regrets)."""
        return self.networks if self.networks > 1 and self.alone_s > 0 else 0

    @property
    def total_s(self) -> float:
        """When the run is expected to end (seconds from the process start)."""
        return self.spent_s + self.search_s + self.alone_searches * self.alone_s + self.exact_s + self.outputs_s

    def alone_seconds(self, left_s: float, searches_left: int) -> float:
        """A single-network search's time with ``left_s`` of the budget left and
        ``searches_left`` of them to go: its planned share, less when the run is behind."""
        return max(MIN_SEARCH_S, min(self.alone_s, (left_s - self.outputs_s) / max(1, searches_left)))

    def alone_fits(self, watch: "Stopwatch") -> bool:
        """Whether the single-network searches run: planned, and still with
        :data:`MIN_ALONE_S` each (the exact checks may have taken longer than planned);
        said when they no longer fit."""
        if not self.alone_searches:
            return False
        each = (watch.budget.left() - self.outputs_s) / self.alone_searches
        if each >= MIN_ALONE_S:
            return True
        watch.say(f"the searches of each network alone are left out: {max(each, 0):.1f} s are left for each, "
                  f"{MIN_ALONE_S:g} s needed (the exact checks took longer than planned); the regrets are not "
                  "measured")
        return False


#: when every candidate's exact check together costs at most this share of the budget, all
#: of them are reserved (a small model's checks are cheap; a miss then costs no candidate)
CHEAP_CHECKS_SHARE = 0.05


def plan(budget_s: float, spent_s: float, est: Estimates, networks: int = 1, gradient: bool = True,
         extra_checks: float = 0.0, candidates: int = 0) -> Plan:
    """Split what is left of ``budget_s`` after ``spent_s`` (measured) and the estimated
    exact checks (:data:`EXACT_RESERVE` of them, plus ``extra_checks``: the hardware-only
    design's, checked when it could win, with model knobs on; all ``candidates`` + 1 when
    that costs at most :data:`CHEAP_CHECKS_SHARE` of the budget) and outputs. With one network the joint
    search gets it all; with several, :data:`JOINT_SHARE` of it, and each single-network
    search an equal part of the rest, unless that part is under :data:`MIN_ALONE_S`: then
    they are left out (the regrets are not measured) and the joint search gets it all. A
    search uses the gradient phase when ``gradient`` and its compile fits in
    :data:`GRADIENT_SHARE` of the search's time (``SearchSettings.gradient_in_budget``).
    When even :data:`MIN_SEARCH_S` of search does not fit, the note says how long the run
    will take instead."""
    checks = EXACT_RESERVE + extra_checks
    if candidates and (candidates + 1) * est.exact_s <= CHEAP_CHECKS_SHARE * budget_s:
        checks = max(checks, candidates + 1.0)
    exact = checks * est.exact_s + est.reference_s
    fixed = spent_s + exact + est.outputs_s
    free = budget_s - fixed
    notes: list[str] = []
    alone_n = networks if networks > 1 else 0
    if free < MIN_SEARCH_S:
        need = fixed + MIN_SEARCH_S
        notes.append(f"the fixed phases need ~{fixed:.0f} s of the {budget_s:g} s budget ({spent_s:.0f} s spent "
                     f"loading, calibrating and compiling; exact checks ~{exact:.0f} s, outputs and report "
                     f"~{est.outputs_s:.0f} s): this run will take about {need:.0f} s; raise --budget-seconds to "
                     f"at least {_suggest(need + 10 + alone_n * MIN_ALONE_S / (1 - JOINT_SHARE))} for a useful search")
        joint, alone = MIN_SEARCH_S, 0.0
    elif alone_n and free * (1 - JOINT_SHARE) / alone_n < MIN_ALONE_S:
        notes.append(f"the searches of each network alone (for the regrets) need ~{MIN_ALONE_S:.0f} s each and "
                     f"{free:.0f} s are left for searching: they are left out, the regrets not measured (raise "
                     f"--budget-seconds to about {_suggest(fixed + alone_n * MIN_ALONE_S / (1 - JOINT_SHARE))})")
        joint, alone = free, 0.0
    else:
        joint = free * JOINT_SHARE if alone_n else free
        alone = (free - joint) / alone_n if alone_n else 0.0
    use, alone_use = gradient, gradient and alone > 0
    if gradient:
        use = est.gradient_s <= GRADIENT_SHARE * joint
        alone_use = alone > 0 and est.alone_gradient_s <= GRADIENT_SHARE * alone
        if not use and free >= MIN_SEARCH_S:
            share = JOINT_SHARE if alone > 0 else 1.0
            notes.append(f"the gradient phase needs ~{est.gradient_s:.0f} s to compile, more than "
                         f"{GRADIENT_SHARE:.0%} of the {joint:.0f} s left for the search: searching without it "
                         f"(raise --budget-seconds to about "
                         f"{_suggest(fixed + est.gradient_s / GRADIENT_SHARE / share)} to use it)")
    return Plan(budget_s, spent_s, joint, alone, exact, est.outputs_s, networks, use, alone_use, tuple(notes),
                est.exact_s)


def _suggest(seconds: float) -> str:
    """A round budget to suggest: the next multiple of 10 s."""
    return f"{int(math.ceil(seconds / 10.0) * 10)}"


def calibration_note(model: str, need_s: float, left_s: float, after_s: float, budget_s: float) -> str | None:
    """What to announce before calibrating ``model`` (needing ``need_s``) with ``left_s``
    of the budget left, when the phases after it need ``after_s`` at least; None if it fits."""
    if need_s + after_s <= left_s:
        return None
    return (f"calibration of {model} needs ~{need_s:.0f} s of the {budget_s:g} s budget ({max(left_s, 0):.0f} s "
            f"left, ~{after_s:.0f} s needed after it): the run will go over; raise --budget-seconds to about "
            f"{_suggest(budget_s - left_s + need_s + after_s + 10)}, or use --model-knobs none (no accuracy probes)")


def in_time(candidates: Sequence[T], watch: "Stopwatch", plan: Plan | None) -> Iterator[T]:
    """The exact check's candidates, in order, while the budget lasts: after the first, one
    is checked only while a check (the mean so far, at least the estimate) fits before what
    the later phases need; then, said, only the last one (the last resort: the model as
    given). Every candidate without a time plan."""
    if plan is None:
        yield from candidates
        return
    reserve = plan.outputs_s + plan.alone_searches * plan.alone_s
    spent, done = 0.0, 0
    for j, c in enumerate(candidates):
        need = max(plan.check_s, spent / done if done else 0.0)
        if done and j < len(candidates) - 1 and watch.budget.left() - reserve < need:
            watch.say(exact_stop_note(done, len(candidates)))
            yield candidates[-1]
            return
        t = watch.budget.clock()
        yield c
        spent += watch.budget.clock() - t
        done += 1


def exact_stop_note(checked: int, candidates: int) -> str:
    return (f"exact check stopped after {checked} of {candidates} candidates: the budget is spent; the last "
            "resort (the best hardware with the model as given) is checked instead")


# ---- the clock ---------------------------------------------------------------------
def process_start(clock: Callable[[], float] = time.monotonic) -> float:
    """When this process started, on ``clock`` (Linux: from /proc; elsewhere: now)."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        age = 0.0
    return clock() - max(0.0, age)


#: a process that had lived longer than this when the command line was imported ran
#: something else first and then exec'd ``symbiote`` (``bash -c "pip install . && symbiote
#: ..."`` execs its last command in place): its start is not the command's
EXEC_GAP_S = 5.0


def command_start(argv0: str | None = None, clock: Callable[[], float] = time.monotonic,
                  entered: float | None = None, started: float | None = None) -> float:
    """When the command started, on ``clock``: the process start when this process is the
    ``symbiote`` command (its script, or ``python -m symbiote``) and was not exec'd from an
    older process (``entered``, when the command line was imported, is within
    :data:`EXEC_GAP_S` of it), else ``entered``; now for a call from Python."""
    from pathlib import Path

    p = Path(sys.argv[0] if argv0 is None else argv0)
    if p.name == "symbiote" or (p.name == "__main__.py" and p.parent.name == "symbiote"):
        started = process_start(clock) if started is None else started
        return started if entered is None or entered - started <= EXEC_GAP_S else entered
    return clock()


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Budget:
    """A run's clock: how long it may take (``seconds``; None: no time budget), since when
    (``start``, on ``clock``), and where it says what it is doing (``phase``) and what
    does not fit in its time (``say``)."""

    seconds: float | None
    start: float | None = None          # None: now
    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] = _quiet
    phase: Callable[[str], None] = _quiet

    def __post_init__(self) -> None:
        if self.start is None:
            object.__setattr__(self, "start", self.clock())

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return math.inf if self.seconds is None else self.seconds - self.elapsed()


@dataclass(frozen=True)
class Timing:
    """What a run's time went to: measured seconds per phase, the plan, what was said."""

    budget_s: float | None
    phases: dict[str, float]
    plan: Plan | None = None
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        p = self.plan
        return {"budget_seconds": self.budget_s, "phases": dict(self.phases),
                "plan": None if p is None else {"search_s": round(p.search_s, 3), "alone_s": round(p.alone_s, 3),
                                                 "exact_s": round(p.exact_s, 3), "outputs_s": round(p.outputs_s, 3),
                                                 "gradient": p.gradient, "alone_gradient": p.alone_gradient,
                                                 "expected_total_s": round(p.total_s, 3)},
                "notes": list(self.notes)}


@dataclass
class Stopwatch:
    """The measured phases of a run, in order (phase -> seconds; the time before the
    stopwatch was made counts as ``startup``), and the notes said about its time."""

    budget: Budget
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    current: str = "startup"
    since: float = 0.0

    def __post_init__(self) -> None:
        self.since = self.budget.start

    def say(self, note: str) -> None:
        self.notes.append(note)
        self.budget.say(note)

    def timing(self, plan: Plan | None = None) -> Timing:
        """The phases so far (the current one ended), the plan and the notes."""
        return Timing(self.budget.seconds, self.stop(), plan, tuple(self.notes))

    def enter(self, phase: str) -> None:
        """End the current phase and begin ``phase`` (phases may recur: their times add up)."""
        self._lap(phase)
        self.budget.phase(phase)

    def stop(self) -> dict[str, float]:
        """End the current phase; the seconds of every phase so far."""
        self._lap("")
        return {k: round(v, 3) for k, v in self.seconds.items()}

    def _lap(self, phase: str) -> None:
        now = self.budget.clock()
        if self.current:
            self.seconds[self.current] = self.seconds.get(self.current, 0.0) + now - self.since
        self.current, self.since = phase, now
