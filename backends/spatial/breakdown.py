"""The chosen mapping of each MAC layer, for ``symbiote cost --mappings`` and cross-checks:
:func:`breakdown` (the ``spatial`` template's ``mappings``)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.backends import datapath
from symbiote.backends.common import Rows
from symbiote.backends.spatial import mapping, reuse
from symbiote.backends.spatial.model import FIELDS, acc_bits, choose, flatten, mac_rows
from symbiote.backends.spatial.space import DIMS
from symbiote.ir.workload import Workload

FIT_NAMES = ("RF weights (rf_weight_bytes)", "RF inputs (rf_input_bytes)", "RF partial sums (rf_psum_bytes)",
             "global buffer (glb_*_kb)")


def _reason(fits: np.ndarray) -> str:
    """Why no candidate of a row is valid: the tiles that never fit, else that no candidate
    fits every tile at once."""
    never = [name for j, name in enumerate(FIT_NAMES) if not fits[:, j].any()]
    if never:
        return "no candidate mapping fits: even the smallest tile exceeds the " + ", ".join(never)
    return "no candidate mapping fits its RF and GLB tiles at once"


LEVELS = ("rf", "sp", "glb", "dram")


def candidate_factors(fxs, n_rows: int, j: int, index: int) -> dict[str, list[float]]:
    """Per level (:data:`LEVELS`), the 8 factors (DIMS order) of candidate ``index``
    (:func:`.model.flatten`'s order: ``slot * pairs + pair``) of MAC row ``j`` of ``n_rows``
    (``fxs``: :func:`.mapping.factors`' per-pair factors)."""
    slot, pair = divmod(index, len(fxs))
    return {lvl: [float(np.broadcast_to(np.asarray(x, np.float64), (n_rows, mapping.SLOTS))[j, slot])
                  for x in getattr(fxs[pair], lvl)] for lvl in LEVELS}


def breakdown(hw: Mapping[str, jax.Array], wl: Workload) -> dict:
    """Per workload row (MAC rows: ``is_mac`` = 1): the chosen mapping (``candidate`` index,
    ``slot``, ``split``, ``cls``, its factors ``<level>_<dim>`` for levels rf, sp, glb, dram,
    and ``loop_nest``, the readable nest of :func:`.mapping.describe`), ``feasible`` with the
    ``reason`` when not, ``valid_candidates`` of ``candidates``, the access counts of
    :class:`.reuse.Accesses` (elements), DRAM bytes per operand, cycles and energies."""
    rs = Rows(wl)
    _, fxs, accs, pairs = mac_rows(hw, wl, rs.mac, hw["dataflow"])
    ch = choose(pairs)
    cd = flatten(pairs)
    idx = np.asarray(ch.index)
    n = len(rs.mac)
    slot, pair = np.divmod(idx, mapping.N_SPLITS * mapping.N_CLASSES)
    split, cls = np.divmod(pair, mapping.N_CLASSES)

    def pick(per_pair) -> np.ndarray:
        """The chosen candidate's value of a per-pair quantity (``per_pair[pair]``: ``[L, SLOTS]``)."""
        out = np.empty(n)
        for j in range(n):
            x = np.broadcast_to(np.asarray(per_pair[pair[j]], np.float64), (n, mapping.SLOTS))
            out[j] = x[j, slot[j]]
        return out

    per = lambda x: np.asarray(rs.assemble(jnp.asarray(x, jnp.float32), 0.0), np.float64)  # noqa: E731
    out: dict = {"is_mac": per(np.ones(n)), "candidates": mapping.N_CANDIDATES,
                 "valid_candidates": per(np.asarray(cd.valid).sum(-1)), "feasible": per(np.asarray(ch.feasible)),
                 "candidate": per(idx)}
    out.update(slot=per(slot), split=per(split), cls=per(cls))
    per_row = [candidate_factors(fxs, n, j, int(idx[j])) for j in range(n)]
    picked = {lvl: [np.array([f[lvl][d] for f in per_row]) for d in range(8)] for lvl in LEVELS}
    for lvl, xs in picked.items():
        for d, x in enumerate(xs):
            out[f"{lvl}_{DIMS[d]}"] = per(x)
    acc = {f: pick([getattr(a, f) for a in accs]) for f in reuse.Accesses._fields}
    for f, x in acc.items():
        out[f] = per(x)
    for f in FIELDS:
        out[f] = per(np.asarray(getattr(ch, f)))
    bits = datapath.resolve(hw)
    m = rs.mac
    wb = np.asarray(datapath.row_bits(bits, wl.bits_given[m], wl.weight_bits[m]), np.float64)
    ab = np.asarray(datapath.row_bits(bits, wl.bits_given[m], wl.act_bits[m]), np.float64)
    accb = np.asarray(acc_bits(hw, wb, ab), np.float64)
    in_d, out_d = 1.0 - np.asarray(wl.input_on_chip[m]), 1.0 - np.asarray(wl.output_on_chip[m])
    out["dram_filter_bytes"] = per(acc["dram_w"] * wb / 8.0)
    out["dram_ifmap_bytes"] = per(acc["dram_i"] * ab / 8.0 * in_d)
    out["dram_ofmap_bytes"] = per(acc["outputs"] * ab / 8.0 * out_d)
    out["dram_psum_bytes"] = per(2.0 * acc["dram_psum_reads"] * accb / 8.0)
    out["compulsory_bytes"] = per((np.asarray(wl.weight_elems[m]) * wb + np.asarray(wl.in_elems[m]) * ab * in_d
                                   + np.asarray(wl.out_elems[m]) * ab * out_d) / 8.0)
    out["compute_cycles"], out["latency_cycles"] = out.pop("compute"), out.pop("latency")
    out["macs"] = per(np.asarray(wl.macs[m]))
    df = int(np.asarray(jnp.round(hw["dataflow"])))
    fits = np.asarray(cd.fits)
    nests, reasons = [""] * len(wl), [""] * len(wl)
    for j, row in enumerate(m):
        f = {lvl: [xs[d][j] for d in range(8)] for lvl, xs in picked.items()}
        if bool(np.asarray(ch.feasible)[j]):
            nests[row] = mapping.describe(mapping.UNROLL_NAMES[df][slot[j]], int(split[j]), int(cls[j]), f)
        else:
            nests[row], reasons[row] = "infeasible", _reason(fits[j])
    out["loop_nest"], out["reason"] = nests, reasons
    return out
