"""How the agent merges its publication into the Node: its fault taint beside everyone else's, its condition
keeping the time of its last transition."""

from __future__ import annotations

from datetime import UTC, datetime

from samizdat.agent import publishing
from samizdat.core import inventory

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_the_fault_taint_keeps_other_taints() -> None:
    others = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    ours = {"key": inventory.FAULT_TAINT, "value": "Xid79", "effect": "NoExecute"}
    assert publishing.taints([*others], ours) == [*others, ours]
    assert publishing.taints([*others, ours], None) == others


def test_the_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    wanted = {"type": "GPUHealthy", "status": "True", "reason": "GPUsHealthy", "message": "8 GPUs healthy"}
    before = [{"type": "GPUHealthy", "status": "True", "lastTransitionTime": "2026-11-30T00:00:00Z"}]
    assert publishing.condition(wanted, before, NOW)["lastTransitionTime"] == "2026-11-30T00:00:00Z"
    flipped = publishing.condition({**wanted, "status": "False"}, before, NOW)
    assert flipped["lastTransitionTime"] == flipped["lastHeartbeatTime"] == "2026-12-01T02:00:00Z"
