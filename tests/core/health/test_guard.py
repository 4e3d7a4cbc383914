"""The self-partition guard: evictions halt when most members look down, as the fault is then probably
the operator's own."""

from __future__ import annotations

import pytest

from samizdat.core import health
from samizdat.core.model import Phase


@pytest.mark.parametrize(
    ("phases", "halted"),
    [
        pytest.param([Phase.READY] * 6, False, id="all-ready"),
        pytest.param([Phase.DOWN] + [Phase.READY] * 5, False, id="one-down"),
        pytest.param([Phase.DOWN] * 3 + [Phase.READY] * 3, False, id="half-down"),
        pytest.param([Phase.DOWN] * 4 + [Phase.READY] * 2, True, id="most-down"),
        pytest.param([Phase.QUARANTINED] * 4 + [Phase.READY] * 2, False, id="quarantine-is-not-our-fault"),
        pytest.param([Phase.DOWN], False, id="single-member-never-halts"),
        pytest.param([Phase.PENDING] * 5 + [Phase.DOWN], False, id="pending-not-counted"),
    ],
)
def test_eviction_guard_halts_when_most_members_look_down(phases: list[Phase], halted: bool) -> None:
    assert health.eviction_guard(phases).halted is halted
