"""samizdat's CRDs on a real kube-apiserver: accepted as written, and bad objects refused clearly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.sandbox.world import Sandbox
from e2e.workloads import aiworkload


def member(country: str) -> dict[str, Any]:
    return {
        "apiVersion": "samizdat.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": "crd-check"},
        "spec": {"kubeconfigSecretRef": {"name": "x", "namespace": "samizdat-system"},
                 "jurisdiction": {"country": country}, "provider": "p"},
    }


def test_kubectl_explain_describes_the_placement_rules(hub: Sandbox) -> None:
    explained = hub.kubectl("hub").run("explain", "aiw.spec.placement").stdout
    for field in ("minJurisdictions", "maxPerJurisdiction", "deniedAlliances", "requireTEE"):
        assert field in explained


def test_valid_objects_are_accepted(hub: Sandbox) -> None:
    result = hub.kubectl("hub").run(
        "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(aiworkload("ok", 3, {"minJurisdictions": 3}))
    )
    assert "created (server dry run)" in result.stdout


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        pytest.param(member("XX1"), "spec.jurisdiction.country", id="bad-country-code"),
        pytest.param(member("de"), "spec.jurisdiction.country", id="lower-case-country"),
        pytest.param(aiworkload("bad", 2, {"minJurisdictions": 3}), "minJurisdictions", id="min-jurisdictions-gt-replicas"),
        pytest.param(aiworkload("bad", 2, {}, gpus=-1), "spec.gpu.count", id="negative-gpus"),
        pytest.param({**aiworkload("bad", 1, {}), "spec": {**aiworkload("bad", 1, {})["spec"],
                                                           "model": {"digest": "md5:abc"}}},
                     "spec.model.digest", id="bad-digest"),
    ],
)
def test_invalid_objects_are_rejected_with_a_clear_message(hub: Sandbox, manifest: dict[str, Any], message: str) -> None:
    result = hub.kubectl("hub").run("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest), check=False)
    assert result.returncode != 0
    assert "Invalid value" in result.stderr or "invalid" in result.stderr.lower()
    assert message in result.stderr, result.stderr
