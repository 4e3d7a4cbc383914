"""The fleet with the capacity ledger and start deadlines wired in, over members fed through their doors.

No Kubernetes API is faked: each member is samizdat's own `Member`, its loops not started, fed listings,
watch events and probe outcomes as its informers would; its two writes are recorded instead of sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from samizdat.core import manifests, model
from samizdat.remote.clusters import resources
from samizdat.remote.clusters.client import ClusterClient
from samizdat.remote.clusters.probing import Probe
from samizdat.remote.fleet import Fleet, MemberSettings
from samizdat.remote.fleet.member import Member
from samizdat.remote.fleet.views import COPY_RESOURCES
from samizdat.app.handlers import reconcile
from samizdat.core.model import Phase

KUBECONFIG = yaml.safe_dump({
    "apiVersion": "v1", "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "ctx",
})
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559",
        "nvidia.com/gpu.count": "8"}


class FedMember(Member):
    """A member whose loops never run: the test feeds it; its writes become watch events at once."""

    def start(self) -> None:
        pass

    async def apply_copy(self, manifest: dict[str, Any]) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {**manifest, "metadata": {**manifest["metadata"], "creationTimestamp": now,
                                         "managedFields": [{"manager": "samizdat", "time": now}]}}
        self.observed(COPY_RESOURCES[0], "MODIFIED", body)

    def retire(self, copy: Any) -> None:
        self._deleting.add(copy.name)
        self.observed(COPY_RESOURCES[0], "DELETED", copy.body)


def node(name: str, gpus: int = 8) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": H100}, "spec": {},
            "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}, "conditions": [{"type": "Ready", "status": "True"}]}}


def workload(name: str = "llm", replicas: int = 2, deadline: int = 15) -> model.AIWorkload:
    return model.AIWorkload.model_validate({
        "apiVersion": "samizdat.io/v1alpha1", "kind": "AIWorkload",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 1},
        "spec": {"replicas": replicas, "placement": {"minJurisdictions": 2, "maxPerJurisdiction": 1},
                 "failover": {"startDeadlineSeconds": deadline, "scheduleDeadlineSeconds": deadline,
                              "quarantineSeconds": 300},
                 "template": {"spec": {"containers": [{"name": "server", "image": "llm:1"}]}}},
    })


async def fleet_of(*countries: str, gpus: int = 8) -> tuple[Fleet, dict[str, FedMember]]:
    """A fleet of Ready, fenced members (one 1-node member per country) with complete, empty views."""
    created: dict[str, FedMember] = {}

    def factory(name: str, client: ClusterClient, settings: MemberSettings, on_change: Callable[..., None]) -> Member:
        created[name] = FedMember(name, client, settings, on_change)
        return created[name]

    fleet = Fleet(MemberSettings(), member=factory)
    fleet.track(workloads={}, alliances={})
    for country in countries:
        name = country.lower()
        spec = model.MemberCluster.model_validate({
            "apiVersion": "samizdat.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
            "spec": {"kubeconfigSecretRef": {"name": name, "namespace": "samizdat-system"},
                     "jurisdiction": {"country": country}, "provider": f"p-{name}"}})
        await fleet.connect(spec, KUBECONFIG)
        member = created[name]
        member.listed(resources.NODES, (node(f"{name}-n1", gpus),))
        member.listed(resources.PODS, ())
        member.listed(resources.NAMESPACES, ({"metadata": {"name": manifests.WORKLOAD_NAMESPACE}},))
        for resource in COPY_RESOURCES:
            member.listed(resource, ())
        for _ in range(2):
            member.probed(Probe(name, True, 0.001, None, "ok"))
    for _ in range(50):
        if all(fleet.countable(name) for name in created):
            break
        await asyncio.sleep(0.01)
    return fleet, created


def free(fleet: Fleet, name: str) -> int:
    member = next(m for m in fleet.snapshot().members if m.name == name)
    return sum(s.free_gpus * s.nodes for s in member.shapes)


def pod(member: str, w: model.AIWorkload, index: int, *, bound: bool, ready: bool, age: float = 0.0,
        scheduled: dict[str, str] | None = None) -> dict[str, Any]:
    created = (datetime.now(UTC) - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": created}]
    if scheduled is not None:
        conditions.append({"type": "PodScheduled", **scheduled})
    spec = manifests.replica_pod_spec(w)
    return {
        "metadata": {"name": f"{member}-{index}", "uid": f"{member}-{w.metadata.name}-{index}",
                     "creationTimestamp": created, "labels": {manifests.UID_LABEL: w.metadata.uid or ""}},
        "spec": {**spec, "nodeName": f"{member}-n1"} if bound else spec,
        "status": {"phase": "Running" if bound else "Pending", "conditions": conditions},
    }


async def test_decisions_made_together_are_charged_until_their_pods_are_bound() -> None:
    fleet, members = await fleet_of("DE", "FR")
    assert free(fleet, "de") == 8
    spec = manifests.replica_pod_spec(workload())
    fleet.record_decision("uid-a", {"de": 3}, spec)
    assert free(fleet, "de") == 5, "the next decision must read the GPUs promised a moment ago"
    fleet.record_decision("uid-b", {"de": 5}, spec)
    assert free(fleet, "de") == 0
    w = workload("a")
    members["de"].listed(resources.PODS, tuple(pod("de", w, i, bound=True, ready=True) for i in range(3)))
    assert free(fleet, "de") == 0, "bound pods replace the promise, they are not charged twice"
    fleet.forget("uid-b")
    assert free(fleet, "de") == 5


async def test_a_restarted_fleet_reads_promises_back_from_the_copies() -> None:
    fleet, members = await fleet_of("DE", "FR")
    members["de"].observed(COPY_RESOURCES[0], "ADDED", manifests.build_copy(workload(), 2))
    assert free(fleet, "de") == 6


async def test_a_replica_starved_past_its_deadline_is_placed_elsewhere_and_its_member_backed_off() -> None:
    fleet, members = await fleet_of("DE", "FR", "CH")
    w = workload(deadline=15)
    first = await reconcile.reconcile(w, fleet)
    assert first.decision is not None and first.decision.feasible
    held = sorted(first.decision.assignments)
    starving, healthy = held
    unschedulable = {"status": "False", "reason": "Unschedulable",
                     "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}
    members[healthy].listed(resources.PODS, (pod(healthy, w, 0, bound=True, ready=True),))
    members[starving].listed(resources.PODS, (pod(starving, w, 0, bound=False, ready=False, age=5,
                                                  scheduled=unschedulable),))
    inside = await reconcile.reconcile(w, fleet)
    assert not inside.starved and inside.recheck_s is not None and 9 < inside.recheck_s < 12
    members[starving].listed(resources.PODS, (pod(starving, w, 0, bound=False, ready=False, age=20,
                                                  scheduled=unschedulable),))
    outcome = await reconcile.reconcile(w, fleet)
    assert outcome.starved[starving].cause is model.StartCause.INSUFFICIENT_GPUS
    assert outcome.decision is not None
    assert starving not in outcome.decision.assignments, "the stuck copy is shrunk away"
    assert sum(outcome.decision.assignments.values()) == 2
    assert set(fleet.backed_off(w.metadata.uid or "")) == {starving}
    assert fleet.state(starving) is not None and fleet.state(starving).health.phase is Phase.READY  # type: ignore[union-attr]


async def test_a_backed_off_member_is_tried_again_when_no_other_member_has_room() -> None:
    fleet, members = await fleet_of("DE", "FR")  # two countries, at most one replica each: no spare
    w = workload(deadline=15)
    await reconcile.reconcile(w, fleet)
    members["de"].listed(resources.PODS, (pod("de", w, 0, bound=True, ready=True),))
    members["fr"].listed(resources.PODS, (pod("fr", w, 0, bound=False, ready=False, age=20),))

    outcome = await reconcile.reconcile(w, fleet)

    assert outcome.starved["fr"].cause is model.StartCause.NO_SCHEDULER
    assert set(fleet.backed_off(w.metadata.uid or "")) == {"fr"}, "backed off all the same"
    assert outcome.decision is not None and outcome.decision.feasible, "left short for 300 s, fr never tried again"
    assert dict(outcome.decision.assignments) == {"de": 1, "fr": 1}


@pytest.mark.parametrize("quota", [True, False], ids=["quota-is-censorship", "no-scheduler-is-capacity"])
async def test_someone_elses_act_quarantines_the_member(quota: bool) -> None:
    fleet, members = await fleet_of("DE", "FR", "CH")
    w = workload(deadline=15)
    first = await reconcile.reconcile(w, fleet)
    assert first.decision is not None
    starving, healthy = sorted(first.decision.assignments)
    members[healthy].listed(resources.PODS, (pod(healthy, w, 0, bound=True, ready=True),))
    copy = members[starving].copies[w.metadata.uid or ""].body
    old = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    copy["metadata"].update(creationTimestamp=old, managedFields=[{"manager": "samizdat", "time": old}])
    if quota:
        copy["status"] = {"conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                          "lastTransitionTime": old,
                                          "message": 'pods "x" is forbidden: exceeded quota: gpus'}]}
        members[starving].listed(resources.PODS, ())
    else:
        members[starving].listed(resources.PODS, (pod(starving, w, 0, bound=False, ready=False, age=60),))
    outcome = await reconcile.reconcile(w, fleet)
    state = fleet.state(starving)
    assert state is not None
    if quota:
        assert outcome.starved[starving].censorship is model.CensorshipKind.QUOTA_IMPOSED
        assert state.health.phase is Phase.QUARANTINED
    else:
        assert outcome.starved[starving].cause is model.StartCause.NO_SCHEDULER
        assert state.health.phase is Phase.READY
    assert outcome.decision is not None and starving not in outcome.decision.assignments
