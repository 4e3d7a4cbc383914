"""The Lease object the election is kept in: what samizdat writes, and what it refuses to read."""

from __future__ import annotations

import pytest

from samizdat.core.leadership import LeaseRecord, MalformedLease, StoredLease, build_lease, parse_lease


def test_a_lease_round_trips_through_its_object() -> None:
    record = LeaseRecord("alice", 8, 3, "2026-12-01T03:00:00.000000Z", "2026-12-01T03:00:05.000000Z")
    obj = build_lease("samizdat-leader", "samizdat-system", record, "41")
    obj["metadata"]["resourceVersion"] = "42"  # what the hub answers with
    assert parse_lease(obj) == StoredLease(record, "42")
    assert "resourceVersion" not in build_lease("x", "y", record, None)["metadata"]


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"holderIdentity": "a"}, id="no-duration"),
        pytest.param({"holderIdentity": "a", "leaseDurationSeconds": "8"}, id="duration-text"),
        pytest.param({"holderIdentity": "a", "leaseDurationSeconds": 8, "leaseTransitions": -1}, id="negative"),
    ],
)
def test_malformed_leases_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(MalformedLease):
        parse_lease({"metadata": {"resourceVersion": "1"}, "spec": spec})
