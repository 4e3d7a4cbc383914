"""All members together: who is connected, what each holds, and who must hear about changes.

The fleet turns member views into the immutable `Snapshot` placement decides over, tells each workload's
reconciler when something it may care about changed, and fences members that come back: before a member
returning from Down or Quarantined counts again, copies it still runs that the latest decisions no longer
want (or whose workload is gone) are deleted, so no rule is exceeded after a heal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from samizdat import health, metrics
from samizdat.clusters import errors, kubeconfig
from samizdat.clusters.client import MemberClient
from samizdat.fleet.member import Copy, Member, MemberSettings
from samizdat.model import MemberCluster, Phase
from samizdat.placement import from_model
from samizdat.placement.snapshot import Snapshot

logger = logging.getLogger(__name__)

LOST_PHASES = (Phase.DOWN, Phase.QUARANTINED)
# How long after start the fleet may still be learning what its members hold (see `settling`): enough
# for a member's first probe to fail into Down (health's 3 s) and for a fence over complete views.
SETTLE_S = 15.0


class Fleet:
    def __init__(self, settings: MemberSettings) -> None:
        self.settings = settings
        # Every live AIWorkload uid (kopf's index, complete before daemons start); None until known.
        self.live_index: Mapping[str, object] | None = None
        self.members: dict[str, Member] = {}
        self.specs: dict[str, MemberCluster] = {}
        self.decisions: dict[str, dict[str, int]] = {}  # workload uid -> member -> replicas
        self.fenced: set[str] = set()
        self._subscribers: dict[str, asyncio.Event] = {}
        self._member_listeners: dict[str, asyncio.Event] = {}
        self._fencing: dict[str, asyncio.Task[None]] = {}
        self._started = time.monotonic()

    # ----- membership

    async def connect(self, spec: MemberCluster, kubeconfig_text: str) -> Member:
        """(Re)connect a member with fresh credentials; raises KubeconfigError for a bad kubeconfig."""
        name = spec.metadata.name
        credentials = kubeconfig.parse(kubeconfig_text)
        await self.disconnect(name)
        member = Member(name, MemberClient(name, credentials), self._member_settings(spec), self._changed)
        self.members[name] = member
        self.specs[name] = spec
        metrics.member_connected(name)
        member.start()
        return member

    def update_spec(self, spec: MemberCluster) -> None:
        self.specs[spec.metadata.name] = spec
        self.notify_workloads()

    async def disconnect(self, name: str) -> None:
        member = self.members.pop(name, None)
        self.specs.pop(name, None)
        self.fenced.discard(name)
        fence = self._fencing.pop(name, None)
        if fence is not None:
            fence.cancel()
        if member is not None:
            metrics.forget_member(name)
            await member.stop()
            self.notify_workloads()

    def _member_settings(self, spec: MemberCluster) -> MemberSettings:
        policy = spec.spec.health
        return MemberSettings(
            probe_interval_s=policy.probe_interval_seconds,
            probe_timeout_s=policy.probe_timeout_seconds,
            quarantine_s=self.settings.quarantine_s,
            policy=health.HealthPolicy(
                suspect_after_failures=policy.suspect_after_failures,
                down_after_seconds=policy.down_after_seconds,
                recover_after_successes=self.settings.policy.recover_after_successes,
            ),
        )

    # ----- change notification

    def subscribe(self, key: str, *, member: bool = False) -> asyncio.Event:
        table = self._member_listeners if member else self._subscribers
        return table.setdefault(key, asyncio.Event())

    def unsubscribe(self, key: str, *, member: bool = False) -> None:
        (self._member_listeners if member else self._subscribers).pop(key, None)

    def notify_workloads(self) -> None:
        for event in self._subscribers.values():
            event.set()

    def _changed(self, member: Member, what: str) -> None:
        if what == "phase":
            quarantined = sum(1 for m in self.members.values() if m.health.phase is Phase.QUARANTINED)
            metrics.member_phase(member.name, member.health.phase.value, quarantined)
            if member.health.phase in LOST_PHASES:
                self.fenced.discard(member.name)
            elif member.health.phase is Phase.READY and member.name not in self.fenced:
                self._start_fence(member)
        listener = self._member_listeners.get(member.name)
        if listener is not None:
            listener.set()
        self.notify_workloads()

    # ----- fencing

    def _start_fence(self, member: Member) -> None:
        running = self._fencing.get(member.name)
        if running is None or running.done():
            self._fencing[member.name] = asyncio.create_task(self._fence(member), name=f"{member.name}/fence")

    async def _fence(self, member: Member) -> None:
        while member.health.phase is Phase.READY and not member.views_complete:
            await asyncio.sleep(0.1)  # fence against complete views only
        live = set(self.live_index) if self.live_index is not None else None
        stale = [copy for copy in member.copies.values() if not self._wanted(member.name, copy, live)]
        for copy in stale:
            logger.info("member %s: fencing stale copy %s of workload %s", member.name, copy.name, copy.workload_uid)
            try:
                await member.delete_copy(copy)
            except errors.MemberError as error:
                logger.warning("member %s: fencing %s failed: %s", member.name, copy.name, error)
                return  # the member is not counted until a later fence succeeds
        self.fenced.add(member.name)
        self.notify_workloads()

    def _wanted(self, member: str, copy: Copy, live: set[str] | None) -> bool:
        if live is not None and copy.workload_uid not in live:
            return False  # an orphan: its workload was deleted while this member was away
        decision = self.decisions.get(copy.workload_uid)
        return decision is None or decision.get(member, 0) > 0

    # ----- what placement and status read

    def settling(self, expected: Iterable[str]) -> bool:
        """Whether what members hold may still be unknown: shortly after start, some `expected` member
        is not connected yet, not probed yet, or reachable but not yet fenced. Deciding then would
        count its replicas as missing and move them for nothing (an operator restart does exactly
        that to every member); waiting is bounded by SETTLE_S, so a member that never connects cannot
        hold every workload back."""
        if time.monotonic() - self._started > SETTLE_S:
            return False
        for name in expected:
            member = self.members.get(name)
            if member is None or member.health.phase is Phase.PENDING:
                return True
            if member.health.phase in (Phase.READY, Phase.SUSPECT) and name not in self.fenced:
                return True
        return False

    def countable(self, name: str) -> bool:
        """Replicas here count: fenced, views complete, and Ready or merely Suspect (one lost probe must
        not move replicas; only Down or Quarantined does)."""
        member = self.members.get(name)
        return (
            member is not None and name in self.fenced and member.views_complete
            and member.health.phase in (Phase.READY, Phase.SUSPECT)
        )

    def copies_of(self, uid: str) -> dict[str, Copy]:
        return {name: m.copies[uid] for name, m in self.members.items() if uid in m.copies}

    def current(self, uid: str) -> dict[str, int]:
        """Replicas placed per member that may be counted: lost or unfenced members hold none, and
        replicas stranded by fatally faulted GPUs (the agent's taint) do not count where they are."""
        return {
            name: max(0, copy.desired - self.members[name].replicas_lost_to_gpu_faults(uid))
            for name, copy in self.copies_of(uid).items() if self.countable(name)
        }

    def phases(self) -> dict[str, Phase]:
        return {name: member.health.phase for name, member in self.members.items()}

    def guard(self) -> health.EvictionGuard:
        return health.eviction_guard(self.phases().values())

    def snapshot(self, alliances: Mapping[str, frozenset[str]]) -> Snapshot:
        """Members as placement sees them now: live health and inventory, not the last written status."""
        now = datetime.now(UTC)
        members = []
        for name, spec in sorted(self.specs.items()):
            member = self.members.get(name)
            reasons = ["cordoned"] if spec.spec.cordoned else []
            if member is None:
                reasons.append("not connected")
            elif not self.countable(name):
                reasons.append(self._unschedulable_reason(member))
            # A Suspect member keeps what it runs but takes nothing new: no free GPUs to offer.
            usable = member is not None and member.health.phase is Phase.READY
            members.append(dataclasses.replace(
                from_model.to_member(spec, now),
                shapes=member.shapes() if member is not None and usable else (),
                unschedulable_reason="; ".join(reasons) or None,
            ))
        return Snapshot(members=tuple(members), alliances=alliances)

    @staticmethod
    def _unschedulable_reason(member: Member) -> str:
        phase = member.health.phase
        if phase is Phase.READY:
            return "syncing: views of the member not complete yet"
        if phase is Phase.QUARANTINED:
            return f"quarantined: {member.health.message}"
        return f"{phase.value.lower()}: {member.health.message}"

    def record_decision(self, uid: str, assignments: Mapping[str, int]) -> None:
        self.decisions[uid] = dict(assignments)

    def forget(self, uid: str) -> None:
        self.decisions.pop(uid, None)

