"""The operator on the sandbox: place by the rules, re-place with fewest moves, delete, survive SIGKILL."""

from __future__ import annotations

import time
from typing import Any

import pytest

from e2e.operator import OperatorProcess
from e2e.sandbox import members
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import (
    aiworkload,
    apply_manifest,
    condition,
    copies,
    delete_workload,
    member_pods,
    rule_violations,
    wait_condition,
    wait_running,
    wait_settled,
)

SAMPLE_RULES = {"minJurisdictions": 3, "maxPerJurisdiction": 2, "deniedAlliances": ["five-eyes"]}


@pytest.fixture
def sample(hub: Sandbox, operator: OperatorProcess) -> Any:
    apply_manifest(hub, aiworkload("sample", 4, SAMPLE_RULES))
    workload = wait_settled(hub, "sample", 4)
    yield workload
    delete_workload(hub, "sample")
    uid = workload["metadata"]["uid"]
    eventually(lambda: not copies(hub, uid), timeout=60, what="sample's copies removed")


def test_sample_workload_runs_in_members_that_satisfy_every_rule(hub: Sandbox, sample: dict[str, Any]) -> None:
    uid = sample["metadata"]["uid"]
    running = wait_running(hub, uid, 4)
    assert rule_violations(running, SAMPLE_RULES) == []
    placements = {p["cluster"]: p["replicas"] for p in sample["status"]["placements"]}
    assert placements == running
    assert sample["status"]["jurisdictions"] >= 3
    table = hub.kubectl("hub").run("get", "aiw", "sample", "-n", "default").stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:7] == ["NAME", "REPLICAS", "READY", "SERVING", "STANDBY", "JURISDICTIONS", "RULES"]
    assert row.split()[1:7] == ["4", "4", "4", "0", str(sample["status"]["jurisdictions"]), "True"]  # no standbys


def test_scaling_up_keeps_every_replica_where_it_was(hub: Sandbox, sample: dict[str, Any]) -> None:
    before = {p["cluster"]: p["replicas"] for p in sample["status"]["placements"]}
    apply_manifest(hub, aiworkload("sample", 5, SAMPLE_RULES))
    after = {p["cluster"]: p["replicas"] for p in wait_settled(hub, "sample", 5)["status"]["placements"]}
    assert all(after.get(member, 0) >= n for member, n in before.items()), (before, after)
    assert sum(after.values()) == 5
    assert rule_violations(member_pods(hub, sample["metadata"]["uid"]), SAMPLE_RULES) == []


def test_tightening_a_rule_moves_only_what_breaks_it(hub: Sandbox, sample: dict[str, Any]) -> None:
    before = {p["cluster"]: p["replicas"] for p in sample["status"]["placements"]}
    rules = {**SAMPLE_RULES, "maxPerCluster": 1}
    apply_manifest(hub, aiworkload("sample", 4, rules))
    after = {p["cluster"]: p["replicas"] for p in wait_settled(hub, "sample", 4)["status"]["placements"]}
    assert all(n <= 1 for n in after.values())
    kept = sum(min(n, after.get(member, 0)) for member, n in before.items())
    assert kept >= sum(min(n, 1) for n in before.values()), (before, after)


def test_infeasible_rules_name_the_rule_and_create_nothing(hub: Sandbox, operator: OperatorProcess) -> None:
    # Outside the Five Eyes the default layout has DE, CH and FR: four countries cannot be had, and
    # DoNotSchedule keeps minJurisdictions a hard rule (ScheduleAnyway would place 4 in 3 countries).
    rules = {"minJurisdictions": 4, "deniedAlliances": ["five-eyes"], "whenUnsatisfiable": "DoNotSchedule"}
    apply_manifest(hub, aiworkload("impossible", 4, rules))
    try:
        workload = wait_condition(hub, "impossible", "RulesSatisfied")
        rules = condition(workload, "RulesSatisfied")
        assert rules["status"] == "False"
        assert rules["reason"] == "MinJurisdictions"
        assert "minJurisdictions" in rules["message"]
        time.sleep(2)
        assert copies(hub, workload["metadata"]["uid"]) == {}
        events = hub.kubectl("hub").run(
            "get", "events", "-n", "default", "--field-selector", "involvedObject.name=impossible", "-o", "json"
        ).stdout
        assert "Infeasible" in events
    finally:
        delete_workload(hub, "impossible")


def test_a_training_job_grows_in_place_when_its_member_gets_more_replicas(
    hub: Sandbox, operator: OperatorProcess
) -> None:
    # Only Switzerland is allowed, so every replica lands on ch-zurich and its one Job must grow
    # while it runs (the sandbox keeps training pods running, as a long training run would be).
    rules = {"minJurisdictions": 1, "allowedJurisdictions": ["CH"]}
    apply_manifest(hub, aiworkload("trainer", 2, rules, mode="Train"))
    try:
        trainer = wait_settled(hub, "trainer", 2)
        uid = trainer["metadata"]["uid"]
        assert "training replicas running or done" in condition(trainer, "Available")["message"]
        apply_manifest(hub, aiworkload("trainer", 3, rules, mode="Train"))
        wait_settled(hub, "trainer", 3)
        found = hub.kubectl("ch-zurich").get_json(
            "jobs", "-n", members.WORKLOAD_NAMESPACE, "-l", f"samizdat.io/workload-uid={uid}"
        )["items"]
        assert len(found) == 1, "the Job grew in place, not beside another"
        assert (found[0]["spec"]["completions"], found[0]["spec"]["parallelism"]) == (3, 3)
        assert member_pods(hub, uid) == {"ch-zurich": 3}
    finally:
        delete_workload(hub, "trainer")


def test_deleting_a_workload_removes_every_member_copy(hub: Sandbox, operator: OperatorProcess) -> None:
    apply_manifest(hub, aiworkload("short-lived", 3, {"minJurisdictions": 3}))
    uid = wait_settled(hub, "short-lived", 3)["metadata"]["uid"]
    assert len(copies(hub, uid)) >= 3
    delete_workload(hub, "short-lived")
    eventually(lambda: not copies(hub, uid) and not member_pods(hub, uid, running=False), timeout=60,
               what="every copy and pod gone")
    eventually(lambda: hub.kubectl("hub").run("get", "aiw", "short-lived", "-n", "default", check=False).returncode,
               timeout=30, what="finalizer released")


def test_sigkilled_operator_changes_nothing_right_and_finishes_half_done_work(
    hub: Sandbox, operator: OperatorProcess, sample: dict[str, Any]
) -> None:
    uid = sample["metadata"]["uid"]
    before = copies(hub, uid)
    generations = {member: d["metadata"]["generation"] for member, d in before.items()}
    operator.kill()
    # Half done: one copy is missing, as if the operator died between two members.
    victim = sorted(before)[0]
    hub.kubectl(victim).run("delete", "deployment", before[victim]["metadata"]["name"],
                            "-n", members.WORKLOAD_NAMESPACE)
    operator.start()
    eventually(lambda: set(copies(hub, uid)) == set(before), timeout=60, what="missing copy re-created")
    wait_settled(hub, "sample", 4)
    after = copies(hub, uid)
    for member, deployment in after.items():
        if member != victim:
            assert deployment["metadata"]["generation"] == generations[member], f"{member} was rewritten"
    assert {m: d["spec"]["replicas"] for m, d in after.items()} == {m: d["spec"]["replicas"] for m, d in before.items()}
