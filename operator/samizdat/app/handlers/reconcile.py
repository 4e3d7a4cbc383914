"""One reconciliation of one AIWorkload: read its world once, decide, make members match, report.

Level-based, so a restarted operator simply runs it again: the current placement is read from the
copies the members really hold (never from our own status), the decision keeps healthy replicas where
they are, and whatever is missing or surplus is applied or deleted. An infeasible decision changes
nothing in the members: no objects for a workload never placed, and no healthy replica torn down for one
that was. While the self-partition guard holds, nothing moves at all.

decide -> apply -> report: the fleet is read once into a `WorkloadView`; the start verdicts, the
decision and every write are worked out from it by the pure functions below; only then are the verdicts
and the writes applied, and each write's answer collected as a value into one frozen `report.Result`.

A copy once written is not trusted to run: replicas not Ready within the workload's start deadline
count as not placed (`samizdat.core.starts` judges why). The member is quarantined when someone else's act
starved them, and in any case kept from new replicas of this workload for its quarantineSeconds, so
they are placed elsewhere under the same rules and the stuck copy shrinks to what runs; only when no
other member has room is the backed-off member given another try.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from samizdat.core import inventory, manifests, model, placement, report, starts
from samizdat.core.model import AIWorkload, Mode, Phase
from samizdat.core.placement import from_model, standby
from samizdat.core.report import Change, Relabel, Verb
from samizdat.remote import metrics
from samizdat.remote.clusters import errors
from samizdat.remote.fleet import Fleet, WorkloadView, read_view, tampering

logger = logging.getLogger(__name__)


# ----- decide (pure: the view in, values out)


def needs_write(workload: AIWorkload, existing: Mapping[str, object] | None, replicas: int) -> Verb | None:
    """What writing the member's copy would do, or None when it already is what the decision wants."""
    if existing is None:
        return Verb.PLACED
    metadata = existing.get("metadata")
    spec = existing.get("spec")
    assert isinstance(metadata, dict) and isinstance(spec, dict)
    annotations = metadata.get("annotations", {})
    if annotations.get(manifests.GENERATION_ANNOTATION) != str(workload.metadata.generation or 0):
        return Verb.UPDATED
    if annotations.get(manifests.REPLICAS_ANNOTATION) != str(replicas):
        return Verb.SCALED
    if tampering(existing) is not None:
        # Someone else's change (scaled to zero, image swapped) outlived the member's quarantine: the
        # copy is ours again once the member is fenced and wanted, so what we asked for is written back.
        return Verb.UPDATED
    return None


def judge(view: WorkloadView) -> dict[str, starts.Verdict]:
    """Every member's overdue replicas judged: the members that starved them, and how."""
    ready = {name for name, found in view.replica_starts.items()
             if any(s.state is starts.ReplicaState.READY for s in found)}
    starved: dict[str, starts.Verdict] = {}
    for name, found in sorted(view.replica_starts.items()):
        if not any(s.overdue for s in found):
            continue
        # Images running in the other members that count, members this judgement quarantines excluded.
        quarantined = {judged for judged, verdict in starved.items() if verdict.censorship is not None}
        elsewhere = frozenset().union(*(images for member, images in view.images_running.items()
                                        if member != name and member not in quarantined))
        verdict = starts.judge(found, elsewhere, bool(ready - {name}))
        if verdict.lost:
            starved[name] = verdict
    return starved


def after_verdicts(view: WorkloadView, verdicts: Mapping[str, starts.Verdict], quarantine_seconds: float
                   ) -> WorkloadView:
    """The view as the fleet will hold it once `verdicts` are applied, so that the decision reads what
    they do: a member a verdict quarantines is lost (nothing it holds counts, it is no longer fenced and
    takes nothing new), the lost replicas of a member only backed off no longer count, and every judged
    member is backed off from `view.now`."""
    quarantined = {name for name, verdict in verdicts.items() if verdict.censorship is not None}
    current = {name: replicas for name, replicas in view.current.items() if name not in quarantined}
    for name, verdict in verdicts.items():
        if name in current:
            current[name] = max(0, current[name] - verdict.lost)
    backed_off: dict[str, starts.BackOff] = dict(view.backed_off)
    for name, verdict in sorted(verdicts.items()):
        backed_off = starts.back_off(backed_off, name, verdict, view.now, quarantine_seconds)
    return dataclasses.replace(
        view,
        counted=MappingProxyType({n: c for n, c in view.counted.items() if n not in quarantined}),
        current=MappingProxyType(current),
        pods=MappingProxyType({n: p for n, p in view.pods.items() if n not in quarantined}),
        backed_off=MappingProxyType(backed_off),
        fenced=view.fenced - quarantined,
        services=MappingProxyType({n: s for n, s in view.services.items() if n not in quarantined}),
        snapshot=_quarantine(view.snapshot, {name: verdicts[name].evidence for name in quarantined}),
    )


def _quarantine(snapshot: placement.Snapshot, evidence: Mapping[str, str]) -> placement.Snapshot:
    """The snapshot with these members quarantined on this evidence, as the fleet rebuilds it then: no
    free GPUs to offer, and the quarantine as the reason."""
    if not evidence:
        return snapshot
    return dataclasses.replace(snapshot, members=tuple(
        dataclasses.replace(m, shapes=(), unschedulable_reason="; ".join(
            [*([m.unschedulable_reason] if m.unschedulable_reason else []),
             model.unschedulable(Phase.QUARANTINED, evidence[m.name])]))
        if m.name in evidence else m
        for m in snapshot.members
    ))


def solve(workload: AIWorkload, view: WorkloadView) -> placement.Decision:
    """The placement decision over the view, its back-offs withheld while another member has room."""
    request = from_model.to_request(workload, dict(view.current))
    backed_off = {name: entry.evidence for name, entry in view.backed_off.items()}
    decision = placement.solve(placement.withhold(view.snapshot, backed_off), request)
    if not decision.feasible and backed_off:
        # A back-off is a preference, not a wall: when no other member has room, a member that starved
        # this workload before gets another try rather than leaving it short for quarantineSeconds
        # (under compound faults every member with room may have starved it once, and healed since).
        # If it starves the replica again, the deadline judges it again.
        retried = placement.solve(view.snapshot, request)
        decision = retried if retried.feasible else decision
    return decision


def recheck(replica_starts: Mapping[str, tuple[starts.ReplicaStart, ...]]) -> float | None:
    """Seconds until the next replica still inside its deadline reaches it: nothing else wakes the
    reconciler when a Pending pod simply stays Pending."""
    waiting = [s.deadline_s - s.waited_s for found in replica_starts.values() for s in found
               if s.state is not starts.ReplicaState.READY and not s.overdue]
    return max(0.0, min(waiting)) + 0.5 if waiting else None


def relabels(workload: AIWorkload, view: WorkloadView, assignments: Mapping[str, int]
             ) -> tuple[tuple[Relabel, ...], tuple[Relabel, ...]]:
    """The pods to promote, then the pods to demote (see `placement.standby`), so serving capacity never
    dips while they land. `assignments` holds every hard rule; the serving replicas among them keep
    minJurisdictions, the one rule a subset of a placement can break, so no promotion breaks a hard rule."""
    held = {
        name: standby.Held(ready=sum(1 for pod in members_pods if inventory.pod_ready(pod)),
                           serving=sum(1 for pod in members_pods if manifests.is_serving(pod)))
        for name, members_pods in view.pods.items()
    }
    countries = {name: spec.spec.jurisdiction.country if (spec := view.specs.get(name)) is not None else ""
                 for name in assignments}
    serving = standby.serving_split(assignments, held, countries, workload.spec.replicas,
                                    workload.spec.placement.min_jurisdictions)
    # A member the decision empties keeps its labels: its copy is being retired, pods and all.
    labels = {name: manifests.relabels(members_pods, serving[name]) for name, members_pods in view.pods.items()
              if assignments.get(name, 0) > 0}
    promote, demote = (tuple(Relabel(name, pod, role) for name, wanted in sorted(labels.items())
                             for pod, to in wanted if to == role)
                       for role in (manifests.SERVING, manifests.STANDBY))
    return promote, demote


def exposures(workload: AIWorkload, view: WorkloadView, decision: placement.Decision
              ) -> dict[str, dict[str, Any]]:
    """The serving Service each placed member copy still needs (member -> manifest), once the member has
    reported the copy (the Service is owned by it, by uid)."""
    wanted = {}
    for name, copy in sorted(view.counted.items()):
        if decision.assignments.get(name, 0) <= 0:
            continue
        service = view.services.get(name)
        if service is not None and manifests.service_current(service, workload):
            continue
        if not copy.body.get("metadata", {}).get("uid"):
            continue  # our own apply, not yet seen back from the member
        manifest = manifests.build_service(workload, copy.body)
        if manifest is not None:
            wanted[name] = manifest
    return wanted


# ----- apply (the fleet's writes, each answering with a value)


@dataclass(frozen=True, slots=True)
class Written:
    """What one write, or one batch of them, did and what failed."""

    changes: tuple[Change, ...] = ()
    failures: tuple[tuple[str, str], ...] = ()  # (member, error)
    relabelled: tuple[Relabel, ...] = ()


async def reconcile(workload: AIWorkload, fleet: Fleet) -> report.Result:
    view = read_view(fleet, workload)
    metrics.evictions_halted(view.guard.halted)
    if view.guard.halted:
        return report.Result(view=view, decision=None, halted=view.guard.message, lost=view.losses)
    failover = workload.spec.failover
    starved = judge(view)
    decided = after_verdicts(view, starved, failover.quarantine_seconds)
    started = time.perf_counter()
    decision = solve(workload, decided)
    metrics.decision_took(time.perf_counter() - started)
    lost = _apply_verdicts(fleet, workload, view, starved)
    result = report.Result(view=decided, decision=decision, lost=lost, replica_starts=view.replica_starts,
                           starved=MappingProxyType(starved), recheck_s=recheck(view.replica_starts))
    if not decision.feasible:
        if workload.spec.mode is Mode.SERVE:
            # Nothing moves, but the replicas that still run serve: a standby is promoted for a lost
            # serving replica even when the lost one cannot be placed again.
            return _with(result, [await _assign_roles(fleet, relabels(workload, decided, decided.current))])
        return result
    fleet.record_decision(decided.uid, decision.assignments, manifests.replica_pod_spec(workload))
    # Members are written concurrently: a member that has just gone quiet (partitioned, not yet Down)
    # must not hold up the others until its request deadline.
    writes: list[Awaitable[Written]] = []
    for name, replicas in sorted(decision.assignments.items()):
        existing = decided.copies.get(name)
        verb = needs_write(workload, existing.body if existing else None, replicas)
        if verb is not None:
            writes.append(_place(fleet, workload, name, verb, replicas))
    left_behind, removed = [], []
    for name, copy in sorted(decided.copies.items()):
        if decision.assignments.get(name, 0) > 0:
            continue
        if name not in decided.fenced:
            # Unreachable, hostile or just back: the member's fence deletes the copy, not us.
            left_behind.append(name)
        else:
            fleet.retire(name, copy)
            removed.append(Change(name, Verb.REMOVED, 0))
    if workload.spec.mode is Mode.SERVE:
        # Promotions go out with the copies, not after them: restoring serving capacity must not
        # wait for a cold replica's member to answer. Pods of new copies get their role once seen.
        writes.append(_assign_roles(fleet, relabels(workload, decided, decision.assignments)))
    written = [Written(changes=tuple(removed)), *await asyncio.gather(*writes)]
    result = dataclasses.replace(_with(result, written), left_behind=tuple(left_behind))
    if workload.spec.mode is Mode.SERVE:
        return await _expose(fleet, decided.uid, result, exposures(workload, decided, decision))
    return result


def _apply_verdicts(fleet: Fleet, workload: AIWorkload, view: WorkloadView,
                    verdicts: Mapping[str, starts.Verdict]) -> Mapping[str, report.HolderLost]:
    """Quarantine or back off the members the verdicts judged; the workload's losses then: those of the
    view and those the quarantines just made, as the fleet tells them (when each began is its to say)."""
    for name, verdict in sorted(verdicts.items()):
        if name not in view.backed_off:  # judged already: the shrink has not been seen yet
            metrics.replicas_starved(verdict.cause.value if verdict.cause else "", verdict.lost)
        fleet.starve(name, verdict)
        fleet.back_off(view.uid, name, verdict, workload.spec.failover.quarantine_seconds)
    quarantined = {name for name, verdict in verdicts.items() if verdict.censorship is not None}
    if not quarantined:
        return view.losses
    made = {name: loss for name, loss in fleet.losses(view.uid).items() if name in quarantined}
    return MappingProxyType(dict(sorted({**view.losses, **made}.items())))


def _with(result: report.Result, written: list[Written]) -> report.Result:
    return dataclasses.replace(
        result,
        changes=result.changes + tuple(change for done in written for change in done.changes),
        failures=MappingProxyType({**result.failures, **{name: error for done in written for name, error in done.failures}}),
        relabelled=result.relabelled + tuple(label for done in written for label in done.relabelled),
    )


async def _expose(fleet: Fleet, uid: str, result: report.Result, wanted: Mapping[str, dict[str, Any]]
                  ) -> report.Result:
    """Give each member copy its serving Service; the result with the Services as the members answered."""
    names = sorted(wanted)
    answers = await asyncio.gather(*(_guarded(name, fleet.expose(name, uid, wanted[name])) for name in names))
    exposed = {name: service for name, done in zip(names, answers, strict=True)
               if not done.failures and (service := fleet.service(name, uid)) is not None}
    return dataclasses.replace(_with(result, list(answers)), exposed=MappingProxyType(exposed))


async def _assign_roles(fleet: Fleet, relabelled: tuple[tuple[Relabel, ...], tuple[Relabel, ...]]) -> Written:
    """Label the pods serving or standby: promotions land first, all members at once, then demotions."""
    written = []
    for labels, verb in zip(relabelled, (Verb.PROMOTED, Verb.DEMOTED), strict=True):
        counts: dict[str, int] = {}
        for label in labels:
            counts[label.member] = counts.get(label.member, 0) + 1
        changes = tuple(Change(name, verb, count) for name, count in sorted(counts.items()))
        written += [Written(changes=changes), *await asyncio.gather(*(_relabel(fleet, label) for label in labels))]
    return Written(changes=tuple(c for w in written for c in w.changes),
                   failures=tuple(f for w in written for f in w.failures),
                   relabelled=tuple(label for w in written for label in w.relabelled))


async def _relabel(fleet: Fleet, label: Relabel) -> Written:
    try:
        await fleet.assign_role(label.member, label.pod, label.role)
    except errors.NotFound:
        return Written()  # the pod went (its ReplicaSet scaled down): the next reconcile sees the member as it is
    except errors.MemberError as error:
        return Written(failures=((label.member, str(error)),))
    return Written(relabelled=(label,))


async def _guarded(name: str, write: Awaitable[None]) -> Written:
    try:
        await write
    except errors.MemberError as error:
        return Written(failures=((name, str(error)),))
    return Written()


async def _place(fleet: Fleet, workload: AIWorkload, name: str, verb: Verb, replicas: int) -> Written:
    done = await _guarded(name, fleet.place(name, manifests.build_copy(workload, replicas)))
    return done if done.failures else Written(changes=(Change(name, verb, replicas),))


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
