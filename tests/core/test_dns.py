"""A workload's DNS record (samizdat.core.dns) and its pinned node port, from values alone."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from samizdat.core import dns, manifests, model
from tests.support.fleet import workload


def with_dns(**dns_spec: Any) -> model.AIWorkload:
    base = workload().model_dump(mode="json", by_alias=True, exclude_none=True)
    base["spec"]["traffic"] = {"dns": {"name": "llm.models.example.org", **dns_spec}}
    return model.AIWorkload.model_validate(base)


def endpoint(cluster: str, *addresses: str) -> model.Endpoint:
    return model.Endpoint(cluster=cluster, jurisdiction="DE", ready_replicas=1, addresses=addresses)


def test_the_record_answers_every_serving_member_on_the_pinned_port() -> None:
    aiw = with_dns(nodePort=31000)
    found = dns.record(aiw, [endpoint("de", "127.0.0.12:31000"), endpoint("fr", "127.0.0.11:31000"),
                             endpoint("v6", "[2001:db8::1]:31000")])
    assert found is not None and (found.port, found.addresses) == (31000, ("127.0.0.11", "127.0.0.12", "2001:db8::1"))
    assert found.manifest["spec"]["endpoints"] == [
        {"dnsName": "llm.models.example.org", "recordType": "A", "recordTTL": 5, "targets": ["127.0.0.11", "127.0.0.12"]},
        {"dnsName": "llm.models.example.org", "recordType": "AAAA", "recordTTL": 5, "targets": ["2001:db8::1"]},
    ]
    metadata = found.manifest["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("llm", "team-a")
    assert metadata["labels"][manifests.UID_LABEL] == aiw.metadata.uid
    assert metadata["ownerReferences"][0]["uid"] == aiw.metadata.uid, "garbage-collected with the workload"
    assert found.message == ""


def test_members_the_record_cannot_answer_are_named() -> None:
    found = dns.record(with_dns(nodePort=31000), [
        endpoint("named", "gpu.example.org:31000"),  # a host name: no A record for it
        endpoint("elsewhere", "127.0.0.3:30123"),  # its Service is not on the pinned port
        endpoint("ok", "127.0.0.4:31000"),
    ])
    assert found is not None and found.addresses == ("127.0.0.4",)
    assert found.unanswered == ("elsewhere", "named") and "elsewhere, named" in found.message


def test_no_serving_member_leaves_no_entry_and_no_dns_no_record() -> None:
    found = dns.record(with_dns(ttlSeconds=30), [])
    assert found is not None and found.manifest["spec"]["endpoints"] == [] and found.addresses == ()
    assert dns.record(workload(), [endpoint("de", "127.0.0.2:31000")]) is None


def test_the_node_port_is_pinned_the_same_everywhere_and_known_before_apply() -> None:
    derived = manifests.pinned_node_port(with_dns())
    assert derived in model.ai_workload.NODE_PORTS and derived == manifests.pinned_node_port(with_dns())
    assert manifests.pinned_node_port(with_dns(nodePort=32001)) == 32001
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "llm-1", "uid": "d-1"}}
    service = manifests.build_service(with_dns(), owner)
    assert service is not None and service["spec"]["ports"][0]["nodePort"] == derived
    assert manifests.service_current(service, with_dns())
    assert not manifests.service_current(service, with_dns(nodePort=32001)), "a new port moves the Service"
    plain = manifests.build_service(workload(), owner)
    assert plain is not None and "nodePort" not in plain["spec"]["ports"][0] and manifests.service_current(plain, workload())


def test_a_training_run_has_no_dns_name_and_a_traffic_address_is_an_ip() -> None:
    base = with_dns().model_dump(mode="json", by_alias=True, exclude_none=True)
    base["spec"]["mode"] = "Train"
    with pytest.raises(pydantic.ValidationError, match="traffic.dns needs mode Serve"):
        model.AIWorkload.model_validate(base)
    spec = {"kubeconfigSecretRef": {"name": "m", "namespace": "samizdat-system"},
            "jurisdiction": {"country": "DE"}, "provider": "p"}
    assert model.MemberClusterSpec.model_validate({**spec, "trafficAddress": "127.0.0.12"}).traffic_address == "127.0.0.12"
    with pytest.raises(pydantic.ValidationError, match="not an IPv4 or IPv6 address"):
        model.MemberClusterSpec.model_validate({**spec, "trafficAddress": "gpu.example.org"})
