"""symbiote: co-design a deep neural network and the accelerator that runs it.

Public API (imported lazily so that ``import symbiote`` stays cheap)::

    graph = symbiote.load("model.onnx")          # or "zoo:resnet50", bytes, onnx.ModelProto
    graph = symbiote.load("vad.onnx", input_shapes={"input": (1, 512)}, input_values={"sr": 16000})
    symbiote.save(graph, "out.onnx")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("symbiote.frontend", "load"),
    "save": ("symbiote.frontend", "save"),
    "zoo": ("symbiote.frontend.zoo", None),
    "errors": ("symbiote.errors", None),
    "ir": ("symbiote.ir", None),
    "frontend": ("symbiote.frontend", None),
    "passes": ("symbiote.passes", None),
    "backends": ("symbiote.backends", None),
    "search": ("symbiote.search", None),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'symbiote' has no attribute {name!r}") from None
    mod = import_module(module)
    return mod if attr is None else getattr(mod, attr)


__all__ = ["__version__", *_LAZY]
