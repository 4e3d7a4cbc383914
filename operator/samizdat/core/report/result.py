"""What one reconcile of one AIWorkload did and decided: one frozen value, from which status, Events and
the failover clock are built.

It is assembled once the writes are done, from each write's own answer, and carries the view the decision
was made on, so nothing built from it reads a later moment than the decision it reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from samizdat.core import placement, starts
from samizdat.core.report.view import HolderLost, View


class Verb(StrEnum):
    """What was done to a member's copy or pods; the value is how an Event says it."""

    PLACED = "placed"
    SCALED = "scaled"
    UPDATED = "updated"
    REMOVED = "removed"
    PROMOTED = "promoted"
    DEMOTED = "demoted"


@dataclass(frozen=True, slots=True)
class Change:
    """One thing done to a member, for an Event."""

    member: str
    verb: Verb
    replicas: int


@dataclass(frozen=True, slots=True)
class Relabel:
    """One pod labelled serving or standby."""

    member: str
    pod: str
    role: str


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Result:
    """One reconcile: the decision (None while evictions are halted), what was done and what failed, on
    the view it was decided on."""

    view: View
    decision: placement.Decision | None
    halted: str | None = None  # the guard's message when evictions are halted
    changes: tuple[Change, ...] = ()
    failures: Mapping[str, str] = field(default_factory=_empty)  # member -> error
    left_behind: tuple[str, ...] = ()  # unreachable members still holding a copy
    lost: Mapping[str, HolderLost] = field(default_factory=_empty)  # member -> why its replicas no longer count
    # How each counted copy's replicas are starting (none read while evictions are halted), and the
    # members whose overdue replicas were judged.
    replica_starts: Mapping[str, tuple[starts.ReplicaStart, ...]] = field(default_factory=_empty)
    starved: Mapping[str, starts.Verdict] = field(default_factory=_empty)
    recheck_s: float | None = None  # when the next starting replica reaches its deadline
    # The pods our writes labelled (the view predates them): their roles are these now.
    relabelled: tuple[Relabel, ...] = ()
    # The Services our writes exposed, as the members answered them (the view predates them).
    exposed: Mapping[str, Mapping[str, Any]] = field(default_factory=_empty)

    @property
    def converged(self) -> bool:
        return self.decision is not None and self.decision.feasible and not self.failures
