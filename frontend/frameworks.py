"""Models from other frameworks, through their own ONNX exporters, then :func:`symbiote.frontend.load`.

Each wrapper imports its framework lazily; when it is missing it raises
:class:`MissingFrameworkError` naming the pip extra that installs it:

* ``from_torch(module, example_inputs, dynamo=False)`` -- ``torch.onnx.export`` (TorchScript
  exporter, or the ``torch.export``-based dynamo exporter with ``dynamo=True``); extra ``torch``.
* ``from_tensorflow(model, input_signature)`` -- ``tf2onnx.convert.from_keras`` (a Keras model)
  or ``from_function`` (a ``tf.function``); extra ``tensorflow``.
* ``from_jax(fn, example_args)`` -- ``jax2onnx.to_onnx``; extra ``jax2onnx``.
* ``from_sklearn(model, initial_types)`` -- ``skl2onnx.convert_sklearn``; extra ``sklearn``.

All return an ``ir.Graph``; ``input_shapes`` is passed through to ``load``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Sequence
from importlib import import_module
from types import ModuleType
from typing import Any

import onnx

from symbiote.errors import ModelLoadError, SymbioteError
from symbiote.ir.graph import Graph

#: the opsets asked of each exporter by default (the dynamo exporter's own default is 18+)
TORCHSCRIPT_OPSET = 17
DYNAMO_OPSET = 18


class MissingFrameworkError(SymbioteError):
    """The framework (or its ONNX exporter) is not installed."""


class ExportError(ModelLoadError):
    """The framework's exporter failed on the given model."""


def _require(module: str, extra: str, what: str) -> ModuleType:
    try:
        return import_module(module)
    except ImportError as e:
        raise MissingFrameworkError(
            f"{what} needs the Python package {module.split('.')[0]!r} ({e}); install it with: pip install \"symbiote[{extra}]\""
        ) from None


def _load(model: onnx.ModelProto, input_shapes: dict[str, Sequence[int]] | None) -> Graph:
    from symbiote.frontend.load import load

    return load(model, input_shapes=input_shapes)


@contextlib.contextmanager
def _quiet():
    """Silence exporters' progress prints and deprecation warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            yield


# --------------------------------------------------------------------------- PyTorch


def torch_to_onnx(
    module: Any,
    example_inputs: Any,
    *,
    dynamo: bool = False,
    opset: int | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """Export a ``torch.nn.Module`` to an ONNX ``ModelProto`` (module put in eval mode)."""
    torch = _require("torch", "torch", "from_torch")
    args = tuple(example_inputs) if isinstance(example_inputs, list | tuple) else (example_inputs,)
    module.eval()
    kw: dict[str, Any] = {}
    if input_names:
        kw["input_names"] = list(input_names)
    if output_names:
        kw["output_names"] = list(output_names)
    try:
        with _quiet(), torch.no_grad():
            if dynamo:
                _require("onnxscript", "torch", "from_torch(dynamo=True)")
                program = torch.onnx.export(module, args, dynamo=True, opset_version=opset or DYNAMO_OPSET, verbose=False, **kw)
                return program.model_proto
            buf = io.BytesIO()
            torch.onnx.export(module, args, buf, dynamo=False, opset_version=opset or TORCHSCRIPT_OPSET, do_constant_folding=True, **kw)
            return onnx.load_from_string(buf.getvalue())
    except SymbioteError:
        raise
    except Exception as e:  # the exporter's own failure, on the user's model
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.onnx.export ({'dynamo' if dynamo else 'TorchScript'}) failed on {type(module).__name__}: {msg}") from e


def from_torch(
    module: Any,
    example_inputs: Any,
    *,
    dynamo: bool = False,
    opset: int | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    input_shapes: dict[str, Sequence[int]] | None = None,
) -> Graph:
    """A PyTorch module as an IR graph, via ``torch.onnx.export`` (TorchScript, or dynamo with ``dynamo=True``)."""
    proto = torch_to_onnx(module, example_inputs, dynamo=dynamo, opset=opset, input_names=input_names, output_names=output_names)
    return _load(proto, input_shapes)


# --------------------------------------------------------------------------- TensorFlow


def from_tensorflow(model: Any, input_signature: Sequence[Any] | None = None, *, opset: int | None = None, input_shapes: dict[str, Sequence[int]] | None = None) -> Graph:
    """A Keras model (or a ``tf.function``) as an IR graph, via tf2onnx."""
    _require("tensorflow", "tensorflow", "from_tensorflow")
    tf2onnx = _require("tf2onnx", "tensorflow", "from_tensorflow")
    try:
        with _quiet():
            if hasattr(model, "layers") or hasattr(model, "inputs"):
                proto, _ = tf2onnx.convert.from_keras(model, input_signature=input_signature, opset=opset)
            else:
                proto, _ = tf2onnx.convert.from_function(model, input_signature=input_signature, opset=opset)
    except SymbioteError:
        raise
    except Exception as e:
        raise ExportError(f"tf2onnx failed on {type(model).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from e
    return _load(proto, input_shapes)


# --------------------------------------------------------------------------- JAX


def from_jax(fn: Callable[..., Any], example_args: Sequence[Any], *, opset: int | None = None, input_shapes: dict[str, Sequence[int]] | None = None) -> Graph:
    """A JAX function (or a Flax/Equinox module) as an IR graph, via ``jax2onnx.to_onnx``."""
    jax2onnx = _require("jax2onnx", "jax2onnx", "from_jax")
    specs = [tuple(getattr(a, "shape", ())) for a in example_args]
    kw: dict[str, Any] = {}
    if opset is not None:
        kw["opset"] = opset
    try:
        with _quiet():
            try:
                result = jax2onnx.to_onnx(fn, specs, return_mode="proto", **kw)
            except TypeError:  # older jax2onnx: no return_mode, returns a ModelProto
                result = jax2onnx.to_onnx(fn, specs, **kw)
    except SymbioteError:
        raise
    except Exception as e:
        raise ExportError(f"jax2onnx failed on {getattr(fn, '__name__', type(fn).__name__)}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from e
    if not isinstance(result, onnx.ModelProto):  # an onnx_ir model
        result = import_module("onnx_ir").to_proto(result)
    return _load(result, input_shapes)


# --------------------------------------------------------------------------- scikit-learn


def from_sklearn(model: Any, initial_types: Sequence[tuple[str, Any]], *, opset: int | None = None, options: dict[Any, Any] | None = None, input_shapes: dict[str, Sequence[int]] | None = None) -> Graph:
    """A fitted scikit-learn estimator or pipeline as an IR graph, via ``skl2onnx.convert_sklearn``.

    ``initial_types`` as skl2onnx takes them, e.g. ``[("X", FloatTensorType([1, 4]))]``.
    Most ``ai.onnx.ml`` ops have no IR rule and load as opaque nodes (counted by ``inspect``).
    """
    _require("sklearn", "sklearn", "from_sklearn")
    skl2onnx = _require("skl2onnx", "sklearn", "from_sklearn")
    kw: dict[str, Any] = {"target_opset": opset} if opset is not None else {}
    if options:
        kw["options"] = options
    try:
        with _quiet():
            proto = skl2onnx.convert_sklearn(model, initial_types=list(initial_types), **kw)
    except SymbioteError:
        raise
    except Exception as e:
        raise ExportError(f"skl2onnx failed on {type(model).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from e
    return _load(proto, input_shapes)


__all__ = ["from_torch", "from_tensorflow", "from_jax", "from_sklearn", "torch_to_onnx", "MissingFrameworkError", "ExportError"]
