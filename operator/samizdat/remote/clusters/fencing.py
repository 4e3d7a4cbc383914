"""Keeping a member's fence ahead of this leader's writes: raise the fence epoch before the first write
of a new epoch, and check that the fence is really there.

The fence (`leadership.fence`) is admission policy in the member's own API server; its epoch is a
ConfigMap the leader raises. `Keeper.before_write` runs inside `writing.write`, after the warrant check
and before the write is sent, so no write of an epoch reaches a member before the member's fence stands
at that epoch. It talks to the member through `client.request` directly, not through `writing.write`
(which would ask it again): raising the epoch is part of the write it precedes, under the same warrant.

Raising also proves the fence works, with two dry runs that the member must refuse (a dry run persists
nothing): lowering the fence epoch by one (its guard) and creating a Deployment without an epoch (the
fence itself). A member where either is admitted, or whose fence epoch is missing or unreadable, has no
working fence: `Unfenced` is raised, nothing of the write is sent, and the keeper says why until a later
try (at most every `RECHECK_S`) finds the fence working. Where the fence epoch is already above this
leader's epoch, a newer leader has been there: `StaleEpoch`, nothing sent.

A fence that worked once can stop working: a member admin deletes the policy or its binding, or sets it
to Audit. So the proof is not trusted for ever: a write more than `REPROVE_S` after the last proof first
proves the fence again (the fence epoch read, then the two dry runs; at most once per `REPROVE_S` per
member, however many writes wait), and a fence that fails it is broken exactly as one that never worked.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from samizdat.remote.clusters import errors, resources, writing
from samizdat.remote.clusters.client import ClusterClient
from samizdat.core.leadership import EPOCH_ANNOTATION, Permit, fence

MERGE_PATCH = "application/merge-patch+json"
RECHECK_S = 10.0  # a broken fence is looked at again no more often than this (each look is 1-4 requests)
# A working fence is proven again before a write at most this long after its last proof (3 requests):
# long enough that writes stay one request each, short enough that a fence removed by a member admin
# is seen within a minute of the next write.
REPROVE_S = 60.0
PROBE_NAME = "samizdat-fence-probe"  # the Deployment the dry run would create; never persisted


@dataclass(frozen=True, slots=True)
class FenceState:
    """What this operator knows of one member's fence: the epoch it raised it to, or why it does not work."""

    epoch: int | None = None  # the fence epoch this leader raised (or found) there; None: not yet
    broken: str | None = None  # why the member has no working fence (None: working, or not looked at yet)

    @property
    def working(self) -> bool:
        return self.epoch is not None and self.broken is None


class Keeper:
    """The fence of one member as its client's writes need it (one per `ClusterClient`)."""

    def __init__(
        self, guarded: str, epoch_namespace: str, *, on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guarded = guarded  # where the copies the fence judges live
        self.epoch_namespace = epoch_namespace  # where the fence epoch lives (see `fence`: never `guarded`)
        self.state = FenceState()
        self.on_change = on_change  # told whenever the state changes (status and placement read it)
        self.clock = clock
        self._lock = asyncio.Lock()
        self._broken_at: float | None = None
        self._proven_at: float | None = None  # when the fence was last proven working at `state.epoch`

    async def before_write(self, client: ClusterClient, permit: Permit, deadline: float) -> None:
        """Make sure the member's fence stands at `permit.epoch` and works; raise `StaleEpoch` or
        `Unfenced` (nothing of the write sent) when it cannot."""
        if self._proven(permit.epoch):
            return
        async with self._lock:  # one raise (or proof) at a time, however many writes wait for it
            if self._proven(permit.epoch):
                return
            if self.state.broken is not None and self._broken_at is not None and (
                self.clock() - self._broken_at < RECHECK_S
            ):
                raise errors.Unfenced(client.member, self.state.broken)
            try:
                await self._raise(client, permit.epoch, deadline)
            except errors.Unfenced as error:
                self._settle(FenceState(self.state.epoch, error.message))
                self._broken_at = self.clock()
                raise
            self._settle(FenceState(permit.epoch))
            self._broken_at = None
            self._proven_at = self.clock()

    def _proven(self, epoch: int) -> bool:
        """The fence stands at `epoch` and was proven working less than `REPROVE_S` ago."""
        return (self.state.working and self.state.epoch == epoch and self._proven_at is not None
                and self.clock() - self._proven_at < REPROVE_S)

    def _settle(self, state: FenceState) -> None:
        changed, self.state = state != self.state, state
        if changed:
            self.on_change()

    async def _raise(self, client: ClusterClient, epoch: int, deadline: float) -> None:
        path = resources.CONFIGMAPS.path(namespace=self.epoch_namespace, name=fence.FENCE_NAME)
        try:
            current = await read_epoch(client, self.epoch_namespace, deadline)
        except errors.NotFound:
            raise errors.Unfenced(client.member, f"no fence epoch ConfigMap {self.epoch_namespace}/{fence.FENCE_NAME} "
                                                 "(install the fence: `samizdat join` again)") from None
        except errors.MemberForbidden as error:
            raise errors.Unfenced(client.member, f"may not read the fence epoch: {error.message}") from None
        if current is None:
            raise errors.Unfenced(client.member, "the fence epoch ConfigMap holds no integer data.epoch")
        if current > epoch:
            raise errors.StaleEpoch(client.member, f"the fence stands at epoch {current}, above ours ({epoch}): "
                                                   "a newer leader has been here")
        if current < epoch:
            try:
                await _send(client, "PATCH", path, {"data": {"epoch": str(epoch)}}, deadline)
            except errors.MemberForbidden as error:
                if fence.GUARD_NAME in error.message:  # a newer leader raised it between our read and write
                    raise errors.StaleEpoch(client.member, error.message) from None
                raise errors.Unfenced(client.member, f"may not raise the fence epoch: {error.message}") from None
        await self._check(client, path, epoch, deadline)

    async def _check(self, client: ClusterClient, path: str, epoch: int, deadline: float) -> None:
        """Dry runs the member must refuse if its fence works: lowering the epoch, an unstamped copy."""
        lowered = {"data": {"epoch": str(epoch - 1)}}
        if await _admitted(client, "PATCH", path, lowered, deadline):
            raise errors.Unfenced(client.member, "the fence epoch can be lowered: no fence guard policy "
                                                 f"{fence.GUARD_NAME} in force")
        if await admits(client, self.guarded, None, deadline):
            raise errors.Unfenced(client.member, "a copy without an epoch was admitted: no fence policy "
                                                 f"{fence.POLICY_NAME} in force")


async def admits(client: ClusterClient, namespace: str, epoch: int | None, deadline: float) -> bool:
    """Whether the member admits a copy stamped with `epoch` (None: unstamped) from this identity: a dry
    run of creating one, which persists nothing."""
    probe = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": PROBE_NAME, "namespace": namespace,
                     "annotations": {EPOCH_ANNOTATION: str(epoch)} if epoch is not None else {}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": PROBE_NAME}}, "template": {
            "metadata": {"labels": {"app": PROBE_NAME}},
            "spec": {"containers": [{"name": "probe", "image": "registry.invalid/fence-probe:0"}]},
        }},
    }
    return await _admitted(client, "POST", resources.DEPLOYMENTS.path(namespace=namespace), probe, deadline)


async def read_epoch(client: ClusterClient, namespace: str, deadline: float) -> int | None:
    """The member's fence epoch (None: not an integer); `NotFound` when there is no fence epoch."""
    path = resources.CONFIGMAPS.path(namespace=namespace, name=fence.FENCE_NAME)
    return _epoch(await _send(client, "GET", path, None, deadline))


async def _admitted(client: ClusterClient, method: str, path: str, body: dict[str, Any], deadline: float) -> bool:
    """Whether the member admits a dry run of this write. Admission comes before storage, so "already
    exists" (409) means it was admitted too."""
    try:
        await _send(client, method, path, body, deadline, dry_run=True)
    except errors.MemberForbidden:
        return False
    except errors.Conflict:
        return True
    return True


async def _send(
    client: ClusterClient, method: str, path: str, body: dict[str, Any] | None, deadline: float, *, dry_run: bool = False
) -> dict[str, Any]:
    params = {"dryRun": "All"} if dry_run else {}
    if method != "GET":
        params["fieldManager"] = writing.FIELD_MANAGER
    reply = await client.request(
        method, path, params=params, deadline=deadline,
        body=json.dumps(body).encode() if body is not None else None,
        content_type=(MERGE_PATCH if method == "PATCH" else "application/json") if body is not None else None,
    )
    decoded = reply.json()
    return decoded if isinstance(decoded, dict) else {}


def _epoch(config_map: dict[str, Any]) -> int | None:
    data = config_map.get("data")
    raw = data.get("epoch") if isinstance(data, dict) else None
    try:
        return int(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
