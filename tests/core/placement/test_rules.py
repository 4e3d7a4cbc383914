"""Table tests of the hard rules: every filter, per-node GPU fit, every count rule, and the checker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from support.placement import member, per_country, request, shape, world

from samizdat.core import placement
from samizdat.core.model import WhenUnsatisfiable
from samizdat.core.placement import capacity

# Spread minimums as hard rules: infeasible rather than degraded when they cannot be met.
STRICT = {"when_unsatisfiable": WhenUnsatisfiable.DO_NOT_SCHEDULE}

TEE = {"tee": True, "shapes": [shape(tee=True)]}


@pytest.mark.parametrize(
    ("candidate", "other", "rules", "reasons"),
    [
        pytest.param(
            member("x", "CN"), member("ok", "CH"), {"denied_jurisdictions": {"CN"}}, ["denied: jurisdiction CN"],
            id="denied-jurisdiction",
        ),
        pytest.param(
            member("x", "FR"), member("ok", "DE"), {"allowed_jurisdictions": {"DE"}},
            ["not in allowedJurisdictions: FR"], id="not-in-allowed-jurisdictions",
        ),
        pytest.param(
            member("x", "US"), member("ok", "CH"), {"denied_alliances": {"five-eyes"}}, ["denied: alliance five-eyes"],
            id="denied-alliance",
        ),
        pytest.param(
            member("x", "DE"), member("ok", "CH"), {"denied_alliances": {"fourteen-eyes", "eu", "five-eyes"}},
            ["denied: alliance eu", "denied: alliance fourteen-eyes"], id="denied-by-two-overlapping-alliances",
        ),
        pytest.param(
            member("x", "DE", shapes=[shape(tee=True)]), member("ok", "CH", **TEE), {"require_tee": True},
            ["no TEE"], id="require-tee-member",
        ),
        pytest.param(
            member("x", "DE", tee=True), member("ok", "CH", **TEE), {"require_tee": True},
            ["no node fits 1× GPU (TEE)"], id="require-tee-node",
        ),
        pytest.param(
            member("x", "DE", **TEE),
            member("ok", "CH", tee=True, shapes=[placement.NodeShape("H100", 80000, True, 8, 1, tee_observed=True)]),
            {"require_tee": True, "require_observed_tee": True}, ["no TEE observed by an agent"],
            id="require-observed-tee",
        ),
        pytest.param(
            member("x", "DE", probe_rtt_ms=180.0), member("ok", "CH", probe_rtt_ms=40.0), {"max_probe_rtt_ms": 100},
            ["probe RTT 180 ms over maxProbeRTTMs 100"], id="max-probe-rtt",
        ),
        pytest.param(
            member("x", "DE", labels={"tier": "silver"}), member("ok", "CH", labels={"tier": "gold"}),
            {"cluster_selector": {"tier": "gold"}}, ["clusterSelector does not match (tier)"], id="cluster-selector",
        ),
        pytest.param(
            member("x", "DE", unschedulable_reason="quarantined until 2030-01-01T00:00:00Z"), member("ok", "CH"), {},
            ["unschedulable: quarantined until 2030-01-01T00:00:00Z"], id="unschedulable",
        ),
        pytest.param(
            member("x", "DE", shapes=[shape(product="A100")]), member("ok", "CH"), {"products": ["H100"]},
            ["no node fits 1× GPU (products H100)"], id="gpu-product",
        ),
        pytest.param(
            member("x", "DE", shapes=[shape(memory=40000)]), member("ok", "CH"), {"memory": 80000},
            ["no node fits 1× GPU (≥80000 MiB)"], id="gpu-memory",
        ),
        pytest.param(
            member("x", "DE", shapes=[shape(free=2, nodes=2)]), member("ok", "CH"), {"gpus": 4},
            ["no node fits 4× GPU"], id="fragmented-nodes",
        ),
        pytest.param(
            member("x", "DE", shapes=[shape(free=0, nodes=4)]), member("ok", "CH"), {}, ["no node fits 1× GPU"],
            id="no-free-gpu",
        ),
    ],
)  # fmt: skip
def test_a_filtered_member_gets_nothing_and_says_why(
    candidate: placement.MemberInfo, other: placement.MemberInfo, rules: dict[str, Any], reasons: list[str]
) -> None:
    decision = placement.solve(world(candidate, other), request(1, **rules))
    assert decision.feasible
    assert decision.assignments == {"ok": 1}
    assert list(decision.diagnosis["x"]) == reasons


@pytest.mark.parametrize(
    ("shapes", "needs", "room"),
    [
        pytest.param([shape(free=8, nodes=3)], {"gpus": 4}, 6, id="whole-nodes"),
        pytest.param([shape(free=2, nodes=2)], {"gpus": 4}, 0, id="two-half-free-nodes-hold-no-4-gpu-replica"),
        pytest.param([shape(free=4, nodes=1), shape(free=2, nodes=5)], {"gpus": 4}, 1, id="only-the-whole-node"),
        pytest.param([shape(free=3, nodes=2)], {"gpus": 2}, 2, id="leftover-gpus-wasted"),
        pytest.param(
            [shape(free=8), shape(free=8, product="A100")], {"gpus": 2, "products": ["H100"]}, 4, id="product-filter"
        ),
        pytest.param([shape(free=8, memory=40000), shape(free=4)], {"memory": 80000}, 4, id="memory-filter"),
        pytest.param([shape(free=8), shape(free=8, tee=True)], {"require_tee": True}, 8, id="tee-nodes-only"),
        pytest.param([shape(free=0, nodes=4)], {"current": {"m": 2}}, 2, id="current-replicas-count"),
        pytest.param([shape(free=4)], {"gpus": 4, "current": {"m": 1}}, 2, id="current-plus-free"),
    ],
)
def test_capacity_is_exact_per_node_fit(
    shapes: list[placement.NodeShape], needs: dict[str, Any], room: int
) -> None:
    snapshot = world(member("m", "DE", shapes=shapes, tee=True))
    if room:
        assert placement.solve(snapshot, request(room, **needs)).assignments == {"m": room}
    too_many = placement.solve(snapshot, request(room + 1, **needs))
    assert not too_many.feasible
    assert too_many.binding_rule == "replicas"


def test_new_replicas_stops_counting_at_the_ceiling() -> None:
    many = member("m", "DE", shapes=[shape(free=8, nodes=10_000)])
    assert capacity.new_replicas(many, placement.GPURequest(count=1), require_tee=False, ceiling=5) == 5


Check = Callable[[placement.Snapshot, Mapping[str, int]], bool]


def _countries(expected: dict[str, int]) -> Check:
    return lambda snapshot, assignments: per_country(snapshot, assignments) == expected


def _in(countries: set[str], at_most: int) -> Check:
    return lambda snapshot, assignments: (
        sum(n for c, n in per_country(snapshot, assignments).items() if c in countries) <= at_most
    )


FOURTEEN = {"US", "GB", "CA", "AU", "NZ", "DK", "FR", "NL", "NO", "DE", "BE", "IT", "ES", "SE"}


@pytest.mark.parametrize(
    ("members", "rules", "expected"),
    [
        pytest.param([member("a", "DE"), member("b", "DE")], {"max_per_cluster": 2}, {"a": 2, "b": 2},
                     id="max-per-cluster"),
        pytest.param(
            # stability alone would keep all three replicas in DE
            [member("de1", "DE"), member("de2", "DE"), member("fr", "FR", cost_per_gpu_hour=3)],
            {"max_per_jurisdiction": 2, "current": {"de1": 3}, "replicas": 4}, _countries({"DE": 2, "FR": 2}),
            id="max-per-jurisdiction",
        ),
        pytest.param(
            [member("us", "US"), member("gb", "GB"), member("no", "NO"), member("de", "DE"), member("ch", "CH")],
            {"max_per_alliance": 2, "replicas": 5},
            lambda s, a: _in(FOURTEEN, 2)(s, a) and per_country(s, a).get("CH") == 3,
            id="max-per-alliance-overlapping",
        ),
        pytest.param(
            [member("a", "DE", "p1"), member("b", "FR", "p1"), member("c", "CH", "p2", cost_per_gpu_hour=9)],
            {"max_per_provider": 2, "replicas": 3}, lambda s, a: a.get("c") == 1, id="max-per-provider",
        ),
        pytest.param(
            [member("de1", "DE", cost_per_gpu_hour=1), member("de2", "DE", cost_per_gpu_hour=1),
             member("fr", "FR", cost_per_gpu_hour=3), member("ch", "CH", cost_per_gpu_hour=4)],
            {"min_jurisdictions": 3, "max_per_jurisdiction": 1, "replicas": 3},
            _countries({"DE": 1, "FR": 1, "CH": 1}), id="min-jurisdictions",
        ),
        pytest.param(
            [member("a", "DE", "p1"), member("b", "DE", "p2", cost_per_gpu_hour=5)],
            {"min_providers": 2, "replicas": 2}, {"a": 1, "b": 1}, id="min-providers",
        ),
        pytest.param([member("a", "DE")], {"replicas": 0, "min_jurisdictions": 3}, {}, id="zero-replicas"),
        pytest.param(
            # Alliances cross (fourteen-eyes and the EEA share DK, DE, NO): the root relaxation takes
            # cheap DE and US together, and only the search finds US + AT + CH + JP.
            [member("us", "US", cost_per_gpu_hour=1), member("dk", "DK", cost_per_gpu_hour=1),
             member("de", "DE", cost_per_gpu_hour=1), member("no", "NO", cost_per_gpu_hour=1),
             member("at", "AT", cost_per_gpu_hour=2), member("ch", "CH", cost_per_gpu_hour=5),
             member("jp", "JP", cost_per_gpu_hour=5)],
            {"max_per_alliance": 1, "min_jurisdictions": 4, "max_per_jurisdiction": 2, "replicas": 5},
            lambda s, a: len(per_country(s, a)) >= 4, id="crossing-alliances-need-the-search",
        ),
    ],
)  # fmt: skip
def test_count_rules_hold(
    members: list[placement.MemberInfo], rules: dict[str, Any], expected: dict[str, int] | Check
) -> None:
    snapshot = world(*members)
    replicas = rules.pop("replicas", 4)
    wanted = request(replicas, **rules)
    decision = placement.solve(snapshot, wanted)
    assert decision.feasible
    assert placement.violations(snapshot, wanted, decision.assignments) == []
    if callable(expected):
        assert expected(snapshot, decision.assignments), decision.assignments
    else:
        assert decision.assignments == expected


@pytest.mark.parametrize(
    ("members", "rules", "binding"),
    [
        pytest.param([member("a", "DE"), member("b", "DE")], {"max_per_cluster": 2, "replicas": 5}, "maxPerCluster",
                     id="max-per-cluster"),
        pytest.param([member("a", "DE"), member("b", "FR")], {"max_per_jurisdiction": 2, "replicas": 5},
                     "maxPerJurisdiction", id="max-per-jurisdiction"),
        pytest.param([member("us", "US"), member("gb", "GB"), member("de", "DE"), member("fr", "FR")],
                     {"max_per_alliance": 2, "replicas": 3}, "maxPerAlliance", id="max-per-alliance"),
        pytest.param([member("a", "DE", "p1"), member("b", "FR", "p1")], {"max_per_provider": 2, "replicas": 3},
                     "maxPerProvider", id="max-per-provider"),
        pytest.param([member("a", "DE"), member("b", "FR")], {"min_jurisdictions": 3, "replicas": 3, **STRICT},
                     "minJurisdictions", id="min-jurisdictions"),
        pytest.param([member("a", "DE", "p1"), member("b", "FR", "p1")],
                     {"min_providers": 2, "replicas": 2, **STRICT}, "minProviders", id="min-providers"),
        pytest.param([member("a", "DE", shapes=[shape(free=2)])], {"replicas": 3}, "replicas", id="capacity"),
        pytest.param([member("a", "DE", shapes=[shape(product="A100")])], {"products": ["H100"], "replicas": 1},
                     "gpu", id="no-such-gpu"),
        pytest.param([member("a", "DE"), member("b", "CN")], {"denied_jurisdictions": {"CN"}, "min_jurisdictions": 2,
                     "replicas": 2, **STRICT}, "minJurisdictions", id="denied-leaves-too-few-jurisdictions"),
        pytest.param([member("a", "DE", shapes=[shape(free=2)]), member("b", "FR", shapes=[shape(free=1)])],
                     {"min_jurisdictions": 3, "max_per_jurisdiction": 1, "replicas": 3}, "maxPerJurisdiction",
                     id="degrading-cannot-break-a-limit"),
        pytest.param([member("a", "DE"), member("b", "CH")], {"require_tee": True, "replicas": 1}, "requireTEE",
                     id="no-tee-anywhere"),
        pytest.param([member("a", "DE", labels={"tier": "b"})], {"cluster_selector": {"tier": "a"}, "replicas": 1},
                     "clusterSelector", id="selector-matches-nothing"),
    ],
)  # fmt: skip
def test_infeasible_names_the_binding_rule(
    members: list[placement.MemberInfo], rules: dict[str, Any], binding: str
) -> None:
    snapshot = world(*members)
    decision = placement.solve(snapshot, request(rules.pop("replicas"), **rules))
    assert not decision.feasible
    assert decision.assignments == {}, "all or nothing"
    assert decision.binding_rule == binding
    assert decision.explanation


def test_explanation_says_what_would_help() -> None:
    snapshot = world(member("a", "DE"), member("b", "FR"))
    decision = placement.solve(snapshot, request(3, min_jurisdictions=3, **STRICT))
    assert decision.explanation == (
        "needs 3 jurisdictions, only 2 eligible (DE, FR); allow more jurisdictions or lower minJurisdictions"
    )
    assert decision.diagnosis["a"] == ("eligible (capacity 3) but no placement keeps every rule",)


def test_schedule_anyway_places_every_replica_and_says_which_minimum_is_short() -> None:
    snapshot = world(member("a", "DE"), member("b", "FR"))
    decision = placement.solve(snapshot, request(3, min_jurisdictions=3))
    assert decision.feasible and decision.degraded
    assert dict(decision.assignments) == {"a": 2, "b": 1}
    assert decision.shortfalls == (placement.Shortfall("minJurisdictions", required=3, reached=2),)
    assert str(decision.shortfalls[0]) == "minJurisdictions 3 not met: 2 reached, 1 short"
    assert decision.binding_rule is None
    assert decision.explanation == (
        "needs 3 jurisdictions, only 2 eligible (DE, FR); allow more jurisdictions or lower minJurisdictions"
    )


@pytest.mark.parametrize(
    ("assignments", "rules", "broken"),
    [
        pytest.param({"a": 1, "b": 1}, {}, None, id="keeps-every-rule"),
        pytest.param({"a": 1}, {}, "replicas: 1 placed, 2 requested", id="wrong-total"),
        pytest.param({"a": 1, "ghost": 1}, {}, "ghost: not a member of the snapshot", id="unknown-member"),
        pytest.param({"a": 1, "cn": 1}, {"denied_jurisdictions": {"CN"}}, "cn: not eligible (denied: jurisdiction CN)",
                     id="ineligible-member"),
        pytest.param({"small": 2}, {}, "small: 2 replicas, capacity 1", id="over-capacity"),
        pytest.param({"a": 2}, {"max_per_cluster": 1}, "maxPerCluster: a has 2 > 1", id="max-per-cluster"),
        pytest.param({"a": 1, "b": 1}, {"max_per_jurisdiction": 1}, "maxPerJurisdiction: DE has 2 > 1",
                     id="max-per-jurisdiction"),
        pytest.param({"a": 1, "no": 1}, {"max_per_alliance": 1}, "maxPerAlliance: eea has 2 > 1",
                     id="max-per-alliance"),
        pytest.param({"a": 1, "b": 1}, {"max_per_provider": 1}, "maxPerProvider: cloud has 2 > 1",
                     id="max-per-provider"),
        pytest.param({"a": 2}, {"min_jurisdictions": 2}, "minJurisdictions: 1 < 2", id="min-jurisdictions"),
        pytest.param({"a": 2}, {"min_providers": 2}, "minProviders: 1 < 2", id="min-providers"),
    ],
)  # fmt: skip
def test_violations_names_each_broken_rule(
    assignments: dict[str, int], rules: dict[str, Any], broken: str | None
) -> None:
    snapshot = world(
        member("a", "DE"), member("b", "DE"), member("no", "NO"), member("cn", "CN"),
        member("small", "CH", shapes=[shape(free=1)]),
    )  # fmt: skip
    found = placement.violations(snapshot, request(2, **rules), assignments)
    assert found == [] if broken is None else broken in [str(v) for v in found]
