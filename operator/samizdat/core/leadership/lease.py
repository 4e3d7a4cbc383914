"""The Lease record the operators elect their leader with, and how it reads and writes as a Lease object.

One `coordination.k8s.io/v1` Lease in the hub is the whole election: whoever names itself in
`holderIdentity` and keeps `renewTime` changing leads. `leaseTransitions` is the **epoch**: it grows by
one on every acquisition (the first holder writes 1) and never shrinks, so every write a leader makes to
a member can carry a number that no earlier leader could have carried.

The times in the record are wall-clock (RFC 3339 with microseconds, as `MicroTime` wants) and are for
people reading `kubectl get lease -o yaml`; no candidate ever decides anything from them (see `elector`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

API_VERSION = "coordination.k8s.io/v1"
KIND = "Lease"
# Every object a leader writes to a member carries its epoch here, for the member's fence to check.
EPOCH_ANNOTATION = "samizdat.io/epoch"
# Set (with the epoch) just before samizdat deletes an object: a delete carries no epoch of its own.
RETIRE_ANNOTATION = "samizdat.io/retire"


class MalformedLease(ValueError):
    """The Lease object does not have the shape of a leader-election record."""


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """What a Lease says about the election; `holder` is "" when nobody holds it (released)."""

    holder: str
    duration_s: int  # how long candidates wait after they last saw the record change
    transitions: int  # the epoch of the current (or last) holder
    acquire_time: str = ""  # wall-clock, informational only
    renew_time: str = ""  # wall-clock, informational only

    def __post_init__(self) -> None:
        if self.duration_s < 1:
            raise MalformedLease(f"leaseDurationSeconds must be at least 1, got {self.duration_s}")
        if self.transitions < 0:
            raise MalformedLease(f"leaseTransitions must not be negative, got {self.transitions}")


@dataclass(frozen=True, slots=True)
class StoredLease:
    """A record as the hub stores it, with the resourceVersion a compare-and-swap must name."""

    record: LeaseRecord
    resource_version: str


def micro_time(wall: datetime) -> str:
    """A `MicroTime` string (RFC 3339, microseconds, UTC)."""
    return wall.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_lease(name: str, namespace: str, record: LeaseRecord, resource_version: str | None) -> dict[str, Any]:
    """The Lease object to create (`resource_version` None) or to replace at that version."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration_s,
        "leaseTransitions": record.transitions,
    }
    # Empty strings are not valid MicroTimes: leave the fields out instead.
    if record.acquire_time:
        spec["acquireTime"] = record.acquire_time
    if record.renew_time:
        spec["renewTime"] = record.renew_time
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def parse_lease(obj: Mapping[str, Any]) -> StoredLease:
    """The record and resourceVersion of a Lease object as the API returns it."""
    metadata, spec = obj.get("metadata"), obj.get("spec")
    if not isinstance(metadata, Mapping) or not isinstance(spec, Mapping):
        raise MalformedLease("a Lease needs metadata and spec")
    version = metadata.get("resourceVersion")
    if not isinstance(version, str) or not version:
        raise MalformedLease("a stored Lease carries a resourceVersion")
    holder = spec.get("holderIdentity") or ""
    duration = spec.get("leaseDurationSeconds")
    transitions = spec.get("leaseTransitions") or 0
    # A Lease someone created by hand without a duration cannot be judged expired or not; refuse it
    # loudly rather than guess (the operator reports it and keeps trying).
    if not isinstance(holder, str) or not isinstance(duration, int) or not isinstance(transitions, int):
        raise MalformedLease("holderIdentity, leaseDurationSeconds and leaseTransitions have the wrong types")
    return StoredLease(
        LeaseRecord(
            holder=holder, duration_s=duration, transitions=transitions,
            acquire_time=str(spec.get("acquireTime") or ""), renew_time=str(spec.get("renewTime") or ""),
        ),
        version,
    )
