"""The chaos run's judge (e2e/chaos.py) on made-up samples: it must fail what its bounds forbid and pass
what they allow, or the compound-fault suite proves nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from e2e import chaos
from e2e.chaos import Plan, Sample, WorkloadPlan, WorkloadSample

RULES = {"minJurisdictions": 2, "maxPerJurisdiction": 1}
PLAN = Plan(seed=1, members=("de-frankfurt", "de-berlin", "ch-zurich", "fr-paris"),
            workloads=(WorkloadPlan("llm", replicas=2, gpus=1, rules=RULES),), faults=(), duration_s=120.0)
WHOLE = {"de-frankfurt": 1, "ch-zurich": 1}
BEGAN = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def sample(t: float, ready: Mapping[str, int], *, running: Mapping[str, int] | None = None, room: bool | None = None,
           failover: Mapping[str, object] | None = None) -> Sample:
    seen = WorkloadSample(ready=ready, running=running if running is not None else ready, status="", room=room)
    return Sample(t=t, faulted={}, phases={}, workloads={"llm": seen},
                  failovers={"llm": failover} if failover is not None else {})


def timeline(*spans: tuple[float, float, dict[str, object]], until: float = 60.0) -> list[Sample]:
    """Samples every half second: whole, except inside each (from, to, how) span."""
    samples = []
    for step in range(int(until * 2) + 1):
        t = step / 2
        how = next((how for start, end, how in spans if start <= t < end), {})
        samples.append(sample(t, **({"ready": WHOLE} | how)))  # type: ignore[arg-type]
    return samples


def judged(samples: list[Sample], heals: Mapping[str, list[float]] | None = None,
           rss: tuple[float, float] = (100.0, 101.0)) -> chaos.Verdict:
    return chaos.judge(samples, PLAN, heals or {}, rss, began=BEGAN)


def test_a_whole_run_passes() -> None:
    assert judged(timeline()).failures() == []


@pytest.mark.parametrize(("seconds", "fails"), [
    pytest.param(chaos.ROOM_BOUND_S - 2, False, id="within-bound"),
    pytest.param(chaos.ROOM_BOUND_S + 2, True, id="over-bound"),
])
def test_a_shortfall_while_the_fleet_had_room_is_held_to_its_bound(seconds: float, fails: bool) -> None:
    short = {"ready": {"de-frankfurt": 1}, "room": True}
    verdict = judged(timeline((5.0, 5.0 + seconds, short), until=5.0 + seconds + 10))
    (shortfall,) = verdict.shortfalls
    assert shortfall.room_s == pytest.approx(seconds, abs=0.5)
    assert bool(verdict.failures()) is fails


def test_a_shortfall_without_room_is_no_failure_however_long() -> None:
    verdict = judged(timeline((5.0, 5.0 + 3 * chaos.ROOM_BOUND_S, {"ready": {"de-frankfurt": 1}, "room": False}),
                              until=5.0 + 3 * chaos.ROOM_BOUND_S + 10))
    assert verdict.shortfalls and verdict.failures() == []


@pytest.mark.parametrize(("lasting", "excused"), [
    pytest.param(chaos.HEAL_BOUND_S - 2, True, id="just-after-a-heal"),
    pytest.param(chaos.HEAL_BOUND_S + 1, False, id="outlasting-the-fence"),
])
def test_a_limit_broken_after_a_heal_is_excused_only_while_the_fence_may_act(lasting: float, excused: bool) -> None:
    two_in_germany = {"running": {"de-frankfurt": 1, "de-berlin": 1, "ch-zurich": 1}}
    verdict = judged(timeline((10.0, 10.0 + lasting, two_in_germany)), heals={"de-berlin": [9.5]})
    (broken,) = verdict.limits
    assert broken.excused is excused
    assert bool(verdict.failures()) is not excused


def test_a_limit_broken_with_no_heal_before_it_fails() -> None:
    verdict = judged(timeline((10.0, 11.0, {"running": {"de-frankfurt": 1, "de-berlin": 1}})))
    assert verdict.limits and not verdict.limits[0].excused and verdict.failures()


def test_a_failover_is_held_to_its_time_with_room() -> None:
    def failover(seconds: float) -> dict[str, object]:
        return {"failover": {"time": (BEGAN + timedelta(seconds=10)).isoformat(), "seconds": seconds}}

    waited = judged(timeline((10.0, 40.0, {"ready": {"de-frankfurt": 1}, "room": False}),
                             (40.0, 60.0, failover(30.0)), until=60.0))
    assert waited.failovers[0]["with_room_s"] == pytest.approx(0.0, abs=0.5) and waited.failures() == []
    slow = judged(timeline((10.0, 40.0, {"ready": {"de-frankfurt": 1}, "room": True}),
                           (40.0, 60.0, failover(30.0)), until=60.0))
    assert slow.failovers[0]["with_room_s"] > chaos.FAILOVER_BOUND_S and slow.failures()


def test_operator_memory_growth_over_its_bound_fails() -> None:
    assert judged(timeline(), rss=(100.0, 100.0 * (1 + chaos.RSS_GROWTH_BOUND) + 1)).failures()
    assert not judged(timeline(), rss=(100.0, 100.0 * (1 + chaos.RSS_GROWTH_BOUND) - 1)).failures()
