"""Compound faults on the sandbox: a seeded chaos run, judged by what the members really run.

A run is drawn whole from its seed (`draw`): workloads of 2–3 replicas with spread rules, some denying
the Five Eyes, and a schedule of faults every 10–20 s drawn from every action the sandbox has (kill,
partition, every censor action, heal), never more than `max_faulted` members faulted at once. `Chaos`
applies the workloads, plays the schedule, heals everything and waits for a quiet fleet, while a
sampler reads every reachable member's pods every 2 s (over HTTPS, with the admin's token) and the
hub's statuses beside them. `judge` turns the samples into a `Verdict`:

- a *shortfall* is a workload with fewer Running and Ready replicas of its own image than it asks
  for, counted in members that are up and have not locked samizdat out; while it lasts, the pure
  solver (`samizdat.core.placement`) is asked whether the members that are healthy by ground truth (not
  faulted, not quarantined by samizdat) have room for every replica under the workload's rules, from
  their real nodes and pods. Short with room for more than `ROOM_BOUND_S` in a row fails the run;
- a *limit broken* (every rule but the spread minimums) in what the members run fails the run unless
  it ends within `HEAL_BOUND_S` of a heal of a member involved (the fence's work);
- every `status.lastFailover` may last at most `FAILOVER_BOUND_S` beyond the time in it when, by the
  same ground truth, the workload was short and the healthy members had no room for it (a failover
  cannot end before capacity is back; samizdat's own `withoutRoomSeconds` is reported beside it), and
  the operator's RSS may grow by less than `RSS_GROWTH_BOUND` over the run.

The timeline (`Verdict.timeline`) lists every shortfall: which workload, since when, where its
replicas were, which members were faulted or not Ready to samizdat, and what its status said.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from e2e.sandbox import members as sandbox_members
from e2e.sandbox.layout import DEFAULT_MEMBERS
from e2e.sandbox.world import CENSOR_ACTIONS, Sandbox, rss_mib
from e2e.waiting import eventually
from e2e.workloads import UID_LABEL, aiworkload, rule_violations
from samizdat.core import inventory, jurisdictions, model, placement
from samizdat.core.placement import from_model

IMAGE = "registry.invalid/llm-server:1"
SAMPLE_S = 2.0
ROOM_BOUND_S = 30.0
HEAL_BOUND_S = 5.0
FAILOVER_BOUND_S = 15.0
RSS_GROWTH_BOUND = 0.20
QUIET_S = 90.0  # after the last heal, how long the fleet has to be whole again
FAULT_GAP_S = (10.0, 20.0)
# faults whose member's API does not answer: nothing can be read from it
UNREADABLE = frozenset({"kill", "partition"})
# faults after which the replicas still running there are not samizdat's to count any more
LOCKED_OUT = frozenset({"revoke-credentials", "delete-namespace"})
COUNTRY = {m.name: m.country for m in DEFAULT_MEMBERS}


# ----- the draw


@dataclass(frozen=True, slots=True)
class WorkloadPlan:
    name: str
    replicas: int
    gpus: int
    rules: Mapping[str, Any]

    def manifest(self) -> dict[str, Any]:
        # the default deadlines (spec.failover): what a user gets without asking
        return aiworkload(self.name, self.replicas, dict(self.rules), gpus=self.gpus, image=IMAGE)


@dataclass(frozen=True, slots=True)
class Fault:
    """One step of the schedule: at `at_s` after the start, `action` on `member`."""

    at_s: float
    action: str  # "kill", "partition", "heal", or a censor action
    member: str


@dataclass(frozen=True, slots=True)
class Plan:
    seed: int
    members: tuple[str, ...]
    workloads: tuple[WorkloadPlan, ...]
    faults: tuple[Fault, ...]
    duration_s: float


def _rules(rng: random.Random, replicas: int, countries: Mapping[str, set[str]]) -> dict[str, Any]:
    """Spread rules the whole fleet can meet: 2–3 countries, 1–2 per country, maybe no Five Eyes."""
    five_eyes = jurisdictions.alliance_table()["five-eyes"]
    deny = rng.random() < 0.3
    usable = [c for c in countries if not (deny and c in five_eyes)]
    most = rng.choice((1, 2))
    least = min(rng.choice((2, 3)), replicas, len(usable))
    if most * len(usable) < replicas:
        most = replicas
    rules: dict[str, Any] = {"minJurisdictions": least, "maxPerJurisdiction": most}
    if deny:
        rules["deniedAlliances"] = ["five-eyes"]
    return rules


def draw(seed: int, member_names: Sequence[str], duration_s: float, workloads: int = 10,
         max_faulted: int = 2) -> Plan:
    """The whole run from its seed: the same seed and members give the same workloads and faults."""
    rng = random.Random(seed)
    countries: dict[str, set[str]] = {}
    for name in member_names:
        countries.setdefault(COUNTRY[name], set()).add(name)
    plans = []
    for index in range(workloads):
        replicas = rng.choice((2, 3))
        plans.append(WorkloadPlan(f"chaos-{index:02d}", replicas, rng.choice((1, 1, 2, 4)),
                                  _rules(rng, replicas, countries)))
    faults: list[Fault] = []
    faulted: list[str] = []
    # the outages twice as often as each single censor action: they are what hits a member most
    actions = ("kill", "kill", "partition", "partition", *CENSOR_ACTIONS)
    at = rng.uniform(*FAULT_GAP_S)
    while at < duration_s:
        heal = bool(faulted) and (len(faulted) >= max_faulted or rng.random() < 0.4)
        if heal:
            member = rng.choice(sorted(faulted))
            faulted.remove(member)
            faults.append(Fault(round(at, 1), "heal", member))
        else:
            member = rng.choice([m for m in member_names if m not in faulted])
            faulted.append(member)
            faults.append(Fault(round(at, 1), rng.choice(actions), member))
        at += rng.uniform(*FAULT_GAP_S)
    return Plan(seed, tuple(member_names), tuple(plans), tuple(faults), duration_s)


# ----- what was seen


@dataclass(frozen=True, slots=True)
class WorkloadSample:
    ready: Mapping[str, int]  # member -> Running and Ready replicas of the workload's own image
    running: Mapping[str, int]  # member -> Running ones (Ready or not) outside quarantined censors: what
    # the limits are checked on
    status: str  # what samizdat's status said: its message and Degraded reason
    room: bool | None = None  # when short: whether healthy members had room under its rules


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the run began
    faulted: Mapping[str, str]  # member -> the fault the run holds it in
    phases: Mapping[str, str]  # member -> samizdat's phase, where not Ready
    workloads: Mapping[str, WorkloadSample]
    failovers: Mapping[str, Mapping[str, Any]]  # workload -> status.lastFailover


@dataclass(frozen=True, slots=True)
class Shortfall:
    workload: str
    since_s: float
    until_s: float | None  # None: still short when the run ended
    room_s: float  # the longest stretch of it while the fleet had room under the rules
    wanted: int
    at_start: WorkloadSample
    at_worst: WorkloadSample  # where the longest stretch with room began (else at the start)
    faulted: Mapping[str, str]
    phases: Mapping[str, str]

    @property
    def seconds(self) -> float:
        return (self.until_s if self.until_s is not None else float("inf")) - self.since_s

    def line(self) -> str:
        until = f"{self.until_s:6.1f}" if self.until_s is not None else "   end"
        worst = self.at_worst
        return (f"{self.since_s:6.1f}–{until}s {self.workload} short {self.seconds:5.1f}s (room {self.room_s:4.1f}s): "
                f"ready {dict(worst.ready)} of {self.wanted}; faulted {dict(self.faulted)}; "
                f"samizdat sees {dict(self.phases)}; status: {worst.status}")


@dataclass(frozen=True, slots=True)
class LimitBroken:
    workload: str
    since_s: float
    until_s: float
    running: Mapping[str, int]
    problems: tuple[str, ...]
    after_heal_s: float | None  # seconds from the last heal of a member involved, when there was one

    @property
    def excused(self) -> bool:
        """Broken only in the seconds after a heal, before the fence acts."""
        return self.after_heal_s is not None and self.until_s - (self.since_s - self.after_heal_s) <= HEAL_BOUND_S


@dataclass
class Verdict:
    shortfalls: list[Shortfall] = field(default_factory=list)
    limits: list[LimitBroken] = field(default_factory=list)
    failovers: list[dict[str, Any]] = field(default_factory=list)
    rss_mib: tuple[float, float] = (0.0, 0.0)
    whole_after_s: float | None = 0.0  # from the last heal until every workload was whole; None: never

    @property
    def rss_growth(self) -> float:
        before, after = self.rss_mib
        return (after - before) / before if before else 0.0

    def failures(self) -> list[str]:
        found = [f"short with room {s.room_s:.1f}s > {ROOM_BOUND_S:.0f}s: {s.line()}"
                 for s in self.shortfalls if s.room_s > ROOM_BOUND_S]
        found += [f"{b.workload} broke limits {b.since_s:.1f}–{b.until_s:.1f}s {dict(b.running)}: {b.problems} "
                  f"(heal {b.after_heal_s}s before)" for b in self.limits if not b.excused]
        found += [f"{f['workload']}: lastFailover {f['seconds']}s, {f['with_room_s']}s of it with room > "
                  f"{FAILOVER_BOUND_S:.0f}s ({f})" for f in self.failovers if f["with_room_s"] > FAILOVER_BOUND_S]
        if self.rss_growth >= RSS_GROWTH_BOUND:
            found.append(f"operator RSS grew {self.rss_growth:.0%}: {self.rss_mib}")
        if self.whole_after_s is None:
            found.append(f"not every workload whole within {QUIET_S:.0f}s after the last heal")
        return found

    def figures(self) -> dict[str, Any]:
        room = [s.room_s for s in self.shortfalls]
        heal = [b.until_s - (b.since_s - b.after_heal_s) for b in self.limits if b.after_heal_s is not None]
        return {
            "shortfalls": len(self.shortfalls),
            "longest_short_s": round(max((s.seconds for s in self.shortfalls), default=0.0), 1),
            "longest_short_with_room_s": round(max(room, default=0.0), 1),
            "limits_broken": len(self.limits),
            "longest_limit_after_heal_s": round(max(heal, default=0.0), 1),
            "limits_broken_unexcused": sum(1 for b in self.limits if not b.excused),
            "failovers": len(self.failovers),
            "max_failover_s": max((float(f["seconds"]) for f in self.failovers), default=0.0),
            "max_failover_with_room_s": max((f["with_room_s"] for f in self.failovers), default=0.0),
            "rss_mib": list(self.rss_mib), "rss_growth": round(self.rss_growth, 3),
            "whole_after_s": self.whole_after_s,
        }

    def timeline(self, faults: Sequence[dict[str, Any]]) -> str:
        events = [(f["t"], f"{f['t']:6.1f}s  FAULT {f['action']} {f['member']} ({f['took_s']:.1f}s)") for f in faults]
        events += [(s.since_s, "        " + s.line()) for s in self.shortfalls]
        events += [(b.since_s, f"{b.since_s:6.1f}s  LIMIT {b.workload} {dict(b.running)}: {'; '.join(b.problems)} "
                               f"({b.until_s - b.since_s:.1f}s, heal {b.after_heal_s}s before)") for b in self.limits]
        return "\n".join(line for _, line in sorted(events, key=lambda e: e[0]))


def _episodes(samples: Sequence[Sample], within: Callable[[Sample], bool]) -> list[tuple[int, int]]:
    """Runs of consecutive samples where `within` holds: (first index, index after the last)."""
    runs, start = [], None
    for index, sample in enumerate(samples):
        if within(sample) and start is None:
            start = index
        elif not within(sample) and start is not None:
            runs.append((start, index))
            start = None
    if start is not None:
        runs.append((start, len(samples)))
    return runs


def judge(samples: Sequence[Sample], plan: Plan, heals: Mapping[str, Sequence[float]],
          rss_mib: tuple[float, float], whole_after_s: float | None = 0.0,
          began: datetime = datetime.fromtimestamp(0, UTC)) -> Verdict:
    """The verdict on a run from its samples; `heals` gives, per member, when each heal finished, and
    `began` when the run's clock read 0 (a failover's status gives its start as a time of day)."""
    verdict = Verdict(rss_mib=rss_mib, whole_after_s=whole_after_s)
    wanted = {w.name: w for w in plan.workloads}
    present_by_name: dict[str, list[Sample]] = {}
    for name, spec in wanted.items():
        present = present_by_name[name] = [s for s in samples if name in s.workloads]

        def short(sample: Sample, name: str = name, replicas: int = spec.replicas) -> bool:
            return sum(sample.workloads[name].ready.values()) < replicas

        for first, after in _episodes(present, short):
            run = present[first:after]
            until = present[after].t if after < len(present) else None
            longest, worst = 0.0, run[0]
            for room_first, room_after in _episodes(run, lambda s, name=name: bool(s.workloads[name].room)):
                end = run[room_after].t if room_after < len(run) else (until if until is not None else run[-1].t)
                if end - run[room_first].t > longest:
                    longest, worst = end - run[room_first].t, run[room_first]
            verdict.shortfalls.append(Shortfall(
                name, run[0].t, until, round(longest, 1), spec.replicas, run[0].workloads[name],
                worst.workloads[name], worst.faulted, worst.phases,
            ))

        def broken(sample: Sample, name: str = name, rules: Mapping[str, Any] = spec.rules) -> bool:
            return bool(_limits(sample.workloads[name].running, rules))

        for first, after in _episodes(present, broken):
            run = present[first:after]
            involved = {m for s in run for m in s.workloads[name].running}
            healed = [t for m in involved for t in heals.get(m, ()) if t <= run[0].t]
            verdict.limits.append(LimitBroken(
                name, run[0].t, run[-1].t, run[0].workloads[name].running,
                tuple(_limits(run[0].workloads[name].running, spec.rules)),
                round(run[0].t - max(healed), 1) if healed else None,
            ))
    seen = set()
    for sample in samples:
        for name, failover in sample.failovers.items():
            key = (name, failover.get("time"))
            if key not in seen:
                seen.add(key)
                since = (datetime.fromisoformat(failover["time"]) - began).total_seconds()
                seconds = float(failover["seconds"])
                without = _without_room(present_by_name.get(name, []), name, since, since + seconds)
                verdict.failovers.append({"workload": name, **failover, "without_room_s": round(without, 1),
                                          "with_room_s": round(seconds - without, 1)})
    return verdict


def _without_room(present: Sequence[Sample], name: str, since: float, until: float) -> float:
    """Seconds between `since` and `until` in which the workload was short and the healthy members had no
    room for it, each sample standing for the time until the next."""
    return sum(max(0.0, min(after.t, until) - max(here.t, since))
               for here, after in zip(present, present[1:], strict=False) if here.workloads[name].room is False)


def _limits(running: Mapping[str, int], rules: Mapping[str, Any]) -> list[str]:
    """Every rule broken but the spread minimums (fewer countries while moving is no limit broken)."""
    return [str(v) for v in rule_violations(dict(running), dict(rules))
            if v.rule not in ("minJurisdictions", "minProviders")]


# ----- the run


class Chaos:
    """Plays a `Plan` on a running sandbox with samizdat's operator, and samples what happens."""

    def __init__(self, sandbox: Sandbox, plan: Plan, operator_pid: int, log: Callable[[str], None] = print) -> None:
        self.sandbox, self.plan, self.operator_pid, self.log = sandbox, plan, operator_pid, log
        self.faulted: dict[str, str] = {}
        self.heals: dict[str, list[float]] = {}
        self.done: list[dict[str, Any]] = []
        self.samples: list[Sample] = []
        self.uids: dict[str, str] = {}
        self.nodes: dict[str, list[dict[str, Any]]] = {}
        self._last_pods: dict[str, list[dict[str, Any]]] = {}
        self._halt = threading.Event()
        self._began = 0.0
        auth = {"Authorization": f"Bearer {sandbox.launcher.admin_token}"}
        tls = sandbox.launcher.tls_context()
        self.clients = {name: httpx.Client(base_url=sandbox.server(name), verify=tls, headers=auth, timeout=2.0)
                        for name in [*plan.members, "hub"]}
        self.models = {w.name: model.AIWorkload.model_validate(w.manifest()) for w in plan.workloads}
        self.alliances = jurisdictions.alliance_table()
        self.member_specs: dict[str, placement.MemberInfo] = {}

    # ----- reading

    def _get(self, cluster: str, path: str) -> list[dict[str, Any]] | None:
        try:
            reply = self.clients[cluster].get(path)
            reply.raise_for_status()
        except httpx.HTTPError:
            return None
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    def _pods(self) -> dict[str, list[dict[str, Any]]]:
        """Every readable member's pods in samizdat's namespace (the last good read for one that is
        merely slow to answer this time)."""
        readable = [m for m in self.plan.members if self.faulted.get(m) not in UNREADABLE]
        path = f"/api/v1/namespaces/{sandbox_members.WORKLOAD_NAMESPACE}/pods"
        with ThreadPoolExecutor(max_workers=len(readable) or 1) as pool:
            found = dict(zip(readable, pool.map(lambda m: self._get(m, path), readable), strict=True))
        for member, pods in found.items():
            if pods is None and member not in self.faulted and member in self._last_pods:
                found[member] = self._last_pods[member]
        self._last_pods.update({m: p for m, p in found.items() if p is not None})
        return {m: p for m, p in found.items() if p is not None}

    def sample(self) -> Sample:
        t = round(time.monotonic() - self._began, 1)
        faulted = dict(self.faulted)
        pods = self._pods()
        statuses = {w["metadata"]["name"]: w for w in self._get("hub", "/apis/samizdat.io/v1alpha1/namespaces/default"
                                                                        "/aiworkloads") or []}
        phases = {m["metadata"]["name"]: m.get("status", {}).get("phase", "?")
                  for m in self._get("hub", "/apis/samizdat.io/v1alpha1/memberclusters") or []}
        not_ready = {m: p for m, p in phases.items() if p != "Ready"}
        counted = {m: items for m, items in pods.items() if faulted.get(m) not in LOCKED_OUT}
        healthy = [m for m in counted if m not in faulted and phases.get(m) != "Quarantined"]
        # Copies a censoring member holds while samizdat has it quarantined are not samizdat's to stop
        # (they are fenced when it returns): they count as serving, not against the limits.
        hostage = {m for m in counted if m in faulted and phases.get(m) == "Quarantined"}
        workloads, failovers = {}, {}
        for plan in self.plan.workloads:
            uid = self.uids.get(plan.name, "")
            ready, running = _count(counted, uid)
            running = {m: n for m, n in running.items() if m not in hostage}
            body = statuses.get(plan.name, {})
            status = body.get("status", {})
            degraded = next((c for c in status.get("conditions", []) if c["type"] == "Degraded"), {})
            said = f"{status.get('message', '')} [{degraded.get('reason', '')}: {degraded.get('message', '')}]"
            room = None
            if sum(ready.values()) < plan.replicas:
                room = self._room(plan.name, {m: n for m, n in running.items() if m in healthy}, healthy, pods)
            workloads[plan.name] = WorkloadSample(ready, running, said, room)
            if status.get("lastFailover"):
                failovers[plan.name] = status["lastFailover"]
        return Sample(t, faulted, not_ready, workloads, failovers)

    def _room(self, name: str, current: Mapping[str, int], healthy: Sequence[str],
              pods: Mapping[str, list[dict[str, Any]]]) -> bool:
        """Whether the healthy members, as their nodes and pods really are, have room for every replica
        of the workload under its rules, keeping what runs where it runs (the pure solver decides)."""
        members = tuple(
            _with_shapes(self.member_specs[m], inventory.node_shapes(self.nodes[m], pods[m])) for m in sorted(healthy)
        )
        request = from_model.to_request(self.models[name], current)
        decision = placement.solve(placement.Snapshot(members, self.alliances), request)
        return decision.feasible

    def _sampling(self) -> None:
        while not self._halt.is_set():
            started = time.monotonic()
            try:
                self.samples.append(self.sample())
            except Exception as error:  # noqa: BLE001 - a sampler that dies would hide every later shortfall
                self.log(f"sample failed: {error!r}")
            self._halt.wait(max(0.0, SAMPLE_S - (time.monotonic() - started)))

    # ----- acting

    def _inflict(self, fault: Fault) -> None:
        began = time.monotonic()
        member, action = fault.member, fault.action
        if action == "heal":
            held = self.faulted.get(member)
            if self.sandbox.state.clusters[member].faults:
                self.sandbox.heal(member)
            if held == "delete-namespace":
                eventually(lambda: self.sandbox.kubectl(member).run(
                    "get", "ns", sandbox_members.WORKLOAD_NAMESPACE, check=False).returncode != 0, 120,
                    interval=1.0, what=f"namespace gone from {member}")
            if held in LOCKED_OUT:
                self.sandbox.register(member)  # the member's admin relents: samizdat is let in again
            self.faulted.pop(member, None)
            self.heals.setdefault(member, []).append(round(time.monotonic() - self._began, 1))
        else:
            self.faulted[member] = action
            if action == "kill":
                self.sandbox.kill(member)
            elif action == "partition":
                self.sandbox.partition(member)
            else:
                self.sandbox.censor(member, action, image=IMAGE if action == "block-image" else None)
        took = time.monotonic() - began
        record = {"t": round(began - self._began, 1), "action": action, "member": member, "took_s": round(took, 1)}
        self.done.append(record)
        self.log(f"{record['t']:7.1f}s {action} {member} ({took:.1f}s)")

    def run(self) -> Verdict:
        """Apply the workloads, play the faults, heal everything, wait for a quiet fleet; the verdict."""
        hub = self.sandbox.kubectl("hub")
        for name in self.plan.members:
            self.nodes[name] = self._get(name, "/api/v1/nodes") or []
        for spec in self._get("hub", "/apis/samizdat.io/v1alpha1/memberclusters") or []:
            if spec["metadata"]["name"] in self.plan.members:
                self.member_specs[spec["metadata"]["name"]] = from_model.to_member(
                    model.MemberCluster.model_validate(spec), datetime.now(UTC))
        hub.apply([w.manifest() for w in self.plan.workloads])
        self.uids = {w["metadata"]["name"]: w["metadata"]["uid"]
                     for w in hub.get_json("aiworkloads", "-n", "default")["items"]}
        self._began = time.monotonic()
        eventually(lambda: self._whole(self.sample()), 180, interval=1.0, what="every workload running under its rules")
        rss_before = rss_mib(self.operator_pid)
        self._began, began = time.monotonic(), datetime.now(UTC)
        sampler = threading.Thread(target=self._sampling, daemon=True)
        sampler.start()
        try:
            for fault in self.plan.faults:
                self._halt.wait(max(0.0, fault.at_s - (time.monotonic() - self._began)))
                self._inflict(fault)
            self._halt.wait(max(0.0, self.plan.duration_s - (time.monotonic() - self._began)))
        finally:
            for member in sorted(self.faulted):
                self._inflict(Fault(0, "heal", member))
        quiet, seen = time.monotonic(), len(self.samples)
        whole_after_s = None
        while time.monotonic() - quiet < QUIET_S:
            if len(self.samples) > seen and self._whole(self.samples[-1]):
                whole_after_s = round(time.monotonic() - quiet, 1)
                break
            time.sleep(SAMPLE_S / 4)
        time.sleep(SAMPLE_S * 2)
        self._halt.set()
        sampler.join(timeout=30)
        rss_after = rss_mib(self.operator_pid)
        return judge(self.samples, self.plan, self.heals, (rss_before, rss_after), whole_after_s, began)

    def _whole(self, sample: Sample) -> bool:
        return all(sum(w.ready.values()) >= p.replicas and not _limits(w.running, p.rules)
                   for p in self.plan.workloads if (w := sample.workloads.get(p.name)))

    def remove(self) -> None:
        """Delete the run's workloads and wait until their pods are gone."""
        names = [w.name for w in self.plan.workloads]
        self.sandbox.kubectl("hub").run("delete", "aiworkload", *names, "-n", "default", "--wait=false",
                                        "--ignore-not-found")
        eventually(lambda: not any(
            p["metadata"].get("labels", {}).get(UID_LABEL) in self.uids.values()
            for items in self._pods().values() for p in items
        ), 120, interval=1.0, what="chaos pods removed")
        # the next test starts from a fleet samizdat sees whole again (quarantines served, fences done)
        eventually(lambda: all(m.get("status", {}).get("phase") == "Ready"
                               for m in self._get("hub", "/apis/samizdat.io/v1alpha1/memberclusters") or [{}]),
                   120, interval=1.0, what="every member Ready again")
        for client in self.clients.values():
            client.close()

    def report(self, verdict: Verdict) -> dict[str, Any]:
        return {
            "seed": self.plan.seed, "members": list(self.plan.members), "duration_s": self.plan.duration_s,
            "workloads": [asdict(w) for w in self.plan.workloads], "faults": self.done,
            "samples": len(self.samples), "figures": verdict.figures(), "failures": verdict.failures(),
            "shortfalls": [s.line() for s in verdict.shortfalls],
            "failovers": verdict.failovers,
        }


def _count(pods: Mapping[str, list[dict[str, Any]]], uid: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per member: the workload's Running and Ready pods of its own image, and its Running ones."""
    ready: dict[str, int] = {}
    running: dict[str, int] = {}
    for member, items in pods.items():
        for pod in items:
            if pod["metadata"].get("labels", {}).get(UID_LABEL) != uid or pod["metadata"].get("deletionTimestamp"):
                continue
            images = {c.get("image") for c in pod["spec"].get("containers", [])}
            if pod["status"].get("phase") != "Running" or images != {IMAGE}:
                continue
            running[member] = running.get(member, 0) + 1
            if any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])):
                ready[member] = ready.get(member, 0) + 1
    return ready, running


def _with_shapes(member: placement.MemberInfo, shapes: tuple[placement.NodeShape, ...]) -> placement.MemberInfo:
    return dataclasses.replace(member, shapes=shapes, unschedulable_reason=None)


def dump(path: Path, report: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2, default=str))
