"""``symbiote finetune STUDENT.onnx --teacher ORIGINAL.onnx [--data FILE.npz] [--eval-data FILE.npz]
-o OUT.onnx``: win back the accuracy a reshaped model lost, by distillation from the original.

The student (a pruned, resized or quantized copy of the teacher: same input and output
names and shapes) is trained to match the teacher's outputs (:mod:`symbiote.search.finetune`;
label-free, or mixed with the label loss when the training file holds ``labels``).

Samples follow the search's rule (:func:`symbiote.search.samples.split`, the training
samples in the place of the calibration ones): ``--eval-data`` evaluates with all its
samples and ``--data`` trains with all of its own; ``--data`` alone is split in half (the
first half, rounded up, trains; the rest evaluates); without ``--data``, ``--samples``
seeded random inputs train. Fidelity and agreement of the student against the teacher
(and, with ``labels`` in the evaluation samples' file, both models' accuracy) are measured
in onnxruntime on the evaluation samples before and after (:func:`symbiote.search.accuracy.compare`),
the after figures on the written file. Progress goes to stderr (a bar on a terminal, else a
line every few seconds: :mod:`symbiote.commands.progress`; nothing with ``--quiet``).

Writes OUT.onnx and beside it ``OUT.finetune.json``, the object ``--json`` prints::

    {"student", "teacher", "output", "split", "training_samples", "evaluation_samples",
     "training": {"steps", "lr", "batch", "seed", "alpha", "temperature", "schedule", "samples",
                  "labelled", "loss_first", "loss_last"},
     "before": {"fidelity", "agreement", "accuracy", "accuracy_teacher", "outputs"}, "after": {...}}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from symbiote.commands.modelargs import add_input_arguments

#: seeded random training samples when no --data is given
RANDOM_SAMPLES = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("student", metavar="STUDENT", help="the model to train: an ONNX file (or zoo:NAME)")
    parser.add_argument("--teacher", required=True, metavar="ORIGINAL",
                        help="the model to match: an ONNX file (or zoo:NAME) with the same inputs and outputs")
    parser.add_argument("--data", metavar="FILE.npz", help="training inputs (arrays named like the model inputs; "
                        "'labels': integer classes, mixed into the loss); without --eval-data its first half "
                        "(rounded up) trains and the rest evaluates; default: seeded random inputs")
    parser.add_argument("--eval-data", metavar="FILE.npz", help="evaluation inputs, all of them, and optionally "
                        "'labels' (accuracy before and after); default: the second half of --data, else "
                        "64 seeded random inputs")
    parser.add_argument("--samples", type=int, default=RANDOM_SAMPLES,
                        help=f"seeded random training samples when no --data is given (default {RANDOM_SAMPLES})")
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="Adam's peak learning rate, warmed up then decayed by a cosine (default 1e-3; "
                             "about 1e-4 for a model already close to its teacher, e.g. a pruned transformer)")
    parser.add_argument("--batch", type=int, default=32, help="samples per step (default 32)")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="weight of the label loss when the training data has labels (default 0.5)")
    parser.add_argument("--temperature", type=float, default=2.0,
                        help="softmax temperature of the distillation loss on score outputs (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the minibatches and random inputs (default 0)")
    add_input_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="where to write the trained model")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def report_path(out: Path) -> Path:
    """``OUT.finetune.json`` beside ``OUT.onnx``."""
    stem = out.name[:-len(".onnx")] if out.name.endswith(".onnx") else out.name
    return out.with_name(f"{stem}.finetune.json")


def training_words(source: str) -> str:
    """The split's description (:func:`symbiote.search.samples.split`) with its calibration
    samples called what they are here: training samples."""
    return source.replace("calibration:", "training:").replace(" calibrate", " train")


def measured(rep: Any) -> dict[str, Any]:
    """The figures of an :class:`~symbiote.search.accuracy.AccuracyReport` this command reports."""
    return {"fidelity": rep.fidelity, "agreement": rep.agreement, "accuracy": rep.accuracy,
            "accuracy_teacher": rep.accuracy_original, "outputs": [dict(o) for o in rep.outputs]}


def _training_labels(data: str | None, eval_data: str | None, split: Any) -> list | None:
    """The labels of the training samples: ``--data``'s, cut like its samples."""
    from symbiote.search.samples import labels_of

    if data is None:
        return None
    total = len(split.calibration) + (0 if eval_data else len(split.evaluation))
    labels = labels_of(data, total)
    return None if labels is None else labels[:len(split.calibration)]


def _shown(quiet: bool, steps: int) -> tuple[Callable[[int, float], None] | None, Callable[[], None]]:
    """``(progress(step, loss), stop)`` on stderr: a bar on a terminal, else a line at most
    every :data:`~symbiote.commands.progress.LOG_EVERY_S` seconds and one at the end."""
    from symbiote.commands.progress import LOG_EVERY_S, LogLines

    if quiet:
        return None, lambda: None
    if not sys.stderr.isatty():
        log = LogLines(sys.stderr, time.monotonic, time.monotonic())
        last = [-float("inf")]

        def line(i: int, loss: float) -> None:
            if time.monotonic() - last[0] >= LOG_EVERY_S or i == steps:
                last[0] = time.monotonic()
                log.phase(f"finetune: step {i}/{steps}, loss {loss:.4g}")
        return line, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]finetune"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), console=Console(file=sys.stderr))
    bar.start()
    task = bar.add_task("finetune", total=steps, info="")
    return (lambda i, loss: bar.update(task, completed=i, info=f"loss {loss:.4g}")), bar.stop


def _print(report: dict[str, Any]) -> None:
    t, b, a = report["training"], report["before"], report["after"]
    print(f"split: {report['split']}")
    loss = "labels + distillation" if t["labelled"] else "distillation"
    print(f"training: {t['steps']} steps on {t['samples']} samples ({loss}), "
          f"loss {t['loss_first']:.4g} -> {t['loss_last']:.4g}")
    print(f"{'':<10} {'before':>8} {'after':>8}   (on {report['evaluation_samples']} evaluation samples)")
    for k in ("fidelity", "agreement", "accuracy"):
        if b[k] is not None:
            extra = f"   (teacher {b['accuracy_teacher']:.4f})" if k == "accuracy" else ""
            print(f"{k:<10} {b[k]:>8.4f} {a[k]:>8.4f}{extra}")
    print(f"wrote {report['output']}, {report['report']}")


def run(args: argparse.Namespace) -> int:
    from symbiote.commands.modelargs import load_model
    from symbiote.frontend import load
    from symbiote.frontend.save import save
    from symbiote.search import finetune as ft
    from symbiote.search.accuracy import compare, outputs_of
    from symbiote.search.samples import split as split_samples

    cfg = ft.FinetuneConfig(args.steps, args.lr, args.batch, args.seed, args.alpha, args.temperature)
    ft.check_config(cfg)  # before the (slow) loads
    if args.samples < 1:
        raise ft.FinetuneError(f"--samples must be at least 1, not {args.samples}")
    teacher = load_model(args, args.teacher)
    student = load_model(args, args.student)
    ft.check_pair(student, teacher)
    sp = split_samples(teacher, args.data, args.eval_data, calibration_samples=args.samples, seed=args.seed)
    train_labels = _training_labels(args.data, args.eval_data, sp)
    ref = outputs_of(teacher, sp.evaluation)
    before = compare(teacher, student, sp.evaluation, reference=ref, labels=sp.labels)
    progress, stop = _shown(args.quiet, cfg.steps)
    try:
        result = ft.finetune(student, teacher, sp.calibration, labels=train_labels, steps=cfg.steps, lr=cfg.lr,
                             batch=cfg.batch, seed=cfg.seed, alpha=cfg.alpha, temperature=cfg.temperature,
                             progress=progress)
    finally:
        stop()
    out = save(result.graph, args.output)
    after = compare(teacher, load(str(out)), sp.evaluation, reference=ref, labels=sp.labels)
    report = {"student": args.student, "teacher": args.teacher, "output": str(out), "report": str(report_path(out)),
              "split": training_words(sp.source), "training_samples": len(sp.calibration),
              "evaluation_samples": len(sp.evaluation),
              "training": result.as_dict(), "before": measured(before), "after": measured(after)}
    report_path(out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    if args.json:
        print(json.dumps(report, default=str))
    else:
        _print(report)
    return 0
