"""Compound faults, the short form of bench/chaos: a seeded run of a few minutes on the session sandbox.

Workloads with spread rules, faults every 10–20 s from every action the sandbox has (at most two members
faulted at once), ground truth read from the members every 2 s (`e2e.chaos`). It fails when a workload
stays short of Ready replicas for more than 30 s while the healthy members had room for it under its
rules, when a limit is broken other than in the seconds after a heal, when a lastFailover says more than
15 s, or when the operator's RSS grows by 20 % or more. The timeline of every shortfall is printed.
SAMIZDAT_CHAOS_SEED picks another seed; a failure names the seed that reproduces it.
"""

from __future__ import annotations

import os

from e2e import chaos
from e2e.operator import OperatorProcess
from e2e.sandbox.world import Sandbox

SEED = int(os.environ.get("SAMIZDAT_CHAOS_SEED", "1"))
DURATION_S = 150.0
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
