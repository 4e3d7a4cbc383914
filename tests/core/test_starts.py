"""How a copy's replicas are starting, and the verdict on ones past the start deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from samizdat.core import manifests, placement, starts
from samizdat.core.placement import MemberInfo, NodeShape, Request, Rules, Snapshot
from samizdat.core.model import CensorshipKind
from samizdat.core.starts import Cause, ReplicaStart, ReplicaState

NOW = datetime(2026, 12, 1, 3, 0, 0, tzinfo=UTC)
DEADLINE = 15.0
UID = "u-1"
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559",
        "nvidia.com/gpu.count": "8"}


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(replicas: int = 1, age: float = 100.0, failure: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if failure is not None:
        status["conditions"] = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                 "message": failure, "lastTransitionTime": ago(age)}]
    return {
        "kind": "Deployment",
        "metadata": {"name": "llm-1", "labels": {manifests.UID_LABEL: UID}, "creationTimestamp": ago(age),
                     "managedFields": [{"manager": "samizdat", "operation": "Apply", "time": ago(age)},
                                       {"manager": "kcm", "subresource": "status", "time": ago(0)}]},
        "spec": {"replicas": replicas},
        "status": status,
    }


def node(name: str = "n1", cordoned: bool = False, taint: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"unschedulable": True} if cordoned else {}
    if taint:
        spec["taints"] = [{"key": taint, "value": "x", "effect": "NoSchedule"}]
    return {"metadata": {"name": name, "labels": H100}, "spec": spec,
            "status": {"allocatable": {"nvidia.com/gpu": "8"}, "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(
    age: float = 100.0, node_name: str | None = "n1", ready: bool = False, scheduled: dict[str, str] | None = None,
    waiting: str | None = None, phase: str | None = None, name: str = "llm-1-abc",
) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ago(age)}]
    if scheduled is not None:
        conditions.append({"type": "PodScheduled", **scheduled})
    elif node_name:
        conditions.append({"type": "PodScheduled", "status": "True"})
    status: dict[str, Any] = {"phase": phase or ("Running" if node_name else "Pending"), "conditions": conditions}
    if waiting:
        status["containerStatuses"] = [{"name": "server", "image": "example/llm:1",
                                        "state": {"waiting": {"reason": waiting, "message": "blocked"}}}]
    spec: dict[str, Any] = {"containers": [{"name": "server", "image": "example/llm:1",
                                            "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": name, "labels": {manifests.UID_LABEL: UID}, "creationTimestamp": ago(age)},
            "spec": spec, "status": status}


UNSCHEDULABLE = {"status": "False", "reason": "Unschedulable"}


@pytest.mark.parametrize(
    ("copy", "pods", "nodes", "state", "cause", "overdue"),
    [
        pytest.param(deployment(), [pod(ready=True)], [node()], ReplicaState.READY, Cause.READY, False, id="ready"),
        pytest.param(deployment(), [pod(age=5)], [node()], ReplicaState.STARTING, Cause.LOADING, False,
                     id="slow-inside-deadline"),
        pytest.param(deployment(), [pod(age=20)], [node()], ReplicaState.STARTING, Cause.LOADING, True,
                     id="slow-past-deadline"),
        pytest.param(deployment(), [pod(node_name=None, scheduled={
            **UNSCHEDULABLE, "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."})],
            [node()], ReplicaState.UNSCHEDULED, Cause.INSUFFICIENT_GPUS, True, id="insufficient-gpus"),
        pytest.param(deployment(), [pod(node_name=None, scheduled={
            **UNSCHEDULABLE, "message": "0/1 nodes are available: 1 node(s) were unschedulable."})],
            [node(cordoned=True)], ReplicaState.UNSCHEDULED, Cause.NODES_CORDONED, True, id="cordoned"),
        pytest.param(deployment(), [pod(node_name=None, scheduled={
            **UNSCHEDULABLE, "message": "0/1 nodes are available: 1 node(s) had untolerated taint {censor: x}."})],
            [node(taint="censor")], ReplicaState.UNSCHEDULED, Cause.NODES_TAINTED, True, id="tainted"),
        pytest.param(deployment(), [pod(node_name=None, scheduled={
            **UNSCHEDULABLE, "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity."})],
            [node()], ReplicaState.UNSCHEDULED, Cause.NO_FITTING_NODE, True, id="no-fitting-node"),
        pytest.param(deployment(), [pod(node_name=None)], [node()], ReplicaState.UNSCHEDULED, Cause.NO_SCHEDULER,
                     True, id="no-scheduler"),
        pytest.param(deployment(failure='pods "llm-1-x" is forbidden: exceeded quota: zero, requested: '
                                        'requests.nvidia.com/gpu=1, used: 0, limited: 0'), [], [node()],
                     ReplicaState.UNSCHEDULED, Cause.QUOTA_EXCEEDED, True, id="quota"),
        pytest.param(deployment(age=3), [], [node()], ReplicaState.UNSCHEDULED, Cause.PODS_NOT_CREATED, False,
                     id="not-created-yet"),
        pytest.param(deployment(), [pod(waiting="ImagePullBackOff", phase="Pending")], [node()],
                     ReplicaState.CANNOT_START, Cause.IMAGE_PULL_FAILED, True, id="image-pull"),
        pytest.param(deployment(), [pod(waiting="CrashLoopBackOff")], [node()], ReplicaState.CANNOT_START,
                     Cause.CRASH_LOOP, True, id="crash-loop"),
        pytest.param(deployment(), [pod(phase="Succeeded")], [node()], ReplicaState.READY, Cause.READY, False,
                     id="finished-training-replica"),
    ],
)
def test_each_replica_is_classified_with_evidence(
    copy: dict[str, Any], pods: list[dict[str, Any]], nodes: list[dict[str, Any]], state: ReplicaState,
    cause: Cause, overdue: bool,
) -> None:
    (start,) = starts.classify(copy, pods, nodes, DEADLINE, NOW)
    assert (start.state, start.cause, start.overdue) == (state, cause, overdue)
    assert start.evidence


@pytest.mark.parametrize(
    ("pods", "nodes", "overdue", "deadline"),
    [
        pytest.param([pod(age=30, node_name=None)], [node()], True, 20.0, id="never-scheduled"),
        pytest.param([], [node()], True, 20.0, id="never-created"),
        pytest.param([pod(age=30, waiting="ImagePullBackOff", phase="Pending")], [node()], True, 20.0,
                     id="image-refused"),
        pytest.param([pod(age=30)], [node()], False, 600.0, id="loading-weights"),
        pytest.param([pod(age=30, waiting="CrashLoopBackOff")], [node()], False, 600.0, id="crash-loop"),
        pytest.param([pod(age=10, node_name=None)], [node()], False, 20.0, id="not-yet-scheduled"),
        pytest.param([pod(age=6, node_name=None, scheduled={**UNSCHEDULABLE, "message": "1 node(s) were unschedulable"})],
                     [node(cordoned=True)], True, starts.EVIDENCE_SETTLE_S, id="kept-out-by-a-cordon"),
    ],
)
def test_a_replica_that_has_not_begun_to_start_gets_the_schedule_deadline(
    pods: list[dict[str, Any]], nodes: list[dict[str, Any]], overdue: bool, deadline: float,
) -> None:
    """A long start deadline allows for loading weights; a pod no node takes, or whose image is refused,
    has not begun loading and is overdue after the schedule deadline, and one the member's own objects
    show kept out by someone else's act after a few seconds."""
    (start,) = starts.classify(deployment(age=30), pods, nodes, 600.0, NOW, schedule_deadline_s=20.0)
    assert (start.overdue, start.deadline_s) == (overdue, deadline)


def test_a_cordon_of_full_nodes_is_a_shortage_not_censorship() -> None:
    full = pod(name="other", node_name="n1", ready=True)
    full["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "8"
    full["metadata"]["labels"] = {}
    waiting = pod(node_name=None, scheduled={**UNSCHEDULABLE, "message": "1 node(s) were unschedulable"})
    (start,) = starts.classify(deployment(), [full, waiting], [node(cordoned=True)], DEADLINE, NOW)
    assert start.cause is Cause.NO_FITTING_NODE


def test_missing_pods_and_surplus_pods_make_exactly_the_asked_replicas() -> None:
    got = starts.classify(deployment(replicas=3), [pod(ready=True, name="a"), pod(age=1, name="b")], [node()],
                          DEADLINE, NOW)
    assert [s.state for s in got] == [ReplicaState.READY, ReplicaState.STARTING, ReplicaState.UNSCHEDULED]
    got = starts.classify(deployment(replicas=1), [pod(age=30, name="old"), pod(ready=True, name="new")], [node()],
                          DEADLINE, NOW)
    assert [s.state for s in got] == [ReplicaState.READY]


def test_the_deadline_of_missing_pods_counts_from_our_last_write_not_the_copys_birth() -> None:
    copy = deployment(replicas=2, age=3600)
    copy["metadata"]["managedFields"].append({"manager": "samizdat", "operation": "Apply", "subresource": "scale",
                                              "time": ago(2)})
    got = starts.classify(copy, [pod(ready=True)], [node()], DEADLINE, NOW)
    assert got[1].cause is Cause.PODS_NOT_CREATED and not got[1].overdue


def test_a_replica_that_stops_being_ready_gets_the_deadline_from_then() -> None:
    flapping = pod(age=3600)
    flapping["status"]["conditions"][0]["lastTransitionTime"] = ago(3)
    (start,) = starts.classify(deployment(), [flapping], [node()], DEADLINE, NOW)
    assert start.state is ReplicaState.STARTING and not start.overdue


def replica(cause: Cause, overdue: bool = True, image: str | None = None) -> ReplicaStart:
    state = ReplicaState.READY if cause is Cause.READY else ReplicaState.UNSCHEDULED
    return ReplicaStart(state, cause, f"evidence of {cause}", 20.0, overdue, image)


@pytest.mark.parametrize(
    ("replicas", "images_elsewhere", "ready_elsewhere", "lost", "censorship", "back_off"),
    [
        pytest.param([replica(Cause.READY, False), replica(Cause.LOADING, False)], frozenset(), True, 0, None, False,
                     id="inside-deadline-nothing"),
        pytest.param([replica(Cause.INSUFFICIENT_GPUS)], frozenset(), True, 1, None, True, id="shortage-backs-off"),
        pytest.param([replica(Cause.NO_SCHEDULER)] * 2, frozenset(), True, 2, None, True, id="no-scheduler-backs-off"),
        pytest.param([replica(Cause.LOADING)], frozenset(), True, 1, None, True, id="never-ready-backs-off"),
        pytest.param([replica(Cause.NODES_CORDONED)], frozenset(), True, 1, CensorshipKind.NODES_CORDONED, False,
                     id="cordon-is-censorship"),
        pytest.param([replica(Cause.NODES_TAINTED)], frozenset(), True, 1, CensorshipKind.NODES_TAINTED, False,
                     id="taint-is-censorship"),
        pytest.param([replica(Cause.QUOTA_EXCEEDED), replica(Cause.INSUFFICIENT_GPUS)], frozenset(), True, 2,
                     CensorshipKind.QUOTA_IMPOSED, False, id="quota-is-censorship-and-outranks-shortage"),
        pytest.param([replica(Cause.IMAGE_PULL_FAILED, image="llm:1")], frozenset({"llm:1"}), True, 1,
                     CensorshipKind.IMAGE_BLOCKED, False, id="image-blocked-here-only"),
        pytest.param([replica(Cause.IMAGE_PULL_FAILED, image="llm:1")], frozenset({"other:2"}), True, 0, None,
                     False, id="image-pulls-nowhere-is-ours"),
        pytest.param([replica(Cause.CRASH_LOOP)], frozenset(), True, 1, None, True, id="crash-here-only-backs-off"),
        pytest.param([replica(Cause.CRASH_LOOP)], frozenset(), False, 0, None, False, id="crash-everywhere-is-ours"),
    ],
)
def test_judge_overdue_replicas(
    replicas: list[ReplicaStart], images_elsewhere: frozenset[str], ready_elsewhere: bool, lost: int,
    censorship: CensorshipKind | None, back_off: bool,
) -> None:
    verdict = starts.judge(replicas, images_elsewhere, ready_elsewhere)
    assert (verdict.lost, verdict.censorship, verdict.back_off) == (lost, censorship, back_off)
    assert bool(verdict.evidence) == bool(lost)


def test_status_groups_unready_replicas_by_state_and_cause() -> None:
    got = starts.summarise([replica(Cause.READY, False), replica(Cause.INSUFFICIENT_GPUS),
                            replica(Cause.INSUFFICIENT_GPUS, overdue=False), replica(Cause.NO_SCHEDULER)])
    assert [(g.reason, g.replicas, g.overdue) for g in got] == [
        (Cause.INSUFFICIENT_GPUS, 2, 1), (Cause.NO_SCHEDULER, 1, 1)]


def test_overdue_replicas_move_and_a_backed_off_member_keeps_only_what_runs() -> None:
    """The reconcile's use of a verdict: the overdue replica counts as not placed, the member is backed
    off (no new replicas of this workload), so the replica lands elsewhere and the stuck copy shrinks."""
    gpus = (NodeShape("H100", 81559, False, 8, 1),)
    snapshot = Snapshot(members=(MemberInfo("fr", "FR", "p1", shapes=gpus), MemberInfo("de", "DE", "p2", shapes=gpus),
                                 MemberInfo("ch", "CH", "p3", shapes=gpus)))
    rules = Rules(min_jurisdictions=2, max_per_jurisdiction=2)
    verdict = starts.judge([replica(Cause.READY, False), replica(Cause.INSUFFICIENT_GPUS)], frozenset(), True)
    current = {"fr": 2 - verdict.lost, "de": 1}
    decision = placement.solve(placement.withhold(snapshot, {"fr": verdict.evidence}),
                               Request(replicas=3, rules=rules, current=current))
    assert decision.assignments == {"fr": 1, "de": 2} or decision.assignments == {"fr": 1, "de": 1, "ch": 1}
    assert decision.assignments["fr"] == 1


def test_back_off_runs_its_time_and_is_never_shortened() -> None:
    verdict = starts.judge([replica(Cause.INSUFFICIENT_GPUS)], frozenset(), True)
    table = starts.back_off({}, "fr", verdict, now=100.0, seconds=60)
    assert table["fr"].until == 160.0 and table["fr"].cause is Cause.INSUFFICIENT_GPUS
    table = starts.back_off(table, "fr", verdict, now=110.0, seconds=10)
    assert table["fr"].until == 160.0
    assert starts.active(table, 159.0).keys() == {"fr"}
    assert starts.active(table, 160.0) == {}
