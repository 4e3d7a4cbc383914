"""Warm standbys on the sandbox, with model servers that take 20 s to load (issue #14).

Ground truth is what the members run: pods of the workload, their role label and their Ready
condition, read from every reachable member at once. (a) Without standbys, a killed member's serving
capacity comes back only after the load delay: the delay is real. (b) With one standby, killing a
member that serves gives full serving capacity back within seconds, by promoting the standby pod in
place (same pod UID), and a new standby is Ready a load delay later; the Service in each member
selects serving pods only, and `status.endpoints` never lists the lost member.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from e2e.operator import OperatorProcess
from e2e.sandbox import members, stages
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import (
    UID_LABEL,
    StatusSampler,
    aiworkload,
    get_workload,
    heal_and_remove,
    rule_violations,
)

LOAD_S = 20
RULES = {"minJurisdictions": 2, "maxPerCluster": 1}
ROLE_LABEL = "samizdat.io/role"
WARM_RESTORE_S = 6.0


def loading_workload(name: str, replicas: int, standby: int) -> dict[str, Any]:
    template = {"metadata": {"annotations": {stages.READY_AFTER_ANNOTATION: f"{LOAD_S}s"}},
                "spec": {"containers": [{"name": "server", "image": "registry.invalid/llm-server:1",
                                         "ports": [{"name": "http", "containerPort": 8000}]}]}}
    return aiworkload(name, replicas, RULES, template=template, failover={"standbyReplicas": standby})


def pods(sandbox: Sandbox, uid: str) -> dict[str, list[dict[str, Any]]]:
    """Live pods of the workload in every reachable member, read from all members at once."""
    reachable = [m for m in sandbox.member_names if not sandbox.state.clusters[m].faults]

    def read(member: str) -> list[dict[str, Any]]:
        result = sandbox.kubectl(member).run(
            "get", "pods", "-n", members.WORKLOAD_NAMESPACE, "-l", f"{UID_LABEL}={uid}", "-o", "json", check=False)
        if result.returncode != 0:
            return []
        return [p for p in json.loads(result.stdout)["items"] if not p["metadata"].get("deletionTimestamp")]

    with ThreadPoolExecutor(len(reachable)) as pool:
        return dict(zip(reachable, pool.map(read, reachable), strict=True))


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def role(pod: dict[str, Any]) -> str:
    return str(pod["metadata"].get("labels", {}).get(ROLE_LABEL, ""))


def ready_in_role(found: dict[str, list[dict[str, Any]]], wanted: str) -> dict[str, str]:
    """Ready pods of one role: pod UID -> member."""
    return {p["metadata"]["uid"]: member for member, items in found.items() for p in items
            if ready(p) and role(p) == wanted}


@pytest.fixture
def loaded(hub: Sandbox, operator: OperatorProcess, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A workload of 2 serving replicas (and `param` standbys) whose pods load for 20 s, settled."""
    standby: int = request.param
    name = f"standby-{standby}"
    hub.kubectl("hub").apply([loading_workload(name, 2, standby)])
    workload = eventually(
        lambda: (w := get_workload(hub, name)).get("status", {}).get("servingReplicas") == 2
        and w["status"].get("standbyReplicas") == standby and w,
        timeout=LOAD_S + 60, what=f"{name}: 2 serving and {standby} standby ready")
    sampler = StatusSampler(hub, name, RULES, 2 + standby)
    sampler.start()
    yield {"name": name, "uid": workload["metadata"]["uid"], "workload": workload, "standby": standby}
    problems = sampler.stop()
    heal_and_remove(hub, name, workload["metadata"]["uid"])
    assert problems == [], problems


def kill_a_serving_member(hub: Sandbox, uid: str) -> tuple[str, float]:
    serving = ready_in_role(pods(hub, uid), "serving")
    victim = sorted(serving.values())[0]
    hub.kill(victim)
    return victim, time.monotonic()


def serving_back(hub: Sandbox, uid: str, victim: str, killed: float, timeout: float) -> float:
    """Seconds from the kill until 2 ready serving pods run outside the victim (ground truth)."""
    def back() -> float | None:
        found = pods(hub, uid)
        if len(ready_in_role(found, "serving")) >= 2:
            return time.monotonic() - killed
        return None

    return eventually(back, timeout=timeout, interval=0.1, what="serving capacity back")


@pytest.mark.parametrize("loaded", [0], indirect=True)
def test_without_standbys_a_killed_members_replica_serves_only_after_its_load(
    hub: Sandbox, loaded: dict[str, Any],
) -> None:
    victim, killed = kill_a_serving_member(hub, loaded["uid"])
    seconds = serving_back(hub, loaded["uid"], victim, killed, timeout=LOAD_S + 60)
    assert seconds >= LOAD_S, f"a cold replica served after {seconds:.1f}s, before its {LOAD_S}s load"
    status = get_workload(hub, loaded["name"])["status"]
    assert victim not in [e["cluster"] for e in status.get("endpoints", [])]


@pytest.mark.parametrize("loaded", [1], indirect=True)
def test_a_standby_is_promoted_in_place_within_seconds(hub: Sandbox, loaded: dict[str, Any]) -> None:
    uid = loaded["uid"]
    before = pods(hub, uid)
    (standby_uid, spare), = ready_in_role(before, "standby").items()
    endpoints_before = [e["cluster"] for e in loaded["workload"]["status"]["endpoints"]]
    assert spare not in endpoints_before, "a standby is no endpoint"
    service = hub.kubectl(spare).get_json("services", "-n", members.WORKLOAD_NAMESPACE, "-l", f"{UID_LABEL}={uid}")
    selector = ",".join(f"{k}={v}" for k, v in service["items"][0]["spec"]["selector"].items())
    selected = hub.kubectl(spare).get_json("pods", "-n", members.WORKLOAD_NAMESPACE, "-l", selector)["items"]
    assert selected == [], "the serving Service selects no standby"

    victim, killed = kill_a_serving_member(hub, uid)
    seconds = serving_back(hub, uid, victim, killed, timeout=LOAD_S)

    assert seconds <= WARM_RESTORE_S, f"serving capacity back after {seconds:.1f}s"
    after = pods(hub, uid)
    assert ready_in_role(after, "serving").get(standby_uid) == spare, "the same pod serves now, not restarted"
    eventually(lambda: len(ready_in_role(pods(hub, uid), "standby")) == 1, timeout=LOAD_S + 30,
               what="a new standby ready")
    status = eventually(lambda: (w := get_workload(hub, loaded["name"])["status"]).get("standbyReplicas") == 1 and w,
                        timeout=30, what="status shows the new standby")
    endpoints = [e["cluster"] for e in status["endpoints"]]
    # (the standby promoted may later swap roles with the new one, to restore country cover)
    assert victim not in endpoints and len(endpoints) == 2 and endpoints != endpoints_before
    assert status["servingReplicas"] == 2
    final = {member: len(items) for member, items in pods(hub, uid).items() if items}
    assert rule_violations(final, RULES) == [], final
    print(f"warm standby: serving capacity back {seconds:.2f}s after the kill")
