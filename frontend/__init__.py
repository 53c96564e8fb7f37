"""symbiote.frontend: ONNX <-> IR.

``load(src, input_shapes=None) -> ir.Graph`` reads a path, bytes, an ``onnx.ModelProto``
or ``"zoo:NAME"``; ``save(graph, path)`` writes ONNX back. ``from_torch``,
``from_tensorflow``, ``from_jax`` and ``from_sklearn`` wrap the frameworks' exporters.
Everything but ``load`` is imported lazily so this package works while its siblings are
still being written. See README.md in this folder.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from symbiote.frontend.load import load
from symbiote.frontend.save import save, to_onnx  # eager: importing the submodule would shadow the function

_LAZY = {
    "save": "symbiote.frontend.save",
    "to_onnx": "symbiote.frontend.save",
    "from_torch": "symbiote.frontend.frameworks",
    "from_tensorflow": "symbiote.frontend.frameworks",
    "from_jax": "symbiote.frontend.frameworks",
    "from_sklearn": "symbiote.frontend.frameworks",
}

__all__ = ["load", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'symbiote.frontend' has no attribute {name!r}")
    return getattr(import_module(module), name)
