"""Score `costPerGPUHour`: cheaper members score higher."""

from __future__ import annotations

from samizdat.placement.snapshot import Member

NAME = "cost"


def raw(member: Member) -> float:
    return member.cost_per_gpu_hour
