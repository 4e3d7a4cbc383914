"""Starvation: a member keeps our admitted replicas from running without touching our objects.

Its admin cordons or taints the GPU nodes, sets a zero-GPU quota on our namespace, blocks our image,
or stops the scheduler, then drains our pods; their replacements can never start there. Each replica
must be Running elsewhere within the start deadline plus the usual failover time, the member quarantined
(someone else's act) or backed off (capacity) with an Event naming the cause, and the rules must hold
in what the members run at every sample. A replica that is merely slow to load, inside its deadline,
must not move.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.operator import OperatorProcess
from e2e.sandbox import members
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import (
    UID_LABEL, aiworkload, breaks_while_moving, copies, get_workload, member_pods, rule_violations, wait_settled,
)

RULES = {"minJurisdictions": 2, "maxPerJurisdiction": 1}
REPLICAS = 2
DEADLINE_S = 15
FAILOVER_S = 30  # the usual failover time, with room for a loaded CI machine
READY_AFTER_ANNOTATION = "sandbox.samizdat.io/ready-after"

# action -> (the Event reason on the workload, whether the member is quarantined for it)
STARVATION = {
    "cordon": ("NodesCordoned", True),
    "taint": ("NodesTainted", True),
    "quota-zero": ("QuotaExceeded", True),
    "block-image": ("ImagePullFailed", True),
    "stop-scheduler": ("NoScheduler", False),
}


class RunningSampler(threading.Thread):
    """Counts the workload's Running pods in every reachable member each second; records rule breaks."""

    def __init__(self, sandbox: Sandbox, uid: str) -> None:
        super().__init__(daemon=True)
        self.sandbox, self.uid = sandbox, uid
        self.problems: list[str] = []
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            counts = member_pods(self.sandbox, self.uid)
            if sum(counts.values()) > REPLICAS:
                self.problems.append(f"{sum(counts.values())} pods running: {counts}")
            self.problems += [f"{counts}: {v}" for v in breaks_while_moving(counts, RULES)]
            self.samples += 1
            self._halt.wait(1.0)

    def stop(self) -> list[str]:
        self._halt.set()
        self.join(timeout=30)
        return self.problems


def events(sandbox: Sandbox, name: str, namespace: str | None = "default") -> list[dict[str, Any]]:
    where = ["-n", namespace] if namespace else ["-A"]
    items: list[dict[str, Any]] = sandbox.kubectl("hub").get_json(
        "events", *where, "--field-selector", f"involvedObject.name={name}")["items"]
    return items


@pytest.fixture
def starving(hub: Sandbox, operator: OperatorProcess, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A workload of 2 replicas in 2 countries with a 15 s start deadline; members healed afterwards."""
    name = f"starve-{request.node.name.split('[')[-1].rstrip(']')}"[:50].lower()
    failover = {"startDeadlineSeconds": DEADLINE_S, "quarantineSeconds": 120}
    hub.kubectl("hub").apply([aiworkload(name, REPLICAS, RULES, failover=failover)])
    workload = wait_settled(hub, name, REPLICAS)
    uid = workload["metadata"]["uid"]
    sampler = RunningSampler(hub, uid)
    sampler.start()
    yield {"name": name, "uid": uid, "workload": workload, "sampler": sampler}
    sampler.stop()
    for member in hub.member_names:
        if hub.state.clusters[member].faults:
            hub.heal(member)
    hub.kubectl("hub").run("delete", "aiworkload", name, "-n", "default", "--wait=false")
    eventually(lambda: not copies(hub, uid), timeout=90, what="copies removed")


@pytest.mark.parametrize("action", list(STARVATION))
def test_starved_replicas_move_and_the_member_pays(hub: Sandbox, starving: dict[str, Any], action: str) -> None:
    reason, hostile = STARVATION[action]
    name, uid = starving["name"], starving["uid"]
    victim = sorted(p["cluster"] for p in starving["workload"]["status"]["placements"])[0]
    image = starving["workload"]["spec"]["template"]["spec"]["containers"][0]["image"]
    hub.censor(victim, action, image=image if action == "block-image" else None)
    # The admin drains our pods: their replacements meet the obstacle.
    hub.kubectl(victim).run("delete", "pods", "-n", members.WORKLOAD_NAMESPACE, "-l", f"{UID_LABEL}={uid}",
                            "--wait=false")
    started = time.monotonic()

    def moved() -> dict[str, int] | None:
        running = member_pods(hub, uid)
        ok = sum(running.values()) == REPLICAS and victim not in running and not rule_violations(running, RULES)
        return running if ok else None

    running = eventually(moved, timeout=DEADLINE_S + FAILOVER_S, interval=1.0,
                         what=f"replicas of {name} running off {victim} after {action}")
    elapsed = time.monotonic() - started
    print(f"\nSTARVATION {json.dumps({'action': action, 'victim': victim, 'moved_s': round(elapsed, 1)})}")
    assert rule_violations(running, RULES) == []
    said = eventually(lambda: [e for e in events(hub, name) if e["reason"] == reason], timeout=15,
                      what=f"an Event {reason} on {name}")
    assert victim in said[0]["message"]
    if hostile:
        quarantined = [e for e in events(hub, victim, namespace=None) if e["reason"] == "MemberQuarantined"]
        assert quarantined, f"{victim} not quarantined"
    else:
        assert "kept from new replicas" in said[0]["message"]
    assert starving["sampler"].stop() == []


def test_slow_loading_replica_inside_its_deadline_is_not_moved(hub: Sandbox, operator: OperatorProcess) -> None:
    name = "slow-loader"
    manifest = aiworkload(name, REPLICAS, RULES, failover={"startDeadlineSeconds": 60})
    manifest["spec"]["template"]["metadata"] = {"annotations": {READY_AFTER_ANNOTATION: "20s"}}
    hub.kubectl("hub").apply([manifest])
    try:
        uid = eventually(lambda: get_workload(hub, name)["metadata"].get("uid"), timeout=10)
        first = eventually(lambda: set(copies(hub, uid)) if len(copies(hub, uid)) == REPLICAS else None,
                           timeout=30, what="copies written")
        seen_starting = False
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            assert set(copies(hub, uid)) == first, "a slow replica was moved"
            status = get_workload(hub, name).get("status", {})
            starting = [s for p in status.get("placements", []) for s in p.get("starting", [])]
            seen_starting = seen_starting or any(s["reason"] == "Loading" for s in starting)
            if status.get("readyReplicas") == REPLICAS:
                break
            time.sleep(1.0)
        assert get_workload(hub, name)["status"].get("readyReplicas") == REPLICAS
        assert seen_starting, "status never showed the replicas loading"
        assert set(copies(hub, uid)) == first
    finally:
        hub.kubectl("hub").run("delete", "aiworkload", name, "-n", "default", "--wait=false")
