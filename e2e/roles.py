"""Ground truth of a served workload's roles: what every reachable member runs, read over HTTPS.

Warm standbys are judged by the members, not by samizdat's status: which pods of the workload live in
each member, which are Ready, and which carry the serving or the standby role label. `MemberPods` reads
every reachable member at once (one GET each, no kubectl process); `RoleSampler` reads them, and the
workload's status in the hub, every quarter second, and keeps the record for the checks a test makes
afterwards: rules held at every sample, status never counting a standby as serving, endpoints never
listing a lost member.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from e2e.sandbox import members
from e2e.sandbox.world import LINK_FAULT, Sandbox
from e2e.workloads import COUNTRY, UID_LABEL, breaks_while_moving

ROLE_LABEL = "samizdat.io/role"
SERVING = "serving"
STANDBY = "standby"
# How far a status may lag the members: a role change is in status after one watch event and one
# reconcile, well under this on the sandbox.
STATUS_LAG_S = 3.0


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def role(pod: dict[str, Any]) -> str:
    return str(pod["metadata"].get("labels", {}).get(ROLE_LABEL, ""))


def ready_in_role(found: dict[str, list[dict[str, Any]]], wanted: str) -> dict[str, str]:
    """Ready pods of one role: pod UID -> member."""
    return {p["metadata"]["uid"]: member for member, items in found.items() for p in items
            if ready(p) and role(p) == wanted}


class MemberPods:
    """Fast reads of one workload's live pods in every reachable member, all members at once."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.clients = {name: httpx.Client(
            base_url=sandbox.server(name), verify=sandbox.launcher.tls_context(), timeout=2,
            headers={"Authorization": f"Bearer {sandbox.launcher.admin_token}"},
        ) for name in sandbox.member_names}
        self.pool = ThreadPoolExecutor(len(self.clients))

    def _pods(self, name: str, uid: str) -> list[dict[str, Any]] | None:
        try:
            reply = self.clients[name].get(f"/api/v1/namespaces/{members.WORKLOAD_NAMESPACE}/pods",
                                           params={"labelSelector": f"{UID_LABEL}={uid}"})
            reply.raise_for_status()
        except httpx.HTTPError:
            return None
        return [p for p in reply.json().get("items", []) if not p["metadata"].get("deletionTimestamp")]

    def read(self, uid: str) -> dict[str, list[dict[str, Any]]]:
        """Live pods per reachable member; a member that does not answer is left out."""
        # Read directly, not through the member's link: only faults of the member itself hide it.
        names = [n for n in self.clients
                 if all(f.startswith(LINK_FAULT) for f in self.sandbox.state.clusters[n].faults)]
        found = self.pool.map(lambda n: self._pods(n, uid), names)
        return {name: pods for name, pods in zip(names, found, strict=True) if pods is not None}

    def close(self) -> None:
        self.pool.shutdown()
        for client in self.clients.values():
            client.close()


@dataclass(frozen=True)
class Sample:
    """One moment: the members' pods (read before and after the status) and the hub's status."""

    began: float  # monotonic, before the first read
    at: float  # monotonic, once all three were read
    before: dict[str, list[dict[str, Any]]]
    status: dict[str, Any]
    after: dict[str, list[dict[str, Any]]]

    def serving(self) -> dict[str, str]:
        return ready_in_role(self.after, SERVING)


def _by_member(pods: dict[str, list[dict[str, Any]]], wanted: str) -> Counter[str]:
    return Counter(ready_in_role(pods, wanted).values())


class RoleSampler(threading.Thread):
    """Samples the members and the workload's status until stopped; `problems` judges the record."""

    def __init__(self, sandbox: Sandbox, workload: str, uid: str, rules: dict[str, Any], placed: int) -> None:
        super().__init__(daemon=True)
        self.sandbox, self.workload, self.uid, self.rules = sandbox, workload, uid, rules
        self.placed = placed  # serving + standby replicas
        self.samples: list[Sample] = []
        self.pods = MemberPods(sandbox)
        self.hub = httpx.Client(
            base_url=sandbox.server("hub"), verify=sandbox.launcher.tls_context(), timeout=5,
            headers={"Authorization": f"Bearer {sandbox.launcher.admin_token}"},
        )
        self._halt = threading.Event()

    def run(self) -> None:
        path = f"/apis/samizdat.io/v1alpha1/namespaces/default/aiworkloads/{self.workload}"
        while not self._halt.is_set():
            began = time.monotonic()
            before = self.pods.read(self.uid)
            try:
                status = self.hub.get(path).json().get("status", {})
            except (httpx.HTTPError, ValueError):  # the hub itself may be briefly busy
                continue
            after = self.pods.read(self.uid)
            self.samples.append(Sample(began, time.monotonic(), before, status, after))
            time.sleep(0.25)

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        self.pods.close()
        self.hub.close()

    def problems(self, victim: str | None = None, killed: float | None = None,
                 back: float | None = None) -> list[str]:
        """Every moment the record breaks a rule. Ground truth: at most `placed` live pods, none beyond
        maxPerCluster in a member, serving pods Ready in at least minJurisdictions countries except
        while a killed member's are replaced (from `killed` to `back`). Status: a member's serving
        (standby) count never exceeds what the member really had Ready in that role within the last
        STATUS_LAG_S, so a standby is never counted as serving; once serving capacity is back no
        endpoint names the `victim`, and before then only a member that served does."""
        problems: list[str] = []
        origin = killed if killed is not None else (self.samples[0].at if self.samples else 0.0)
        for sample in self.samples:
            when = f"at {sample.at - origin:+.2f}s"
            for pods in (sample.before, sample.after):
                live = {member: len(items) for member, items in pods.items() if items}
                if sum(live.values()) > self.placed:
                    problems.append(f"{when}: {sum(live.values())} live pods {live}")
                problems += [f"{when}: pods {live}: {v}" for v in breaks_while_moving(live, self.rules)]
            moving = killed is not None and killed <= sample.at and (back is None or sample.at <= back)
            countries = {COUNTRY[member] for member in sample.serving().values()}
            if not moving and len(countries) < self.rules.get("minJurisdictions", 1):
                problems.append(f"{when}: serving pods Ready in {sorted(countries)} only")
            problems += self._status_problems(sample, when, victim, back)
        return list(dict.fromkeys(problems))  # the reads before and after a status often agree

    def _status_problems(self, sample: Sample, when: str, victim: str | None, back: float | None) -> list[str]:
        recent = [s for s in self.samples if sample.at - STATUS_LAG_S <= s.at <= sample.at]
        problems = []
        for wanted, field_name in ((SERVING, "servingReplicas"), (STANDBY, "standbyReplicas")):
            seen: Counter[str] = Counter()
            for earlier in recent:
                for pods in (earlier.before, earlier.after):
                    seen |= _by_member(pods, wanted)
            for placement in sample.status.get("placements", []):
                member, counted = placement["cluster"], placement.get(field_name, 0)
                if member in sample.after and counted > seen[member]:
                    problems.append(f"{when}: status counts {counted} {wanted} in {member}, "
                                    f"which had at most {seen[member]} Ready {wanted}")
        endpoints = [e["cluster"] for e in sample.status.get("endpoints", [])]
        if victim is not None and back is not None and sample.at > back and victim in endpoints:
            problems.append(f"{when}: endpoints list the lost {victim} after serving capacity was back")
        served = set().union(*(set(s.serving().values()) | set(ready_in_role(s.before, SERVING).values())
                               for s in recent)) | ({victim} if victim and (back is None or sample.at <= back)
                                                    else set())
        problems += [f"{when}: endpoint {member} had no Ready serving pod" for member in endpoints
                     if member not in served]
        return problems
