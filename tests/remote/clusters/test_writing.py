"""The write path's guard: no permit, nothing sent; a permit, the epoch on the object and a deadline."""

from __future__ import annotations

from typing import Any

import pytest

from samizdat.remote.clusters import applying, client, errors, writing
from samizdat.remote.clusters.kubeconfig import Credentials
from samizdat.core.leadership import EPOCH_ANNOTATION, Permit

# Nothing listens on port 9 of the loopback: a request that is really sent is refused at once.
NOBODY = "https://127.0.0.1:9"
MANIFEST: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "d", "namespace": "n", "annotations": {"samizdat.io/replicas": "2"}},
    "spec": {"replicas": 2},
}


class Fixed:
    """An authority that always answers the same (the election is tested in test_leadership)."""

    def __init__(self, permit: Permit | None) -> None:
        self.answer = permit
        self.asked = 0

    def permit(self) -> Permit | None:
        self.asked += 1
        return self.answer


def test_a_whole_object_is_stamped_with_the_epoch_and_the_callers_copy_is_untouched() -> None:
    stamped = writing.stamped(MANIFEST, 7)
    assert stamped["metadata"]["annotations"] == {"samizdat.io/replicas": "2", EPOCH_ANNOTATION: "7"}
    assert EPOCH_ANNOTATION not in MANIFEST["metadata"]["annotations"]
    assert writing.stamped({"metadata": {"name": "x"}}, 1)["metadata"]["annotations"] == {EPOCH_ANNOTATION: "1"}


def test_a_merge_patch_of_the_spec_is_stamped_too() -> None:
    patch = writing.stamped({"spec": {"replicas": 0}}, 7)
    assert patch == {"spec": {"replicas": 0}, "metadata": {"annotations": {EPOCH_ANNOTATION: "7"}}}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"},
                     id="delete-options"),
        pytest.param({"status": {"phase": "Ready"}}, id="status-patch"),
    ],
)
def test_bodies_without_object_metadata_are_sent_as_they_are(body: dict[str, Any]) -> None:
    assert writing.stamped(body, 7) is body


async def test_without_a_permit_nothing_is_sent() -> None:
    authority = Fixed(None)
    async with client.ClusterClient("m", Credentials(server=NOBODY), authority=authority) as member:
        with pytest.raises(errors.NotLeader, match="not the leader"):
            await applying.apply(member, MANIFEST)
    assert authority.asked == 1


async def test_with_a_permit_the_write_is_sent() -> None:
    authority = Fixed(Permit(epoch=3, seconds_left=2.0))
    async with client.ClusterClient("m", Credentials(server=NOBODY), authority=authority) as member:
        with pytest.raises(errors.MemberUnreachable):  # it went out, and found nobody
            await applying.apply(member, MANIFEST)
    assert authority.asked == 1


async def test_a_client_without_an_authority_writes_unguarded() -> None:
    async with client.ClusterClient("m", Credentials(server=NOBODY)) as member:
        with pytest.raises(errors.MemberUnreachable):
            await applying.apply(member, MANIFEST)
