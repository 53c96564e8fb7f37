"""The options of every command that loads a model, spelled the same everywhere.

``--input-shape [MODEL:]NAME=DIMS`` (inspect, transform, cost, search) fixes the shape of
an input with dynamic dims, e.g. ``pixel_values=1x3x224x224``.

``--input-value [MODEL:]NAME=VALUE`` (the same commands) fixes an input to a value, a
number or a comma list (``sr=16000``, ``scales=1,1,2,2``, ``flag=true``): the input
becomes a constant of its declared dtype (``symbiote.frontend.load(..., input_values=)``),
so what depends on it folds and an ``If`` it decides keeps only the branch taken.

``--prepare PIPELINE`` (cost, search): exact passes run on the model first, so it is
costed as deployed (default :data:`symbiote.search.prepare.DEFAULT_PREPARE`).

``--phase prefill --seq S`` / ``--phase decode --context L`` with ``--batch B`` (inspect,
cost, search): a
decoder-only language model costed as its prefill of ``S`` tokens or as one decode step
attending to ``L`` cached tokens (:mod:`symbiote.search.phases`); ``--input-shape`` and
``--input-value`` still apply to its other inputs. ``--phase mix --mix SPEC`` (search only):
several phases in one search, e.g. ``'prefill:seq=512:w=1,decode:context=2048:w=4'``, each
a network of the multi-network search weighted in its geometric mean
(:class:`symbiote.search.phases.PhaseMix`).

Which model a spec is for, with several models (``symbiote search a.onnx b.onnx``): a
plain ``NAME=...`` applies to every model that has an input ``NAME`` (an error when none
has); ``MODEL:NAME=...`` to the models ``MODEL`` names: its position among the MODEL
arguments counted from 0, the argument as written (``zoo:resnet18``, ``models/a.onnx``),
its file name (``a.onnx``) or its name without extension (``a``, ``resnet18``). For one
input of one model, a prefixed spec wins over a plain one; two of the same kind are an
error. An input whose own name holds ``:`` (TensorFlow's ``x:0``) is matched whole first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from symbiote.errors import ShapeError
from symbiote.search.prepare import DEFAULT_PREPARE

SHAPE_FLAG = "--input-shape"
VALUE_FLAG = "--input-value"


@dataclass(frozen=True)
class InputSpec:
    """One ``--input-shape`` or ``--input-value`` as given: ``[MODEL:]NAME`` and its parsed value."""

    flag: str            # SHAPE_FLAG or VALUE_FLAG
    text: str            # as typed, for messages
    target: str          # "[MODEL:]NAME"
    value: Any           # tuple[int, ...] (a shape) or np.ndarray (a value)


@dataclass(frozen=True)
class ModelInputs:
    """What the specs fix for one model: ``load(src, input_shapes=shapes, input_values=values)``."""

    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    values: Mapping[str, np.ndarray] = field(default_factory=dict)


# ---------------------------------------------------------------- argparse
def add_input_arguments(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """``--input-shape`` and ``--input-value`` (repeatable); ``several``: the command takes several models."""
    scope = " (MODEL: for one model only: its index from 0, path, file name or name)" if several else ""
    parser.add_argument(SHAPE_FLAG, metavar="[MODEL:]NAME=DIMS", action="append", default=[], dest="input_shape",
                        help="shape of a model input with dynamic dims, e.g. pixel_values=1x3x224x224 "
                             f"(repeatable){scope}")
    parser.add_argument(VALUE_FLAG, metavar="[MODEL:]NAME=VALUE", action="append", default=[], dest="input_value",
                        help="fix a model input to a value, which makes it a constant: a number or a comma list, "
                             f"e.g. sr=16000 for a sample rate that picks an If branch (repeatable){scope}")


def add_prepare_argument(parser: argparse.ArgumentParser) -> None:
    """``--prepare PIPELINE`` with the search's default."""
    parser.add_argument("--prepare", default=DEFAULT_PREPARE, metavar="PIPELINE",
                        help="exact passes run on each model first, so it is costed as deployed "
                             f"(default {DEFAULT_PREPARE!r}; 'none': the model as given)")


def add_phase_arguments(parser: argparse.ArgumentParser) -> None:
    """``--phase``, ``--seq``, ``--context``, ``--batch`` (:mod:`symbiote.search.phases`)."""
    g = parser.add_argument_group("LLM phases (decoder-only models with token inputs; a KV cache for decode)")
    g.add_argument("--phase", choices=("prefill", "decode", "mix"), help="cost the prefill of --seq tokens, or one "
                   "decode step attending to --context cached tokens; mix (search): the phases of --mix")
    g.add_argument("--seq", type=int, metavar="S", help="prefill: tokens per sequence (default 128)")
    g.add_argument("--context", type=int, metavar="L", help="decode: cached tokens each new token attends to")
    g.add_argument("--batch", type=int, default=1, metavar="B", help="sequences per step (default 1)")
    g.add_argument("--mix", metavar="SPEC", help="with --phase mix (search): phases weighted in the geometric mean, "
                   "e.g. 'prefill:seq=512:w=1,decode:context=2048:w=4' (fields seq, context, batch, w)")


def phase_of(args: argparse.Namespace) -> Any:
    """The command line's :class:`symbiote.search.phases.Phase` (a ``PhaseMix`` with ``--phase
    mix``), or None without ``--phase``."""
    from symbiote.search.phases import Phase, PhaseError

    kind = getattr(args, "phase", None)
    seq, context = getattr(args, "seq", None), getattr(args, "context", None)
    mix = getattr(args, "mix", None)
    if (kind == "mix") != (mix is not None):
        raise PhaseError("--phase mix needs --mix SPEC, and --mix is for --phase mix")
    if kind == "mix":
        from symbiote.search.phases import parse_mix

        if seq is not None or context is not None:
            raise PhaseError("--phase mix: give each phase's seq and context in --mix, not --seq or --context")
        return parse_mix(mix, int(getattr(args, "batch", 1) or 1))
    if kind is None:
        if seq is not None or context is not None:
            raise PhaseError("--seq and --context need --phase prefill or --phase decode")
        return None
    if kind == "prefill" and context is not None:
        raise PhaseError("--context is for --phase decode; a prefill starts with an empty cache")
    if kind == "decode" and seq is not None:
        raise PhaseError("--seq is for --phase prefill; a decode step has one new token")
    return Phase(kind, batch=int(getattr(args, "batch", 1) or 1), seq=seq or (128 if kind == "prefill" else 1),
                 context=context or 0)


# ---------------------------------------------------------------- parsing
def _split(flag: str, text: str, example: str) -> tuple[str, str]:
    target, sep, value = text.partition("=")
    target = target.strip()
    if not sep or not target or not value.strip() or target.endswith(":"):
        raise ShapeError(f"{flag} {text!r}: expected [MODEL:]NAME=..., e.g. {example}")
    return target, value.strip()


def parse_input_shape(text: str) -> InputSpec:
    """``"x=1x3x224x224"`` -> a spec for input ``x`` of shape ``(1, 3, 224, 224)``."""
    target, dims = _split(SHAPE_FLAG, text, "pixel_values=1x3x224x224")
    try:
        shape = tuple(int(d) for d in dims.lower().replace(",", "x").split("x"))
    except ValueError:
        raise ShapeError(f"{SHAPE_FLAG} {text!r}: dims must be integers separated by 'x'") from None
    bad = [d for d in shape if d <= 0]
    if bad:
        raise ShapeError(f"{SHAPE_FLAG} {text!r}: dim {bad[0]} must be positive")
    return InputSpec(SHAPE_FLAG, text, target, shape)


def _number(item: str, text: str) -> int | float | bool:
    s = item.strip().lower()
    if s in ("true", "false"):
        return s == "true"
    for kind in (int, float):
        try:
            return kind(s)
        except ValueError:
            pass
    raise ShapeError(f"{VALUE_FLAG} {text!r}: {item.strip()!r} is not a number (values: a number, "
                     "true/false, or a comma list of them)")


def parse_input_value(text: str) -> InputSpec:
    """``"sr=16000"`` -> a spec fixing input ``sr`` to ``array(16000)``; ``"s=1,2"`` -> ``array([1, 2])``.
    The loader casts the value to the input's declared dtype and checks its shape."""
    target, value = _split(VALUE_FLAG, text, "sr=16000")
    items = [_number(v, text) for v in value.split(",")]
    arr = np.asarray(items if "," in value else items[0])
    return InputSpec(VALUE_FLAG, text, target, arr)


def parse_specs(args: argparse.Namespace) -> tuple[InputSpec, ...]:
    """Every ``--input-shape`` and ``--input-value`` of a command line, parsed."""
    return (tuple(parse_input_shape(t) for t in getattr(args, "input_shape", None) or ())
            + tuple(parse_input_value(t) for t in getattr(args, "input_value", None) or ()))


# ---------------------------------------------------------------- which model
def _selects(scope: str, index: int, src: str) -> bool:
    p = Path(src)
    return scope in {str(index), src, p.name, p.stem, src.removeprefix("zoo:")}


def _inputs_text(models: Sequence[tuple[str, Collection[str]]], which: Iterable[int]) -> str:
    return "; ".join(f"{models[i][0]} has {', '.join(models[i][1]) or 'none'}" for i in which)


def _targets(spec: InputSpec, models: Sequence[tuple[str, Collection[str]]]) -> list[tuple[int, str, bool]]:
    """(model index, input name, prefixed) for every model ``spec`` applies to."""
    plain = [(i, spec.target, False) for i, (_, names) in enumerate(models) if spec.target in names]
    if plain:
        return plain
    for k, ch in enumerate(spec.target):
        if ch != ":":
            continue
        scope, name = spec.target[:k], spec.target[k + 1:]
        picked = [i for i, (src, _) in enumerate(models) if _selects(scope, i, src)]
        if picked:
            missing = [i for i in picked if name not in models[i][1]]
            if missing:
                raise ShapeError(f"{spec.flag} {spec.text!r}: no input {name!r} in {models[missing[0]][0]} "
                                 f"(inputs: {', '.join(models[missing[0]][1]) or 'none'})")
            return [(i, name, True) for i in picked]
    where = _inputs_text(models, range(len(models)))
    if ":" in spec.target:
        where += (f"; nor does {spec.target.split(':')[0]!r} name a model: a MODEL: prefix is its index "
                  f"({'0' if len(models) == 1 else f'0-{len(models) - 1}'}), path, file name or name")
    raise ShapeError(f"{spec.flag} {spec.text!r}: no model has an input {spec.target!r} (inputs: {where})")


def assign(specs: Sequence[InputSpec], models: Sequence[tuple[str, Collection[str]]]) -> tuple[ModelInputs, ...]:
    """What ``specs`` fix for each of ``models`` (``(source, input names)`` each), by the
    rules of the module doc; a :class:`ShapeError` names the flag, the spec and the model."""
    chosen: list[dict[tuple[str, str], tuple[bool, InputSpec]]] = [{} for _ in models]
    for spec in specs:
        for i, name, prefixed in _targets(spec, models):
            prev = chosen[i].get((spec.flag, name))
            if prev is not None and prev[0] == prefixed:
                raise ShapeError(f"{spec.flag}: input {name!r} of {models[i][0]} is given twice "
                                 f"({prev[1].text!r} and {spec.text!r})")
            if prev is None or prefixed:
                chosen[i][(spec.flag, name)] = (prefixed, spec)
    return tuple(ModelInputs({n: s.value for (f, n), (_, s) in c.items() if f == SHAPE_FLAG},
                             {n: s.value for (f, n), (_, s) in c.items() if f == VALUE_FLAG}) for c in chosen)


# ---------------------------------------------------------------- loading
def declared_inputs(src: str) -> tuple[Any, ...]:
    """A model's graph inputs that are not initializers, as declared (``DeclaredInput``; reads the file)."""
    from symbiote.frontend.build import declared
    from symbiote.frontend.load import read_model

    g = read_model(src)[0].graph
    inits = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    return tuple(declared(vi) for vi in g.input if vi.name not in inits)


def _checked(src: str, decls: Sequence[Any], opts: ModelInputs) -> ModelInputs:
    """``opts`` checked against the declared inputs as the loader will check them (values
    cast to their input's dtype), before any slow work; errors name the flag and the model."""
    from symbiote.frontend.resolve import resolve_inputs, resolve_values

    try:
        resolve_inputs([d for d in decls if d.name in opts.shapes], opts.shapes, src)
    except ShapeError as e:
        raise ShapeError(f"{SHAPE_FLAG}: {e}") from None
    try:
        values = resolve_values(decls, opts.values, opts.shapes, src)
    except ShapeError as e:
        raise ShapeError(f"{VALUE_FLAG}: {e}") from None
    return ModelInputs(opts.shapes, values)


def model_inputs(args: argparse.Namespace, models: Sequence[str]) -> tuple[ModelInputs, ...]:
    """Per model of ``models``, what the command line's ``--input-shape`` / ``--input-value``
    fix, checked (the models' inputs are read only when there are specs)."""
    specs = parse_specs(args)
    if not specs:
        return tuple(ModelInputs() for _ in models)
    decls = [declared_inputs(m) for m in models]
    opts = assign(specs, [(m, tuple(d.name for d in ds)) for m, ds in zip(models, decls)])
    return tuple(_checked(m, ds, o) for m, ds, o in zip(models, decls, opts))


def load_model(args: argparse.Namespace, src: str):
    """Load one model with the command line's input options (an ``ir.Graph``)."""
    from symbiote.frontend import load

    opts = model_inputs(args, [src])[0]
    phase = phase_of(args)
    from symbiote.search.phases import PhaseError, PhaseMix

    if isinstance(phase, PhaseMix):
        raise PhaseError("--phase mix is for search (one network per phase); cost or inspect each phase with "
                         "--phase prefill or --phase decode")
    if phase is not None:
        from symbiote.search.phases import load_phase

        return load_phase(src, phase, opts.shapes, opts.values or None)
    return load(src, input_shapes=opts.shapes or None, input_values=opts.values or None)


def print_warnings(warnings: Iterable[Any], file: Any = None) -> None:
    """One ``warning: ...`` line per warning, on stderr."""
    for w in warnings:
        print(f"warning: {w}", file=file or sys.stderr)
