"""pluggy hook specifications of symbiote backends.

A plugin is any object or module with functions marked ``@hookimpl`` (import it from here or
use ``pluggy.HookimplMarker("symbiote")``). Installed distributions expose plugins through
the entry-point group ``symbiote.backends``; the built-in templates register the same way.
"""

from __future__ import annotations

import pluggy

PROJECT = "symbiote"
ENTRY_POINT_GROUP = "symbiote.backends"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def symbiote_register_templates() -> list:
    """Return the list of :class:`symbiote.backends.template.Template` this plugin provides."""
