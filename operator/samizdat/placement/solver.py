"""`solve`: the placement pipeline over one snapshot, filter → score → select → assign.

Filter, score and prune happen in `problem.formulate`, select and assign in `search.search`; this module ties
them together, checks the result against the rules once more and dresses it as a `Decision`.
"""

from __future__ import annotations

from types import MappingProxyType

from samizdat.placement import binding, problem, rules, search
from samizdat.placement.decision import Decision
from samizdat.placement.diagnosis import Diagnosis
from samizdat.placement.snapshot import Request, Snapshot


class SolverError(RuntimeError):
    """The search produced a placement that breaks a rule: a bug, and never handed on as a decision."""


def solve(snapshot: Snapshot, request: Request) -> Decision:
    """Place `request.replicas` replicas keeping every hard rule, or say which rule makes it impossible.

    Complete: if any placement keeps every rule, one is returned. Among those it keeps the most replicas
    of `request.current` where they are, then spreads across countries and providers, then prefers
    cheaper, then nearer members, then names earlier in the alphabet. Deterministic for equal input.
    """
    if request.replicas <= 0:
        return _decision(snapshot, request, {})
    placed = _place(snapshot, request)
    if placed is None:
        rule, explanation = binding.binding_rule(snapshot, request)
        return Decision(
            assignments=MappingProxyType({}),
            feasible=False,
            diagnosis=Diagnosis(snapshot, request, None),
            binding_rule=rule,
            explanation=explanation,
        )
    broken = rules.violations(snapshot, request, placed)
    if broken:
        raise SolverError("; ".join(broken))
    return _decision(snapshot, request, placed)


def _place(snapshot: Snapshot, request: Request) -> dict[str, int] | None:
    """Stay first: with every replica that may stay fixed where it is, only the rest is placed, and if
    that works no placement keeps more (and the rest is optimal among those that keep them all). Only
    when the floors themselves stand in the way is the whole placement decided afresh."""
    for stay in (True, False):
        posed = problem.formulate(snapshot, request, stay=stay)
        if posed is None:
            continue
        outcome = search.search(posed)
        if outcome.flows is not None:
            placed = dict(posed.floors)
            for candidate, replicas in zip(posed.candidates, outcome.flows, strict=True):
                if replicas:
                    placed[candidate.member.name] = placed.get(candidate.member.name, 0) + replicas
            return dict(sorted(placed.items()))
        if not posed.floors:
            break  # without floors the first attempt already was the whole problem
    return None


def _decision(snapshot: Snapshot, request: Request, placed: dict[str, int]) -> Decision:
    current = {name: replicas for name, replicas in request.current.items() if replicas > 0}
    kept = sum(min(placed.get(name, 0), replicas) for name, replicas in current.items())
    return Decision(
        assignments=MappingProxyType(placed),
        feasible=True,
        diagnosis=Diagnosis(snapshot, request, placed),
        moves=min(max(0, request.replicas), sum(current.values())) - kept,
    )
