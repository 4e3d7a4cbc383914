"""Member health as a pure state machine: probe and watch outcomes in, phases out, with hysteresis."""

from samizdat.core.health.guard import EvictionGuard, eviction_guard
from samizdat.core.health.tracker import (
    Failure,
    HealthPolicy,
    MemberHealth,
    healthy,
    lost,
    observe_censorship,
    observe_probe,
    observe_silence,
    schedulable,
    unreachable,
)

__all__ = [
    "EvictionGuard",
    "Failure",
    "HealthPolicy",
    "MemberHealth",
    "eviction_guard",
    "healthy",
    "lost",
    "observe_censorship",
    "observe_probe",
    "observe_silence",
    "schedulable",
    "unreachable",
]
