"""The self-partition guard: when most members look lost at once, the fault is probably ours.

A hub cut off from the network sees every member fail together. Re-placing then would stampede work
onto whatever few members still answer, or onto none. Like Karmada's eviction rate limiter, evictions
halt when the unhealthy share reaches a threshold (55% by default) and resume when it falls below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from samizdat.core.health.tracker import unreachable
from samizdat.core.model import Phase

DEFAULT_HALT_THRESHOLD = 0.55


@dataclass(frozen=True, slots=True)
class EvictionGuard:
    halted: bool
    unhealthy: int
    total: int
    message: str


def eviction_guard(phases: Iterable[Phase], threshold: float = DEFAULT_HALT_THRESHOLD) -> EvictionGuard:
    counted = [phase for phase in phases if phase is not Phase.PENDING]
    # Quarantine is a verdict about a member's conduct, not a symptom of our own connectivity.
    unhealthy = sum(1 for phase in counted if unreachable(phase))
    total = len(counted)
    halted = total >= 2 and unhealthy / total >= threshold
    message = (
        f"{unhealthy} of {total} members unreachable (>= {threshold:.0%}): the fault is probably on the "
        "operator's side, so evictions are halted"
        if halted
        else f"{unhealthy} of {total} members unreachable"
    )
    return EvictionGuard(halted=halted, unhealthy=unhealthy, total=total, message=message)
