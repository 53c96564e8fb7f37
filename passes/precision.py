"""``set-precision``: per-layer weight/activation bit-widths for the cost models.

Every compute layer (Conv, ConvTranspose, Gemm, MatMul, LSTM/GRU/RNN) gets
``meta["weight_bits"]`` and ``meta["act_bits"]``: ``default`` unless ``layers={node:
bits}`` names it. The model stays float (exact). With ``export_qdq=true`` every constant
weight of a layer at <= 8 bits is routed through a QuantizeLinear/DequantizeLinear pair
(int8 storage, symmetric per-tensor scale = max|w| / (2^(bits-1) - 1)), which
onnxruntime runs; activations are not quantized (no calibration data).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from symbiote.errors import PassError
from symbiote.ir import ops
from symbiote.ir.graph import Graph, Node, Value
from symbiote.passes.base import Pass

_WEIGHT_SLOT = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}


def _qdq_weight(graph: Graph, node: Node, w: Value, bits: int) -> None:
    qmax = 2 ** (bits - 1) - 1
    amax = float(np.abs(w.const).max()) if w.const.size else 0.0
    scale = np.asarray(amax / qmax if amax > 0 else 1.0, dtype=w.const.dtype)
    s = graph.add_const(f"{w.name}.scale", scale)
    zp = graph.add_const(f"{w.name}.zero_point", np.asarray(0, dtype=np.int8))
    q = graph.add_node(ops.ELEMENTWISE, "QuantizeLinear", [w, s, zp], [f"{w.name}.quantized"], name=f"{node.name}.weight_quant", before=node)
    q.outputs[0].shape, q.outputs[0].dtype = w.shape, "int8"
    dq = graph.add_node(ops.ELEMENTWISE, "DequantizeLinear", [q.outputs[0], s, zp], [f"{w.name}.dequantized"], name=f"{node.name}.weight_dequant", before=node)
    dq.outputs[0].shape, dq.outputs[0].dtype = w.shape, w.dtype
    node.set_input(_WEIGHT_SLOT[node.onnx_op], dq.outputs[0])


@dataclass(frozen=True)
class SetPrecision(Pass):
    """Annotate weight/activation bit-widths; optionally export weight QDQ pairs."""

    default: int = 8
    layers: dict[str, int] | None = None
    act_bits: int | None = None
    export_qdq: bool = False

    name: ClassVar[str] = "set-precision"

    @property
    def exact(self) -> bool:  # type: ignore[override]
        return not self.export_qdq

    def __post_init__(self) -> None:
        for where, b in [("default", self.default), ("act_bits", self.act_bits), *((f"layers[{k}]", v) for k, v in (self.layers or {}).items())]:
            if b is not None and not 1 <= b <= 32:
                raise PassError(f"set-precision: {where} must be between 1 and 32 bits, got {b}")

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        compute = [n for n in graph.nodes if n.op in ops.COMPUTE]
        names = {n.name for n in compute}
        for k in self.layers or {}:
            if k not in names:
                close = difflib.get_close_matches(k, sorted(names), n=3, cutoff=0.6)
                hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                raise PassError(f"set-precision: no compute layer named {k!r}{hint}")
        qdq = 0
        for n in compute:
            bits = (self.layers or {}).get(n.name, self.default)
            n.meta["weight_bits"] = int(bits)
            n.meta["act_bits"] = int(self.act_bits if self.act_bits is not None else bits)
            slot = _WEIGHT_SLOT.get(n.onnx_op)
            w = n.input(slot) if slot is not None else None
            if self.export_qdq and bits <= 8 and w is not None and w.is_const and w.dtype in ("float32", "float16"):
                _qdq_weight(graph, n, w, bits)
                qdq += 1
        return bool(compute), {"layers": len(compute), "qdq_pairs": qdq}
