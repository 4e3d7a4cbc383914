"""Far members on bad links (#23): three members behind the `wan` profile (RTT about 300 +- 250 ms, stall
windows standing for 5 % loss; docs/links.md) for SAMIZDAT_WAN_MINUTES (10 by default) while the
others stay clean. The members and their pods are fine all along, so nothing may move: no member Down
or quarantined (the operator's own count, `samizdat_member_phase_changes_total`), the same pod UIDs
running in every member throughout (read from the members themselves), and the link as samizdat
measures it in each far member's status. Suspect spells are counted and reported, not forbidden: a
Suspect member only takes no new replicas.

One of them on `throttled` (64 KB/s) for SAMIZDAT_THROTTLED_MINUTES (2) stays usable: its replicas
stay (same UIDs), it is never Down, and a replica added there while it is throttled runs.

Then one of them on `resets` (every connection reset every 10 s): a copy its admin deletes in the gap a
reset tears in the watches, when no DELETED event can reach samizdat, must be found censored within
2 s of the reconnect, from the listing that follows it.

The operator reaches the three through Toxiproxy (re-joined with `--member-server`) for this module
only, and directly again after it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from e2e.far import PHASES, keep_on_link, member_status, phase_changes, running_pods
from e2e.operator import OperatorProcess
from e2e.sandbox import layout, links, members
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import aiworkload, copies, wait_settled
from samizdat.remote.fleet.member import RETRY_AFTER_ERROR_S

FAR = ("gb-london", "ch-zurich", "fr-paris")  # three countries no other member of the sandbox has
MINUTES = float(os.environ.get("SAMIZDAT_WAN_MINUTES", "10"))
THROTTLED_MINUTES = float(os.environ.get("SAMIZDAT_THROTTLED_MINUTES", "2"))


def reconnects(hub: Sandbox, name: str) -> int:
    """How often the operator has reconnected to the member on changed credentials (its Events)."""
    events = hub.kubectl("hub").get_json("events", "-A", "--field-selector",
                                         f"involvedObject.name={name},reason=CredentialsChanged")
    return sum(int(event.get("count") or 1) for event in events["items"])


def rejoin(hub: Sandbox, through_links: bool) -> None:
    """Join the far members again (through their proxies, or directly) and wait until the operator has
    reconnected to each and found it Ready."""
    before = {name: reconnects(hub, name) for name in FAR}
    hub.register(*FAR, through_links=through_links)
    eventually(lambda: all(reconnects(hub, name) > before[name] for name in FAR), timeout=60,
               what="the operator reconnected to the re-joined members")
    eventually(lambda: all(member_status(hub, name).get("phase") == "Ready" for name in FAR), timeout=90,
               what="the re-joined members Ready")


@pytest.fixture(scope="module")
def far(hub: Sandbox, operator: OperatorProcess) -> Iterator[tuple[str, ...]]:
    if not set(FAR) <= set(hub.member_names):
        pytest.skip(f"needs the members {', '.join(FAR)}")
    hub.start_links()
    try:
        rejoin(hub, through_links=True)
        yield FAR
    finally:
        for name in FAR:
            hub.links.heal(name)
        # Direct first, proxies gone after: stopping them first would take the members Down on the way
        # (the next module would find a MemberDown it did not cause).
        rejoin(hub, through_links=False)
        hub.links.stop()


def test_three_far_members_on_wan_keep_their_replicas(hub: Sandbox, operator: OperatorProcess,
                                                     far: tuple[str, ...]) -> None:
    report = keep_on_link(hub, operator, far, "wan", MINUTES)
    print(f"\nwan for {MINUTES:g} min: {json.dumps(report)}")
    (hub.directory / "wan-report.json").write_text(json.dumps(report, indent=2))
    changes = report["phase_changes"]
    assert all(changes[m]["Down"] == 0 and changes[m]["Quarantined"] == 0 for m in far), report
    assert report["samples_with_pods_moved"] == 0, f"pods replaced or moved while the members were fine: {report}"
    links = report["links"]
    assert all((links[m].get("rttP50Ms") or 0) >= 100 for m in far), f"status does not show the far link: {links}"


def test_a_throttled_member_stays_usable_and_keeps_its_replicas(
        hub: Sandbox, operator: OperatorProcess, far: tuple[str, ...]) -> None:
    member, name = far[1], "throttled"
    spec = aiworkload(name, 1, {"allowedJurisdictions": [layout.by_name(member).country]})
    hub.kubectl("hub").run("apply", "-f", "-", stdin=json.dumps(spec))
    try:
        uid = wait_settled(hub, name, 1)["metadata"]["uid"]
        placed = running_pods(hub, uid)[member]
        before = phase_changes(operator, member)
        hub.links.degrade(member, "throttled")
        half = THROTTLED_MINUTES * 30
        time.sleep(half)
        assert running_pods(hub, uid)[member] == placed, "the replica moved or was replaced"
        spec["spec"]["replicas"] = 2  # a write and a new replica through the throttled link
        hub.kubectl("hub").run("apply", "-f", "-", stdin=json.dumps(spec))
        scaled_at = time.monotonic()
        eventually(lambda: len(running_pods(hub, uid)[member]) == 2, timeout=60, interval=1.0,
                   what="the added replica Running in the throttled member")
        print(f"\nthrottled: a replica added {time.monotonic() - scaled_at:.1f}s after the change")
        time.sleep(max(0.0, half - (time.monotonic() - scaled_at)))
        now = running_pods(hub, uid)[member]
        after = phase_changes(operator, member)
        changes = {p: after[p] - before[p] for p in PHASES}
        print(f"throttled for {THROTTLED_MINUTES:g} min: {changes}, link {member_status(hub, member).get('link')}")
        assert placed <= now and len(now) == 2, "a replica moved or was replaced"
        assert changes["Down"] == 0 and changes["Quarantined"] == 0, changes
    finally:
        hub.links.heal(member)
        hub.kubectl("hub").run("delete", "aiworkload", name, "-n", "default", "--wait=false", check=False)


def test_a_copy_deleted_in_a_reset_gap_is_found_censored_on_the_reconnect(
        hub: Sandbox, operator: OperatorProcess, far: tuple[str, ...]) -> None:
    member, name = far[0], "reset-gap"
    spec = aiworkload(name, 1, {"allowedJurisdictions": [layout.by_name(member).country]})
    hub.kubectl("hub").run("apply", "-f", "-", stdin=json.dumps(spec))
    try:
        uid = wait_settled(hub, name, 1)["metadata"]["uid"]
        copy = copies(hub, uid)[member]["metadata"]["name"]
        seen_before = operator.metric("samizdat_censorship_events_total", member=member) or 0.0
        hub.links.degrade(member, "resets")
        eventually(lambda: "reset-down" in hub.links.toxics(member), timeout=3 * links.RESET_EVERY_S, interval=0.02,
                   what="a reset of the member's connections")
        reset_at = time.monotonic()
        hub.kubectl(member).run("delete", "deployment", copy, "-n", members.WORKLOAD_NAMESPACE, "--wait=false")
        deleted_at = time.monotonic()
        # the watches broke at the reset and list again only after their first retry delay
        reconnect = reset_at + links.RESET_FOR_S + RETRY_AFTER_ERROR_S[0]
        assert deleted_at < reconnect, "the delete was to fall in the gap; the machine is too slow to tell"
        eventually(lambda: (operator.metric("samizdat_censorship_events_total", member=member) or 0.0) > seen_before,
                   timeout=15, interval=0.05, what="the deleted copy found")
        found_after = time.monotonic() - reconnect
        print(f"\ncopy deleted {deleted_at - reset_at:.2f}s into a reset gap, found {found_after:.2f}s after the reconnect")
        assert found_after <= 2.0
        # not sooner than the listing can be: no watch event told (the reset window may end 0.2 s early)
        assert found_after >= -links.RESET_FOR_S - 0.1, "found before the watches listed again: there was no gap"
        eventually(lambda: member_status(hub, member).get("censorshipEvidence", {}).get("kind") == "ObjectDeleted",
                   timeout=10, what="the evidence in the member's status")
    finally:
        hub.links.heal(member)
        hub.kubectl("hub").run("delete", "aiworkload", name, "-n", "default", "--wait=false", check=False)
