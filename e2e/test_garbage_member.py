"""samizdat.remote.clusters against an HTTPS endpoint that answers every request with 200 and malformed JSON.

Such a member passes TLS and every status check; only what it says is wrong. Every verb must call it
`MemberMalformed` (never success, never a crash on a missing key), and the probe must not call it ready.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.garbage import GarbageServer
from e2e.sandbox import pki
from samizdat.remote.clusters import errors, fetching, kubeconfig, probing, resources, watching
from samizdat.remote.clusters.client import Deadlines, ClusterClient

FAST = Deadlines(connect=1.0, read=2.0, request=3.0, watch=5, watch_grace=1.0)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GarbageServer]:
    directory: Path = tmp_path_factory.mktemp("garbage")
    with GarbageServer(pki.ensure_ca(directory / "ca"), directory / "serving") as server:
        yield server


def client_of(garbage: GarbageServer) -> ClusterClient:
    return ClusterClient("garbage", kubeconfig.parse(garbage.kubeconfig("garbage")), deadlines=FAST)


async def test_the_probe_calls_a_garbage_member_malformed_not_ready(garbage: GarbageServer) -> None:
    before = garbage.requests
    async with client_of(garbage) as client:
        result = await probing.probe(client)
    assert (result.ok, result.failure) == (False, "malformed"), result
    assert result.message == "GET /readyz: answered 200 without the API server's 'ok'", result
    assert garbage.requests > before, "the probe never reached the endpoint"


async def test_reads_of_a_garbage_member_are_malformed(garbage: GarbageServer) -> None:
    async with client_of(garbage) as client:
        with pytest.raises(errors.MemberMalformed, match="reply is not JSON"):
            await fetching.get(client, resources.NODES, "gpu-0")
        with pytest.raises(errors.MemberMalformed, match="reply is not JSON"):
            await fetching.list_objects(client, resources.PODS)


async def test_watches_of_a_garbage_member_are_malformed(garbage: GarbageServer) -> None:
    async with client_of(garbage) as client:
        with pytest.raises(errors.MemberMalformed, match="watch of nodes carries a line that is not JSON"):
            async for _ in watching.watch(client, resources.NODES, resource_version="1"):
                pass
        stream = watching.list_then_watch(client, resources.NODES)
        with pytest.raises(errors.MemberMalformed):
            await anext(stream)
        await stream.aclose()
