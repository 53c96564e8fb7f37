"""The backend plugin manager: built-ins plus every ``symbiote.backends`` entry point.

``registry()`` loads plugins once (cached) and returns a :class:`Registry`. A plugin that
fails to import, whose hook raises, or that returns something other than templates is
reported by name (a ``UserWarning`` and ``Registry.failures``) and skipped: the other plugins
still load. Built-in templates are registered through the same hook as third-party ones.
"""

from __future__ import annotations

import importlib
import traceback
import warnings
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from symbiote.backends import hookspecs
from symbiote.backends.template import Template
from symbiote.errors import BackendError

#: built-in plugin modules (each has a ``@hookimpl symbiote_register_templates``)
BUILTINS = ("symbiote.backends.systolic.plugin", "symbiote.backends.roofline.plugin", "symbiote.backends.ortcpu.plugin",
            "symbiote.backends.spatial.plugin")


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    error: str


@dataclass(frozen=True)
class Registry:
    templates: dict[str, Template] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)      # template -> plugin (and distribution)
    failures: tuple[PluginFailure, ...] = ()

    def get(self, name: str) -> Template:
        try:
            return self.templates[name]
        except KeyError:
            known = ", ".join(sorted(self.templates)) or "none"
            broken = f" (plugins that failed to load: {', '.join(f.plugin for f in self.failures)})" if self.failures else ""
            raise BackendError(f"unknown backend {name!r}: known backends are {known}{broken}") from None


def _describe(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    who = f" from {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {ep.name} = {ep.value}{who}"


def load_registry(eps: list[EntryPoint] | None = None, builtins: tuple[str, ...] = BUILTINS) -> Registry:
    """Load plugins afresh (tests call this directly; everyone else uses :func:`registry`)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    failures: list[PluginFailure] = []
    origin_of_plugin: dict[str, str] = {}

    def fail(name: str, err: str) -> None:
        failures.append(PluginFailure(name, err))
        warnings.warn(f"symbiote backend plugin {name!r} failed to load: {err}", stacklevel=3)

    for mod in builtins:
        try:
            pm.register(importlib.import_module(mod), name=mod)
            origin_of_plugin[mod] = f"built-in ({mod})"
        except Exception as e:  # noqa: BLE001 - report and go on
            fail(mod, f"{type(e).__name__}: {e}")
    for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP) if eps is None else eps:
        try:
            plugin = ep.load()
            if pm.is_registered(plugin):
                continue
            pm.register(plugin, name=ep.name)
            origin_of_plugin[ep.name] = _describe(ep)
        except Exception as e:  # noqa: BLE001
            fail(ep.name, f"{type(e).__name__}: {e}")

    templates: dict[str, Template] = {}
    origins: dict[str, str] = {}
    for impl in reversed(pm.hook.symbiote_register_templates.get_hookimpls()):  # registration order
        name = impl.plugin_name
        try:
            got = list(impl.function() or [])
            bad = [t for t in got if not isinstance(t, Template)]
            if bad:
                raise TypeError(f"returned {type(bad[0]).__name__}, not Template")
        except Exception as e:  # noqa: BLE001
            fail(name, f"{type(e).__name__}: {e}" + ("" if isinstance(e, TypeError) else f" ({traceback.format_exc(limit=1).splitlines()[-1]})"))
            continue
        for t in got:
            if t.name in templates:
                fail(name, f"template {t.name!r} already registered by {origins[t.name]}")
                continue
            templates[t.name] = t
            origins[t.name] = origin_of_plugin.get(name, name)
    return Registry(templates, origins, tuple(failures))


_CACHE: Registry | None = None


def registry(reload: bool = False) -> Registry:
    global _CACHE
    if _CACHE is None or reload:
        _CACHE = load_registry()
    return _CACHE


def get_template(name: str) -> Template:
    return registry().get(name)
