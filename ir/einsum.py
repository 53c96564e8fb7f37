"""ONNX ``Einsum`` equations: parsing, output shape, MAC count and GEMM view.

An equation such as ``"bij,bjk->bik"``, ``"...ij,jk->...ik"`` or the implicit form
``"ij,jk"`` is parsed against the operand shapes into an :class:`Einsum`: one index string
per operand and one for the output, with every ``...`` expanded into private index
characters (right-aligned and broadcast as NumPy does), and the size of every index.
Implicit form (no ``->``), as the ONNX spec and NumPy define it: the output is the
ellipsis dims followed by the letters that occur exactly once, in alphabetical order.

MAC convention (used by :mod:`symbiote.ir.analysis` and :mod:`symbiote.ir.lower`):

* one operand (transpose, diagonal, reduction): 0 MACs, it is data movement / vector work;
* two operands: the product of the sizes of all distinct indices (each output element is
  the sum of that many products);
* n > 2 operands: the sum over a left-to-right pairwise contraction
  ``((x0 . x1) . x2) ...``, where each step keeps the indices still needed by a later
  operand or by the output, and costs the product of the sizes of its distinct indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_ELLIPSIS_BASE = 0xE000  # private-use code points stand for the dims under "..."


@dataclass(frozen=True)
class Einsum:
    terms: tuple[str, ...]     # one index string per operand, ellipsis expanded
    output: str                # output indices, ellipsis expanded
    sizes: dict[str, int]      # index -> size (after broadcasting)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.sizes[c] for c in self.output)


@dataclass(frozen=True)
class Step:
    """One pairwise contraction ``a . b -> out`` as a batched GEMM."""

    a: str
    b: str
    out: str
    batch: int   # indices of a, b and out
    m: int       # free indices of a (in out, not in b)
    k: int       # free indices of b (in out, not in a)
    c: int       # indices summed away (not in out), including those of only one operand

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.k * self.c


def parse(equation: str, shapes: list[tuple[int, ...]]) -> Einsum:
    """Parse ``equation`` for operands of ``shapes``; raises ValueError when they do not fit."""
    eq = "".join(equation.split())
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"equation {equation!r} has {len(terms)} operands but the node has {len(shapes)} inputs")
    ell_rank = 0
    for t, s in zip(terms, shapes):
        if t.count("...") > 1 or not t.replace("...", "").isalpha():
            raise ValueError(f"bad term {t!r} in equation {equation!r}")
        named = len(t.replace("...", ""))
        if ("..." in t and named > len(s)) or ("..." not in t and named != len(s)):
            raise ValueError(f"term {t!r} does not fit an operand of shape {list(s)}")
        if "..." in t:
            ell_rank = max(ell_rank, len(s) - named)
    ell = "".join(chr(_ELLIPSIS_BASE + i) for i in range(ell_rank))
    sizes: dict[str, int] = {}
    expanded = []
    for t, s in zip(terms, shapes):
        if "..." in t:
            r = len(s) - len(t.replace("...", ""))
            t = t.replace("...", ell[ell_rank - r:])
        expanded.append(t)
        for c, d in zip(t, s):
            _bind(sizes, c, int(d), c >= chr(_ELLIPSIS_BASE), equation)
    for c in ell:
        sizes.setdefault(c, 1)
    if arrow:
        named = rhs.replace("...", "")
        if rhs.count("...") > 1 or (named and not named.isalpha()):
            raise ValueError(f"bad output term {rhs!r} in equation {equation!r}")
        out = rhs.replace("...", ell)
        for c in out:
            if c not in sizes:
                raise ValueError(f"output index {c!r} of equation {equation!r} is not in any operand")
        if len(set(out)) != len(out):
            raise ValueError(f"output {rhs!r} of equation {equation!r} repeats an index")
    else:
        letters = "".join(expanded)
        once = sorted(c for c in set(letters) if c < chr(_ELLIPSIS_BASE) and letters.count(c) == 1)
        out = ell + "".join(once)
    return Einsum(tuple(expanded), out, sizes)


def _bind(sizes: dict[str, int], c: str, d: int, broadcastable: bool, equation: str) -> None:
    old = sizes.get(c)
    if old is None or old == d:
        sizes[c] = d
    elif broadcastable and 1 in (old, d):
        sizes[c] = max(old, d)
    else:
        raise ValueError(f"index {c!r} of equation {equation!r} has sizes {old} and {d}")


def _prod(e: Einsum, idx: str) -> int:
    return int(math.prod(e.sizes[c] for c in idx))


def steps(e: Einsum) -> list[Step]:
    """The left-to-right pairwise contractions (empty for a single operand)."""
    out: list[Step] = []
    if len(e.terms) < 2:
        return out
    acc = e.terms[0]
    for j in range(1, len(e.terms)):
        b = e.terms[j]
        later = set(e.output).union(*e.terms[j + 1:])
        union = "".join(dict.fromkeys(acc + b))
        keep = "".join(c for c in union if c in later)
        if j == len(e.terms) - 1:
            keep = e.output
        batch = "".join(c for c in union if c in acc and c in b and c in keep)
        m = "".join(c for c in union if c in acc and c not in b and c in keep)
        k = "".join(c for c in union if c in b and c not in acc and c in keep)
        summed = "".join(c for c in union if c not in keep)
        out.append(Step(acc, b, keep, _prod(e, batch), _prod(e, m), _prod(e, k), _prod(e, summed)))
        acc = keep
    return out


def macs(e: Einsum) -> int:
    """MACs under the module's convention."""
    return sum(s.macs for s in steps(e))
