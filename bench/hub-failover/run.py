"""Hub-failover benchmark on the real sandbox: the active operator's whole hub site killed.

Method: a sandbox whose hub runs in three sites (one etcd raft cluster, an apiserver and controller-manager
per site) with three members (US, GB, DE) registered by `samizdat join`, one operator per site talking to
its own site's apiserver and standing for one Lease (duration 3 s, renew deadline 2 s, retry 0.5 s), and
one AIWorkload of 1 GPU per replica (minJurisdictions 2, maxPerJurisdiction 1). Trials of two kinds:
`site`: at t0 the leader's site is SIGKILLed (its etcd member, apiserver, controller-manager and
operator) and the workload's replicas are changed (2 to 3, or back) at a surviving site; the time is
until the copies in the members, read from the members themselves every 50 ms over HTTPS, add up to the
new count (the new leader's first placement). `site+member`: at t0 the leader's site and a member
holding a replica are SIGKILLed together; the time is until 2 pods of the workload are Ready in the other
members. After each trial the site, the member and the operator come back and the workload settles
before the next trial. Prints JSON.

    python bench/hub-failover/run.py --trials 10      # 10 of each kind
    python bench/hub-failover/run.py --quick          # 2 of each (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stats  # noqa: E402
from e2e import sites  # noqa: E402
from e2e.sandbox import hubsites, members  # noqa: E402
from e2e.waiting import eventually  # noqa: E402
from e2e.workloads import UID_LABEL, aiworkload, rule_violations  # noqa: E402

NAME = "bench-hub-failover"
RULES = {"minJurisdictions": 2, "maxPerJurisdiction": 1}
KINDS = ("site", "site+member")
POLL_S = 0.05
TARGETS = {"site_p99_s": 12, "site+member_p99_s": 15}


class Members:
    """Fast reads of the members' own APIs: one HTTPS GET per member per poll."""

    def __init__(self, world: sites.World) -> None:
        launcher = world.sandbox.launcher
        self.world = world
        self.clients = {
            name: httpx.Client(base_url=world.sandbox.server(name), verify=launcher.tls_context(), timeout=2,
                               headers={"Authorization": f"Bearer {launcher.admin_token}"})
            for name in world.sandbox.member_names
        }

    def _items(self, name: str, api: str, plural: str, uid: str) -> list[dict[str, Any]]:
        reply = self.clients[name].get(f"{api}/namespaces/{members.WORKLOAD_NAMESPACE}/{plural}",
                                       params={"labelSelector": f"{UID_LABEL}={uid}"})
        reply.raise_for_status()
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    def desired(self, uid: str, skip: frozenset[str] = frozenset()) -> int:
        return sum(int(item["spec"]["replicas"]) for name in self.clients if name not in skip
                   for item in self._items(name, "/apis/apps/v1", "deployments", uid))

    def ready(self, uid: str, skip: frozenset[str] = frozenset()) -> dict[str, int]:
        counts = {}
        for name in self.clients:
            if name in skip:
                continue
            pods = [p for p in self._items(name, "/api/v1", "pods", uid) if not p["metadata"].get("deletionTimestamp") and any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in p.get("status", {}).get("conditions", []))]
            if pods:
                counts[name] = len(pods)
        return counts


def until(check: Any, started: float, what: str, limit: float = 120) -> float:
    while True:
        try:
            if check():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass  # a member killed in this trial: the check skips it from the next poll on
        if time.monotonic() - started > limit:
            raise TimeoutError(f"{what}: not within {limit:.0f} s")
        time.sleep(POLL_S)


def settle(world: sites.World, reader: Members, uid: str, replicas: int) -> None:
    """Every member Ready in the hub and the workload's pods Ready under its rules."""
    def members_ready() -> bool:
        items = world.hub(world.live_site()).get_json("memberclusters")["items"]
        return all(item.get("status", {}).get("phase") == "Ready" for item in items)
    eventually(members_ready, timeout=120, interval=0.5, what="every member Ready again")
    eventually(lambda: (lambda c: sum(c.values()) == replicas and not rule_violations(c, RULES))(reader.ready(uid)),
               timeout=120, interval=0.5, what=f"{replicas} replicas Ready")


def trial(world: sites.World, reader: Members, uid: str, kind: str, replicas: int) -> tuple[float, int]:
    """One trial; returns its time and the replica count it leaves."""
    leader = world.leader()
    survivor = next(n for n in range(world.count) if n != leader)
    victim = sorted(reader.ready(uid))[0]
    started = time.monotonic()
    hubsites.kill_site(world.sandbox.launcher, world.sandbox.state, world.sites, leader)
    try:
        if kind == "site":
            target = 3 if replicas == 2 else 2
            world.hub(survivor).run("apply", "-f", "-", stdin=json.dumps(aiworkload(NAME, target, RULES)))
            elapsed = until(lambda: reader.desired(uid) == target, started, "the new leader's first placement")
        else:
            target = replicas
            world.sandbox.kill(victim)
            skip = frozenset({victim})
            elapsed = until(lambda: sum(reader.ready(uid, skip).values()) == target, started,
                            "replicas Ready elsewhere")
    finally:
        if kind != "site":
            world.sandbox.heal(victim)
        world.heal(leader)
    settle(world, reader, uid, target)
    return elapsed, target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 trials of each kind (CI)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args = parser.parse_args()
    trials = 2 if args.quick else args.trials
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="samizdat-hub-failover-") as directory, \
            sites.started(Path(directory), members_count=3) as world:
        world.apply(aiworkload(NAME, 2, RULES))
        uid = world.uid(NAME)
        reader = Members(world)
        replicas = 2
        settle(world, reader, uid, replicas)
        for kind in args.kinds:
            seconds = []
            for _ in range(trials):
                elapsed, replicas = trial(world, reader, uid, kind, replicas)
                seconds.append(elapsed)
            results[kind] = stats.summary(seconds)
    print(json.dumps({
        "benchmark": "hub-failover",
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "targets": TARGETS,
        "results": results,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
