"""The samizdat-agent chart (installed in members), rendered by the real helm: lint, schema, and that the
agent may patch Nodes only, and only its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from deploy.test_chart import find, helm, run_helm, the  # noqa: F401  (helm is a fixture)

from samizdat.app import cli

CHART = Path(__file__).resolve().parents[2] / "helm" / "samizdat-agent"
NAMESPACE = "samizdat-system"


def render(helm: Path, *values: str) -> list[dict[str, object]]:  # noqa: F811
    args = ["template", "agent", str(CHART), "--namespace", NAMESPACE]
    for value in values:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(run_helm(helm, *args).stdout) if doc]


@pytest.mark.parametrize("values", [
    pytest.param((), id="defaults"),
    pytest.param(("ownNodeOnly=false", "runtimeClassName=", "agent.metricsPort=0"), id="minimal"),
])
def test_helm_lint_passes(helm: Path, values: tuple[str, ...]) -> None:  # noqa: F811
    args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    for value in values:
        args += ["--set", value]
    result = run_helm(helm, *args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_rejects_unknown_values(helm: Path) -> None:  # noqa: F811
    result = run_helm(helm, "template", "agent", str(CHART), "--set", "agent.bogus=1", check=False)
    assert result.returncode != 0 and "bogus" in result.stderr


def test_the_agent_may_patch_nodes_and_nothing_else(helm: Path) -> None:  # noqa: F811
    objects = render(helm)
    rules = the(objects, "ClusterRole")["rules"]  # type: ignore[index]
    granted = {(resource, verb) for rule in rules for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == {("nodes", "get"), ("nodes", "patch"), ("nodes/status", "patch")}
    assert not find(objects, "Role") and not find(objects, "RoleBinding")


def test_writes_are_confined_to_the_agents_own_node(helm: Path) -> None:  # noqa: F811
    objects = render(helm)
    policy = the(objects, "ValidatingAdmissionPolicy")
    spec = policy["spec"]  # type: ignore[index]
    assert spec["matchConditions"][0]["expression"].strip() == (
        f'request.userInfo.username == "system:serviceaccount:{NAMESPACE}:agent-samizdat-agent"'
    )
    assert "authentication.kubernetes.io/node-name" in spec["validations"][0]["expression"]
    binding = the(objects, "ValidatingAdmissionPolicyBinding")["spec"]  # type: ignore[index]
    assert binding["policyName"] == policy["metadata"]["name"] and binding["validationActions"] == ["Deny"]  # type: ignore[index]
    assert not find(render(helm, "ownNodeOnly=false"), "ValidatingAdmissionPolicy")


def test_daemonset_runs_the_agent_command_on_gpu_nodes_through_every_taint(helm: Path) -> None:  # noqa: F811
    pod = the(render(helm), "DaemonSet")["spec"]["template"]["spec"]  # type: ignore[index]
    (container,) = pod["containers"]
    args = container["args"]
    assert cli.build_parser().parse_args(args).command == "agent"  # the chart's flags exist
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]
    assert "nvidia.com/gpu" not in str(container["resources"])  # it sees GPUs without taking one
    assert pod["tolerations"] == [{"operator": "Exists"}]  # its own fault taint included
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
