"""What the e2e suites do and check as a user would: apply AIWorkloads, read status, count real pods.

The rule check here is independent of the solver: it reads what the member clusters really run and
tests it against the workload's rules and the built-in alliance table.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from e2e.sandbox import members
from e2e.sandbox.layout import DEFAULT_MEMBERS
from e2e.sandbox.world import REPO_ROOT, Sandbox
from e2e.waiting import eventually
from samizdat.core import jurisdictions
from samizdat.core.leadership import fence

COUNTRY = {member.name: member.country for member in DEFAULT_MEMBERS}
PROVIDER = {member.name: member.provider for member in DEFAULT_MEMBERS}
UID_LABEL = "samizdat.io/workload-uid"


def aiworkload(name: str, replicas: int, placement: dict[str, Any], gpus: int = 1,
               image: str = "registry.invalid/llm-server:1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "samizdat.io/v1alpha1", "kind": "AIWorkload",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas, "mode": "Serve", "gpu": {"count": gpus}, "placement": placement,
            "model": {"digest": "sha256:" + "ab" * 32},
            "template": {"spec": {"containers": [{"name": "server", "image": image}]}},
            **spec,
        },
    }


def bare_deployment(name: str, suite: str, *, replicas: int = 0, gpus: int = 0,
                    namespace: str = members.WORKLOAD_NAMESPACE) -> dict[str, Any]:
    """A Deployment of no AIWorkload, for the suites that drive the member I/O layer directly, labelled
    with the suite that wrote it (`samizdat.io/test`)."""
    labels = {"app": name}
    container: dict[str, Any] = {"name": "server", "image": "registry.invalid/inference:1"}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"samizdat.io/test": suite}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    }


def apply_manifest(sandbox: Sandbox, manifest: dict[str, Any]) -> None:
    sandbox.kubectl("hub").run("apply", "-f", "-", stdin=json.dumps(manifest))


def delete_workload(sandbox: Sandbox, name: str) -> None:
    sandbox.kubectl("hub").run("delete", "aiworkload", name, "-n", "default", "--wait=false", "--ignore-not-found")


def get_workload(sandbox: Sandbox, name: str) -> dict[str, Any]:
    result: dict[str, Any] = sandbox.kubectl("hub").get_json("aiworkload", name, "-n", "default")
    return result


def placed_in(sandbox: Sandbox, name: str) -> set[str]:
    """The members the workload's status says hold its replicas."""
    return {p["cluster"] for p in get_workload(sandbox, name).get("status", {}).get("placements", [])}


def condition(workload: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in workload.get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return dict(item)
    return {}


def member_pods(sandbox: Sandbox, uid: str, *, running: bool = True, exclude: frozenset[str] = frozenset()
                ) -> dict[str, int]:
    """Pods of a workload per member, read from the members themselves (unreachable and `exclude`d
    ones skipped)."""
    counts: dict[str, int] = {}
    for member in sandbox.member_names:
        if sandbox.state.clusters[member].faults or member in exclude:
            continue
        result = sandbox.kubectl(member).run(
            "get", "pods", "-n", members.WORKLOAD_NAMESPACE, "-l", f"{UID_LABEL}={uid}", "-o", "json", check=False,
        )
        if result.returncode != 0:
            continue
        pods = [p for p in json.loads(result.stdout)["items"] if not p["metadata"].get("deletionTimestamp")]
        if running:
            pods = [p for p in pods if p["status"].get("phase") == "Running"]
        if pods:
            counts[member] = len(pods)
    return counts


def copies(sandbox: Sandbox, uid: str) -> dict[str, dict[str, Any]]:
    found = {}
    for member in sandbox.member_names:
        if sandbox.state.clusters[member].faults:
            continue
        result = sandbox.kubectl(member).run(
            "get", "deployments", "-n", members.WORKLOAD_NAMESPACE, "-l", f"{UID_LABEL}={uid}", "-o", "json",
            check=False,
        )
        if result.returncode == 0:
            items = json.loads(result.stdout)["items"]
            if items:
                found[member] = items[0]
    return found


@dataclass(frozen=True, slots=True)
class Broken:
    """One hard rule a placement breaks: the rule (its spec field) and how, in words."""

    rule: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def rule_violations(counts: dict[str, int], placement: dict[str, Any]) -> list[Broken]:
    """Every hard rule of `placement` checked against real per-member replica counts."""
    problems = []
    countries = Counter[str]()
    providers = Counter[str]()
    for member, n in counts.items():
        countries[COUNTRY[member]] += n
        providers[PROVIDER[member]] += n
    table = jurisdictions.alliance_table()
    limit = placement.get("maxPerJurisdiction")
    if limit is not None and any(n > limit for n in countries.values()):
        problems.append(Broken("maxPerJurisdiction", f"maxPerJurisdiction {limit}: {dict(countries)}"))
    if len(countries) < placement.get("minJurisdictions", 1):
        problems.append(Broken("minJurisdictions", f"minJurisdictions {placement['minJurisdictions']}: {sorted(countries)}"))
    for alliance in placement.get("deniedAlliances", []):
        inside = [c for c in countries if c in table[alliance]]
        if inside:
            problems.append(Broken("deniedAlliances", f"denied alliance {alliance}: {inside}"))
    limit = placement.get("maxPerAlliance")
    if limit is not None:
        for alliance, members_of in table.items():
            total = sum(n for c, n in countries.items() if c in members_of)
            if total > limit:
                problems.append(Broken("maxPerAlliance", f"maxPerAlliance {limit}: {alliance} has {total}"))
    limit = placement.get("maxPerCluster")
    if limit is not None and any(n > limit for n in counts.values()):
        problems.append(Broken("maxPerCluster", f"maxPerCluster {limit}: {counts}"))
    limit = placement.get("maxPerProvider")
    if limit is not None and any(n > limit for n in providers.values()):
        problems.append(Broken("maxPerProvider", f"maxPerProvider {limit}: {dict(providers)}"))
    denied = set(placement.get("deniedJurisdictions", []))
    if denied & set(countries):
        problems.append(Broken("deniedJurisdictions", f"deniedJurisdictions: {sorted(denied & set(countries))}"))
    return problems


def breaks_while_moving(counts: dict[str, int], placement: dict[str, Any]) -> list[Broken]:
    """The hard rules broken by counts taken while replicas may be moving: all but minJurisdictions, as
    fewer countries for the moments a replica moves is no rule broken."""
    return [v for v in rule_violations(counts, placement) if v.rule != "minJurisdictions"]


def wait_settled(sandbox: Sandbox, name: str, replicas: int, timeout: float = 90) -> dict[str, Any]:
    """Wait until the workload reports `replicas` ready with its rules satisfied, and return it."""
    def settled() -> dict[str, Any] | None:
        workload = get_workload(sandbox, name)
        status = workload.get("status", {})
        ok = (
            status.get("readyReplicas") == replicas
            and condition(workload, "RulesSatisfied").get("status") == "True"
            and status.get("observedGeneration") == workload["metadata"]["generation"]
        )
        return workload if ok else None

    return eventually(settled, timeout=timeout, what=f"{name} settled with {replicas} ready")


class StatusSampler(threading.Thread):
    """Reads the workload's status every 0.3 s and records every moment a rule or count was broken."""

    def __init__(self, sandbox: Sandbox, name: str, rules: dict[str, Any], replicas: int) -> None:
        super().__init__(daemon=True)
        self.sandbox, self.name, self.rules, self.replicas = sandbox, name, rules, replicas
        self.problems: list[str] = []
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                status = get_workload(self.sandbox, self.name).get("status", {})
            except subprocess.CalledProcessError:  # the hub itself may be briefly busy
                continue
            counts = {p["cluster"]: p["replicas"] for p in status.get("placements", [])}
            if sum(counts.values()) > self.replicas:
                self.problems.append(f"{sum(counts.values())} replicas counted: {counts}")
            self.problems += [f"status placement {counts}: {v}" for v in breaks_while_moving(counts, self.rules)]
            self.samples += 1
            time.sleep(0.3)

    def stop(self) -> list[str]:
        self._halt.set()
        self.join(timeout=10)
        return self.problems


def wait_members_ready(sandbox: Sandbox, timeout: float = 120, *, only_sandbox: bool = False) -> None:
    """Wait until every MemberCluster is Ready (`only_sandbox`: every one of the sandbox's own members,
    for a test that registers one that never is)."""
    def all_ready() -> bool:
        items = sandbox.kubectl("hub").get_json("memberclusters")["items"]
        if only_sandbox:
            items = [item for item in items if item["metadata"]["name"] in sandbox.member_names]
        return all(item.get("status", {}).get("phase") == "Ready" for item in items)

    eventually(all_ready, timeout=timeout, what="every member Ready again")


def heal_and_remove(sandbox: Sandbox, name: str, uid: str) -> None:
    """After a scenario: heal every member it faulted, delete its workload, wait until no member holds
    a copy and every member is Ready again."""
    for member in sandbox.member_names:
        if sandbox.state.clusters[member].faults:
            sandbox.heal(member)
    sandbox.kubectl("hub").run("delete", "aiworkload", name, "-n", "default", "--wait=false")
    eventually(lambda: not copies(sandbox, uid), timeout=90, what="copies removed")
    wait_members_ready(sandbox)


def wait_running(sandbox: Sandbox, uid: str, replicas: int, timeout: float = 60,
                 exclude: frozenset[str] = frozenset()) -> dict[str, int]:
    """Wait until exactly `replicas` pods of the workload run across reachable members; return per member."""
    def counted() -> dict[str, int] | None:
        counts = member_pods(sandbox, uid, exclude=exclude)
        return counts if sum(counts.values()) == replicas else None

    return eventually(counted, timeout=timeout, what=f"{replicas} pods running")


def wait_condition(sandbox: Sandbox, name: str, kind: str, reason: str | None = None,
                   timeout: float = 60) -> dict[str, Any]:
    """Wait until the workload has condition `kind` (with `reason`, when given); return the workload."""
    def seen() -> dict[str, Any] | None:
        workload = get_workload(sandbox, name)
        found = condition(workload, kind)
        return workload if found and (reason is None or found.get("reason") == reason) else None

    return eventually(seen, timeout=timeout, what=f"{name} condition {kind} {reason or ''}")


def install_samizdat(sandbox: Sandbox) -> None:
    """What a user does before running samizdat: install the CRDs, register every member with
    `samizdat join` (members registered already, e.g. in a reused sandbox, are left as they are)."""
    kubectl = sandbox.kubectl("hub")
    kubectl.run("apply", "-f", str(REPO_ROOT / "crds"))
    kubectl.run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    registered = {item["metadata"]["name"] for item in kubectl.get_json("memberclusters")["items"]}
    sandbox.register(*(name for name in sandbox.member_names if name not in registered))


def fence_epoch(sandbox: Sandbox, member: str) -> int:
    """The member's fence epoch, read as its admin."""
    found = sandbox.kubectl(member).get_json("configmap", fence.FENCE_NAME, "-n", members.SYSTEM_NAMESPACE)
    return int(found["data"]["epoch"])


def set_fence_epoch(sandbox: Sandbox, member: str, epoch: int) -> None:
    """As the member's admin: any value (the fence's guard holds only samizdat's identity)."""
    sandbox.kubectl(member).run("patch", "configmap", fence.FENCE_NAME, "-n", members.SYSTEM_NAMESPACE,
                                "--type=merge", "-p", json.dumps({"data": {"epoch": str(epoch)}}))
