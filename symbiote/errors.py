"""User-facing errors.

Every error a user can cause (a bad file, a bad shape, a bad pipeline string, a bad
hardware knob) is a :class:`SymbioteError`. Its message names the file, node or knob
at fault. The command line prints ``error: <message>`` on one line and exits 2.
Internal bugs raise ordinary Python exceptions.
"""

from __future__ import annotations


class SymbioteError(Exception):
    """Base class of every error caused by user input."""

    exit_code = 2


class ModelLoadError(SymbioteError):
    """The file cannot be read as an ONNX model (missing, truncated, not ONNX)."""


class InvalidModelError(SymbioteError):
    """The model parses but is malformed: a cycle, a dangling input, a bad initializer."""


class ShapeError(SymbioteError):
    """A shape cannot be resolved or is invalid (unknown dim, zero or negative dim)."""


class UnsafePathError(SymbioteError):
    """An external-data path points outside the model's folder."""


class PassError(SymbioteError):
    """A pass or pipeline was given bad arguments or cannot apply."""


class PipelineSyntaxError(PassError):
    """A textual pipeline cannot be parsed, or names an unknown pass."""


class HardwareError(SymbioteError):
    """A hardware description is invalid: unknown knob, value out of bounds, bad file."""


class BackendError(SymbioteError):
    """An unknown backend/template, or a plugin that failed to load."""


class SearchError(SymbioteError):
    """A search was configured badly (objective, constraint, budget, resume state)."""


class ModelRunError(SymbioteError):
    """The model itself fails in onnxruntime on the inputs it was given (e.g. random
    values for an input that only takes a few, such as a sample rate)."""
