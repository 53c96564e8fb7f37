"""Workload rows to the kernels onnxruntime runs (:func:`row_kernels`).

The cost model sees only the Workload, so each kernel is rebuilt from row columns
(:mod:`symbiote.backends.ortcpu.kernels`), and onnxruntime's fusion rules
(:func:`symbiote.backends.ortcpu.fusion.fusion_rules`) are applied to consecutive rows,
whatever fusions the IR's own passes marked (a FREE row is re-examined: onnxruntime, not
the IR, decides what runs as one kernel):

* a MAC row absorbs the rows after it that onnxruntime fuses into it: a bias Add (an
  element-wise row with one activation input and a constant of more than one element, as
  large as the MAC row's output) into a ``matmul`` (``matmul+bias``: it runs as a Gemm), or
  else a Mul by a scalar constant (``matmul+scale``: a FusedMatMul); then an activation
  (``conv+act``, ``gemm+act``; a matmul with a fused bias counts as a Gemm);
* an element-wise Add of two activations absorbs a LayerNormalization after it
  (``add+layernorm``: SkipLayerNormalization);
* an absorbed row costs nothing itself (:attr:`RowPlan.absorbed`).

Rows are rebuilt as follows. MAC rows: ``conv`` with no padding (``H = (P-1)*stride +
dil*(R-1) + 1``: the same output size and MACs); ``gemm`` as a Gemm, ``matmul`` as a MatMul
of a 3-D ``[repeat, M, C]`` input, a batched activation x activation matmul (``w_repeat >
1``) as ``bmm``; ``recurrent`` as an LSTM when ``K`` is a multiple of 4 (hidden ``K/4``),
else a GRU (``K/3``), else an RNN, over ``repeat`` steps. Vector rows, by op kind:
``activation`` (``vec_ops`` 1: Relu, 8 or more: Softmax over a last axis of
:func:`guess_axis` elements, else Tanh); ``elementwise`` (``vec_ops`` 2: Div, 4: Erf, else an
Add of two inputs when the row reads twice what it writes, else a Mul by a scalar);
``norm`` (LayerNormalization over ``weight_elems / 2`` elements: its gamma and beta);
``pool``/``reduce`` (global, ``vec_ops`` = elements read per element written: ReduceMean;
windowed: MaxPool of one ``H x W`` plane, window ``sqrt(vec_ops)``, stride
``sqrt(in/out)``). Memory rows: a Transpose of the larger of input and output (a copy).
FREE views (Reshape, Flatten, Squeeze...): a Reshape node (onnxruntime still runs one);
FREE rows that read no activation (weight-format ops) cost nothing.
The op types of vector rows are guesses from their columns (the Workload keeps no ONNX op
type), and every kernel runs in float32, whatever a row's bits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from symbiote.backends.ortcpu.kernels import Kernel, kernel

MAC, VECTOR, MEMORY, FREE = 0, 1, 2, 3
Row = Mapping[str, float]


@dataclass(frozen=True)
class RowPlan:
    """What a row runs as: its kernel (None: nothing of its own) and whether another row's
    kernel absorbed it."""

    kernel: Kernel | None
    absorbed: bool = False


def _i(x: float) -> int:
    return max(1, int(round(float(x))))


def guess_axis(elems: int, limit: int = 128) -> int:
    """The largest divisor of ``elems`` not above ``limit`` (a guessed last axis)."""
    return max(d for d in range(1, min(elems, limit) + 1) if elems % d == 0)


# ------------------------------------------------------------------ row predicates
def _vectorlike(kind: int, op: str, row: Row) -> bool:
    return kind == VECTOR or (kind == FREE and op not in ("reshape",) and row["in_elems"] > 0)


def _is_act(op: str, row: Row) -> bool:
    return op == "activation" and row["vec_ops"] <= 4


def _one_input(row: Row) -> bool:
    return abs(row["in_elems"] - row["out_elems"]) < 0.5


def _is_bias(op: str, row: Row, out: float) -> bool:
    return op == "elementwise" and row["vec_ops"] == 1 and _one_input(row) and row["weight_elems"] > 1 \
        and abs(row["out_elems"] - out) < 0.5


def _is_scale(op: str, row: Row) -> bool:
    return op == "elementwise" and row["vec_ops"] <= 2 and _one_input(row) and row["weight_elems"] == 1


def _is_add2(op: str, row: Row) -> bool:
    return op == "elementwise" and row["vec_ops"] == 1 and row["in_elems"] >= 2 * row["out_elems"] - 0.5


# ------------------------------------------------------------------ kernels of rows
def mac_kernel(op: str, row: Row, **flags: int) -> Kernel:
    n, k, c, p, q, r, s = (_i(row[f]) for f in ("n", "k", "c", "p", "q", "r", "s"))
    g, rep, wrep = _i(row["groups"]), _i(row["repeat"]), _i(row["w_repeat"])
    if op in ("conv", "conv_transpose"):
        c, k = max(g, c - c % g), max(g, k - k % g)
        return kernel(op, n=n, k=k, c=c, p=p, q=q, r=r, s=s, g=g, sh=_i(row["stride_h"]), sw=_i(row["stride_w"]),
                      dh=_i(row["dil_h"]), dw=_i(row["dil_w"]), act=flags.get("act", 0))
    if op == "recurrent":
        gates = 4 if k % 4 == 0 else (3 if k % 3 == 0 else 1)
        h = max(1, k // gates)
        return kernel({4: "lstm", 3: "gru", 1: "rnn"}[gates], seq=rep, batch=n * p * q, input=max(1, c - h), hidden=h)
    m = n * p * q
    if wrep > 1:
        return kernel("bmm", batch=rep, m=m, c=c, k=k, scale=flags.get("scale", 0))
    if op == "gemm" and rep == 1:
        return kernel("gemm", m=m, c=c, k=k, act=flags.get("act", 0))
    return kernel("matmul", batch=rep, m=m, c=c, k=k, bias=flags.get("bias", 0), scale=flags.get("scale", 0),
                  act=flags.get("act", 0))


def vector_kernel(op: str, row: Row) -> Kernel:
    out, inn, v = _i(row["out_elems"]), _i(row["in_elems"]), float(row["vec_ops"])
    if op == "activation":
        if v >= 8:
            return kernel("softmax", elems=out, axis=guess_axis(out))
        return kernel("relu" if v <= 1 else "tanh", elems=out)
    if op == "elementwise":
        two = inn >= 2 * out
        name = {2.0: "div", 4.0: "erf"}.get(v, "add" if two else "mul")
        return kernel(name, elems=out) if name == "erf" else kernel(name, elems=out, inputs=2 if two else 1)
    if op == "norm":
        h = max(1, int(round(float(row["weight_elems"]) / 2)))
        return kernel("layernorm", elems=out, axis=h if out % h == 0 else guess_axis(out))
    ratio = max(1, int(round(inn / out)))
    if op == "reduce" or (op == "pool" and abs(v - inn / out) < 0.5):
        return kernel("reduce_mean", rows=out, axis=ratio)
    if op == "pool":
        win, stride = max(1, int(round(math.sqrt(v)))), max(1, int(round(math.sqrt(ratio))))
        side = max(win, int(round(math.sqrt(inn))))
        return kernel("maxpool", h=side, w=max(win, inn // side), win=win, stride=stride)
    return kernel("relu", elems=out)


def row_kernels(cols: Mapping[str, Sequence[float]], ops: Sequence[str], kinds: Sequence[int],
                rules: frozenset[str]) -> list[RowPlan]:
    """Each row's :class:`RowPlan` (module doc). ``cols``: the rows' columns; ``rules``:
    :func:`symbiote.backends.ortcpu.fusion.fusion_rules`."""
    n = len(ops)
    rows = [{f: float(cols[f][i]) for f in cols} for i in range(n)]
    plans: list[RowPlan] = [RowPlan(None)] * n
    i = 0
    while i < n:
        row, op, kind = rows[i], ops[i], kinds[i]
        j = i + 1
        if kind == MAC:
            flags: dict[str, int] = {}
            if op == "matmul" and j < n and "matmul+bias" in rules and _is_bias(ops[j], rows[j], row["out_elems"]):
                flags["bias"], j = 1, j + 1
            if op == "matmul" and not flags and j < n and "matmul+scale" in rules and _is_scale(ops[j], rows[j]):
                flags["scale"], j = 1, j + 1
            family = "gemm" if op == "gemm" or flags.get("bias") else op
            if j < n and f"{family}+act" in rules and _is_act(ops[j], rows[j]):
                flags["act"], j = 1, j + 1
            plans[i] = RowPlan(mac_kernel(op, row, **flags))
        elif kind == FREE and op == "reshape":
            plans[i] = RowPlan(kernel("reshape", elems=_i(row["out_elems"])))
        elif _vectorlike(kind, op, row):
            if j < n and "add+layernorm" in rules and _is_add2(op, row) and ops[j] == "norm":
                h = max(1, int(round(rows[j]["weight_elems"] / 2)))
                out = _i(row["out_elems"])
                plans[i], j = RowPlan(kernel("skip_layernorm", elems=out, axis=h if out % h == 0 else guess_axis(out))), j + 1
            else:
                plans[i] = RowPlan(vector_kernel(op, row))
        elif kind == MEMORY:
            plans[i] = RowPlan(kernel("copy", elems=_i(max(row["in_elems"], row["out_elems"]))))
        for a in range(i + 1, j):
            plans[a] = RowPlan(None, absorbed=True)
        i = j
    return plans
