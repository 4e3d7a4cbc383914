"""Membership as values: the member identity the docs list, credentials bound and bounded, renewal timing."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from samizdat.core import manifests, membership, model
from samizdat.remote.clusters import kubeconfig, resources
from samizdat.core.leadership import fence
from support.tokens import bound_claims, jwt

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_guide_lists_exactly_the_member_identity_join_creates() -> None:
    """docs/operations.md's manual steps create the same objects as `samizdat join`, nothing more or less."""
    guide = (REPO_ROOT / "docs" / "operations.md").read_text()
    section = guide[guide.index("### By hand"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    assert [doc for doc in yaml.safe_load_all(block.group(1)) if doc] == membership.member_objects()


def test_every_member_object_is_a_resource_samizdat_knows() -> None:
    for obj in membership.member_objects():
        assert resources.of(obj).kind == obj["kind"]


def test_the_identity_may_request_tokens_for_itself_only() -> None:
    token_rules = [
        rule for obj in membership.identity_objects() if obj["kind"] in ("Role", "ClusterRole")
        for rule in obj["rules"] if any(r.startswith("serviceaccounts") for r in rule["resources"])
    ]
    assert token_rules == [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                            "resourceNames": [membership.IDENTITY], "verbs": ["create"]}]


def test_the_identity_reads_no_secrets_and_writes_nothing_cluster_wide() -> None:
    for obj in membership.identity_objects():
        for rule in obj.get("rules", []):
            assert "secrets" not in rule["resources"]
            if obj["kind"] == "ClusterRole":
                assert set(rule["verbs"]) <= {"get", "list", "watch"}


def test_a_token_request_is_bounded_and_bound_to_its_credential_secret() -> None:
    request = membership.token_request(3600, membership.Anchor("samizdat-credential-abc", "uid-1"))
    assert request["spec"]["expirationSeconds"] == 3600
    assert request["spec"]["boundObjectRef"] == {"apiVersion": "v1", "kind": "Secret",
                                                 "name": "samizdat-credential-abc", "uid": "uid-1"}
    with pytest.raises(ValueError, match="600"):
        membership.token_request(599, membership.Anchor("a", "b"))


def test_the_kubeconfig_is_self_contained_and_parses_as_the_operator_reads_it() -> None:
    ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    text = membership.kubeconfig("de-frankfurt", membership.Endpoint("https://10.0.0.1:6443", ca_pem=ca), "tok1")
    parsed = kubeconfig.parse(text)  # no base_dir: files are refused, as for every hub Secret
    assert (parsed.server, parsed.ca_pem, parsed.token) == ("https://10.0.0.1:6443", ca, "tok1")
    renewed = kubeconfig.parse(membership.with_token(text, "tok2"))
    assert (renewed.server, renewed.ca_pem, renewed.token) == ("https://10.0.0.1:6443", ca, "tok2")


def test_the_member_cluster_join_writes_is_valid_and_leaves_defaults_alone() -> None:
    registration = membership.Registration("de-frankfurt", "DE", "rhein-compute", region="eu-central-1", tee=True,
                                           latency_ms=12)
    manifest = membership.member_cluster(registration)
    parsed = model.MemberCluster.model_validate(manifest)
    assert parsed.spec.kubeconfig_secret_ref.name == "member-de-frankfurt"
    assert parsed.spec.jurisdiction.region == "eu-central-1"
    assert "costPerGPUHour" not in manifest["spec"] and "health" not in manifest["spec"]


def test_the_hub_secret_holds_the_kubeconfig() -> None:
    secret = membership.hub_secret("m1", "kubeconfig text", namespace="ops")
    assert secret["metadata"]["namespace"] == "ops"
    assert base64.b64decode(secret["data"]["kubeconfig"]).decode() == "kubeconfig text"


def test_claims_of_a_bound_token() -> None:
    claims = membership.token_claims(jwt(bound_claims(secret={"name": "samizdat-credential-x", "uid": "s1"})))
    assert claims == membership.TokenClaims("samizdat-system", "samizdat", 1000.0, 1600.0,
                                            membership.Anchor("samizdat-credential-x", "s1"))


@pytest.mark.parametrize("token", [
    pytest.param("not-a-jwt", id="not-a-jwt"),
    pytest.param("a.!!!.c", id="payload-not-base64"),
    pytest.param(jwt({"iss": "kubernetes/serviceaccount"}), id="legacy-secret-token"),
    pytest.param(jwt({**bound_claims(), "exp": None}), id="no-expiry"),
    pytest.param(jwt({**bound_claims(), "kubernetes.io": {"namespace": "x"}}), id="no-service-account"),
])
def test_tokens_that_cannot_be_renewed(token: str) -> None:
    with pytest.raises(membership.NotRenewable):
        membership.token_claims(token)


@pytest.mark.parametrize(("now", "fraction", "due"), [
    pytest.param(1_000, 0.8, False, id="just-issued"),
    pytest.param(1_479, 0.8, False, id="before-80-percent"),
    pytest.param(1_480, 0.8, True, id="at-80-percent"),
    pytest.param(1_700, 0.8, True, id="expired"),
    pytest.param(1_031, 0.05, True, id="small-fraction-renews-early"),
])
def test_renewal_is_due_once_the_fraction_of_the_lifetime_has_passed(now: int, fraction: float, due: bool) -> None:
    claims = membership.token_claims(jwt(bound_claims(issued=1_000, expires=1_600)))
    assert claims.renewal_due(now, fraction) is due


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_the_renewal_point_lies_inside_the_lifetime(fraction: float) -> None:
    claims = membership.token_claims(jwt(bound_claims()))
    with pytest.raises(ValueError):
        claims.renew_at(fraction)


def test_the_fence_judges_samizdats_identity_in_its_workload_namespace_and_may_only_be_raised() -> None:
    objects = membership.fence_objects()
    policies = [obj for obj in objects if obj["kind"] == "ValidatingAdmissionPolicy"]
    bindings = [obj for obj in objects if obj["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert {policy["metadata"]["name"] for policy in policies} == {b["spec"]["policyName"] for b in bindings}
    for policy in policies:
        assert f"== '{membership.USERNAME}'" in policy["spec"]["matchConditions"][0]["expression"]
    guarded = {binding["spec"]["policyName"]: binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"][
        "kubernetes.io/metadata.name"] for binding in bindings}
    assert guarded == {fence.POLICY_NAME: manifests.WORKLOAD_NAMESPACE, fence.GUARD_NAME: membership.IDENTITY_NAMESPACE}
    epoch = membership.fence_epoch()
    assert epoch["data"] == {"epoch": "0"}
    # Outside the namespace it guards: deleting that namespace must not take the fence's params first
    # (the namespace controller could then delete none of the copies, and the namespace would hang).
    assert epoch["metadata"]["namespace"] == membership.IDENTITY_NAMESPACE != manifests.WORKLOAD_NAMESPACE
    (fence_binding,) = [binding for binding in bindings if binding["spec"]["policyName"] == fence.POLICY_NAME]
    assert fence_binding["spec"]["paramRef"]["namespace"] == membership.IDENTITY_NAMESPACE
    fence_rules = [rule for obj in membership.identity_objects() for rule in obj.get("rules", [])
                   if "configmaps" in rule["resources"]]
    # read and raise it; never create (it would need no name) nor delete it
    assert fence_rules == [{"apiGroups": [""], "resources": ["configmaps"],
                            "resourceNames": [membership.fence_epoch()["metadata"]["name"]], "verbs": ["get", "patch"]}]
