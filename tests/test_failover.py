"""The failover brain without an API: a real `Fleet` and real `Member` views, fed as the probes and
watches would feed them, with the two member writes (`apply_copy`, `erase`) landing in the member's own
view as its watch would report them. Each test drives one failure of the failure model through
`reconcile`, the fence and the status builders, and checks what would then run where.

e2e/test_failover.py is the proof against real API servers; these locate a failure in seconds.
"""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest

from samizdat.core import health, manifests, model, report
from samizdat.remote.clusters import errors, kubeconfig, resources
from samizdat.remote.clusters.probing import Probe
from samizdat.remote.fleet import Fleet, MemberSettings
from samizdat.remote.fleet import fleet as fleet_module
from samizdat.remote.fleet.member import Censorship, Copy, Member
from samizdat.app.handlers import aiworkloads, credentials, memberclusters
from samizdat.app.handlers.reconcile import needs_write, reconcile
from samizdat.core.model import CensorshipKind, FailoverReason, Phase

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


async def test_lost_replicas_are_placed_elsewhere_and_the_rest_stay(world: World) -> None:
    await world.connect()
    first = await reconcile(workload(), world.fleet)
    assert first.converged and sum(first.decision.assignments.values()) == 2  # type: ignore[union-attr]
    victim, kept = sorted(holders(world))
    spare = (set(THREE) - {victim, kept}).pop()
    world.lose(victim)

    outcome = await reconcile(workload(), world.fleet)

    assert outcome.lost[victim].reason is FailoverReason.MEMBER_DOWN
    assert outcome.lost[victim].since == 1000.0, "the failover started with the first failed probe"
    assert outcome.decision is not None and outcome.decision.assignments == {kept: 1, spare: 1}
    assert [m["spec"]["replicas"] for m in world.members[spare].applied] == [1]
    assert len(world.members[kept].applied) == 1, "the healthy replica stays where it is, untouched"
    assert outcome.left_behind == (victim,), "an unreachable member's copy is the fence's to delete"
    assert world.fleet.current(UID) == {kept: 1, spare: 1}


async def test_a_healed_member_is_fenced_before_its_old_copy_counts(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    victim = sorted(holders(world))[0]
    world.lose(victim)
    await reconciled(world, workload())

    world.heal(victim)
    assert victim not in world.fleet.current(UID), "back, but not fenced yet: its copy must not count"
    assert not world.fleet.is_fenced(victim)
    await settle()

    assert world.members[victim].erased, "the fence deleted the copy the latest decision no longer wants"
    assert world.fleet.is_fenced(victim) and victim not in holders(world)
    assert sum(world.fleet.current(UID).values()) == 2, "no rule exceeded after the heal"
    again = await reconcile(workload(), world.fleet)
    assert again.changes == () and not again.lost


def _scaled_to_zero(body: dict[str, Any]) -> dict[str, Any]:
    body["spec"]["replicas"] = 0
    return body


def _image_swapped(body: dict[str, Any]) -> dict[str, Any]:
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "censor/llm:1"
    return body


@pytest.mark.parametrize(("event", "change", "kind"), [
    pytest.param("DELETED", lambda body: body, CensorshipKind.OBJECT_DELETED, id="copy-deleted"),
    pytest.param("MODIFIED", _scaled_to_zero, CensorshipKind.SCALED_TO_ZERO, id="scaled-to-zero"),
    pytest.param("MODIFIED", _image_swapped, CensorshipKind.SPEC_ALTERED, id="image-swapped"),
])
async def test_censorship_in_the_copy_stream_quarantines_and_moves_replicas(
    world: World, event: str, change: Any, kind: CensorshipKind,
) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    censor = sorted(holders(world))[0]
    seen = world.fleet.copies_of(UID)[censor].body

    world.members[censor].observed(resources.DEPLOYMENTS, event, change(copy.deepcopy(seen)))

    state = world.fleet.state(censor)
    assert state is not None and state.health.phase is Phase.QUARANTINED
    assert state.censorship is not None and state.censorship.kind is kind
    outcome = await reconcile(workload(), world.fleet)
    assert outcome.lost[censor].reason is FailoverReason.CENSORING
    assert outcome.decision is not None and censor not in outcome.decision.assignments
    assert sum(outcome.decision.assignments.values()) == 2
    now = datetime.now(UTC)
    standing = credentials.standing(KUBECONFIG)
    status = memberclusters.build_status(member_cluster(censor), state, now,
                                         credentials.observe(standing, now.timestamp(), 0.8), None)
    assert status["phase"] == "Quarantined" and status["censorshipEvidence"]["kind"] == kind.value
    assert {c["type"]: c["status"] for c in status["conditions"]}["Censoring"] == "True"


async def test_our_own_deletes_are_not_censorship(world: World) -> None:
    await world.connect()
    await reconcile(workload(replicas=3), world.fleet)
    before = holders(world)
    outcome = await reconcile(workload(replicas=2), world.fleet)
    await settle()
    assert sum(holders(world).values()) == 2 and sum(before.values()) == 3
    assert [c.verb for c in outcome.changes].count("removed") + [c.verb for c in outcome.changes].count("scaled") >= 1
    assert all(member.health.phase is Phase.READY for member in world.members.values())


async def test_the_self_partition_guard_halts_evictions(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    writes = {name: len(member.applied) for name, member in world.members.items()}
    lost = sorted(holders(world))
    for name in lost:
        world.lose(name)

    outcome = await reconcile(workload(), world.fleet)

    assert outcome.halted and "evictions are halted" in outcome.halted
    assert outcome.decision is None and set(outcome.lost) == set(lost)
    assert {name: len(member.applied) for name, member in world.members.items()} == writes, "nothing moved"
    status, gauges = report.build_status(workload(), outcome, None)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Degraded"] == ("True", "EvictionsHalted")
    assert gauges["ready_by_country"] == {}, "lost members' replicas count nowhere"


async def test_after_a_restart_the_fleet_settles_and_nothing_moves(world: World) -> None:
    placed = {name: manifests.build_copy(workload(), 1) for name in ("de", "fr")}
    orphan = manifests.build_copy(workload().model_copy(update={"metadata": model.ObjectMeta(
        name="gone", namespace="team-a", uid="99999999-0000-4000-8000-000000000000", generation=1)}), 1)
    assert world.fleet.settling(THREE), "what members hold is not known yet"

    await world.connect({"de": (running(placed["de"]), running(orphan)), "fr": (running(placed["fr"]),)})

    assert not world.fleet.settling(THREE), "every member connected, probed and fenced"
    assert world.members["de"].erased == [orphan["metadata"]["name"]], "the orphan sweep removed a gone workload's copy"
    outcome = await reconcile(workload(), world.fleet)
    assert outcome.converged and outcome.changes == (), "a restart moves and rewrites nothing"
    status, gauges = report.build_status(workload(), outcome, None)
    assert status["readyReplicas"] == 2 and status["jurisdictionList"] == ["DE", "FR"]
    # roles are read from pods, and these members listed their copies only
    assert gauges == {"desired": 2, "ready_by_country": {"DE": 1, "FR": 1}, "serving": 0, "standby": 0,
                      "jurisdictions": 2, "required": 2, "violations": 0}


async def test_reconciles_share_one_snapshot_until_something_changes(world: World) -> None:
    await world.connect()
    first = world.fleet.snapshot()
    await reconcile(workload(), world.fleet)  # writes copies: the members' views change
    placed = world.fleet.snapshot()
    assert placed is not first
    assert world.fleet.snapshot() is placed, "nothing changed: the same snapshot, and its placement index"
    world.fleet.alliances_changed()
    assert world.fleet.snapshot() is not placed


async def test_a_broad_outage_gives_up_spread_not_capacity_and_restores_it(world: World) -> None:
    """Issue #12 in small: Japan down leaves Germany and France, at most 2 replicas each, for 4 replicas
    that want 3 countries: all 4 run, the status says which minimum is given up, and healing restores it."""
    spread = workload(4, minJurisdictions=3, maxPerJurisdiction=2)
    await world.connect()
    await reconcile(spread, world.fleet)
    world.lose("jp")

    # Status describes the view its decision was made on: the copies scaled up for the move are counted
    # by the reconcile their watch events wake, the second here.
    outcome = await reconciled(world, spread)

    assert outcome.decision is not None and outcome.decision.degraded
    assert outcome.decision.assignments == {"de": 2, "fr": 2}
    status, gauges = report.build_status(spread, outcome, None)
    conditions = {c["type"]: c for c in status["conditions"]}
    rules = conditions["RulesSatisfied"]
    assert (rules["status"], rules["reason"]) == ("False", "SpreadDegraded")
    assert "minJurisdictions 3 not met: 2 reached, 1 short" in rules["message"]
    assert conditions["Degraded"]["status"] == "True"  # MemberLost while Japan's copy is left behind
    assert gauges["violations"] == 1 and gauges["jurisdictions"] == 2
    assert "SpreadDegraded" in [reason for _, reason, _ in report.events(spread, outcome)]

    world.heal("jp")
    await settle()
    healed = await reconcile(spread, world.fleet)

    assert healed.decision is not None and not healed.decision.degraded
    assert healed.decision.moves == 1, "one replica moves back to restore the third country"


def test_settling_ends_after_a_bound_even_if_a_member_never_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    fleet = Fleet(MemberSettings())
    assert fleet.settling(["never"])
    clock[0] += fleet_module.SETTLE_S + 1
    assert not fleet.settling(["never"])


async def test_an_unreachable_member_fails_its_write_and_the_others_proceed(world: World) -> None:
    await world.connect()
    world.members["de"].unreachable = True
    world.members["fr"].unreachable = True
    outcome = await reconcile(workload(replicas=3, minJurisdictions=3, maxPerCluster=1), world.fleet)
    assert set(outcome.failures) == {"de", "fr"} and not outcome.converged
    assert len(world.members["jp"].applied) == 1


async def test_a_member_disconnected_while_its_copy_is_removed_is_reported_unreachable(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    name, copy = sorted(world.fleet.copies_of(UID).items())[0]
    await world.fleet.disconnect(name)
    with pytest.raises(errors.MemberUnreachable):
        await world.fleet.remove(name, copy)


@pytest.mark.parametrize(("existing", "replicas", "verb"), [
    pytest.param(None, 2, "placed", id="absent"),
    pytest.param({"generation": "1", "replicas": "2"}, 2, None, id="as-wanted"),
    pytest.param({"generation": "0", "replicas": "2"}, 2, "updated", id="older-generation"),
    pytest.param({"generation": "1", "replicas": "1"}, 2, "scaled", id="other-replicas"),
    pytest.param({"generation": "1", "replicas": "2", "actual": 0}, 2, "updated", id="scaled-to-zero-by-a-censor"),
    pytest.param({"generation": "1", "replicas": "2", "image": "censor/x:1"}, 2, "updated",
                 id="image-swapped-by-a-censor"),
])
def test_needs_write(existing: dict[str, Any] | None, replicas: int, verb: str | None) -> None:
    """A copy a censor changed is written back once its member is ours again: after its quarantine
    the fence keeps a copy the decision still wants, and nothing else would restore it."""
    body = None if existing is None else {"kind": "Deployment", "metadata": {"annotations": {
        manifests.GENERATION_ANNOTATION: existing["generation"],
        manifests.REPLICAS_ANNOTATION: existing["replicas"],
        manifests.IMAGES_ANNOTATION: '{"server": "example/llm:1"}'}},
        "spec": {"replicas": existing.get("actual", int(existing["replicas"])), "template": {"spec": {
            "containers": [{"name": "server", "image": existing.get("image", "example/llm:1")}]}}}}
    assert needs_write(workload(), body, replicas) == verb


async def test_a_renewed_token_keeps_the_member_connected_and_its_replicas_counted(world: World) -> None:
    await world.connect()
    member = world.members["de"]
    counted = world.fleet.countable("de")
    assert world.fleet.use_credentials("de", KUBECONFIG.replace("token: t", "token: renewed"))
    assert world.members["de"] is member and member.credentials.token == "renewed"
    assert world.fleet.countable("de") == counted, "a renewal must not uncount the member's replicas"
    moved = KUBECONFIG.replace("token: t", "token: renewed").replace("127.0.0.1:6443", "127.0.0.1:7443")
    assert not world.fleet.use_credentials("de", moved), "a new server needs a new connection"
    assert not world.fleet.use_credentials("nobody", KUBECONFIG)


# ----- what a user sees: members that cannot be used, and Events that repeat the same words


async def test_a_member_whose_views_cannot_be_listed_is_never_ready_and_says_why(
    world: World, caplog: pytest.LogCaptureFixture,
) -> None:
    await world.connect()
    member = world.members["jp"]
    garbage = errors.MemberMalformed("jp", "reply is not JSON")
    with caplog.at_level("DEBUG", logger="samizdat.remote.fleet.member"):
        for _ in range(5):  # the pods informer retrying, with its probe answering fine meanwhile
            member._view_failed("pods", garbage)
            member.answers()
            world.clock.now += 1
    state = world.fleet.state("jp")
    assert state is not None and (state.health.phase, state.health.reason) == (Phase.DOWN, "ViewMalformed")
    assert state.health.message == "pods: reply is not JSON" and not state.ready
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "pods cannot be listed" in warnings[0].getMessage(), "logged once, not per retry"
    now = datetime.now(UTC)
    status = memberclusters.build_status(member_cluster("jp"), state, now,
                                         credentials.observe(credentials.standing(KUBECONFIG), now.timestamp(), 0.8),
                                         None)
    assert status["freeGPUs"] is None, "a member that does not count shows no free GPUs: they may be stale"
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Ready"] == "ViewMalformed"

    member.listed(resources.PODS, ())
    member._view_works("pods")
    world.heal("jp")
    state = world.fleet.state("jp")
    assert state is not None and state.health.phase is Phase.READY


async def test_a_loss_quotes_censorship_evidence_only_to_the_workload_it_concerns(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    censor = sorted(holders(world))[0]
    other = "ffff0000-0000-4000-8000-000000000000"
    world.members[censor]._censored(Censorship(
        CensorshipKind.OBJECT_DELETED, "Deployment someone-else-1 deleted", other))
    lost = world.fleet.losses(UID)[censor]
    assert lost.why == f"quarantined: the member censors (ObjectDeleted); its evidence is on MemberCluster {censor}"
    assert "someone-else" not in lost.why
    assert world.fleet.losses(other) == {}, "the other workload held no replicas here"


async def test_a_loss_reads_the_same_for_as_long_as_it_lasts(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    victim = sorted(holders(world))[0]
    world.lose(victim)
    first = world.fleet.losses(UID)[victim].why
    # on its way back the member says other things: its API not ready yet, then views refused
    for failure, message in ((health.Failure.REFUSED, "GET /readyz: connection lost: connection reset by peer"),
                             (health.Failure.ERROR, "GET /readyz: not ready (etcd failing)")):
        world.clock.now += 1
        world.members[victim].probed(Probe(victim, False, 0.5, failure, message))
        assert world.fleet.losses(UID)[victim].why == first == "down (ProbeRefused)"


class Said(list[tuple[str, str, str]]):
    """samizdat's Event recorder as the handlers use it, keeping what was said instead of posting it."""

    def say(self, regarding: Any, type_: str, reason: str, message: str) -> None:
        self.append((regarding.name, reason, message))


def test_an_event_is_said_once_while_it_holds_and_said_again_after_it_stopped() -> None:
    memo = kopf.Memo(recorder=Said())
    body = {"apiVersion": "samizdat.io/v1alpha1", "kind": "AIWorkload",
            "metadata": {"name": "llm", "namespace": "team-a", "uid": UID}}
    lost: list[Any] = [("Warning", "MemberLost", "replicas in de no longer count, the member is down (ProbeRefused)")]
    said: tuple[str, ...] = ()
    for events in (lost, lost, lost, [], lost):  # reconciles: the loss holds, ends (healed), happens again
        said = aiworkloads._say(memo, body, said, events)  # type: ignore[arg-type]
    assert memo.recorder == [("llm", "MemberLost", lost[0][2])] * 2


async def test_a_replica_on_a_gpu_the_agent_found_faulted_is_placed_elsewhere(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    victim, kept = sorted(holders(world))
    spare = (set(THREE) - {victim, kept}).pop()
    member = world.members[victim]
    node = copy.deepcopy(member.nodes[f"{victim}-gpu-0"])
    pod = {"metadata": {"uid": "pod-1", "name": "llm-pod", "labels": {manifests.UID_LABEL: UID}},
           "spec": {"nodeName": node["metadata"]["name"],
                    "containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
           "status": {"phase": "Running"}}
    member.observed(resources.PODS, "ADDED", pod)
    assert world.fleet.current(UID) == {victim: 1, kept: 1}
    # XID 79: the member's agent taints the node (NoExecute), its GPUs count as gone
    node["spec"] = {"taints": [{"key": "samizdat.io/gpu-fault", "value": "Xid79", "effect": "NoExecute"}]}
    member.observed(resources.NODES, "MODIFIED", node)
    assert world.fleet.current(UID) == {victim: 0, kept: 1}

    outcome = await reconcile(workload(), world.fleet)

    assert outcome.decision is not None and outcome.decision.assignments == {kept: 1, spare: 1}
    assert [m["spec"]["replicas"] for m in world.members[spare].applied] == [1]


# ----- warm standbys and endpoints


def roles(world: World) -> dict[str, dict[str, str]]:
    """Per member, each live pod of the workload by UID and its role label: the member's ground truth."""
    return {name: {pod["metadata"]["uid"]: pod["metadata"]["labels"].get(manifests.ROLE_LABEL, "")
                   for pod in member.pods_of(UID)} for name, member in world.members.items()}


def serving_members(world: World) -> list[str]:
    return sorted(name for name, pods in roles(world).items() if manifests.SERVING in pods.values())


def status_of(world: World, aiw: model.AIWorkload, outcome: Any) -> dict[str, Any]:
    return report.build_status(aiw, outcome, None)[0]


async def test_standbys_are_placed_ready_but_not_serving_and_not_an_endpoint(world: World) -> None:
    await world.connect()
    aiw = workload(replicas=2, standby=1, maxPerCluster=1)
    outcome = await reconciled(world, aiw)

    labels = [role for pods in roles(world).values() for role in pods.values()]
    assert sorted(labels) == [manifests.SERVING, manifests.SERVING, manifests.STANDBY]
    (spare,) = [name for name, pods in roles(world).items() if manifests.STANDBY in pods.values()]
    service = world.fleet.service(spare, UID)
    assert service is not None and service["spec"]["selector"][manifests.ROLE_LABEL] == manifests.SERVING
    status, gauges = report.build_status(aiw, outcome, None)
    assert (status["servingReplicas"], status["standbyReplicas"], status["readyReplicas"]) == (2, 1, 3)
    assert (gauges["serving"], gauges["standby"]) == (2, 1), "samizdat_workload_replicas_serving / _standby"
    assert [e["cluster"] for e in status["endpoints"]] == serving_members(world), "a standby is no endpoint"
    assert status["endpoints"][0]["addresses"] == ["127.0.0.1:38000"]
    assert {p["cluster"]: p["standbyReplicas"] for p in status["placements"]}[spare] == 1


async def test_a_lost_serving_replica_is_replaced_by_promoting_the_standby_in_place(world: World) -> None:
    await world.connect(names=("de", "fr", "jp", "us"))
    aiw = workload(replicas=2, standby=1, maxPerCluster=1)
    await reconciled(world, aiw)
    before = roles(world)
    (spare,) = [name for name, pods in before.items() if manifests.STANDBY in pods.values()]
    victim = serving_members(world)[0]
    for member in world.members.values():
        member.loading = True  # a replica started from now on is cold for a while
    world.lose(victim)

    outcome = await reconcile(aiw, world.fleet)

    assert roles(world)[spare] == {uid: manifests.SERVING for uid in before[spare]}, "same pod, promoted"
    assert world.members[spare].relabelled == [(world.members[spare].pods_of(UID)[0]["metadata"]["name"],
                                                manifests.SERVING)], "one write to the member"
    assert outcome.decision is not None and sum(outcome.decision.assignments.values()) == 3
    (new,) = set(outcome.decision.assignments) - set(before) - {victim} or {
        name for name in outcome.decision.assignments if len(roles(world)[name]) > len(before[name])}
    assert list(roles(world)[new].values()) == [manifests.STANDBY], "the cold replica waits as the new standby"
    assert ("Normal", "Promoted", f"promoted 1 standby replica(s) to serving in {spare}") in report.events(
        aiw, outcome)
    status = status_of(world, aiw, outcome)
    assert status["servingReplicas"] == 2 and status["standbyReplicas"] == 0
    assert victim not in [e["cluster"] for e in status["endpoints"]], "a lost member is never an endpoint"
    assert spare in [e["cluster"] for e in status["endpoints"]]

    world.members[new].loaded()
    status = status_of(world, aiw, await reconcile(aiw, world.fleet))
    assert (status["servingReplicas"], status["standbyReplicas"]) == (2, 1), "N standbys restored"
    assert roles(world)[spare] == {uid: manifests.SERVING for uid in before[spare]}, "no flip back"


async def test_the_standby_is_promoted_even_when_the_lost_replica_cannot_be_placed_again(world: World) -> None:
    await world.connect()
    aiw = workload(replicas=2, standby=1, maxPerCluster=1)
    await reconciled(world, aiw)
    world.lose(serving_members(world)[0])

    outcome = await reconcile(aiw, world.fleet)

    assert outcome.decision is not None and not outcome.decision.feasible, "two members left for three replicas"
    assert status_of(world, aiw, outcome)["servingReplicas"] == 2
    assert all(set(pods.values()) <= {manifests.SERVING} for name, pods in roles(world).items()
               if world.fleet.countable(name))


async def test_without_standbys_every_replica_serves_from_its_start(world: World) -> None:
    await world.connect()
    for member in world.members.values():
        member.loading = True
    aiw = workload(replicas=2)
    outcome = await reconciled(world, aiw)
    assert sorted(role for pods in roles(world).values() for role in pods.values()) == [manifests.SERVING] * 2
    status = status_of(world, aiw, outcome)
    assert status["servingReplicas"] == 0 and status["endpoints"] == [], "serving, but none ready yet"


@pytest.mark.parametrize("standby", [pytest.param(1, id="warm-standby"), pytest.param(0, id="cold")])
async def test_last_failover_ends_when_full_serving_capacity_is_ready_again(world: World, standby: int) -> None:
    await world.connect(names=("de", "fr", "jp", "us"))
    aiw = workload(replicas=2, standby=standby, maxPerCluster=1)
    await reconciled(world, aiw)
    for member in world.members.values():
        member.loading = True  # a replica started from now on loads its weights for a while
    victim = serving_members(world)[0]
    world.lose(victim)
    lost_at = world.members[victim].lost_since
    assert lost_at is not None
    world.clock.now += 1
    timer = report.FailoverTimer()

    timer = timer.observe(report.tally(aiw, await reconcile(aiw, world.fleet), world.clock.now))

    if standby:
        assert timer.last is not None and timer.last.seconds == world.clock.now - lost_at, "the promotion ends it"
        assert timer.last.standby_seconds is None, "the new standby is still loading"
    else:
        assert timer.last is None, "nothing serves in place of the lost replica until it has loaded elsewhere"
    assert timer.running is not None
    world.clock.now += 20
    for member in world.members.values():
        member.loaded()
    timer = timer.observe(report.tally(aiw, await reconcile(aiw, world.fleet), world.clock.now))

    done = timer.last
    assert timer.running is None and done is not None and done.from_cluster == victim
    assert done.seconds == (world.clock.now - 20 if standby else world.clock.now) - lost_at
    assert done.standby_seconds == (world.clock.now - lost_at if standby else None)
    world.clock.now += 30
    timer = timer.observe(report.tally(aiw, await reconcile(aiw, world.fleet), world.clock.now))
    assert timer.running is None and timer.last == done, "a member still lost is not timed again"


def _loss(member: str, since: float) -> fleet_module.Loss:
    return fleet_module.Loss(member, "down (ProbeRefused)", FailoverReason.MEMBER_DOWN, since)


def test_a_failover_is_timed_once_for_a_member_that_stays_lost() -> None:
    timer = report.FailoverTimer()
    lost = {"de": _loss("de", 100.0)}
    timer = timer.observe(report.Tally(lost, converged=True, ready=1, wanted=2, now=102.0))
    timer = timer.observe(report.Tally(lost, converged=True, ready=2, wanted=2, now=105.0))
    assert timer.last is not None and (timer.last.from_cluster, timer.last.seconds) == ("de", 5.0)

    for now in (130.0, 160.0):  # still Down: resyncs must not time the same loss again, from its start
        timer = timer.observe(report.Tally(lost, converged=True, ready=2, wanted=2, now=now))
    assert timer.last.seconds == 5.0, "a loss already timed started another clock"

    # Another member lost while the first still is: timed from its own loss.
    both = {**lost, "fr": _loss("fr", 170.0)}
    timer = timer.observe(report.Tally(both, converged=True, ready=1, wanted=2, now=171.0))
    timer = timer.observe(report.Tally(both, converged=True, ready=2, wanted=2, now=174.0))
    assert (timer.last.from_cluster, timer.last.seconds) == ("fr", 4.0)

    # Back, then lost again: a new loss, a new failover.
    timer = timer.observe(report.Tally({}, converged=True, ready=2, wanted=2, now=200.0))
    again = {"de": _loss("de", 210.0)}
    timer = timer.observe(report.Tally(again, converged=True, ready=1, wanted=2, now=211.0))
    timer = timer.observe(report.Tally(again, converged=True, ready=2, wanted=2, now=213.5))
    assert (timer.last.from_cluster, timer.last.seconds) == ("de", 3.5)


def test_a_failover_reports_how_long_it_waited_for_room() -> None:
    timer = report.FailoverTimer()
    lost = {"de": _loss("de", 100.0)}
    timer = timer.observe(report.Tally(lost, converged=False, ready=1, wanted=2, now=101.0, room=False))  # nowhere to go
    timer = timer.observe(report.Tally(lost, converged=False, ready=1, wanted=2, now=131.0, room=False))  # a resync: still none
    timer = timer.observe(report.Tally(lost, converged=True, ready=1, wanted=2, now=140.0))  # a member came back: placed
    timer = timer.observe(report.Tally(lost, converged=True, ready=2, wanted=2, now=144.0))

    assert timer.last is not None
    assert (timer.last.seconds, timer.last.without_room_seconds) == (44.0, 39.0), \
        "detection (1 s) and the move (4 s) are the failover's own; the 39 s between are the fleet's"

    again = {"fr": _loss("fr", 200.0)}
    timer = timer.observe(report.Tally(again, converged=True, ready=1, wanted=2, now=201.0))
    timer = timer.observe(report.Tally(again, converged=True, ready=2, wanted=2, now=203.0))
    assert (timer.last.from_cluster, timer.last.without_room_seconds) == ("fr", 0.0), "each failover its own"


async def test_late_time_outs_are_set_aside_while_the_operator_is_busy_but_not_for_long(world: World) -> None:
    await world.connect()
    member = world.members["de"]
    late = Probe("de", False, 2.4, health.Failure.TIMEOUT, "GET /readyz: no answer within 1s", late=True)
    for _ in range(2):
        member.probed(late)
        world.clock.now += 5
    assert member.health.phase is Phase.READY, "a time-out that fired late says nothing about the member"
    member.probed(late)
    world.clock.now += 5
    member.probed(late)
    assert member.health.phase is Phase.DOWN, "a member really gone is found Down while the operator stays busy"
    world.heal("de")
    on_time = Probe("de", False, 1.0, health.Failure.TIMEOUT, "GET /readyz: no answer within 1s")
    member.probed(on_time)
    assert member.health.phase is Phase.SUSPECT, "a time-out on time counts at once"


async def test_a_write_to_a_member_that_goes_quiet_is_given_up_when_it_is_down(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    victim, kept = sorted(holders(world))
    spare = (set(THREE) - {victim, kept}).pop()
    world.lose(victim)
    world.members[spare].silent = True  # partitioned just after it was chosen: still Ready
    replacing = asyncio.create_task(reconcile(workload(), world.fleet))
    await settle()
    assert not replacing.done(), "the write to the silent member is under way"

    world.members[spare].answers(ok=False)  # its next probe fails: Suspect, still written to
    await settle()
    assert not replacing.done(), "a write to a Suspect member (one missed probe) is not given up"
    world.lose(spare)

    outcome = await asyncio.wait_for(replacing, timeout=1.0)
    assert spare in outcome.failures, "the write was not given up when the member was lost"
