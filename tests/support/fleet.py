"""A fleet without an API, for the tests of the fleet, the reconcile and the handlers: a real `Fleet` and
real `Member` views, fed as the probes and watches would feed them, with the member writes (`apply_copy`,
`erase`, `apply_service`, `label_pod`) landing in the member's own view as its watch would report them.

e2e/test_failover.py is the proof against real API servers; the tests on these locate a failure in seconds.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from samizdat.app.handlers.reconcile import reconcile
from samizdat.core import health, manifests, model, report
from samizdat.core.model import Phase
from samizdat.remote.clusters import errors, kubeconfig, resources
from samizdat.remote.clusters.probing import Probe
from samizdat.remote.fleet import Fleet, MemberSettings
from samizdat.remote.fleet.member import Member
from samizdat.remote.fleet.views import Copy

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: m, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: m, user: {token: t}}]
contexts: [{name: m, context: {cluster: m, user: m}}]
current-context: m
"""
COUNTRIES = {"de": "DE", "fr": "FR", "jp": "JP", "us": "US"}
THREE = ("de", "fr", "jp")
UID = "1234abcd-0000-4000-8000-000000000000"
H100 = "NVIDIA-H100-80GB-HBM3"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeMember(Member):
    """A member whose API server is this process: what samizdat writes shows up in its watch."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.applied: list[dict[str, Any]] = []
        self.erased: list[str] = []
        self.relabelled: list[tuple[str, str]] = []
        self.unreachable = False
        self.watching = True  # False: the watches are broken, the member's events reach no one
        self.loading = False  # new pods start Running but not Ready (weights loading) until `loaded`
        self._made = 0
        self.silent = False  # partitioned: writes hang, no answer ever comes

    def start(self) -> None:
        """No probe or watch loops: the test is the member's API."""

    async def apply_copy(self, manifest: dict[str, Any]) -> None:
        if self.unreachable:
            raise errors.MemberTimeout(self.name, "no answer")
        if self.silent:
            await asyncio.Event().wait()
        self.applied.append(manifest)
        uid = manifest["metadata"]["labels"][manifests.UID_LABEL]
        self.observed(resources.of(manifest), "MODIFIED" if uid in self.copies else "ADDED", running(manifest))
        if manifest["kind"] == "Deployment":
            self._run_pods(uid, manifest["spec"]["template"], manifest["spec"]["replicas"])

    async def erase(self, copy: Copy) -> bool:
        if self.unreachable:
            raise errors.MemberTimeout(self.name, "no answer")
        self.erased.append(copy.name)
        self._run_pods(copy.workload_uid, {}, 0)
        if self.watching:
            self.observed(resources.of(copy.body), "DELETED", copy.body)
        return True

    async def apply_service(self, uid: str, manifest: dict[str, Any]) -> None:
        if self.unreachable:
            raise errors.MemberTimeout(self.name, "no answer")
        answered = copy.deepcopy(manifest)
        answered["spec"]["clusterIP"] = "10.0.0.10"
        for port in answered["spec"]["ports"]:
            port["nodePort"] = 30000 + port["port"]
        self.services[uid] = answered

    async def label_pod(self, name: str, role: str) -> None:
        if self.unreachable:
            raise errors.MemberTimeout(self.name, "no answer")
        self.relabelled.append((name, role))
        found = [copy.deepcopy(p) for p in self.pods.values() if p["metadata"]["name"] == name]
        if not found:
            raise errors.NotFound(self.name, f"pods {name} not found", status=404)
        pod = found[0]
        pod["metadata"]["labels"][manifests.ROLE_LABEL] = role
        self.observed(resources.PODS, "MODIFIED", pod)

    # what the member's controllers would do

    def _run_pods(self, uid: str, template: dict[str, Any], replicas: int) -> None:
        """The ReplicaSet's work: as many pods as asked, the newest removed first."""
        mine = sorted((p for p in self.pods.values() if p["metadata"]["labels"].get(manifests.UID_LABEL) == uid),
                      key=lambda p: p["metadata"]["creationTimestamp"])
        for pod in mine[replicas:]:
            self.observed(resources.PODS, "DELETED", pod)
        for _ in range(replicas - len(mine)):
            self._made += 1
            name = f"{self.name}-pod-{self._made}"
            self.observed(resources.PODS, "ADDED", {
                "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": f"{self._made:04d}",
                             "labels": dict(template["metadata"]["labels"])},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "False" if self.loading else "True"}]},
            })

    def loaded(self) -> None:
        """Every pod here has loaded its weights: Ready."""
        for pod in list(self.pods.values()):
            ready = copy.deepcopy(pod)
            ready["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
            self.observed(resources.PODS, "MODIFIED", ready)

    # what the member's probes and watches would report

    def answers(self, ok: bool = True) -> None:
        failure = None if ok else health.Failure.REFUSED
        self.probed(Probe(self.name, ok, 0.001, failure, "ok" if ok else "connection refused"))

    def lists(self, copies: tuple[dict[str, Any], ...] = ()) -> None:
        node = {
            "metadata": {"name": f"{self.name}-gpu-0", "labels": {
                "nvidia.com/gpu.product": H100, "nvidia.com/gpu.memory": "81559", "nvidia.com/gpu.count": "8"}},
            "status": {"allocatable": {"nvidia.com/gpu": "8"}, "conditions": [{"type": "Ready", "status": "True"}]},
        }
        self.listed(resources.NODES, (node,))
        self.listed(resources.PODS, ())
        self.listed(resources.NAMESPACES, ({"metadata": {"name": manifests.WORKLOAD_NAMESPACE}},))
        self.listed(resources.DEPLOYMENTS, copies)
        self.listed(resources.JOBS, ())


def running(manifest: dict[str, Any]) -> dict[str, Any]:
    """The copy as the member reports it once its replicas are ready."""
    seen = copy.deepcopy(manifest)
    seen["metadata"]["uid"] = f"uid-{manifest['metadata']['name']}"
    seen["status"] = {"readyReplicas": manifest["spec"]["replicas"]}
    return seen


def workload(replicas: int = 2, standby: int = 0, **placement: Any) -> model.AIWorkload:
    server = {"name": "server", "image": "example/llm:1", "ports": [{"name": "http", "containerPort": 8000}]}
    return model.AIWorkload.model_validate({
        "apiVersion": "samizdat.io/v1alpha1", "kind": "AIWorkload",
        "metadata": {"name": "llm", "namespace": "team-a", "uid": UID, "generation": 1},
        "spec": {"replicas": replicas, "gpu": {"count": 1}, "placement": {"minJurisdictions": 2, **placement},
                 "failover": {"standbyReplicas": standby}, "template": {"spec": {"containers": [server]}}},
    })


def member_cluster(name: str) -> model.MemberCluster:
    return model.MemberCluster.model_validate({
        "apiVersion": "samizdat.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
        "spec": {"kubeconfigSecretRef": {"name": name, "namespace": "samizdat-system"},
                 "jurisdiction": {"country": COUNTRIES[name]}, "provider": f"provider-{name}"},
    })


class World:
    """A fleet of three fake members in three countries, and the clock their health reads."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.members: dict[str, FakeMember] = {}
        self.live: dict[str, bool] = {UID: True}
        self.fleet = Fleet(MemberSettings(quarantine_s=60.0), member=self._member)
        self.fleet.track(workloads=self.live, alliances={})

    def _member(
        self, name: str, credentials: kubeconfig.Credentials, settings: MemberSettings, on_change: Any
    ) -> Member:
        self.members[name] = FakeMember(name, credentials, settings, on_change, clock=self.clock)
        return self.members[name]

    async def connect(
        self, copies: dict[str, tuple[dict[str, Any], ...]] | None = None, names: tuple[str, ...] = THREE,
    ) -> None:
        for name in names:
            await self.fleet.connect(member_cluster(name), KUBECONFIG)
            self.members[name].lists((copies or {}).get(name, ()))
            self.members[name].answers()
        await settle()

    def lose(self, name: str) -> None:
        """Probes fail for longer than downAfterSeconds: the member is Down."""
        self.members[name].answers(ok=False)
        self.clock.now += 5
        self.members[name].answers(ok=False)
        assert self.members[name].health.phase is Phase.DOWN

    def heal(self, name: str) -> None:
        for _ in range(2):  # recoverAfterSuccesses
            self.members[name].answers()

    async def close(self) -> None:
        await self.fleet.close()


async def settle() -> None:
    """Let background work (fences, retirements) run to its end."""
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.fixture
async def world() -> Any:
    made = World()
    yield made
    await made.close()


def holders(world: World) -> dict[str, int]:
    return {name: copy.desired for name, copy in world.fleet.copies_of(UID).items()}


async def reconciled(world: World, aiw: model.AIWorkload) -> report.Result:
    """Reconcile, then once more to give a new copy's pods their roles: a copy is written as a task of
    its own (see `Member.answering`), so its pods are seen after that reconcile assigned the roles, as
    in a real member, where they are seen through the watch."""
    await reconcile(aiw, world.fleet)
    return await reconcile(aiw, world.fleet)


def roles(world: World) -> dict[str, dict[str, str]]:
    """Per member, each live pod of the workload by UID and its role label: the member's ground truth."""
    return {name: {pod["metadata"]["uid"]: pod["metadata"]["labels"].get(manifests.ROLE_LABEL, "")
                   for pod in member.pods_of(UID)} for name, member in world.members.items()}


def serving_members(world: World) -> list[str]:
    return sorted(name for name, pods in roles(world).items() if manifests.SERVING in pods.values())
