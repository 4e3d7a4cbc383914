"""The pure builders of member copies (reading them back for tampering: test_tampering.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

from samizdat.core import manifests
from samizdat.core.model import AIWorkload

DIGEST = "sha256:" + "0f" * 32


def workload(**spec: Any) -> AIWorkload:
    return AIWorkload.model_validate({
        "apiVersion": "samizdat.io/v1alpha1", "kind": "AIWorkload",
        "metadata": {"name": "llm", "namespace": "team-a", "uid": "1234abcd-0000-4000-8000-000000000000",
                     "generation": 3},
        "spec": {
            "replicas": 2, "gpu": {"count": 4, "products": ["NVIDIA-H100-80GB-HBM3"], "minMemoryMiB": 80000},
            "model": {"digest": DIGEST},
            "template": {"metadata": {"labels": {"tier": "inference"}}, "spec": {"containers": [
                {"name": "server", "image": "example/llm:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "example/proxy:2"},
            ]}},
            **spec,
        },
    })


def test_serve_builds_a_deployment_tied_to_its_workload() -> None:
    built = manifests.build_copy(workload(), 3)
    assert built["kind"] == "Deployment" and built["spec"]["replicas"] == 3
    assert built["metadata"]["namespace"] == manifests.WORKLOAD_NAMESPACE
    assert built["metadata"]["name"] == "llm-1234abcd"
    labels = built["metadata"]["labels"]
    assert labels[manifests.UID_LABEL] == "1234abcd-0000-4000-8000-000000000000"
    assert labels[manifests.NAMESPACE_LABEL] == "team-a"
    annotations = built["metadata"]["annotations"]
    assert annotations[manifests.GENERATION_ANNOTATION] == "3"
    assert annotations[manifests.DIGEST_ANNOTATION] == DIGEST
    assert json.loads(annotations[manifests.IMAGES_ANNOTATION]) == {"server": "example/llm:1", "sidecar": "example/proxy:2"}
    pod = built["spec"]["template"]
    assert pod["metadata"]["labels"]["tier"] == "inference"
    assert built["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_gpus_go_to_the_first_container_with_the_digest_and_node_affinity() -> None:
    pod = manifests.build_copy(workload(placement={"requireTEE": True}), 1)["spec"]["template"]["spec"]
    server, sidecar = pod["containers"]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert "resources" not in sidecar
    assert {"name": manifests.DIGEST_ENV, "value": DIGEST} in server["env"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    gpu = {"nvidia.com/gpu.product": ("In", ["NVIDIA-H100-80GB-HBM3"]), "nvidia.com/gpu.memory": ("Gt", ["79999"])}
    # TEE as the inventory counts it: observed ready by the agent, or labelled where no agent reports
    assert [{e["key"]: (e["operator"], e.get("values")) for e in term["matchExpressions"]} for term in terms] == [
        {**gpu, "samizdat.io/cc": ("In", ["ready"])},
        {**gpu, "samizdat.io/cc": ("DoesNotExist", None), "nvidia.com/cc.mode": ("In", ["on"])},
    ]


def test_observed_tee_selects_only_nodes_the_agent_saw_ready() -> None:
    pod = manifests.build_copy(workload(placement={"requireObservedTEE": True}), 1)["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "samizdat.io/cc", "operator": "In", "values": ["ready"]} in term["matchExpressions"]
    assert all(e["key"] != "nvidia.com/cc.mode" for e in term["matchExpressions"])


def test_train_builds_a_job_and_the_template_is_not_mutated() -> None:
    source = workload(mode="Train")
    before = copy.deepcopy(source.spec.template)
    built = manifests.build_copy(source, 4)
    assert built["kind"] == "Job"
    assert built["spec"]["parallelism"] == built["spec"]["completions"] == 4
    assert built["spec"]["completionMode"] == "Indexed"  # so completions may follow parallelism
    assert built["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert source.spec.template == before


def test_served_pods_start_as_standby_and_the_service_selects_serving_ones_only() -> None:
    served = workload()
    served.spec.template["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8000}]
    built = manifests.build_copy(served, 2)
    role = manifests.ROLE_LABEL
    assert built["spec"]["template"]["metadata"]["labels"][role] == manifests.STANDBY
    assert role not in built["spec"]["selector"]["matchLabels"], "a relabelled pod stays its ReplicaSet's"
    seen = {**built, "metadata": {**built["metadata"], "uid": "deployment-uid"}}
    service = manifests.build_service(served, seen)
    assert service is not None and service["spec"]["type"] == "NodePort"
    assert service["spec"]["selector"] == {**built["spec"]["selector"]["matchLabels"], role: manifests.SERVING}
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": 8000, "protocol": "TCP"}]
    assert service["metadata"]["ownerReferences"][0]["uid"] == "deployment-uid", "goes with its copy"
    assert manifests.build_service(workload(), seen) is None, "no declared port, nothing to reach"
    trained = manifests.build_copy(workload(mode="Train"), 2)
    assert role not in trained["spec"]["template"]["metadata"]["labels"]

