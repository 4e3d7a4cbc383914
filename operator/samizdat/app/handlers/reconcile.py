"""One reconciliation of one AIWorkload: ask the placement core, make members match, report.

Level-based, so a restarted operator simply runs it again: the current placement is read from the
copies the members really hold (never from our own status), the decision keeps healthy replicas where
they are, and whatever is missing or surplus is applied or deleted. An infeasible decision changes
nothing in the members: no objects for a workload never placed, and no healthy replica torn down for one
that was. While the self-partition guard holds, nothing moves at all.

A copy once written is not trusted to run: replicas not Ready within the workload's start deadline
count as not placed (`samizdat.core.starts` judges why). The member is quarantined when someone else's act
starved them, and in any case kept from new replicas of this workload for its quarantineSeconds, so
they are placed elsewhere under the same rules and the stuck copy shrinks to what runs; only when no
other member has room is the backed-off member given another try.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field

from samizdat.core import inventory, manifests, placement, starts
from samizdat.remote import metrics
from samizdat.remote.clusters import errors
from samizdat.remote.fleet import Fleet, Loss, tampering
from samizdat.core.model import AIWorkload, Mode
from samizdat.core.placement import from_model, standby

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """One thing done to a member, for an Event."""

    member: str
    verb: str  # "placed", "scaled", "updated", "removed", "promoted", "demoted"
    replicas: int


@dataclass
class Outcome:
    decision: placement.Decision | None
    halted: str | None = None  # the guard's message when evictions are halted
    changes: list[Change] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # member -> error
    left_behind: list[str] = field(default_factory=list)  # unreachable members still holding a copy
    lost: dict[str, Loss] = field(default_factory=dict)  # member -> why its replicas no longer count
    # How each counted copy's replicas are starting, and the members whose overdue replicas were judged.
    replica_starts: dict[str, tuple[starts.ReplicaStart, ...]] = field(default_factory=dict)
    starved: dict[str, starts.Verdict] = field(default_factory=dict)
    recheck_s: float | None = None  # when the next starting replica reaches its deadline

    @property
    def converged(self) -> bool:
        return self.decision is not None and self.decision.feasible and not self.failures


def _needs_write(workload: AIWorkload, existing: Mapping[str, object] | None, replicas: int) -> str | None:
    if existing is None:
        return "placed"
    metadata = existing.get("metadata")
    spec = existing.get("spec")
    assert isinstance(metadata, dict) and isinstance(spec, dict)
    annotations = metadata.get("annotations", {})
    if annotations.get(manifests.GENERATION_ANNOTATION) != str(workload.metadata.generation or 0):
        return "updated"
    if annotations.get(manifests.REPLICAS_ANNOTATION) != str(replicas):
        return "scaled"
    if tampering(existing) is not None:
        # Someone else's change (scaled to zero, image swapped) outlived the member's quarantine: the
        # copy is ours again once the member is fenced and wanted, so what we asked for is written back.
        return "updated"
    return None


def _judge_starts(workload: AIWorkload, fleet: Fleet, replica_starts: Mapping[str, tuple[starts.ReplicaStart, ...]]
                  ) -> dict[str, starts.Verdict]:
    """Judge every member's overdue replicas; quarantine or back off the members that starved them."""
    uid = workload.metadata.uid or ""
    ready = {name for name, found in replica_starts.items()
             if any(s.state is starts.ReplicaState.READY for s in found)}
    starved = {}
    for name, found in sorted(replica_starts.items()):
        if not any(s.overdue for s in found):
            continue
        verdict = starts.judge(found, fleet.images_running(outside=name), bool(ready - {name}))
        if not verdict.lost:
            continue
        starved[name] = verdict
        if name not in fleet.backed_off(uid):  # judged already: the shrink has not been seen yet
            metrics.replicas_starved(verdict.cause.value if verdict.cause else "", verdict.lost)
        fleet.starve(name, verdict)
        fleet.back_off(uid, name, verdict, workload.spec.failover.quarantine_seconds)
    return starved


def _recheck(replica_starts: Mapping[str, tuple[starts.ReplicaStart, ...]]) -> float | None:
    """Seconds until the next replica still inside its deadline reaches it: nothing else wakes the
    reconciler when a Pending pod simply stays Pending."""
    waiting = [s.deadline_s - s.waited_s for found in replica_starts.values() for s in found
               if s.state is not starts.ReplicaState.READY and not s.overdue]
    return max(0.0, min(waiting)) + 0.5 if waiting else None


async def reconcile(workload: AIWorkload, fleet: Fleet) -> Outcome:
    uid = workload.metadata.uid or ""
    guard = fleet.guard()
    metrics.evictions_halted(guard.halted)
    if guard.halted:
        return Outcome(decision=None, halted=guard.message, lost=fleet.losses(uid))
    failover = workload.spec.failover
    replica_starts = fleet.replica_starts(uid, starts.Deadlines(failover.start_deadline_seconds,
                                                                failover.schedule_deadline_seconds))
    starved = _judge_starts(workload, fleet, replica_starts)
    copies = fleet.copies_of(uid)
    lost = fleet.losses(uid)  # after the verdicts: a member quarantined just now is lost
    current = fleet.current(uid)
    for name, verdict in starved.items():
        if name in current:
            current[name] = max(0, current[name] - verdict.lost)
    request = from_model.to_request(workload, current)
    backed_off = {name: entry.evidence for name, entry in fleet.backed_off(uid).items()}
    snapshot = fleet.snapshot()
    started = time.perf_counter()
    decision = placement.solve(placement.withhold(snapshot, backed_off), request)
    if not decision.feasible and backed_off:
        # A back-off is a preference, not a wall: when no other member has room, a member that starved
        # this workload before gets another try rather than leaving it short for quarantineSeconds
        # (under compound faults every member with room may have starved it once, and healed since).
        # If it starves the replica again, the deadline judges it again.
        retried = placement.solve(snapshot, request)
        decision = retried if retried.feasible else decision
    metrics.decision_took(time.perf_counter() - started)
    outcome = Outcome(decision=decision, lost=lost, replica_starts=replica_starts, starved=starved,
                      recheck_s=_recheck(replica_starts))
    if not decision.feasible:
        if workload.spec.mode is Mode.SERVE:
            # Nothing moves, but the replicas that still run serve: a standby is promoted for a lost
            # serving replica even when the lost one cannot be placed again.
            await _assign_roles(fleet, workload, outcome, current)
        return outcome
    fleet.record_decision(uid, decision.assignments, manifests.replica_pod_spec(workload))
    # Members are written concurrently: a member that has just gone quiet (partitioned, not yet Down)
    # must not hold up the others until its request deadline.
    writes = []
    for name, replicas in sorted(decision.assignments.items()):
        existing = copies.get(name)
        verb = _needs_write(workload, existing.body if existing else None, replicas)
        if verb is not None:
            writes.append(_place(fleet, workload, outcome, name, verb, replicas))
    for name, copy in sorted(copies.items()):
        if decision.assignments.get(name, 0) > 0:
            continue
        if not fleet.is_fenced(name):
            # Unreachable, hostile or just back: the member's fence deletes the copy, not us.
            outcome.left_behind.append(name)
        else:
            fleet.retire(name, copy)
            outcome.changes.append(Change(name, "removed", 0))
    if workload.spec.mode is Mode.SERVE:
        # Promotions go out with the copies, not after them: restoring serving capacity must not
        # wait for a cold replica's member to answer. Pods of new copies get their role once seen.
        writes.append(_assign_roles(fleet, workload, outcome, decision.assignments))
    await asyncio.gather(*writes)
    if workload.spec.mode is Mode.SERVE:
        await _expose(fleet, workload, outcome, decision)
    return outcome


async def _expose(fleet: Fleet, workload: AIWorkload, outcome: Outcome, decision: placement.Decision) -> None:
    """Give each member copy its serving Service, once the member has reported the copy (the Service
    is owned by it, by uid)."""
    uid = workload.metadata.uid or ""
    writes = []
    for name, copy in sorted(fleet.counted(uid).items()):
        if decision.assignments.get(name, 0) <= 0 or fleet.service(name, uid) is not None:
            continue
        if not copy.body.get("metadata", {}).get("uid"):
            continue  # our own apply, not yet seen back from the member
        manifest = manifests.build_service(workload, copy.body)
        if manifest is not None:
            writes.append(_guarded(outcome, name, fleet.expose(name, uid, manifest)))
    await asyncio.gather(*writes)


async def _assign_roles(fleet: Fleet, workload: AIWorkload, outcome: Outcome, assignments: Mapping[str, int]) -> None:
    """Label each member's pods serving or standby (see `placement.standby`): promotions land first,
    all members at once, then demotions, so serving capacity never dips while they land. `assignments`
    holds every hard rule; the serving replicas among them keep minJurisdictions, the one rule a subset
    of a placement can break, so no promotion breaks a hard rule."""
    pods = fleet.pods(workload.metadata.uid or "")
    held = {
        name: standby.Held(ready=sum(1 for pod in members_pods if inventory.pod_ready(pod)),
                           serving=sum(1 for pod in members_pods if manifests.is_serving(pod)))
        for name, members_pods in pods.items()
    }
    countries = {name: spec.spec.jurisdiction.country if (spec := fleet.spec(name)) is not None else ""
                 for name in assignments}
    serving = standby.serving_split(assignments, held, countries, workload.spec.replicas,
                                    workload.spec.placement.min_jurisdictions)
    # A member the decision empties keeps its labels: its copy is being retired, pods and all.
    labels = {name: manifests.relabels(members_pods, serving[name]) for name, members_pods in pods.items()
              if assignments.get(name, 0) > 0}
    for role, verb in ((manifests.SERVING, "promoted"), (manifests.STANDBY, "demoted")):
        writes = []
        for name, wanted in sorted(labels.items()):
            chosen = [pod for pod, to in wanted if to == role]
            writes += [_guarded(outcome, name, _relabel(fleet, name, pod, role)) for pod in chosen]
            if chosen:
                outcome.changes.append(Change(name, verb, len(chosen)))
        await asyncio.gather(*writes)


async def _relabel(fleet: Fleet, name: str, pod: str, role: str) -> None:
    try:
        await fleet.assign_role(name, pod, role)
    except errors.NotFound:
        pass  # the pod went (its ReplicaSet scaled down): the next reconcile sees the member as it is


async def _guarded(outcome: Outcome, name: str, write: Awaitable[None]) -> None:
    try:
        await write
    except errors.MemberError as error:
        outcome.failures[name] = str(error)


async def _place(fleet: Fleet, workload: AIWorkload, outcome: Outcome, name: str, verb: str, replicas: int) -> None:
    try:
        await fleet.place(name, manifests.build_copy(workload, replicas))
        outcome.changes.append(Change(name, verb, replicas))
    except errors.MemberError as error:
        outcome.failures[name] = str(error)


async def remove_everywhere(uid: str, fleet: Fleet) -> list[str]:
    """Delete every copy of a workload; return the members that could not be reached (the fence or the
    orphan sweep finishes those when they return)."""
    fleet.forget(uid)
    unreachable = []
    for name, copy in sorted(fleet.copies_of(uid).items()):
        try:
            await fleet.remove(name, copy)
        except errors.MemberError:
            unreachable.append(name)
    return unreachable
