"""``symbiote search MODEL [MODEL ...] --backend NAME -o DIR``: co-design the model(s) and
the accelerator.

Writes ``result.json``, ``hardware.yaml``, one reshaped ``<model>.onnx`` per network,
``pareto.csv`` and ``report.md`` (with PNG plots) into ``-o DIR``; checkpoints the search
there at least every 30 s, and ``--resume`` continues a killed run to the same result.
``--budget-seconds`` is the wall time of the whole command (:mod:`symbiote.search.budget`);
progress goes to stderr (:mod:`symbiote.commands.progress`).

``--input-shape`` / ``--input-value`` fix inputs of the models, each model its own with a
``MODEL:`` prefix (:mod:`symbiote.commands.modelargs`). ``--phase prefill --seq S`` /
``--phase decode --context L`` with ``--batch B`` search a decoder's prefill or decode step
(:mod:`symbiote.search.phases`: objectives ``ttft_ms``, ``tpot_ms``, ``tokens_per_s``,
``energy_per_token_uj``), with the capacity check ``memory_use<=1`` added as a constraint
when the template declares ``dram_gib``. ``--phase mix --mix SPEC`` searches several phases
at once (e.g. ``'prefill:seq=512:w=1,decode:context=2048:w=4'``): each phase is one network,
the objective is their geometric mean weighted by the phases' weights, the hardware alone is
searched (``--model-knobs none``, the default there) and each phase's TTFT or TPOT is printed
with the weighted mean (``result.json``: ``"mix"``). Degenerate inputs (placeholder
weights, outputs about zero on the calibration inputs, model knobs without an accuracy
constraint: :mod:`symbiote.search.degenerate`) get a ``warning:`` line on stderr as they
are found, and go into ``report.md`` and ``result.json``.
"""

from __future__ import annotations

import argparse
import sys

from symbiote.backends import DEFAULT_BACKEND
from symbiote.commands.modelargs import add_input_arguments, add_phase_arguments, add_prepare_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", metavar="MODEL", nargs="+", help="ONNX files or zoo:NAME (several: one shared design)")
    parser.add_argument("--backend", "-b", default=DEFAULT_BACKEND, metavar="NAME",
                        help=f"accelerator template (default {DEFAULT_BACKEND})")
    parser.add_argument("--objective", action="append", metavar="OBJ",
                        help="edp (default), latency, energy, area or a product like latency^2*energy; "
                             "fidelity, agreement or accuracy on their own (maximized); repeat for a Pareto search, "
                             "e.g. --objective edp --objective fidelity for an accuracy-versus-EDP front")
    parser.add_argument("--constraint", action="append", metavar="C",
                        help="e.g. area_mm2<=4, latency_ms<=5, power_w<=2, params<=3e6, fidelity>=0.99, agreement>=0.99, "
                             "accuracy>=0.95, accuracy_drop<=0.01 (repeatable; fidelity = the least per-output cosine, "
                             "agreement = the least top-1 agreement of the score outputs, accuracy = top-1 against "
                             "the 'labels' of --eval-data; all measured on the evaluation samples)")
    parser.add_argument("--model-knobs", default=None, metavar="KNOBS",
                        help="what the search may change in the model: none, or knobs joined by '+' from "
                             f"{', '.join(_model_knob_names())} (default channels+precision; channels on ort-cpu, "
                             "whose kernels run in float32 whatever the bits)")
    add_prepare_argument(parser)
    add_input_arguments(parser, several=True)
    add_phase_arguments(parser)
    parser.add_argument("--bits", default="4,5,6,8,16", help="bit-widths a layer may take (default 4,5,6,8,16)")
    parser.add_argument("--budget-seconds", type=float,
                        help="wall time of the whole run, loading to report (default 60; what cannot fit is said)")
    parser.add_argument("--budget-evals", type=int, help="stop after this many cost evaluations (exactly reproducible)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KNOB=VALUE",
                        help="hold a hardware knob at a value (repeatable)")
    parser.add_argument("--free-knob", action="append", default=[], metavar="KNOB",
                        help="also search a technology knob held by default (dram_gbps, clock_ghz, datapath, node_nm, "
                             "dram)")
    parser.add_argument("--calibration", metavar="FILE.npz", help="inputs (arrays named like the model inputs): "
                        "without --eval-data, the first half (rounded up) calibrates the quantizers and the proxy, "
                        "the rest evaluates; default: seeded random inputs")
    parser.add_argument("--eval-data", metavar="FILE.npz", help="evaluation inputs, all of them, and optionally "
                        "'labels' (integer classes, one per sample: accuracy and accuracy_drop) (then --calibration "
                        "calibrates with all of its samples); default: the second half of --calibration, else "
                        "64 seeded random inputs from a stream apart from the calibration's")
    parser.add_argument("--logits", action="append", default=[], metavar="NAME",
                        help="an output holding scores (classes, a vocabulary) for the agreement measure "
                             "(repeatable; when given, only these count; default: every float output whose last "
                             "axis has >= 2 entries)")
    parser.add_argument("--metric", metavar="MODULE:FUNCTION",
                        help="your task metric: a function taking an ONNX model's path and returning {name: value}; "
                             "constraints name metric.NAME and metric.NAME_drop (original minus candidate), "
                             "e.g. --constraint 'metric.map_drop<=0.005'; also an entry point of group symbiote.metrics")
    parser.add_argument("--no-accuracy-floor", action="store_true",
                        help="with model knobs on and no accuracy constraint, do not apply the default floor "
                             "fidelity>=0.99 (and agreement>=0.99 with --logits)")
    parser.add_argument("--finetune-steps", type=int, default=None, metavar="N",
                        help="fine-tune each reshaped candidate N steps before its exact check (label-free distillation "
                             "from the original on the calibration samples, `symbiote finetune`'s loss); the channel "
                             "knob's accuracy proxy then learns on a probe how much fine-tuning wins back (default: "
                             f"{ORT_CPU_FINETUNE_STEPS} on ort-cpu when its channel knob is on, else 0 = off)")
    parser.add_argument("--finetune-lr", type=float, default=1e-3, metavar="X",
                        help="its learning rate (default 1e-3; about 1e-4 for models already close to the original)")
    parser.add_argument("--hysteresis-tolerance", type=float, default=None, metavar="T",
                        help="grow each candidate's channel widths to the fastest measured width at most T above "
                             "them (a share: 0.1 = 10%%; growth is exact) before its exact check; ort-cpu only "
                             "(default 0.1 there, 0 = off)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in -o DIR")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress (bars, or log lines off a terminal)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")


def _model_knobs(given: str | None, backend: str, phase=None) -> str:
    """``--model-knobs``, else the backend's default: ``channels`` on ort-cpu (its kernels run
    in float32, so a bit-width changes no cost there, only the fidelity and, through the
    quantize/dequantize nodes written, the measured time), ``channels+precision`` elsewhere;
    ``none`` for a phase mix (it searches the hardware: ``api.check_mix``)."""
    from symbiote.search.phases import PhaseMix

    if given is not None:
        return given
    if isinstance(phase, PhaseMix):
        return "none"
    from symbiote.backends.ortcpu.hysteresis import MEASURED_TEMPLATE

    return "channels" if backend == MEASURED_TEMPLATE else "channels+precision"


#: ``--finetune-steps`` on ort-cpu when not given: there the search changes channel widths
#: only (``_model_knobs``), and a narrower layer keeps its fidelity only after fine-tuning
#: (``symbiote search zoo:lstm --backend ort-cpu --constraint 'fidelity>=0.99'`` leaves the
#: model as given without it); elsewhere the precision knob wins without any
ORT_CPU_FINETUNE_STEPS = 300


def _finetune_steps(given: int | None, backend: str, model_knobs: str) -> int:
    """``--finetune-steps``, else the backend's default: :data:`ORT_CPU_FINETUNE_STEPS` on
    ort-cpu when the channel knob is on, 0 (off) otherwise."""
    if given is not None:
        return given
    from symbiote.backends.ortcpu.hysteresis import MEASURED_TEMPLATE

    on = backend == MEASURED_TEMPLATE and "channels" in model_knobs.split("+")
    return ORT_CPU_FINETUNE_STEPS if on else 0


def _model_knob_names() -> tuple[str, ...]:
    """The built-in model knobs and the registered ones (search/knobs/), with no heavy import."""
    from symbiote.search import knobs

    return knobs.names()


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from symbiote.backends import hwfile
    from symbiote.commands.modelargs import model_inputs, phase_of, print_warnings
    from symbiote.errors import SearchError
    from symbiote.search import api
    from symbiote.search.driver import SearchSettings
    from symbiote.search.finetune import Recovery
    from symbiote.search.objectives import parse_constraints, parse_objectives
    from symbiote.search.outputs import write_all
    from symbiote.search.prepare import parse_prepare
    from symbiote.search.report import mix_lines, write_report

    if args.budget_seconds is None and args.budget_evals is None:
        args.budget_seconds = 60.0
    if args.budget_evals is not None and args.budget_evals < 1:
        raise SearchError(f"--budget-evals must be >= 1, got {args.budget_evals}")
    if args.budget_seconds is not None and args.budget_seconds <= 0:
        raise SearchError(f"--budget-seconds must be > 0, got {args.budget_seconds}")
    try:
        bits = tuple(sorted({int(b) for b in args.bits.split(",") if b.strip()}))
    except ValueError:
        raise SearchError(f"--bits {args.bits!r}: expected numbers separated by commas, e.g. 4,8,16") from None
    if not bits or any(not 2 <= b <= 32 for b in bits):
        raise SearchError(f"--bits {args.bits!r}: bit-widths must be between 2 and 32")
    if (args.finetune_steps or 0) < 0 or not args.finetune_lr > 0:
        raise SearchError(f"--finetune-steps must be >= 0 and --finetune-lr > 0, got {args.finetune_steps} and "
                          f"{args.finetune_lr}")
    out = Path(args.output)
    if args.resume and not (out / "checkpoint.npz").exists():
        raise SearchError(f"--resume: no checkpoint in {out}")
    parse_prepare(args.prepare)  # syntax errors before the (slow) loads
    from symbiote.backends.ortcpu.hysteresis import search_tolerance

    search_tolerance(args.backend, args.hysteresis_tolerance)  # ort-cpu only, a share in [0, 1]
    inputs = model_inputs(args, args.models)
    phase, constraints = phase_of(args), parse_constraints(args.constraint)
    if phase is not None:  # weights + KV cache must fit the template's memory (search/phases.py)
        from symbiote.search.phases import with_capacity

        constraints = with_capacity(constraints, args.backend)
    model_knobs = _model_knobs(args.model_knobs, args.backend, phase)
    steps = _finetune_steps(args.finetune_steps, args.backend, model_knobs)
    cfg = api.RunConfig(
        models=tuple(args.models), backend=args.backend,
        objectives=parse_objectives(args.objective), constraints=constraints,
        model_knobs=model_knobs,
        settings=SearchSettings(seed=args.seed, budget_evals=args.budget_evals, budget_seconds=args.budget_seconds),
        hw_fixed=hwfile.parse_sets(args.sets), free_knobs=tuple(args.free_knob), bits_choices=bits,
        calibration=args.calibration, prepare=args.prepare, eval_data=args.eval_data,
        logits=tuple(args.logits), accuracy_floor=not args.no_accuracy_floor, metric=args.metric,
        input_shapes=tuple(m.shapes for m in inputs), input_values=tuple(m.values for m in inputs),
        recovery=Recovery(steps, args.finetune_lr, args.seed), phase=phase,
        hysteresis_tolerance=args.hysteresis_tolerance,
    )
    clock, shown = _progress(args.quiet, cfg.settings)
    try:
        outcome = api.run(cfg, out, resume=args.resume, progress=shown.update, warn=lambda w: print_warnings([w]),
                          budget=clock)
        shown.phase("outputs")
    finally:
        shown.stop()
    write_all(outcome, out)
    report = write_report(outcome, out)
    for n in outcome.networks:
        acc = n.accuracy or {}
        reg = f", regret {n.regret:+.1%}" if n.regret is not None else \
            (f", regret {n.regret_note}" if n.regret_note else "")
        print(f"{n.name}: EDP {n.baseline['edp']:.4g} -> {n.metrics['edp']:.4g} pJ*s "
              f"({n.baseline['edp'] / max(n.metrics['edp'], 1e-300):.2f}x), latency {n.metrics['latency_s'] * 1e3:.4g} ms, "
              f"area {n.metrics['area_mm2']:.3g} mm2, fidelity {_fmt(acc.get('fidelity'))}"
              f"{_ci(acc, 'fidelity')}, agreement {_fmt(acc.get('agreement'))}{_ci(acc, 'agreement')}{_task(acc)}{reg}")
    print(f"hardware: {', '.join(f'{k}={v}' for k, v in outcome.hardware.items())}")
    for line in mix_lines(outcome.mix):
        print(line)
    if outcome.hardware_only is not None:
        for n, m in zip(outcome.networks, outcome.hardware_only["metrics"]):
            print(f"{n.name} as given on the hardware-only search's best design: EDP {m['edp']:.4g} pJ*s "
                  f"(the answer is {m['edp'] / max(n.metrics['edp'], 1e-300):.2f}x lower)")
    for line in _hysteresis_lines(outcome.hysteresis):
        print(line)
    if outcome.floor:
        print(f"accuracy floor applied (no accuracy constraint given): {', '.join(str(c) for c in outcome.floor)}")
    if outcome.answer_note:
        print(f"note: {outcome.answer_note}")
    if not outcome.feasible:
        print(f"warning: no design met the constraints; the least-violating one is reported "
              f"(violation {outcome.violation:.3g}); see result.json 'feasible'")
    budget = f" of a {clock.seconds:g} s budget" if clock.seconds is not None else ""
    print(f"done in {clock.elapsed():.1f} s{budget} ({outcome.result.evals} evaluations); report: {report}")
    return 0


def _hysteresis_lines(h: dict | None) -> list[str]:
    """What latency hysteresis moved in the answer (``RunOutcome.hysteresis``), one line per network."""
    if not h:
        return []
    out = []
    for name, moves in h["networks"].items():
        moved = [m for m in moves if m["moved"]]
        what = ", ".join(f"{m['group']} {m['requested']}->{m['width']} ({m['requested_ms']:.4g}->{m['width_ms']:.4g} ms "
                         f"measured, {m['gain']:.1%} faster)" for m in moved) or "no group measured faster wider"
        whole = next((m["whole_model_ms"] for m in moves if m.get("whole_model_ms")), None)
        undone = [m for m in moves if m.get("kernel_width") is not None]
        if undone:
            what = (", ".join(f"{m['group']} {m['requested']}->{m['kernel_width']}" for m in undone)
                    + f" measured faster in its kernels but the whole model not ({whole[0]:.4g} -> {whole[1]:.4g} ms): "
                    "kept at the requested widths")
        elif whole:
            what += f"; whole model {whole[0]:.4g} -> {whole[1]:.4g} ms"
        out.append(f"{name}: hysteresis (tolerance {h['tolerance']:g}): {what}")
    return out


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _task(acc: dict) -> str:
    """``, accuracy A (original B, drop D)`` when the evaluation samples have labels, and the
    user's metric (``--metric``) values."""
    out = ""
    if acc.get("accuracy") is not None:
        out += (f", accuracy {acc['accuracy']:.4f}{_ci(acc, 'accuracy')} (original {acc['accuracy_original']:.4f}, "
                f"drop {acc['accuracy_drop']:+.4f})")
    for k, v in (acc.get("metric") or {}).items():
        out += f", {k} {v:.6g}"
    return out


def _ci(acc: dict, key: str) -> str:
    """`` [lo, hi]``: the bootstrap 95% interval of a measure, when there is one."""
    iv = (acc.get("interval") or {}).get(key)
    return f" [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else ""


def _progress(quiet: bool, settings):
    """The run's clock (from the process start, ``budget.command_start``: ``--budget-seconds``
    covers the whole run) and its progress display on stderr (:mod:`symbiote.commands.progress`:
    bars on a terminal, else log lines every few seconds; nothing with ``--quiet``)."""
    from symbiote.commands.progress import reporter
    from symbiote.search.budget import Budget, command_start

    from symbiote.cli import ENTERED

    start = command_start(entered=ENTERED)
    shown = reporter(quiet, settings, start)
    clock = Budget(settings.budget_seconds, start, say=lambda note: print(f"symbiote search: {note}", file=sys.stderr),
                   phase=shown.phase)
    return clock, shown
