"""Far members kept on a bad link while nothing is wrong with them: what the e2e suite
(`e2e/test_far_members.py`) and the bench (`bench/links/run.py`) both measure. Ground truth is read
from the members themselves (pod UIDs, through their admins' direct links); the operator's own count
of phase changes comes from its metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from e2e.operator import OperatorProcess
from e2e.sandbox import layout, members
from e2e.sandbox.world import Sandbox
from e2e.workloads import UID_LABEL, aiworkload, wait_settled

PHASES = ("Suspect", "Down", "Quarantined")


def running_pods(sandbox: Sandbox, uid: str) -> dict[str, frozenset[str]]:
    """UIDs of the workload's Running pods in each member, from the members' own API servers."""
    found = {}
    for name in sandbox.member_names:
        pods = sandbox.kubectl(name).get_json("pods", "-n", members.WORKLOAD_NAMESPACE, "-l", f"{UID_LABEL}={uid}")
        found[name] = frozenset(p["metadata"]["uid"] for p in pods["items"] if p["status"].get("phase") == "Running")
    return found


def phase_changes(operator: OperatorProcess, name: str) -> dict[str, float]:
    """How often the operator has put the member into each of PHASES since it started."""
    return {phase: operator.metric("samizdat_member_phase_changes_total", member=name, phase=phase) or 0.0
            for phase in PHASES}


def member_status(sandbox: Sandbox, name: str) -> dict[str, Any]:
    status: dict[str, Any] = sandbox.kubectl("hub").get_json("membercluster", name).get("status", {})
    return status


def pinned_workload(name: str, far: Sequence[str]) -> dict[str, Any]:
    """One replica in each far member: their countries only, one a country."""
    countries = [layout.by_name(member).country for member in far]
    return aiworkload(name, len(far), {"allowedJurisdictions": countries, "minJurisdictions": len(far),
                                       "maxPerJurisdiction": 1})


def keep_on_link(sandbox: Sandbox, operator: OperatorProcess, far: Sequence[str], profile: str, minutes: float,
                 sample_s: float = 10.0, name: str = "far-on-link") -> dict[str, Any]:
    """Place one replica on each far member, put `profile` on their links for `minutes`, sampling the
    members' Running pods every `sample_s`; the report: phase changes per member, samples whose pods
    differed from the placement (moved), and each far member's link as its status shows it. The links
    are healed and the workload deleted afterwards."""
    sandbox.kubectl("hub").run("apply", "-f", "-", stdin=json.dumps(pinned_workload(name, far)))
    try:
        uid = wait_settled(sandbox, name, len(far))["metadata"]["uid"]
        placed = running_pods(sandbox, uid)
        if not all(len(placed[member]) == 1 for member in far):
            raise AssertionError(f"not one replica on each far member: {placed}")
        before = {member: phase_changes(operator, member) for member in far}
        for member in far:
            sandbox.links.degrade(member, profile)
        samples, moved = 0, []
        ends = time.monotonic() + minutes * 60
        while time.monotonic() < ends:
            time.sleep(sample_s)
            now = running_pods(sandbox, uid)
            samples += 1
            if now != placed:
                moved.append({m: sorted(p) for m, p in now.items() if p != placed[m]})
        links = {member: member_status(sandbox, member).get("link", {}) for member in far}
        after = {member: phase_changes(operator, member) for member in far}
        return {"profile": profile, "minutes": minutes, "far_members": list(far), "samples": samples,
                "phase_changes": {m: {p: after[m][p] - before[m][p] for p in PHASES} for m in far},
                "samples_with_pods_moved": len(moved), "first_moves": moved[:3], "links": links}
    finally:
        for member in far:
            sandbox.links.heal(member)
        sandbox.kubectl("hub").run("delete", "aiworkload", name, "-n", "default", "--wait=false", check=False)
