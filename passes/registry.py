"""The pass registry: a pluggy plugin manager plus the textual pipeline parser.

Passes are registered through the hook ``symbiote_register_passes() -> list[type[Pass]]``.
The built-in passes are a plugin like any other (``symbiote.passes.builtin``); third-party
distributions add theirs through the entry point group ``symbiote.passes``::

    # pyproject.toml of a plugin
    [project.entry-points."symbiote.passes"]
    mypasses = "mypkg.passes"        # a module with a @hookimpl symbiote_register_passes

``parse_pipeline("canonicalize,prune(ratio=0.3)")`` turns text into a Pipeline; see
README.md for the syntax.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import MISSING, fields
from functools import lru_cache
from typing import Any, Literal, get_args, get_origin, get_type_hints

import pluggy

from symbiote.errors import PassError, PipelineSyntaxError
from symbiote.passes.base import Pass, Pipeline
from symbiote.passes.syntax import Step, parse_steps

PROJECT = "symbiote"
ENTRY_POINT_GROUP = "symbiote.passes"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class PassSpecs:
    @hookspec
    def symbiote_register_passes(self) -> list[type[Pass]]:  # type: ignore[empty-body]
        """Return the Pass subclasses this plugin provides."""


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(PassSpecs)
    from symbiote.passes import builtin

    pm.register(builtin, name="symbiote.passes.builtin")
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (built-ins plus installed entry points)."""
    return make_plugin_manager()


def registered(pm: pluggy.PluginManager | None = None) -> dict[str, type[Pass]]:
    """Registry name -> Pass class, over every plugin."""
    pm = pm or plugin_manager()
    out: dict[str, type[Pass]] = {}
    for batch in pm.hook.symbiote_register_passes():
        for cls in batch or ():
            if not (isinstance(cls, type) and issubclass(cls, Pass)) or not cls.name:
                raise PassError(f"plugin registered {cls!r}, which is not a named Pass subclass")
            if cls.name in out and out[cls.name] is not cls:
                raise PassError(f"two plugins register a pass named {cls.name!r}: {out[cls.name].__module__} and {cls.__module__}")
            out[cls.name] = cls
    return dict(sorted(out.items()))


def get(name: str, pm: pluggy.PluginManager | None = None) -> type[Pass]:
    table = registered(pm)
    try:
        return table[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise PipelineSyntaxError(f"unknown pass {name!r}{hint} (known: {', '.join(table)})") from None


def argument_table(cls: type[Pass]) -> list[tuple[str, str, Any]]:
    """(name, type text, default or MISSING) for each argument of a pass."""
    hints = get_type_hints(cls)
    rows = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING else MISSING)
        rows.append((f.name, _type_text(hints.get(f.name, Any)), default))
    return rows


def _type_text(t: Any) -> str:
    origin = get_origin(t)
    if origin is Literal:
        return "|".join(str(a) for a in get_args(t))
    if origin in (types.UnionType, typing.Union):
        return " | ".join(_type_text(a) for a in get_args(t) if a is not type(None))
    if origin is dict:
        k, v = get_args(t)
        return f"{{{_type_text(k)}:{_type_text(v)}}}"
    if origin in (list, tuple):
        return f"[{_type_text(get_args(t)[0])}]"
    return getattr(t, "__name__", str(t))


def _coerce(value: Any, t: Any, where: str) -> Any:
    origin = get_origin(t)
    if t is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in get_args(t):
            return None
        errors = []
        for a in get_args(t):
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except PipelineSyntaxError as e:
                errors.append(str(e))
        raise PipelineSyntaxError(errors[0] if len(errors) == 1 else f"{where}: {value!r} is not a {_type_text(t)}")
    if origin is Literal:
        if value in get_args(t):
            return value
        raise PipelineSyntaxError(f"{where}: {value!r} is not one of {', '.join(map(str, get_args(t)))}")
    if origin is dict:
        kt, vt = get_args(t)
        if not isinstance(value, dict):
            raise PipelineSyntaxError(f"{where}: expected a dict like {{name:value}}, got {value!r}")
        return {_coerce(k, kt, f"{where} key"): _coerce(v, vt, f"{where}[{k}]") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise PipelineSyntaxError(f"{where}: expected a list like [a,b], got {value!r}")
        return tuple(_coerce(v, get_args(t)[0], where) for v in value)
    if t is bool:
        if isinstance(value, bool):
            return value
    elif t is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif t is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif t is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    raise PipelineSyntaxError(f"{where}: expected {_type_text(t)}, got {value!r}")


def make_pass(cls: type[Pass], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Pass:
    """Build a pass from raw argument values, checking names and types."""
    kwargs = {k.replace("-", "_"): v for k, v in (kwargs or {}).items()}
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    if len(args) > len(names):
        raise PipelineSyntaxError(f"pass {cls.name!r} takes at most {len(names)} positional argument(s) ({', '.join(names)}), got {len(args)}")
    for n, a in zip(names, args):
        if n in kwargs:
            raise PipelineSyntaxError(f"pass {cls.name!r}: argument {n!r} given twice")
        kwargs[n] = a
    for k in kwargs:
        if k not in names:
            close = difflib.get_close_matches(k, names, n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise PipelineSyntaxError(f"pass {cls.name!r} has no argument {k!r}{hint} (arguments: {', '.join(names) or 'none'})")
    for f in fields(cls):
        if f.name not in kwargs and f.default is MISSING and f.default_factory is MISSING:
            raise PipelineSyntaxError(f"pass {cls.name!r} needs argument {f.name!r}")
    coerced = {k: _coerce(v, hints.get(k, Any), f"pass {cls.name!r} argument {k!r}") for k, v in kwargs.items()}
    try:
        return cls(**coerced)
    except PassError as e:
        raise PipelineSyntaxError(str(e)) from e


def parse_pipeline(text: str, pm: pluggy.PluginManager | None = None) -> Pipeline:
    """Text like ``"fold-bn,prune(ratio=0.3,criterion=l1)"`` -> Pipeline."""
    steps: list[Step] = parse_steps(text)
    passes = []
    for st in steps:
        cls = get(st.name, pm)
        passes.append(make_pass(cls, st.args, dict(st.kwargs)))
    return Pipeline(passes)


def parse_pass(text: str, pm: pluggy.PluginManager | None = None) -> Pass:
    p = parse_pipeline(text, pm)
    if len(p) != 1:
        raise PipelineSyntaxError(f"expected one pass, got {len(p)} in {text!r}")
    return p.passes[0]
