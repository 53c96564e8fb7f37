"""symbiote.frontend: ONNX <-> IR.

``load(src, input_shapes=None, input_values=None) -> ir.Graph`` reads a path, bytes, an ``onnx.ModelProto``
or ``"zoo:NAME"``; ``save(graph, path)`` writes ONNX back. ``from_torch``,
``from_tensorflow``, ``from_jax`` and ``from_sklearn`` wrap the frameworks' exporters;
they are imported lazily (the frameworks are optional extras). See README.md here.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from symbiote.frontend.load import load
from symbiote.frontend.save import save, to_onnx  # eager: importing the submodule would shadow the function

_LAZY = {
    "from_torch": "symbiote.frontend.frameworks",
    "from_tensorflow": "symbiote.frontend.frameworks",
    "from_jax": "symbiote.frontend.frameworks",
    "from_sklearn": "symbiote.frontend.frameworks",
}

__all__ = ["load", "save", "to_onnx", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'symbiote.frontend' has no attribute {name!r}")
    return getattr(import_module(module), name)
