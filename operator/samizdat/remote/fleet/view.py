"""One workload's world at one moment, read from the fleet's public queries into one immutable value.

A reconcile reads it once, decides on it, and reports on it (`samizdat.core.report`), so nothing it says
describes a later moment than what it decided on, and nothing it decides changes while it reads.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from samizdat.core import health, model, starts
from samizdat.core.placement import Snapshot
from samizdat.remote.fleet.fleet import Fleet, Loss
from samizdat.remote.fleet.views import Copy


@dataclass(frozen=True, slots=True)
class WorkloadView:
    """What one reconcile of one workload reads (see `samizdat.core.report.View`), and what it decides
    with besides: every copy counted or not, replicas that count per member, the back-offs in force,
    which members are fenced, images running outside each member with overdue replicas, and the guard."""

    uid: str
    guard: health.EvictionGuard
    copies: Mapping[str, Copy]  # every copy the members hold, counted or not
    counted: Mapping[str, Copy]
    current: Mapping[str, int]  # replicas that count per member (see `Fleet.current`)
    pods: Mapping[str, tuple[Mapping[str, Any], ...]]  # live pods per counted member
    losses: Mapping[str, Loss]
    replica_starts: Mapping[str, tuple[starts.ReplicaStart, ...]]
    images_running: Mapping[str, frozenset[str]]  # per counted member: images our pods run there
    backed_off: Mapping[str, starts.BackOff]
    fenced: frozenset[str]  # members holding a copy that have been fenced since they were last lost
    specs: Mapping[str, model.MemberCluster]
    services: Mapping[str, Mapping[str, Any]]  # the workload's Service per counted member
    hosts: Mapping[str, str]
    snapshot: Snapshot
    now: float  # monotonic time of the read: back-offs decided on it run from it


def read(fleet: Fleet, workload: model.AIWorkload) -> WorkloadView:
    """The workload's world as the fleet holds it now."""
    uid = workload.metadata.uid or ""
    now = time.monotonic()
    snapshot = fleet.snapshot()
    failover = workload.spec.failover
    replica_starts = fleet.replica_starts(uid, starts.Deadlines(failover.start_deadline_seconds,
                                                                failover.schedule_deadline_seconds))
    copies = fleet.copies_of(uid)
    counted = fleet.counted(uid)
    names = set(copies) | set(counted)
    return WorkloadView(
        uid=uid,
        guard=fleet.guard(),
        copies=MappingProxyType(copies),
        counted=MappingProxyType(counted),
        current=MappingProxyType(fleet.current(uid)),
        pods=MappingProxyType({name: tuple(pods) for name, pods in fleet.pods(uid).items()}),
        losses=MappingProxyType(fleet.losses(uid)),
        replica_starts=MappingProxyType(replica_starts),
        images_running=MappingProxyType(fleet.images_running()),
        backed_off=MappingProxyType(fleet.backed_off(uid)),
        fenced=frozenset(name for name in names if fleet.is_fenced(name)),
        specs=MappingProxyType({member.name: spec for member in snapshot.members
                                if (spec := fleet.spec(member.name)) is not None}),
        services=MappingProxyType({name: service for name in counted
                                   if (service := fleet.service(name, uid)) is not None}),
        hosts=MappingProxyType({name: host for name in counted if (host := fleet.host(name)) is not None}),
        snapshot=snapshot,
        now=now,
    )
