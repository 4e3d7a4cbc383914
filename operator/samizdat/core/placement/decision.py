"""The value the placement core returns: where replicas go, or why they cannot go anywhere.

A decision is the one thing placement emits, so a later provenance log can record it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A spread minimum that a degraded decision gives up, and by how much."""

    rule: str  # "minJurisdictions" or "minProviders", as users write it
    required: int
    reached: int

    @property
    def missing(self) -> int:
        return self.required - self.reached

    def __str__(self) -> str:
        return f"{self.rule} {self.required} not met: {self.reached} reached, {self.missing} short"


@dataclass(frozen=True, slots=True)
class Decision:
    """All or nothing: an infeasible decision places no replica at all.

    `assignments` lists only members with replicas. `diagnosis` says, for every member that gets no
    replica or is filled to its limit, why. When infeasible, `binding_rule` names the spec field whose
    relaxation would make the workload placeable (e.g. "minJurisdictions"; "replicas" when only more
    capacity would), and `explanation` says what would help. A feasible decision is *degraded* when it
    gives up spread minimums to place every replica (`Rules.when_unsatisfiable`): `shortfalls` says
    which and by how much, and `explanation` why they cannot be met. `moves` counts replicas of
    `Request.current` that have to start on another member. The diagnosis is worked out on first
    read (see `diagnosis.Diagnosis`); like the rest, it depends only on the snapshot and the request.
    """

    assignments: Mapping[str, int]
    feasible: bool
    diagnosis: Mapping[str, tuple[str, ...]]
    binding_rule: str | None = None
    explanation: str | None = None
    moves: int = 0
    shortfalls: tuple[Shortfall, ...] = ()

    @property
    def degraded(self) -> bool:
        return bool(self.shortfalls)
