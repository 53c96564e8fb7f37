"""The ``precision`` model knob: the bit-width of every MAC layer, weights and activations.

* **Targets**: the layers ``set-precision`` writes at a bit-width
  (:func:`symbiote.passes.precision.quantizable`: Conv, ConvTranspose, Gemm, MatMul; never a
  recurrent layer) that the Workload prices once (not a body repeated over time): what is
  priced is what is checked.
* **Genes**: one per layer over ``--bits`` (default 4, 5, 6, 8, 16) plus the held
  datapath's width; the default is the datapath's width (the model as given runs at it).
* **Cost**: ``Workload.with_bits`` on the target rows (weights and activations), marked given.
* **Proxy**: quantizing a layer adds noise; layer ``l`` at ``b`` bits costs
  ``c_l * exp(k_l * (b - 4))`` of fidelity, ``c_l`` and ``k_l`` measured in onnxruntime
  (:mod:`symbiote.search.sensitivity`: the layer alone quantized to 4 and to 6 bits,
  weights and activations, as ``set-precision`` does), scaled so that every layer quantized
  at once to 5 and to 6 bits is priced at least at its measured loss, times
  :data:`LAYER_MARGIN`. Without samples, the prior ``BITS_COEF * quant_noise(b)`` per layer.
  :func:`quant_noise` is a b-bit uniform quantizer's relative noise energy over +-4 sigma
  (Widrow & Kollar, "Quantization Noise", 2008, ch. 4); :func:`qdq_noise` how the noise of
  ``set-precision``'s quantizer (step ``max|w| / (2^(b-1) - 1)``) scales with ``b``.
* **Pass**: ``set-precision(layers={layer: bits}, export_qdq=true, act_ranges=...)`` with
  activation ranges measured on the model the earlier knobs left, over the calibration
  samples (static post-training calibration); layers without a gene at the datapath's bits.
* **Repair**: the lowest bit-widths below the original raised one grid step at a time
  (4 -> 5 bits, then 5 -> 6, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.search.knobs import Fitted, GeneSettings, Prepared, Probes, RewriteContext

#: the prior coefficient of the uniform noise law (fitted on the zoo's resnet50 and
#: mobilenet_v2 against onnxruntime: measured 0.037-0.088)
BITS_COEF = 0.09
#: safety factor on the per-layer fit (already fitted, pessimistically, to joint probes)
LAYER_MARGIN = 1.1
#: bit-widths of the joint probes (every layer at once) that scale the per-layer fit
JOINT_PROBE_BITS = (5, 6)
#: the two single-layer probes
PROBE_BITS = 4
SECOND_BITS = 6


def quant_noise(bits):
    """Relative noise energy of a b-bit uniform quantizer over +-4 sigma (see the module doc)."""
    return (64.0 / 12.0) * 2.0 ** (-2.0 * bits)


def qdq_noise(bits):
    """How the noise energy of ``set-precision``'s quantizer scales with the bit-width: its
    step is ``max|w| / (2^(b-1) - 1)`` and uniform rounding noise has energy step^2 / 12
    (Widrow & Kollar 2008, ch. 4), so per layer it is ``c_l / (2^(b-1) - 1)^2``."""
    return 1.0 / (2.0 ** (bits - 1.0) - 1.0) ** 2


def fit_layer_coefs(graph, layer_names: Sequence[str], inputs: list[dict], probe_bits: int = PROBE_BITS,
                    second_bits: int = SECOND_BITS, joint_bits: Sequence[int] = JOINT_PROBE_BITS,
                    range_inputs: list[dict] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-layer loss laws (see the module doc): each layer's measured loss at ``probe_bits``
    (``c_l``) and at ``second_bits`` give its decay per bit ``k_l`` (never much steeper than
    the quantizer's own law, :func:`qdq_noise`: that would be optimistic); all ``c_l`` are
    then scaled so that the sum is at least the measured loss of every layer quantized at
    once to each of ``joint_bits``, times :data:`LAYER_MARGIN`. Layers without a constant
    weight get the mean. Returns (c_l, k_l, an equivalent uniform coefficient)."""
    from symbiote.search import sensitivity as sens

    weights = sens.layer_weights(graph, layer_names)
    prober = sens.Prober(graph, weights, inputs, sens.activation_ranges(graph, layer_names, range_inputs or inputs))
    lo = sens.layer_sensitivities(graph, layer_names, inputs, probe_bits, prober=prober).loss
    hi = sens.layer_sensitivities(graph, layer_names, inputs, second_bits, prober=prober).loss
    law = float(np.log(qdq_noise(np.float32(second_bits)) / qdq_noise(np.float32(probe_bits)))) / (second_bits - probe_bits)
    ok = np.isfinite(lo) & np.isfinite(hi) & (lo > 0) & (hi > 0)
    decay = np.where(ok, np.log(np.where(ok, hi, 1.0) / np.where(ok, lo, 1.0)) / (second_bits - probe_bits), law)
    decay = np.clip(decay, 1.35 * law, 0.0)  # never steeper than ~the quantizer's law (optimistic)
    fill = float(np.mean(lo[np.isfinite(lo)])) if np.isfinite(lo).any() else BITS_COEF * float(quant_noise(probe_bits))
    c = np.where(np.isfinite(lo), lo, fill)
    scale = 1.0  # never below the single-layer measurements
    for jb in joint_bits:
        over = prober.quantized(layer_names, int(jb), weights)
        pred = float(np.sum(c * np.exp(decay * (jb - probe_bits))))
        if over and pred > 0:
            scale = max(scale, prober.loss(over) / pred)
    coefs = (c * scale * LAYER_MARGIN).astype(np.float32)
    return coefs, decay.astype(np.float32), float(coefs.sum() / float(np.sum(quant_noise(np.full(len(c), float(probe_bits))))))


def layer_losses(tables: Mapping[str, Any], bits: jax.Array) -> jax.Array:
    """Per-layer fidelity loss at ``bits`` from a fit's tables (``coefs``/``decay``/``ref_bits``,
    or the uniform ``bits_coef`` prior)."""
    if tables.get("coefs") is None:
        return jnp.float32(tables["bits_coef"]) * quant_noise(bits)
    c = jnp.asarray(tables["coefs"], jnp.float32)
    if tables.get("decay") is None:
        return c * qdq_noise(bits)
    return c * jnp.exp(jnp.asarray(tables["decay"], jnp.float32) * (bits - float(tables["ref_bits"])))


class Precision:
    name = "precision"
    kind = "bits"
    order = 2
    doc = "the bit-width of every MAC layer, weights and activations"

    def targets(self, prep: Prepared) -> tuple[str, ...]:
        from symbiote.ir import ops
        from symbiote.ir.workload import MAC
        from symbiote.passes.precision import quantizable

        wl = prep.workload
        knobbed = {n.name for n in prep.graph.nodes if n.op in ops.COMPUTE and quantizable(n)}
        kinds, rep = np.asarray(wl.kind), np.asarray(wl.w_repeat)
        return tuple(n for i, n in enumerate(wl.names) if kinds[i] == MAC and n in knobbed and float(rep[i]) == 1.0)

    def fit(self, prep: Prepared, targets: Sequence[str], probes: Probes) -> Fitted:
        rows = tuple(prep.workload.names.index(t) for t in targets)
        tables: dict[str, Any] = {"bits_coef": np.float32(BITS_COEF), "coefs": None, "decay": None,
                                  "ref_bits": float(PROBE_BITS)}
        if targets and probes.inputs:
            coefs, decay, b = fit_layer_coefs(prep.graph, targets, probes.inputs,
                                              range_inputs=probes.ranges or probes.inputs)
            tables.update(coefs=coefs, decay=decay, bits_coef=np.float32(b))
        return Fitted(self.name, tuple(targets), rows, tables)

    def genes(self, fitted: Fitted, net: int, prefix: str, settings: GeneSettings) -> list[Any]:
        from symbiote.search.genome import Gene

        bits = tuple(sorted(set(settings.bits) | ({settings.datapath_bits} if settings.datapath_bits else set())))
        # the model as given runs at the datapath's precision (8 bits without a datapath knob)
        base = settings.datapath_bits or (8 if 8 in bits else bits[len(bits) // 2])
        return [Gene(f"{prefix}/bits/{t}", tuple(float(b) for b in bits), bits.index(base), self.kind, net, key=t)
                for t in fitted.targets]

    def workload(self, wl: Any, fitted: Fitted, values: jax.Array, hw: Mapping[str, Any] | None = None) -> Any:
        rows = jnp.asarray(fitted.rows)
        wb = jnp.asarray(wl.weight_bits).at[rows].set(values)
        ab = jnp.asarray(wl.act_bits).at[rows].set(values)
        return wl.with_bits(wb, ab, jnp.asarray(wl.bits_given).at[rows].set(1.0))

    def proxy_loss(self, fitted: Fitted, values: jax.Array) -> jax.Array:
        if not fitted.targets:
            return jnp.float32(0.0)
        return jnp.sum(layer_losses(fitted.tables, values))

    def setting(self, fitted: Fitted, j: int, value: float) -> int:
        return int(round(float(value)))

    def rewrite(self, graph: Any, chosen: Mapping[str, Any], context: RewriteContext) -> Any:
        """``set-precision`` at the chosen bits (others at ``context.default_bits``), with QDQ
        weights and, given calibration inputs, QDQ activations whose ranges are measured on
        ``graph`` (the model the earlier knobs left) over them."""
        from symbiote.passes.precision import SetPrecision
        from symbiote.search.sensitivity import activation_ranges

        layers = {k: int(v) for k, v in chosen.items()}
        low = [k for k, b in layers.items() if b <= 8]
        ranges = activation_ranges(graph, low, context.inputs) if context.inputs is not None and low else None
        return SetPrecision(default=int(context.default_bits), layers=layers, export_qdq=True,
                            act_ranges=dict(ranges) if ranges else None)(graph).graph

    def repair(self, x: Any, default: Any, mine: Any, space: Any) -> list[Any]:
        """The lowest precision below the original raised one step at a time."""
        x = np.array(x, copy=True)
        out = []
        while (x[mine] < default[mine]).any():
            below = mine & (x < default)
            vals = np.asarray(space.decode(x))
            low = below & (vals == vals[below].min())
            x[low] += 1
            out.append(x.copy())
        return out


KNOB = Precision()
