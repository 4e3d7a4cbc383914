"""The fence keeper's timing: a fence proven once is proven again before writes, at most once per
`REPROVE_S` per member, and one that fails the proof later is broken exactly as one that never worked.

What the member answers to the proof (the dry runs) is checked in a real member API server
(e2e/test_fence.py); here the member's side is a scripted proof, and the writes go through
`writing.write` to a port where nobody listens, so a write that was sent ends in `MemberUnreachable`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from samizdat.remote.clusters import applying, errors, fencing
from samizdat.remote.clusters.client import ClusterClient
from samizdat.remote.clusters.kubeconfig import Credentials
from samizdat.core.leadership import Permit

NOBODY = "https://127.0.0.1:9"  # nothing listens on port 9 of the loopback: a sent request is refused
MANIFEST: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "samizdat-workloads"},
    "spec": {"replicas": 1},
}
PERMIT = Permit(epoch=4, seconds_left=5.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Leader:
    """An authority that always grants PERMIT (the election is tested in test_leadership)."""

    def permit(self) -> Permit | None:
        return PERMIT


class MemberFence(fencing.Keeper):
    """A keeper whose member's fence works while `works` is true; each proof it asks for is counted.

    Only the step that talks to the member is scripted (`_raise`: read the epoch, raise it, two dry
    runs); when and how often it is asked, and what follows from its answer, is the keeper's own."""

    def __init__(self, clock: Clock) -> None:
        super().__init__("samizdat-workloads", "samizdat-system", on_change=self.changed, clock=clock)
        self.works = True
        self.proofs = 0
        self.changes = 0
        self.hold: asyncio.Event | None = None  # set: a proof waits for it (writes arriving meanwhile)

    def changed(self) -> None:
        self.changes += 1

    async def _raise(self, client: ClusterClient, epoch: int, deadline: float) -> None:
        self.proofs += 1
        if self.hold is not None:
            await self.hold.wait()
        if not self.works:
            raise errors.Unfenced(client.member, "a copy without an epoch was admitted: no fence policy in force")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keeper(clock: Clock) -> MemberFence:
    return MemberFence(clock)


async def write(keeper: MemberFence) -> type[errors.MemberError]:
    """Apply a copy through the keeper; what stopped it (MemberUnreachable: it was sent)."""
    async with ClusterClient("m1", Credentials(server=NOBODY), authority=Leader(), fence=keeper) as member:
        with pytest.raises(errors.MemberError) as stopped:
            await applying.apply(member, MANIFEST)
    return type(stopped.value)


async def test_a_proven_fence_is_not_proven_again_within_the_interval(keeper: MemberFence, clock: Clock) -> None:
    assert await write(keeper) is errors.MemberUnreachable
    for _ in range(5):
        clock.now += (fencing.REPROVE_S - 1) / 5
        assert await write(keeper) is errors.MemberUnreachable
    assert keeper.proofs == 1
    assert keeper.state == fencing.FenceState(epoch=PERMIT.epoch)


async def test_a_fence_removed_after_its_first_proof_is_found_at_the_next_proof(
    keeper: MemberFence, clock: Clock
) -> None:
    assert await write(keeper) is errors.MemberUnreachable and keeper.state.working
    keeper.works = False  # a member admin deletes the fence policy, or sets its binding to Audit
    clock.now += fencing.REPROVE_S - 1
    assert await write(keeper) is errors.MemberUnreachable, "within the interval the last proof still holds"
    clock.now += 1
    assert await write(keeper) is errors.Unfenced, "proven again, found broken: nothing sent"
    assert keeper.proofs == 2
    assert not keeper.state.working
    assert keeper.state == fencing.FenceState(epoch=PERMIT.epoch, broken="a copy without an epoch was admitted: "
                                                                        "no fence policy in force")
    assert keeper.changes == 2, "working, then broken: the MemberCluster's Fenced condition follows"
    # Broken like a fence that never worked: looked at again only after RECHECK_S, working once it does.
    keeper.works = True
    assert await write(keeper) is errors.Unfenced and keeper.proofs == 2
    clock.now += fencing.RECHECK_S
    assert await write(keeper) is errors.MemberUnreachable and keeper.state.working and keeper.proofs == 3


async def test_a_proof_that_passes_holds_for_another_interval(keeper: MemberFence, clock: Clock) -> None:
    await write(keeper)
    clock.now += fencing.REPROVE_S
    await write(keeper)
    clock.now += fencing.REPROVE_S - 1
    await write(keeper)
    assert keeper.proofs == 2
    assert keeper.changes == 1, "proven again and still working: nothing changed"


async def test_writes_arriving_during_a_proof_wait_for_it_and_share_it(keeper: MemberFence, clock: Clock) -> None:
    await write(keeper)
    clock.now += fencing.REPROVE_S
    keeper.hold, keeper.works = asyncio.Event(), False
    writes = [asyncio.ensure_future(write(keeper)) for _ in range(5)]
    await asyncio.sleep(0.01)
    keeper.hold.set()
    assert await asyncio.gather(*writes) == [errors.Unfenced] * 5
    assert keeper.proofs == 2, "one proof per member per interval, however many writes wait for it"


async def test_a_new_epoch_is_raised_at_once_whatever_the_interval(keeper: MemberFence, clock: Clock) -> None:
    await write(keeper)
    client = ClusterClient("m1", Credentials(server=NOBODY))
    try:
        await keeper.before_write(client, Permit(epoch=PERMIT.epoch + 1, seconds_left=5.0), 5.0)
    finally:
        await client.aclose()
    assert keeper.proofs == 2 and keeper.state == fencing.FenceState(epoch=PERMIT.epoch + 1)
