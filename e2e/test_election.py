"""Leader election against the sandbox hub's real API server: the Lease, its compare-and-swap, takeover
timing, and the write path refusing a standby's writes to a real member.

Short timings (2 s lease, 1.2 s renew deadline, 0.3 s retry) keep every scenario within seconds; the
defaults are only longer, not different.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from e2e.sandbox import members
from e2e.sandbox.world import Sandbox
from samizdat.remote.clusters import applying, client, deleting, electing, errors, fetching, kubeconfig, leasing, resources
from samizdat.core.leadership import EPOCH_ANNOTATION, Timing, Wait, Write

FAST = Timing(lease_duration_s=2, renew_deadline_s=1.2, retry_period_s=0.3)
NAMESPACE = "default"

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def hub_client(sandbox: Sandbox) -> AsyncIterator[client.ClusterClient]:
    async with client.ClusterClient("hub", kubeconfig.load(sandbox.admin_kubeconfig("hub"))) as hub:
        yield hub


def candidate(hub: client.ClusterClient, identity: str, lease: str) -> electing.Candidate:
    return electing.Candidate(hub, identity=identity, namespace=NAMESPACE, name=lease, timing=FAST)


async def test_one_candidate_leads_and_the_other_waits(sandbox: Sandbox) -> None:
    lease = f"election-{uuid.uuid4().hex[:8]}"
    async with hub_client(sandbox) as hub:
        alice, bob = candidate(hub, "alice", lease), candidate(hub, "bob", lease)
        await alice.attempt()
        await bob.attempt()
        assert alice.leading() and not bob.leading()
        warrant = alice.warrant()
        assert warrant is not None and warrant.epoch == 1
        stored = await leasing.read_lease(hub, namespace=NAMESPACE, name=lease, deadline=5)
        assert stored is not None and stored.record.holder == "alice" and stored.record.transitions == 1


async def test_a_write_at_a_stale_resource_version_is_a_conflict(sandbox: Sandbox) -> None:
    lease = f"election-{uuid.uuid4().hex[:8]}"
    async with hub_client(sandbox) as hub:
        alice, bob = candidate(hub, "alice", lease), candidate(hub, "bob", lease)
        await alice.attempt()
        # Bob reads, then waits out the lease on his own clock without reading again ...
        seen = await leasing.read_lease(hub, namespace=NAMESPACE, name=lease, deadline=5)
        bob.elector = bob.elector.read(seen, 0.0)
        intent = bob.elector.plan(float(FAST.lease_duration_s), bob.wall())
        assert isinstance(intent, Write) and intent.acquiring
        await alice.attempt()  # ... while alice renews: the resourceVersion bob holds is gone
        with pytest.raises(errors.Conflict):
            await leasing.write_lease(hub, intent, namespace=NAMESPACE, name=lease, deadline=5)
        assert alice.leading()


async def test_a_standby_takes_over_a_silent_leader_within_lease_duration_and_two_tries(sandbox: Sandbox) -> None:
    lease = f"election-{uuid.uuid4().hex[:8]}"
    async with hub_client(sandbox) as hub:
        alice, bob = candidate(hub, "alice", lease), candidate(hub, "bob", lease)
        await alice.attempt()
        standby = asyncio.create_task(bob.run())
        try:
            await asyncio.sleep(1.0)
            await alice.attempt()  # alice's last renewal; then she falls silent (no release)
            silent_at = time.monotonic()
            assert not bob.leading()
            while not bob.leading():
                assert time.monotonic() - silent_at < 10, "bob never took over"
                await asyncio.sleep(0.05)
            took = time.monotonic() - silent_at
            # the warrant lapsed long before: at the renew deadline after her last renewal was sent
            assert not alice.leading()
        finally:
            standby.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await standby
        assert FAST.lease_duration_s - FAST.retry_period_s <= took <= FAST.lease_duration_s + 3 * FAST.retry_period_s
        warrant = bob.warrant()
        assert warrant is None  # bob released the Lease when his loop was cancelled
        stored = await leasing.read_lease(hub, namespace=NAMESPACE, name=lease, deadline=5)
        assert stored is not None and stored.record.holder == "" and stored.record.transitions == 2


async def test_a_released_lease_is_taken_at_the_next_try(sandbox: Sandbox) -> None:
    lease = f"election-{uuid.uuid4().hex[:8]}"
    async with hub_client(sandbox) as hub:
        alice, bob = candidate(hub, "alice", lease), candidate(hub, "bob", lease)
        await alice.attempt()
        await bob.attempt()
        await alice.release()
        assert not alice.leading()
        plan = bob.elector.read(await leasing.read_lease(hub, namespace=NAMESPACE, name=lease, deadline=5),
                                bob.clock()).plan(bob.clock(), bob.wall())
        assert not isinstance(plan, Wait)
        await bob.attempt()
        warrant = bob.warrant()
        assert warrant is not None and warrant.epoch == 2


async def test_only_the_leader_writes_to_a_member_and_its_epoch_is_on_the_copy(sandbox: Sandbox) -> None:
    lease = f"election-{uuid.uuid4().hex[:8]}"
    member = sandbox.member_names[0]
    name = f"election-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": members.WORKLOAD_NAMESPACE}, "data": {"by": "leader"},
    }
    async with hub_client(sandbox) as hub:
        alice, bob = candidate(hub, "alice", lease), candidate(hub, "bob", lease)
        await alice.attempt()
        await bob.attempt()
        admin = kubeconfig.load(sandbox.admin_kubeconfig(member))
        async with client.ClusterClient(member, admin, authority=alice) as as_alice, \
                client.ClusterClient(member, admin, authority=bob) as as_bob:
            try:
                await applying.apply(as_alice, manifest)
                with pytest.raises(errors.NotLeader):
                    await applying.apply(as_bob, {**manifest, "data": {"by": "standby"}})
                copy = await fetching.get(as_alice, resources.CONFIGMAPS, name, namespace=members.WORKLOAD_NAMESPACE)
                assert copy["data"] == {"by": "leader"}
                assert copy["metadata"]["annotations"][EPOCH_ANNOTATION] == "1"
            finally:
                async with client.ClusterClient(member, admin) as cleanup:
                    await deleting.delete(cleanup, resources.CONFIGMAPS, name, namespace=members.WORKLOAD_NAMESPACE)
