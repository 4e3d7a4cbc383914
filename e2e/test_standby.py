"""Warm standbys on the sandbox, with model servers that take 20 s to load (issue #14).

Ground truth is what the members run: pods of the workload, their role label and their Ready
condition, read from every reachable member at once by `e2e.roles.RoleSampler`, which also reads the
workload's status in between and judges every sample (rules, a standby never counted as serving, no
endpoint in a lost member). (a) Without standbys, a killed member's serving capacity comes back only
after the load delay: the delay is real. (b) With one standby, killing a member that serves gives full
serving capacity back within seconds, by promoting the standby pod in place (same pod UID), and a new
standby is Ready a load delay later; the Service in each member selects serving pods only, and
`status.lastFailover` times the promotion, then the new standby.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from e2e.operator import OperatorProcess
from e2e.roles import STANDBY, RoleSampler, Sample, ready_in_role
from e2e.sandbox import members, stages
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import UID_LABEL, aiworkload, get_workload, heal_and_remove, rule_violations

LOAD_S = 20
# Three replicas in three countries: whichever serving member is killed, the standby abroad keeps the
# serving replicas in two countries, so promoting it breaks no rule.
RULES = {"minJurisdictions": 2, "maxPerJurisdiction": 1}
WARM_RESTORE_S = 6.0


def loading_workload(name: str, replicas: int, standby: int) -> dict[str, Any]:
    template = {"metadata": {"annotations": {stages.READY_AFTER_ANNOTATION: f"{LOAD_S}s"}},
                "spec": {"containers": [{"name": "server", "image": "registry.invalid/llm-server:1",
                                         "ports": [{"name": "http", "containerPort": 8000}]}]}}
    return aiworkload(name, replicas, RULES, template=template, failover={"standbyReplicas": standby})


@pytest.fixture
def loaded(hub: Sandbox, operator: OperatorProcess, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A workload of 2 serving replicas (and `param` standbys) whose pods load for 20 s, settled, with
    the members and its status sampled from then on."""
    standby: int = request.param
    name = f"standby-{standby}"
    hub.kubectl("hub").apply([loading_workload(name, 2, standby)])
    workload = eventually(
        lambda: (w := get_workload(hub, name)).get("status", {}).get("servingReplicas") == 2
        and w["status"].get("standbyReplicas") == standby and w,
        timeout=LOAD_S + 60, what=f"{name}: 2 serving and {standby} standby ready")
    uid = workload["metadata"]["uid"]
    sampler = RoleSampler(hub, name, uid, RULES, 2 + standby)
    sampler.start()
    eventually(lambda: len(sampler.samples) >= 2, timeout=10, what="the members sampled")
    try:
        yield {"name": name, "uid": uid, "workload": workload, "standby": standby, "sampler": sampler}
    finally:
        sampler.stop()
        heal_and_remove(hub, name, uid)


@dataclass(frozen=True)
class Kill:
    """One member killed under a served workload, and when."""

    victim: str
    began: float  # monotonic, just before the kill: samples read from here on may miss the victim
    done: float  # monotonic, once the victim's API server is gone


def kill_a_serving_member(hub: Sandbox, sampler: RoleSampler) -> Kill:
    latest = sampler.latest()
    assert latest is not None
    victim = sorted(latest.serving().values())[0]
    began = time.monotonic()
    hub.kill(victim)
    return Kill(victim, began, time.monotonic())


def serving_back(sampler: RoleSampler, kill: Kill, timeout: float) -> Sample:
    """The first sample read wholly after the kill with 2 Ready serving pods in the members (ground
    truth: the killed member cannot be read, so its pods are not among them)."""
    def back() -> Sample | None:
        return next((s for s in sampler.samples if s.began > kill.done and len(s.serving()) >= 2), None)

    found = eventually(back, timeout=timeout, interval=0.1, what="serving capacity back")
    assert found is not None
    return found


@pytest.mark.parametrize("loaded", [0], indirect=True)
def test_without_standbys_a_killed_members_replica_serves_only_after_its_load(
    hub: Sandbox, loaded: dict[str, Any],
) -> None:
    sampler: RoleSampler = loaded["sampler"]
    kill = kill_a_serving_member(hub, sampler)
    victim = kill.victim
    back = serving_back(sampler, kill, timeout=LOAD_S + 60)
    seconds = back.at - kill.began
    assert seconds >= LOAD_S, f"a cold replica served after {seconds:.1f}s, before its {LOAD_S}s load"
    eventually(lambda: (s := sampler.latest()) is not None and s.at > back.at + 1, timeout=10, what="a second more")
    assert sampler.problems(victim, kill.began, back.at) == []
    status = eventually(lambda: (w := get_workload(hub, loaded["name"])["status"]).get("lastFailover") and w,
                        timeout=30, what="status shows the failover's end")
    assert victim not in [e["cluster"] for e in status.get("endpoints", [])]
    assert status["lastFailover"]["seconds"] >= LOAD_S and "standbySeconds" not in status["lastFailover"]
    print(f"cold: serving capacity back {seconds:.2f}s after the kill")


@pytest.mark.parametrize("loaded", [1], indirect=True)
def test_a_standby_is_promoted_in_place_within_seconds(hub: Sandbox, loaded: dict[str, Any]) -> None:
    uid, sampler = loaded["uid"], loaded["sampler"]
    before = sampler.latest()
    assert before is not None
    (standby_uid, spare), = ready_in_role(before.after, STANDBY).items()
    endpoints_before = [e["cluster"] for e in loaded["workload"]["status"]["endpoints"]]
    assert spare not in endpoints_before, "a standby is no endpoint"
    service = hub.kubectl(spare).get_json("services", "-n", members.WORKLOAD_NAMESPACE, "-l", f"{UID_LABEL}={uid}")
    selector = ",".join(f"{k}={v}" for k, v in service["items"][0]["spec"]["selector"].items())
    selected = hub.kubectl(spare).get_json("pods", "-n", members.WORKLOAD_NAMESPACE, "-l", selector)["items"]
    assert selected == [], "the serving Service selects no standby"

    kill = kill_a_serving_member(hub, sampler)
    victim = kill.victim
    back = serving_back(sampler, kill, timeout=LOAD_S)
    seconds = back.at - kill.began

    assert seconds <= WARM_RESTORE_S, f"serving capacity back after {seconds:.1f}s"
    assert back.serving().get(standby_uid) == spare, "the same pod serves now, not restarted"
    restored = eventually(lambda: next((s for s in sampler.samples if s.at > back.at
                                        and len(ready_in_role(s.after, STANDBY)) == 1), None),
                          timeout=LOAD_S + 30, what="a new standby ready")
    assert restored is not None
    status = eventually(lambda: (w := get_workload(hub, loaded["name"])["status"]).get("standbyReplicas") == 1
                        and w.get("lastFailover", {}).get("standbySeconds") and w,
                        timeout=30, what="status shows the new standby and the failover's end")
    endpoints = [e["cluster"] for e in status["endpoints"]]
    # (the standby promoted may later swap roles with the new one, to restore country cover)
    assert victim not in endpoints and len(endpoints) == 2 and endpoints != endpoints_before
    assert status["servingReplicas"] == 2
    failover = status["lastFailover"]
    assert failover["fromCluster"] == victim and failover["seconds"] <= WARM_RESTORE_S, failover
    assert failover["standbySeconds"] >= LOAD_S, failover
    problems = sampler.problems(victim, kill.began, back.at)
    assert problems == [], problems
    final = {member: len(items) for member, items in restored.after.items() if items}
    assert rule_violations(final, RULES) == [], final
    print(f"warm standby: serving capacity back {seconds:.2f}s after the kill; status {failover}; "
          f"{len(sampler.samples)} samples")
