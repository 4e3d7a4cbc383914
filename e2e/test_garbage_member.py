"""samizdat.remote.clusters against an HTTPS endpoint that answers every request with 200 and garbage.

Such a member passes TLS and every status check; only what it says is wrong. Every verb must call it
`MemberMalformed` (never success, never a crash on a missing key), and the probe must not call it ready.
A hostile one (50 MB bodies, endless streams, 10 s stalls) is refused or timed out within the client's
caps and deadlines, and what it makes the operator buffer stays bounded however many requests it holds.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.garbage import HUGE_BYTES, Behaviour, GarbageServer
from e2e.sandbox import pki
from samizdat.remote.clusters import client as client_module
from samizdat.remote.clusters import errors, fetching, kubeconfig, probing, resources, watching
from samizdat.remote.clusters.client import Deadlines, ClusterClient

FAST = Deadlines(connect=1.0, read=2.0, request=3.0, watch=5, watch_grace=1.0)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GarbageServer]:
    directory: Path = tmp_path_factory.mktemp("garbage")
    with GarbageServer(pki.ensure_ca(directory / "ca"), directory / "serving") as server:
        yield server


@pytest.fixture
def hostile(garbage: GarbageServer, request: pytest.FixtureRequest) -> Iterator[GarbageServer]:
    """The garbage member behaving as the test's parameter says, malformed again afterwards."""
    garbage.behaviour = request.param
    try:
        yield garbage
    finally:
        garbage.behaviour = Behaviour.MALFORMED


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


@pytest.mark.parametrize("hostile", [Behaviour.HUGE], indirect=True)
async def test_huge_replies_are_refused_and_buffered_one_at_a_time(hostile: GarbageServer) -> None:
    async with client_of(hostile) as client:
        result = await probing.probe(client)
        assert (result.ok, result.failure) == (False, "malformed"), result
        with pytest.raises(errors.MemberMalformed, match="carries no resourceVersion"):
            await fetching.list_objects(client, resources.NODES)

    # Six views of one member listing at once: without the member's one large-reply slot each would
    # hold its 50 MB (and its copy) at the same time.
    slow = Deadlines(connect=2.0, read=10.0, request=60.0)

    async def refused(client: ClusterClient) -> str:
        # As a view does: the error's message kept, the error (whose frames hold the body) let go.
        try:
            await fetching.list_objects(client, resources.PODS)
        except errors.MemberMalformed as error:
            return error.message
        return "listed"

    async with ClusterClient("garbage", kubeconfig.parse(hostile.kubeconfig("garbage")), deadlines=slow) as client:
        tracemalloc.start()
        try:
            outcomes = await asyncio.gather(*(refused(client) for _ in range(6)))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert all("carries no resourceVersion" in outcome for outcome in outcomes), outcomes
    assert peak < 3.5 * HUGE_BYTES + 6 * client_module.LARGE_REPLY_BYTES + 5 * 2**20, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("hostile", [Behaviour.ENDLESS], indirect=True)
async def test_endless_replies_are_cut_at_the_caps(hostile: GarbageServer) -> None:
    async with client_of(hostile) as client:
        with pytest.raises(errors.MemberMalformed, match=f"reply exceeds {client_module.MAX_REPLY_BYTES} bytes"):
            await client.request("GET", "/api/v1/nodes", deadline=60)
        started = time.monotonic()
        with pytest.raises(errors.MemberMalformed, match="a watch event exceeds"):
            async for _ in watching.watch(client, resources.NODES, resource_version="1"):
                pass
        # Cut by the size of what it sent, not at the end of the watch's deadline.
        assert time.monotonic() - started < FAST.watch + FAST.watch_grace


@pytest.mark.parametrize("hostile", [Behaviour.STALL], indirect=True)
async def test_stalls_end_within_the_deadlines(hostile: GarbageServer) -> None:
    async with client_of(hostile) as client:
        started = time.monotonic()
        result = await probing.probe(client, timeout=1.0)
        assert (result.ok, result.failure) == (False, "timeout"), result
        with pytest.raises(errors.MemberTimeout):
            await fetching.list_objects(client, resources.NODES)
        assert time.monotonic() - started < 1.0 + FAST.request + 1.0
