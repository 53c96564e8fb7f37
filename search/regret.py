"""Each network's regret in a multi-model run: how much worse the shared design is for it
than a design searched for it alone, ``objective(shared) / objective(alone) - 1``.

The search alone is a single-network problem (the hardware knobs and this network's
model knobs) scored through the joint problem's evaluator (:func:`alone_evaluator`: no
compile of its own). Its best design is at least as good as the shared one when it found
its optimum, so a regret is never negative; a negative ratio means the shared design
beats everything the search alone found for this network, i.e. that search was too
short. Such a regret is reported as unreliable (``value`` None, with a note saying why),
never as a bare negative number.
"""

from __future__ import annotations

from dataclasses import dataclass

from symbiote.search.problem import NetworkEvaluator, evaluator_for

#: float noise between two evaluations of one design (relative)
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Regret:
    value: float | None               # objective(shared) / objective(alone) - 1; None: unreliable
    alone_objective: float | None     # the best objective the search alone found
    note: str | None = None           # why ``value`` is None: "unreliable: ..." or "not measured: ..."


def assess(network: str, shared: float, alone: float, alone_feasible: bool, alone_evals: int) -> Regret:
    """The regret of ``network`` from the shared design's objective for it and the search
    alone's best (``alone_feasible``: that best meets the constraints)."""
    if not alone_feasible:
        return Regret(None, alone, f"unreliable: the search for {network} alone was too short "
                                   f"({alone_evals} evaluations) to find a design meeting the constraints")
    r = shared / alone - 1.0
    if r < -TOLERANCE:
        return Regret(None, alone, f"unreliable: the search for {network} alone was too short "
                                   f"({alone_evals} evaluations): the shared design is {alone / shared:.3g}x better "
                                   "for it than the best it found")
    return Regret(max(r, 0.0), alone)


def not_measured(network: str) -> Regret:
    """The regret of a run whose time budget left no room for the search alone."""
    return Regret(None, None, f"not measured: the time budget left no room for a search of {network} alone")


def alone_evaluator(joint, alone, i: int) -> NetworkEvaluator:
    """Network ``i`` of ``joint`` (a CoDesign) scored in the genome of ``alone`` (its
    single-network CoDesign), the other networks' knobs at their defaults."""
    return NetworkEvaluator(evaluator_for(joint.problem), i, joint.space.positions_of(alone.space),
                            joint.space.default())
