"""One reconciliation of one AIWorkload: ask the placement core, make members match, report.

Level-based, so a restarted operator simply runs it again: the current placement is read from the
copies the members really hold (never from our own status), the decision keeps healthy replicas where
they are, and whatever is missing or surplus is applied or deleted. An infeasible decision changes
nothing in the members: no objects for a workload never placed, and no healthy replica torn down for one
that was. While the self-partition guard holds, nothing moves at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from samizdat import manifests, metrics, placement
from samizdat.clusters import errors
from samizdat.fleet import Fleet, Loss
from samizdat.model import AIWorkload
from samizdat.placement import from_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """One thing done to a member, for an Event."""

    member: str
    verb: str  # "placed", "scaled", "updated", "removed"
    replicas: int


@dataclass
class Outcome:
    decision: placement.Decision | None
    halted: str | None = None  # the guard's message when evictions are halted
    changes: list[Change] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # member -> error
    left_behind: list[str] = field(default_factory=list)  # unreachable members still holding a copy
    lost: dict[str, Loss] = field(default_factory=dict)  # member -> why its replicas no longer count

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
    return None


async def reconcile(workload: AIWorkload, fleet: Fleet) -> Outcome:
    uid = workload.metadata.uid or ""
    copies = fleet.copies_of(uid)
    lost = fleet.losses(uid)
    guard = fleet.guard()
    metrics.evictions_halted(guard.halted)
    if guard.halted:
        return Outcome(decision=None, halted=guard.message, lost=lost)
    request = from_model.to_request(workload, fleet.current(uid))
    snapshot = fleet.snapshot()
    started = time.perf_counter()
    decision = placement.solve(snapshot, request)
    metrics.decision_took(time.perf_counter() - started)
    outcome = Outcome(decision=decision, lost=lost)
    if not decision.feasible:
        return outcome
    fleet.record_decision(uid, decision.assignments)
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
    await asyncio.gather(*writes)
    return outcome


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
