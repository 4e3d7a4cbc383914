"""A workload's DNS name (`spec.traffic.dns`): its DNSEndpoint written in the hub by the workload's own
reconciler, right after the reconcile that changed where it serves, and removed with the workload.

What the record says is `samizdat.core.dns`'s (pure); here it is written only when it changes, and the
status says what it answers and whether external-dns has applied it: external-dns writes the
DNSEndpoint's `status.observedGeneration` once it has, and the event handler below wakes the workload
then. Without the DNSEndpoint CRD in the hub, the write fails with a status message and one Event, and
the workload runs on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import kopf

from samizdat.core import dns, manifests, model
from samizdat.core.report import Event, Reason
from samizdat.remote import hub
from samizdat.remote.clusters import errors, resources
from samizdat.app.handlers import startup


@dataclass(frozen=True, slots=True)
class Published:
    """The DNSEndpoint as last written: the record, its generation, and when its addresses changed."""

    record: dns.Record
    generation: int
    changed: str  # RFC 3339


@kopf.on.event(resources.DNSENDPOINTS.group, resources.DNSENDPOINTS.version, resources.DNSENDPOINTS.plural,
               labels={manifests.UID_LABEL: kopf.PRESENT})
def dns_endpoint_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """external-dns applied (or someone changed) a workload's record: its reconciler looks again."""
    uid = body.metadata.labels[manifests.UID_LABEL]
    observed = body.get("status", {}).get("observedGeneration")
    shared = startup.shared(memo)
    shared.dns_applied[uid] = int(observed) if observed is not None else 0
    shared.fleet.subscribe(uid).set()


async def publish(
    memo: kopf.Memo, workload: model.AIWorkload, status: dict[str, Any], published: Published | None,
) -> tuple[Published | None, dict[str, Any], list[Event]]:
    """Write the workload's record if it changed (or retract one the spec no longer asks for); the
    status with `dns` filled in, and the Events to say."""
    shared = startup.shared(memo)
    endpoints = [model.Endpoint.model_validate(endpoint) for endpoint in status.get("endpoints", ())]
    record = dns.record(workload, endpoints)
    metadata = workload.metadata
    if record is None:
        if published is None and workload.status.dns is None:
            return None, status, []
        try:
            await hub.retract_dns(shared.hub, metadata.namespace or "", metadata.name)
        except errors.MemberError:
            return published, status, []  # tried again on the next reconcile
        return None, {**status, "dns": None}, []  # null: the merge patch removes it from the status
    said: list[Event] = []
    if published is None or published.record.manifest != record.manifest:
        try:
            generation, applied = await hub.publish_dns(shared.hub, record.manifest)
        except errors.MemberError as error:
            message = f"DNS record {record.name} not written: {_why(error)}"
            said.append(Event("Warning", Reason.DNS_RECORD_FAILED, message))
            return published, _with_dns(status, record, published, applied=False, message=message), said
        if applied is not None:
            shared.dns_applied[metadata.uid or ""] = applied
        before, changed = _last_change(workload, published)
        if before != record.addresses or changed is None:
            said.append(Event("Normal", Reason.DNS_RECORD_UPDATED, _updated(record, before)))
            changed = datetime.now(UTC).isoformat()
        published = Published(record, generation, changed)
    else:
        published = replace(published, record=record)
    applied = shared.dns_applied.get(metadata.uid or "", 0) >= published.generation > 0
    return published, _with_dns(status, record, published, applied=applied, message=record.message), said


def forget(memo: kopf.Memo, uid: str) -> None:
    startup.shared(memo).dns_applied.pop(uid, None)


def _with_dns(status: dict[str, Any], record: dns.Record, published: Published | None, *, applied: bool,
              message: str) -> dict[str, Any]:
    written = model.DNSStatus(
        name=record.name, port=record.port, addresses=published.record.addresses if published else (),
        changed=datetime.fromisoformat(published.changed) if published else None, applied=applied, message=message,
    )
    return {**status, "dns": written.model_dump(mode="json", by_alias=True, exclude_none=True)}


def _updated(record: dns.Record, before: tuple[str, ...]) -> str:
    added = [address for address in record.addresses if address not in before]
    removed = [address for address in before if address not in record.addresses]
    now = ", ".join(record.addresses) or "nothing (no member serves)"
    delta = "; ".join(part for part in (
        f"added {', '.join(added)}" if added else "", f"removed {', '.join(removed)}" if removed else "",
    ) if part)
    return f"{record.name} answers {now}" + (f" ({delta})" if delta and before else "")


def _last_change(workload: model.AIWorkload, published: Published | None) -> tuple[tuple[str, ...], str | None]:
    """The addresses the record answered and since when (None: never written). After a restart or a
    takeover, what the status says the previous leader wrote: the same record again is no change."""
    if published is not None:
        return published.record.addresses, published.changed
    last = workload.status.dns
    if last is None or last.changed is None:
        return (), None
    return last.addresses, last.changed.isoformat()


def _why(error: errors.MemberError) -> str:
    kind = resources.DNSENDPOINTS
    if isinstance(error, errors.NotFound):
        return f"the hub has no {kind.kind} resource (install external-dns's CRD, {kind.plural}.{kind.group})"
    if isinstance(error, errors.MemberForbidden):
        return f"samizdat may not write {kind.plural} in the hub (the chart's traffic.dns.enabled grants it)"
    return error.message
