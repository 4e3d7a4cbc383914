"""Two operators peered for high availability: one acts, the other stands by and takes over when the
active one is SIGKILLed, within seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.helm import CHART
from e2e.operator import OperatorProcess
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import aiworkload, apply_manifest, copies, delete_workload, wait_settled

PEERING = "samizdat"  # the chart's default peering.name
RULES = {"minJurisdictions": 2}


@pytest.fixture
def peered(hub: Sandbox, operator: OperatorProcess) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    """The standalone operator of the other tests stopped, the peering object the chart would create
    for several replicas, and two peered operators: `standby` started first, `active` with a higher
    priority. (They run as the sandbox admin: the chart's RBAC for peering is checked by test_helm,
    and installing the chart for two replicas would leave a hub without nodes mid-rollout.)"""
    kubectl = hub.kubectl("hub")
    kubectl.run("apply", "-f", str(CHART / "crds" / "kopf.dev_clusterkopfpeerings.yaml"))
    kubectl.run("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=60s")
    kubectl.apply([{"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}}])
    operator.stop()
    port = operator.metrics_port
    standby = OperatorProcess(hub, metrics_port=port + 1, name="operator-standby",
                              args=("--peering", PEERING, "--priority", "100"))
    active = OperatorProcess(hub, metrics_port=port + 2, name="operator-active",
                             args=("--peering", PEERING, "--priority", "200"))
    try:
        standby.start()
        active.start()
        eventually(lambda: _priorities(hub) == {100, 200}, timeout=30, what="both operators in the peering")
        eventually(lambda: "Resuming operations" in active.tail(200), timeout=30, what="the active one working")
        yield standby, active
    finally:
        active.stop()
        standby.stop()
        kubectl.run("delete", "clusterkopfpeering", PEERING, "--ignore-not-found")
        operator.start()


def test_a_standby_takes_over_when_the_active_operator_is_killed(
    hub: Sandbox, peered: tuple[OperatorProcess, OperatorProcess]
) -> None:
    standby, active = peered
    apply_manifest(hub, aiworkload("peered", 2, RULES))
    try:
        uid = wait_settled(hub, "peered", 2)["metadata"]["uid"]
        assert "peered" not in standby.tail(400), "the paused standby handled the workload"
        before = len(standby.log.read_text(errors="replace"))
        active.kill()
        killed = time.monotonic()
        apply_manifest(hub, aiworkload("peered", 3, RULES))
        wait_settled(hub, "peered", 3, timeout=60)
        took = time.monotonic() - killed
        assert "Resuming operations" in standby.log.read_text(errors="replace")[before:]
        assert took < 30, f"the standby took {took:.0f}s to take over"
        assert sum(copy["spec"]["replicas"] for copy in copies(hub, uid).values()) == 3
    finally:
        delete_workload(hub, "peered")
        eventually(lambda: not _workload_exists(hub), timeout=60, what="peered removed")


def _priorities(hub: Sandbox) -> set[int]:
    peering = hub.kubectl("hub").get_json("clusterkopfpeering", PEERING)
    return {int(peer["priority"]) for peer in (peering.get("status") or {}).values()}


def _workload_exists(hub: Sandbox) -> Any:
    return hub.kubectl("hub").run("get", "aiw", "peered", "-n", "default", check=False).returncode == 0
