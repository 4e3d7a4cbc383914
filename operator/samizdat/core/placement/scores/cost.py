"""Score `costPerGPUHour`: cheaper members score higher."""

from __future__ import annotations

from samizdat.core.placement.snapshot import MemberInfo

NAME = "cost"


def raw(member: MemberInfo) -> float:
    return member.cost_per_gpu_hour
