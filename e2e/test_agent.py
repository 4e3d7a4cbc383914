"""The NVML agent on the sandbox: real `samizdat agent` processes reading fake NVML answers for kwok GPU
nodes (e2e/sandbox/agents.py), writing on the members' real Nodes, and the operator acting on it.

Ground truth is read from the members: which nodes the pods run on, what those nodes carry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.operator import OperatorProcess
from e2e.sandbox import members
from e2e.sandbox.agents import FAULT_TAINT, Agents
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import UID_LABEL, aiworkload, delete_workload, rule_violations, wait_settled


@pytest.fixture
def agents(hub: Sandbox, operator: OperatorProcess) -> Iterator[Agents]:
    started = Agents(hub)
    try:
        yield started
    finally:
        started.stop_all()


def running_pods(sandbox: Sandbox, uid: str) -> list[tuple[str, str]]:
    """(member, node) of every Running, not terminating pod of the workload, read from the members."""
    found = []
    for member in sandbox.member_names:
        result = sandbox.kubectl(member).run("get", "pods", "-n", members.WORKLOAD_NAMESPACE, "-l",
                                             f"{UID_LABEL}={uid}", "-o", "json", check=False)
        if result.returncode != 0:
            continue
        for pod in json.loads(result.stdout)["items"]:
            if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp"):
                found.append((member, pod["spec"]["nodeName"]))
    return found


def node_labels(sandbox: Sandbox, member: str, node: str) -> dict[str, str]:
    labels: dict[str, str] = sandbox.kubectl(member).get_json("node", node)["metadata"]["labels"]
    return labels


def inventory(sandbox: Sandbox, member: str) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = sandbox.kubectl("hub").get_json("membercluster", member).get(
        "status", {}).get("gpuInventory", [])
    return shapes


def test_observed_tee_is_required_where_asked(agents: Agents, hub: Sandbox) -> None:
    """ch-zurich's agents see CC ready; de-frankfurt's nodes are labelled `cc.mode=on` but its agents see CC
    off. The inventory takes the agents' word, and a workload requiring observed TEE runs only on nodes
    whose agent saw CC ready."""
    agents.start("ch-zurich")
    agents.start("de-frankfurt", cc=False)
    eventually(lambda: any(s.get("teeObserved") for s in inventory(hub, "ch-zurich")), timeout=30,
               what="ch-zurich's inventory shows observed TEE")
    eventually(lambda: inventory(hub, "de-frankfurt") and not any(s.get("tee") for s in inventory(hub, "de-frankfurt")),
               timeout=30, what="de-frankfurt's claimed TEE overruled by its agents")

    name, rules = "observed-tee", {"minJurisdictions": 1, "requireObservedTEE": True}
    hub.kubectl("hub").apply([aiworkload(name, 2, rules)])
    try:
        workload = wait_settled(hub, name, 2)
        pods = running_pods(hub, workload["metadata"]["uid"])
        assert {member for member, _ in pods} == {"ch-zurich"}, pods
        assert all(node_labels(hub, member, node)["samizdat.io/cc"] == "ready" for member, node in pods)
    finally:
        delete_workload(hub, name)


def test_a_fatal_xid_moves_the_replica_off_the_gpu(agents: Agents, hub: Sandbox) -> None:
    """XID 79 (GPU fallen off the bus) on the node of a replica: the agent taints the node, and the replica
    runs elsewhere with the rules held: in the same member when its scheduler finds room there (then every
    GPU node of that member is faulted, and it must leave), else in another member."""
    name, rules, replicas = "xid", {"minJurisdictions": 2, "maxPerJurisdiction": 1}, 2
    hub.kubectl("hub").apply([aiworkload(name, replicas, rules, gpus=4)])
    try:
        uid = wait_settled(hub, name, replicas)["metadata"]["uid"]
        # a member holding a replica and having another GPU node to fall back to
        pods = running_pods(hub, uid)
        member, node = next((m, n) for m, n in pods if len(agents.gpu_nodes(m)) > 1)
        gpu_nodes = agents.start(member)

        def moved(away_from: set[str]) -> list[tuple[str, str]] | None:
            now = running_pods(hub, uid)
            counts: dict[str, int] = {}
            for each, _ in now:
                counts[each] = counts.get(each, 0) + 1
            clear = len(now) == replicas and not any(n in away_from for _, n in now)
            return now if clear and not rule_violations(counts, rules) else None

        started = time.monotonic()
        agents.inject_xid(member, node, 79)
        after_first = eventually(lambda: moved({node}), timeout=60, what="replica off the faulted node")
        first_s = time.monotonic() - started
        faulted = hub.kubectl(member).get_json("node", node)
        assert any(t["key"] == FAULT_TAINT and t["effect"] == "NoExecute" for t in faulted["spec"]["taints"])
        health = next(c for c in faulted["status"]["conditions"] if c["type"] == "GPUHealthy")
        assert (health["status"], health["reason"]) == ("False", "FatalGPUFault")

        timings = {"xid79_node_to_running_elsewhere_s": round(first_s, 1), "first_move": after_first}
        if member in {m for m, _ in after_first or []}:
            # the member's scheduler found room on another of its nodes; now fault every one of them
            started = time.monotonic()
            for other in gpu_nodes:
                if other != node:
                    agents.inject_xid(member, other, 79)
            after_all = eventually(lambda: moved(set(gpu_nodes)), timeout=90, what="replica out of the faulted member")
            timings |= {"xid79_member_to_running_elsewhere_s": round(time.monotonic() - started, 1),
                        "second_move": after_all}
            assert member not in {m for m, _ in after_all or []}
        print(json.dumps(timings))
    finally:
        delete_workload(hub, name)
