"""How a convolution or GEMM maps onto a rows x cols systolic array, as SCALE-Sim 3.0.0 maps it.

im2col turns a layer into a GEMM: ``px`` output pixels (N*P*Q) by ``window`` (R*S*C/groups)
times ``window`` by ``filters`` (K/groups). The dataflow decides which GEMM dims are spatial
(``Sr`` along the rows, ``Sc`` along the columns) and which one is temporal (``T``), as in
SCALE-Sim's ``topology_utils.calc_spatio_temporal_params`` (Samajdar et al., ISPASS 2020):

=========  ========  ========  ========
dataflow   Sr        Sc        T
=========  ========  ========  ========
os         px        filters   window
ws         window    filters   px
is         window    px        filters
=========  ========  ========  ========

The array runs ``ceil(Sr/rows) * ceil(Sc/cols)`` folds, one after the other. Cycles per fold
as SCALE-Sim 3.0.0's demand matrices count them (``compute/systolic_compute_{os,ws,is}.py``):

* os: ``rows + cols + T - 2`` (operands skewed in, results drained; no weight preload. The
  SCALE-Sim paper writes ``2*rows + cols + T - 2`` for OS too: the code does not, and this
  template follows the code -- quirk 2),
* ws, is: ``2*rows + cols + T - 2`` (``rows`` cycles to preload the stationary operand).

**Formula used by symbiote** (``SCALESIM_REPORT_OFFSET``): ``compute_cycles = folds * per_fold``,
the full pipeline including the last drain cycle. SCALE-Sim's reported ``Total Cycles``
minus ``Stall Cycles`` is exactly one less (quirk 1: its ``total_cycles`` is the index of
the last serviced cycle). tests/backends/test_scalesim_identity.py checks
``symbiote == scalesim_total - scalesim_stall + 1`` on every recorded layer.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

#: symbiote's compute cycles minus SCALE-Sim 3.0.0's (total - stall): quirk 1, see the module doc
SCALESIM_REPORT_OFFSET = 1

DATAFLOWS = ("os", "ws", "is")
OS, WS, IS = 0, 1, 2


def spatio_temporal(px, window, filters, df):
    """(Sr, Sc, T) for a dataflow index ``df`` (0 os, 1 ws, 2 is); works on arrays (jnp.where)."""
    sr = jnp.where(df == OS, px, window)
    sc = jnp.where(df == IS, px, filters)
    t = jnp.where(df == OS, window, jnp.where(df == WS, px, filters))
    return sr, sc, t


def fold_cycles(rows, cols, t, df):
    """Cycles of one fold: rows + cols + T - 2 (os) or 2*rows + cols + T - 2 (ws, is)."""
    return jnp.where(df == OS, 0.0, rows) + rows + cols + t - 2.0


def compute_cycles_np(px: int, window: int, filters: int, rows: int, cols: int, df: str) -> int:
    """The same closed form in plain Python integers (for scripts and tests)."""
    sr, sc, t = {"os": (px, filters, window), "ws": (window, filters, px), "is": (window, px, filters)}[df]
    per_fold = rows + cols + t - 2 + (0 if df == "os" else rows)
    return math.ceil(sr / rows) * math.ceil(sc / cols) * per_fold
