"""The NVML agent on the sandbox: real `samizdat agent` processes reading fake NVML answers for kwok GPU
nodes (e2e/sandbox/agents.py), writing on the members' real Nodes, and the operator acting on it.

Ground truth is read from the members: which nodes the pods run on, what those nodes carry.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from e2e.operator import OperatorProcess
from e2e.sandbox import members
from e2e.sandbox.agents import FAULT_TAINT, Agents
from e2e.sandbox.launcher import kubeconfig_yaml
from e2e.sandbox.world import REPO_ROOT, Sandbox
from e2e.waiting import eventually
from e2e.workloads import UID_LABEL, aiworkload, delete_workload, rule_violations, wait_settled
from samizdat.agent import observation, publishing
from samizdat.remote.clusters import errors, kubeconfig
from samizdat.remote.clusters.client import ClusterClient


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


async def test_the_agent_charts_identity_may_change_only_its_own_node(hub: Sandbox) -> None:
    """The agent chart in a member, its DaemonSet's pods bound to kwok GPU nodes: with a token bound to the
    pod on node A, the agent's own publishing code writes A (labels, annotations, taints, condition) and
    is refused B (the admission policy), and it may list nothing (RBAC)."""
    member, namespace = "gb-london", members.SYSTEM_NAMESPACE
    rendered = subprocess.run(
        [str(hub.binaries.path("helm")), "template", "agent", str(REPO_ROOT / "helm" / "samizdat-agent"),
         "-n", namespace, "--set", "runtimeClassName=", "--set", "dashboards.enabled=false"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    kubectl = hub.kubectl(member)
    kubectl.apply(objects)
    try:
        def agent_pods() -> dict[str, str] | None:
            pods = kubectl.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/component=agent")["items"]
            bound = {p["spec"]["nodeName"]: p["metadata"]["name"] for p in pods
                     if p["spec"].get("nodeName") and p["status"].get("phase") == "Running"}
            return bound if len(bound) >= 2 else None

        bound = eventually(agent_pods, timeout=60, what="agent pods running on two GPU nodes") or {}
        own, other = sorted(bound)[:2]
        token = kubectl.run("create", "token", "agent-samizdat-agent", "-n", namespace, "--bound-object-kind=Pod",
                            f"--bound-object-name={bound[own]}", "--duration=10m").stdout.strip()
        config = hub.directory / "agent-token.kubeconfig"
        config.write_text(kubeconfig_yaml(member, hub.server(member), hub.ca_file.read_text(), "agent", token))
        as_agent = members.Kubectl(hub.binaries.path("kubectl"), config)

        # A new admission policy takes a moment to be loaded by the API server: wait until a server-side
        # dry run of a write to the other Node (admission runs, nothing is stored) is refused by it.
        def policy_in_force() -> bool:
            tried = as_agent.run("label", "node", other, "samizdat.io/probe=1", "--dry-run=server", check=False)
            return tried.returncode != 0 and "only the Node it runs on" in tried.stderr

        eventually(policy_in_force, timeout=30, what="the own-node admission policy in force")
        now = datetime.now(UTC)
        seen = observation.Observation(driver_version="550.54.15", gpus=(
            observation.GPU(index=0, uuid="GPU-e2e", name="NVIDIA A100-SXM4-40GB", memory_mib=40960),))
        published = observation.publication(seen, now, "e2e")
        async with ClusterClient(member, kubeconfig.load(config)) as client:
            await publishing.publish(client, own, published, now)
            with pytest.raises(errors.MemberForbidden, match="only the Node it runs on"):
                await publishing.publish(client, other, published, now)
        node = kubectl.get_json("node", own)
        assert node["metadata"]["labels"]["samizdat.io/gpu.healthy"] == "1"
        assert any(c["type"] == "GPUHealthy" and c["status"] == "True" for c in node["status"]["conditions"])
        assert "samizdat.io/gpu.healthy" not in kubectl.get_json("node", other)["metadata"]["labels"]
        assert as_agent.run("get", "nodes", check=False).returncode != 0  # no list: just its own node, by name
    finally:
        Agents(hub).stop(member)  # wipes what was published
        drop = {"status": {"conditions": [{"type": "GPUHealthy", "$patch": "delete"}]}}
        for node_name in kubectl.get_json("nodes")["items"]:
            kubectl.run("patch", "node", node_name["metadata"]["name"], "--subresource=status", "--type=strategic",
                        "-p", json.dumps(drop), check=False)
        kubectl.run("delete", "-f", "-", "--wait=false", stdin=rendered, check=False)
