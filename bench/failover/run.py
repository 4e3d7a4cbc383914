"""Failover benchmark on the real sandbox: time from a fault to every replica Ready elsewhere (for the
start-up cases: to full serving capacity Ready again).

Method: one AIWorkload of 3 replicas × 1 GPU in 3 countries (minJurisdictions 3, maxPerJurisdiction 1)
on a hub + 6 member sandbox with the operator running. Each trial picks a member that holds a replica,
records the time, inflicts the fault, and polls every 20 ms, over HTTPS and not through kubectl, the
other members' pods of the workload (read directly, not through their links) until 3 of them are Ready:
ground truth, the figure reported. It also notes when the hub's AIWorkload status first reports 3
replicas ready with none on that member (`hub_status`). Then the member is healed and the next trial
waits until every member is Ready again and the members hold exactly 3 live pods of the workload, all
Ready (the healed member's stale copy fenced away: `healed_clean`, seconds from the heal). Prints JSON.

Start-up cases (`--cases cold warm`): models take LOAD_S to load (the sandbox's
`sandbox.samizdat.io/ready-after` annotation). One AIWorkload of 2 serving replicas (minJurisdictions 2,
maxPerJurisdiction 1), without standbys (cold) or with `failover.standbyReplicas: 1` (warm). Each trial kills
a member holding a Ready serving pod and polls every reachable member's pods every 50 ms (HTTPS, in
parallel) until 2 pods labelled serving are Ready outside it: ground truth, not samizdat's status. Then
the member is healed and the next trial waits until the workload has its full complement Ready again.

Far members (`--link wan`): the sandbox runs its links (Toxiproxy, docs/links.md) and every member's
link carries the profile throughout, so the victim is always a far member; its fault is a kill, a
SIGSTOP (`partition`) or a link gone half-open (connections stay open, bytes vanish). After each trial
the victim's link gets the profile back.

    python bench/failover/run.py --trials 10            # kill, partition and hostile delete, 10 each
    python bench/failover/run.py --trials 10 --faults --cases cold warm   # start-up cases only
    python bench/failover/run.py --trials 10 --link wan --faults kill partition half-open
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stats  # noqa: E402
from e2e.operator import OperatorProcess  # noqa: E402
from e2e.roles import SERVING, STANDBY, MemberPods, ready, ready_in_role  # noqa: E402
from e2e.sandbox import links, stages  # noqa: E402
from e2e.sandbox.world import Sandbox  # noqa: E402
from e2e.waiting import eventually  # noqa: E402
from e2e.workloads import aiworkload, install_samizdat, wait_settled  # noqa: E402

NAME = "bench-failover"
REPLICAS = 3
RULES = {"minJurisdictions": 3, "maxPerJurisdiction": 1}
FAULTS = ("kill", "partition", "delete", "half-open")  # half-open: only with --link
CASES = {"cold": 0, "warm": 1}  # standby replicas
LOAD_S = 20
SERVING_REPLICAS = 2


class Hub:
    """Fast reads of the hub: one HTTPS GET per poll instead of a kubectl process."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.client = httpx.Client(
            base_url=sandbox.server("hub"), verify=sandbox.launcher.tls_context(), timeout=5,
            headers={"Authorization": f"Bearer {sandbox.launcher.admin_token}"},
        )

    def workload(self) -> dict[str, Any]:
        reply = self.client.get(f"/apis/samizdat.io/v1alpha1/namespaces/default/aiworkloads/{NAME}")
        reply.raise_for_status()
        result: dict[str, Any] = reply.json()
        return result

    def members_ready(self) -> bool:
        items = self.client.get("/apis/samizdat.io/v1alpha1/memberclusters").json()["items"]
        return all(item.get("status", {}).get("phase") == "Ready" for item in items)


def complete(members: MemberPods, uid: str, standby: int) -> bool:
    found = members.read(uid)
    return len(ready_in_role(found, SERVING)) == SERVING_REPLICAS and len(ready_in_role(found, STANDBY)) == standby


def startup_trial(sandbox: Sandbox, hub: Hub, members: MemberPods, uid: str, standby: int) -> float:
    victim = sorted(ready_in_role(members.read(uid), SERVING).values())[0]
    started = time.monotonic()
    sandbox.kill(victim)
    while len(ready_in_role(members.read(uid), SERVING)) < SERVING_REPLICAS:
        if time.monotonic() - started > 120:
            raise TimeoutError(f"kill of {victim}: serving capacity not back within 120 s")
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    sandbox.heal(victim)
    eventually(hub.members_ready, timeout=120, interval=0.25, what="every member Ready again")
    eventually(functools.partial(complete, members, uid, standby), timeout=LOAD_S + 90, interval=0.5,
               what="serving and standby replicas Ready again")
    return elapsed


def loading_workload(name: str, standby: int) -> dict[str, Any]:
    template = {"metadata": {"annotations": {stages.READY_AFTER_ANNOTATION: f"{LOAD_S}s"}},
                "spec": {"containers": [{"name": "server", "image": "registry.invalid/llm-server:1",
                                         "ports": [{"name": "http", "containerPort": 8000}]}]}}
    return aiworkload(name, SERVING_REPLICAS, {"minJurisdictions": 2, "maxPerJurisdiction": 1}, template=template,
                      failover={"standbyReplicas": standby})


def placements(workload: dict[str, Any]) -> dict[str, int]:
    return {p["cluster"]: p["replicas"] for p in workload.get("status", {}).get("placements", [])}


def ready_elsewhere(members: MemberPods, uid: str, victim: str) -> int:
    """Ready pods of the workload in the members other than `victim`, as those members say."""
    return sum(ready(pod) for member, pods in members.read(uid).items() if member != victim for pod in pods)


def clean(members: MemberPods, uid: str) -> bool:
    """The members hold exactly REPLICAS live pods of the workload, every one Ready: nothing stale."""
    pods = [pod for found in members.read(uid).values() for pod in found]
    return len(pods) == REPLICAS and all(ready(pod) for pod in pods)


def trial(sandbox: Sandbox, hub: Hub, members: MemberPods, fault: str, link: str | None
          ) -> tuple[float, float, float]:
    """One fault: seconds until REPLICAS pods are Ready outside the victim, until the hub's status says
    so, and from the heal until the members hold nothing stale."""
    workload = hub.workload()
    uid, victim = workload["metadata"]["uid"], sorted(placements(workload))[0]
    started = time.monotonic()
    if fault == "kill":
        sandbox.kill(victim)
    elif fault == "partition":
        sandbox.partition(victim)
    elif fault == "half-open":
        sandbox.degrade(victim, "half-open")
    else:
        sandbox.censor(victim, "delete")
    in_members = in_status = None
    while in_members is None or in_status is None:
        now = time.monotonic() - started
        if in_members is None and ready_elsewhere(members, uid, victim) >= REPLICAS:
            in_members = now
        status = hub.workload().get("status", {})
        if in_status is None and status.get("readyReplicas") == REPLICAS and victim not in placements(
                {"status": status}):
            in_status = now
        if now > 120:
            raise TimeoutError(f"{fault} of {victim}: no failover within 120 s")
        time.sleep(0.02)
    healed = time.monotonic()
    if fault != "delete":
        sandbox.heal(victim)
    if link is not None:
        sandbox.degrade(victim, link)
    eventually(hub.members_ready, timeout=120, interval=0.25, what="every member Ready again")
    wait_settled(sandbox, NAME, REPLICAS, timeout=60)
    eventually(functools.partial(clean, members, uid), timeout=90, interval=0.1, what="no stale pods")
    return in_members, in_status, time.monotonic() - healed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--faults", nargs="*", choices=FAULTS, default=list(FAULTS))
    parser.add_argument("--cases", nargs="*", choices=list(CASES), default=[],
                        help="start-up cases: a member killed under models that load for LOAD_S")
    parser.add_argument("--link", choices=links.PROFILES, default=None,
                        help="every member's link carries this profile (the sandbox runs its links)")
    args = parser.parse_args()
    if "half-open" in args.faults and args.link is None:
        args.faults.remove("half-open")  # a link fault: only where there are links
    sandbox = Sandbox()
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as cleanup:
        if not sandbox.running():
            # Stopped on any way out, a failed start included: a bench never leaves a sandbox behind.
            cleanup.callback(sandbox.down)
            sandbox.up(6, links=args.link is not None)
        elif args.link is not None and not sandbox.links.running():
            parser.error("--link needs a sandbox with links: `python -m e2e.sandbox up --links`, or none running")
        install_samizdat(sandbox)
        for member in sandbox.member_names if args.link is not None else ():
            sandbox.degrade(member, args.link)
        kubectl = sandbox.kubectl("hub")
        operator = OperatorProcess(sandbox, quarantine_seconds=5)
        operator.start()
        cleanup.callback(operator.stop)
        cleanup.callback(kubectl.run, "delete", "aiworkload", NAME, "-n", "default", "--wait=false", check=False)
        hub = Hub(sandbox)
        # a workload left by an interrupted run must be gone (finalizer included) before we start
        kubectl.run("delete", "aiworkload", NAME, "-n", "default", "--ignore-not-found", "--timeout=60s")
        members = MemberPods(sandbox)
        cleanup.callback(members.close)
        if args.faults:
            kubectl.apply([aiworkload(NAME, REPLICAS, RULES)])
            wait_settled(sandbox, NAME, REPLICAS, timeout=120)
        for fault in args.faults:
            in_members, in_status, healed_clean = zip(*(trial(sandbox, hub, members, fault, args.link)
                                                        for _ in range(args.trials)), strict=True)
            results[fault] = {**stats.summary(list(in_members)), "hub_status": stats.summary(list(in_status)),
                              "healed_clean": stats.summary(list(healed_clean))}
        if args.cases:
            kubectl.run("delete", "aiworkload", NAME, "-n", "default", "--ignore-not-found", "--timeout=60s")
        for case in args.cases:
            standby, name = CASES[case], f"{NAME}-{case}"
            cleanup.callback(kubectl.run, "delete", "aiworkload", name, "-n", "default", "--wait=false", check=False)
            kubectl.apply([loading_workload(name, standby)])
            uid = kubectl.get_json("aiworkload", name, "-n", "default")["metadata"]["uid"]
            eventually(functools.partial(complete, members, uid, standby), timeout=LOAD_S + 90, interval=0.5,
                       what=f"{case}: replicas Ready")
            results[case] = {"load_s": LOAD_S, "standby_replicas": standby,
                             **stats.summary([startup_trial(sandbox, hub, members, uid, standby)
                                        for _ in range(args.trials)])}
            kubectl.run("delete", "aiworkload", name, "-n", "default", "--timeout=90s")
    print(json.dumps({
        "benchmark": "failover",
        "method": " ".join(__doc__.split("\n\n")[1:3 if args.cases else 2]).replace("\n", " "),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "link": args.link or "direct (loopback)",
        "targets": {"kill_p50_s": 5, "kill_p99_s": 10, "delete_p99_s": 2, "cold_p50_min_s": LOAD_S, "warm_p99_s": 6},
        "results": results,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
