"""The sandbox is a faithful world: real scheduling onto GPU nodes, least privilege, and real faults."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from e2e.sandbox import members
from e2e.sandbox.world import CENSORED_IMAGE, Sandbox
from e2e.waiting import eventually

NAMESPACE = members.WORKLOAD_NAMESPACE


def gpu_deployment(name: str, replicas: int, gpus: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "server", "image": "registry.invalid/inference:1",
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
