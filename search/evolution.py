"""Evolution phase: explicit ``init / ask / tell`` with NSGA-II selection.

Genomes are legal index vectors (``int32[P, D]``, see :mod:`symbiote.search.genome`).
``ask`` draws parents by binary tournament (rank, then crowding distance), recombines
them (uniform crossover) and mutates knob-wise on the legal grid (a small step to a
neighbouring value, or a fresh uniform draw). ``tell`` merges parents and offspring
and keeps the best by *constrained* non-dominated sorting (Deb et al., "A fast and
elitist multiobjective genetic algorithm: NSGA-II", IEEE TEC 2002: a feasible design
beats an infeasible one, two infeasible ones compare by violation) and crowding.
With one objective this reduces to sorting by (violation, objective).

Every random choice comes from the PRNG key passed in; the state is plain arrays,
so a checkpoint is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from symbiote.search.genome import GenomeSpace


def rng(key: jax.Array) -> np.random.Generator:
    """A numpy generator derived deterministically from a JAX PRNG key."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key), np.uint32).ravel().tolist())


@dataclass(frozen=True)
class Population:
    genomes: np.ndarray   # int32[P, D]
    obj: np.ndarray       # f64[P, K]  (log objectives, minimized)
    viol: np.ndarray      # f64[P]     (0 = feasible)


def dominance(obj: np.ndarray, viol: np.ndarray) -> np.ndarray:
    """dom[i, j]: design i constrained-dominates design j."""
    feas = viol <= 0
    le = (obj[:, None, :] <= obj[None, :, :]).all(-1)
    lt = (obj[:, None, :] < obj[None, :, :]).any(-1)
    both = feas[:, None] & feas[None, :]
    dom = both & le & lt
    dom |= feas[:, None] & ~feas[None, :]
    dom |= (~feas[:, None] & ~feas[None, :]) & (viol[:, None] < viol[None, :])
    return dom


def nondominated_ranks(obj: np.ndarray, viol: np.ndarray) -> np.ndarray:
    """Front index of each design (0 = non-dominated)."""
    n = obj.shape[0]
    if obj.shape[1] == 1:  # one objective: a total order by (violation, objective)
        order = np.lexsort((obj[:, 0], viol))
        key = np.stack([viol[order], np.where(viol[order] > 0, 0.0, obj[order, 0])], 1)
        ranks = np.empty(n, np.int64)
        r, prev = -1, None
        for pos, i in enumerate(order):
            k = tuple(key[pos])
            if k != prev:
                r, prev = r + 1, k
            ranks[i] = r
        return ranks
    dom = dominance(obj, viol)
    count = dom.sum(0)
    ranks = np.full(n, -1, np.int64)
    r = 0
    remaining = np.ones(n, bool)
    while remaining.any():
        front = remaining & (count == 0)
        if not front.any():  # numerical ties: put the rest in one front
            front = remaining
        ranks[front] = r
        remaining &= ~front
        count = count - dom[front].sum(0)
        r += 1
    return ranks


def crowding(obj: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    n, k = obj.shape
    d = np.zeros(n)
    for r in np.unique(ranks):
        ix = np.flatnonzero(ranks == r)
        if ix.size <= 2:
            d[ix] = np.inf
            continue
        for j in range(k):
            o = obj[ix, j]
            order = np.argsort(o, kind="stable")
            lo, hi = o[order[0]], o[order[-1]]
            span = hi - lo if np.isfinite(lo) and np.isfinite(hi) else np.inf  # an infeasible design costs inf
            d[ix[order[0]]] = d[ix[order[-1]]] = np.inf
            if span > 0 and np.isfinite(span):
                d[ix[order[1:-1]]] += (o[order[2:]] - o[order[:-2]]) / span
    return d


def select(obj: np.ndarray, viol: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n best designs (rank, then crowding), best first."""
    ranks = nondominated_ranks(obj, viol)
    cd = crowding(obj, ranks)
    order = np.lexsort((-cd, ranks))
    return order[:n]


def pareto_mask(obj: np.ndarray, viol: np.ndarray) -> np.ndarray:
    """Feasible, non-dominated designs (duplicates of objectives kept once)."""
    feas = viol <= 0
    m = np.zeros(obj.shape[0], bool)
    if not feas.any():
        return m
    ix = np.flatnonzero(feas)
    dom = dominance(obj[ix], viol[ix])
    nd = ~dom.any(0)
    _, first = np.unique(obj[ix][nd], axis=0, return_index=True)
    m[ix[np.flatnonzero(nd)[first]]] = True
    return m


def init(key: jax.Array, space: GenomeSpace, size: int, seeds: np.ndarray | None = None) -> np.ndarray:
    """Initial genomes: the given seeds (e.g. gradient results), then uniform random."""
    rand = space.sample_anchored(key, size)
    if seeds is None or len(seeds) == 0:
        return rand
    seeds = np.asarray(seeds, np.int32)[:size]
    return np.concatenate([seeds, rand[: size - len(seeds)]])


def mutate(g: np.random.Generator, genomes: np.ndarray, space: GenomeSpace, rate: float | np.ndarray,
           local: float = 0.7) -> np.ndarray:
    sizes = space.sizes
    n, d = genomes.shape
    out = genomes.copy()
    hit = g.random((n, d)) < np.broadcast_to(np.asarray(rate, float), (d,))[None, :]
    none = ~hit.any(1)
    hit[none, g.integers(0, d, none.sum())] = True  # at least one knob changes
    step = g.geometric(0.5, (n, d)) * np.where(g.random((n, d)) < 0.5, -1, 1)
    uniform = np.floor(g.random((n, d)) * sizes).astype(np.int32)
    is_local = (g.random((n, d)) < local) & ~space.categorical[None, :]
    new = np.where(is_local, np.clip(out + step, 0, sizes - 1), uniform)
    return np.where(hit, new, out).astype(np.int32)


def ask(key: jax.Array, pop: Population, space: GenomeSpace, n: int, *, crossover: float = 0.9,
        mutation_rate: float | None = None) -> np.ndarray:
    """n offspring genomes from the population."""
    g = rng(key)
    p = pop.genomes.shape[0]
    ranks = nondominated_ranks(pop.obj, pop.viol)
    cd = crowding(pop.obj, ranks)

    def tournament(m: int) -> np.ndarray:
        a, b = g.integers(0, p, m), g.integers(0, p, m)
        better_a = (ranks[a] < ranks[b]) | ((ranks[a] == ranks[b]) & (cd[a] >= cd[b]))
        return np.where(better_a, a, b)

    pa, pb = pop.genomes[tournament(n)], pop.genomes[tournament(n)]
    mix = (g.random(pa.shape) < 0.5) & (g.random((n, 1)) < crossover)
    child = np.where(mix, pb, pa)
    rate = mutation_rate if mutation_rate is not None else mutation_rates(space)
    return mutate(g, child, space, rate)


def mutation_rates(space: GenomeSpace, expected: float = 1.5) -> np.ndarray:
    """Per-knob mutation probability: each kind of knob (hardware, widths, bits) gets
    ``expected / kinds`` mutations per child on average, however many knobs it has."""
    kinds = np.array([g.kind for g in space.genes])
    uniq = np.unique(kinds)
    rate = np.zeros(space.dim)
    for k in uniq:
        m = kinds == k
        rate[m] = min(1.0, expected / len(uniq) / m.sum() * (1.5 if k == "hw" else 1.0))
    return rate


def tell(pop: Population, genomes: np.ndarray, obj: np.ndarray, viol: np.ndarray, size: int) -> Population:
    """Merge offspring into the population, keeping ``size`` distinct designs."""
    G = np.concatenate([pop.genomes, genomes])
    O = np.concatenate([pop.obj, obj])
    V = np.concatenate([pop.viol, viol])
    _, first = np.unique(G, axis=0, return_index=True)
    first = np.sort(first)
    G, O, V = G[first], O[first], V[first]
    keep = select(O, V, size)
    return Population(G[keep], O[keep], V[keep])


def neighbours(genome: np.ndarray, space: GenomeSpace) -> np.ndarray:
    """Every design one grid step away from ``genome`` (all choices for categorical knobs),
    plus block moves: every model knob of one kind and network one step up or down at once
    (e.g. all layers of a network one bit-width lower)."""
    out = []
    blocks: dict[tuple[str, int], list[int]] = {}
    for j, gene in enumerate(space.genes):
        if gene.kind != "hw" and not gene.categorical:
            blocks.setdefault((gene.kind, gene.net), []).append(j)
    for ix in blocks.values():
        if len(ix) < 2:
            continue
        for d in (-1, 1):
            x = genome.copy()
            x[ix] = np.clip(x[ix] + d, 0, space.sizes[ix] - 1)
            if not np.array_equal(x, genome):
                out.append(x)
    for j, gene in enumerate(space.genes):
        cands = range(gene.size) if gene.categorical else (genome[j] - 1, genome[j] + 1)
        for c in cands:
            if 0 <= c < gene.size and c != genome[j]:
                x = genome.copy()
                x[j] = c
                out.append(x)
    return np.array(out, np.int32).reshape(-1, space.dim)
