"""`solve`: the placement pipeline over one snapshot, filter → score → select → assign.

Filter, score and prune happen in `problem.formulate`, select and assign in `search.search`; this
module ties them together, gives up spread minimums when the request allows it and nothing else
places every replica, checks the result against the rules once more and dresses it as a `Decision`.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from samizdat.core.model import WhenUnsatisfiable
from samizdat.core.placement import binding, problem, rules, search
from samizdat.core.placement.decision import Decision, Shortfall
from samizdat.core.placement.diagnosis import Diagnosis
from samizdat.core.placement.snapshot import Request, Snapshot


class SolverError(RuntimeError):
    """The search produced a placement that breaks a rule: a bug, and never handed on as a decision."""


def solve(snapshot: Snapshot, request: Request) -> Decision:
    """Place `request.replicas` replicas keeping every rule, or say which rule makes it impossible.

    Complete: if any placement keeps every rule, one is returned. Among those it keeps the most replicas
    of `request.current` where they are, then spreads across countries and providers, then prefers
    cheaper, then nearer members, then names earlier in the alphabet. Deterministic for equal input.

    With `WhenUnsatisfiable.SCHEDULE_ANYWAY`, when no placement meets the spread minimums but some
    places every replica under the limits, the decision is *degraded*: among those it reaches the most
    jurisdictions (up to `minJurisdictions`), then the most providers (up to `minProviders`), then the
    usual order above; `Decision.shortfalls` says what is given up.
    """
    if request.replicas <= 0:
        return _decision(snapshot, request, {})
    solved, placed = request, _place(snapshot, request)
    if placed is None and _may_degrade(request):
        solved, placed = _degrade(snapshot, request)
    if placed is None:
        # With the minimums given up already, only a limit (or capacity) can be what binds.
        rule, explanation = binding.binding_rule(snapshot, solved)
        return Decision(
            assignments=MappingProxyType({}),
            feasible=False,
            diagnosis=Diagnosis(snapshot, request, None),
            binding_rule=rule,
            explanation=explanation,
        )
    broken = rules.violations(snapshot, solved, placed)
    if broken:
        raise SolverError("; ".join(str(v) for v in broken))
    return _decision(snapshot, request, placed, _shortfalls(snapshot, request, placed))


def _may_degrade(request: Request) -> bool:
    given = request.rules
    return given.when_unsatisfiable is WhenUnsatisfiable.SCHEDULE_ANYWAY and (
        given.min_jurisdictions > 1 or given.min_providers > 1
    )


def _degrade(snapshot: Snapshot, request: Request) -> tuple[Request, dict[str, int] | None]:
    """The request with its minimums lowered as little as a placement of every replica needs (first
    jurisdictions, then providers), and that placement; the minimums at 1 and None when none exists.

    Lowering keeps the order exact: at most j countries reachable means every placement with at least
    j has exactly j, so the best one among them is the best one that reaches j, and so for providers.
    """
    given = request.rules

    def attempt(jurisdictions: int, providers: int) -> tuple[Request, dict[str, int] | None]:
        lowered = replace(given, min_jurisdictions=jurisdictions, min_providers=providers)
        trial = replace(request, rules=lowered)
        return trial, _place(snapshot, trial)

    # (minJurisdictions, minProviders) failed already; with minProviders 1 so did (minJurisdictions, 1).
    top = max(1, given.min_jurisdictions - (given.min_providers <= 1))
    for jurisdictions in range(top, 0, -1):
        found = attempt(jurisdictions, 1)
        if found[1] is not None:
            break
    else:
        return found  # not even the limits alone leave room for every replica
    for providers in range(given.min_providers - (jurisdictions >= given.min_jurisdictions), 1, -1):
        trial = attempt(jurisdictions, providers)
        if trial[1] is not None:
            return trial
    return found


def _shortfalls(snapshot: Snapshot, request: Request, placed: dict[str, int]) -> tuple[Shortfall, ...]:
    """The spread minimums `placed` does not meet (only ever for a degraded placement)."""
    by_name = {member.name: member for member in snapshot.members if member.name in placed}
    reached = {
        "minJurisdictions": (request.rules.min_jurisdictions, len({by_name[name].country for name in placed})),
        "minProviders": (request.rules.min_providers, len({by_name[name].provider for name in placed})),
    }
    return tuple(Shortfall(rule, required, count) for rule, (required, count) in reached.items() if count < required)


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


def _decision(
    snapshot: Snapshot, request: Request, placed: dict[str, int], shortfalls: tuple[Shortfall, ...] = ()
) -> Decision:
    current = {name: replicas for name, replicas in request.current.items() if replicas > 0}
    kept = sum(min(placed.get(name, 0), replicas) for name, replicas in current.items())
    return Decision(
        assignments=MappingProxyType(placed),
        feasible=True,
        diagnosis=Diagnosis(snapshot, request, placed),
        explanation="; ".join(binding.short_of(snapshot, request, s.rule) for s in shortfalls) or None,
        moves=min(max(0, request.replicas), sum(current.values())) - kept,
        shortfalls=shortfalls,
    )
