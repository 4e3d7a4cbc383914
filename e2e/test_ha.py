"""Two operators peered for high availability: one acts, the other stands by and takes over when the
active one is SIGKILLed, within seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.helm import CHART, chart_operator_kubeconfig, install_chart
from e2e.operator import OperatorProcess
from e2e.sandbox.world import Sandbox
from e2e.test_operator import apply, delete
from e2e.waiting import eventually
from e2e.workloads import aiworkload, copies, wait_settled

PEERING = "samizdat"  # the chart's default peering.name
RULES = {"minJurisdictions": 2}


@pytest.fixture
def peered(hub: Sandbox, operator: OperatorProcess) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    """The chart as installed for two replicas (peering object and its RBAC), the standalone operator
    of the other tests stopped, and two peered ones: `standby` started first, `active` with a higher
    priority."""
    hub.kubectl("hub").run("apply", "-f", str(CHART / "crds" / "kopf.dev_clusterkopfpeerings.yaml"))
    install_chart(hub, "replicaCount=2")
    operator.stop()
    kubeconfig = chart_operator_kubeconfig(hub)
    port = operator.metrics_port
    standby = OperatorProcess(hub, kubeconfig=kubeconfig, metrics_port=port + 1, name="operator-standby",
                              args=("--peering", PEERING, "--priority", "100"))
    active = OperatorProcess(hub, kubeconfig=kubeconfig, metrics_port=port + 2, name="operator-active",
                             args=("--peering", PEERING, "--priority", "200"))
    try:
        standby.start()
        active.start()
        eventually(lambda: "Pausing operations in favour of" in standby.tail(200), timeout=30,
                   what="the standby pausing in favour of the active operator")
        yield standby, active
    finally:
        active.stop()
        standby.stop()
        install_chart(hub)
        operator.start()


def test_a_standby_takes_over_when_the_active_operator_is_killed(
    hub: Sandbox, peered: tuple[OperatorProcess, OperatorProcess]
) -> None:
    standby, active = peered
    apply(hub, aiworkload("peered", 2, RULES))
    try:
        uid = wait_settled(hub, "peered", 2)["metadata"]["uid"]
        assert "peered" not in standby.tail(400), "the paused standby handled the workload"
        active.kill()
        killed = time.monotonic()
        apply(hub, aiworkload("peered", 3, RULES))
        wait_settled(hub, "peered", 3, timeout=60)
        took = time.monotonic() - killed
        assert "Resuming operations" in standby.tail(400)
        assert took < 30, f"the standby took {took:.0f}s to take over"
        assert sum(copy["spec"]["replicas"] for copy in copies(hub, uid).values()) == 3
    finally:
        delete(hub, "peered")
        eventually(lambda: not _workload_exists(hub), timeout=60, what="peered removed")


def _workload_exists(hub: Sandbox) -> Any:
    return hub.kubectl("hub").run("get", "aiw", "peered", "-n", "default", check=False).returncode == 0
