"""A small synthetic co-design problem, for tests and for trying the search offline.

A toy systolic array (rows, cols: powers of two; a buffer size; a dataflow) runs a
few GEMM layers whose widths are model knobs; latency has the ceil() tiling
quantization of a real array, energy grows with buffer misses, area with the array.
``relaxed`` replaces ceil by a smooth upper bound so gradients exist.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from symbiote.search.genome import Gene, GenomeSpace, make_hw_gene, width_grid
from symbiote.search.objectives import parse_constraints, parse_objectives
from symbiote.search.problem import Problem

_LAYERS = ((64, 3 * 9, 1024), (128, 64 * 9, 256), (256, 128 * 9, 64), (10, 256, 1))  # (K, C, P)


def _cost(v: jnp.ndarray, n_layers: int, smooth: bool, nets: int) -> dict[str, jnp.ndarray]:
    rows, cols, buf_kb, flow = v[0], v[1], v[2], v[3]
    w = v[4: 4 + (n_layers - 1) * nets].reshape(nets, n_layers - 1)
    ceil = (lambda x: x + 0.5 * (jnp.sqrt((x - jnp.round(x)) ** 2 + 1e-2) + 0.5)) if smooth else jnp.ceil
    lat = []
    en = []
    keep = []
    for n in range(nets):
        widths = [w[n, i] for i in range(n_layers - 1)]
        t_cyc = 0.0
        e = 0.0
        c_prev = _LAYERS[0][1]
        kept = 1.0
        for i, (k0, c0, p) in enumerate(_LAYERS):
            k = widths[i] if i < n_layers - 1 else k0
            c = c0 if i == 0 else c_prev * (c0 // _LAYERS[i - 1][0])
            folds = ceil(k / rows) * ceil(c / cols)
            df = jnp.where(flow == 0, 1.0, jnp.where(flow == 1, 1.15, 0.9 + 0.2 * (k > c)))
            t_cyc = t_cyc + folds * (p + rows + cols) * df
            traffic = (k * c + c * p + k * p) * (1 + 4096.0 / (buf_kb * 64 + 1.0))
            e = e + k * c * p * 0.2 + traffic * 2.0
            if i < n_layers - 1:
                kept = kept * jnp.minimum(k / k0, 1.0) ** 0.05
            c_prev = k
        lat.append(t_cyc / 1e9)
        en.append(e + (rows * cols * 0.01 + buf_kb * 0.02) * t_cyc)
        keep.append(kept)
    area = rows * cols * 0.0025 + buf_kb * 0.01 + 0.2
    latency = jnp.stack(lat)
    return {"latency_s": latency, "energy_pj": jnp.stack(en), "area_mm2": jnp.broadcast_to(area, latency.shape),
            "fidelity": jnp.stack(keep)}


@functools.lru_cache(maxsize=16)
def synthetic_problem(objectives=("edp",), constraints=("area_mm2<=4",), networks: int = 1,
                      channels: bool = True) -> Problem:
    genes = [make_hw_gene("rows", [2.0 ** i for i in range(2, 8)], 16),
             make_hw_gene("cols", [2.0 ** i for i in range(2, 8)], 16),
             make_hw_gene("buffer_kb", [16, 32, 64, 128, 256, 512], 64),
             make_hw_gene("dataflow", (), "os", categorical_labels=("os", "ws", "is"))]
    names = tuple(f"net{n}" for n in range(networks))
    for n in range(networks):
        for i, (k0, _, _) in enumerate(_LAYERS[:-1]):
            vals = width_grid(k0) if channels else (float(k0),)
            genes.append(Gene(f"net{n}/width/layer{i}", vals, vals.index(float(k0)), "width", n, key=f"layer{i}"))
    space = GenomeSpace(tuple(genes), names)
    nl = len(_LAYERS)
    return Problem(space, lambda v: _cost(v, nl, False, networks), lambda v: _cost(v, nl, True, networks),
                   parse_objectives(objectives), parse_constraints(constraints), names)


def enumerate_optimum(problem: Problem) -> tuple[np.ndarray, float]:
    """Brute force over every legal genome (small spaces only): (best genome, best log obj0)."""
    from symbiote.search.problem import Evaluator

    sizes = problem.space.sizes
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))
    obj, viol = Evaluator(problem)(grid.astype(np.int32))
    o = np.where(viol <= 0, obj[:, 0], np.inf)
    i = int(np.argmin(o))
    return grid[i], float(o[i])
