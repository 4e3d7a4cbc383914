"""One reconcile, decide -> apply -> report, over a fleet of fake members (see `support.fleet`): each test
drives one failure of the failure model through `reconcile` and the pure report, and checks what would
then run where and what the workload's status says."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from samizdat.app.handlers import reconcile as reconciling
from samizdat.app.handlers.reconcile import needs_write, reconcile
from samizdat.core import manifests, model, report
from samizdat.core.model import FailoverReason, Phase
from samizdat.remote.clusters import resources
from support.fleet import (THREE, UID, World, holders, reconciled, roles, running, serving_members, settle,
                           workload, world)

__all__ = ["world"]  # the fixture, used by name


async def test_a_verdict_that_quarantines_a_member_is_applied_after_the_decision_made_on_what_was_read(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A start verdict that names someone else's act (a GPU quota imposed on our namespace) quarantines
    the member; the decision is made on the view as read, with that member lost to it as the fleet will
    have it, and only then is the member's health changed."""
    await world.connect()
    aiw = workload()
    await reconcile(aiw, world.fleet)
    starving = sorted(holders(world))[0]
    member = world.members[starving]
    body = copy.deepcopy(member.copies[UID].body)
    old = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body["metadata"].update(creationTimestamp=old, managedFields=[{"manager": "samizdat", "time": old}])
    body["status"] = {"conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                      "lastTransitionTime": old,
                                      "message": 'pods "x" is forbidden: exceeded quota: gpus'}]}
    member.observed(resources.DEPLOYMENTS, "MODIFIED", body)
    member.listed(resources.PODS, tuple(p for p in member.pods.values()
                                        if p["metadata"]["labels"].get(manifests.UID_LABEL) != UID))
    decided_on: list[tuple[Phase, Any]] = []
    solve = reconciling.solve

    def watched(workload: model.AIWorkload, view: Any) -> Any:
        state = world.fleet.state(starving)
        assert state is not None
        decided_on.append((state.health.phase, view))
        return solve(workload, view)

    monkeypatch.setattr(reconciling, "solve", watched)
    result = await reconcile(aiw, world.fleet)

    ((phase, view),) = decided_on
    assert phase is Phase.READY, "the member's health was changed while the decision was being made"
    assert result.starved[starving].censorship is model.CensorshipKind.QUOTA_IMPOSED
    assert result.view is view, "the result describes the view it was decided on"
    assert starving not in view.counted and starving not in view.current and starving not in view.fenced
    (seen,) = [m for m in view.snapshot.members if m.name == starving]
    assert seen.shapes == () and (seen.unschedulable_reason or "").startswith("quarantined: ")
    assert result.decision is not None and starving not in result.decision.assignments
    assert sum(result.decision.assignments.values()) == 2, "placed elsewhere under the same rules"
    assert result.left_behind == (starving,), "a quarantined member's copy is the fence's to delete"
    assert result.lost[starving].reason is FailoverReason.CENSORING
    state = world.fleet.state(starving)
    assert state is not None and state.health.phase is Phase.QUARANTINED, "applied after the decision"
    status, _ = report.build_status(aiw, result, None)
    assert starving not in [p["cluster"] for p in status["placements"]]
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Degraded"] == "MemberLost"


async def test_lost_replicas_are_placed_elsewhere_and_the_rest_stay(world: World) -> None:
    await world.connect()
    first = await reconcile(workload(), world.fleet)
    assert first.converged and sum(first.decision.assignments.values()) == 2  # type: ignore[union-attr]
    victim, kept = sorted(holders(world))
    spare = (set(THREE) - {victim, kept}).pop()
    world.lose(victim)

    outcome = await reconcile(workload(), world.fleet)

    assert outcome.lost[victim].reason is FailoverReason.MEMBER_DOWN
    assert outcome.lost[victim].since == 1000.0, "the failover started with the first failed probe"
    assert outcome.decision is not None and outcome.decision.assignments == {kept: 1, spare: 1}
    assert [m["spec"]["replicas"] for m in world.members[spare].applied] == [1]
    assert len(world.members[kept].applied) == 1, "the healthy replica stays where it is, untouched"
    assert outcome.left_behind == (victim,), "an unreachable member's copy is the fence's to delete"
    assert world.fleet.current(UID) == {kept: 1, spare: 1}


async def test_our_own_deletes_are_not_censorship(world: World) -> None:
    await world.connect()
    await reconcile(workload(replicas=3), world.fleet)
    before = holders(world)
    outcome = await reconcile(workload(replicas=2), world.fleet)
    await settle()
    assert sum(holders(world).values()) == 2 and sum(before.values()) == 3
    assert [c.verb for c in outcome.changes].count("removed") + [c.verb for c in outcome.changes].count("scaled") >= 1
    assert all(member.health.phase is Phase.READY for member in world.members.values())


async def test_the_self_partition_guard_halts_evictions(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    writes = {name: len(member.applied) for name, member in world.members.items()}
    lost = sorted(holders(world))
    for name in lost:
        world.lose(name)

    outcome = await reconcile(workload(), world.fleet)

    assert outcome.halted and "evictions are halted" in outcome.halted
    assert outcome.decision is None and set(outcome.lost) == set(lost)
    assert {name: len(member.applied) for name, member in world.members.items()} == writes, "nothing moved"
    status, gauges = report.build_status(workload(), outcome, None)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Degraded"] == ("True", "EvictionsHalted")
    assert gauges["ready_by_country"] == {}, "lost members' replicas count nowhere"


async def test_after_a_restart_the_fleet_settles_and_nothing_moves(world: World) -> None:
    placed = {name: manifests.build_copy(workload(), 1) for name in ("de", "fr")}
    orphan = manifests.build_copy(workload().model_copy(update={"metadata": model.ObjectMeta(
        name="gone", namespace="team-a", uid="99999999-0000-4000-8000-000000000000", generation=1)}), 1)
    assert world.fleet.settling(THREE), "what members hold is not known yet"

    await world.connect({"de": (running(placed["de"]), running(orphan)), "fr": (running(placed["fr"]),)})

    assert not world.fleet.settling(THREE), "every member connected, probed and fenced"
    assert world.members["de"].erased == [orphan["metadata"]["name"]], "the orphan sweep removed a gone workload's copy"
    outcome = await reconcile(workload(), world.fleet)
    assert outcome.converged and outcome.changes == (), "a restart moves and rewrites nothing"
    status, gauges = report.build_status(workload(), outcome, None)
    assert status["readyReplicas"] == 2 and status["jurisdictionList"] == ["DE", "FR"]
    # roles are read from pods, and these members listed their copies only
    assert gauges == {"desired": 2, "ready_by_country": {"DE": 1, "FR": 1}, "serving": 0, "standby": 0,
                      "jurisdictions": 2, "required": 2, "violations": 0}


async def test_a_broad_outage_gives_up_spread_not_capacity_and_restores_it(world: World) -> None:
    """Issue #12 in small: Japan down leaves Germany and France, at most 2 replicas each, for 4 replicas
    that want 3 countries: all 4 run, the status says which minimum is given up, and healing restores it."""
    spread = workload(4, minJurisdictions=3, maxPerJurisdiction=2)
    await world.connect()
    await reconcile(spread, world.fleet)
    world.lose("jp")

    # Status describes the view its decision was made on: the copies scaled up for the move are counted
    # by the reconcile their watch events wake, the second here.
    outcome = await reconciled(world, spread)

    assert outcome.decision is not None and outcome.decision.degraded
    assert outcome.decision.assignments == {"de": 2, "fr": 2}
    status, gauges = report.build_status(spread, outcome, None)
    conditions = {c["type"]: c for c in status["conditions"]}
    rules = conditions["RulesSatisfied"]
    assert (rules["status"], rules["reason"]) == ("False", "SpreadDegraded")
    assert "minJurisdictions 3 not met: 2 reached, 1 short" in rules["message"]
    assert conditions["Degraded"]["status"] == "True"  # MemberLost while Japan's copy is left behind
    assert gauges["violations"] == 1 and gauges["jurisdictions"] == 2
    assert "SpreadDegraded" in [reason for _, reason, _ in report.events(spread, outcome)]

    world.heal("jp")
    await settle()
    healed = await reconcile(spread, world.fleet)

    assert healed.decision is not None and not healed.decision.degraded
    assert healed.decision.moves == 1, "one replica moves back to restore the third country"


async def test_an_unreachable_member_fails_its_write_and_the_others_proceed(world: World) -> None:
    await world.connect()
    world.members["de"].unreachable = True
    world.members["fr"].unreachable = True
    outcome = await reconcile(workload(replicas=3, minJurisdictions=3, maxPerCluster=1), world.fleet)
    assert set(outcome.failures) == {"de", "fr"} and not outcome.converged
    assert len(world.members["jp"].applied) == 1


@pytest.mark.parametrize(("existing", "replicas", "verb"), [
    pytest.param(None, 2, "placed", id="absent"),
    pytest.param({"generation": "1", "replicas": "2"}, 2, None, id="as-wanted"),
    pytest.param({"generation": "0", "replicas": "2"}, 2, "updated", id="older-generation"),
    pytest.param({"generation": "1", "replicas": "1"}, 2, "scaled", id="other-replicas"),
    pytest.param({"generation": "1", "replicas": "2", "actual": 0}, 2, "updated", id="scaled-to-zero-by-a-censor"),
    pytest.param({"generation": "1", "replicas": "2", "image": "censor/x:1"}, 2, "updated",
                 id="image-swapped-by-a-censor"),
])
def test_needs_write(existing: dict[str, Any] | None, replicas: int, verb: str | None) -> None:
    """A copy a censor changed is written back once its member is ours again: after its quarantine
    the fence keeps a copy the decision still wants, and nothing else would restore it."""
    body = None if existing is None else {"kind": "Deployment", "metadata": {"annotations": {
        manifests.GENERATION_ANNOTATION: existing["generation"],
        manifests.REPLICAS_ANNOTATION: existing["replicas"],
        manifests.IMAGES_ANNOTATION: '{"server": "example/llm:1"}'}},
        "spec": {"replicas": existing.get("actual", int(existing["replicas"])), "template": {"spec": {
            "containers": [{"name": "server", "image": existing.get("image", "example/llm:1")}]}}}}
    assert needs_write(workload(), body, replicas) == verb


async def test_a_replica_on_a_gpu_the_agent_found_faulted_is_placed_elsewhere(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    victim, kept = sorted(holders(world))
    spare = (set(THREE) - {victim, kept}).pop()
    member = world.members[victim]
    node = copy.deepcopy(member.nodes[f"{victim}-gpu-0"])
    pod = {"metadata": {"uid": "pod-1", "name": "llm-pod", "labels": {manifests.UID_LABEL: UID}},
           "spec": {"nodeName": node["metadata"]["name"],
                    "containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
           "status": {"phase": "Running"}}
    member.observed(resources.PODS, "ADDED", pod)
    assert world.fleet.current(UID) == {victim: 1, kept: 1}
    # XID 79: the member's agent taints the node (NoExecute), its GPUs count as gone
    node["spec"] = {"taints": [{"key": "samizdat.io/gpu-fault", "value": "Xid79", "effect": "NoExecute"}]}
    member.observed(resources.NODES, "MODIFIED", node)
    assert world.fleet.current(UID) == {victim: 0, kept: 1}

    outcome = await reconcile(workload(), world.fleet)

    assert outcome.decision is not None and outcome.decision.assignments == {kept: 1, spare: 1}
    assert [m["spec"]["replicas"] for m in world.members[spare].applied] == [1]


# ----- warm standbys and endpoints


def status_of(world: World, aiw: model.AIWorkload, outcome: Any) -> dict[str, Any]:
    return report.build_status(aiw, outcome, None)[0]


async def test_standbys_are_placed_ready_but_not_serving_and_not_an_endpoint(world: World) -> None:
    await world.connect()
    aiw = workload(replicas=2, standby=1, maxPerCluster=1)
    outcome = await reconciled(world, aiw)

    labels = [role for pods in roles(world).values() for role in pods.values()]
    assert sorted(labels) == [manifests.SERVING, manifests.SERVING, manifests.STANDBY]
    (spare,) = [name for name, pods in roles(world).items() if manifests.STANDBY in pods.values()]
    service = world.fleet.service(spare, UID)
    assert service is not None and service["spec"]["selector"][manifests.ROLE_LABEL] == manifests.SERVING
    status, gauges = report.build_status(aiw, outcome, None)
    assert (status["servingReplicas"], status["standbyReplicas"], status["readyReplicas"]) == (2, 1, 3)
    assert (gauges["serving"], gauges["standby"]) == (2, 1), "samizdat_workload_replicas_serving / _standby"
    assert [e["cluster"] for e in status["endpoints"]] == serving_members(world), "a standby is no endpoint"
    assert status["endpoints"][0]["addresses"] == ["127.0.0.1:38000"]
    assert {p["cluster"]: p["standbyReplicas"] for p in status["placements"]}[spare] == 1


async def test_a_workload_without_standbys_is_never_told_of_standbys(world: World) -> None:
    await world.connect(names=("de", "fr", "jp"))
    aiw = workload(replicas=2, maxPerCluster=1)
    placed = await reconciled(world, aiw)
    victim = sorted(placed.decision.assignments)[0] if placed.decision else "de"
    world.lose(victim)

    # The replacement is placed, then (the next reconcile, its pod seen Ready) labelled serving.
    said = [event for _ in range(2) for event in report.events(aiw, await reconcile(aiw, world.fleet))]
    assert any(event.reason == "Placed" for event in said), said
    assert set(serving_members(world)) - {victim} == set(world.members) - {victim}, "the replacement serves"
    assert not [event for event in said if "standby" in event.message or event.reason in ("Promoted", "Demoted")], said


async def test_a_lost_serving_replica_is_replaced_by_promoting_the_standby_in_place(world: World) -> None:
    await world.connect(names=("de", "fr", "jp", "us"))
    aiw = workload(replicas=2, standby=1, maxPerCluster=1)
    await reconciled(world, aiw)
    before = roles(world)
    (spare,) = [name for name, pods in before.items() if manifests.STANDBY in pods.values()]
    victim = serving_members(world)[0]
    for member in world.members.values():
        member.loading = True  # a replica started from now on is cold for a while
    world.lose(victim)

    outcome = await reconcile(aiw, world.fleet)

    assert roles(world)[spare] == {uid: manifests.SERVING for uid in before[spare]}, "same pod, promoted"
    assert world.members[spare].relabelled == [(world.members[spare].pods_of(UID)[0]["metadata"]["name"],
                                                manifests.SERVING)], "one write to the member"
    assert outcome.decision is not None and sum(outcome.decision.assignments.values()) == 3
    (new,) = set(outcome.decision.assignments) - set(before) - {victim} or {
        name for name in outcome.decision.assignments if len(roles(world)[name]) > len(before[name])}
    assert list(roles(world)[new].values()) == [manifests.STANDBY], "the cold replica waits as the new standby"
    assert ("Normal", "Promoted", f"promoted 1 standby replica(s) to serving in {spare}") in report.events(
        aiw, outcome)
    status = status_of(world, aiw, outcome)
    assert status["servingReplicas"] == 2 and status["standbyReplicas"] == 0
    assert victim not in [e["cluster"] for e in status["endpoints"]], "a lost member is never an endpoint"
    assert spare in [e["cluster"] for e in status["endpoints"]]

    world.members[new].loaded()
    status = status_of(world, aiw, await reconcile(aiw, world.fleet))
    assert (status["servingReplicas"], status["standbyReplicas"]) == (2, 1), "N standbys restored"
    assert roles(world)[spare] == {uid: manifests.SERVING for uid in before[spare]}, "no flip back"


async def test_the_standby_is_promoted_even_when_the_lost_replica_cannot_be_placed_again(world: World) -> None:
    await world.connect()
    aiw = workload(replicas=2, standby=1, maxPerCluster=1)
    await reconciled(world, aiw)
    world.lose(serving_members(world)[0])

    outcome = await reconcile(aiw, world.fleet)

    assert outcome.decision is not None and not outcome.decision.feasible, "two members left for three replicas"
    assert status_of(world, aiw, outcome)["servingReplicas"] == 2
    assert all(set(pods.values()) <= {manifests.SERVING} for name, pods in roles(world).items()
               if world.fleet.countable(name))


async def test_without_standbys_every_replica_serves_from_its_start(world: World) -> None:
    await world.connect()
    for member in world.members.values():
        member.loading = True
    aiw = workload(replicas=2)
    outcome = await reconciled(world, aiw)
    assert sorted(role for pods in roles(world).values() for role in pods.values()) == [manifests.SERVING] * 2
    status = status_of(world, aiw, outcome)
    assert status["servingReplicas"] == 0 and status["endpoints"] == [], "serving, but none ready yet"


@pytest.mark.parametrize("standby", [pytest.param(1, id="warm-standby"), pytest.param(0, id="cold")])
async def test_last_failover_ends_when_full_serving_capacity_is_ready_again(world: World, standby: int) -> None:
    await world.connect(names=("de", "fr", "jp", "us"))
    aiw = workload(replicas=2, standby=standby, maxPerCluster=1)
    await reconciled(world, aiw)
    for member in world.members.values():
        member.loading = True  # a replica started from now on loads its weights for a while
    victim = serving_members(world)[0]
    world.lose(victim)
    lost_at = world.members[victim].lost_since
    assert lost_at is not None
    world.clock.now += 1
    timer = report.FailoverTimer()

    timer = timer.observe(report.tally(aiw, await reconcile(aiw, world.fleet), world.clock.now))

    if standby:
        assert timer.last is not None and timer.last.seconds == world.clock.now - lost_at, "the promotion ends it"
        assert timer.last.standby_seconds is None, "the new standby is still loading"
    else:
        assert timer.last is None, "nothing serves in place of the lost replica until it has loaded elsewhere"
    assert timer.running is not None
    world.clock.now += 20
    for member in world.members.values():
        member.loaded()
    timer = timer.observe(report.tally(aiw, await reconcile(aiw, world.fleet), world.clock.now))

    done = timer.last
    assert timer.running is None and done is not None and done.from_cluster == victim
    assert done.seconds == (world.clock.now - 20 if standby else world.clock.now) - lost_at
    assert done.standby_seconds == (world.clock.now - lost_at if standby else None)
    world.clock.now += 30
    timer = timer.observe(report.tally(aiw, await reconcile(aiw, world.fleet), world.clock.now))
    assert timer.running is None and timer.last == done, "a member still lost is not timed again"


async def test_a_write_to_a_member_that_goes_quiet_is_given_up_when_it_is_down(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    victim, kept = sorted(holders(world))
    spare = (set(THREE) - {victim, kept}).pop()
    world.lose(victim)
    world.members[spare].silent = True  # partitioned just after it was chosen: still Ready
    replacing = asyncio.create_task(reconcile(workload(), world.fleet))
    await settle()
    assert not replacing.done(), "the write to the silent member is under way"

    world.members[spare].answers(ok=False)  # its next probe fails: Suspect, still written to
    await settle()
    assert not replacing.done(), "a write to a Suspect member (one missed probe) is not given up"
    world.lose(spare)

    outcome = await asyncio.wait_for(replacing, timeout=1.0)
    assert spare in outcome.failures, "the write was not given up when the member was lost"
