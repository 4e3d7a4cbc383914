"""A workload's DNS name (`spec.traffic.dns`): the external-dns `DNSEndpoint` samizdat keeps in the hub
for it, built from the workload's endpoints. Pure: values in, the object to write out.

external-dns, run by the user with `--source=crd` against any of its providers (Route53, Cloudflare,
RFC 2136, ...), turns the DNSEndpoint into records. samizdat only says which addresses the name answers:
one per member that counts and has a Ready serving replica reachable on the workload's pinned node port,
so a lost, quarantined or starving member leaves the answers in the same reconcile that moves its
replicas, and a new one joins once its replica is Ready. Standbys serve no one and are never listed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from samizdat.core import manifests, model
from samizdat.core.model.ai_workload import AI_WORKLOAD

API_VERSION: Final = "externaldns.k8s.io/v1alpha1"
KIND: Final = "DNSEndpoint"


@dataclass(frozen=True, slots=True)
class Record:
    """The DNSEndpoint for one workload and what it says."""

    manifest: dict[str, Any]
    name: str
    port: int
    addresses: tuple[str, ...]  # IPv4 first, then IPv6, each sorted
    unanswered: tuple[str, ...]  # serving members the name cannot answer: no IP address, or not on the port

    @property
    def message(self) -> str:
        if not self.unanswered:
            return ""
        return (f"serving members not answered by {self.name}: {', '.join(self.unanswered)} (no IP address, "
                f"or no Service on node port {self.port}: see MemberCluster spec.trafficAddress)")


def record(workload: model.AIWorkload, endpoints: Iterable[model.Endpoint]) -> Record | None:
    """The workload's DNSEndpoint answering the hosts of `endpoints` (the workload's status.endpoints)
    that listen on its pinned node port; None for a workload without spec.traffic.dns."""
    dns = workload.spec.traffic.dns
    if dns is None:
        return None
    port = manifests.pinned_node_port(workload)
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    unanswered = []
    for endpoint in endpoints:
        hosts = [_ip(host) for host, _, at in (a.rpartition(":") for a in endpoint.addresses) if at == str(port)]
        usable = [host for host in hosts if host is not None]
        if usable:
            found.update(usable)
        else:
            unanswered.append(endpoint.cluster)
    v4 = sorted(str(ip) for ip in found if ip.version == 4)
    v6 = sorted(str(ip) for ip in found if ip.version == 6)
    entries = [{"dnsName": dns.name, "recordType": kind, "recordTTL": dns.ttl_seconds, "targets": targets}
               for kind, targets in (("A", v4), ("AAAA", v6)) if targets]
    metadata = workload.metadata
    manifest = {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {
            "name": metadata.name, "namespace": metadata.namespace,
            "labels": {**manifests.MANAGED_BY, manifests.UID_LABEL: metadata.uid or ""},
            # The hub's garbage collector removes the record with the workload, should samizdat not.
            "ownerReferences": [{"apiVersion": model.API_VERSION, "kind": AI_WORKLOAD, "name": metadata.name,
                                 "uid": metadata.uid or "", "controller": True}],
        },
        # No serving member: no entry, and external-dns removes the name's records.
        "spec": {"endpoints": entries},
    }
    return Record(manifest, dns.name, port, (*v4, *v6), tuple(sorted(unanswered)))


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None  # a host name: an A record cannot answer it
