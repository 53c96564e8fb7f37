"""The ``weight_only`` model knob: int8/int4 weights with group-wise scales, float activations.

GPTQ/AWQ-style weight-only quantization: a layer's weight is stored as ``b``-bit integers with
one symmetric scale per group of ``g`` consecutive weights along the **input** (reduction)
axis, and dequantized to the activations' format before the product, so the activations
and the arithmetic stay at the datapath's width (on the roofline template the product runs
at the activations' rate: ``16 / max(weight bits, act bits)``).

Why a knob of its own and not an option of ``precision``: ``precision`` is one integer
bit-width for a layer's weights *and* activations (W4A4, W8A8), a numeric gene the gradient
phase relaxes, with a per-layer loss law fitted to that joint quantizer. A weight-only format
is another concept (a storage format: bits *and* a group size, activations untouched), so it
lives here, whole. A layer takes one of the two: ``--model-knobs`` refuses both together
(:data:`EXCLUDES`, :func:`symbiote.search.knobs.check_together`); on an integer datapath the
exact check still writes the datapath's activation quantizers after this knob (W4A8).

* **Targets**: the ``precision`` knob's layers (MAC layers priced once) whose weight is a
  constant 2-D ``MatMul`` or ``Gemm`` operand.
* **Genes**: one categorical gene per target: ``float`` (as given, the default), then
  ``int8/ch``, ``int8/g128``, ``int4/ch``, ``int4/g128``, ``int4/g64``, ``int4/g32`` where
  the group divides the input axis and is shorter than it (``ch``: one group spanning the
  input axis, a scale per output channel).
* **Cost**: the target rows' ``weight_bits`` = ``b + SCALE_BITS / g`` (the integers plus an
  fp16 scale per group), their ``act_bits`` kept (the datapath's when not given); Workload
  ``with_bits`` prices the two apart.
* **Proxy**: as ``sparsity``'s: the share of each weight's energy the quantization error
  takes, ``e_l = ||w - dq(q(w))||^2 / ||w||^2`` (computed from the weights for every
  option), times ``coef`` fitted to one onnxruntime probe on the calibration samples (every
  target at its first ``int4`` option) and ``accuracy.CALIBRATION_MARGIN``; prior
  :data:`PRIOR_COEF`.
* **Pass** (:func:`write_weight_only`): the weight becomes an int8 initializer holding the
  ``b``-bit integers (``|q| <= 2^(b-1) - 1``) read through ``DequantizeLinear(axis, block_size=g)``
  (ONNX opset 21 blocked quantization; the graph's opset is raised to 21 when every op it
  uses keeps its signature there); otherwise the weight is replaced by its dequantized values
  (the same numbers in float). The layer is annotated with ``weight_bits`` and ``act_bits`` =
  the context's default bits (``symbiote cost`` of the written model), ``weight_bits``
  with the scales' share included (``b + 16 / g``, as the search prices it).
* **Repair**: the 4-bit layers raised to ``int8/ch`` in one step, then every layer back to
  ``float``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.search.knobs import Fitted, GeneSettings, Prepared, Probes, RewriteContext, categorical_genes, reset_step

#: the options: label -> (bits, group size; 0 = the whole input axis), in the genes' order
OPTIONS: dict[str, tuple[int, int]] = {"float": (0, 0), "int8/ch": (8, 0), "int8/g128": (8, 128), "int4/ch": (4, 0),
                                       "int4/g128": (4, 128), "int4/g64": (4, 64), "int4/g32": (4, 32)}
#: bits of one group's scale (fp16)
SCALE_BITS = 16.0
#: the knobs a layer cannot take together with this one
EXCLUDES = ("precision",)
#: the proxy's coefficient without a probe (a share ``e`` of a signal's energy lost at random
#: leaves a cosine of about ``1 - e/2``)
PRIOR_COEF = 0.5
#: the opset blocked DequantizeLinear needs
BLOCKED_OPSET = 21


def input_axis(node: Any) -> int:
    """The input (reduction) axis of a 2-D ``MatMul``/``Gemm`` weight: 0, or 1 for ``Gemm(transB=1)``."""
    return 1 if node.onnx_op == "Gemm" and int(node.attrs.get("transB", 0) or 0) else 0


def legal(option: str, axis_size: int) -> bool:
    """Whether ``option``'s group fits an input axis of ``axis_size``."""
    _, g = OPTIONS[option]
    return g == 0 or (g < axis_size and axis_size % g == 0)


def quantize_groups(w: np.ndarray, bits: int, group: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric ``bits``-bit quantization of a 2-D ``w`` with one scale per ``group`` weights
    along ``axis`` (0: the whole axis): ``(integers as int8, scales)``, scales shaped like ``w``
    with ``axis`` divided by the group (DequantizeLinear's blocked layout); half to even."""
    w = np.asarray(w, np.float32)
    g = group or w.shape[axis]
    wa = np.moveaxis(w, axis, 0)
    blocks = wa.reshape(wa.shape[0] // g, g, -1)
    amax = np.abs(blocks).max(axis=1)
    qmax = 2 ** (bits - 1) - 1
    scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    q = np.clip(np.round(blocks / scale[:, None, :]), -qmax, qmax).astype(np.int8)
    q = np.moveaxis(q.reshape(wa.shape), 0, axis)
    return q, np.moveaxis(scale, 0, axis)


def dequantize_groups(q: np.ndarray, scale: np.ndarray, axis: int) -> np.ndarray:
    g = q.shape[axis] // scale.shape[axis]
    return (q.astype(np.float32) * np.repeat(scale, g, axis=axis)).astype(np.float32)


def error_energy(w: np.ndarray, option: str, axis: int) -> float:
    """The share of ``w``'s energy the option's quantization error takes."""
    bits, g = OPTIONS[option]
    w = np.asarray(w, np.float32)
    tot = float(np.sum(w.astype(np.float64) ** 2))
    if bits == 0 or tot == 0.0:
        return 0.0
    q, s = quantize_groups(w, bits, g, axis)
    return float(np.sum((w - dequantize_groups(q, s, axis)).astype(np.float64) ** 2)) / tot


def stored_bits(option: str, axis_size: int) -> float:
    """Bits per weight: the integers plus an fp16 scale per group (0 for ``float``)."""
    bits, g = OPTIONS[option]
    return 0.0 if bits == 0 else bits + SCALE_BITS / float(g or axis_size)


def blocked_exact(graph: Any) -> bool:
    """Whether raising the graph's default-domain opset to 21 keeps every op's signature
    (inputs, outputs, attributes): only type lists grow, so the model means the same."""
    import onnx.defs

    have = int(graph.opset.get("", graph.opset.get("ai.onnx", 1)))
    if have >= BLOCKED_OPSET:
        return True
    for op in {n.onnx_op for n in graph.nodes if n.domain in ("", "ai.onnx")}:
        try:
            a, b = onnx.defs.get_schema(op, have), onnx.defs.get_schema(op, BLOCKED_OPSET)
        except Exception:  # noqa: BLE001 - an op onnx does not know: do not raise the opset
            return False
        sig = lambda s: ([(i.name, i.option) for i in s.inputs], [(o.name, o.option) for o in s.outputs],  # noqa: E731
                         sorted(s.attributes))
        if sig(a) != sig(b):
            return False
    return True


def write_weight_only(graph: Any, chosen: Mapping[str, str], act_bits: int) -> Any:
    """A copy of ``graph`` with each layer in ``chosen`` at its option (module doc, "Pass")."""
    from symbiote.ir import ops
    from symbiote.passes.precision import constant_weight

    g = graph.copy()
    blocked = blocked_exact(g)
    by = {n.name: n for n in g.nodes}
    for name, option in chosen.items():
        bits, group = OPTIONS[option]
        node = by[name]
        w = constant_weight(node) if bits else None
        if w is None:
            continue
        axis = input_axis(node)
        q, scale = quantize_groups(np.asarray(w.const), bits, group, axis)
        if blocked:
            qi = g.add_const(f"{w.name}.int{bits}", q)
            s = g.add_const(f"{w.name}.scale", scale.astype(np.asarray(w.const).dtype))
            zp = g.add_const(f"{w.name}.zero_point", np.zeros(scale.shape, np.int8))
            dq = g.add_node(ops.ELEMENTWISE, "DequantizeLinear", [qi, s, zp], [f"{w.name}.dequantized"],
                            name=f"{node.name}.weight_dequant", before=node,
                            attrs={"axis": axis, "block_size": int(q.shape[axis] // scale.shape[axis])})
            dq.outputs[0].shape, dq.outputs[0].dtype = w.shape, w.dtype
            new = dq.outputs[0]
        else:
            new = g.add_const(f"{w.name}.w{bits}", dequantize_groups(q, scale, axis).astype(np.asarray(w.const).dtype))
        node.set_input(1, new)
        g._drop_const_if_unused(w)
        node.meta["weight_bits"] = stored_bits(option, int(np.asarray(w.const).shape[axis]))  # integers + scales
        node.meta.setdefault("act_bits", int(act_bits))
    if blocked and chosen and any(OPTIONS[o][0] for o in chosen.values()):
        g.opset[""] = max(int(g.opset.get("", BLOCKED_OPSET)), BLOCKED_OPSET)
    return g


class WeightOnly:
    name = "weight_only"
    kind = "weight_format"
    order = 1.5   # after sparsity (which needs float weights), before precision's activation quantizers
    doc = "per MatMul/Gemm layer: int8/int4 weights with group-wise scales, activations untouched"

    def targets(self, prep: Prepared) -> tuple[str, ...]:
        from symbiote.passes.precision import constant_weight
        from symbiote.search.knobs.precision import KNOB as PRECISION

        by = {n.name: n for n in prep.graph.nodes}
        out = []
        for t in PRECISION.targets(prep):
            n = by[t]
            w = constant_weight(n) if n.onnx_op in ("MatMul", "Gemm") else None
            if w is not None and w.shape is not None and len(w.shape) == 2:
                out.append(t)
        return tuple(out)

    def fit(self, prep: Prepared, targets: Sequence[str], probes: Probes) -> Fitted:
        from symbiote.passes.precision import constant_weight
        from symbiote.search import accuracy

        by = {n.name: n for n in prep.graph.nodes}
        options, energy, bits = [], [], []
        for t in targets:
            node = by[t]
            w, axis = np.asarray(constant_weight(node).const), input_axis(node)
            ok = tuple(o for o in OPTIONS if legal(o, w.shape[axis]))
            options.append(ok)
            energy.append([error_energy(w, o, axis) for o in ok])
            bits.append([stored_bits(o, w.shape[axis]) for o in ok])
        width = max((len(o) for o in options), default=1)
        table = lambda rows: np.array([r + [r[-1]] * (width - len(r)) for r in rows], np.float32).reshape(-1, width)  # noqa: E731
        removed, wbits = table(energy), table(bits)
        qbits = wbits.copy()   # relaxed: between "float" and the next option, the next option's bits
        if width > 1:
            qbits[:, 0] = qbits[:, 1]
        coef = PRIOR_COEF * accuracy.CALIBRATION_MARGIN
        if targets and probes.inputs:
            probe = {t: next(o for o in opts if OPTIONS[o][0] == 4) for t, opts in zip(targets, options)}
            loss = 1.0 - accuracy.compare(prep.graph, write_weight_only(prep.graph, probe, 16), probes.inputs).fidelity
            unit = float(sum(e[opts.index(probe[t])] for t, opts, e in zip(targets, options, energy)))
            coef = max(loss, 0.0) / unit * accuracy.CALIBRATION_MARGIN if unit > 0 else 0.0
        rows = tuple(prep.workload.names.index(t) for t in targets)
        return Fitted(self.name, tuple(targets), rows, {"removed": removed, "bits": wbits, "qbits": qbits,
                                                         "coef": np.float32(coef)},
                      tuple(options), tuple(0 for _ in targets))

    def genes(self, fitted: Fitted, net: int, prefix: str, settings: GeneSettings) -> list[Any]:
        return categorical_genes(fitted, net, prefix, self.kind)

    def workload(self, wl: Any, fitted: Fitted, values: jax.Array, hw: Mapping[str, Any]) -> Any:
        from symbiote.backends import datapath
        from symbiote.search.knobs.sparsity import Sparsity

        if not fitted.rows:
            return wl
        dp = datapath.resolve(hw)
        rows = jnp.asarray(fitted.rows)
        given = jnp.asarray(wl.bits_given)
        wb = datapath.row_bits(dp, given, jnp.asarray(wl.weight_bits))
        ab = datapath.row_bits(dp, given, jnp.asarray(wl.act_bits))
        q = Sparsity._interp(fitted.tables["qbits"], values)
        is_q = Sparsity._interp((fitted.tables["bits"] > 0).astype(np.float32), values)
        wb = wb.at[rows].set(is_q * q + (1.0 - is_q) * wb[rows])
        return wl.with_bits(wb, ab, given.at[rows].set(1.0))

    def proxy_loss(self, fitted: Fitted, values: jax.Array) -> jax.Array:
        from symbiote.search.knobs.sparsity import Sparsity

        if not fitted.rows:
            return jnp.float32(0.0)
        return jnp.float32(fitted.tables["coef"]) * jnp.sum(Sparsity._interp(fitted.tables["removed"], values))

    def setting(self, fitted: Fitted, j: int, value: float) -> str:
        return fitted.options[j][int(round(float(value)))]

    def rewrite(self, graph: Any, chosen: Mapping[str, Any], context: RewriteContext) -> Any:
        picked = {k: v for k, v in chosen.items() if v != "float"}
        return write_weight_only(graph, picked, int(context.default_bits)) if picked else graph

    def repair(self, x: Any, default: Any, mine: Any, space: Any) -> list[Any]:
        """Every layer at 4 bits raised to 8 bits (``int8/ch``), then every layer back to ``float``."""
        x = np.array(x, copy=True)
        four = np.array([bool(m) and OPTIONS.get(g.labels[int(v)] if g.labels else "", (0, 0))[0] == 4
                         for m, g, v in zip(mine, space.genes, x)], bool)
        out = []
        if four.any():
            x[four] = list(OPTIONS).index("int8/ch")
            out.append(x.copy())
        return out + reset_step(x, default, mine)


KNOB = WeightOnly()
