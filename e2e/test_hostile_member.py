"""A hostile member costs only itself.

A member registered as a user would, whose endpoint answers every request with a 50 MB body, an endless
stream, or a 10 s stall (e2e/garbage.py), while a workload runs on the real members beside it: the other
members' failover time (kill one, until its replicas run elsewhere, counted in the members) stays within
a second of what it is with no hostile member, the hostile one is never placed on, and the operator's
resident memory grows by no more than the bound docs/failure-detector.md states.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.garbage import HUGE_BYTES, Behaviour, GarbageServer, registered
from e2e.operator import OperatorProcess, ProcessMeter
from e2e.sandbox import pki
from e2e.sandbox.world import Sandbox, rss_mib
from e2e.workloads import (
    aiworkload,
    apply_manifest,
    delete_workload,
    placed_in,
    wait_members_ready,
    wait_running,
    wait_settled,
)
from samizdat.remote.clusters.client import MAX_REPLY_BYTES

HOSTILE = "hostile-oslo"
WORKLOAD = "beside-hostile"
REPLICAS = 2
TRIALS = 3
HOSTILE_FOR_S = 10.0  # how long the member is hostile before the trials start
# One capped reply held while parsed (its buffer, its bytes, the parsed text) and a little per other
# request: what docs/failure-detector.md states one member can make the operator hold.
RSS_BOUND_BYTES = 3.5 * HUGE_BYTES + MAX_REPLY_BYTES

pytestmark = pytest.mark.timeout(900)


def failover_seconds(sandbox: Sandbox, uid: str) -> float:
    """Kill one member holding a replica; seconds until every replica runs on the others again."""
    victim = sorted(placed_in(sandbox, WORKLOAD))[0]
    started = time.monotonic()
    sandbox.kill(victim)
    try:
        wait_running(sandbox, uid, REPLICAS, exclude=frozenset({victim}))
        return time.monotonic() - started
    finally:
        sandbox.heal(victim)
        wait_members_ready(sandbox, only_sandbox=True)
        wait_settled(sandbox, WORKLOAD, REPLICAS)


@pytest.fixture
def workload(hub: Sandbox, operator: OperatorProcess) -> Iterator[str]:
    # Norway allowed: were samizdat to take the hostile member for a usable one, it could be chosen.
    rules = {"minJurisdictions": 2, "maxPerJurisdiction": 1, "allowedJurisdictions": ["NO", "CH", "GB", "US"]}
    apply_manifest(hub, aiworkload(WORKLOAD, REPLICAS, rules))
    try:
        yield str(wait_settled(hub, WORKLOAD, REPLICAS)["metadata"]["uid"])
    finally:
        delete_workload(hub, WORKLOAD)


def test_a_hostile_member_leaves_failover_and_memory_of_the_others_alone(
    hub: Sandbox, operator: OperatorProcess, workload: str, tmp_path: Path
) -> None:
    clean = [failover_seconds(hub, workload) for _ in range(TRIALS)]
    assert operator.process is not None
    memory = ProcessMeter(operator.process.pid)
    before_mib = rss_mib(operator.process.pid)
    memory.start()
    hostile: dict[Behaviour, list[float]] = {}
    try:
        with GarbageServer(pki.ensure_ca(tmp_path / "ca"), tmp_path / "serving") as server, \
                registered(hub, server, HOSTILE, "NO"):
            for behaviour in (Behaviour.HUGE, Behaviour.ENDLESS, Behaviour.STALL):
                server.behaviour = behaviour
                requests = server.requests
                time.sleep(HOSTILE_FOR_S)
                hostile[behaviour] = [failover_seconds(hub, workload) for _ in range(TRIALS)]
                assert server.requests > requests, f"samizdat never asked the {behaviour} member anything"
                assert HOSTILE not in placed_in(hub, WORKLOAD)
                phase = hub.kubectl("hub").get_json("mc", HOSTILE).get("status", {}).get("phase")
                assert phase in ("Pending", "Suspect", "Down"), phase
            server.behaviour = Behaviour.MALFORMED  # ends the endless streams still open
    finally:
        memory.stop()

    growth_bytes = (memory.peak_rss_mib - before_mib) * 2**20
    report = {"clean": clean, **{str(b): seconds for b, seconds in hostile.items()},
              "rss_growth_MiB": round(growth_bytes / 2**20)}
    print(report)
    for behaviour, seconds in hostile.items():
        assert statistics.median(seconds) <= statistics.median(clean) + 1.0, report
    assert growth_bytes <= RSS_BOUND_BYTES, report
