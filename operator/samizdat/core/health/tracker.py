"""Turns a member's history of probe outcomes and censorship evidence into its phase.

Phases move with hysteresis so that one lost packet does not move replicas and one lucky probe does not
bring a flapping member back: Ready becomes Suspect after `suspect_after_failures` failures in a row (no
new replicas go there), Suspect becomes Down once failures have lasted `down_after_seconds` (its replicas
are re-placed), and Down or Suspect return to Ready only after `recover_after_successes` successes in a
row. Censorship sends a member to Quarantined for a fixed time regardless of probes; after that it must
earn Ready again like a Down member. Time is passed in (monotonic seconds), never read, so every
transition is testable without a clock.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from samizdat.core.model import Phase


# The one home of what each phase means for replicas; nothing else spells a tuple of phases.
LOST_PHASES = frozenset({Phase.DOWN, Phase.QUARANTINED})
HEALTHY_PHASES = frozenset({Phase.READY, Phase.SUSPECT})
UNREACHABLE_PHASES = frozenset({Phase.SUSPECT, Phase.DOWN})


def lost(phase: Phase) -> bool:
    """Replicas in a member in `phase` count as gone and must be re-placed."""
    return phase in LOST_PHASES


def healthy(phase: Phase) -> bool:
    """The member answered lately: Ready, or Suspect after a missed probe. Its replicas still count
    (one lost packet must not move them), and a 401/403 from it is its own doing, not a cold start."""
    return phase in HEALTHY_PHASES


def schedulable(phase: Phase) -> bool:
    """New replicas may go to a member in `phase`: only a Ready one takes them."""
    return phase is Phase.READY


def unreachable(phase: Phase) -> bool:
    """The member's probes are failing (Suspect or Down, not Quarantined, which is a verdict on its
    conduct): it must earn Ready again with successes in a row, and it counts toward the guard."""
    return phase in UNREACHABLE_PHASES


class Failure(StrEnum):
    """Why a probe failed, in the terms of the failure model."""

    REFUSED = "refused"  # killed: connections refused or reset
    TIMEOUT = "timeout"  # partitioned: packets vanish
    UNAUTHORIZED = "unauthorized"  # credentials revoked
    FORBIDDEN = "forbidden"
    MALFORMED = "malformed"  # answered 200, but not as an API server does: broken or hostile
    ERROR = "error"  # answered, but not healthy (5xx)


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    suspect_after_failures: int = 1
    down_after_seconds: float = 2.0
    recover_after_successes: int = 2


@dataclass(frozen=True, slots=True)
class MemberHealth:
    phase: Phase = Phase.PENDING
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    failing_since: float | None = None
    quarantined_until: float | None = None
    last_failure: Failure | None = None
    reason: str = "NotProbedYet"
    message: str = "no probe has completed yet"

    @property
    def schedulable(self) -> bool:
        return schedulable(self.phase)

    @property
    def lost(self) -> bool:
        """Replicas here count as gone and must be re-placed."""
        return lost(self.phase)


def observe_probe(
    health: MemberHealth, policy: HealthPolicy, now: float, failure: Failure | None, message: str = "",
    *, seen_by: Literal["Probe", "View"] = "Probe",
) -> MemberHealth:
    """Fold one probe outcome (`failure` None means success) into the member's health.

    A member whose API answers its probe but whose views (nodes, pods, copies) cannot be listed is of no
    use to placement either: its caller passes that as a failure `seen_by` a "View", and the same
    hysteresis applies, so the reason tells which (`ProbeTimeout`, `ViewMalformed`).
    """
    health = _quarantine_served(health, now)
    if health.phase is Phase.QUARANTINED:
        return health
    if failure is None:
        return _success(health, policy, now)
    return _failure(health, policy, now, failure, message, seen_by)


def observe_silence(
    health: MemberHealth, now: float, judged: Phase, silent_since: float, failure: Failure, message: str
) -> MemberHealth:
    """Fold the link's verdict (`samizdat.core.health.link`) into the member's health, after a probe
    failed on the link (refused, timed out) or while its silence grows.

    `judged` is Ready (a failed probe alone proves nothing), Suspect or Down; `silent_since` is when the
    member last answered (or was first probed), so a loss is dated from its start, not from its verdict.
    A member never Ready stays Pending until it is Down; a Down one stays Down until it answers.
    """
    health = _quarantine_served(health, now)
    if health.phase is Phase.QUARANTINED:
        return health
    if judged is Phase.READY:  # no verdict yet, but a member on its way back starts counting again
        return dataclasses.replace(health, consecutive_successes=0)
    phase = health.phase
    if judged is Phase.DOWN or phase is Phase.DOWN:
        phase = Phase.DOWN
    elif phase is not Phase.PENDING:
        phase = Phase.SUSPECT
    return MemberHealth(
        phase=phase,
        consecutive_failures=health.consecutive_failures + 1,
        failing_since=health.failing_since if health.failing_since is not None else silent_since,
        last_failure=failure,
        reason=f"Probe{failure.value.capitalize()}",
        message=message,
    )


def _quarantine_served(health: MemberHealth, now: float) -> MemberHealth:
    """Once its quarantine is served, the member starts over as if it had been Down."""
    if health.phase is not Phase.QUARANTINED or (health.quarantined_until is not None and now < health.quarantined_until):
        return health
    return dataclasses.replace(health, phase=Phase.DOWN, quarantined_until=None, consecutive_successes=0)


def _success(health: MemberHealth, policy: HealthPolicy, now: float) -> MemberHealth:
    successes = health.consecutive_successes + 1
    if unreachable(health.phase) and successes < policy.recover_after_successes:
        return dataclasses.replace(health, consecutive_successes=successes, consecutive_failures=0)
    return MemberHealth(
        phase=Phase.READY, consecutive_successes=successes, reason="ProbeSucceeded", message="API server ready"
    )


def _failure(
    health: MemberHealth, policy: HealthPolicy, now: float, failure: Failure, message: str, seen_by: str
) -> MemberHealth:
    failures = health.consecutive_failures + 1
    failing_since = health.failing_since if health.failing_since is not None else now
    phase = health.phase
    if now - failing_since >= policy.down_after_seconds or phase is Phase.DOWN:
        phase = Phase.DOWN
    elif phase is Phase.PENDING:
        pass  # never Ready yet, so nothing to suspect (a cold start's slow first probe warns no one)
    elif failures >= policy.suspect_after_failures:
        phase = Phase.SUSPECT
    return MemberHealth(
        phase=phase,
        consecutive_failures=failures,
        failing_since=failing_since,
        last_failure=failure,
        reason=f"{seen_by}{failure.value.capitalize()}",
        message=message or f"{seen_by.lower()} failed: {failure.value}",
    )


def observe_censorship(health: MemberHealth, now: float, quarantine_seconds: float, kind: str, message: str) -> MemberHealth:
    """Evidence of censorship quarantines the member; further evidence extends the quarantine."""
    until = now + quarantine_seconds
    if health.quarantined_until is not None:
        until = max(until, health.quarantined_until)
    return MemberHealth(phase=Phase.QUARANTINED, quarantined_until=until, reason=kind, message=message)

