"""Hardware files (YAML: ``backend:`` plus knobs) and ``--set KNOB=VALUE`` overrides.

::

    backend: systolic
    rows: 32
    cols: 32
    dataflow: ws

``read(path)`` returns ``(backend, {knob: value})``; values are validated against the
template's space by :func:`resolve`, whose errors name the file, the knob and its legal values.
``write(path, backend, design)`` writes one atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from symbiote.backends.space import HardwareSpace
from symbiote.errors import HardwareError
from symbiote.fileio import write_text


def read(path: str | os.PathLike) -> tuple[str | None, dict[str, Any]]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise HardwareError(f"{p}: cannot read hardware file: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise HardwareError(f"{p}: not valid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise HardwareError(f"{p}: a hardware file is a mapping of 'backend:' and knobs, got {type(data).__name__}")
    data = dict(data)
    backend = data.pop("backend", None)
    if backend is not None and not isinstance(backend, str):
        raise HardwareError(f"{p}: 'backend' must be a template name, got {backend!r}")
    if "hardware" in data and isinstance(data["hardware"], dict) and len(data) == 1:
        data = dict(data["hardware"])
    return backend, data


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["rows=32", "dataflow=ws"]`` -> ``{"rows": 32, "dataflow": "ws"}`` (YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HardwareError(f"--set {item!r}: expected KNOB=VALUE")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else value
    return out


def resolve(space: HardwareSpace, file_design: Mapping[str, Any] | None = None, sets: Mapping[str, Any] | None = None,
            where: str = "") -> dict[str, Any]:
    """Defaults, then the file's knobs, then ``--set`` overrides; validated."""
    design = dict(space.validate(file_design or {}, where))
    design.update(space.validate(sets or {}, "--set", complete=False))
    return design


def write(path: str | os.PathLike, backend: str, design: Mapping[str, Any]) -> None:
    write_text(path, yaml.safe_dump({"backend": backend, **dict(design)}, sort_keys=False))
