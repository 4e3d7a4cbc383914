"""Compound faults, the short form of bench/chaos: a seeded run of a few minutes on the session sandbox.

Workloads with spread rules, faults every 10–20 s from every action the sandbox has (at most two members
faulted at once), ground truth read from the members every 2 s (`e2e.chaos`). It fails when a workload
stays short of Ready replicas for more than 30 s while the healthy members had room for it under its
rules, when a limit is broken other than in the seconds after a heal, when a lastFailover lasts more than
15 s beyond its time without room, or when the operator's RSS grows by 20 % or more. The timeline of
every shortfall is printed.
SAMIZDAT_CHAOS_SEED picks another seed; a failure names the seed that reproduces it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from e2e import chaos
from e2e.operator import OperatorProcess
from e2e.sandbox.world import Sandbox

SEED = int(os.environ.get("SAMIZDAT_CHAOS_SEED", "1"))
DURATION_S = 120.0
WORKLOADS_PER_MEMBER = 10 / 8  # the 10 workloads on 8 members, fewer on a smaller sandbox


def test_compound_faults_leave_no_workload_short_while_there_is_room(hub: Sandbox, operator: OperatorProcess) -> None:
    assert operator.process is not None
    workloads = round(WORKLOADS_PER_MEMBER * len(hub.member_names))
    plan = chaos.draw(SEED, hub.member_names, DURATION_S, workloads=workloads)
    run = chaos.Chaos(hub, plan, operator.process.pid)
    try:
        verdict = run.run()
    finally:
        run.remove()
    report = run.report(verdict)
    chaos.dump(hub.directory / f"chaos-{SEED}.json", report)
    print(f"\nCHAOS seed {SEED}: {report['figures']}\n{verdict.timeline(run.done)}")
    assert verdict.failures() == [], f"seed {SEED}:\n" + "\n".join(verdict.failures())


def _sample(t: float, ready: dict[str, int], room: bool | None = None, running: dict[str, int] | None = None,
            failover: dict[str, object] | None = None) -> chaos.Sample:
    seen = chaos.WorkloadSample(ready, running if running is not None else ready, "status", room)
    return chaos.Sample(t, {}, {}, {"w": seen}, {"w": failover} if failover else {})


def test_the_judge_counts_only_shortfalls_with_room_and_excuses_limits_only_just_after_a_heal() -> None:
    """The verdict itself, without a sandbox: what fails a run and what does not."""
    plan = chaos.Plan(0, ("de-berlin", "de-frankfurt", "fr-paris"),
                      (chaos.WorkloadPlan("w", 2, 1, {"minJurisdictions": 2, "maxPerJurisdiction": 1}),), (), 60)
    whole = {"de-berlin": 1, "fr-paris": 1}
    samples = [_sample(0, whole), _sample(2, {"fr-paris": 1}, room=False), _sample(4, {"fr-paris": 1}, room=False),
               *(_sample(t, {"fr-paris": 1}, room=True) for t in range(6, 40, 2)), _sample(40, whole)]
    verdict = chaos.judge(samples, plan, {}, (80.0, 82.0))
    (short,) = verdict.shortfalls
    assert (short.since_s, short.until_s, short.room_s) == (2, 40, 34.0)
    assert len(verdict.failures()) == 1 and "short with room 34.0s" in verdict.failures()[0]

    doubled = {"de-berlin": 1, "de-frankfurt": 1, "fr-paris": 1}  # two in DE: a limit broken
    samples = [_sample(0, whole), _sample(10, doubled), _sample(12, doubled), _sample(14, whole)]
    assert chaos.judge(samples, plan, {"de-frankfurt": [9.0]}, (80.0, 82.0)).failures() == [], "3 s after a heal"
    late = chaos.judge(samples, plan, {"de-frankfurt": [5.0]}, (80.0, 82.0))
    assert len(late.failures()) == 1 and "broke limits" in late.failures()[0], "7 s after a heal"
    assert "RSS" in chaos.judge(samples[:1], plan, {}, (80.0, 100.0)).failures()[0]


def test_the_judge_holds_a_failover_to_its_time_with_room() -> None:
    plan = chaos.Plan(0, ("de-berlin", "fr-paris"), (chaos.WorkloadPlan("w", 2, 1, {"minJurisdictions": 2}),), (), 60)
    began = datetime(2026, 12, 2, tzinfo=UTC)
    # lost at 10 s; no room from 12 s to 40 s (28 s), then placed and Ready at 50 s: 40 s, 12 s of it with room
    failover = {"time": (began + timedelta(seconds=10)).isoformat(), "fromCluster": "de-berlin", "seconds": 40.0}
    short = {"fr-paris": 1}
    samples = [_sample(10, short, room=True), *(_sample(t, short, room=False) for t in range(12, 40, 2)),
               *(_sample(t, short, room=True) for t in range(40, 50, 2)),
               _sample(50, {"de-berlin": 1, "fr-paris": 1}, failover=failover)]
    verdict = chaos.judge(samples, plan, {}, (80.0, 82.0), began=began)
    assert [(f["without_room_s"], f["with_room_s"]) for f in verdict.failovers] == [(28.0, 12.0)]
    assert verdict.failures() == []

    slow = {**failover, "time": (began + timedelta(seconds=5)).isoformat(), "seconds": 45.0}  # 17 s with room
    samples[-1] = _sample(50, {"de-berlin": 1, "fr-paris": 1}, failover=slow)
    failures = chaos.judge(samples, plan, {}, (80.0, 82.0), began=began).failures()
    assert len(failures) == 1 and "17.0s of it with room" in failures[0]
