"""What a user sees in the first hour: Events worth reading, and a member that answers garbage.

- One member outage is one `MemberLost` Event per workload that had replicas there, reported by
  samizdat; when the same thing is said again (the member goes down a second time), that Event's count
  grows instead of a new Event appearing.
- A member whose HTTPS endpoint answers every request with 200 and malformed JSON never becomes Ready,
  and its status says why; other workloads place and fail over as usual meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.garbage import GarbageServer, registered
from e2e.operator import OperatorProcess
from e2e.sandbox import pki
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import (
    COUNTRY,
    aiworkload,
    apply_manifest,
    delete_workload,
    placed_in,
    wait_running,
    wait_settled,
)
from samizdat.remote.clusters import kubeconfig, recording
from samizdat.remote.clusters.client import ClusterClient

GARBAGE = "garbage-oslo"


def events(sandbox: Sandbox, namespace: str, uid: str, reason: str) -> list[dict[str, Any]]:
    """The Events about the object `uid` with `reason`, as `kubectl get events` lists them."""
    items = sandbox.kubectl("hub").get_json("events", "-n", namespace, "--field-selector",
                                            f"involvedObject.uid={uid},reason={reason}")["items"]
    return list(items)


def member_phase(sandbox: Sandbox, name: str) -> str | None:
    phase: str | None = sandbox.kubectl("hub").get_json("mc", name).get("status", {}).get("phase")
    return phase


# ----- the recorder against the real hub


def test_a_repeated_event_is_counted_on_one_object_even_across_a_restart(hub: Sandbox) -> None:
    body = hub.kubectl("hub").get_json("mc", hub.member_names[0])
    regarding = recording.Regarding.of(body)
    message = f"first-hour check {time.time_ns()}"  # fresh, so earlier runs leave no count behind

    async def say(times: int) -> None:
        async with ClusterClient("hub", kubeconfig.load(hub.admin_kubeconfig("hub"))) as client:
            recorder = recording.Recorder(client, "samizdat", "e2e")  # a new one: as after a restart
            for _ in range(times):
                await recorder.record(regarding, "Normal", "FirstHourCheck", message)

    asyncio.run(say(2))
    asyncio.run(say(1))
    (event,) = [e for e in events(hub, "default", regarding.uid, "FirstHourCheck") if e["message"] == message]
    assert event["count"] == 3
    assert (event["source"]["component"], event["reportingComponent"]) == ("samizdat", "samizdat")
    assert event["involvedObject"]["name"] == hub.member_names[0] and "namespace" not in event["involvedObject"]


# ----- one outage, one Event per affected workload


@pytest.fixture
def spread_and_pinned(hub: Sandbox, operator: OperatorProcess) -> Iterator[dict[str, Any]]:
    """A workload spread over 3 countries, one pinned to a country with one member that the spread one
    also uses, and one that avoids that country."""
    apply_manifest(hub, aiworkload("fh-spread", 3, {"minJurisdictions": 3, "maxPerJurisdiction": 1}))
    spread = wait_settled(hub, "fh-spread", 3)
    single = {m for m in hub.member_names if list(COUNTRY.values()).count(COUNTRY[m]) == 1}
    victim = sorted(placed_in(hub, "fh-spread") & single)[0]
    country = COUNTRY[victim]
    apply_manifest(hub, aiworkload("fh-pinned", 1, {"minJurisdictions": 1, "allowedJurisdictions": [country]}))
    apply_manifest(hub, aiworkload("fh-elsewhere", 1, {"minJurisdictions": 1, "deniedJurisdictions": [country]}))
    pinned, elsewhere = wait_settled(hub, "fh-pinned", 1), wait_settled(hub, "fh-elsewhere", 1)
    try:
        yield {"victim": victim, "uids": {w["metadata"]["name"]: w["metadata"]["uid"]
                                          for w in (spread, pinned, elsewhere)}}
    finally:
        hub.heal(victim)
        for name in ("fh-spread", "fh-pinned", "fh-elsewhere"):
            delete_workload(hub, name)


def test_one_outage_is_one_member_lost_event_per_workload_counted_on_repeats(
    hub: Sandbox, spread_and_pinned: dict[str, Any]
) -> None:
    victim, uids = spread_and_pinned["victim"], spread_and_pinned["uids"]
    hub.kill(victim)
    # fh-spread fails over as usual; fh-pinned cannot (its one country is down) and waits.
    wait_running(hub, uids["fh-spread"], 3, exclude=frozenset({victim}))
    wait_settled(hub, "fh-spread", 3)
    time.sleep(5)  # reconciles that would repeat the Event (resyncs, fleet changes) have run by now
    lost = {name: events(hub, "default", uid, "MemberLost") for name, uid in uids.items()}
    assert [len(lost["fh-spread"]), len(lost["fh-pinned"]), len(lost["fh-elsewhere"])] == [1, 1, 0], lost
    for event in lost["fh-spread"] + lost["fh-pinned"]:
        assert (event["source"]["component"], event["reportingComponent"]) == ("samizdat", "samizdat"), event
        assert event["count"] == 1 and event["type"] == "Warning", event
        assert event["message"].startswith(f"replicas in {victim} no longer count"), event
        assert "within" not in event["message"], "no measured durations in an Event: repeats must aggregate"

    # The member returns, the pinned replica counts again; the same outage again is the same Event, counted.
    hub.heal(victim)
    eventually(lambda: member_phase(hub, victim) == "Ready", timeout=60, what=f"{victim} Ready again")
    wait_settled(hub, "fh-pinned", 1)
    hub.kill(victim)
    eventually(lambda: [e["count"] for e in events(hub, "default", uids["fh-pinned"], "MemberLost")] == [2],
               timeout=30, what="the pinned workload's MemberLost Event counted twice")
    down = events(hub, "default", hub.kubectl("hub").get_json("mc", victim)["metadata"]["uid"], "MemberDown")
    assert sum(e["count"] for e in down) == 2 and all(e["source"]["component"] == "samizdat" for e in down), down
    assert len(events(hub, "default", uids["fh-spread"], "MemberLost")) == 1


# ----- a member that answers garbage


@pytest.fixture
def garbage_member(hub: Sandbox, operator: OperatorProcess, tmp_path: Path) -> Iterator[GarbageServer]:
    """A MemberCluster registered as a user would, whose endpoint answers everything with garbage."""
    with GarbageServer(pki.ensure_ca(tmp_path / "ca"), tmp_path / "serving") as server:
        with registered(hub, server, GARBAGE, "NO"):
            yield server


def test_a_garbage_member_is_never_ready_says_why_and_others_fail_over_as_usual(
    hub: Sandbox, operator: OperatorProcess, garbage_member: GarbageServer
) -> None:
    def malformed() -> dict[str, Any] | None:
        status = hub.kubectl("hub").get_json("mc", GARBAGE).get("status", {})
        ready: dict[str, Any] = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
        return ready if ready.get("reason") == "ProbeMalformed" else None

    why = eventually(malformed, timeout=30, what=f"{GARBAGE} not Ready, saying why")
    assert why is not None
    assert why["status"] == "False" and "answered 200 without the API server's 'ok'" in why["message"], why
    assert garbage_member.requests > 0
    time.sleep(4)  # each view's one warning (its second failure in a row) is out by now
    log_lines_before = len(operator.tail(100000).splitlines())
    requests_before = garbage_member.requests

    # Meanwhile a workload that may go to Norway places and fails over among the real members only.
    rules = {"minJurisdictions": 2, "maxPerJurisdiction": 1, "allowedJurisdictions": ["NO", "CH", "GB", "US"]}
    apply_manifest(hub, aiworkload("fh-beside-garbage", 2, rules))
    try:
        workload = wait_settled(hub, "fh-beside-garbage", 2)
        uid = workload["metadata"]["uid"]
        victim = sorted(placed_in(hub, "fh-beside-garbage"))[0]
        assert GARBAGE not in placed_in(hub, "fh-beside-garbage")
        hub.kill(victim)
        try:
            running = wait_running(hub, uid, 2, exclude=frozenset({victim}))
            wait_settled(hub, "fh-beside-garbage", 2)
            assert victim not in running and GARBAGE not in placed_in(hub, "fh-beside-garbage"), running
        finally:
            hub.heal(victim)
    finally:
        delete_workload(hub, "fh-beside-garbage")

    status = hub.kubectl("hub").get_json("mc", GARBAGE)["status"]
    assert status["phase"] in ("Suspect", "Down") and "freeGPUs" not in status, status
    garbage_lines = [line for line in operator.tail(100000).splitlines()[log_lines_before:] if GARBAGE in line]
    assert not garbage_lines, "the operator logs a broken member once per transition, not per retry:\n" + \
        "\n".join(garbage_lines[:20])
    assert garbage_member.requests > requests_before, "samizdat kept trying it (with back-off) meanwhile"
    said = hub.kubectl("hub").get_json("events", "-n", "default", "--field-selector",
                                       f"involvedObject.name={GARBAGE}")["items"]
    assert said and all(e["source"]["component"] == "samizdat" for e in said), json.dumps(said, indent=1)[:2000]
    described = hub.kubectl("hub").run("describe", "mc", GARBAGE).stdout
    assert "ProbeMalformed" in described and "samizdat" in described.split("Events:")[-1], described[-2000:]
