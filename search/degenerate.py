"""Inputs that make a search's answer meaningless, found before it runs.

Each check is a pure function returning :class:`Degenerate` warnings (one line each, saying
what is wrong and what to do); ``symbiote search`` prints them on stderr and writes them
to ``report.md`` and ``result.json`` (``"warnings"``), ``symbiote inspect`` and ``symbiote
cost`` print :func:`constant_weights`.

* ``constant-weights`` (:func:`constant_weights`): every MAC layer's weight tensor (the one
  ``set-precision`` quantizes: Conv, ConvTranspose, Gemm, MatMul) holds a single value,
  as a ``ConstantOfShape`` fill or placeholder initializers give. Channel importance is
  then flat and quantizing such a tensor is exact, so the accuracy side of the search
  measures nothing real. Checked on the model as loaded, before ``--prepare``.
* ``zero-outputs`` (:func:`zero_outputs`): on the calibration inputs every float output
  stays within :data:`ZERO_OUTPUT_ATOL` of zero. The bound is absolute: a working network
  fed unit-scale inputs (the seeded N(0, 1) default, or real data) answers orders of
  magnitude above it, and below it the fidelity (a cosine of near-zero vectors) compares
  rounding noise. Integer and boolean outputs (indices, masks) are not looked at.
* ``accuracy-floor`` / ``no-accuracy-constraint`` (:func:`unconstrained_accuracy`): the
  search may change the model (``--model-knobs`` other than ``none``) but the user gave no
  accuracy bound (``fidelity>=``, ``agreement>=``): the default floor
  (:func:`symbiote.search.objectives.with_accuracy_floor`) was applied, or, with
  ``--no-accuracy-floor``, nothing bounds it and it trades accuracy for cost without limit.
* ``random-inputs`` (:func:`random_evaluation`): the search may change the model and its
  accuracy is measured on seeded random inputs (no ``--calibration`` or ``--eval-data``):
  fidelity and agreement on random inputs are a weak proxy for accuracy on real data (a
  trained network's outputs on noise are not its outputs on data); the warning says how to
  give real data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from symbiote.search.objectives import bounds_accuracy

#: every float output within this of zero on every calibration input counts as "about zero"
ZERO_OUTPUT_ATOL = 1e-6



@dataclass(frozen=True)
class Degenerate:
    """One warning: ``kind`` (see the module doc), the model it concerns (None: the whole
    run) and a one-line ``message`` that says what to do."""

    kind: str
    model: str | None
    message: str

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "message": self.message}


def _single_valued(a: np.ndarray) -> bool:
    flat = np.asarray(a).reshape(-1)
    return bool(flat.size) and bool(np.all(flat == flat[0]))


def constant_weights(graph: Any, model: str) -> tuple[Degenerate, ...]:
    """A warning when every MAC layer with a constant weight of more than one element has a
    single distinct value in it (and there is at least one such layer)."""
    from symbiote.passes.precision import constant_weight

    layers = [(n.name, w.const) for n in graph.nodes if (w := constant_weight(n)) is not None and w.const.size > 1]
    if not layers or not all(_single_valued(w) for _, w in layers):
        return ()
    name, w = layers[0]
    values = sorted({float(np.asarray(w).reshape(-1)[0]) for _, w in layers})
    shown = ", ".join(f"{v:g}" for v in values[:3]) + (", ..." if len(values) > 3 else "")
    return (Degenerate("constant-weights", model,
                       f"{model}: the weights of all {len(layers)} MAC layers are each one constant "
                       f"({shown}; e.g. {name!r}), like a ConstantOfShape fill or placeholder weights: "
                       "costs are right, but accuracy checks and channel importance mean nothing; "
                       "export the model with its trained weights"),)


def zero_outputs(outputs: Sequence[Sequence[Any]], model: str) -> tuple[Degenerate, ...]:
    """A warning when every float output, over every calibration input (``outputs[i]``: the
    model's outputs on input ``i``), is within :data:`ZERO_OUTPUT_ATOL` of zero."""
    floats = [np.asarray(y) for ys in outputs for y in ys
              if np.issubdtype(np.asarray(y).dtype, np.floating) and np.asarray(y).size]
    if not floats:
        return ()
    peak = max(float(np.max(np.abs(y))) if np.isfinite(y).all() else float("inf") for y in floats)
    if peak > ZERO_OUTPUT_ATOL:
        return ()
    return (Degenerate("zero-outputs", model,
                       f"{model}: every output is about zero on the {len(outputs)} calibration inputs "
                       f"(max |y| = {peak:.3g} <= {ZERO_OUTPUT_ATOL:g}), so the fidelity check compares "
                       "noise; check the weights and any --input-value, or give --calibration FILE.npz "
                       "with inputs the model answers"),)


def unconstrained_accuracy(model_knobs: str, constraints: Iterable[Any],
                           floor: Sequence[Any] = ()) -> tuple[Degenerate, ...]:
    """A warning when the search may change the model but the user bounded no accuracy
    metric: it says the default ``floor`` was applied, or, without one
    (``--no-accuracy-floor``), that nothing bounds the accuracy."""
    if model_knobs == "none" or any(bounds_accuracy(c) for c in constraints):
        return ()
    if floor:
        return (Degenerate("accuracy-floor", None,
                           f"--model-knobs {model_knobs} lets the search change the model and no accuracy "
                           f"constraint was given, so the default floor applies: "
                           f"{', '.join(str(c) for c in floor)} (measured on the evaluation samples; --logits NAME adds "
                           "agreement>=0.99 on those score outputs); give your own --constraint, or "
                           "--no-accuracy-floor"),)
    return (Degenerate("no-accuracy-constraint", None,
                       f"--model-knobs {model_knobs} lets the search change the model, but no constraint "
                       "bounds its accuracy, so it may trade any amount of it for cost; add "
                       "--constraint 'fidelity>=0.99' (or --model-knobs none)"),)


def random_evaluation(model_knobs: str, calibration: str | None, eval_data: str | None) -> tuple[Degenerate, ...]:
    """A warning when the model may change and its accuracy is measured on random inputs."""
    if model_knobs == "none" or calibration is not None or eval_data is not None:
        return ()
    return (Degenerate("random-inputs", None,
                       "accuracy is measured on seeded random inputs: fidelity and agreement on random inputs "
                       "are a weak proxy for accuracy on real data; give --eval-data FILE.npz (arrays named like "
                       "the model's inputs, one sample per entry of the first axis, and 'labels' for the task's "
                       "accuracy) and --calibration FILE.npz with real samples"),)
