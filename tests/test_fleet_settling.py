"""`Fleet.settling`: workloads wait after start until every member is connected, probed and fenced."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from samizdat.fleet import Fleet, MemberSettings
from samizdat.fleet import fleet as fleet_module
from samizdat.model import Phase


def _member(phase: Phase) -> Any:
    return SimpleNamespace(health=SimpleNamespace(phase=phase))


def test_a_fleet_settles_once_every_member_is_fenced_or_lost() -> None:
    fleet = Fleet(MemberSettings())
    assert fleet.settling(["a", "b"]), "a member not connected yet may hold replicas"
    fleet.members["a"] = _member(Phase.PENDING)
    fleet.members["b"] = _member(Phase.DOWN)
    assert fleet.settling(["a", "b"]), "a member not probed yet may hold replicas"
    fleet.members["a"] = _member(Phase.READY)
    assert fleet.settling(["a", "b"]), "a reachable member not fenced yet may hold replicas"
    fleet.fenced.add("a")
    assert not fleet.settling(["a", "b"]), "a Down member holds nothing that counts: no need to wait"


def test_settling_ends_after_a_bound_even_if_a_member_never_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(fleet_module.time, "monotonic", lambda: clock[0])
    fleet = Fleet(MemberSettings())
    assert fleet.settling(["never"])
    clock[0] += fleet_module.SETTLE_S + 1
    assert not fleet.settling(["never"])
