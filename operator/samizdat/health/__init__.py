"""Member health as a pure state machine: probe and watch outcomes in, phases out, with hysteresis."""

from samizdat.health.guard import EvictionGuard, eviction_guard
from samizdat.health.tracker import Failure, HealthPolicy, MemberHealth, observe_censorship, observe_probe

__all__ = [
    "EvictionGuard",
    "Failure",
    "HealthPolicy",
    "MemberHealth",
    "eviction_guard",
    "observe_censorship",
    "observe_probe",
]
