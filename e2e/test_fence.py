"""The member's fence in a real member API server, as `samizdat join` installed it: writes by samizdat's
identity below the fence epoch are refused by the member itself, deletes included; the fence epoch only
grows; a leader raises it before its first write; a member without a working fence gets nothing written.

Runs on the last member with samizdat's own identity (what `join` wrote to the hub). The member admin
(who is not held to "only grows") puts the fence epoch back to 0 afterwards, so the rest of the session,
whose operator stands for no election and writes as epoch 0, is admitted as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from e2e.sandbox import members
from e2e.sandbox.world import Sandbox
from e2e.workloads import bare_deployment, fence_epoch, set_fence_epoch
from samizdat.remote.clusters import applying, client, deleting, errors, fencing, kubeconfig, resources, scaling, writing
from samizdat.core.leadership import EPOCH_ANNOTATION, Permit, fence

NAMESPACE = members.WORKLOAD_NAMESPACE
REFUSED = (errors.StaleEpoch, errors.MemberForbidden, errors.MemberAPIError)

pytestmark = pytest.mark.timeout(90)


class Epoch:
    """A leader of a fixed epoch, always warranted: what a paused leader believes when it wakes up."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def permit(self) -> Permit | None:
        return Permit(self.epoch, 5.0)


def deployment(name: str) -> dict[str, Any]:
    return bare_deployment(name, "fence")


@pytest.fixture
def member(sandbox: Sandbox) -> Iterator[str]:
    name = sandbox.member_names[-1]
    try:
        yield name
    finally:
        set_fence_epoch(sandbox, name, 0)
        sandbox.kubectl(name).run("delete", "deployments", "-l", "samizdat.io/test=fence", "-n", NAMESPACE,
                                  check=False)


@contextlib.asynccontextmanager
async def as_leader(sandbox: Sandbox, member: str, epoch: int, *, raising: bool = False
                    ) -> AsyncIterator[client.ClusterClient]:
    """samizdat's identity in `member` writing as a leader of `epoch` (raising the fence first, as the
    operator does, when `raising`)."""
    credentials = kubeconfig.load(sandbox.identity_kubeconfig_path(member))
    keeper = fencing.Keeper(NAMESPACE, members.SYSTEM_NAMESPACE) if raising else None
    async with client.ClusterClient(member, credentials, authority=Epoch(epoch), fence=keeper) as leader:
        yield leader


async def refused(write: Any) -> str:
    with pytest.raises(REFUSED) as caught:
        await write
    return str(caught.value)


async def test_join_installed_a_fence_that_refuses_a_stale_leader(sandbox: Sandbox, member: str) -> None:
    name = f"fence-{uuid.uuid4().hex[:6]}"
    assert fence_epoch(sandbox, member) == 0, "join creates the fence epoch at 0"
    set_fence_epoch(sandbox, member, 5)
    async with as_leader(sandbox, member, 4) as stale, as_leader(sandbox, member, 5) as current:
        await _until_fenced(stale, name)
        applied = await applying.apply(current, deployment(name))
        assert applied["metadata"]["annotations"][EPOCH_ANNOTATION] == "5"
        assert "older than the fence epoch 5" in await refused(applying.apply(stale, deployment(name)))
        # a delete needs a retirement mark of at least the fence epoch, which epoch 4 cannot make ...
        assert await refused(deleting.delete(stale, resources.DEPLOYMENTS, name, namespace=NAMESPACE))
        # ... and an unmarked object cannot be deleted even by a current leader that skips the mark
        assert await refused(writing.write(current, "DELETE", resources.DEPLOYMENTS.path(
            namespace=NAMESPACE, name=name), body=deleting.DELETE_OPTIONS))
        # ... nor scaled; the current leader may (its epoch rides on the Deployment's patch)
        assert await refused(scaling.scale(stale, resources.DEPLOYMENTS, name, namespace=NAMESPACE, replicas=1))
        assert await scaling.scale(current, resources.DEPLOYMENTS, name, namespace=NAMESPACE, replicas=1) == 1
        # an operator that stands for no election writes as epoch 0: refused too, once a leader raised it
        async with client.ClusterClient(member, current.credentials) as lone:
            assert await refused(applying.apply(lone, deployment(name)))
        assert "only grows" in await refused(applying.apply(current, fence.build_fence_epoch(members.SYSTEM_NAMESPACE, 4)))
        assert await deleting.delete(current, resources.DEPLOYMENTS, name, namespace=NAMESPACE)  # marked, then deleted


async def test_a_new_leader_raises_the_fence_before_its_first_write_and_a_stale_one_sends_nothing(
    sandbox: Sandbox, member: str
) -> None:
    name = f"fence-{uuid.uuid4().hex[:6]}"
    set_fence_epoch(sandbox, member, 1)
    async with as_leader(sandbox, member, 1) as old, as_leader(sandbox, member, 3, raising=True) as new:
        await _until_fenced(old, name, below=0)
        await applying.apply(old, deployment(name))  # epoch 1 still good: nobody raised the fence yet
        await applying.apply(new, deployment(name))
        assert fence_epoch(sandbox, member) == 3, "raised before the new leader's first write"
        assert isinstance(new.fence, fencing.Keeper) and new.fence.state == fencing.FenceState(3)
        await refused(applying.apply(old, deployment(name)))
        copy = sandbox.kubectl(member).get_json("deployment", name, "-n", NAMESPACE)
        assert copy["metadata"]["annotations"][EPOCH_ANNOTATION] == "3"
    # A stale leader with a keeper finds the fence above its epoch and sends nothing.
    async with as_leader(sandbox, member, 2, raising=True) as stale:
        with pytest.raises(errors.StaleEpoch, match="above ours"):
            await applying.apply(stale, deployment(name))
    assert fence_epoch(sandbox, member) == 3


async def test_a_member_without_a_working_fence_gets_nothing_written(sandbox: Sandbox, member: str) -> None:
    name = f"fence-{uuid.uuid4().hex[:6]}"
    admin = sandbox.kubectl(member)
    binding = fence.build_fence_binding(NAMESPACE, members.SYSTEM_NAMESPACE)["metadata"]["name"]
    set_fence_epoch(sandbox, member, 1)
    # The fence only audits: admitted, as if it were not there. (Changed in place: a member API server
    # that saw the binding deleted and created again was found to lose its params for good.)
    admin.run("patch", "validatingadmissionpolicybinding", binding, "--type=merge",
              "-p", '{"spec":{"validationActions":["Audit"]}}')
    try:
        async with as_leader(sandbox, member, 1) as leader:
            async with client.ClusterClient(member, leader.credentials) as lone:
                await _until_admitted(lone, deployment(f"{name}-probe"))  # the member loaded the change
            keeper = leader.fence = fencing.Keeper(NAMESPACE, members.SYSTEM_NAMESPACE)
            with pytest.raises(errors.Unfenced, match="no fence policy"):
                await applying.apply(leader, deployment(name))
            assert keeper.state.broken is not None and not keeper.state.working
            assert admin.run("get", "deployment", name, "-n", NAMESPACE, check=False).returncode != 0
            # ... and it is not asked again on every write, only after a while
            with pytest.raises(errors.Unfenced):
                await applying.apply(leader, deployment(name))
    finally:
        admin.run("patch", "validatingadmissionpolicybinding", binding, "--type=merge",
                  "-p", '{"spec":{"validationActions":["Deny"]}}')


async def _until_admitted(writer: client.ClusterClient, obj: dict[str, Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await applying.apply(writer, obj)
            return
        except REFUSED:
            assert time.monotonic() < deadline, "the member kept refusing"
            await asyncio.sleep(0.5)


async def _until_fenced(stale: client.ClusterClient, name: str, timeout: float = 20, below: int | None = None) -> None:
    """Until the member refuses the stale writer (a just-changed policy or param takes a moment to load);
    `below`: write as that epoch instead (a writer that must be refused whatever the fence holds)."""
    deadline = time.monotonic() + timeout
    probe = deployment(f"{name}-probe")
    writer = stale if below is None else client.ClusterClient(stale.member, stale.credentials, authority=Epoch(below))
    try:
        while True:
            try:
                await applying.apply(writer, probe)
            except REFUSED:
                return
            assert time.monotonic() < deadline, "the fence never took effect"
            await asyncio.sleep(0.5)
    finally:
        if writer is not stale:
            await writer.aclose()
