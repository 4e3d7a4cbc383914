"""The Helm chart, rendered by the real helm binary: lint, schema, CRDs, built-in alliances, RBAC, pod spec.

helm comes from the sandbox toolchain (`e2e.sandbox.toolchain.ensure_binaries()`, cached under
~/.cache/samizdat/bin/). The RBAC expected here is derived from the kopf handlers the operator
registers, so a handler on a new resource fails this file until the chart grants what it needs.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kopf._cogs.structs import references as kopf_references

import samizdat.app.handlers  # noqa: F401  (registers the handlers whose rights are derived below)
from samizdat.app import cli

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "samizdat"
NAMESPACE = "samizdat-system"
KOPF_PEERING_CRD = "kopf.dev_clusterkopfpeerings.yaml"

Objects = list[dict[str, Any]]


@pytest.fixture(scope="session")
def helm() -> Path:
    # `pytest tests` runs without the repository root on sys.path, so e2e/ is not importable as a
    # package; its toolchain module needs only the standard library and is loaded from its file.
    spec = importlib.util.spec_from_file_location("sandbox_toolchain", ROOT / "e2e" / "sandbox" / "toolchain.py")
    assert spec is not None and spec.loader is not None
    toolchain = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = toolchain  # its dataclasses look their module up there
    spec.loader.exec_module(toolchain)
    return Path(toolchain.ensure_binaries(log=False).path("helm"))


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=check, timeout=120)


def render(helm: Path, *values: str, crds: bool = False) -> Objects:
    """`helm template` of the chart as release "samizdat" in samizdat-system, with `--set` values."""
    args = ["template", "samizdat", str(CHART), "--namespace", NAMESPACE]
    args += ["--include-crds"] if crds else []
    for value in values:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(run_helm(helm, *args).stdout) if doc]


def find(objects: Objects, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def the(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(objects: Objects) -> dict[str, Any]:
    spec = the(objects, "Deployment")["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1
    return dict(spec["containers"][0])


EVERYTHING_ON = ("replicaCount=2", "serviceMonitor.enabled=true", "prometheusRule.enabled=true")


# ----- lint and schema

@pytest.mark.parametrize("values", [
    pytest.param((), id="defaults"),
    pytest.param(EVERYTHING_ON, id="everything-on"),
    pytest.param(("dashboards.enabled=false", "alliances.enabled=false", "serviceAccount.create=false",
                  "serviceAccount.name=operator"), id="everything-off"),
    pytest.param(("election.enabled=true", "hub.server=https://10.1.0.10:6443"), id="one-hub-site"),
])
def test_helm_lint_passes(helm: Path, values: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    for value in values:
        args += ["--set", value]
    result = run_helm(helm, *args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_packaged_chart_renders_what_the_directory_renders(helm: Path, tmp_path: Path) -> None:
    # `helm package` drops what .helmignore names and cannot follow a file outside the chart
    run_helm(helm, "package", str(CHART), "--destination", str(tmp_path))
    [package] = tmp_path.glob("samizdat-*.tgz")

    def template(chart: Path) -> str:
        values = [arg for value in EVERYTHING_ON for arg in ("--set", value)]
        return run_helm(helm, "template", "samizdat", str(chart), "-n", NAMESPACE, "--include-crds", *values).stdout

    assert template(package) == template(CHART)


@pytest.mark.parametrize("value", [
    pytest.param("bogus=1", id="top-level"),
    pytest.param("image.bogus=1", id="image"),
    pytest.param("operator.bogus=1", id="operator"),
    pytest.param("serviceMonitor.bogus=1", id="serviceMonitor"),
    pytest.param("containerSecurityContext.bogus=1", id="securityContext"),
    pytest.param("dashboards.bogus=1", id="dashboards"),
    pytest.param("hub.bogus=1", id="hub"),
])
def test_schema_rejects_unknown_keys(helm: Path, value: str) -> None:
    result = run_helm(helm, "template", "samizdat", str(CHART), "--set", value, check=False)
    assert result.returncode != 0
    assert "additional properties 'bogus' not allowed" in result.stderr


@pytest.mark.parametrize("value", [
    pytest.param("replicaCount=-1", id="negative-replicas"),
    pytest.param("operator.metricsPort=70000", id="port-out-of-range"),
    pytest.param("image.digest=latest", id="digest-not-sha256"),
    pytest.param("memberSecretsNamespace=Not_A_Namespace", id="namespace-not-dns"),
    pytest.param("hub.server=http://10.1.0.10:6443", id="hub-server-not-https"),
    pytest.param("hub.server=10.1.0.10:6443", id="hub-server-not-a-url"),
])
def test_schema_rejects_bad_values(helm: Path, value: str) -> None:
    assert run_helm(helm, "template", "samizdat", str(CHART), "--set", value, check=False).returncode != 0


def _objects_in_schema(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path or "(root)", node
        for key, child in node.items():
            yield from _objects_in_schema(child, f"{path}.{key}" if key not in ("properties", "items") else path)


def test_every_schema_object_closes_its_keys() -> None:
    """additionalProperties: false wherever the keys are ours; user-named keys (labels, annotations,
    resource names) may only hold scalars; only an Affinity's terms are left to the API server."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects = []
    for path, node in _objects_in_schema(schema):
        closed = node.get("additionalProperties") is False
        scalar_map = isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"].get(
            "type") in ("string", ["string", "number"])
        if not (closed or scalar_map):
            open_objects.append(path)
    assert sorted(open_objects) == [".affinity.nodeAffinity", ".affinity.podAffinity", ".affinity.podAntiAffinity"]


# ----- CRDs and built-in objects: one source of truth each

def test_chart_crds_are_the_repositorys_crds() -> None:
    repo = {path.name: path.read_bytes() for path in (ROOT / "crds").glob("*.yaml")}
    chart = {path.name: path.read_bytes() for path in (CHART / "crds").glob("*.yaml")}
    assert set(chart) == set(repo) | {KOPF_PEERING_CRD}, "helm/samizdat/crds/ must hold crds/ plus kopf's peering CRD"
    stale = [name for name in repo if chart[name] != repo[name]]
    assert not stale, f"chart CRDs differ from crds/: {stale}; run `cp crds/*.yaml helm/samizdat/crds/`"


def test_peering_crd_is_the_one_kopf_uses_cluster_wide() -> None:
    crd = yaml.safe_load((CHART / "crds" / KOPF_PEERING_CRD).read_text())
    selector = kopf_references.CLUSTER_PEERINGS_K  # what kopf looks for when not namespaced
    version = crd["spec"]["versions"][0]["name"]
    assert (crd["spec"]["group"], version, crd["spec"]["names"]["plural"]) == (
        selector.group, selector.version, selector.any_name)
    assert crd["spec"]["scope"] == "Cluster"


def test_rendered_crds_are_the_chart_crds(helm: Path) -> None:
    rendered = {o["metadata"]["name"] for o in find(render(helm, crds=True), "CustomResourceDefinition")}
    files = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in (CHART / "crds").glob("*.yaml")}
    assert rendered == files


def test_built_in_alliances_are_the_operators_table(helm: Path) -> None:
    source = ROOT / "operator" / "samizdat" / "core" / "jurisdictions" / "alliances.yaml"
    expected = {d["metadata"]["name"]: d["spec"] for d in yaml.safe_load_all(source.read_text()) if d}
    rendered = {a["metadata"]["name"]: a["spec"] for a in find(render(helm), "Alliance")}
    assert rendered == expected, "run `cp operator/samizdat/core/jurisdictions/alliances.yaml helm/samizdat/files/`"
    for alliance in find(render(helm), "Alliance"):
        assert alliance["apiVersion"] == "samizdat.io/v1alpha1"
        assert alliance["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert not find(render(helm, "alliances.enabled=false"), "Alliance")


# ----- RBAC: derived from what kopf and samizdat do

Rule = tuple[str, str, str, str]  # apiGroup, resource, verb, resourceName ("" for any)


def granted(objects: Objects, kind: str) -> set[Rule]:
    rules: set[Rule] = set()
    for role in find(objects, kind):
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        for name in rule.get("resourceNames", [""]):
                            rules.add((group, resource, verb, name))
    return rules


def handler_resources() -> dict[tuple[str, str], set[str]]:
    """(group, plural) -> the verbs kopf needs on it for the handlers samizdat registers."""
    registry = kopf.get_default_registry()
    watched: list[Any] = [*registry._watching.get_all_handlers(), *registry._indexing.get_all_handlers()]
    # daemons and deletion handlers hold a finalizer; kopf also keeps its state in annotations
    holding: list[Any] = [*registry._spawning.get_all_handlers(), *registry._changing.get_all_handlers()]
    needs: dict[tuple[str, str], set[str]] = {}
    for handler in watched + holding:
        assert handler.selector is not None and isinstance(handler.selector.group, str)
        plural = handler.selector.plural or handler.selector.any_name
        assert isinstance(plural, str)
        key = (handler.selector.group, plural)
        needs.setdefault(key, set()).update({"list", "watch"})
        if handler in holding:
            assert handler.requires_finalizer
            needs[key].add("patch")
    return needs


def expected_cluster_rules(peering: str | None) -> set[Rule]:
    rules = {(group, plural, verb, "") for (group, plural), verbs in handler_resources().items() for verb in verbs}
    # workloads' DNS records (handlers/traffic.py): server-side apply is a patch, and a create the first
    # time; removed with the workload
    rules |= {("externaldns.k8s.io", "dnsendpoints", verb, "") for verb in ("create", "patch", "delete")}
    # samizdat's own status writes (handlers/hub.py): merge patches of the status subresource
    rules |= {("samizdat.io", f"{plural}/status", "patch", "") for plural in ("memberclusters", "aiworkloads")}
    # kopf: CRD scanning (list + watch), Events (POST of core/v1 events); samizdat's own Events
    # (clusters/recording.py) count repeats: a conflicting POST reads the Event and patches its count
    rules |= {("apiextensions.k8s.io", "customresourcedefinitions", verb, "") for verb in ("list", "watch")}
    rules |= {("", "events", verb, "") for verb in ("create", "get", "patch")}
    if peering:
        rules |= {("kopf.dev", "clusterkopfpeerings", verb, "") for verb in ("list", "watch")}
        rules |= {("kopf.dev", "clusterkopfpeerings", "patch", peering)}
    return rules


def test_handlers_watch_samizdats_three_resources_and_the_workloads_dns_records() -> None:
    assert handler_resources() == {
        ("samizdat.io", "memberclusters"): {"list", "watch", "patch"},
        ("samizdat.io", "aiworkloads"): {"list", "watch", "patch"},
        ("samizdat.io", "alliances"): {"list", "watch"},
        ("externaldns.k8s.io", "dnsendpoints"): {"list", "watch"},
    }


@pytest.mark.parametrize(("values", "peering"), [
    pytest.param((), None, id="standalone"),
    pytest.param(("replicaCount=3", "peering.name=hub-a"), "hub-a", id="peered"),
])
def test_cluster_role_is_exactly_what_the_operator_uses(
    helm: Path, values: tuple[str, ...], peering: str | None,
) -> None:
    objects = render(helm, *values)
    assert granted(objects, "ClusterRole") == expected_cluster_rules(peering)
    binding = the(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == the(objects, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "samizdat", "namespace": NAMESPACE}]


@pytest.mark.parametrize("namespace", ["samizdat-system", "member-credentials"])
def test_secrets_are_readable_and_renewable_only_by_name_in_the_member_secrets_namespace(
    helm: Path, namespace: str
) -> None:
    objects = render(helm, f"memberSecretsNamespace={namespace}")
    role = the(objects, "Role")
    assert role["metadata"]["namespace"] == namespace
    assert granted(objects, "Role") == {("", "secrets", "get", ""), ("", "secrets", "patch", "")}
    binding = the(objects, "RoleBinding")
    assert binding["metadata"]["namespace"] == namespace
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "samizdat", "namespace": NAMESPACE}]
    assert not any(resource == "secrets" for _, resource, _, _ in granted(objects, "ClusterRole"))


@pytest.mark.parametrize("values", [pytest.param((), id="defaults"), pytest.param(EVERYTHING_ON, id="everything-on")])
def test_no_wildcards_in_rbac(helm: Path, values: tuple[str, ...]) -> None:
    objects = render(helm, *values)
    for rule in granted(objects, "ClusterRole") | granted(objects, "Role"):
        assert "*" not in rule, rule


# ----- the operator's pod

def test_pod_runs_as_the_images_non_root_user_on_a_read_only_root(helm: Path) -> None:
    objects = render(helm)
    pod = the(objects, "Deployment")["spec"]["template"]["spec"]
    security = container(objects)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    user = next(line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER"))
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user
    # the only writable place: an in-memory /tmp for client certificates of members
    assert container(objects)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}]


def test_resources_are_requested_and_memory_limited(helm: Path) -> None:
    resources = container(render(helm))["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert "memory" in resources["limits"]


@pytest.mark.parametrize(("replicas", "strategy", "peering"), [
    pytest.param(1, "Recreate", False, id="standalone"),
    pytest.param(2, "RollingUpdate", True, id="peered"),
])
def test_replicas_peer_only_when_there_are_several(helm: Path, replicas: int, strategy: str, peering: bool) -> None:
    objects = render(helm, f"replicaCount={replicas}")
    deployment = the(objects, "Deployment")
    assert deployment["spec"]["replicas"] == replicas
    assert deployment["spec"]["strategy"]["type"] == strategy
    args = container(objects)["args"]
    assert ("--peering=samizdat" in args) is peering
    assert bool(find(objects, "ClusterKopfPeering", "samizdat")) is peering
    assert ("env" in container(objects)) is peering  # POD_ID names the replica in the peering


ELECTED = ("election.enabled=true", "replicaCount=2")


def test_an_elected_release_stands_for_the_lease_in_its_namespace_instead_of_peering(helm: Path) -> None:
    objects = render(helm, *ELECTED)
    args = container(objects)["args"]
    parsed = cli.build_parser().parse_args(args)
    assert (parsed.lease_name, parsed.lease_namespace) == ("samizdat-leader", NAMESPACE)
    assert (parsed.lease_duration, parsed.renew_deadline, parsed.retry_period) == (8, 5.0, 1.0)
    assert parsed.peering is None and not find(objects, "ClusterKopfPeering")
    assert the(objects, "Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"  # the Lease decides who acts
    election = the(objects, "Role", "samizdat-election")
    assert election["metadata"]["namespace"] == NAMESPACE
    assert election["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                  "verbs": ["get", "create", "update"]}]
    binding = the(objects, "RoleBinding", "samizdat-election")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "samizdat", "namespace": NAMESPACE}]
    assert not find(render(helm), "Role", "samizdat-election")


SITE_A = "https://10.1.0.10:6443"


@pytest.mark.parametrize(("values", "server"), [
    pytest.param((), None, id="default-the-kubernetes-service"),
    pytest.param((*ELECTED, f"hub.server={SITE_A}"), SITE_A, id="own-site"),
])
def test_a_release_talks_to_the_hub_server_its_values_name(
    helm: Path, values: tuple[str, ...], server: str | None
) -> None:
    args = container(render(helm, *values))["args"]
    assert cli.build_parser().parse_args(args).hub_server == server
    assert any(arg.startswith("--hub-server") for arg in args) is (server is not None)


@pytest.mark.parametrize("values", [pytest.param((), id="defaults"), pytest.param(EVERYTHING_ON, id="everything-on"),
                                    pytest.param(ELECTED, id="elected"),
                                    pytest.param((*ELECTED, f"hub.server={SITE_A}/"), id="own-site")])
def test_args_are_accepted_by_the_samizdat_cli(helm: Path, values: tuple[str, ...]) -> None:
    args = container(render(helm, *values))["args"]
    parsed = cli.build_parser().parse_args(args)
    assert parsed.command == "run"
    assert (parsed.metrics_port, parsed.health_port, parsed.quarantine_seconds) == (8080, 8081, 300.0)


def test_liveness_probe_and_metrics_service_use_the_operators_ports(helm: Path) -> None:
    objects = render(helm, "operator.metricsPort=9100", "operator.healthPort=9101")
    operator = container(objects)
    parsed = cli.build_parser().parse_args(operator["args"])
    ports = {port["name"]: port["containerPort"] for port in operator["ports"]}
    assert ports == {"metrics": parsed.metrics_port, "health": parsed.health_port} == {"metrics": 9100, "health": 9101}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    service = the(objects, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["selector"] == the(objects, "Deployment")["spec"]["selector"]["matchLabels"]


def test_image_defaults_to_the_app_version_and_can_be_pinned_by_digest(helm: Path) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert container(render(helm))["image"] == f"samizdat:{chart['appVersion']}"
    digest = "sha256:" + "0" * 64
    assert container(render(helm, "image.repository=registry.example/samizdat", f"image.digest={digest}"))[
        "image"] == f"registry.example/samizdat@{digest}"


def test_every_namespaced_object_lands_in_the_release_namespace(helm: Path) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "Alliance", "ClusterKopfPeering", "CustomResourceDefinition"}
    for obj in render(helm, *EVERYTHING_ON):
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"], obj["metadata"]["name"]
        elif obj["kind"] not in ("Role", "RoleBinding"):  # those follow memberSecretsNamespace
            assert obj["metadata"]["namespace"] == NAMESPACE, (obj["kind"], obj["metadata"]["name"])


# ----- monitoring

def test_service_monitor_and_prometheus_rule_are_off_by_default(helm: Path) -> None:
    objects = render(helm)
    assert not find(objects, "ServiceMonitor")
    assert not find(objects, "PrometheusRule")


def test_service_monitor_scrapes_the_metrics_port_keeping_workload_namespaces(helm: Path) -> None:
    objects = render(helm, "serviceMonitor.enabled=true", "serviceMonitor.labels.release=prom")
    monitor = the(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= the(objects, "Service")["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["honorLabels"]) == ("metrics", "/metrics", True)


def test_prometheus_rule_is_the_alert_file(helm: Path) -> None:
    rule = the(render(helm, "prometheusRule.enabled=true"), "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())


def test_dashboards_ship_as_labelled_config_maps(helm: Path) -> None:
    maps = find(render(helm), "ConfigMap")
    files = {path.name: path.read_text() for path in (CHART / "dashboards").glob("*.json")}
    assert {key for m in maps for key in m["data"]} == set(files)
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        [(name, text)] = config_map["data"].items()
        assert json.loads(text) == json.loads(files[name])
    assert not find(render(helm, "dashboards.enabled=false"), "ConfigMap")
    moved = find(render(helm, "dashboards.namespace=monitoring"), "ConfigMap")
    assert {m["metadata"]["namespace"] for m in moved} == {"monitoring"}
