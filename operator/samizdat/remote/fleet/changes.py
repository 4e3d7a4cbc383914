"""What changed in a member, as the member tells the fleet: typed, so the fleet's reaction is a match."""

from __future__ import annotations

from enum import Enum


class MemberChange(Enum):
    PHASE = "phase"  # its health phase moved: it may be lost, back, or to be fenced
    CENSORSHIP = "censorship"  # new evidence that it censors
    FENCE = "fence"  # the leader's writes found its epoch fence changed
    LINK = "link"  # the probe round trip placement reads moved
    VIEW = "view"  # its nodes, pods, copies or namespace changed
