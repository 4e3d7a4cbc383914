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
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import kopf
import pydantic

from samizdat.core import model, report
from samizdat.core.model import AIWorkloadConditionType as Type
from samizdat.core.report import Event, Reason
from samizdat.remote import hub, metrics
from samizdat.app.handlers import startup, traffic
from samizdat.app.handlers.reconcile import reconcile, remove_everywhere

RESYNC_S = 30.0  # a full reconcile at least this often, even when nothing was heard
RETRY_S = 1.0  # after a failed write to a member
COALESCE_S = 0.05  # events arriving together are handled by one reconcile
SETTLE_POLL_S = 0.5  # while the fleet settles after start (fences also wake the reconciler at once)


@kopf.on.event(model.GROUP, model.VERSION, "alliances")
def alliance_changed(memo: kopf.Memo, **_: Any) -> None:
    startup.shared(memo).fleet.alliances_changed()


@kopf.on.event(model.GROUP, model.VERSION, "aiworkloads")
def workload_changed(uid: str, memo: kopf.Memo, **_: Any) -> None:
    startup.shared(memo).fleet.subscribe(uid).set()


@kopf.daemon(model.GROUP, model.VERSION, "aiworkloads", cancellation_timeout=10.0)
async def run_workload(
    body: kopf.Body, uid: str, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: kopf.Logger, **kwargs: Any,
) -> None:
    fleet = startup.tracking_fleet(memo, kwargs)
    wake = fleet.subscribe(uid)
    written: dict[str, Any] | None = None
    said: tuple[str, ...] = ()
    failovers = report.FailoverTimer()
    published: traffic.Published | None = None  # the workload's DNS record as last written
    try:
        while not stopped:
            wake.clear()
            if not startup.leading(memo):
                # A standby keeps its views warm but decides nothing; on taking over it reconciles at
                # once and writes status afresh (what it last wrote may be another leader's since).
                written, said, published = None, (), None
                await _sleep(wake, stopped, startup.STANDBY_POLL_S)
                continue
            try:
                workload = model.AIWorkload.model_validate(dict(body))
            except pydantic.ValidationError as error:
                written = await _write(memo, body, _invalid_status(body, error), written, logger)
                said = _say(memo, body, said, [Event("Warning", Reason.INVALID_SPEC, _first_error(error))])
                await _sleep(wake, stopped, RESYNC_S)
                continue
            if fleet.settling(kwargs["member_names"]):
                await _sleep(wake, stopped, SETTLE_POLL_S)
                continue
            result = await reconcile(workload, fleet)
            failovers = failovers.observe(report.tally(workload, result, time.monotonic()))
            if failovers.finished is not None:
                metrics.failover_done(failovers.finished.reason, failovers.finished.seconds)
            status, gauges = report.build_status(workload, result, failovers.last)
            # The record follows the reconcile that moved the replicas, before anything else is written.
            published, status, dns_said = await traffic.publish(memo, workload, status, published)
            metrics.workload_state(workload.metadata.namespace or "", workload.metadata.name, **gauges)
            metrics.workload_starting(workload.metadata.namespace or "", workload.metadata.name, Counter(
                s.state.value for found in result.replica_starts.values() for s in found))
            written = await _write(memo, body, status, written, logger)
            said = _say(memo, body, said, [*report.events(workload, result), *dns_said])
            pause = RETRY_S if result.failures else min(RESYNC_S, result.recheck_s or RESYNC_S)
            await _sleep(wake, stopped, pause)
    finally:
        fleet.unsubscribe(uid)


@kopf.on.delete(model.GROUP, model.VERSION, "aiworkloads")
async def delete_workload(body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any) -> None:
    shared = startup.shared(memo)
    while not startup.leading(memo):
        # A standby neither finishes (kopf would remove the finalizer all operators share before the
        # leader deleted the copies) nor fails (kopf would record the failure on the object, a write
        # to the hub): it waits until it leads, or until the leader has deleted the copies and the object.
        if not await hub.still_there(shared.hub, body):
            return
        await asyncio.sleep(startup.STANDBY_POLL_S * 4)
    metrics.forget_workload(body.meta["namespace"], body.meta["name"])
    if body.get("status", {}).get("dns"):
        await hub.retract_dns(shared.hub, body.meta["namespace"], body.meta["name"])
    traffic.forget(memo, uid)
    unreachable = await remove_everywhere(uid, shared.fleet)
    if unreachable:
        hub.say(shared.recorder, body, "Warning", Reason.CLEANUP_DEFERRED, (
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
        await hub.patch_status(startup.shared(memo).hub, "aiworkloads", body.meta["name"], body.meta["namespace"], status)
    except Exception as error:  # noqa: BLE001 - a status write must never kill the reconciler
        logger.warning("status not written: %s", error)
        return written
    return status


def _say(memo: kopf.Memo, body: kopf.Body, said: tuple[str, ...], events: Sequence[Event]) -> tuple[str, ...]:
    """Say each Event once while it holds, not on every resync; said again after it stopped holding
    (the same member lost a second time), the hub counts it on the Event that said it first."""
    keys = tuple(f"{reason}:{message}" for _, reason, message in events)
    for (kind, reason, message), key in zip(events, keys, strict=True):
        if key not in said:
            hub.say(startup.shared(memo).recorder, body, kind, reason, message)
    return keys


def _invalid_status(body: kopf.Body, error: pydantic.ValidationError) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    message = _first_error(error)
    generation = body.meta.get("generation")
    return {
        "observedGeneration": generation,
        "message": f"invalid spec: {message}",
        "conditions": [
            {"type": t.value, "status": "False", "reason": Reason.INVALID_SPEC.value, "message": message,
             "lastTransitionTime": now, "observedGeneration": generation}
            for t in (Type.PLACED, Type.RULES_SATISFIED)
        ],
    }


def _first_error(error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg')}"
