"""The Helm chart on the real hub: `helm install` deploys it, its objects exist, and the identity it gives
the operator can do what the operator does and nothing more.

The hub has no nodes, so the operator's pod stays Pending; the operator the e2e suites run outside the
hub can use the chart's identity through e2e/helm.py's `chart_operator_kubeconfig`.
"""

from __future__ import annotations

from typing import Any

import pytest

from e2e.helm import CHART, NAMESPACE, RELEASE, chart_operator_kubeconfig, helm, install_chart
from e2e.sandbox import members
from e2e.sandbox.launcher import HUB
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually

SAMIZDAT = "samizdat.io"


@pytest.fixture(scope="module")
def release(hub: Sandbox) -> dict[str, Any]:
    return install_chart(hub)


@pytest.fixture(scope="module")
def as_operator(hub: Sandbox, release: dict[str, Any]) -> members.Kubectl:
    """kubectl with the chart's ServiceAccount token, as the operator's pod would talk to the hub."""
    return members.Kubectl(hub.binaries.path("kubectl"), chart_operator_kubeconfig(hub))


def test_release_is_deployed(release: dict[str, Any]) -> None:
    assert release["info"]["status"] == "deployed"
    assert release["namespace"] == NAMESPACE


def test_operator_deployment_and_its_pod_exist(hub: Sandbox, release: dict[str, Any]) -> None:
    kubectl = hub.kubectl(HUB)
    deployment = kubectl.get_json("deployment", RELEASE, "-n", NAMESPACE)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    def one_pod() -> list[dict[str, Any]] | None:
        found = kubectl.get_json("pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
        return found if len(found) == 1 else None  # (pods of an earlier revision may still be going)

    pods = eventually(one_pod, timeout=30, what="the operator's one pod created by the hub's controllers")
    assert [pod["status"]["phase"] for pod in pods] == ["Pending"]  # no node in the hub to run it


def test_objects_of_the_release_exist(hub: Sandbox, release: dict[str, Any]) -> None:
    kubectl = hub.kubectl(HUB)
    service = kubectl.get_json("service", RELEASE, "-n", NAMESPACE)
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("metrics", 8080)]
    assert kubectl.get_json("serviceaccount", RELEASE, "-n", NAMESPACE)["metadata"]["name"] == RELEASE
    for kind in ("clusterrole", "clusterrolebinding"):
        assert kubectl.get_json(kind, RELEASE)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    for kind in ("role", "rolebinding"):
        assert kubectl.get_json(kind, f"{RELEASE}-member-secrets", "-n", NAMESPACE)
    dashboards = kubectl.get_json("configmaps", "-n", NAMESPACE, "-l", "grafana_dashboard=1")["items"]
    assert sorted(d["metadata"]["name"] for d in dashboards) == [
        f"{RELEASE}-dashboard-failovers", f"{RELEASE}-dashboard-fleet", f"{RELEASE}-dashboard-workload",
    ]
    alliances = kubectl.get_json("alliances", "-l", "app.kubernetes.io/managed-by=Helm")["items"]
    assert sorted(a["metadata"]["name"] for a in alliances) == ["eea", "eu", "five-eyes", "fourteen-eyes", "nine-eyes"]
    crds = {crd["metadata"]["name"] for crd in kubectl.get_json("crds")["items"]}
    assert {f"memberclusters.{SAMIZDAT}", f"aiworkloads.{SAMIZDAT}", f"alliances.{SAMIZDAT}",
            "clusterkopfpeerings.kopf.dev"} <= crds


def test_operator_pod_meets_the_restricted_pod_security_standard(hub: Sandbox, release: dict[str, Any]) -> None:
    # A server-side dry run of enforcing "restricted" makes the API server's PodSecurity admission check
    # every existing pod in the namespace and warn about each one that would be refused.
    result = hub.kubectl(HUB).run(
        "label", "--dry-run=server", "--overwrite", "namespace", NAMESPACE,
        "pod-security.kubernetes.io/enforce=restricted",
    )
    assert "violate" not in result.stderr, result.stderr


# (verb, resource, extra kubectl arguments): what kopf and samizdat do in the hub
ALLOWED = [
    pytest.param("watch", f"memberclusters.{SAMIZDAT}", [], id="watch-memberclusters"),
    pytest.param("watch", f"aiworkloads.{SAMIZDAT}", ["--all-namespaces"], id="watch-aiworkloads"),
    pytest.param("list", f"alliances.{SAMIZDAT}", [], id="list-alliances"),
    pytest.param("patch", f"aiworkloads.{SAMIZDAT}", ["-n", "default"], id="patch-aiworkload-finalizer"),
    pytest.param("patch", f"memberclusters.{SAMIZDAT}", [], id="patch-membercluster-finalizer"),
    pytest.param("patch", f"aiworkloads.{SAMIZDAT}", ["-n", "default", "--subresource=status"],
                 id="patch-aiworkload-status"),
    pytest.param("patch", f"memberclusters.{SAMIZDAT}", ["--subresource=status"], id="patch-membercluster-status"),
    pytest.param("watch", "customresourcedefinitions.apiextensions.k8s.io", [], id="watch-crds"),
    pytest.param("create", "events", ["-n", "default"], id="post-events-of-workloads"),
    pytest.param("create", "events", ["-n", NAMESPACE], id="post-events-of-members"),
    pytest.param("patch", "events", ["-n", "default"], id="count-a-repeated-event"),
    pytest.param("get", "events", ["-n", "default"], id="read-an-event-said-before-a-restart"),
    pytest.param("get", "secrets", ["-n", NAMESPACE], id="read-member-kubeconfig"),
    pytest.param("patch", "secrets", ["-n", NAMESPACE], id="renew-member-kubeconfig"),
]
FORBIDDEN = [
    pytest.param("list", "secrets", ["-n", NAMESPACE], id="list-member-secrets"),
    pytest.param("create", "secrets", ["-n", NAMESPACE], id="create-secrets"),
    pytest.param("patch", "secrets", ["-n", "default"], id="patch-secrets-elsewhere"),
    pytest.param("get", "secrets", ["-n", "kube-system"], id="read-secrets-elsewhere"),
    pytest.param("get", "secrets", ["-n", "default"], id="read-secrets-in-default"),
    pytest.param("delete", "nodes", [], id="delete-nodes"),
    pytest.param("create", "deployments.apps", ["-n", NAMESPACE], id="create-deployments"),
    pytest.param("create", "pods", ["-n", "default"], id="create-pods"),
    pytest.param("delete", f"aiworkloads.{SAMIZDAT}", ["-n", "default"], id="delete-aiworkloads"),
    pytest.param("create", f"memberclusters.{SAMIZDAT}", [], id="create-memberclusters"),
    pytest.param("update", f"aiworkloads.{SAMIZDAT}", ["-n", "default", "--subresource=status"],
                 id="replace-aiworkload-status"),
    pytest.param("patch", f"alliances.{SAMIZDAT}", [], id="patch-alliances"),
    pytest.param("create", "customresourcedefinitions.apiextensions.k8s.io", [], id="create-crds"),
    pytest.param("list", "namespaces", [], id="list-namespaces"),
    pytest.param("delete", "events", ["-n", "default"], id="delete-events"),
    pytest.param("patch", "clusterkopfpeerings.kopf.dev", [], id="peering-without-replicas"),
    pytest.param("create", "clusterrolebindings.rbac.authorization.k8s.io", [], id="grant-itself-more"),
    pytest.param("impersonate", "users", [], id="impersonate"),
    pytest.param("*", "*", ["--all-namespaces"], id="anything"),
]


@pytest.mark.parametrize(("verb", "resource", "extra", "answer"), [
    *(pytest.param(*case.values, "yes", id=f"may-{case.id}") for case in ALLOWED),
    *(pytest.param(*case.values, "no", id=f"may-not-{case.id}") for case in FORBIDDEN),
])
def test_chart_identity_may_do_what_the_operator_does_and_nothing_else(
    as_operator: members.Kubectl, verb: str, resource: str, extra: list[str], answer: str,
) -> None:
    result = as_operator.run("auth", "can-i", verb, resource, *extra, check=False)
    assert result.stdout.strip() == answer, result.stdout + result.stderr


@pytest.mark.parametrize("request_args", [
    pytest.param(["get", "secrets", "-n", "kube-system"], id="list-secrets-in-kube-system"),
    pytest.param(["delete", "node", "no-such-node"], id="delete-a-node"),
    pytest.param(["delete", "clusterrolebinding", RELEASE], id="delete-its-own-binding"),
])
def test_requests_outside_the_rbac_are_refused(as_operator: members.Kubectl, request_args: list[str]) -> None:
    # Authorization comes before lookup: a refused request says Forbidden even for a missing object.
    result = as_operator.run(*request_args, check=False)
    assert result.returncode != 0
    assert "forbidden" in result.stderr.lower(), result.stderr


def test_chart_identity_reads_what_it_needs(hub: Sandbox, as_operator: members.Kubectl) -> None:
    members_seen = as_operator.get_json("memberclusters")["items"]
    assert sorted(m["metadata"]["name"] for m in members_seen) == sorted(hub.member_names)
    name = hub.member_names[0]
    secret = as_operator.get_json("secret", f"member-{name}", "-n", NAMESPACE)
    assert "kubeconfig" in secret["data"]


def test_peered_replicas_get_their_peering_object_and_rights(
    hub: Sandbox, release: dict[str, Any], as_operator: members.Kubectl,
) -> None:
    kubectl = hub.kubectl(HUB)

    def can(verb: str, resource: str) -> str:
        return str(as_operator.run("auth", "can-i", verb, resource, check=False).stdout.strip())

    try:
        helm(hub, "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--set", "replicaCount=2")
        assert kubectl.get_json("clusterkopfpeering", RELEASE)["metadata"]["name"] == RELEASE
        deployment = kubectl.get_json("deployment", RELEASE, "-n", NAMESPACE)
        assert f"--peering={RELEASE}" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
        assert can("watch", "clusterkopfpeerings.kopf.dev") == "yes"
        assert can("patch", f"clusterkopfpeerings.kopf.dev/{RELEASE}") == "yes"
        assert can("patch", "clusterkopfpeerings.kopf.dev/someone-else") == "no"
    finally:
        status = install_chart(hub)
    # back to one standalone replica: the peering object and the rights to it are gone
    assert status["info"]["status"] == "deployed"
    assert kubectl.run("get", "clusterkopfpeering", RELEASE, check=False).returncode != 0
    assert can("patch", f"clusterkopfpeerings.kopf.dev/{RELEASE}") == "no"
