"""One co-design run, end to end: models + backend -> search -> exact check -> regret.

:func:`run` loads the networks, builds the genome and the problem
(:mod:`symbiote.search.codesign`), runs the search (:mod:`symbiote.search.driver`),
checks the best candidates exactly (the reshaped model run in onnxruntime against the
original on the evaluation samples, :mod:`symbiote.search.samples`, measured per output,
:mod:`symbiote.search.measures`; the verdict comes from the cost metrics and the
*measured* fidelity and agreement, never from the proxy: :func:`decide`) and, with several networks,
searches each network alone to report its *regret*: how much worse (objective ratio
minus one) the shared design is for it than the design searched for it alone.

Before the search, :mod:`symbiote.search.degenerate` looks for inputs that would make its
answer meaningless (placeholder weights, outputs about zero on the calibration inputs,
model knobs without an accuracy constraint); each warning goes to the ``warn`` callback
as it is found and into :attr:`RunOutcome.warnings`.

Budget: ``--budget-evals`` with several networks gives half to the joint search, the other
half shared by the single-network searches. ``--budget-seconds`` covers the whole run
from the process start (:mod:`symbiote.search.budget`): the phases are measured, the
search gets what is left after estimates of the exact check and the outputs (split the
same way between the joint and the single-network searches), the exact checks stop when
their time is up, and what cannot fit is announced before it starts. Each network's
regret is read by :mod:`symbiote.search.regret` (unreliable when its search alone was
too short).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from symbiote.backends import DEFAULT_BACKEND
from symbiote.errors import PassError, SearchError
from symbiote.ir.digest import graph_digest
from symbiote.search import accuracy, budget as budgets, codesign, degenerate, hysteresis, measures, regret, samples, verdict
from symbiote.search import knobs, phases
from symbiote.search import metric as user_metric
from symbiote.search.prepare import DEFAULT_PREPARE, canonical, prepare_graph
from symbiote.search.driver import Progress, Search, SearchResult, SearchSettings
from symbiote.search.finetune import Recovery
from symbiote.search.objectives import Constraint, Objective, derive, search_constraints, with_accuracy_floor
from symbiote.search.problem import evaluator_for, log_mean

#: technology knobs held at their defaults unless freed (``--free-knob``): with an EDP
#: objective and no power constraint, a faster clock or wider DRAM is always "better",
#: which is a technology choice, not a design one; the datapath's number format decides
#: how the model is quantized (what the exact check measures), the user's choice
#: (``--set datapath=fp16``); likewise a smaller process node (``node_nm``) or a DRAM kind
#: with fewer pJ per bit (``dram``) always wins on energy and area: the user picks them
#: (``--set node_nm=7 --set dram=hbm3``), the search does not; the memory capacity
#: (``dram_gib``, roofline) has no cost term, only the LLM capacity check reads it; a
#: narrower accumulator (``acc_guard_bits``, spatial) is cheaper, and the exact check does
#: not simulate its overflow.
HELD_BY_DEFAULT = ("dram_gbps", "clock_ghz", "datapath", "node_nm", "dram", "dram_gib", "acc_guard_bits")
#: with model knobs on, the share of the search's budget that searches the hardware alone
#: (the models as given), so that the answer is never worse than a hardware-only search's
HARDWARE_ONLY_SHARE = 0.2
#: with an accuracy objective (``--objective fidelity``), how many Pareto designs (by their
#: first objective) are measured in onnxruntime like the answer
MEASURED_FRONT = 8


@dataclass(frozen=True)
class RunConfig:
    models: tuple[str, ...]
    backend: str = DEFAULT_BACKEND
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    model_knobs: str = "channels+precision"
    settings: SearchSettings = SearchSettings(budget_evals=2000)
    hw_fixed: Mapping[str, Any] = field(default_factory=dict)
    hw_grids: Mapping[str, Sequence[Any]] | None = None
    free_knobs: tuple[str, ...] = ()
    bits_choices: tuple[int, ...] = codesign.DEFAULT_BITS
    calibration: str | None = None
    calibration_samples: int = 4
    #: the evaluation samples (search/samples.py): ``--eval-data FILE.npz``, else the second
    #: half of ``--calibration``, else ``eval_samples`` seeded random inputs
    eval_data: str | None = None
    eval_samples: int = samples.EVAL_SAMPLES
    logits: tuple[str, ...] = ()         # outputs holding scores (--logits; default: inferred)
    accuracy_floor: bool = True          # fidelity>=0.99 (agreement too with logits) when model knobs are on and unbounded
    exact_candidates: int = 6
    #: per model (parallel to ``models``), the ``load`` arguments: input name -> shape, and
    #: input name -> value (the input becomes a constant); one mapping applies to every model
    input_shapes: Sequence[Mapping[str, Sequence[int]]] | Mapping[str, Sequence[int]] | None = None
    input_values: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None
    prepare: str = DEFAULT_PREPARE       # exact passes run first ("none": the model as given)
    metric: str | None = None            # the user's metric, MODULE:FUNCTION or an entry point (search/metric.py)
    #: fine-tuning of each reshaped candidate before its exact check (--finetune-steps;
    #: steps 0: none), label-free distillation from the original on the calibration samples
    recovery: Recovery = Recovery()
    #: an LLM phase every model is loaded in (search/phases.py: ``--phase``), or a ``PhaseMix``
    #: (one network per model and phase, weighted: :func:`network_jobs`); None: as given
    phase: Any = None
    #: latency hysteresis (``--hysteresis-tolerance``): before its exact check, each
    #: candidate's channel widths are grown to the fastest measured width within this share
    #: above them (:func:`grown`); None: the template's default
    #: (:func:`symbiote.backends.ortcpu.hysteresis.search_tolerance`: 0.1 on ort-cpu, else 0: off)
    hysteresis_tolerance: float | None = None


@dataclass(frozen=True)
class NetworkOutcome:
    name: str
    metrics: dict[str, float]            # of the chosen design
    baseline: dict[str, float]           # default hardware, model as prepared (= `symbiote cost MODEL`)
    model_knobs: dict[str, Any]
    accuracy: dict[str, Any] | None      # exact check (onnxruntime, evaluation samples) + the proxy's estimate
    regret: float | None = None          # objective(shared design) / objective(alone) - 1; None: unreliable
    alone_objective: float | None = None
    graph: Any = None                    # the reshaped ir.Graph
    regret_note: str | None = None       # why ``regret`` is None with several networks (regret.py)


@dataclass(frozen=True)
class RunOutcome:
    config: RunConfig
    codesign: codesign.CoDesign
    result: SearchResult
    best: np.ndarray
    hardware: dict[str, Any]
    objective: float                     # geometric mean over networks of objective 1 (weighted: a phase mix)
    networks: tuple[NetworkOutcome, ...]
    front: list[dict[str, Any]]          # Pareto front: hardware, objectives, metrics
    rejected: int = 0                    # candidates dropped by the exact check
    feasible: bool = True                # the chosen design meets every constraint
    violation: float = 0.0               # its total constraint violation (0 when feasible)
    warnings: tuple[degenerate.Degenerate, ...] = ()  # degenerate inputs (search/degenerate.py)
    constraints: tuple[Constraint, ...] = ()  # as applied: the user's, plus the accuracy floor when it applies
    floor: tuple[Constraint, ...] = ()        # the accuracy floor added (empty: none)
    timing: budgets.Timing | None = None  # measured phases, the time plan and its notes (budget.py)
    #: why the answer leaves the models as given although model knobs were on (None: it does not)
    answer_note: str | None = None
    #: the hardware-only search's best design for the models as given: ``{"hardware": ...,
    #: "metrics": [per network]}`` (None: no such search ran)
    hardware_only: dict[str, Any] | None = None
    #: latency hysteresis applied to the answer (:func:`grown`): ``{"tolerance": T,
    #: "networks": {name: [move, ...]}}``, each group's requested and chosen width and their
    #: measured kernel times (None: off)
    hysteresis: dict[str, Any] | None = None
    #: a phase mix (:func:`mix_summary`): each phase's network, weight and figure, and the
    #: weighted geometric mean of objective 1 (None: no mix)
    mix: dict[str, Any] | None = None


def _per_net(ev, idx: np.ndarray) -> list[dict[str, float]]:
    """Per network, the evaluator's metrics of one design; the proxy's fidelity (an
    estimated cosine) clipped to [-1, 1]."""
    m = ev.metrics(idx[None])
    n = next(iter(m.values())).shape[-1]
    return [{k: float(np.clip(v[0, i], -1.0, 1.0)) if k == "fidelity" else float(v[0, i]) for k, v in m.items()}
            for i in range(n)]


def _objective_of(objs: Sequence[Objective], m: Mapping[str, float]) -> float:
    return float(np.exp(float(objs[0].log_value({k: np.float64(v) for k, v in derive(m).items()}))))


def _of_model(option: Any, i: int) -> Mapping[str, Any] | None:
    """Model ``i``'s part of a per-model ``RunConfig`` option (one mapping: every model's)."""
    if not option:
        return None
    if isinstance(option, Mapping):
        return option
    return (option[i] or None) if i < len(option) else None


@dataclass(frozen=True)
class NetworkJob:
    """One network of a run: model ``model`` (its index in ``cfg.models``) loaded in ``phase``
    (None: as given), its ``weight`` in the geometric mean and the ``suffix`` of its name."""

    model: int
    phase: Any = None
    weight: float = 1.0
    suffix: str = ""


def network_jobs(cfg: RunConfig) -> tuple[NetworkJob, ...]:
    """The run's networks: one per model, or with a phase mix (``cfg.phase`` a
    :class:`symbiote.search.phases.PhaseMix`) one per model and phase, named
    ``<model>-<phase label>`` and weighted by the phase's weight."""
    from symbiote.search.phases import PhaseMix

    if isinstance(cfg.phase, PhaseMix):
        return tuple(NetworkJob(i, p, w, f"-{p.label}") for i in range(len(cfg.models))
                     for p, w in zip(cfg.phase.phases, cfg.phase.weights))
    return tuple(NetworkJob(i, cfg.phase) for i in range(len(cfg.models)))


def network_weights(cfg: RunConfig, count: int) -> tuple[float, ...] | None:
    """The weights of ``count`` networks in the geometric mean: a mix's phase weights, else
    None (equal weights)."""
    from symbiote.search.phases import PhaseMix

    if not isinstance(cfg.phase, PhaseMix):
        return None
    jobs = network_jobs(cfg)
    if len(jobs) != count:
        raise SearchError(f"a phase mix of {len(jobs)} networks given {count}")
    return tuple(j.weight for j in jobs)


def check_mix(cfg: RunConfig) -> None:
    """A phase mix searches the hardware for the models as given, on objectives every phase has."""
    from symbiote.search.phases import PhaseMix

    if not isinstance(cfg.phase, PhaseMix):
        return
    if cfg.model_knobs != "none":
        raise SearchError(f"--phase mix with --model-knobs {cfg.model_knobs!r}: each phase is a network with "
                          "model knobs of its own, which one model cannot take; a mix searches the hardware "
                          "(--model-knobs none)")
    one_phase = sorted({n for ob in cfg.objectives for n, _ in ob.terms if n in ("ttft_ms", "tpot_ms")}
                       | {c.metric for c in cfg.constraints if c.metric in ("ttft_ms", "tpot_ms")})
    if one_phase:
        raise SearchError(f"--phase mix: {', '.join(one_phase)} is one phase's figure; the mix's objectives and "
                          "constraints apply to every phase: latency (each phase's TTFT or TPOT), energy, edp, "
                          "tokens_per_s, energy_per_token_uj (each phase's figure is reported)")


def load_job(cfg: RunConfig, job: NetworkJob):
    """The network ``job`` as loaded (before ``--prepare``), with its model's input shapes and values."""
    from symbiote.frontend import load

    i = job.model
    if job.phase is not None:
        from symbiote.search.phases import load_phase

        return load_phase(cfg.models[i], job.phase, _of_model(cfg.input_shapes, i), _of_model(cfg.input_values, i))
    return load(cfg.models[i], input_shapes=_of_model(cfg.input_shapes, i),
                input_values=_of_model(cfg.input_values, i))


def load_model(cfg: RunConfig, i: int):
    """Network ``i`` of the run (:func:`network_jobs`; model ``i`` of ``cfg.models`` without a
    phase mix) as loaded (before ``--prepare``), with its input shapes and values."""
    return load_job(cfg, network_jobs(cfg)[i])


def for_model(cfg: RunConfig, i: int) -> RunConfig:
    """``cfg`` for network ``i`` by itself (its model's per-model options kept; of a phase
    mix, that phase alone)."""
    jobs = network_jobs(cfg)
    if i >= len(jobs):
        return cfg
    j = jobs[i]
    return replace(cfg, models=(cfg.models[j.model],), input_shapes=_only(cfg.input_shapes, j.model),
                   input_values=_only(cfg.input_values, j.model), phase=j.phase)


def _only(option: Any, i: int) -> Any:
    return option if not option or isinstance(option, Mapping) else (_of_model(option, i) or {},)


def prepare(cfg: RunConfig, model: str, graph: Any = None) -> codesign.Network:
    """Prepare one network (``graph``: the model as loaded; default: load ``model``, the
    first of ``cfg.models`` with that name) and fit its accuracy proxy on the calibration inputs."""
    if graph is None:
        graph = load_model(cfg, cfg.models.index(model))  # without a phase mix, network i is model i
    graph = prepare_graph(graph, cfg.prepare)
    # the calibration samples: the probes run on the first, activation ranges come from all
    # of them (as the exact check calibrates its quantizers); the evaluation ones stay unseen
    inputs = split_of(cfg, graph).calibration
    return codesign.prepare_network(model, graph=graph, calibrate=cfg.model_knobs != "none",
                                    calibration_inputs=inputs[:1], range_inputs=inputs,
                                    knobs=codesign.parse_model_knobs(cfg.model_knobs), recovery=cfg.recovery)


def prepare_job(cfg: RunConfig, job: NetworkJob, graph: Any) -> codesign.Network:
    """:func:`prepare` of one network of the run, named with its phase's suffix in a mix."""
    net = prepare(cfg, cfg.models[job.model], graph)
    return replace(net, name=net.name + job.suffix) if job.suffix else net


def build(cfg: RunConfig, networks: Sequence[codesign.Network] | None = None) -> codesign.CoDesign:
    from symbiote.backends.manager import get_template

    template = get_template(cfg.backend)
    check_mix(cfg)
    nets = list(networks) if networks is not None else \
        [prepare_job(cfg, j, load_job(cfg, j)) for j in network_jobs(cfg)]
    seen: dict[str, int] = {}
    for i, n in enumerate(nets):  # distinct names for the same model given twice
        if n.name in seen:
            nets[i] = replace(n, name=f"{n.name}_{i}")
        seen[n.name] = i
    unknown = [k for k in cfg.free_knobs if k not in HELD_BY_DEFAULT or k not in template.space]
    if unknown:
        legal = [k for k in HELD_BY_DEFAULT if k in template.space]
        raise SearchError(f"--free-knob {', '.join(unknown)}: not a held knob of backend {template.name!r}; "
                          f"legal: {', '.join(legal) or 'none'}")
    fixed = {k: template.space[k].default for k in HELD_BY_DEFAULT
             if k in template.space and k not in cfg.free_knobs}
    fixed.update(cfg.hw_fixed)
    return codesign.build(template, nets, model_knobs=cfg.model_knobs, objectives=cfg.objectives or
                          (Objective.parse("edp"),), constraints=search_constraints(constraints_of(cfg)[0]),
                          hw_grids=cfg.hw_grids,
                          hw_fixed=fixed, bits_choices=cfg.bits_choices, weights=network_weights(cfg, len(nets)))


def constraints_of(cfg: RunConfig) -> tuple[tuple[Constraint, ...], tuple[Constraint, ...]]:
    """The run's constraints (the user's plus the accuracy floor, when it applies) and the floor added."""
    return with_accuracy_floor(cfg.model_knobs, cfg.constraints, cfg.accuracy_floor, scores_named=bool(cfg.logits))


def split_of(cfg: RunConfig, graph) -> samples.Split:
    """The network's calibration and evaluation samples (search/samples.py)."""
    return samples.split(graph, cfg.calibration, cfg.eval_data, cfg.calibration_samples, cfg.eval_samples,
                         seed=cfg.settings.seed)


@dataclass
class Samples:
    """A network's samples and the original's outputs on the evaluation ones (computed once)."""

    split: samples.Split
    reference: list[list[np.ndarray]] | None = None
    metric_original: dict[str, float] | None = None   # the user's metric of the prepared original


def exact_check(cd: codesign.CoDesign, idx: np.ndarray, cfg: RunConfig,
                inputs_cache: dict) -> list[tuple[Any, accuracy.AccuracyReport]]:
    """Write each network's reshaped model with the passes (activation ranges from the
    calibration samples), fine-tune it when ``cfg.recovery`` is on and the model changed
    (distillation from the original on the calibration samples), and measure it in
    onnxruntime on the evaluation samples."""
    out = []
    for net, mk in zip(cd.networks, cd.model_knobs_of(idx)):
        widths = {k: v for k, v in mk["widths"].items() if v != net.groups.by_name(k).width}
        smp = inputs_cache[net.name]  # calibration_cache: every network's samples
        if smp.reference is None:
            smp.reference = accuracy.outputs_of(net.graph, smp.split.evaluation)
        graph = accuracy.apply_model_knobs(net.graph, widths, mk["bits"] if mk["bits"] is not None
                                           else at_datapath(cd, idx, net), inputs=smp.split.calibration,
                                           settings=cd.settings_of(mk),
                                           default_bits=codesign.datapath_bits(cd.template, cd.hardware(idx)) or 8)
        if cfg.recovery.on and graph_digest(graph) != graph_digest(net.graph):  # any knob changed the model
            graph = cfg.recovery.apply(graph, net.graph, smp.split.calibration)
        report = accuracy.compare(net.graph, graph, smp.split.evaluation, logits=cfg.logits,
                                  reference=smp.reference, bootstrap=measures.BOOTSTRAP,
                                  seed=cfg.settings.seed, labels=smp.split.labels)
        if cfg.metric:
            if smp.metric_original is None:
                smp.metric_original = user_metric.evaluate(cfg.metric, net.graph)
            report = replace(report, user=user_metric.measured(user_metric.evaluate(cfg.metric, graph),
                                                               smp.metric_original))
        out.append((graph, report))
    return out


def at_datapath(cd: codesign.CoDesign, idx: np.ndarray, net: codesign.Network) -> dict[str, int] | None:
    """Without a precision knob, the model runs at the datapath's precision: every layer
    ``set-precision`` quantizes at the datapath's bits when it is an integer format (the
    exact check then measures that quantized model); None (float) otherwise."""
    from symbiote.backends import datapath

    hw = cd.hardware(idx)
    if "datapath" not in hw or datapath.FLOAT[datapath.CHOICES.index(hw["datapath"])]:
        return None
    b = codesign.datapath_bits(cd.template, hw)
    from symbiote.passes.precision import quantizable

    return {n.name: int(b) for n in net.graph.nodes if quantizable(n)}


def check_logits(logits: Sequence[str], graphs: Sequence[Any]) -> None:
    """``--logits`` names must each be an output of some model."""
    outputs = {v.name for g in graphs for v in g.outputs}
    unknown = [n for n in logits if n not in outputs]
    if unknown:
        raise SearchError(f"--logits {', '.join(unknown)}: not an output of the model(s); outputs: "
                          f"{', '.join(sorted(outputs))}")


def check_metric(cfg: RunConfig, constraints: Sequence[Constraint], cd: codesign.CoDesign,
                 cache: Mapping[str, "Samples"]) -> None:
    """``metric.NAME`` constraints need ``--metric``, and its function must return NAME: it is
    run on each prepared original now (its values are the ``_drop`` references)."""
    from symbiote.search.objectives import is_user_metric

    named = sorted({c.metric for c in constraints if is_user_metric(c.metric)})
    if named and not cfg.metric:
        raise SearchError(f"{', '.join(named)}: a metric.NAME constraint needs --metric MODULE:FUNCTION")
    if not cfg.metric:
        return
    for net in cd.networks:
        smp = cache[net.name]
        smp.metric_original = user_metric.evaluate(cfg.metric, net.graph)
        have = set(user_metric.measured(smp.metric_original, smp.metric_original))
        missing = [n for n in named if n not in have]
        if missing:
            raise SearchError(f"--metric {cfg.metric} returned {', '.join(sorted(smp.metric_original))} for "
                              f"{net.name}; the constraints name {', '.join(missing)}")


def check_labels(constraints: Sequence[Constraint], cache: Mapping[str, "Samples"]) -> None:
    """A bound on ``accuracy`` or ``accuracy_drop`` needs labels for every network's evaluation samples."""
    from symbiote.search.objectives import LABEL_METRICS

    named = sorted({c.metric for c in constraints if c.metric in LABEL_METRICS})
    missing = [name for name, smp in cache.items() if smp.split.labels is None]
    if named and missing:
        raise SearchError(f"{' and '.join(named)} need labels: give --eval-data FILE.npz holding a 'labels' array "
                          f"(integer classes, one per sample) for {', '.join(missing)}")


def run(cfg: RunConfig, out_dir: str | Path | None = None, resume: bool = False,
        progress: Callable[[str, Progress], None] | None = None,
        networks: Sequence[codesign.Network] | None = None,
        warn: Callable[[degenerate.Degenerate], None] | None = None,
        budget: budgets.Budget | None = None) -> RunOutcome:
    """``budget``: the run's clock (default: ``cfg.settings.budget_seconds`` from now)."""
    watch = budgets.Stopwatch(budget or budgets.Budget(cfg.settings.budget_seconds))
    found: list[degenerate.Degenerate] = []

    def emit(ws: Sequence[degenerate.Degenerate]) -> None:
        for w in ws:
            found.append(w)
            if warn is not None:
                warn(w)

    constraints, floor = constraints_of(cfg)
    emit(degenerate.unconstrained_accuracy(cfg.model_knobs, cfg.constraints, floor))
    emit(degenerate.random_evaluation(cfg.model_knobs, cfg.calibration, cfg.eval_data))
    check_mix(cfg)
    if networks is None:
        networks = []
        for job in network_jobs(cfg):
            watch.enter("load")
            graph = load_job(cfg, job)
            emit(degenerate.constant_weights(graph, cfg.models[job.model]))
            _calibration_phase(cfg, job.model, graph, watch)
            networks.append(prepare_job(cfg, job, graph))
    else:
        for net in networks:
            emit(degenerate.constant_weights(net.graph, net.source or net.name))
    watch.enter("build")
    cd = build(cfg, networks)
    check_logits(cfg.logits, [net.graph for net in cd.networks])
    cache = calibration_cache(cd, cfg)
    check_labels(constraints, cache)
    check_metric(cfg, constraints, cd, cache)
    for net, src in zip(cd.networks, _sources(cfg, cd)):
        emit(degenerate.zero_outputs(accuracy.outputs_of(net.graph, cache[net.name].split.calibration), src))
    watch.enter("compile")
    ev = evaluator_for(cd.problem)
    base = [phases.phase_figures(net.graph, m)  # compiles the evaluator (once: one batch size)
            for net, m in zip(cd.networks, _per_net(ev, cd.baseline()))]
    settings = cfg.settings
    n = len(cd.networks)
    watch.enter("search")
    plan = _plan(cfg, cd, watch)
    joint_settings = _share(settings, 0.5 if n > 1 else 1.0)
    if plan is not None:
        joint_settings = replace(joint_settings, budget_seconds=plan.search_s, gradient_in_budget=plan.gradient)
    hw_only = hardware_only(cfg, cd)
    if hw_only is not None:  # a share of the search's budget goes to the hardware alone
        hw_settings = replace(_share(joint_settings, HARDWARE_ONLY_SHARE), use_gradient=False)
        joint_settings = _share(joint_settings, 1.0 - HARDWARE_ONLY_SHARE)
    ckdir = Path(out_dir) if out_dir is not None else None
    ck = ckdir / "checkpoint.npz" if ckdir else None
    res = Search(cd.problem, joint_settings, context=_context(cfg, cd)).run(ck, resume=resume and ck is not None and ck.exists(),
                                                  progress=(lambda p: progress("joint", p)) if progress else None)
    as_given = None  # the best hardware found for the models as given, in the joint genome
    if hw_only is not None:
        cd_hw, sub = hw_only
        ck_h = ckdir / "checkpoint-hardware.npz" if ckdir else None
        r_h = Search(cd_hw.problem, hw_settings, evaluator=sub, context=_context(cfg, cd_hw)).run(
            ck_h, resume=resume and ck_h is not None and ck_h.exists(),
            progress=(lambda p: progress("hardware-only", p)) if progress else None)
        as_given = at_datapath_bits(cd, sub.embed(r_h.best)[0])
    watch.enter("exact")
    # exact check of the best candidates, in the search's order: a candidate must meet the
    # cost constraints (area, latency, power...) and, measured in onnxruntime on the
    # evaluation samples, the accuracy ones; the proxy's estimate decides nothing here.
    # The last candidate is the hardware-only search's best (the models as given); it is
    # checked whenever it could be the answer (no feasible candidate yet, or a better
    # objective than the best feasible one), and the answer is the feasible candidate with
    # the best objective, so it is never worse than leaving the models alone
    k = min(cfg.exact_candidates, budgets.TUNED_CANDIDATES) if cfg.recovery.on else cfg.exact_candidates
    order = _candidates(cd, res, k, as_given, ev)
    tolerance = hysteresis.tolerance(cfg.hysteresis_tolerance, cd)
    moves: dict[bytes, list] = {}
    if tolerance > 0:  # each candidate's widths grown to the fastest measured within the tolerance
        order = hysteresis.unique([hysteresis.record(hysteresis.grown(cd, idx, tolerance), moves) for idx in order])
    tried: list[tuple[np.ndarray, list, tuple[float, float]]] = []
    rejected = 0

    def check(idx: np.ndarray) -> tuple[float, float]:
        cv = verdict.cost_violation(_per_net(ev, idx), constraints)
        try:
            checks_i = exact_check(cd, idx, cfg, cache)
        except PassError as e:  # a knob setting the reshaped model cannot take: not a design
            watch.say(f"a candidate could not be written ({e}); it is skipped")
            return (np.inf, np.inf)
        tried.append((idx, checks_i, (cv, verdict.measured_of(checks_i, constraints))))
        return tried[-1][2]

    def cost_ok(idx: np.ndarray) -> bool:
        return verdict.cost_violation(_per_net(ev, idx), constraints) <= 0

    for idx in budgets.in_time(order, watch, plan):
        if not cost_ok(idx):
            rejected += 1
            continue
        if max(check(idx)) <= 0:
            break
        rejected += 1
    best_ok = min((_rank(cd, ev, t) for t in tried if max(t[2]) <= 0), default=np.inf)
    last = order[-1]
    if not any(np.array_equal(t[0], last) for t in tried) and cost_ok(last) and _geo(cd, ev, last) < best_ok:
        check(last)  # the models as given could still be the answer: measure them
    if not any(max(t[2]) <= 0 for t in tried) and not any(np.array_equal(t[0], res.best) for t in tried):
        # nothing met every constraint: the search's best is measured too, and the least
        # violating of those measured is reported, marked infeasible
        check(res.best)
    k, feasible = verdict.decide([t[2] for t in tried], [_rank(cd, ev, t) for t in tried])
    chosen, checks = tried[k][0], tried[k][1]
    viol = 0.0 if feasible else float(sum(tried[k][2]))
    note = _answer_note(cd, tried, k, feasible, as_given)
    per = [phases.phase_figures(net.graph, m) for net, m in zip(cd.networks, _per_net(ev, chosen))]
    objs = cd.problem.objectives
    regrets = [regret.Regret(None, None)] * n
    if n > 1 and plan is not None and not plan.alone_fits(watch):
        regrets = [regret.not_measured(net.name) for net in cd.networks]
    elif n > 1:
        watch.enter("regret")
        regrets = []
        for i, net in enumerate(cd.networks):
            cfg_i = for_model(cfg, i)
            cd_i = build(cfg_i, [net])
            s_i = _share(settings, 0.5 / n)
            if plan is not None:
                s_i = replace(s_i, budget_seconds=plan.alone_seconds(watch.budget.left(), n - i),
                              gradient_in_budget=plan.alone_gradient)
            ck_i = ckdir / f"checkpoint-{net.name}.npz" if ckdir else None
            # it starts from the shared design, so what it reports is never worse for this network
            r_i = Search(cd_i.problem, s_i, evaluator=regret.alone_evaluator(cd, cd_i, i),
                         context=_context(cfg_i, cd_i), seeds=chosen[cd.space.positions_of(cd_i.space)]).run(
                ck_i, resume=resume and ck_i is not None and ck_i.exists(),
                progress=(lambda p, nm=net.name: progress(nm, p)) if progress else None)
            regrets.append(regret.assess(net.name, _objective_of(objs, per[i]), float(np.exp(r_i.best_obj[0])),
                                         r_i.feasible, r_i.evals))
    nets = tuple(NetworkOutcome(net.name, per[i], base[i], cd.model_knobs_of(chosen)[i],
                                verdict.accuracy_dict(checks[i][1], per[i], cache[net.name].split.source),
                                regrets[i].value, regrets[i].alone_objective, checks[i][0], regrets[i].note)
                 for i, net in enumerate(cd.networks))
    front = []
    measure = any(ob.accuracy for ob in objs)
    order_f = np.argsort(res.front.obj[:, 0]) if len(res.front.obj) else []
    for rank, j in enumerate(order_f):
        g, o = res.front.genomes[j], res.front.obj[j]
        entry = {"hardware": cd.hardware(g),
                 "objectives": {(f"{ob.text} (proxy)" if ob.accuracy else ob.text or str(ob.terms)):
                                float(1.0 - np.exp(v)) if ob.accuracy else float(np.exp(v)) for ob, v in zip(objs, o)},
                 "metrics": _per_net(ev, g)}
        if measure and rank < MEASURED_FRONT and (plan is None or watch.budget.left() > plan.outputs_s + plan.check_s):
            # an accuracy-versus-cost front: each design's accuracy measured, as the answer's is
            entry["accuracy"] = [verdict.accuracy_dict(r, m, cache[net.name].split.source) for net, (_, r), m
                                 in zip(cd.networks, exact_check(cd, g, cfg, cache), entry["metrics"])]
        front.append(entry)
    geo = float(np.exp(log_mean(np.array([np.log(_objective_of(objs, m)) for m in per]), cd.problem.weights)))
    return RunOutcome(cfg, cd, res, chosen, cd.hardware(chosen), geo, nets, front, rejected,
                      feasible=feasible, violation=viol, warnings=tuple(found), timing=watch.timing(plan),
                      constraints=constraints, floor=floor, answer_note=note,
                      hardware_only=None if as_given is None else {"hardware": cd.hardware(as_given),
                                                                   "metrics": _per_net(ev, as_given)},
                      hysteresis=None if tolerance <= 0 else hysteresis.as_dict(cd, tolerance, moves.get(chosen.tobytes())),
                      mix=mix_summary(cfg, cd, per, geo))


def mix_summary(cfg: RunConfig, cd: codesign.CoDesign, per: Sequence[Mapping[str, float]],
                objective: float) -> dict[str, Any] | None:
    """A phase mix's report: per phase (one network each) its weight, its figure (``ttft_ms``
    of a prefill, ``tpot_ms`` of a decode step) and objective 1 on the chosen design, and the
    ``objective``: their geometric mean weighted by the phases' weights; None without a mix."""
    from symbiote.search.phases import PhaseMix

    if not isinstance(cfg.phase, PhaseMix):
        return None
    objs = cd.problem.objectives
    rows = []
    for job, net, m in zip(network_jobs(cfg), cd.networks, per, strict=True):
        figure = "ttft" if job.phase.kind == "prefill" else "tpot"
        rows.append({"network": net.name, "phase": job.phase.describe(), "weight": job.weight,
                     f"{figure}_ms": m[f"{figure}_s"] * 1e3, "objective": _objective_of(objs, m)})
    return {"objective_name": objs[0].text, "objective": objective, "phases": rows}


# ---- the time budget (search/budget.py) ----------------------------------------------
def _calibration_phase(cfg: RunConfig, i: int, graph: Any, watch: budgets.Stopwatch) -> None:
    """Begin model ``i``'s calibration, announcing it first when it cannot fit in the budget."""
    watch.enter("calibration")
    clock = watch.budget
    if clock.seconds is None or cfg.model_knobs == "none":
        return
    size = budgets.ModelSize.of(graph)
    after = (budgets.compile_s(len(cfg.models)) + budgets.exact_check_s(size, _eval_count(cfg))
             + budgets.reference_s(size, _eval_count(cfg))
             + budgets.REPORT_S + budgets.outputs_s(size) + budgets.MIN_SEARCH_S)  # this model's, at least
    note = budgets.calibration_note(codesign.network_name(cfg.models[i]),
                                    budgets.calibration_s(size, cfg.calibration_samples), clock.left(), after,
                                    clock.seconds)
    if note:
        watch.say(note)


def _eval_count(cfg: RunConfig) -> int:
    """The evaluation samples a check runs on, as far as known before they are loaded."""
    return cfg.eval_samples if cfg.calibration is None and cfg.eval_data is None else cfg.eval_samples // 2


def _plan(cfg: RunConfig, cd: codesign.CoDesign, watch: budgets.Stopwatch) -> budgets.Plan | None:
    """The time plan of what is left of the run (None without a time budget); its notes are said."""
    clock = watch.budget
    if clock.seconds is None:
        return None
    sizes = [budgets.ModelSize.of(net.graph) for net in cd.networks]
    calibrated = "calibration" in watch.seconds and cfg.model_knobs != "none"
    # fine-tuning (--finetune-steps) was timed once on the channel knob's recovery probe: each
    # candidate's costs about as much, and it is not part of the calibration the speed compares
    tuning_s = sum(float(net.fitted["channels"].tables.get("recovery_s", 0.0)) for net in cd.networks
                   if "channels" in net.fitted)
    slower = budgets.speed(watch.seconds.get("calibration", 0.0) - tuning_s,
                           sum(budgets.calibration_s(s, cfg.calibration_samples) for s in sizes) if calibrated else 0.0)
    est = budgets.estimates(sizes, watch.seconds.get("compile", 0.0), slower, _eval_count(cfg))
    est = replace(est, exact_s=est.exact_s + tuning_s)
    plan = budgets.plan(clock.seconds, clock.elapsed(), est, len(cd.networks), cfg.settings.use_gradient,
                        extra_checks=(0.5 if cd.model_knobs != "none" else 0.0)
                        + (budgets.TUNED_EXTRA_CHECKS if tuning_s > 0 else 0.0),
                        candidates=cfg.exact_candidates if cd.model_knobs != "none" else 0)
    for note in plan.notes:
        watch.say(note)
    return plan


def calibration_cache(cd: codesign.CoDesign, cfg: RunConfig) -> dict[str, Samples]:
    """Network name -> its calibration and evaluation samples (search/samples.py)."""
    return {net.name: Samples(split_of(cfg, net.graph)) for net in cd.networks}


def _sources(cfg: RunConfig, cd: codesign.CoDesign) -> list[str]:
    """How each network was given: the model argument, else its source or name."""
    if len(cfg.models) == len(cd.networks):
        return list(cfg.models)
    return [n.source or n.name for n in cd.networks]


def _context(cfg: RunConfig, cd: codesign.CoDesign) -> dict[str, Any]:
    """What, beyond the problem's genes and settings, a resumed run must share with the first."""
    return {"backend": cfg.backend, "hw_fixed": dict(cd.hw_fixed), "calibration": cfg.calibration,
            "eval_data": cfg.eval_data, "metric": cfg.metric,
            "prepare": canonical(cfg.prepare), "inputs": input_options(cfg),
            "models": {n.name: graph_digest(n.graph)[:16] for n in cd.networks}}  # weights included


def input_options(cfg: RunConfig) -> list[dict[str, Any]]:
    """Per model, the input shapes and values it is loaded with (JSON-able)."""
    return [{"model": m,
             "input_shapes": {k: [int(d) for d in v] for k, v in (_of_model(cfg.input_shapes, i) or {}).items()},
             "input_values": {k: np.asarray(v).tolist() for k, v in (_of_model(cfg.input_values, i) or {}).items()}}
            for i, m in enumerate(cfg.models)]


def _share(s: SearchSettings, frac: float) -> SearchSettings:
    if frac >= 1.0:
        return s
    return replace(s, budget_evals=None if s.budget_evals is None else max(1, int(s.budget_evals * frac)),
                   budget_seconds=None if s.budget_seconds is None else s.budget_seconds * frac)


def _candidates(cd: codesign.CoDesign, res: SearchResult, k: int,
                as_given: np.ndarray | None = None, ev=None) -> list[np.ndarray]:
    """The best design and the next ones with distinct model knobs, then a repair ladder
    from the best design towards the model as given, each knob's own repair in the knobs'
    order (shrunk widths restored, then the other knobs, then the lowest bit-widths raised
    one step at a time: search/knobs/), each step on the best hardware the search met for
    its model knobs (:func:`_rehomed`, with the evaluator ``ev``); last, the best hardware
    with the models as given (``as_given``: the hardware-only search's best; by default the
    search's best hardware)."""
    out = [res.best]
    pool = [res.front.genomes[np.argsort(res.front.obj[:, 0])]]
    if res.archive is not None:
        pool.append(res.archive.genomes[res.archive.viol <= 0])
    model = np.array([g.kind != "hw" for g in cd.space.genes], bool)
    seen = {res.best[model].tobytes()}
    for g in np.concatenate(pool):
        if g[model].tobytes() not in seen and len(out) < k:
            out.append(g)
            seen.add(g[model].tobytes())
    default = cd.space.default()
    x = res.best.copy()
    ladder = []
    for k in cd.spec.knobs:  # each knob's own repair, in the knobs' order, from where the last left off
        knob = knobs.get(k)
        mine = np.array([g.kind == knob.kind for g in cd.space.genes], bool)
        for step in knob.repair(x, default, mine, cd.space):
            ladder.append(step)
            x = step
    hw_pool = np.unique(np.concatenate([*pool, res.best[None]])[:, ~model], axis=0)
    for g in ladder:
        if g[model].tobytes() not in seen:
            out.append(g if ev is None else _rehomed(ev, g, model, hw_pool))
            seen.add(g[model].tobytes())
    if as_given is None:
        as_given = res.best.copy()
        as_given[model] = default[model]
    out = [g for g in out if not np.array_equal(g, as_given)]
    return [*out, np.asarray(as_given, np.int32)]  # last resort: the best hardware, models as given


def _rehomed(ev, g: np.ndarray, model: np.ndarray, hw_pool: np.ndarray) -> np.ndarray:
    """Design ``g``'s model knobs on the best of the hardware designs ``hw_pool`` (rows of
    hardware genes) for them, by the evaluator's objective among designs that meet the
    constraints (``g`` itself when none does): a repair step keeps the hardware of the design
    it repairs, tuned for other model knobs."""
    trial = np.repeat(np.asarray(g, np.int32)[None], len(hw_pool) + 1, 0)
    trial[1:, ~model] = hw_pool
    obj, viol = ev(trial)
    ok = np.flatnonzero((viol <= 0) & np.isfinite(obj[:, 0]))
    return trial[ok[np.argmin(obj[ok, 0])]] if len(ok) else np.asarray(g, np.int32)


def hardware_only(cfg: RunConfig, cd: codesign.CoDesign):
    """With model knobs on, the hardware-only problem (the models as given) and an evaluator
    that scores it through the joint problem's (no compile of its own): ``(codesign,
    evaluator)``, or None (no model knob, or no free hardware knob)."""
    from symbiote.search.problem import NetworkEvaluator

    if cd.model_knobs == "none" or not len(cd.space.indices("hw")):
        return None
    cd_hw = build(replace(cfg, model_knobs="none"), cd.networks)
    sub = NetworkEvaluator(evaluator_for(cd.problem), None, cd.space.positions_of(cd_hw.space), cd.space.default())
    return cd_hw, sub


def _rank(cd: codesign.CoDesign, ev, t: tuple[np.ndarray, list, tuple[float, float]]) -> float:
    """What orders the feasible checked candidates: the first cost objective (geomean over
    networks), or, when every objective is an accuracy one, the measured fidelity (higher is
    better): the proxy's estimate never decides."""
    if any(not ob.accuracy for ob in cd.problem.objectives):
        return _geo(cd, ev, t[0])
    return -min(r.fidelity for _, r in t[1])


def at_datapath_bits(cd: codesign.CoDesign, idx: np.ndarray) -> np.ndarray:
    """A design with the models as given, its bit-width genes at the datapath's width of that
    design (it matters when the datapath is searched, ``--free-knob datapath``): the largest
    legal bit-width not above it."""
    hw = cd.hardware(idx)
    b = codesign.datapath_bits(cd.template, hw)
    out = np.asarray(idx, np.int32).copy()
    if b is None:
        return out
    for i, g in enumerate(cd.space.genes):
        if g.kind == "bits":
            fits = [j for j, v in enumerate(g.values) if v <= b]
            out[i] = fits[-1] if fits else 0
    return out


def _geo(cd: codesign.CoDesign, ev, idx: np.ndarray) -> float:
    """The geometric mean over networks (weighted by the problem's weights: a phase mix) of a
    design's first cost objective (the first objective when all are accuracy ones)."""
    objs = [ob for ob in cd.problem.objectives if not ob.accuracy] or list(cd.problem.objectives)
    return float(np.exp(log_mean(np.array([np.log(_objective_of(objs, m)) for m in _per_net(ev, idx)]),
                                 cd.problem.weights)))


def _answer_note(cd: codesign.CoDesign, tried: Sequence[tuple[np.ndarray, list, tuple[float, float]]], k: int,
                 feasible: bool, as_given: np.ndarray | None) -> str | None:
    """Why the answer leaves the models as given although model knobs were searched."""
    if cd.model_knobs == "none" or not feasible:
        return None
    model = np.array([g.kind != "hw" for g in cd.space.genes], bool)
    default = cd.space.default()[model]
    if not np.array_equal(tried[k][0][model], default):
        return None
    changed = [t for t in tried if not np.array_equal(t[0][model], default)]
    ok = [t for t in changed if max(t[2]) <= 0]
    what = "the hardware-only search's best design" if as_given is not None and np.array_equal(tried[k][0], as_given) \
        else "the joint search's best hardware"
    given = "the models as given (run at the datapath's precision)"
    if not ok:
        return (f"no model change that was checked met the constraints ({len(changed)} measured in onnxruntime): "
                f"the answer is {what}, with {given}")
    return (f"{given} on {what} beat every checked design that changes them: the answer leaves "
            "the models as given")
