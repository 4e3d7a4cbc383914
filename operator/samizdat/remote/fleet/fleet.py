"""All members together: who is connected, what each holds, and who must hear about changes.

The fleet turns member views into the immutable `Snapshot` placement decides over (with the capacity
ledger's promises charged, see `samizdat.core.ledger`), tells each workload's
reconciler when something it may care about changed, and fences members that come back: before a member
returning from Down or Quarantined counts again, copies it still runs that the latest decisions no longer
want (or whose workload is gone) are deleted, so no rule is exceeded after a heal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from samizdat.core import health, jurisdictions, manifests, model, starts
from samizdat.remote import metrics
from samizdat.remote.clusters import errors, kubeconfig
from samizdat.remote.fleet.changes import MemberChange
from samizdat.remote.fleet.decisions import DecisionBook
from samizdat.remote.fleet.fences import Fences
from samizdat.remote.fleet.member import Member, MemberSettings, MemberState
from samizdat.remote.fleet.views import Copy
from samizdat.core.model import MemberCluster, Phase
from samizdat.core.placement import from_model
from samizdat.core.placement.snapshot import Snapshot

# How long after start the fleet may still be learning what its members hold (see `settling`): enough
# for a member's first probe to fail into Down (health's 3 s) and for a fence over complete views.
SETTLE_S = 15.0

MemberFactory = Callable[[str, kubeconfig.Credentials, MemberSettings, Callable[[Member, MemberChange], None]], Member]
# kopf's indexes, as the fleet reads them: key -> the stored values
Index = Mapping[Any, Iterable[Any]]


@dataclass(frozen=True, slots=True)
class Loss:
    """A member that held replicas of a workload and is now lost (Down or Quarantined)."""

    member: str
    why: str  # "down (ProbeRefused)", "quarantined: Deployment x deleted" (only when x is this workload's copy)
    reason: model.FailoverReason
    since: float  # monotonic time the loss began: its first failed probe, or the censorship


def _loss_for(uid: str, member: Member) -> str:
    """Why a lost member's replicas of workload `uid` no longer count, in words that stay the same while
    the loss lasts (so Events repeat, and aggregate): the failure's reason, never a measured duration.
    Censorship evidence is quoted only when it concerns this workload's own copy; otherwise it is the
    member's, and the MemberCluster's status and Events carry it."""
    phase = member.health.phase.value.lower()
    evidence = member.censorship
    if evidence is None:
        return f"{phase} ({member.lost_reason or member.health.reason})"
    if evidence.workload_uid == uid:
        return f"{phase}: {evidence.message}"
    return f"{phase}: the member censors ({evidence.kind.value}); its evidence is on MemberCluster {member.name}"


class Fleet:
    """The operator's one view of its members, and the only way handlers reach them.

    It connects and disconnects members as their MemberClusters and credentials come and go, answers
    what counts where (copies, replicas, pods, losses, the guard) from their live views, builds the
    placement snapshot, records decisions (`DecisionBook`), fences members that come back (`Fences`)
    and wakes each workload's reconciler when something it may care about changed. Reconcilers read
    it once per reconcile (`read_view`) and write through it.
    """

    def __init__(self, settings: MemberSettings, member: MemberFactory = Member) -> None:
        self._settings = settings
        self._new_member = member
        # Every live AIWorkload uid (kopf's index, complete before daemons start); None until known.
        self._live: Mapping[str, object] | None = None
        self._alliance_objects: Index | None = None
        self._members: dict[str, Member] = {}
        self._specs: dict[str, MemberCluster] = {}
        self._book = DecisionBook()
        self._fences = Fences(wanted=self._wanted, fenced=self._fence_done)
        self._subscribers: dict[str, asyncio.Event] = {}
        self._member_listeners: dict[str, asyncio.Event] = {}
        self._started = time.monotonic()
        # The snapshot is rebuilt once per generation: every change to what it is made of bumps it.
        self._generation = 0
        self._snapshot: tuple[int, Snapshot] | None = None
        self._alliances: Mapping[str, frozenset[str]] | None = None

    # ----- membership

    async def connect(self, spec: MemberCluster, kubeconfig_text: str) -> str:
        """(Re)connect a member with fresh credentials; returns the API server it talks to. Raises
        KubeconfigError for a bad kubeconfig."""
        name = spec.metadata.name
        credentials = kubeconfig.parse(kubeconfig_text)
        await self.disconnect(name)
        member = self._new_member(name, credentials, self._member_settings(spec), self._changed)
        self._members[name] = member
        self._specs[name] = spec
        self._bump()
        metrics.member_connected(name)
        member.start()
        return credentials.server

    def use_credentials(self, name: str, kubeconfig_text: str) -> bool:
        """Hand a renewed or rotated token to a connected member's client, keeping its connections and
        views (a reconnect would uncount its replicas for a moment and move them); False when more than
        the token changed (server, CA, user), which needs a reconnect."""
        member = self._members.get(name)
        if member is None:
            return False
        renewed = kubeconfig.parse(kubeconfig_text)
        current = member.credentials
        if renewed.token is None or dataclasses.replace(renewed, token=current.token) != current:
            return False
        member.use_token(renewed.token)
        return True

    def update_spec(self, spec: MemberCluster) -> None:
        if self._specs.get(spec.metadata.name) != spec:
            self._specs[spec.metadata.name] = spec
            self._bump()
        self._notify_workloads()

    async def disconnect(self, name: str) -> None:
        member = self._members.pop(name, None)
        self._specs.pop(name, None)
        self._fences.cancel(name)
        self._bump()
        if member is not None:
            metrics.forget_member(name)
            await member.stop()
            self._notify_workloads()

    async def close(self) -> None:
        for name in list(self._members):
            await self.disconnect(name)

    def track(self, workloads: Mapping[str, object], alliances: Index) -> None:
        """Where the fleet reads every live workload uid (for the orphan sweep) and the user's Alliance
        objects (their table is built once per `alliances_changed`): live indexes kept by the caller."""
        if workloads is not self._live or alliances is not self._alliance_objects:
            self._live, self._alliance_objects = workloads, alliances
            self._alliances = None
            self._bump()

    def alliances_changed(self) -> None:
        self._alliances = None
        self._bump()
        self._notify_workloads()

    def _member_settings(self, spec: MemberCluster) -> MemberSettings:
        policy = spec.spec.health
        return MemberSettings(
            probe_interval_s=policy.probe_interval_seconds,
            probe_timeout_s=policy.probe_timeout_seconds,
            quarantine_s=self._settings.quarantine_s,
            authority=self._settings.authority,
            policy=health.HealthPolicy(
                suspect_after_failures=policy.suspect_after_failures,
                down_after_seconds=policy.down_after_seconds,
                recover_after_successes=self._settings.policy.recover_after_successes,
            ),
        )

    # ----- change notification

    def subscribe(self, key: str, *, member: bool = False) -> asyncio.Event:
        table = self._member_listeners if member else self._subscribers
        return table.setdefault(key, asyncio.Event())

    def unsubscribe(self, key: str, *, member: bool = False) -> None:
        (self._member_listeners if member else self._subscribers).pop(key, None)

    def _notify_workloads(self) -> None:
        for event in self._subscribers.values():
            event.set()

    def _bump(self) -> None:
        self._generation += 1

    def _changed(self, member: Member, what: MemberChange) -> None:
        self._bump()
        if what is MemberChange.PHASE:
            quarantined = sum(1 for m in self._members.values() if m.health.phase is Phase.QUARANTINED)
            metrics.member_phase(member.name, member.health.phase.value, quarantined)
            if health.lost(member.health.phase):
                self._fences.lost(member.name)
            elif health.schedulable(member.health.phase) and member.name not in self._fences:
                self._fences.start(member)
        listener = self._member_listeners.get(member.name)
        if listener is not None:
            listener.set()
        self._notify_workloads()

    # ----- fencing (see `fences`)

    def _wanted(self, member: str, copy: Copy) -> bool:
        if self._live is not None and copy.workload_uid not in self._live:
            return False  # an orphan: its workload was deleted while this member was away
        return self._book.wants(member, copy)

    def _fence_done(self, name: str) -> None:
        self._bump()
        self._notify_workloads()

    def is_fenced(self, name: str) -> bool:
        """Whether the member has been fenced since it was last lost: only then do we write to it."""
        return name in self._fences

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
            member = self._members.get(name)
            if member is None or member.health.phase is Phase.PENDING:
                return True
            if health.healthy(member.health.phase) and name not in self._fences:
                return True
        return False

    def countable(self, name: str) -> bool:
        """Replicas here count: fenced, views complete, and Ready or merely Suspect (one lost probe must
        not move replicas; only Down or Quarantined does)."""
        member = self._members.get(name)
        return (
            member is not None and name in self._fences and member.views_complete
            and health.healthy(member.health.phase)
        )

    def copies_of(self, uid: str) -> dict[str, Copy]:
        """Every copy of the workload the members hold, counted or not."""
        return {name: m.copies[uid] for name, m in self._members.items() if uid in m.copies}

    def counted(self, uid: str) -> dict[str, Copy]:
        """The copies of the workload whose replicas count (see `countable`)."""
        return {name: copy for name, copy in self.copies_of(uid).items() if self.countable(name)}

    def current(self, uid: str) -> dict[str, int]:
        """Replicas placed per member that may be counted: lost or unfenced members hold none, and
        replicas stranded by fatally faulted GPUs (the agent's taint) do not count where they are."""
        return {
            name: max(0, copy.desired - self._members[name].replicas_lost_to_gpu_faults(uid))
            for name, copy in self.counted(uid).items()
        }

    def pods(self, uid: str) -> dict[str, list[dict[str, Any]]]:
        """The workload's live pods in each member whose replicas count (see `countable`)."""
        return {name: self._members[name].pods_of(uid) for name in self.counted(uid)}

    def service(self, name: str, uid: str) -> dict[str, Any] | None:
        """The workload's Service in the member as the member answered its apply, if there is one."""
        member = self._members.get(name)
        return member.services.get(uid) if member is not None else None

    def host(self, name: str) -> str | None:
        """Where the member's node ports are reached: its spec.trafficAddress, else its API server's
        address as its kubeconfig names it."""
        member, spec = self._members.get(name), self._specs.get(name)
        if spec is not None and spec.spec.traffic_address is not None:
            return spec.spec.traffic_address
        return member.host if member is not None else None

    def losses(self, uid: str) -> dict[str, Loss]:
        """Members that held replicas of the workload (by their copies, or by our last decision when a
        censor deleted the copy outright) and are now lost: why, and since when."""
        holders = set(self.copies_of(uid)) | self._book.holders(uid)
        losses = {}
        for name in sorted(holders):
            member = self._members.get(name)
            if member is None or not health.lost(member.health.phase):
                continue
            censored = member.censorship is not None
            losses[name] = Loss(
                member=name,
                why=_loss_for(uid, member),
                reason=model.FailoverReason.CENSORING if censored else model.FailoverReason.MEMBER_DOWN,
                since=member.lost_since if member.lost_since is not None else member.clock(),
            )
        return losses

    def guard(self) -> health.EvictionGuard:
        """The self-partition guard over every member's phase now."""
        return health.eviction_guard(member.health.phase for member in self._members.values())

    def state(self, name: str) -> MemberState | None:
        """The member as its status reports it now, or None when it is not connected."""
        member = self._members.get(name)
        return member.state(name in self._fences) if member is not None else None

    def spec(self, name: str) -> MemberCluster | None:
        return self._specs.get(name)

    def snapshot(self) -> Snapshot:
        """Members as placement sees them now: live health and inventory, not the last written status.
        The same object until something it is made of changes, so placement's per-snapshot index is
        built once per change rather than once per reconcile."""
        if self._snapshot is None or self._snapshot[0] != self._generation:
            self._snapshot = (self._generation, self._build_snapshot())
        return self._snapshot[1]

    def _build_snapshot(self) -> Snapshot:
        if self._alliances is None:
            self._alliances = self._alliance_table()
        now = datetime.now(UTC)
        members = []
        for name, spec in sorted(self._specs.items()):
            member = self._members.get(name)
            reasons = ["cordoned"] if spec.spec.cordoned else []
            if member is None:
                reasons.append("not connected")
            elif not self.countable(name):
                reasons.append(self._unschedulable_reason(member))
            # A Suspect member keeps what it runs but takes nothing new: no free GPUs to offer. So does
            # one without a working fence under an election: nothing can be written there.
            usable = member is not None and health.schedulable(member.health.phase) and not (
                member.fence is not None and member.fence.broken is not None)
            members.append(dataclasses.replace(
                from_model.to_member(spec, now),
                shapes=member.promised_shapes(self._book.promises(name, member.copies)) if member is not None and usable else (),
                unschedulable_reason="; ".join(reasons) or None,
                probe_rtt_ms=member.probe_rtt_ms if member is not None else None,
            ))
        return Snapshot(members=tuple(members), alliances=self._alliances)

    def _alliance_table(self) -> Mapping[str, frozenset[str]]:
        """Built-in alliances merged with the user's Alliance objects (which add or override by name)."""
        stores = self._alliance_objects.values() if self._alliance_objects is not None else ()
        return jurisdictions.alliance_table([model.Alliance.model_validate(obj) for store in stores for obj in store])

    @staticmethod
    def _unschedulable_reason(member: Member) -> str:
        if health.schedulable(member.health.phase):
            return "syncing: views of the member not complete yet"
        return model.unschedulable(member.health.phase, member.health.message)

    # ----- what reconcilers decide and do

    def record_decision(self, uid: str, assignments: Mapping[str, int], pod_spec: Mapping[str, Any]) -> None:
        """Remember where the workload should run: the fence keeps what this still wants, and the
        capacity ledger charges it to those members until their pods hold the GPUs. A changed decision
        makes a new snapshot at once, so the next decision, even in the same instant, reads it."""
        if self._book.record(uid, assignments, pod_spec):
            self._bump()

    def forget(self, uid: str) -> None:
        self._book.forget(uid)
        self._bump()

    # ----- start deadlines

    def replica_starts(self, uid: str, deadlines: starts.Deadlines) -> dict[str, tuple[starts.ReplicaStart, ...]]:
        """How each counted copy's replicas are starting, member by member (see `samizdat.core.starts`)."""
        now = datetime.now(UTC)
        found = {}
        for name, copy in self.counted(uid).items():
            member = self._members[name]
            found[name] = starts.classify(copy.body, member.workload_pods(uid), member.nodes.values(),
                                          deadlines.start_s, now, used=member.used_gpus(),
                                          schedule_deadline_s=deadlines.schedule_s)
        return found

    def images_running(self) -> dict[str, frozenset[str]]:
        """Images of our pods that run (started, not waiting), per counted member: an image refused by
        one member while it runs in others is refused by that member."""
        found = {}
        for name, member in self._members.items():
            if not self.countable(name):
                continue
            found[name] = frozenset(
                str(container.get("image", ""))
                for pod in member.pods.values() if manifests.UID_LABEL in pod["metadata"].get("labels", {})
                for container in pod.get("status", {}).get("containerStatuses") or []
                if "running" in (container.get("state") or {})
            )
        return found

    def starve(self, name: str, verdict: starts.Verdict) -> None:
        """Quarantine a member whose verdict names someone else's act (censorship)."""
        member = self._members.get(name)
        if member is not None and verdict.censorship is not None:
            member.starved(verdict.censorship, verdict.evidence)

    def back_off(self, uid: str, name: str, verdict: starts.Verdict, seconds: float) -> None:
        """Keep the member from new replicas of the workload for `seconds`."""
        self._book.back_off(uid, name, verdict, time.monotonic(), seconds)

    def backed_off(self, uid: str) -> dict[str, starts.BackOff]:
        """The members kept from new replicas of the workload now."""
        return self._book.backed_off(uid, time.monotonic())

    async def place(self, name: str, manifest: dict[str, Any]) -> None:
        """Create or update a copy in the member; raises MemberError, at once if the member is lost
        meanwhile (see `Member.answering`)."""
        member = self._members[name]
        await member.answering(member.apply_copy(manifest))

    async def expose(self, name: str, uid: str, manifest: dict[str, Any]) -> None:
        """Create or update the workload's serving Service in the member; raises MemberError, at once
        if the member is lost meanwhile."""
        member = self._members[name]
        await member.answering(member.apply_service(uid, manifest))

    async def assign_role(self, name: str, pod: str, role: str) -> None:
        """Label one pod serving or standby in place; raises MemberError, at once if the member is lost
        meanwhile (a promotion elsewhere must not wait on it)."""
        member = self._members[name]
        await member.answering(member.label_pod(pod, role))

    def retire(self, name: str, copy: Copy) -> None:
        """Delete a copy in the background (its pods take seconds to drain)."""
        self._members[name].retire(copy)

    async def remove(self, name: str, copy: Copy) -> None:
        """Delete a copy and wait until it is gone; raises MemberError, also for a member disconnected
        meanwhile (its copy is then the fence's or the orphan sweep's to remove when it returns)."""
        member = self._members.get(name)
        if member is None:
            raise errors.MemberUnreachable(name, "disconnected")
        await member.delete_copy(copy)
