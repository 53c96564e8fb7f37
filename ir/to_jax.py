"""The IR as a JAX function: ``to_jax(graph) -> (params, fn)`` and ``with_params(graph, params)``.

``fn(params, *inputs)`` is pure and jit-able; it computes the graph's outputs (a tuple, in
the graph's order) from its inputs (in the graph's order, at the graph's shapes). Each
node is evaluated by the rule its ONNX op type names in one table
(:data:`symbiote.ir.jax_ops.RULES`, filled by :mod:`~symbiote.ir.jax_ops` and
:mod:`~symbiote.ir.jax_layers`). :func:`over_samples` maps ``fn`` over a leading sample
axis (``jax.vmap``), for the sample sets the search and fine-tuning use.

**Parameters** are what training may change, keyed by constant name:

* every floating-point constant of more than one element, except those read only where
  training has no meaning (a quantizer's scale and zero point, a Clip's bounds,
  BatchNormalization's running mean and variance, Resize's and Pad's operands);
* every weight that ``set-precision`` stored as integers behind a DequantizeLinear: its
  parameter is the dequantized float weight, and ``fn`` reads it through the same
  quantizer (rounded to the stored scale, saturated at the layer's ``weight_bits``, with
  a straight-through gradient), so a trained model keeps its quantizers.

A constant that only shapes the computation (a Reshape's shape, a Slice's bounds) stays a
numpy array; nodes whose inputs are all such constants are evaluated once, at trace time.

An If whose condition is known runs its taken branch; otherwise both branches are traced
(``lax.cond``; they must agree in shape). A branch reads outer weights by name, so the
outer parameters reach it; its own initializers stay constants. Loop and Scan, ops outside
the default domain and ops without a rule are reported, all at once and by name, when
:func:`to_jax` is called: nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from symbiote.ir import control_flow, dtypes
from symbiote.ir import jax_layers as _layers  # noqa: F401  (fills the rule table)
from symbiote.ir.graph import Graph, Node, Value
from symbiote.ir.jax_ops import RULES, Call, UnsupportedOpError, straight_through_levels

Params = dict[str, jax.Array]
Fn = Callable[..., tuple]

#: input slots whose float constants are never parameters (by ONNX op type)
FROZEN_SLOTS: Mapping[str, frozenset[int]] = {
    "QuantizeLinear": frozenset({1, 2}), "DequantizeLinear": frozenset({1, 2}), "Clip": frozenset({1, 2}),
    "BatchNormalization": frozenset({3, 4}), "Resize": frozenset({1, 2, 3}), "Upsample": frozenset({1}),
    "Pad": frozenset({1, 2, 3}), "Range": frozenset({0, 1, 2}), "ConstantOfShape": frozenset({0}),
}
_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class Quantizer:
    """How a weight stored as integers is read: ``(levels - zero_point) * scale``, its levels
    ``round(w / scale) + zero_point`` saturated to ``[lo, hi]`` and stored as ``dtype``."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int
    lo: int
    hi: int
    dtype: np.dtype
    block: int = 0           # blocked quantization (opset 21): one scale per ``block`` along ``axis``

    def shaped(self, shape: tuple[int, ...], p: np.ndarray) -> np.ndarray:
        """A scale or zero point broadcastable to a weight of ``shape``."""
        rank = len(shape)
        if self.block:
            a = self.axis % rank
            return np.repeat(p, self.block, axis=a)[tuple(slice(0, n) for n in shape)]
        if p.size <= 1:
            return p.reshape(())
        out = [1] * rank
        out[self.axis % rank] = p.size
        return p.reshape(out)

    def levels(self, w):
        """The integer levels of float weights ``w`` (floats, straight-through gradient)."""
        shape = tuple(jnp.shape(w))
        s = jnp.asarray(self.shaped(shape, self.scale), jnp.float32)
        z = jnp.asarray(self.shaped(shape, self.zero_point), jnp.float32)
        return straight_through_levels(w / s + z, self.lo, self.hi)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return ((q.astype(np.float32) - self.shaped(q.shape, self.zero_point).astype(np.float32))
                * self.shaped(q.shape, self.scale).astype(np.float32))

    def quantize(self, w: np.ndarray) -> np.ndarray:
        v = np.round(w / self.shaped(w.shape, self.scale)) + self.shaped(w.shape, self.zero_point)
        return np.clip(v, self.lo, self.hi).astype(self.dtype)


# ------------------------------------------------------------------ which constants are parameters
def _float_param(v: Value) -> bool:
    if not v.is_const or not dtypes.is_float(v.dtype) or v.const.size <= 1:
        return False
    return any(i not in FROZEN_SLOTS.get(n.onnx_op, ()) for n, i in v.uses)


def _quantizer(v: Value) -> Quantizer | None:
    """The quantizer of an integer weight read only as input 0 of DequantizeLinears with constant scales."""
    if not v.is_const or dtypes.is_float(v.dtype) or not v.uses:
        return None
    found = None
    for n, i in v.uses:
        if n.onnx_op != "DequantizeLinear" or i != 0:
            return None
        s, z = n.input(1), n.input(2)
        if s is None or not s.is_const or (z is not None and not z.is_const):
            return None
        info = np.iinfo(v.const.dtype)
        lo, hi = int(info.min), int(info.max)
        # the layer's integer bits (a weight-only layer's annotation adds its scales' share: floor it)
        bits = [int(b) for c in n.outputs[0].consumers() if isinstance(b := c.meta.get("weight_bits"), (int, float))]
        if bits and all(1 < b <= info.bits for b in bits):
            hi = min(hi, 2 ** (max(bits) - 1) - 1)
            lo = max(lo, -hi) if info.min < 0 else lo
        zp = np.zeros((), v.const.dtype) if z is None else np.asarray(z.const)
        found = Quantizer(np.asarray(s.const, np.float32), zp, int(n.attrs.get("axis", 1)), lo, hi, v.const.dtype,
                          int(n.attrs.get("block_size", 0) or 0))
    return found


def quantizers(graph: Graph) -> dict[str, Quantizer]:
    """Integer weights read through DequantizeLinear, by constant name."""
    return {name: q for name, v in graph.constants.items() if (q := _quantizer(v)) is not None}


def parameters(graph: Graph) -> Params:
    """The graph's parameters (see the module doc), by constant name, as float32 JAX arrays."""
    qs = quantizers(graph)
    out: Params = {}
    for name, v in sorted(graph.constants.items()):
        if name in qs:
            out[name] = jnp.asarray(qs[name].dequantize(np.asarray(v.const)))
        elif _float_param(v):
            out[name] = jnp.asarray(v.const)
    return out


# ------------------------------------------------------------------ support check
def unsupported(graph: Graph) -> list[str]:
    """Every node (bodies of If included) the JAX function cannot compute, as ``'name (Op)'``."""
    out: list[str] = []
    scope = None
    for n in graph.nodes:
        if n.domain not in _DEFAULT_DOMAINS:
            out.append(f"{n.name!r} ({n.domain}::{n.onnx_op})")
        elif n.onnx_op == "If":
            scope = scope or control_flow.scope_of(graph)
            for attr in control_flow.body_attrs(n):
                try:
                    out += unsupported(control_flow.lowered_body(n, attr, scope))
                except Exception as e:  # noqa: BLE001  (a body that cannot be lowered is reported as such)
                    out.append(f"{n.name!r} (If {attr}: {e})")
        elif n.onnx_op not in RULES:
            out.append(f"{n.name!r} ({n.onnx_op})")
    return out


# ------------------------------------------------------------------ evaluation
def _static(x: Any) -> bool:
    return x is None or isinstance(x, (np.ndarray, np.generic, int, float))


def _run(graph: Graph, opset: int, env: dict[str, Any]) -> list:
    """Evaluate ``graph``'s nodes on ``env`` (value name -> array) and return its outputs."""
    scope = None
    for node in graph.nodes:
        ins = [None if v is None else env[v.name] for v in node.inputs]
        if node.onnx_op == "If":
            scope = scope or control_flow.scope_of(graph)
            outs = _if(node, ins, scope, opset, env)
        else:
            call = Call(node, ins, opset)
            if all(_static(x) for x in ins):
                with jax.ensure_compile_time_eval():
                    outs = [None if o is None else np.asarray(o) for o in RULES[node.onnx_op](call)]
            else:
                outs = RULES[node.onnx_op](call)
        for v, o in zip(node.outputs, outs):
            env[v.name] = o
    return [env[v.name] for v in graph.outputs]


def _if(node: Node, ins: list, scope: control_flow.Scope, opset: int, env: Mapping[str, Any]) -> list:
    def branch(attr: str) -> Callable[[], list]:
        body = control_flow.lowered_body(node, attr, scope)

        def run() -> list:
            local = {v.name: env[v.name] for v in body.inputs}
            for name, v in body.constants.items():
                local[name] = env[name] if name in env and not _static(env[name]) else v.const
            return _run(body, opset, local)
        return run

    cond = ins[0]
    if _static(cond):
        return branch("then_branch" if bool(np.asarray(cond).reshape(-1)[0]) else "else_branch")()
    then_run, else_run = branch("then_branch"), branch("else_branch")
    try:
        return list(lax.cond(jnp.asarray(cond).reshape(()), lambda: [jnp.asarray(x) for x in then_run()],
                             lambda: [jnp.asarray(x) for x in else_run()]))
    except TypeError as e:
        raise UnsupportedOpError(f"node {node.name!r} (If): its branches' outputs differ in shape or type ({e})") from None


def to_jax(graph: Graph) -> tuple[Params, Fn]:
    """``(params, fn)``: the graph's parameters and its pure function ``fn(params, *inputs)``
    returning the tuple of its outputs. Raises :class:`UnsupportedOpError` naming every
    node it cannot compute."""
    missing = unsupported(graph)
    if missing:
        raise UnsupportedOpError(f"graph {graph.name!r}: the JAX function has no rule for {len(missing)} node(s): "
                                 + ", ".join(missing[:12]) + (f", ... ({len(missing) - 12} more)" if len(missing) > 12 else ""))
    params = parameters(graph)
    qs = quantizers(graph)
    consts = {name: v.const for name, v in graph.constants.items()}
    opset = int(graph.opset.get("", graph.opset.get("ai.onnx", 21)))
    in_names = [v.name for v in graph.inputs]

    def fn(p: Mapping[str, Any], *inputs: Any) -> tuple:
        if len(inputs) != len(in_names):
            raise TypeError(f"graph {graph.name!r} takes {len(in_names)} input(s) ({', '.join(in_names)}), got {len(inputs)}")
        env: dict[str, Any] = dict(consts)
        for name, x in p.items():
            env[name] = qs[name].levels(x) if name in qs else x
        env.update(zip(in_names, (jnp.asarray(x) for x in inputs)))
        return tuple(_run(graph, opset, env))

    return params, fn


def over_samples(fn: Fn) -> Fn:
    """``fn`` over stacked samples: each input gets a leading sample axis (one model-shaped
    feed per entry), and so does each output."""
    def batched(p: Mapping[str, Any], *inputs: Any) -> tuple:
        return jax.vmap(lambda *xs: fn(p, *xs))(*inputs)
    return batched


def with_params(graph: Graph, params: Mapping[str, Any]) -> Graph:
    """A copy of ``graph`` with the given parameters written back into its constants (at
    their stored types; integer weights re-quantized with their stored scale). Raises
    ``KeyError`` for a name that is not a parameter and ``ValueError`` for a shape change."""
    out = graph.copy()
    qs = quantizers(out)
    names = set(parameters(graph)) if params else set()
    for name, x in params.items():
        if name not in names:
            raise KeyError(f"{name!r} is not a parameter of graph {graph.name!r}")
        v = out.constants[name]
        w = np.asarray(x, np.float32)
        if w.shape != v.const.shape:
            raise ValueError(f"parameter {name!r}: shape {w.shape} where the graph holds {v.const.shape}")
        v.const = qs[name].quantize(w) if name in qs else w.astype(v.const.dtype)
    return out


def feeds_as_arrays(graph: Graph, feeds: Sequence[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
    """Sample feeds (one dict per sample) stacked per graph input, for :func:`over_samples`."""
    return [np.stack([np.asarray(f[v.name]) for f in feeds]) for v in graph.inputs]
