"""Score `latencyMs`: members closer to the hub (lower probe latency) score higher."""

from __future__ import annotations

from samizdat.placement.snapshot import Member

NAME = "latency"


def raw(member: Member) -> float:
    return member.latency_ms
