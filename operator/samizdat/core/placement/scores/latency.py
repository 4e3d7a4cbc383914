"""Score `latencyMs`: members closer to the hub (lower probe latency) score higher."""

from __future__ import annotations

from samizdat.core.placement.snapshot import MemberInfo

NAME = "latency"


def raw(member: MemberInfo) -> float:
    return member.latency_ms
