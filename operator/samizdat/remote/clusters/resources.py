"""The kinds of objects samizdat touches in member clusters (and the hub's Secrets), and their URLs.

A deliberately closed list: samizdat's identity in a member may only read nodes, pods and namespaces,
manage Deployments and Jobs in its own namespace and request tokens for itself, so there is no need for
API discovery — and a hostile member cannot steer us to other endpoints by lying in its discovery
documents. `samizdat join` and `unjoin`, acting as the user, also write the identity itself (the
ServiceAccount and its RBAC) and the hub's MemberClusters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Resource:
    """One API resource: where it lives (`group`/`version`), its `plural` name and whether it is namespaced."""

    group: str  # "" for the core API
    version: str
    plural: str
    kind: str
    namespaced: bool
    scalable: bool = False  # has a `/scale` subresource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection, or of one object (and one of its subresources)."""
        if namespace is not None and not self.namespaced:
            raise ValueError(f"{self.plural} are cluster-scoped: namespace={namespace!r} does not fit")
        if namespace is None and self.namespaced and name is not None:
            raise ValueError(f"{self.plural} are namespaced: {name!r} needs a namespace")
        if subresource is not None and name is None:
            raise ValueError("a subresource needs an object name")
        parts = ["api", self.version] if not self.group else ["apis", self.group, self.version]
        if namespace is not None:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        # Names come from manifests and members: never let a "/" or ".." in one change the endpoint.
        return "/" + "/".join(quote(part, safe="") for part in parts)


NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
PODS = Resource("", "v1", "pods", "Pod", namespaced=True)
SECRETS = Resource("", "v1", "secrets", "Secret", namespaced=True)
SERVICES = Resource("", "v1", "services", "Service", namespaced=True)
EVENTS = Resource("", "v1", "events", "Event", namespaced=True)  # in the hub: samizdat's own Events
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)  # a member's fence epoch
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment", namespaced=True, scalable=True)
JOBS = Resource("batch", "v1", "jobs", "Job", namespaced=True)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)  # the hub's election
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount", namespaced=True)
CLUSTERROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False)
CLUSTERROLEBINDINGS = Resource(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
)
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", namespaced=True)
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", namespaced=True)
MEMBERCLUSTERS = Resource("samizdat.io", "v1alpha1", "memberclusters", "MemberCluster", namespaced=False)
AIWORKLOADS = Resource("samizdat.io", "v1alpha1", "aiworkloads", "AIWorkload", namespaced=True)  # in the hub
# a workload's DNS name in the hub, read by external-dns (`samizdat.core.dns`)
DNSENDPOINTS = Resource("externaldns.k8s.io", "v1alpha1", "dnsendpoints", "DNSEndpoint", namespaced=True)
# a member's fence (`leadership.fence`), installed by `join`
ADMISSION_POLICIES = Resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies",
                              "ValidatingAdmissionPolicy", namespaced=False)
ADMISSION_POLICY_BINDINGS = Resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
                                     "ValidatingAdmissionPolicyBinding", namespaced=False)

KNOWN: tuple[Resource, ...] = (
    NAMESPACES, NODES, PODS, SECRETS, SERVICES, EVENTS, CONFIGMAPS, DEPLOYMENTS, JOBS, LEASES,
    SERVICEACCOUNTS, CLUSTERROLES, CLUSTERROLEBINDINGS, ROLES, ROLEBINDINGS, MEMBERCLUSTERS, AIWORKLOADS, DNSENDPOINTS,
    ADMISSION_POLICIES, ADMISSION_POLICY_BINDINGS,
)
_BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in KNOWN}


def of(manifest: Mapping[str, Any]) -> Resource:
    """The resource a manifest belongs to, from its `apiVersion` and `kind`."""
    return of_kind(str(manifest.get("apiVersion", "")), str(manifest.get("kind", "")))


def of_kind(api_version: str, kind: str) -> Resource:
    """The resource of objects of `kind` in `api_version`; ValueError for one samizdat does not touch."""
    try:
        return _BY_KIND[(api_version, kind)]
    except KeyError:
        known = ", ".join(f"{r.api_version} {r.kind}" for r in KNOWN)
        raise ValueError(f"no known resource for apiVersion={api_version!r} kind={kind!r} (known: {known})") from None
