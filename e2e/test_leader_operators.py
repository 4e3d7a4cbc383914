"""Two operators electing their leader through a Lease (`--lease-name`): only the leader writes, the
standby keeps its views warm and takes over within the lease when the leader is SIGKILLed, under a new
epoch that the copies it writes carry.

Short election timings keep the takeover to a few seconds; the defaults are only longer. The operators
run as the sandbox admin: the chart does not grant Leases yet (see docs/operations.md, hub sites).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.operator import OperatorProcess
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import aiworkload, apply_manifest, copies, delete_workload, fence_epoch, set_fence_epoch, wait_settled
from samizdat.core.leadership import EPOCH_ANNOTATION

LEASE = "samizdat-leader-e2e"
RULES = {"minJurisdictions": 2}
ELECTION = ("--lease-name", LEASE, "--lease-namespace", "samizdat-system",
            "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5")

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def elected(hub: Sandbox, operator: OperatorProcess) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    """The standalone operator of the other tests stopped; `first` leads, `second` stands by."""
    operator.stop()
    port = operator.metrics_port
    first = OperatorProcess(hub, metrics_port=port + 3, name="operator-site-0", args=(*ELECTION, "--identity", "site-0"))
    second = OperatorProcess(hub, metrics_port=port + 4, name="operator-site-1", args=(*ELECTION, "--identity", "site-1"))
    try:
        first.start()
        eventually(lambda: "leading the hub as site-0" in first.tail(200), timeout=30, what="site-0 leading")
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()
        hub.kubectl("hub").run("delete", "lease", LEASE, "-n", "samizdat-system", "--ignore-not-found")
        for member in hub.member_names:  # the leaders raised it; the lone operator after them writes as 0
            set_fence_epoch(hub, member, 0)
        operator.start()


def test_the_standby_takes_over_a_killed_leader_under_a_new_epoch(
    hub: Sandbox, elected: tuple[OperatorProcess, OperatorProcess]
) -> None:
    first, second = elected
    apply_manifest(hub, aiworkload("elected", 2, RULES))
    try:
        uid = wait_settled(hub, "elected", 2)["metadata"]["uid"]
        # The copies carry the leader's epoch: the Lease's transitions (more than 1 if, on a loaded machine,
        # site-0 missed its renew deadline once and took the Lease again).
        first_epoch = _lease_epoch(hub)
        assert {copy["metadata"]["annotations"].get(EPOCH_ANNOTATION) for copy in copies(hub, uid).values()} == {
            str(first_epoch)}
        assert "leading the hub as site-1" not in second.tail(400), "the standby led while the leader was alive"
        first.kill()
        killed = time.monotonic()
        apply_manifest(hub, aiworkload("elected", 3, RULES))
        wait_settled(hub, "elected", 3, timeout=60)
        took = time.monotonic() - killed
        new_epoch = _lease_epoch(hub)
        assert new_epoch > first_epoch
        assert f"leading the hub as site-1, epoch {new_epoch}" in second.tail(400)
        epochs = {copy["metadata"]["annotations"].get(EPOCH_ANNOTATION) for copy in copies(hub, uid).values()}
        assert str(new_epoch) in epochs and epochs <= {str(first_epoch), str(new_epoch)}
        assert sum(copy["spec"]["replicas"] for copy in copies(hub, uid).values()) == 3
        # every member the new leader wrote to was fenced at its epoch first
        written = [name for name, copy in copies(hub, uid).items()
                   if copy["metadata"]["annotations"].get(EPOCH_ANNOTATION) == str(new_epoch)]
        assert written and all(fence_epoch(hub, name) == new_epoch for name in written)
        assert took < 30, f"the standby took {took:.0f}s to take over and place"
    finally:
        delete_workload(hub, "elected")
        eventually(lambda: not _exists(hub), timeout=60, what="elected removed")


def _lease_epoch(hub: Sandbox) -> int:
    lease = hub.kubectl("hub").get_json("lease", LEASE, "-n", "samizdat-system")
    return int(lease["spec"]["leaseTransitions"])


def _exists(hub: Sandbox) -> Any:
    return hub.kubectl("hub").run("get", "aiw", "elected", "-n", "default", check=False).returncode == 0
