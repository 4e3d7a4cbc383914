"""AIWorkload: one kopf daemon per workload reconciles it whenever it or the fleet changes.

The daemon wakes on the workload's own watch events and on any fleet change (a member lost or back, a
copy's readiness, censorship), reconciles, writes status when it differs, and posts an Event per
decision. Invalid specs become a condition and an Event, infeasible rules a condition naming the
binding rule: neither is retried in a storm, both wait for the next change. Deletion removes every
member copy; copies in unreachable members are removed by the fence when those members return.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import kopf
import pydantic

from samizdat.core import inventory, manifests, model, placement, starts
from samizdat.remote import metrics
from samizdat.remote.clusters.recording import EventType
from samizdat.remote.fleet import Copy, Fleet, Loss
from samizdat.app.handlers import conditions, startup
from samizdat.remote import hub
from samizdat.app.handlers.conditions import Observed
from samizdat.app.handlers.reconcile import Outcome, reconcile, remove_everywhere
from samizdat.core.model import AIWorkloadConditionType as Type
from samizdat.core.placement import from_model

RESYNC_S = 30.0  # a full reconcile at least this often, even when nothing was heard
RETRY_S = 1.0  # after a failed write to a member
COALESCE_S = 0.05  # events arriving together are handled by one reconcile
SETTLE_POLL_S = 0.5  # while the fleet settles after start (fences also wake the reconciler at once)


@dataclass(frozen=True, slots=True)
class FailoverClock:
    """Times one failover from the loss of a member: to the workload's full serving capacity Ready again
    (what clients feel: a promoted standby, or a moved replica loaded elsewhere), and on to every replica,
    standbys included, Ready again."""

    from_cluster: str
    reason: str
    started_monotonic: float
    started: datetime
    observed_at: float  # monotonic time of the last reconcile folded in
    room: bool  # whether that reconcile found a placement for every replica under the rules
    without_room_s: float = 0.0  # until full serving capacity: time after a reconcile that found none
    serving_s: float | None = None  # seconds to full serving capacity, once reached

    @classmethod
    def start(cls, loss: Loss, now: float, room: bool) -> FailoverClock:
        started = datetime.now(UTC) - timedelta(seconds=now - loss.since)
        return cls(loss.member, loss.reason.value, loss.since, started, observed_at=now, room=room)

    def tick(self, now: float, room: bool) -> FailoverClock:
        """The clock after one more reconcile at `now`. The time since the previous one was without room
        when that one found no placement: every fleet change (a member back, a replica gone) wakes a
        reconcile, so room is seen when it appears. Time before the first reconcile counts as with room:
        it is samizdat's to notice the loss."""
        if self.serving_s is not None:
            return self  # `without_room_seconds` is a part of `seconds`, which is fixed by now
        waited = 0.0 if self.room else now - self.observed_at
        return replace(self, observed_at=now, room=room, without_room_s=self.without_room_s + waited)

    def failover(self, seconds: float, standby_seconds: float | None = None) -> model.Failover:
        return model.Failover(time=self.started, from_cluster=self.from_cluster, reason=self.reason,
                              seconds=seconds, without_room_seconds=round(self.without_room_s, 3),
                              standby_seconds=standby_seconds)


@dataclass
class FailoverTimer:
    """Times one workload's failovers, each loss once: to full serving capacity Ready again (what
    clients feel), and on to every replica, standbys included, Ready again.

    A loss is a member lost since a given moment (`Loss.since`). A clock starts at the earliest loss
    not timed yet, and every loss seen while it runs is timed by it: it stops when every replica is
    ready again. A member that stays lost after that starts no new clock (under compound faults one
    often does: killed, not yet healed when the next fault strikes); otherwise each later reconcile
    would time the same loss again, from its start, and report ever longer failovers that never ran.
    A member lost again after it came back is a new loss.
    """

    running: FailoverClock | None = None
    timed: frozenset[tuple[str, float]] = frozenset()
    last: model.Failover | None = None

    def observe(self, lost: Mapping[str, Loss], converged: bool, ready: int, wanted: int, now: float, *,
                room: bool = True, serving: int | None = None, serving_wanted: int | None = None) -> None:
        """Fold one reconcile's outcome in: its losses, whether it converged, replicas ready of those
        wanted, the monotonic time `now`, and whether it found `room` for every replica (how long the
        failover waited for capacity is reported beside its duration).

        Given `serving` (ready serving replicas) of `serving_wanted`, serving capacity whole again ends
        the failover as clients see it: `last` says so at once, and the duration metric observes it,
        since with warm standbys that is one label write while the new standby loads for as long as a
        cold start; `standby_seconds` follows once every replica is ready again."""
        fresh = sorted((loss for loss in lost.values() if (loss.member, loss.since) not in self.timed),
                       key=lambda loss: (loss.since, loss.member))
        # losses that ended are forgotten: their member may be lost again
        self.timed = frozenset((loss.member, loss.since) for loss in lost.values())
        if self.running is not None:
            clock, started_now = self.running.tick(now, room), False
        elif fresh:
            clock, started_now = FailoverClock.start(fresh[0], now, room), True
        else:
            return
        elapsed = round(now - clock.started_monotonic, 3)
        if (serving is not None and serving_wanted is not None and clock.serving_s is None
                and serving >= serving_wanted):
            clock = replace(clock, serving_s=elapsed)
            metrics.failover_done(clock.reason, elapsed)
            self.last = clock.failover(elapsed)
        self.running = clock
        if started_now or not converged or ready < wanted or (serving is not None and clock.serving_s is None):
            return  # a clock ends on a later reconcile than the one that started it
        if clock.serving_s is None:
            metrics.failover_done(clock.reason, elapsed)
        standbys = serving_wanted is not None and wanted > serving_wanted
        self.last = clock.failover(elapsed if clock.serving_s is None else clock.serving_s,
                                   standby_seconds=elapsed if standbys else None)
        self.running = None


@kopf.on.event(model.GROUP, model.VERSION, "alliances")
def alliance_changed(memo: kopf.Memo, **_: Any) -> None:
    memo.fleet.alliances_changed()


@kopf.on.event(model.GROUP, model.VERSION, "aiworkloads")
def workload_changed(uid: str, memo: kopf.Memo, **_: Any) -> None:
    memo.fleet.subscribe(uid).set()


@kopf.daemon(model.GROUP, model.VERSION, "aiworkloads", cancellation_timeout=10.0)
async def run_workload(
    body: kopf.Body, uid: str, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: kopf.Logger, **kwargs: Any,
) -> None:
    fleet = startup.tracking_fleet(memo, kwargs)
    wake = fleet.subscribe(uid)
    written: dict[str, Any] | None = None
    said: tuple[str, ...] = ()
    failovers = FailoverTimer()
    try:
        while not stopped:
            wake.clear()
            if not startup.leading(memo):
                # A standby keeps its views warm but decides nothing; on taking over it reconciles at
                # once and writes status afresh (what it last wrote may be another leader's since).
                written, said = None, ()
                await _sleep(wake, stopped, startup.STANDBY_POLL_S)
                continue
            try:
                workload = model.AIWorkload.model_validate(dict(body))
            except pydantic.ValidationError as error:
                written = await _write(memo, body, _invalid_status(body, error), written, logger)
                said = _say(memo, body, said, [("Warning", "InvalidSpec", _first_error(error))])
                await _sleep(wake, stopped, RESYNC_S)
                continue
            if fleet.settling(kwargs["member_names"]):
                await _sleep(wake, stopped, SETTLE_POLL_S)
                continue
            outcome = await reconcile(workload, fleet)
            _time_failover(failovers, fleet, workload, outcome, time.monotonic())
            status, gauges = build_status(workload, fleet, outcome, failovers.last)
            metrics.workload_state(workload.metadata.namespace or "", workload.metadata.name, **gauges)
            metrics.workload_starting(workload.metadata.namespace or "", workload.metadata.name, Counter(
                s.state.value for found in outcome.replica_starts.values() for s in found))
            written = await _write(memo, body, status, written, logger)
            said = _say(memo, body, said, _events(workload, outcome))
            pause = RETRY_S if outcome.failures else min(RESYNC_S, outcome.recheck_s or RESYNC_S)
            await _sleep(wake, stopped, pause)
    finally:
        fleet.unsubscribe(uid)


@kopf.on.delete(model.GROUP, model.VERSION, "aiworkloads")
async def delete_workload(body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any) -> None:
    while not startup.leading(memo):
        # A standby neither finishes (kopf would remove the finalizer all operators share before the
        # leader deleted the copies) nor fails (kopf would record the failure on the object, a write
        # to the hub): it waits until it leads, or until the leader has deleted the copies and the object.
        if not await hub.still_there(memo.hub, body):
            return
        await asyncio.sleep(startup.STANDBY_POLL_S * 4)
    metrics.forget_workload(body.meta["namespace"], body.meta["name"])
    unreachable = await remove_everywhere(uid, memo.fleet)
    if unreachable:
        hub.say(memo.recorder, body, "Warning", "CleanupDeferred", (
            f"copies in {', '.join(unreachable)} could not be deleted now; they are deleted when "
            "those members are reachable again"
        ))


async def _sleep(wake: asyncio.Event, stopped: kopf.DaemonStopped, timeout: float) -> None:
    waiter = asyncio.ensure_future(wake.wait())
    stopper = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait([waiter, stopper], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()
    await asyncio.sleep(COALESCE_S)


async def _write(
    memo: kopf.Memo, body: kopf.Body, status: dict[str, Any], written: dict[str, Any] | None,
    logger: kopf.Logger,
) -> dict[str, Any] | None:
    if status == written:
        return written
    try:
        await hub.patch_status(memo.hub, "aiworkloads", body.meta["name"], body.meta["namespace"], status)
    except Exception as error:  # noqa: BLE001 - a status write must never kill the reconciler
        logger.warning("status not written: %s", error)
        return written
    return status


def _say(
    memo: kopf.Memo, body: kopf.Body, said: tuple[str, ...], events: list[tuple[EventType, str, str]]
) -> tuple[str, ...]:
    """Say each Event once while it holds, not on every resync; said again after it stopped holding
    (the same member lost a second time), the hub counts it on the Event that said it first."""
    keys = tuple(f"{reason}:{message}" for _, reason, message in events)
    for (kind, reason, message), key in zip(events, keys, strict=True):
        if key not in said:
            hub.say(memo.recorder, body, kind, reason, message)
    return keys


def _events(workload: model.AIWorkload, outcome: Outcome) -> list[tuple[EventType, str, str]]:
    events: list[tuple[EventType, str, str]] = []
    if outcome.halted:
        events.append(("Warning", "EvictionsHalted", outcome.halted))
    decision = outcome.decision
    if decision is not None and not decision.feasible:
        events.append(("Warning", "Infeasible", _infeasible_message(decision)))
    if decision is not None and decision.degraded:
        events.append(("Warning", SPREAD_DEGRADED, _degraded_message(decision)))
    for name, loss in sorted(outcome.lost.items()):
        events.append(("Warning", "MemberLost", f"replicas in {name} no longer count, the member is {loss.why}"))
    for change in outcome.changes:
        reason = change.verb.capitalize()  # Placed, Scaled, Updated, Removed, Promoted, Demoted
        what = "standby replica(s) to serving" if change.verb == "promoted" else (
            "serving replica(s) to standby" if change.verb == "demoted" else "replica(s)")
        events.append(("Normal", reason, f"{change.verb} {change.replicas} {what} in {change.member}"))
    for name, error in sorted(outcome.failures.items()):
        events.append(("Warning", "ApplyFailed", f"{name}: {error}"))
    failover = workload.spec.failover
    for name, verdict in sorted(outcome.starved.items()):
        then = ("the member is quarantined" if verdict.censorship is not None
                else f"{name} kept from new replicas of this workload for {failover.quarantine_seconds}s "
                     "while another member has room")
        events.append(("Warning", verdict.cause.value if verdict.cause else "StartDeadlineExceeded", (
            f"{verdict.lost} replica(s) in {name} not Ready within {verdict.deadline_s:g}s, placed "
            f"elsewhere; {then}: {verdict.evidence}"
        )))
    return events


def _infeasible_message(decision: placement.Decision) -> str:
    rule = decision.binding_rule or "rules"
    return f"cannot place: {rule} binds: {decision.explanation or 'no placement satisfies every rule'}"


# Reason of the RulesSatisfied condition and of the Event when a spread minimum is given up (see
# docs/placement.md, "Limits and spread minimums").
SPREAD_DEGRADED = "SpreadDegraded"


def _degraded_message(decision: placement.Decision) -> str:
    short = "; ".join(str(shortfall) for shortfall in decision.shortfalls)
    return f"every replica placed under the limits, spread given up: {short} ({decision.explanation})"


def _camel(rule: str | None) -> str:
    return (rule[:1].upper() + rule[1:]) if rule else "Infeasible"


def _time_failover(timer: FailoverTimer, fleet: Fleet, workload: model.AIWorkload, outcome: Outcome,
                   now: float) -> None:
    """Fold one reconcile into the workload's failover timer, with its serving replicas counted by
    their pods' role labels (ground truth in the members)."""
    counted = _counted(fleet, workload)
    serving = sum(serving for serving, _ in _roles(workload, fleet, counted).values())
    ready = sum(min(copy.ready, copy.desired) for copy in counted.values())
    decision = outcome.decision
    timer.observe(outcome.lost, outcome.converged, ready, workload.spec.placed_replicas, now,
                  room=decision is None or decision.feasible,  # None: evictions halted, not a lack of room
                  serving=serving, serving_wanted=workload.spec.serving_replicas)


class WorkloadGauges(TypedDict):
    """What `metrics.workload_state` publishes about one workload, as its status builder saw it."""

    desired: int
    ready_by_country: dict[str, int]
    serving: int
    standby: int
    jurisdictions: int
    required: int
    violations: int


def build_status(
    workload: model.AIWorkload, fleet: Fleet, outcome: Outcome, last_failover: model.Failover | None,
) -> tuple[dict[str, Any], WorkloadGauges]:
    """The workload's status from what the fleet counts now, and the figures its metrics publish; it
    changes nothing, so the caller writes both."""
    now = datetime.now(UTC)
    generation = workload.metadata.generation
    counted = _counted(fleet, workload)
    specs = {name: spec for name in counted if (spec := fleet.spec(name)) is not None}
    roles = _roles(workload, fleet, counted)
    placements = tuple(
        model.MemberPlacement(
            cluster=name, jurisdiction=specs[name].spec.jurisdiction.country,
            provider=specs[name].spec.provider, replicas=copy.desired,
            ready_replicas=min(copy.ready, copy.desired),
            starting=starts.summarise(outcome.replica_starts.get(name, ())),
            serving_replicas=roles[name][0], standby_replicas=roles[name][1],
        )
        for name, copy in sorted(counted.items()) if name in specs
    )
    serving = sum(p.serving_replicas for p in placements)
    standby = sum(p.standby_replicas for p in placements)
    countries = sorted({p.jurisdiction for p in placements})
    replicas = sum(p.replicas for p in placements)
    ready = sum(p.ready_replicas for p in placements)
    wanted = workload.spec.placed_replicas
    actual = {p.cluster: p.replicas for p in placements}
    request = from_model.to_request(workload, actual)
    violations = placement.violations(fleet.snapshot(), request, actual) if replicas or wanted else []
    decision = outcome.decision
    ready_by_country: dict[str, int] = {}
    for item in placements:
        ready_by_country[item.jurisdiction] = ready_by_country.get(item.jurisdiction, 0) + item.ready_replicas
    gauges = WorkloadGauges(
        desired=wanted, ready_by_country=ready_by_country, serving=serving, standby=standby,
        jurisdictions=len(countries),
        required=workload.spec.placement.min_jurisdictions,
        violations=len(violations) + (1 if decision is not None and not decision.feasible else 0),
    )
    observed = [
        _placed(outcome, actual),
        _rules(outcome, violations, replicas, wanted),
        Observed(Type.AVAILABLE, serving >= workload.spec.replicas and (serving > 0 or wanted == 0),
                 "ReplicasReady" if serving >= workload.spec.replicas else "ReplicasNotReady",
                 f"{serving}/{workload.spec.replicas} {_READY_WORDS[workload.spec.mode]}"),
        _degraded(outcome, ready, wanted),
    ]
    message = _infeasible_message(decision) if decision is not None and not decision.feasible else (
        outcome.halted or f"{ready}/{wanted} ready in {len(countries)} jurisdiction(s): {', '.join(countries)}"
    )
    status = model.AIWorkloadStatus(
        conditions=conditions.merge(_previous_conditions(workload), observed, now, generation),
        placements=placements, jurisdictions=len(countries), jurisdiction_list=tuple(countries),
        replicas=replicas, ready_replicas=ready, serving_replicas=serving, standby_replicas=standby,
        endpoints=_endpoints(workload, fleet, placements), last_failover=last_failover,
        observed_generation=generation, message=message,
    )
    return status.model_dump(mode="json", by_alias=True, exclude_none=True), gauges


def _counted(fleet: Fleet, workload: model.AIWorkload) -> dict[str, Copy]:
    """The workload's copies that count and hold replicas."""
    return {name: copy for name, copy in fleet.counted(workload.metadata.uid or "").items() if copy.desired > 0}


def _roles(workload: model.AIWorkload, fleet: Fleet, counted: Mapping[str, Copy]) -> dict[str, tuple[int, int]]:
    """Ready (serving, standby) replicas per counted member, by their pods' role labels. Every ready
    replica of a training run serves."""
    if workload.spec.mode is not model.Mode.SERVE:
        return {name: (min(copy.ready, copy.desired), 0) for name, copy in counted.items()}
    pods = fleet.pods(workload.metadata.uid or "")
    roles = {}
    for name, copy in counted.items():
        ready = [pod for pod in pods.get(name, []) if inventory.pod_ready(pod)]
        serving = sum(1 for pod in ready if manifests.is_serving(pod))
        roles[name] = (min(serving, copy.desired), min(len(ready) - serving, copy.desired))
    return roles


def _endpoints(
    workload: model.AIWorkload, fleet: Fleet, placements: tuple[model.MemberPlacement, ...],
) -> tuple[model.Endpoint, ...]:
    """Where clients reach the serving replicas: members that count and have a ready serving replica."""
    uid = workload.metadata.uid or ""
    endpoints = []
    for item in placements:
        if item.serving_replicas <= 0:
            continue
        service, host = fleet.service(item.cluster, uid), fleet.host(item.cluster)
        spec = service.get("spec", {}) if service is not None else {}
        node_ports = [port["nodePort"] for port in spec.get("ports", []) if port.get("nodePort")]
        endpoints.append(model.Endpoint(
            cluster=item.cluster, jurisdiction=item.jurisdiction, ready_replicas=item.serving_replicas,
            addresses=tuple(f"{host}:{port}" for port in node_ports) if host else (),
            service=f"{service['metadata']['name']}.{manifests.WORKLOAD_NAMESPACE}" if service is not None else None,
            cluster_ip=spec.get("clusterIP"),
        ))
    return tuple(endpoints)


_READY_WORDS = {model.Mode.SERVE: "serving replicas ready", model.Mode.TRAIN: "training replicas running or done"}


def _previous_conditions(workload: model.AIWorkload) -> tuple[model.Condition[Type], ...]:
    return workload.status.conditions if workload.status is not None else ()


def _placed(outcome: Outcome, actual: dict[str, int]) -> Observed[Type]:
    decision = outcome.decision
    if outcome.halted:
        return Observed(Type.PLACED, bool(actual), "EvictionsHalted", outcome.halted)
    assert decision is not None
    if not decision.feasible:
        return Observed(Type.PLACED, False, _camel(decision.binding_rule), _infeasible_message(decision))
    if outcome.failures:
        return Observed(Type.PLACED, False, "ApplyFailed", "; ".join(f"{m}: {e}" for m, e in outcome.failures.items()))
    done = actual == {m: r for m, r in decision.assignments.items() if r > 0}
    where = ", ".join(f"{m}={r}" for m, r in sorted(decision.assignments.items()))
    return Observed(Type.PLACED, done, "Placed" if done else "Placing", where or "no replicas")


def _rules(outcome: Outcome, violations: list[str], replicas: int, wanted: int) -> Observed[Type]:
    decision = outcome.decision
    if decision is not None and not decision.feasible:
        return Observed(Type.RULES_SATISFIED, False, _camel(decision.binding_rule), _infeasible_message(decision))
    given_up = {shortfall.rule for shortfall in decision.shortfalls} if decision is not None else set()
    if decision is not None and given_up and all(v.split(":")[0] in given_up for v in violations):
        # only what the decision gives up is broken: no limit is
        return Observed(Type.RULES_SATISFIED, False, SPREAD_DEGRADED, _degraded_message(decision))
    if violations:
        return Observed(Type.RULES_SATISFIED, False, "RuleViolated", "; ".join(violations))
    if replicas < wanted:
        return Observed(Type.RULES_SATISFIED, False, "ReplicasMissing", f"{replicas}/{wanted} replicas placed")
    return Observed(Type.RULES_SATISFIED, True, "AllRulesHold", "every placement rule holds")


def _degraded(outcome: Outcome, ready: int, wanted: int) -> Observed[Type]:
    if outcome.halted:
        return Observed(Type.DEGRADED, True, "EvictionsHalted", outcome.halted)
    if outcome.lost:
        return Observed(Type.DEGRADED, True, "MemberLost",
                        "; ".join(f"{m}: {loss.why}" for m, loss in outcome.lost.items()))
    if outcome.starved:
        return Observed(Type.DEGRADED, True, "StartDeadlineExceeded",
                        "; ".join(f"{m}: {v.evidence}" for m, v in sorted(outcome.starved.items())))
    if ready < wanted:
        return Observed(Type.DEGRADED, True, "ReplicasNotReady", f"{ready}/{wanted} ready")
    if outcome.decision is not None and outcome.decision.degraded:
        return Observed(Type.DEGRADED, True, SPREAD_DEGRADED, _degraded_message(outcome.decision))
    return Observed(Type.DEGRADED, False, "AsDesired", "all replicas ready")


def _invalid_status(body: kopf.Body, error: pydantic.ValidationError) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    message = _first_error(error)
    generation = body.meta.get("generation")
    return {
        "observedGeneration": generation,
        "message": f"invalid spec: {message}",
        "conditions": [
            {"type": t.value, "status": "False", "reason": "InvalidSpec", "message": message,
             "lastTransitionTime": now, "observedGeneration": generation}
            for t in (Type.PLACED, Type.RULES_SATISFIED)
        ],
    }


def _first_error(error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg')}"
