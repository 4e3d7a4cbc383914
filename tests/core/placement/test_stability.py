"""Table tests of the soft preferences: stability first, then spread, cost, latency and name; diagnosis."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from support.placement import member, per_country, request, shape, world

from samizdat.core import placement
from samizdat.core.model import WhenUnsatisfiable
from samizdat.core.placement import problem, search

FLEET = (
    member("de-1", "DE", "p1"), member("de-2", "DE", "p2"), member("fr-1", "FR", "p1"),
    member("ch-1", "CH", "p3"), member("jp-1", "JP", "p2"), member("sg-1", "SG", "p3"),
)  # fmt: skip


def test_a_vanished_member_moves_only_its_own_replicas() -> None:
    rules: dict[str, Any] = {"min_jurisdictions": 3, "max_per_jurisdiction": 2}
    before = placement.solve(world(*FLEET), request(5, **rules))
    gone = max(before.assignments, key=lambda name: (before.assignments[name], name))
    survivors = world(*(m for m in FLEET if m.name != gone))
    after = placement.solve(survivors, request(5, current=before.assignments, **rules))
    assert after.feasible
    assert after.moves == before.assignments[gone]
    for name, replicas in before.assignments.items():
        if name != gone:
            assert after.assignments[name] >= replicas


@pytest.mark.parametrize(
    ("current", "replicas", "rules", "kept", "check"),
    [
        pytest.param({"de-1": 1, "fr-1": 1}, 4, {}, 2, lambda a: a["de-1"] >= 1 and a["fr-1"] >= 1,
                     id="scale-up-keeps-every-replica"),
        pytest.param({"de-1": 2, "fr-1": 2, "ch-1": 2}, 3, {}, 3, lambda a: sum(a.values()) == 3,
                     id="scale-down-removes-without-moving"),
        pytest.param({"de-1": 3, "fr-1": 1}, 4, {"max_per_jurisdiction": 2}, 3,
                     lambda a: a["de-1"] == 2 and a["fr-1"] == 1, id="tighter-rule-moves-the-minimum"),
        pytest.param({"de-1": 2, "de-2": 2}, 4, {"min_jurisdictions": 3}, 2,
                     lambda a: a.get("de-1", 0) + a.get("de-2", 0) == 2, id="new-min-jurisdictions-moves-two"),
        pytest.param({"de-1": 1, "jp-1": 1}, 2, {"denied_jurisdictions": {"JP"}}, 1,
                     lambda a: "jp-1" not in a and a["de-1"] == 1, id="newly-denied-member-is-left"),
        pytest.param({"gone": 2, "ch-1": 1}, 3, {}, 1, lambda a: a["ch-1"] == 1, id="replicas-of-a-vanished-member"),
    ],
)  # fmt: skip
def test_stability_keeps_the_most_replicas_in_place(
    current: dict[str, int], replicas: int, rules: dict[str, Any], kept: int, check: Any
) -> None:
    snapshot = world(*FLEET)
    decision = placement.solve(snapshot, request(replicas, current=current, **rules))
    assert decision.feasible
    assert sum(min(decision.assignments.get(name, 0), n) for name, n in current.items()) == kept
    assert decision.moves == min(replicas, sum(current.values())) - kept
    assert check(decision.assignments), decision.assignments


def test_replicas_on_an_unschedulable_member_move() -> None:
    fleet = (replace(FLEET[0], unschedulable_reason="down"), *FLEET[1:])
    decision = placement.solve(world(*fleet), request(2, current={"de-1": 2}))
    assert "de-1" not in decision.assignments
    assert decision.moves == 2


def test_stability_beats_cost() -> None:
    snapshot = world(member("pricey", "DE", cost_per_gpu_hour=9), member("cheap", "FR", cost_per_gpu_hour=1))
    assert placement.solve(snapshot, request(1, current={"pricey": 1})).assignments == {"pricey": 1}


@pytest.mark.parametrize(
    ("members", "replicas", "expected"),
    [
        pytest.param(
            [member("de-a", "DE", "p1", cost_per_gpu_hour=1), member("de-b", "DE", "p2", cost_per_gpu_hour=1),
             member("fr", "FR", "p3", cost_per_gpu_hour=2)],
            2, {"de-a": 1, "fr": 1}, id="spread-over-countries-beats-cost",
        ),
        pytest.param(
            [member("a", "DE", "p1", cost_per_gpu_hour=1), member("b", "DE", "p1", cost_per_gpu_hour=1),
             member("c", "DE", "p2", cost_per_gpu_hour=2)],
            2, {"a": 1, "c": 1}, id="spread-over-providers-beats-cost",
        ),
        pytest.param(
            [member("slow-cheap", "DE", cost_per_gpu_hour=1, latency_ms=90),
             member("fast-dear", "DE", cost_per_gpu_hour=2, latency_ms=5)],
            1, {"slow-cheap": 1}, id="cost-beats-latency",
        ),
        pytest.param(
            [member("slow", "DE", latency_ms=90), member("fast", "DE", latency_ms=5)],
            1, {"fast": 1}, id="latency-breaks-cost-ties",
        ),
        pytest.param([member("b", "DE"), member("a", "DE")], 1, {"a": 1}, id="name-breaks-all-ties"),
    ],
)  # fmt: skip
def test_soft_preferences_in_order(members: list[placement.MemberInfo], replicas: int, expected: dict[str, int]) -> None:
    assert placement.solve(world(*members), request(replicas)).assignments == expected


def test_same_input_same_decision_whatever_the_member_order() -> None:
    wanted = request(5, min_jurisdictions=3, max_per_jurisdiction=2, max_per_alliance=2, min_providers=2)
    forward = placement.solve(world(*FLEET), wanted)
    backward = placement.solve(world(*reversed(FLEET)), wanted)
    assert forward == backward
    assert per_country(world(*FLEET), forward.assignments)


@pytest.mark.parametrize(
    ("members", "rules", "name", "reasons"),
    [
        pytest.param([member("a", "DE"), member("b", "DE"), member("c", "FR")],
                     {"max_per_jurisdiction": 1, "replicas": 2}, "b",
                     ("jurisdiction DE full (maxPerJurisdiction 1)",), id="unused-jurisdiction-full"),
        pytest.param([member("a", "DE", shapes=[]), member("b", "FR")], {"replicas": 1}, "a",
                     ("no node fits 1× GPU",), id="no-nodes"),
        pytest.param([member("a", "DE"), member("b", "FR")], {"max_per_cluster": 1, "replicas": 2}, "a",
                     ("maxPerCluster 1",), id="limited-by-max-per-cluster"),
        pytest.param([member("a", "DE", shapes=[]), member("b", "FR")], {"replicas": 2, "current": {"a": 1}}, "a",
                     ("capacity 1",), id="limited-by-capacity"),
        pytest.param([member("a", "DE", cost_per_gpu_hour=2.5, latency_ms=40), member("b", "DE")],
                     {"replicas": 1}, "a", ("not selected: others preferred (cost 2.5/GPU-h, latency 40 ms)",),
                     id="not-selected"),
    ],
)  # fmt: skip
def test_diagnosis_says_why_a_member_is_unused_or_limited(
    members: list[placement.MemberInfo], rules: dict[str, Any], name: str, reasons: tuple[str, ...]
) -> None:
    decision = placement.solve(world(*members), request(rules.pop("replicas"), **rules))
    assert decision.diagnosis[name] == reasons


def test_the_worked_example_of_the_placement_doc() -> None:
    """docs/placement.md walks this instance through every stage; each number it quotes is checked here."""
    two_free = (shape(free=1, nodes=2),)
    snapshot = world(
        member("de-1", "DE", "hetzner", cost_per_gpu_hour=2.0, shapes=two_free),
        member("fr-1", "FR", "ovh", cost_per_gpu_hour=3.0, shapes=two_free),
        member("ch-1", "CH", "exoscale", cost_per_gpu_hour=4.0, shapes=two_free),
        alliances={"eu": frozenset({"DE", "FR"})},
    )
    asked = request(3, current={"de-1": 1}, min_jurisdictions=2, max_per_alliance=2)
    posed = problem.formulate(snapshot, asked, stay=True)
    assert posed is not None
    assert (posed.floors, posed.replicas) == ({"de-1": 1}, 2)
    assert dict(zip(posed.countries, posed.country_limit, strict=True)) == {"CH": 2, "DE": 1, "FR": 1}
    assert (posed.min_jurisdictions, posed.min_providers) == (1, 0)
    assert [(c.member.name, c.capacity) for c in posed.candidates] == [("ch-1", 2), ("de-1", 2), ("fr-1", 2)]
    assert [(a.name, a.cap) for a in posed.alliances] == [("eu", 1)]
    assert [[posed.countries[i] for i in cell.countries] for cell in posed.cells] == [["DE", "FR"]]
    assert search.search(posed).nodes == 1
    decision = placement.solve(snapshot, asked)
    assert (dict(decision.assignments), decision.moves) == ({"ch-1": 1, "de-1": 1, "fr-1": 1}, 0)
    assert dict(decision.diagnosis) == {
        "de-1": ("alliance eu full (maxPerAlliance 2)",),
        "fr-1": ("alliance eu full (maxPerAlliance 2)",),
    }


STRICT = WhenUnsatisfiable.DO_NOT_SCHEDULE
SANDBOX = (
    member("us-east", "US", "northwind"), member("gb-london", "GB", "albion-gpu"),
    member("de-frankfurt", "DE", "rhein-compute"), member("de-berlin", "DE", "hanse-cloud"),
    member("ch-zurich", "CH", "alpine-ai"), member("fr-paris", "FR", "seine-gpu"),
    member("jp-tokyo", "JP", "sakura-compute"), member("is-reykjavik", "IS", "geysir-gpu"),
)  # fmt: skip
SPREAD: dict[str, Any] = {"min_jurisdictions": 3, "max_per_jurisdiction": 2, "denied_alliances": {"five-eyes"}}


def test_a_broad_takedown_gives_up_spread_not_capacity_and_heals_with_one_move() -> None:
    """Issue #12's scenario: Germany, Iceland and Japan down at once leave Switzerland and France."""
    everyone = world(*SANDBOX)
    before = placement.solve(everyone, request(4, **SPREAD))
    assert before.feasible and not before.degraded
    left = world(*(m for m in SANDBOX if m.country not in ("DE", "IS", "JP")))
    during = placement.solve(left, request(4, current=before.assignments, **SPREAD))
    assert during.feasible and during.degraded
    assert per_country(left, during.assignments) == {"CH": 2, "FR": 2}
    assert during.shortfalls == (placement.Shortfall("minJurisdictions", required=3, reached=2),)
    assert placement.violations(left, request(4, **{**SPREAD, "min_jurisdictions": 2}), during.assignments) == []
    after = placement.solve(everyone, request(4, current=during.assignments, **SPREAD))
    assert after.feasible and not after.degraded
    assert after.moves == 1, "restoring the third jurisdiction moves one replica, no more"
    frozen = placement.solve(left, request(4, current=before.assignments, **SPREAD, when_unsatisfiable=STRICT))
    assert not frozen.feasible and frozen.binding_rule == "minJurisdictions"
