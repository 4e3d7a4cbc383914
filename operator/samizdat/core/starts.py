"""How each replica of a copy is starting, and what samizdat makes of one that does not start in time.

A copy once written is not trusted to run. Every replica the copy asks for is read from the member's own
objects (its pod, or the copy's conditions when no pod exists) into one `ReplicaStart`: Ready; starting
(scheduled, not Ready yet: pulling, loading weights); never scheduled (no pod, or a pod no node takes:
GPUs short, nodes cordoned or tainted, a quota, no scheduler); or unable to start (image pull or crash
loop), each with the evidence a user can check. A replica not Ready within the workload's start deadline
is overdue; so is one that has not even begun to start (never scheduled, or its image refused) within
the shorter schedule deadline, since loading, which the start deadline allows for, only begins once a
node runs it; and one whose member's own objects name someone else's act against it is overdue after
a few seconds. `judge` decides what an overdue replica means:

- someone else's act on the member after our copy was admitted -- the GPU nodes that would hold it
  cordoned or tainted, a quota imposed on our namespace, the image refused here while it runs elsewhere --
  is censorship: the member is quarantined, as for a deleted copy;
- short capacity (GPUs taken, no node of the right kind, no scheduler, pods never created, a replica
  that stays unready) backs the member off for this workload only; either way the overdue replicas count
  as not placed and are placed elsewhere under the same rules;
- a fault that would follow the replica anywhere (an image that pulls nowhere, a crash loop with no
  replica Ready elsewhere) moves nothing: moving cannot help, so it is only reported.

Pure: the member's objects, the deadline and the time are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from samizdat.core import inventory, manifests, model
from samizdat.core.model import CensorshipKind

IMAGE_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})
CRASH_REASONS = frozenset({"CrashLoopBackOff"})


# The vocabulary lives in the model, where status and Events spell it too.
ReplicaState = model.ReplicaState
Cause = model.StartCause


# How long the evidence of someone else's act must stand before it is acted on: a node uncordoned, a
# quota lifted within seconds was no act against us.
EVIDENCE_SETTLE_S = 5.0

# Someone else's act on the member after our copy was admitted: censorship, not a shortage.
HOSTILE: Mapping[Cause, CensorshipKind] = {
    Cause.NODES_CORDONED: CensorshipKind.NODES_CORDONED,
    Cause.NODES_TAINTED: CensorshipKind.NODES_TAINTED,
    Cause.QUOTA_EXCEEDED: CensorshipKind.QUOTA_IMPOSED,
}


@dataclass(frozen=True, slots=True)
class ReplicaStart:
    """One replica of a copy as the member shows it. The evidence stays the same while nothing changes
    (no clock in it), so status and Events built from it are written once, not on every reconcile."""

    state: ReplicaState
    cause: Cause
    evidence: str
    waited_s: float  # since samizdat asked for it, or since it last stopped being Ready
    overdue: bool  # not Ready, and waited at least its deadline
    image: str | None = None  # the image that does not pull, for an image pull failure
    deadline_s: float = 0.0  # the deadline that applies to it: the schedule or the start deadline


@dataclass(frozen=True, slots=True)
class Deadlines:
    """A workload's two deadlines (`spec.failover`): until Ready, and until begun to start."""

    start_s: float
    schedule_s: float

    def of(self, state: ReplicaState, cause: Cause) -> float:
        """The deadline of a replica in `state` for `cause`: one that has not begun to start (never
        scheduled, or its image refused) gets the shorter schedule deadline, and one that the member's
        own objects show kept out by someone else's act (GPU nodes with room for it cordoned or
        tainted, a quota on our namespace) only EVIDENCE_SETTLE_S: that evidence needs no waiting."""
        if cause in HOSTILE:
            return min(self.start_s, self.schedule_s, EVIDENCE_SETTLE_S)
        if state is ReplicaState.UNSCHEDULED or cause is Cause.IMAGE_PULL_FAILED:
            return min(self.start_s, self.schedule_s)
        return self.start_s


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions") or [] if c.get("type") == kind), None)


def asked_at(copy: Mapping[str, Any]) -> datetime | None:
    """When the copy last had its spec written (created, updated or scaled: its managedFields record
    every writer's time); status writes by the member's controllers do not count."""
    metadata = copy.get("metadata", {})
    writes = [_time(f.get("time")) for f in metadata.get("managedFields") or [] if f.get("subresource") != "status"]
    return _latest(_time(metadata.get("creationTimestamp")), *writes)


def _ready(pod: Mapping[str, Any]) -> bool:
    if pod.get("status", {}).get("phase") == "Succeeded":
        return True  # a training replica that finished needs nothing more
    ready = _condition(pod, "Ready")
    return ready is not None and ready.get("status") == "True"


def _waiting(pod: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The first container kept from running for a reason that moving could change, as
    (reason, image, message)."""
    status = pod.get("status", {})
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason in IMAGE_PULL_REASONS or reason in CRASH_REASONS:
            return reason, str(container.get("image", "")), str(waiting.get("message", ""))
    return None


def _blocked_nodes(
    pod: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]], used: Mapping[str, int]
) -> tuple[list[str], list[str]]:
    """GPU nodes the pod could use, with room for it, that are cordoned, or tainted against it."""
    spec = pod.get("spec", {})
    gpus = inventory.pod_gpu_request(pod)
    cordoned, tainted = [], []
    for node in nodes:
        labels = node.get("metadata", {}).get("labels", {})
        if inventory.gpu_facts(labels) is None or not inventory.node_matches(spec, labels):
            continue
        name = node["metadata"]["name"]
        free = inventory.allocatable_gpus(node) - used.get(name, 0)
        if free < gpus:
            continue
        if node.get("spec", {}).get("unschedulable"):
            cordoned.append(name)
        elif inventory.untolerated_taints(spec, node):
            tainted.append(f"{name} ({', '.join(inventory.untolerated_taints(spec, node))})")
    return cordoned, tainted


def _pending(
    pod: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]], used: Mapping[str, int]
) -> tuple[ReplicaState, Cause, str]:
    name = pod.get("metadata", {}).get("name", "?")
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is None:
        return ReplicaState.UNSCHEDULED, Cause.NO_SCHEDULER, f"pod {name} Pending: no scheduler has looked at it"
    message = str(scheduled.get("message", ""))
    # The member's nodes say whether the GPUs are there but fenced off, whatever the message's wording.
    cordoned, tainted = _blocked_nodes(pod, nodes, used)
    if cordoned:
        return ReplicaState.UNSCHEDULED, Cause.NODES_CORDONED, (
            f"pod {name} Pending: GPU nodes with room for it cordoned: {', '.join(cordoned)}")
    if tainted:
        return ReplicaState.UNSCHEDULED, Cause.NODES_TAINTED, (
            f"pod {name} Pending: GPU nodes with room for it tainted: {', '.join(tainted)}")
    if f"Insufficient {inventory.GPU_RESOURCE}" in message:
        return ReplicaState.UNSCHEDULED, Cause.INSUFFICIENT_GPUS, f"pod {name} Pending: {message}"
    return ReplicaState.UNSCHEDULED, Cause.NO_FITTING_NODE, f"pod {name} Pending: {message or 'unschedulable'}"


def _pod_start(
    pod: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]], used: Mapping[str, int], deadlines: Deadlines,
    now: datetime,
) -> ReplicaStart:
    name = pod.get("metadata", {}).get("name", "?")
    ready = _condition(pod, "Ready")
    # From when it was created, or last stopped being Ready: a replica that ran for days and then fails
    # its readiness gets the same deadline as a new one, counted from then.
    since = _latest(_time(pod.get("metadata", {}).get("creationTimestamp")),
                    _time(ready.get("lastTransitionTime")) if ready is not None else None)
    waited = max(0.0, (now - since).total_seconds()) if since is not None else 0.0
    if _ready(pod):
        return ReplicaStart(ReplicaState.READY, Cause.READY, f"pod {name} Ready", waited, overdue=False,
                            deadline_s=deadlines.start_s)
    image = None
    if not pod.get("spec", {}).get("nodeName"):
        state, cause, evidence = _pending(pod, nodes, used)
    elif (waiting := _waiting(pod)) is not None:
        reason, image, detail = waiting
        cause = Cause.CRASH_LOOP if reason in CRASH_REASONS else Cause.IMAGE_PULL_FAILED
        state, evidence = ReplicaState.CANNOT_START, f"pod {name}: {reason} {image}: {detail}".rstrip(": ")
    else:
        state, cause = ReplicaState.STARTING, Cause.LOADING
        evidence = f"pod {name} {pod.get('status', {}).get('phase', 'Pending')}, not Ready yet"
    deadline_s = deadlines.of(state, cause)
    return ReplicaStart(state, cause, evidence, waited, waited >= deadline_s, image, deadline_s)


def _missing(copy: Mapping[str, Any], count: int, deadlines: Deadlines, now: datetime) -> list[ReplicaStart]:
    failure = _condition(copy, "ReplicaFailure")
    since = _latest(asked_at(copy), _time(failure.get("lastTransitionTime")) if failure is not None else None)
    waited = max(0.0, (now - since).total_seconds()) if since is not None else 0.0
    name = copy.get("metadata", {}).get("name", "?")
    if failure is not None and failure.get("status") == "True":
        message = str(failure.get("message", ""))
        cause = Cause.QUOTA_EXCEEDED if "exceeded quota" in message else Cause.PODS_NOT_CREATED
        evidence = f"{copy.get('kind')} {name}: {failure.get('reason', 'FailedCreate')}: {message}"
    else:
        cause, evidence = Cause.PODS_NOT_CREATED, f"{copy.get('kind')} {name}: {count} pod(s) not created"
    deadline_s = deadlines.of(ReplicaState.UNSCHEDULED, cause)
    start = ReplicaStart(ReplicaState.UNSCHEDULED, cause, evidence, waited, overdue=waited >= deadline_s,
                         deadline_s=deadline_s)
    return [start] * count


def classify(
    copy: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]],
    deadline_s: float, now: datetime, used: Mapping[str, int] | None = None, schedule_deadline_s: float | None = None,
) -> tuple[ReplicaStart, ...]:
    """One `ReplicaStart` per replica the copy asks for. `pods`: the member's (at least the copy's own),
    `nodes`: all the member's; `used`: GPUs held per node by every pod there, when `pods` are only ours;
    `deadline_s` the start deadline, `schedule_deadline_s` the schedule deadline (none: the same)."""
    deadlines = Deadlines(deadline_s, deadline_s if schedule_deadline_s is None else schedule_deadline_s)
    uid = copy.get("metadata", {}).get("labels", {}).get(manifests.UID_LABEL)
    spec = copy.get("spec", {})
    wanted = int(spec.get("replicas", spec.get("parallelism", 0)) or 0)
    pods, nodes = tuple(pods), tuple(nodes)
    used = inventory.used_gpus(pods) if used is None else used
    ours = [
        p for p in pods
        if p.get("metadata", {}).get("labels", {}).get(manifests.UID_LABEL) == uid
        and not p.get("metadata", {}).get("deletionTimestamp") and p.get("status", {}).get("phase") != "Failed"
    ]
    starts = sorted((_pod_start(p, nodes, used, deadlines, now) for p in ours),
                    key=lambda s: (s.state is not ReplicaState.READY, s.overdue))
    # Surplus pods (a rollout, a scale-down under way) go first from the unready end, as the
    # ReplicaSet controller removes them.
    starts = starts[:wanted]
    return (*starts, *_missing(copy, wanted - len(starts), deadlines, now))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the overdue replicas of one copy mean for the member that holds it."""

    lost: int  # replicas that count as not placed (placed elsewhere, the copy shrunk)
    cause: Cause | None = None
    evidence: str = ""
    censorship: CensorshipKind | None = None  # quarantine the member
    back_off: bool = False  # keep the member from new replicas of this workload for a while
    deadline_s: float = 0.0  # the deadline the named replica passed


def judge(starts: Iterable[ReplicaStart], images_elsewhere: frozenset[str], ready_elsewhere: bool) -> Verdict:
    """Judge a copy's overdue replicas: censorship (quarantine), capacity (back off), or a fault that
    would follow the replica anywhere (keep it, report). `images_elsewhere`: images of our pods running
    in other members; `ready_elsewhere`: a replica of this workload is Ready in another member."""
    lost: list[ReplicaStart] = []
    for start in starts:
        if not start.overdue:
            continue
        if start.cause is Cause.IMAGE_PULL_FAILED and start.image not in images_elsewhere:
            continue  # the image pulls nowhere: ours to fix, not the member's doing
        if start.cause is Cause.CRASH_LOOP and not ready_elsewhere:
            continue  # crashes everywhere: the workload's own fault
        lost.append(start)
    if not lost:
        return Verdict(lost=0)
    # Hostile evidence outranks shortage: one starved replica is enough to name the act.
    hostile = next((s for s in lost if s.cause in HOSTILE or s.cause is Cause.IMAGE_PULL_FAILED), None)
    if hostile is not None:
        kind = HOSTILE.get(hostile.cause, CensorshipKind.IMAGE_BLOCKED)
        evidence = hostile.evidence
        if hostile.cause is Cause.IMAGE_PULL_FAILED:
            evidence = f"{evidence} (the image runs in other members)"
        return Verdict(lost=len(lost), cause=hostile.cause, evidence=evidence, censorship=kind,
                       deadline_s=hostile.deadline_s)
    first = lost[0]
    return Verdict(lost=len(lost), cause=first.cause, evidence=f"{first.evidence} (past its deadline)",
                   back_off=True, deadline_s=first.deadline_s)


def summarise(replicas: Iterable[ReplicaStart]) -> tuple[model.StartingReplicas, ...]:
    """The replicas not Ready yet, grouped by state and cause for status (at most one entry each)."""
    groups: dict[tuple[model.ReplicaState, model.StartCause], list[ReplicaStart]] = {}
    for start in replicas:
        if start.state is not ReplicaState.READY:
            groups.setdefault((start.state, start.cause), []).append(start)
    return tuple(
        model.StartingReplicas(state=state, reason=cause, replicas=len(alike),
                               overdue=sum(1 for s in alike if s.overdue), message=alike[0].evidence[:4096])
        for (state, cause), alike in sorted(groups.items())
    )


@dataclass(frozen=True, slots=True)
class BackOff:
    """A member kept from new replicas of one workload until `until` (monotonic seconds), and why."""

    until: float
    cause: Cause
    evidence: str


def back_off(table: Mapping[str, BackOff], member: str, verdict: Verdict, now: float, seconds: float
             ) -> dict[str, BackOff]:
    """`table` (member -> back-off) with `member` backed off for `seconds` from `now` for `verdict`'s
    cause, never shortening one already running; expired entries dropped."""
    kept = active(table, now)
    until = max(now + seconds, kept[member].until if member in kept else 0.0)
    kept[member] = BackOff(until, verdict.cause or Cause.LOADING, verdict.evidence)
    return kept


def active(table: Mapping[str, BackOff], now: float) -> dict[str, BackOff]:
    """The back-offs still running at `now`."""
    return {member: entry for member, entry in table.items() if entry.until > now}
