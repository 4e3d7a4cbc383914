"""The sandbox is a faithful world: real scheduling onto GPU nodes, least privilege, and real faults."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from e2e.sandbox import members, stages
from e2e.sandbox.launcher import alive
from e2e.sandbox.world import CENSORED_IMAGE, PORT_SPAN, Sandbox, check_port_base, ephemeral_ports, free_port_base
from e2e.waiting import eventually

NAMESPACE = members.WORKLOAD_NAMESPACE


IMAGE = "registry.invalid/inference:1"


def gpu_deployment(name: str, replicas: int, gpus: int, image: str = IMAGE,
                   annotations: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels, "annotations": annotations or {}}, "spec": {"containers": [{
                "name": "server", "image": image,
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
            }]}},
        },
    }


def pods(sandbox: Sandbox, member: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = sandbox.kubectl(member).get_json("pods", "-n", NAMESPACE, "-l", f"app={app}")["items"]
    return items


def get(sandbox: Sandbox, member: str, path: str, timeout: float = 2.0, token: str | None = None) -> httpx.Response:
    token = token or sandbox.launcher.admin_token
    return httpx.get(f"{sandbox.server(member)}{path}", verify=sandbox.launcher.tls_context(), timeout=timeout,
                     headers={"Authorization": f"Bearer {token}"})


def identity_token(sandbox: Sandbox, member: str) -> str:
    config = yaml.safe_load(sandbox.identity_kubeconfig_path(member).read_text())
    return str(config["users"][0]["user"]["token"])


def test_every_member_lists_its_gpu_nodes_ready(sandbox: Sandbox) -> None:
    for member in sandbox.member_names:
        result = sandbox.kubectl(member).run("get", "nodes", "-l", "nvidia.com/gpu.present=true", "--no-headers")
        lines = result.stdout.strip().splitlines()
        assert lines, f"{member} has no GPU nodes"
        assert all(line.split()[1] == "Ready" for line in lines), result.stdout
        node = sandbox.kubectl(member).get_json("nodes")["items"][0]
        assert int(node["status"]["allocatable"]["nvidia.com/gpu"]) >= 1
        assert node["metadata"]["labels"][members.COUNTRY_LABEL].isupper()


def test_gpu_pods_are_scheduled_onto_gpu_nodes_and_oversized_ones_stay_pending(sandbox: Sandbox) -> None:
    member = sandbox.member_names[0]
    kubectl = sandbox.kubectl(member)
    kubectl.apply([gpu_deployment("fits", 2, 1), gpu_deployment("too-big", 1, 64)])
    try:
        running = eventually(lambda: [p for p in pods(sandbox, member, "fits") if p["status"].get("phase") == "Running"]
                             if len(pods(sandbox, member, "fits")) == 2 else None)
        assert len(running) == 2
        nodes = {node["metadata"]["name"]: node for node in kubectl.get_json("nodes")["items"]}
        for pod in running:
            assert "nvidia.com/gpu.product" in nodes[pod["spec"]["nodeName"]]["metadata"]["labels"]
        pending = eventually(lambda: pods(sandbox, member, "too-big"))
        time.sleep(3)  # give the scheduler every chance to (wrongly) place it
        pending = pods(sandbox, member, "too-big")
        assert pending[0]["status"]["phase"] == "Pending"
        assert not pending[0]["spec"].get("nodeName")
        reasons = [c.get("reason") for c in pending[0]["status"].get("conditions", [])]
        assert "Unschedulable" in reasons
    finally:
        kubectl.run("delete", "deployment", "fits", "too-big", "-n", NAMESPACE, "--wait=false")


def test_samizdat_identity_is_least_privilege(sandbox: Sandbox) -> None:
    member = sandbox.member_names[0]
    token = identity_token(sandbox, member)
    assert get(sandbox, member, "/api/v1/nodes", token=token).status_code == 200
    assert get(sandbox, member, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", token=token).status_code == 200
    assert get(sandbox, member, "/api/v1/secrets", token=token).status_code == 403
    assert get(sandbox, member, "/apis/apps/v1/namespaces/default/deployments", token=token).status_code == 403
    hub_secret = sandbox.kubectl("hub").get_json("secret", f"member-{member}", "-n", members.SYSTEM_NAMESPACE)
    assert "kubeconfig" in hub_secret["data"]


@pytest.fixture
def victim(sandbox: Sandbox) -> Iterator[str]:
    """A member to hurt; healed afterwards so later tests see a whole sandbox."""
    name = sandbox.member_names[-1]
    yield name
    if sandbox.state.clusters[name].faults:
        sandbox.heal(name)


def test_kill_refuses_connections_while_others_serve_and_heal_keeps_data(sandbox: Sandbox, victim: str) -> None:
    sandbox.kubectl(victim).run("create", "configmap", "survivor", "-n", NAMESPACE, "--from-literal=k=v")
    sandbox.kill(victim)
    with pytest.raises(httpx.ConnectError):
        get(sandbox, victim, "/readyz")
    for other in sandbox.member_names[:-1]:
        assert get(sandbox, other, "/readyz").status_code == 200
    sandbox.heal(victim)
    assert get(sandbox, victim, "/readyz").status_code == 200
    data = sandbox.kubectl(victim).get_json("configmap", "survivor", "-n", NAMESPACE)["data"]
    assert data == {"k": "v"}
    sandbox.kubectl(victim).run("delete", "configmap", "survivor", "-n", NAMESPACE)


def test_partition_times_out_instead_of_refusing(sandbox: Sandbox, victim: str) -> None:
    sandbox.partition(victim)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        get(sandbox, victim, "/readyz", timeout=2.0)
    assert 1.5 < time.monotonic() - started < 5
    assert get(sandbox, sandbox.member_names[0], "/readyz").status_code == 200
    sandbox.heal(victim)
    assert get(sandbox, victim, "/readyz").status_code == 200


def _deployment(sandbox: Sandbox, member: str) -> dict[str, Any] | None:
    result = sandbox.kubectl(member).run("get", "deployment", "victim-app", "-n", NAMESPACE, "-o", "json", check=False)
    return yaml.safe_load(result.stdout) if result.returncode == 0 else None


def _namespace_gone(sandbox: Sandbox, member: str) -> bool:
    return sandbox.kubectl(member).run("get", "namespace", NAMESPACE, check=False).returncode != 0


CENSOR_EFFECTS: list[Any] = [
    pytest.param("delete", lambda s, m: _deployment(s, m) is None, id="delete"),
    pytest.param("scale-zero", lambda s, m: (_deployment(s, m) or {}).get("spec", {}).get("replicas") == 0,
                 id="scale-zero"),
    pytest.param(
        "swap-image",
        lambda s, m: (_deployment(s, m) or {"spec": {"template": {"spec": {"containers": [{}]}}}})
        ["spec"]["template"]["spec"]["containers"][0].get("image") == CENSORED_IMAGE,
        id="swap-image",
    ),
    pytest.param("revoke-credentials",
                 lambda s, m: get(s, m, "/api/v1/nodes", token=identity_token(s, m)).status_code == 401,
                 id="revoke-credentials"),
    pytest.param("delete-namespace", _namespace_gone, id="delete-namespace"),
]


@pytest.mark.parametrize(("action", "effect"), CENSOR_EFFECTS)
def test_censor_action_has_the_effect_it_names(
    sandbox: Sandbox, victim: str, action: str, effect: Callable[[Sandbox, str], bool]
) -> None:
    sandbox.kubectl(victim).apply([gpu_deployment("victim-app", 1, 1)])
    assert not effect(sandbox, victim), "effect visible before the censor acted"
    sandbox.censor(victim, action)
    try:
        eventually(lambda: effect(sandbox, victim), timeout=60)
    finally:
        if action == "delete-namespace":
            eventually(lambda: _namespace_gone(sandbox, victim), timeout=60)
        sandbox.register(victim)
        sandbox.kubectl(victim).run("delete", "deployment", "victim-app", "-n", NAMESPACE, "--ignore-not-found")
    assert get(sandbox, victim, "/api/v1/nodes", token=identity_token(sandbox, victim)).status_code == 200


# ----- ports


def test_port_bases_overlapping_the_ephemeral_range_are_refused_and_never_picked() -> None:
    ephemeral = ephemeral_ports()
    inside = ephemeral.start + 1000
    with pytest.raises(ValueError, match="ephemeral port range"):
        check_port_base(inside)
    with pytest.raises(ValueError, match="ephemeral port range"):
        check_port_base(ephemeral.start - PORT_SPAN + 1)  # its highest port just inside
    check_port_base(ephemeral.start - PORT_SPAN)
    picked = free_port_base(6, start=ephemeral.start - PORT_SPAN + 1)
    assert picked >= ephemeral.stop or picked + PORT_SPAN <= ephemeral.start


# ----- heal really restarts a member


def _running_pods(sandbox: Sandbox, member: str, app: str, count: int) -> list[dict[str, Any]] | None:
    found = pods(sandbox, member, app)
    running = [pod for pod in found if pod["status"].get("phase") == "Running"
               and _condition(pod, "Ready") == "True" and not pod["metadata"].get("deletionTimestamp")]
    return running if len(running) == count else None


def _condition(pod: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in pod["status"].get("conditions", []) if c["type"] == kind), None)


@pytest.mark.parametrize("fault", ["kill", "partition", "stop-scheduler"])
def test_healed_member_schedules_a_new_pod(sandbox: Sandbox, victim: str, fault: str) -> None:
    cluster = sandbox.state.clusters[victim]
    if fault == "stop-scheduler":
        sandbox.censor(victim, fault)
    else:
        getattr(sandbox, fault)(victim)
    old = {component: pid for component, pid in cluster.pids.items() if component != "apiserver"}
    sandbox.heal(victim)
    assert not any(alive(pid) for pid in old.values()), "old controllers still running"
    assert all(alive(cluster.pids[component]) and cluster.pids[component] != old.get(component)
               for component in ("controller-manager", "scheduler", "kwok"))
    kubectl = sandbox.kubectl(victim)
    kubectl.apply([gpu_deployment("after-heal", 1, 1)])
    try:
        eventually(lambda: _running_pods(sandbox, victim, "after-heal", 1), timeout=30,
                   what=f"a new pod Running and Ready on {victim} after {fault} and heal")
    finally:
        kubectl.run("delete", "deployment", "after-heal", "-n", NAMESPACE, "--wait=false")


# ----- starvation: samizdat's objects untouched, its pods held


def _unscheduled_for(words: str) -> Callable[[list[dict[str, Any]], str], bool]:
    def held(found: list[dict[str, Any]], _: str) -> bool:
        return bool(found) and all(
            not pod["spec"].get("nodeName") and any(
                c["type"] == "PodScheduled" and c["status"] == "False" and words in c.get("message", "")
                for c in pod["status"].get("conditions", []))
            for pod in found)
    return held


def _never_scheduled(found: list[dict[str, Any]], _: str) -> bool:
    return bool(found) and all(not pod["spec"].get("nodeName") and _condition(pod, "PodScheduled") is None
                               for pod in found)


def _image_pull_backoff(found: list[dict[str, Any]], _: str) -> bool:
    return bool(found) and all(
        pod["status"].get("phase") == "Pending" and any(
            status.get("state", {}).get("waiting", {}).get("reason") == "ImagePullBackOff"
            for status in pod["status"].get("containerStatuses", []))
        for pod in found)


def _refused_by_quota(found: list[dict[str, Any]], failure: str) -> bool:
    return not found and "exceeded quota" in failure


def _replica_failure(sandbox: Sandbox, member: str, app: str) -> str:
    sets = sandbox.kubectl(member).get_json("replicasets", "-n", NAMESPACE, "-l", f"app={app}")["items"]
    return " ".join(c.get("message", "") for rs in sets for c in rs.get("status", {}).get("conditions", [])
                    if c["type"] == "ReplicaFailure")


STARVATIONS: list[Any] = [
    # action, how a new GPU pod is held, whether a pod running before the act survives it
    pytest.param("cordon", _unscheduled_for("unschedulable"), True, id="cordon"),
    pytest.param("taint", _unscheduled_for("untolerated taint"), False, id="taint"),
    pytest.param("quota-zero", _refused_by_quota, True, id="quota-zero"),
    pytest.param("stop-scheduler", _never_scheduled, True, id="stop-scheduler"),
    pytest.param("block-image", _image_pull_backoff, True, id="block-image"),
]


@pytest.mark.parametrize(("action", "held", "running_survive"), STARVATIONS)
def test_starvation_holds_new_gpu_pods_until_heal(
    sandbox: Sandbox, victim: str, action: str, held: Callable[[list[dict[str, Any]], str], bool],
    running_survive: bool,
) -> None:
    kubectl = sandbox.kubectl(victim)
    kubectl.apply([gpu_deployment("before", 1, 1)])
    try:
        (first,) = eventually(lambda: _running_pods(sandbox, victim, "before", 1), timeout=30) or []
        sandbox.censor(victim, action, image=IMAGE if action == "block-image" else None)
        kubectl.apply([gpu_deployment("after", 1, 1),
                       gpu_deployment("other-image", 1, 1, image="registry.invalid/other:1")])

        def after_held() -> bool:
            return held(pods(sandbox, victim, "after"), _replica_failure(sandbox, victim, "after"))

        eventually(after_held, timeout=30, what=f"a new GPU pod held by {action}")
        time.sleep(2)  # and still held: nothing lets it through on a retry
        assert after_held()
        if running_survive:
            assert [pod["metadata"]["uid"] for pod in pods(sandbox, victim, "before")] == [first["metadata"]["uid"]]
            assert _running_pods(sandbox, victim, "before", 1)
        else:
            def evicted_and_held() -> bool:
                now = pods(sandbox, victim, "before")
                return first["metadata"]["uid"] not in {pod["metadata"]["uid"] for pod in now} and held(now, "")

            eventually(evicted_and_held, timeout=30, what="the running pod evicted, its replacement held")
        if action == "block-image":  # only that image is blocked
            eventually(lambda: _running_pods(sandbox, victim, "other-image", 1), timeout=30)
        sandbox.heal(victim)
        assert sandbox.state.clusters[victim].faults == []
        for app in ("before", "after", "other-image"):
            eventually(lambda: _running_pods(sandbox, victim, app, 1), timeout=45, what=f"{app} Running after heal")
    finally:
        kubectl.run("delete", "deployment", "before", "after", "other-image", "-n", NAMESPACE, "--wait=false",
                    "--ignore-not-found")


# ----- weights loading


def test_a_pod_annotated_ready_after_is_running_but_not_ready_for_that_long(sandbox: Sandbox) -> None:
    member = sandbox.member_names[0]
    kubectl = sandbox.kubectl(member)
    kubectl.apply([gpu_deployment("loading", 1, 1, annotations={stages.READY_AFTER_ANNOTATION: "10s"}),
                   gpu_deployment("instant", 1, 1)])

    def loading_pod() -> dict[str, Any] | None:
        # straight from the API server, not through kubectl: polls must be far apart less than the margin
        found = get(sandbox, member, f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3Dloading").json()
        return found["items"][0] if found["items"] else None

    def running() -> dict[str, Any] | None:
        pod = loading_pod()
        return pod if pod and pod["status"].get("phase") == "Running" else None

    try:
        pod = eventually(running, timeout=30, interval=0.1, what="the loading pod Running") or {}
        running_seen = last_not_ready = time.monotonic()
        while _condition(pod, "Ready") != "True":
            assert pod["status"]["phase"] == "Running"
            last_not_ready = time.monotonic()
            assert last_not_ready - running_seen < 30, "never Ready"
            time.sleep(0.1)
            pod = loading_pod() or pod
        assert last_not_ready - running_seen >= 9, "Running but not Ready for less than 9 s"
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        started = pod["status"]["startTime"]
        assert _seconds_between(started, ready["lastTransitionTime"]) >= 9, (started, ready)
        assert pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] == started
        assert _running_pods(sandbox, member, "instant", 1), "a pod without the annotation is Ready at once"
    finally:
        kubectl.run("delete", "deployment", "loading", "instant", "-n", NAMESPACE, "--wait=false")


def _seconds_between(earlier: str, later: str) -> float:
    def parse(stamp: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    return (parse(later) - parse(earlier)).total_seconds()
