"""Property tests of the placement solver against the exact MILP oracle, on random small instances.

Instances are small enough for the oracle to be instant, and built to hit what makes placement hard:
alliances that overlap and cross, fragmented nodes, tight min and max rules, current replicas on
members that are gone or no longer eligible, many members for few replicas (so pruning bites), and
both answers to unmet spread minimums (`whenUnsatisfiable`): infeasible, or degraded to the most
spread the limits allow. `--hypothesis-profile=thorough` runs many more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from unittest import mock

from support import milp_oracle
from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

from samizdat.core import placement
from samizdat.core.model import WhenUnsatisfiable
from samizdat.core.placement import pruning, search

COUNTRIES = ("DE", "FR", "NL", "US", "GB", "CH", "JP", "NO")
MINIMUMS = ("minJurisdictions", "minProviders")
WHEN_UNSATISFIABLE = st.sampled_from(tuple(WhenUnsatisfiable))
STRICT = WhenUnsatisfiable.DO_NOT_SCHEDULE
PROVIDERS = ("p1", "p2", "p3", "p4")
# Thousands of instances under the default "ci" profile (300 examples a test), more with "thorough".
MANY = settings(max_examples=4 * settings.default.max_examples)
# The degraded-mode suites: as many as MANY under "ci", the profile's own count under "thorough" (four
# times it would take hours on two cores).
DEGRADED = settings(max_examples=max(1200, settings.default.max_examples))
Draw = Callable[[st.SearchStrategy[Any]], Any]


def _maybe(values: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), values)


def _rarely(value: Any, otherwise: Any) -> st.SearchStrategy[Any]:
    """`value` in about one draw out of six, else `otherwise` (filters that reject members)."""
    return st.sampled_from((otherwise,) * 5 + (value,))


@st.composite
def instances(draw: Draw) -> tuple[placement.Snapshot, placement.Request]:
    countries = draw(st.lists(st.sampled_from(COUNTRIES), min_size=2, max_size=6, unique=True))
    providers = draw(st.lists(st.sampled_from(PROVIDERS), min_size=1, max_size=4, unique=True))
    alliances = {
        f"a{index}": frozenset(draw(st.lists(st.sampled_from(countries), min_size=1, max_size=5, unique=True)))
        for index in range(draw(st.integers(0, 4)))
    }
    shapes = st.builds(
        placement.NodeShape,
        product=st.sampled_from(("H100", "A100")),
        memory_mib=st.sampled_from((40000, 80000)),
        tee=st.booleans(),
        free_gpus=st.sampled_from((8, 4, 2, 8, 4, 2, 1, 0)),
        nodes=st.sampled_from((2, 1, 3, 1, 0)),
    )
    members = tuple(
        placement.MemberInfo(
            name=f"m{index}",
            country=draw(st.sampled_from(countries)),
            provider=draw(st.sampled_from(providers)),
            tee=draw(st.booleans()),
            cost_per_gpu_hour=draw(st.integers(0, 4)),
            latency_ms=draw(st.integers(0, 3)),
            labels={"tier": draw(st.sampled_from("ab"))},
            shapes=tuple(draw(st.lists(shapes, min_size=1, max_size=3))),
            unschedulable_reason=draw(_rarely("quarantined until t", None)),
        )
        for index in range(draw(st.integers(2, 9)))
    )
    names = [member.name for member in members] + ["gone"]
    current = draw(st.dictionaries(st.sampled_from(names), st.integers(1, 3), max_size=4))
    rules = placement.Rules(
        min_jurisdictions=draw(st.sampled_from((0, 1, 1, 2, 2, 3, 4))),
        max_per_jurisdiction=draw(_maybe(st.integers(1, 4))),
        max_per_alliance=draw(st.sampled_from((None, 0, 1, 1, 2, 2, 3))),
        max_per_provider=draw(_maybe(st.integers(1, 4))),
        max_per_cluster=draw(_maybe(st.integers(1, 4))),
        min_providers=draw(st.sampled_from((0, 1, 1, 2, 2, 3))),
        allowed_jurisdictions=draw(_rarely(frozenset(countries[:3]), frozenset())),
        denied_jurisdictions=draw(_rarely(frozenset(countries[-1:]), frozenset())),
        denied_alliances=draw(_rarely(frozenset(list(alliances)[:1]), frozenset())),
        require_tee=draw(_rarely(True, False)),
        cluster_selector=draw(_rarely({"tier": "a"}, {})),
        when_unsatisfiable=draw(WHEN_UNSATISFIABLE),
    )
    gpu = placement.GPURequest(
        count=draw(st.sampled_from((1, 1, 1, 2, 4, 8))),
        products=draw(st.sampled_from((frozenset(),) * 3 + (frozenset({"H100"}),))),
        min_memory_mib=draw(st.sampled_from((0, 0, 0, 80000))),
    )
    replicas = draw(st.sampled_from((3, 4, 2, 5, 6, 1, 8, 0)))
    request = placement.Request(replicas=replicas, gpu=gpu, rules=rules, current=current)
    return placement.Snapshot(members=members, alliances=alliances), request


@dataclass(frozen=True)
class _Regular:
    """How a regular fleet is drawn: members spread round the countries and providers in turn, each
    straying by up to a jitter (hypothesis likes drawing one value many times, this does not)."""

    countries: tuple[int, int]
    alliances: tuple[int, int]
    alliance_size: tuple[int, int]
    members: tuple[int, int]
    country_jitter: int
    provider_stride: int
    free_gpus: st.SearchStrategy[int]
    cost_latency: tuple[int, int]


def _regular_fleet(draw: Draw, regular: _Regular) -> placement.Snapshot:
    countries = draw(st.lists(st.sampled_from(COUNTRIES), min_size=regular.countries[0],
                              max_size=regular.countries[1], unique=True))
    providers = PROVIDERS[: draw(st.integers(2, 4))]
    low, high = regular.alliance_size
    alliances = {
        f"x{index}": frozenset(draw(st.lists(st.sampled_from(countries), min_size=low, max_size=high, unique=True)))
        for index in range(draw(st.integers(*regular.alliances)))
    }
    cost, latency = regular.cost_latency
    members = tuple(
        placement.MemberInfo(
            name=f"m{index:02d}",
            country=countries[(index + draw(st.integers(0, regular.country_jitter))) % len(countries)],
            provider=providers[(index // regular.provider_stride + draw(st.integers(0, 1))) % len(providers)],
            cost_per_gpu_hour=draw(st.integers(0, cost)),
            latency_ms=draw(st.integers(0, latency)),
            shapes=(placement.NodeShape("H100", 80000, False, draw(regular.free_gpus), 1),),
        )
        for index in range(draw(st.integers(*regular.members)))
    )
    return placement.Snapshot(members=members, alliances=alliances)


def _current(draw: Draw, snapshot: placement.Snapshot, most: int) -> dict[str, int]:
    names = [member.name for member in snapshot.members]
    return draw(st.dictionaries(st.sampled_from(names), st.integers(1, 2), max_size=most))


@st.composite
def crowded(draw: Draw) -> tuple[placement.Snapshot, placement.Request]:
    """Plenty of capacity but crossing alliances with small caps and min rules: the search's hard case."""
    snapshot = _regular_fleet(draw, _Regular(
        countries=(3, 7), alliances=(2, 4), alliance_size=(2, 4), members=(5, 10), country_jitter=1,
        provider_stride=1, free_gpus=st.integers(1, 4), cost_latency=(4, 3),
    ))
    rules = placement.Rules(
        min_jurisdictions=draw(st.sampled_from((2, 3, 2, 3, 4))),
        max_per_jurisdiction=draw(_maybe(st.integers(1, 3))),
        max_per_alliance=draw(st.sampled_from((2, 1, 3))),
        max_per_provider=draw(_maybe(st.integers(2, 4))),
        max_per_cluster=draw(_maybe(st.integers(1, 3))),
        min_providers=draw(st.sampled_from((1, 2, 1, 3))),
        when_unsatisfiable=draw(WHEN_UNSATISFIABLE),
    )
    request = placement.Request(replicas=draw(st.integers(2, 8)), rules=rules, current=_current(draw, snapshot, 4))
    return snapshot, request


@MANY
@given(st.one_of(instances(), crowded()))
def test_solver_agrees_with_the_oracle(instance: tuple[placement.Snapshot, placement.Request]) -> None:
    snapshot, request = instance
    decision = placement.solve(snapshot, request)
    oracle = milp_oracle.solve(snapshot, request)
    note(f"decision={decision}\noracle={oracle}")
    event("degraded" if decision.degraded else f"feasible: {oracle.feasible}, binding: {decision.binding_rule}")
    assert decision.feasible == oracle.feasible
    assert placement.solve(snapshot, request) == decision, "not deterministic"
    if decision.feasible:
        _assert_limits_kept(snapshot, request, decision)
        # spread reached up to the minimums, then kept replicas: the oracle's first objectives
        mine = milp_oracle.score(snapshot, request, decision.assignments)[:3]
        assert mine == milp_oracle.score(snapshot, request, oracle.assignments)[:3]
        kept = sum(min(decision.assignments.get(name, 0), n) for name, n in request.current.items())
        assert kept == oracle.kept, "does not keep as many current replicas as possible"
        assert decision.binding_rule is None
    else:
        assert decision.assignments == {}
        assert decision.binding_rule in milp_oracle.RULES
        _assert_binding(snapshot, request, decision.binding_rule)


def _assert_limits_kept(snapshot: placement.Snapshot, request: placement.Request, decision: placement.Decision) -> None:
    """No limit is broken; a minimum only when the request allows degrading, and then the decision says
    which and by how much."""
    broken = milp_oracle.check(snapshot, request, decision.assignments)
    allowed = set(MINIMUMS) if milp_oracle.degrades(request) else set()
    assert set(broken) <= allowed, broken
    assert [shortfall.rule for shortfall in decision.shortfalls] == [rule for rule in MINIMUMS if rule in broken]
    reached = {
        "minJurisdictions": _count(snapshot, decision, "country"),
        "minProviders": _count(snapshot, decision, "provider"),
    }
    for shortfall in decision.shortfalls:
        assert (shortfall.required, shortfall.reached) == (_required(request, shortfall.rule), reached[shortfall.rule])
    violations = placement.violations(snapshot, request, decision.assignments)
    assert all(violation.rule in broken for violation in violations), violations


def _count(snapshot: placement.Snapshot, decision: placement.Decision, field: str) -> int:
    by_name = {member.name: member for member in snapshot.members}
    return len({getattr(by_name[name], field) for name in decision.assignments})


def _required(request: placement.Request, rule: str) -> int:
    rules = request.rules
    return rules.min_jurisdictions if rule == "minJurisdictions" else rules.min_providers


def _assert_binding(snapshot: placement.Snapshot, request: placement.Request, named: str) -> None:
    """Relaxing the named rule makes the oracle feasible whenever relaxing some single rule does."""
    fixes = [
        rule for rule in milp_oracle.RULES if milp_oracle.solve(*milp_oracle.relax(snapshot, request, rule)).feasible
    ]
    note(f"single relaxations that work: {fixes}")
    if fixes:
        assert named in fixes


@st.composite
def vanishings(draw: Draw) -> tuple[placement.Snapshot, placement.Request, str]:
    """A feasible placement made current, then one of its members vanishes from the snapshot."""
    snapshot, request = draw(instances())
    placed = placement.solve(snapshot, replace(request, current={}))
    if not placed.feasible or not placed.assignments:
        return snapshot, replace(request, current={}), ""
    gone = draw(st.sampled_from(sorted(placed.assignments)))
    survivors = tuple(member for member in snapshot.members if member.name != gone)
    return replace(snapshot, members=survivors), replace(request, current=dict(placed.assignments)), gone


@MANY
@given(vanishings())
def test_a_vanished_member_moves_only_its_own_replicas_when_possible(
    case: tuple[placement.Snapshot, placement.Request, str],
) -> None:
    snapshot, request, gone = case
    decision = placement.solve(snapshot, request)
    oracle = milp_oracle.solve(snapshot, request)
    assert decision.feasible == oracle.feasible
    if not decision.feasible or not gone:
        return
    survivors = {name: n for name, n in request.current.items() if name != gone}
    kept = sum(min(decision.assignments.get(name, 0), n) for name, n in survivors.items())
    assert kept == oracle.kept
    if oracle.kept == sum(survivors.values()):
        assert decision.moves == request.current[gone]
        assert all(decision.assignments.get(name, 0) >= n for name, n in survivors.items())


@st.composite
def wide(draw: Draw) -> tuple[placement.Snapshot, placement.Request]:
    """Many members for few replicas, so that the exact pruning of (country, provider) pairs bites."""
    snapshot = _regular_fleet(draw, _Regular(
        countries=(4, 8), alliances=(0, 3), alliance_size=(2, 5), members=(12, 30), country_jitter=2,
        provider_stride=2, free_gpus=st.sampled_from((1, 2, 0)), cost_latency=(3, 2),
    ))
    rules = placement.Rules(
        min_jurisdictions=draw(st.integers(1, 3)),
        max_per_jurisdiction=draw(_maybe(st.integers(1, 2))),
        max_per_alliance=draw(_maybe(st.integers(1, 2))),
        max_per_provider=draw(_maybe(st.integers(1, 2))),
        min_providers=draw(st.integers(1, 2)),
    )
    request = placement.Request(replicas=draw(st.integers(1, 4)), rules=rules, current=_current(draw, snapshot, 3))
    return snapshot, request


def _every_pair(ranked: Any, classes: pruning.Classes, reader: pruning.Reader, _: Any) -> list[pruning.Pair]:
    """Every pair `pruning.prune` may choose from: those where a replica fits, and those with replicas to keep."""
    every = dict.fromkeys([(country, provider) for _, country, provider in ranked] + list(reader.kept_in))
    return [
        pair
        for country, provider in every
        if country in classes.signature and (pair := reader.read(country, provider, False)) is not None
    ]


@MANY
@given(wide())
def test_pruning_pairs_loses_no_optimum(instance: tuple[placement.Snapshot, placement.Request]) -> None:
    snapshot, request = instance
    with mock.patch.object(search, "SOFT_BUDGET", 10**9):
        pruned = placement.solve(snapshot, request)
        with mock.patch.object(pruning, "prune", _every_pair):
            whole = placement.solve(snapshot, request)
    assert pruned.feasible == whole.feasible == milp_oracle.solve(snapshot, request).feasible
    if pruned.feasible:
        event(f"feasible, replicas {request.replicas}")
        assert milp_oracle.score(snapshot, request, pruned.assignments) == milp_oracle.score(
            snapshot, request, whole.assignments
        )


@given(st.one_of(instances(), crowded(), wide()))
def test_solver_finds_an_optimum_of_its_whole_objective(instance: tuple[placement.Snapshot, placement.Request]) -> None:
    """Against an exact MILP of the same lexicographic objective: kept replicas, spread, preferences.
    (With the search's budget for soft preferences lifted: past it only kept replicas are exact.)"""
    snapshot, request = instance
    with mock.patch.object(search, "SOFT_BUDGET", 10**9):
        decision = placement.solve(snapshot, request)
    exact = milp_oracle.solve_exact(snapshot, request)
    note(f"decision={decision}\nexact={exact}")
    assert decision.feasible == exact.feasible
    if decision.feasible:
        assert milp_oracle.score(snapshot, request, decision.assignments) == exact.objective


@st.composite
def starved(draw: Draw) -> tuple[placement.Snapshot, placement.Request]:
    """Fewer countries or providers than the minimums ask, or limits that leave too few: degraded mode.

    The minimums are often out of reach, and the limits often leave no room for every replica either,
    so that the solver must tell "degrade" from "infeasible" and, degrading, find the most spread."""
    snapshot = _regular_fleet(draw, _Regular(
        countries=(2, 4), alliances=(0, 3), alliance_size=(1, 3), members=(3, 9), country_jitter=2,
        provider_stride=2, free_gpus=st.integers(0, 3), cost_latency=(3, 2),
    ))
    rules = placement.Rules(
        min_jurisdictions=draw(st.integers(2, 5)),
        max_per_jurisdiction=draw(_maybe(st.integers(1, 3))),
        max_per_alliance=draw(st.sampled_from((None, 1, 2, 3))),
        max_per_provider=draw(_maybe(st.integers(1, 3))),
        max_per_cluster=draw(_maybe(st.integers(1, 2))),
        min_providers=draw(st.integers(1, 4)),
        denied_jurisdictions=draw(_rarely(frozenset(COUNTRIES[:1]), frozenset())),
    )
    request = placement.Request(replicas=draw(st.integers(1, 6)), rules=rules, current=_current(draw, snapshot, 3))
    return snapshot, request


@DEGRADED
@given(starved())
def test_degraded_placement_keeps_every_limit_and_reaches_the_most_spread(
    instance: tuple[placement.Snapshot, placement.Request],
) -> None:
    """Against the exact MILP of the degraded objective: every replica under the limits, then the most
    jurisdictions up to the minimum, then providers, then kept replicas, spread and preferences."""
    snapshot, request = instance
    with mock.patch.object(search, "SOFT_BUDGET", 10**9):
        decision = placement.solve(snapshot, request)
    exact = milp_oracle.solve_exact(snapshot, request)
    strict = placement.solve(snapshot, replace(request, rules=replace(request.rules, when_unsatisfiable=STRICT)))
    note(f"decision={decision}\nexact={exact}")
    event("degraded" if decision.degraded else "feasible" if decision.feasible else "infeasible")
    assert decision.feasible == exact.feasible
    assert decision.degraded == (decision.feasible and not strict.feasible)
    if decision.feasible:
        _assert_limits_kept(snapshot, request, decision)
        assert milp_oracle.score(snapshot, request, decision.assignments) == exact.objective
    else:
        assert decision.binding_rule not in MINIMUMS, "only a limit can bind when the minimums may degrade"



@st.composite
def recoveries(draw: Draw) -> tuple[placement.Snapshot, placement.Request, placement.Decision]:
    """A placement that keeps every rule, then so many countries gone that `minJurisdictions` cannot be
    met (a broad takedown: usually degraded), that placement made current and the members back."""
    snapshot = _regular_fleet(draw, _Regular(
        countries=(3, 6), alliances=(0, 2), alliance_size=(2, 3), members=(5, 10), country_jitter=1,
        provider_stride=1, free_gpus=st.integers(1, 4), cost_latency=(3, 2),
    ))
    rules = placement.Rules(
        min_jurisdictions=draw(st.integers(2, 4)),
        max_per_jurisdiction=draw(_maybe(st.integers(1, 3))),
        max_per_alliance=draw(st.sampled_from((None, 2, 3))),
        max_per_provider=draw(_maybe(st.integers(2, 4))),
        min_providers=draw(st.integers(1, 2)),
    )
    request = placement.Request(replicas=draw(st.integers(2, 6)), rules=rules)
    before = placement.solve(snapshot, request)
    assume(before.feasible and not before.degraded)
    countries = sorted({member.country for member in snapshot.members})
    fewest = max(1, len(countries) - rules.min_jurisdictions + 1)
    assume(fewest < len(countries))
    gone = set(draw(st.lists(st.sampled_from(countries), min_size=fewest, max_size=fewest, unique=True)))
    survivors = replace(snapshot, members=tuple(m for m in snapshot.members if m.country not in gone))
    during = placement.solve(survivors, replace(request, current=dict(before.assignments)))
    assume(during.feasible)
    return snapshot, replace(request, current=dict(during.assignments)), during


@DEGRADED
@given(recoveries())
def test_spread_is_restored_with_the_fewest_moves_when_members_return(
    case: tuple[placement.Snapshot, placement.Request, placement.Decision],
) -> None:
    snapshot, request, during = case
    after = placement.solve(snapshot, request)
    strict = milp_oracle.solve(snapshot, replace(request, rules=replace(request.rules, when_unsatisfiable=STRICT)))
    event(f"degraded during the outage: {during.degraded}")
    assert strict.feasible and not after.degraded, "every minimum can be met again, so it is"
    kept = sum(min(after.assignments.get(name, 0), n) for name, n in request.current.items())
    assert kept == strict.kept, "more replicas moved than restoring the spread needs"
