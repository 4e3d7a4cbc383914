"""What one reconcile of one AIWorkload reads, as the report needs it: the shape of the view, not its source.

The fleet builds the view (`samizdat.remote.fleet.view`) from its own values; the report reads it
through these protocols, so the pure core names no I/O type. Every member is read-only: a view describes
one moment and is never updated in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from samizdat.core import model, starts
from samizdat.core.placement import Snapshot


class HeldCopy(Protocol):
    """samizdat's Deployment or Job for the workload in one member, as that member last reported it."""

    @property
    def desired(self) -> int: ...

    @property
    def ready(self) -> int: ...

    @property
    def body(self) -> dict[str, Any]: ...


class HolderLost(Protocol):
    """A member that held replicas of the workload and is lost (Down or Quarantined): why, since when."""

    @property
    def member(self) -> str: ...

    @property
    def why(self) -> str: ...

    @property
    def reason(self) -> model.FailoverReason: ...

    @property
    def since(self) -> float: ...


class View(Protocol):
    """The workload's world at one moment: its counted copies and their pods, its lost holders, how its
    replicas are starting, and the members' specs, Services and hosts."""

    @property
    def counted(self) -> Mapping[str, HeldCopy]: ...

    @property
    def pods(self) -> Mapping[str, tuple[Mapping[str, Any], ...]]: ...

    @property
    def losses(self) -> Mapping[str, HolderLost]: ...

    @property
    def replica_starts(self) -> Mapping[str, tuple[starts.ReplicaStart, ...]]: ...

    @property
    def specs(self) -> Mapping[str, model.MemberCluster]: ...

    @property
    def services(self) -> Mapping[str, Mapping[str, Any]]: ...

    @property
    def hosts(self) -> Mapping[str, str]: ...

    @property
    def snapshot(self) -> Snapshot: ...
