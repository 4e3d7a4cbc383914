"""What registering a member means, as pure values: its side (identity, RBAC), its credential, the hub's side.

One source of truth for `samizdat join` and `unjoin`, the operator's credential renewal, the manual steps
in docs/operations.md (a test holds the guide to `member_objects()`) and the sandbox. Like `manifests`,
these builders take values and return dicts; they never talk to an API.

The identity in a member may do what the operator does there and nothing else: read nodes, pods and
namespaces; manage Deployments, Jobs and Services (and stop or relabel their pods) in `samizdat-workloads`;
raise the fence epoch, kept in `samizdat-system`; and request tokens for itself alone, which is how the operator renews its
credential before it expires.

Every member also gets the fence (`leadership.fence`): admission policies in the member's own API server
that refuse the identity's writes from a leader epoch older than the fence epoch, which the leader raises
before its first write there. `join` creates the fence epoch at 0 only when it is missing: applying it
again would lower it, and only samizdat's identity is held to "only grows". `unjoin` leaves the fence's
policies and bindings: they judge samizdat's identity only, which it removes, and a member API server
that saw a binding deleted and created again was found to keep refusing with "no params found" for it.

Credentials expire and can be withdrawn. Each token is minted through the TokenRequest API with a bounded
lifetime and *bound* to a credential Secret in the member, created per `join`: the member's API server
refuses a bound token once that Secret is gone. So a second `join` (a rotation) mints a token bound to a
new Secret and deletes the old ones, and every older token, whoever holds a copy, stops working; the
operator's renewals bind to the Secret of the token they renew, so they never outlive a rotation. The
Secret holds nothing: it is only the anchor of the tokens' validity.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from samizdat.core.leadership import fence
from samizdat.core.manifests import MANAGED_BY, WORKLOAD_NAMESPACE
from samizdat.core.model import API_VERSION
from samizdat.core.model.member_cluster import MEMBER_CLUSTER

IDENTITY_NAMESPACE: Final = "samizdat-system"  # in the member: where samizdat's ServiceAccount lives
IDENTITY: Final = "samizdat"  # the ServiceAccount
USERNAME: Final = f"system:serviceaccount:{IDENTITY_NAMESPACE}:{IDENTITY}"  # as the member's API server names it
READER_ROLE: Final = "samizdat-member-reader"
WORKLOADS_ROLE: Final = "samizdat-workloads"
TOKEN_ROLE: Final = "samizdat-token-renewal"
FENCE_ROLE: Final = "samizdat-fence-epoch"
# Set only on a namespace `join` created itself, so `unjoin` never deletes one that held something else
# first (a hub that is also registered as a member keeps its own `samizdat-system`).
CREATED_BY_JOIN: Final = {"samizdat.io/created-by": "join"}
CREDENTIAL_PREFIX: Final = "samizdat-credential-"
CREDENTIAL_LABEL: Final = "samizdat.io/credential"
CREDENTIAL_SELECTOR: Final = f"{CREDENTIAL_LABEL}=member-identity"

HUB_SECRET_NAMESPACE: Final = "samizdat-system"  # the chart's memberSecretsNamespace by default
HUB_SECRET_KEY: Final = "kubeconfig"
MEMBER_LABEL: Final = "samizdat.io/member"

# The TokenRequest API's minimum; a day by default, so a copy of the hub's Secrets is useless a day later.
MIN_TOKEN_LIFETIME_S: Final = 600
DEFAULT_TOKEN_LIFETIME_S: Final = 24 * 3600
# The operator renews a token once this fraction of its lifetime has passed (the kubelet's choice for
# projected tokens): a failing renewal then shows a fifth of the lifetime before the token expires.
DEFAULT_RENEW_AT: Final = 0.8

RBAC: Final = "rbac.authorization.k8s.io"
_READ: Final = ["get", "list", "watch"]
_MANAGE: Final = [*_READ, "create", "update", "patch", "delete"]


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def _subjects() -> list[dict[str, str]]:
    return [{"kind": "ServiceAccount", "name": IDENTITY, "namespace": IDENTITY_NAMESPACE}]


def _role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": kind, "name": name}


def identity_namespace() -> dict[str, Any]:
    """The namespace of samizdat's identity in a member (`join` creates it only if it is missing)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(IDENTITY_NAMESPACE)}


def identity_objects() -> list[dict[str, Any]]:
    """samizdat's least-privilege identity in a member, in the order to apply it: no cluster-admin, no
    Secrets, no writes outside its own namespace, tokens only for itself."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(WORKLOAD_NAMESPACE)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(IDENTITY, IDENTITY_NAMESPACE)},
        {
            "apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": _meta(READER_ROLE),
            # GPU inventory, readiness, and whether our namespace still exists
            "rules": [{"apiGroups": [""], "resources": ["nodes", "pods", "namespaces"], "verbs": list(_READ)}],
        },
        {
            "apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": _meta(READER_ROLE),
            "roleRef": _role_ref("ClusterRole", READER_ROLE), "subjects": _subjects(),
        },
        {
            "apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": _meta(WORKLOADS_ROLE, WORKLOAD_NAMESPACE),
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": list(_MANAGE)},
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": list(_MANAGE)},
                {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": list(_READ)},
                # fencing: stale replicas are stopped at once even when the member's controllers lag;
                # patch: a pod's samizdat.io/role label, set in place (a standby promoted, no restart)
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch", "delete", "deletecollection"]},
                # the Service per copy that selects serving pods only (status.endpoints)
                {"apiGroups": [""], "resources": ["services"], "verbs": list(_MANAGE)},
                {"apiGroups": [""], "resources": ["events"], "verbs": list(_READ)},
            ],
        },
        {
            "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": _meta(WORKLOADS_ROLE, WORKLOAD_NAMESPACE),
            "roleRef": _role_ref("Role", WORKLOADS_ROLE), "subjects": _subjects(),
        },
        {
            "apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": _meta(TOKEN_ROLE, IDENTITY_NAMESPACE),
            # renewal: a token for this ServiceAccount and no other
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": [IDENTITY],
                       "verbs": ["create"]}],
        },
        {
            "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": _meta(TOKEN_ROLE, IDENTITY_NAMESPACE),
            "roleRef": _role_ref("Role", TOKEN_ROLE), "subjects": _subjects(),
        },
        {
            "apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": _meta(FENCE_ROLE, IDENTITY_NAMESPACE),
            # the fence epoch: read it and raise it (its guard refuses lowering or deleting it)
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [fence.FENCE_NAME],
                       "verbs": ["get", "patch"]}],
        },
        {
            "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": _meta(FENCE_ROLE, IDENTITY_NAMESPACE),
            "roleRef": _role_ref("Role", FENCE_ROLE), "subjects": _subjects(),
        },
    ]


def fence_epoch() -> dict[str, Any]:
    """The member's fence epoch as `join` creates it when missing (never applied over an existing one)."""
    return fence.build_fence_epoch(IDENTITY_NAMESPACE, 0)


def fence_objects() -> list[dict[str, Any]]:
    """The fence's admission policies and bindings, to apply after the fence epoch exists."""
    return fence.build_checks(WORKLOAD_NAMESPACE, IDENTITY_NAMESPACE, USERNAME)


def member_objects() -> list[dict[str, Any]]:
    """Everything samizdat is made of in a member, as docs/operations.md lists it."""
    return [identity_namespace(), *identity_objects(), fence_epoch(), *fence_objects()]


def credential_secret() -> dict[str, Any]:
    """A new credential Secret (the API server picks its name): the anchor tokens of one `join` bind to."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "generateName": CREDENTIAL_PREFIX, "namespace": IDENTITY_NAMESPACE,
            "labels": {**MANAGED_BY, CREDENTIAL_LABEL: "member-identity"},
            "annotations": {"samizdat.io/purpose": "samizdat's tokens in this cluster are valid while this exists"},
        },
    }


@dataclass(frozen=True, slots=True)
class Anchor:
    """The credential Secret a token is bound to (its name and uid, as the token's claims carry them)."""

    name: str
    uid: str


def token_request(lifetime_s: int, anchor: Anchor) -> dict[str, Any]:
    """A TokenRequest for samizdat's ServiceAccount, valid `lifetime_s` seconds and while `anchor` exists."""
    if lifetime_s < MIN_TOKEN_LIFETIME_S:
        raise ValueError(f"a token lives at least {MIN_TOKEN_LIFETIME_S} s (the TokenRequest API's minimum)")
    return {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {
            # No audiences: the API server's own, so the token is good for the member's API and nothing else.
            "expirationSeconds": lifetime_s,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": anchor.name, "uid": anchor.uid},
        },
    }


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to reach a member's API server, as the joining user's kubeconfig says."""

    server: str
    ca_pem: str | None = None
    tls_server_name: str | None = None
    insecure_skip_tls_verify: bool = False


def kubeconfig(member: str, endpoint: Endpoint, token: str) -> str:
    """A self-contained kubeconfig for samizdat's identity in `member`: embedded CA, the token inline."""
    cluster: dict[str, Any] = {"server": endpoint.server}
    if endpoint.ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(endpoint.ca_pem.encode()).decode()
    if endpoint.tls_server_name is not None:
        cluster["tls-server-name"] = endpoint.tls_server_name
    if endpoint.insecure_skip_tls_verify:
        cluster["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": member, "cluster": cluster}],
        "users": [{"name": IDENTITY, "user": {"token": token}}],
        "contexts": [{"name": member, "context": {"cluster": member, "user": IDENTITY}}],
        "current-context": member,
    }
    return yaml.safe_dump(config, sort_keys=False)


def with_token(kubeconfig_text: str, token: str) -> str:
    """The same kubeconfig (as `kubeconfig` wrote it) with its one user's token replaced."""
    config = yaml.safe_load(kubeconfig_text)
    users = config.get("users") if isinstance(config, dict) else None
    if not isinstance(users, list) or len(users) != 1 or not isinstance(users[0].get("user"), dict):
        raise ValueError("not a kubeconfig with exactly one user")
    users[0]["user"] = {"token": token}
    return yaml.safe_dump(config, sort_keys=False)


def hub_secret_name(member: str) -> str:
    return f"member-{member}"


def hub_secret(member: str, kubeconfig_text: str, *, namespace: str = HUB_SECRET_NAMESPACE) -> dict[str, Any]:
    """The hub Secret holding a member's kubeconfig (the MemberCluster refers to it)."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": hub_secret_name(member), "namespace": namespace,
                     "labels": {**MANAGED_BY, MEMBER_LABEL: member}},
        "data": {HUB_SECRET_KEY: base64.b64encode(kubeconfig_text.encode()).decode()},
    }


@dataclass(frozen=True, slots=True)
class Registration:
    """What the hub's MemberCluster says about a member: where it is, who runs it, what it costs."""

    name: str
    country: str
    provider: str
    region: str | None = None
    tee: bool = False
    cost_per_gpu_hour: float | None = None
    latency_ms: float | None = None
    down_after_seconds: int | None = None
    secret_namespace: str = HUB_SECRET_NAMESPACE


def member_cluster(registration: Registration) -> dict[str, Any]:
    """The MemberCluster registering a member; fields left unset keep the CRD's defaults."""
    jurisdiction = {"country": registration.country}
    if registration.region is not None:
        jurisdiction["region"] = registration.region
    spec: dict[str, Any] = {
        "kubeconfigSecretRef": {"name": hub_secret_name(registration.name),
                                "namespace": registration.secret_namespace, "key": HUB_SECRET_KEY},
        "jurisdiction": jurisdiction,
        "provider": registration.provider,
        "tee": registration.tee,
    }
    if registration.cost_per_gpu_hour is not None:
        spec["costPerGPUHour"] = registration.cost_per_gpu_hour
    if registration.latency_ms is not None:
        spec["latencyMs"] = registration.latency_ms
    if registration.down_after_seconds is not None:
        spec["health"] = {"downAfterSeconds": registration.down_after_seconds}
    return {"apiVersion": API_VERSION, "kind": MEMBER_CLUSTER, "metadata": _meta(registration.name), "spec": spec}


# ----- what a token says about itself, and when to renew it


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What the operator needs from a ServiceAccount token's claims to renew it (times in epoch seconds)."""

    namespace: str
    service_account: str
    issued_at: float
    expires_at: float
    anchor: Anchor | None  # the Secret it is bound to; None for a token bound to nothing (or to a pod)

    @property
    def lifetime_s(self) -> float:
        return self.expires_at - self.issued_at

    def renew_at(self, fraction: float = DEFAULT_RENEW_AT) -> float:
        """When to renew: once `fraction` of the lifetime has passed."""
        if not 0 < fraction < 1:
            raise ValueError("the renewal point is a fraction of the lifetime, between 0 and 1")
        return self.issued_at + fraction * self.lifetime_s

    def renewal_due(self, now: float, fraction: float = DEFAULT_RENEW_AT) -> bool:
        return now >= self.renew_at(fraction)


class NotRenewable(ValueError):
    """The credential is not a ServiceAccount token with an expiry: nothing to renew (or it cannot be read)."""


def token_claims(token: str) -> TokenClaims:
    """The claims of a ServiceAccount token (a JWT), read without checking its signature.

    The signature is the member's business: the operator only reads its own token to know when to renew
    it and what it is bound to, and a forged claim at worst makes it renew early or be refused.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise NotRenewable("the token is not a JWT")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        raise NotRenewable("the token's claims are not base64-encoded JSON") from None
    if not isinstance(payload, Mapping):
        raise NotRenewable("the token's claims are not a JSON object")
    kubernetes = payload.get("kubernetes.io")
    if not isinstance(kubernetes, Mapping):
        raise NotRenewable("not a ServiceAccount token from the TokenRequest API (no kubernetes.io claims)")
    issued, expires = payload.get("iat"), payload.get("exp")
    if not isinstance(issued, (int, float)) or not isinstance(expires, (int, float)) or expires <= issued:
        raise NotRenewable("the token has no expiry")
    account = kubernetes.get("serviceaccount")
    namespace = kubernetes.get("namespace")
    if not isinstance(account, Mapping) or not isinstance(account.get("name"), str) or not isinstance(namespace, str):
        raise NotRenewable("the token names no ServiceAccount")
    secret = kubernetes.get("secret")
    anchor = (
        Anchor(secret["name"], secret["uid"])
        if isinstance(secret, Mapping) and isinstance(secret.get("name"), str) and isinstance(secret.get("uid"), str)
        else None
    )
    return TokenClaims(namespace, account["name"], float(issued), float(expires), anchor)
