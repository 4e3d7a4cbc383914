"""samizdat over a hub stretched across three sites, one operator per site electing its leader by Lease:
the issue's scenarios, judged by what runs in the members.

- the active operator's whole site is killed: another site's operator takes over, and a member killed
  right after is still failed over (replicas Running elsewhere, rules held);
- the active operator paused (SIGSTOP) beyond its Lease: another takes over and re-places; woken up
  (SIGCONT), it changes nothing in the members and stands by;
- the active operator's site is partitioned (SIGSTOP: its etcd member, apiserver and operator) beyond its
  Lease: the other two sites take over and re-place; when the site comes back, its operator writes
  nothing to the members (their pods and copies unchanged, any write it tried refused), and it stands by;
- two of three sites gone: nothing anywhere is deleted or moved, members run their copies on; when a
  site returns, samizdat resumes and reconciles.

The module starts its own sandbox (three hub sites, three members registered with `samizdat join`, which
installs every member's fence) and three operators, each talking to its own site's apiserver only.
Each scenario heals what it broke, and restarts killed operators, before the next.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from e2e import sites
from e2e.sandbox import hubsites, members
from e2e.sites import World
from e2e.waiting import eventually
from e2e.workloads import aiworkload, fence_epoch, member_pods, rule_violations

SITES = 3
MEMBERS = 3  # us-east (US), gb-london (GB), de-frankfurt (DE)
RULES = {"minJurisdictions": 2, "maxPerJurisdiction": 1}

pytestmark = pytest.mark.timeout(420)  # the first test includes starting the module's sandbox


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with sites.started(tmp_path_factory.mktemp("hubfailover"), MEMBERS, SITES) as started:
        yield started


def running(world: World, uid: str, replicas: int, timeout: float) -> dict[str, int]:
    """Until exactly `replicas` pods of the workload run in reachable members, under its rules."""
    def counted() -> dict[str, int] | None:
        counts = member_pods(world.sandbox, uid)
        return counts if sum(counts.values()) == replicas and not rule_violations(counts, RULES) else None
    return eventually(counted, timeout=timeout, interval=0.5, what=f"{replicas} pods running under the rules")


def test_a_killed_leader_site_is_taken_over_and_a_member_killed_right_after_still_fails_over(world: World) -> None:
    world.apply(aiworkload("sites-kill", 2, RULES))
    uid = world.uid("sites-kill")
    placed = running(world, uid, 2, timeout=90)
    leader = world.leader()
    offsets = [world.log_size(n) for n in range(SITES)]
    member = sorted(placed)[0]  # holds a replica
    try:
        hubsites.kill_site(world.sandbox.launcher, world.sandbox.state, world.sites, leader)
        killed = time.monotonic()
        world.sandbox.kill(member)
        others = [n for n in range(SITES) if n != leader]
        new = world.leader(among=others)
        counts = running(world, uid, 2, timeout=60)
        took = time.monotonic() - killed
        assert member not in counts
        assert f"leading the hub as site-{new}-" in world.log_since(new, offsets[new])
        assert took < 45, f"replicas Running elsewhere {took:.0f}s after the site and member were killed"
    finally:
        world.sandbox.heal(member)
        world.heal(leader)
        world.hub(world.live_site()).run("delete", "aiworkload", "sites-kill", "-n", "default", "--wait=false")


def test_a_partitioned_leader_site_is_taken_over_and_on_its_return_writes_nothing(world: World) -> None:
    def partition(site: int) -> None:
        hubsites.partition_site(world.sandbox.launcher, world.sandbox.state, world.sites, site)

    def heal(site: int) -> None:
        hubsites.heal_site(world.sandbox.launcher, world.sandbox.state, world.sites, site)

    try:
        taken_over_while_away(world, "sites-pause", partition, heal)
    finally:
        for site in range(SITES):  # none, unless the scenario failed half-way
            if world.sites.site(site).faults:
                world.heal(site)


def test_a_paused_leader_is_taken_over_and_when_it_wakes_up_changes_nothing_and_steps_down(world: World) -> None:
    def signal_operator(number: signal.Signals) -> Callable[[int], None]:
        def send(site: int) -> None:  # the operator alone: its site's etcd member and apiserver run on
            process = world.operators[site].process
            assert process is not None
            os.killpg(process.pid, number)
        return send

    taken_over_while_away(world, "paused", signal_operator(signal.SIGSTOP), signal_operator(signal.SIGCONT))


def taken_over_while_away(world: World, name: str, leave: Callable[[int], None], come_back: Callable[[int], None]
                          ) -> None:
    """The leader goes away beyond its Lease, another site's operator takes over and re-places (one replica
    more, which only it can write), the old leader comes back: the members' copies and pods stay as the
    new leader left them, and the old leader stands by."""
    world.apply(aiworkload(name, 2, RULES))
    uid = world.uid(name)
    running(world, uid, 2, timeout=90)
    leader = world.leader()
    try:
        leave(leader)
        try:
            new = world.leader(among=[n for n in range(SITES) if n != leader])
            world.hub(new).run("apply", "-f", "-", stdin=json.dumps(aiworkload(name, 3, {
                "minJurisdictions": 2, "maxPerCluster": 2})))
            # Settled: 3 pods, and the copies hold 3 replicas. A copy the new leader moves away from is
            # removed only once its replacement is Ready, so 3 pods alone may still leave that copy to go.
            eventually(lambda: sum(member_pods(world.sandbox, uid).values()) == 3
                       and sum(replicas for _, _, replicas in world.copies(uid).values()) == 3,
                       timeout=60, what="3 pods, and 3 replicas in the copies")
            before, pods_before = world.copies(uid), member_pods(world.sandbox, uid)
            back_at, new_back_at = world.log_size(leader), world.log_size(new)
        finally:
            come_back(leader)
        eventually(lambda: "no longer leading" in world.log_since(leader, back_at) or None,
                   timeout=20, what="the old leader stepping down")
        time.sleep(3)  # what it may try after coming back, it has tried by now
        after = world.copies(uid)
        # Who changed it, if one was changed: both operators' logs since the old leader came back.
        assert after == before, (f"a copy was changed after the old leader came back: {before} -> {after}\n"
                                 f"old leader's log:\n{world.log_since(leader, back_at)[-6000:]}\n"
                                 f"new leader's log:\n{world.log_since(new, new_back_at)[-6000:]}")
        assert member_pods(world.sandbox, uid) == pods_before
        back = world.log_since(leader, back_at)
        assert "leading the hub as" not in back
        print(f"{name}: the old leader's member writes refused by the fence after it came back: "
              f"{back.count('the fence refused')}")
    finally:
        world.hub(world.live_site()).run("delete", "aiworkload", name, "-n", "default", "--wait=false")


def test_without_a_quorum_nothing_is_deleted_or_moved_and_samizdat_resumes_when_a_site_returns(
    world: World,
) -> None:
    world.apply(aiworkload("sites-frozen", 2, RULES))
    uid = world.uid("sites-frozen")
    running(world, uid, 2, timeout=90)
    before = world.copies(uid)
    pods_before = member_pods(world.sandbox, uid)
    leader = world.leader()
    gone = [leader, (leader + 1) % SITES]
    try:
        for site in gone:
            hubsites.kill_site(world.sandbox.launcher, world.sandbox.state, world.sites, site)
        time.sleep(10)  # beyond the lease: a leader would have had to renew twice over
        assert world.copies(uid) == before, "frozen, not destroyed: no copy changed"
        assert member_pods(world.sandbox, uid) == pods_before
    finally:
        world.heal(gone[0])
    # A quorum again: an operator leads and samizdat reconciles (the workload's rules still hold).
    world.leader(among=[n for n in range(SITES) if n != gone[1]])
    world.hub(gone[0]).run("apply", "-f", "-", stdin=json.dumps(aiworkload("sites-frozen", 3, {
        "minJurisdictions": 2, "maxPerCluster": 2})))
    eventually(lambda: sum(member_pods(world.sandbox, uid).values()) == 3, timeout=60, what="reconciled to 3")
    world.heal(gone[1])
    epochs = {member: fence_epoch(world.sandbox, member) for member in world.sandbox.member_names}
    assert max(epochs.values()) >= 2, epochs
