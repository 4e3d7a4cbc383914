"""samizdat.remote.clusters against real member API servers: reads, the write path, watches, and every fault.

Each fault test hurts the last member and heals it in a `finally`, so the rest of the session sees a
whole sandbox. Deadlines are short and asserted on: the point of the I/O layer is that a dead or
partitioned member costs a bounded, known time, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from e2e.sandbox import members
from e2e.sandbox.world import Sandbox
from e2e.workloads import bare_deployment
from samizdat.core import manifests
from samizdat.remote.clusters import applying, deleting, errors, fetching, kubeconfig, probing, resources, scaling, watching
from samizdat.remote.clusters.client import Deadlines, ClusterClient
from samizdat.remote.fleet import tampering

NAMESPACE = members.WORKLOAD_NAMESPACE
FAST = Deadlines(connect=1.0, read=2.0, request=3.0, watch=5, watch_grace=1.0)

pytestmark = pytest.mark.timeout(240)


def identity(sandbox: Sandbox, member: str, deadlines: Deadlines = FAST) -> ClusterClient:
    """A client with samizdat's least-privilege identity in `member`, from the kubeconfig file."""
    return ClusterClient(member, kubeconfig.load(sandbox.identity_kubeconfig_path(member)), deadlines=deadlines)


def deployment(name: str, *, replicas: int = 1, namespace: str = NAMESPACE) -> dict[str, Any]:
    return bare_deployment(name, "member-client", replicas=replicas, gpus=1, namespace=namespace)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 60, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")


@pytest.fixture
def victim(sandbox: Sandbox) -> str:
    return sandbox.member_names[-1]


@contextlib.asynccontextmanager
async def hurt(sandbox: Sandbox, victim: str, fault: Callable[[str], None]) -> AsyncIterator[None]:
    fault(victim)
    try:
        yield
    finally:
        sandbox.heal(victim)


# ----- reading


async def test_every_member_is_reached_through_its_kubeconfig_secret_in_the_hub(sandbox: Sandbox) -> None:
    hub_credentials = kubeconfig.load(sandbox.admin_kubeconfig("hub"))
    async with ClusterClient("hub", hub_credentials, deadlines=FAST) as hub:
        for member in sandbox.member_names:
            text = await fetching.read_secret(hub, namespace=members.SYSTEM_NAMESPACE, name=f"member-{member}",
                                              key="kubeconfig")
            # Exactly what the operator will do: the Secret's text, parsed with no file access.
            async with ClusterClient(member, kubeconfig.parse(text), deadlines=FAST) as client:
                listing = await fetching.list_objects(client, resources.NODES,
                                                      label_selector="nvidia.com/gpu.present=true")
                assert listing.items, f"{member}: no GPU nodes listed"
                assert listing.resource_version
                node = listing.items[0]
                assert node["kind"] == "Node" and node["apiVersion"] == "v1"
                assert int(node["status"]["allocatable"]["nvidia.com/gpu"]) >= 1
                fetched = await fetching.get(client, resources.NODES, node["metadata"]["name"])
                assert fetched["metadata"]["labels"] == node["metadata"]["labels"]


async def test_lists_page_through_large_collections(sandbox: Sandbox) -> None:
    member = sandbox.member_names[0]
    async with identity(sandbox, member) as client:
        whole = await fetching.list_objects(client, resources.NODES)
        paged = await fetching.list_objects(client, resources.NODES, page_size=1)
    assert len(whole.items) >= 2
    assert sorted(n["metadata"]["name"] for n in paged.items) == sorted(n["metadata"]["name"] for n in whole.items)


async def test_missing_objects_and_secret_keys_are_not_found(sandbox: Sandbox) -> None:
    member = sandbox.member_names[0]
    async with identity(sandbox, member) as client:
        with pytest.raises(errors.NotFound) as caught:
            await fetching.get(client, resources.DEPLOYMENTS, "no-such-deployment", namespace=NAMESPACE)
        assert caught.value.member == member and caught.value.status == 404
        assert "not found" in caught.value.message
    async with ClusterClient("hub", kubeconfig.load(sandbox.admin_kubeconfig("hub")), deadlines=FAST) as hub:
        with pytest.raises(errors.NotFound, match="no key"):
            await fetching.read_secret(hub, namespace=members.SYSTEM_NAMESPACE, name=f"member-{member}", key="nope")


# ----- the write path and watches


async def test_apply_is_idempotent_watch_sees_it_and_delete_is_idempotent(sandbox: Sandbox) -> None:
    member = sandbox.member_names[0]
    name = "io-layer-apply"
    async with identity(sandbox, member, Deadlines(watch=20)) as client:
        listing = await fetching.list_objects(client, resources.DEPLOYMENTS, namespace=NAMESPACE)
        seen: list[watching.WatchEvent] = []

        async def watch_until(kind: str) -> None:
            async for event in watching.watch(client, resources.DEPLOYMENTS, namespace=NAMESPACE,
                                              resource_version=listing.resource_version):
                seen.append(event)
                if event.type == kind and event.object["metadata"]["name"] == name:
                    return

        added = asyncio.create_task(watch_until("ADDED"))
        try:
            first = await applying.apply(client, deployment(name))
            second = await applying.apply(client, deployment(name))
            # Server-side apply of an unchanged manifest changes nothing of ours: the spec's generation
            # stays, and so does the time our field manager last changed something. (resourceVersion
            # may move: the member's deployment controller writes status in between.)
            assert first["metadata"]["uid"] == second["metadata"]["uid"]
            assert second["metadata"]["generation"] == first["metadata"]["generation"] == 1
            assert _applied_at(second) == _applied_at(first)
            await asyncio.wait_for(added, 15)

            assert await scaling.scale(client, resources.DEPLOYMENTS, name, namespace=NAMESPACE, replicas=0) == 0
            scaled = await fetching.get(client, resources.DEPLOYMENTS, name, namespace=NAMESPACE)
            assert scaled["spec"]["replicas"] == 0
            # What samizdat asked for moves in the same request, so a watcher without memory of the write (a
            # standby operator, a restarted one) does not read our own scale-down as a censor's.
            assert scaled["metadata"]["annotations"][manifests.REPLICAS_ANNOTATION] == "0"
            assert tampering(scaled) is None
            # Taking it back: our next apply restores the replica count we own.
            third = await applying.apply(client, deployment(name, replicas=2))
            assert third["spec"]["replicas"] == 2
        finally:
            added.cancel()
            deleted = await deleting.delete(client, resources.DEPLOYMENTS, name, namespace=NAMESPACE)
        assert deleted is True
        assert await deleting.delete(client, resources.DEPLOYMENTS, name, namespace=NAMESPACE) is False
        with pytest.raises(errors.NotFound):
            await fetching.get(client, resources.DEPLOYMENTS, name, namespace=NAMESPACE)
        seen.clear()
        await asyncio.wait_for(watch_until("DELETED"), 15)
        assert seen[-1].type == "DELETED"


def _applied_at(obj: dict[str, Any]) -> str:
    """When the field manager "samizdat" last changed the object by apply."""
    entries = [e for e in obj["metadata"]["managedFields"] if (e["manager"], e["operation"]) == ("samizdat", "Apply")]
    assert len(entries) == 1, obj["metadata"]["managedFields"]
    return str(entries[0]["time"])


async def test_list_then_watch_lists_then_streams_changes(sandbox: Sandbox) -> None:
    member = sandbox.member_names[0]
    name = "io-layer-stream"
    async with identity(sandbox, member, Deadlines(watch=3, watch_grace=2)) as client:
        stream = watching.list_then_watch(client, resources.DEPLOYMENTS, namespace=NAMESPACE)
        try:
            first = await asyncio.wait_for(anext(stream), 5)
            assert isinstance(first, fetching.Listing)
            assert name not in {d["metadata"]["name"] for d in first.items}
            await applying.apply(client, deployment(name))
            # Across at least one server-side end of the watch (timeoutSeconds=3), without a gap.
            await asyncio.sleep(4)
            types = []
            while True:
                item = await asyncio.wait_for(anext(stream), 10)
                assert isinstance(item, watching.WatchEvent)
                types.append(item.type)
                if item.type == "ADDED" and item.object["metadata"]["name"] == name:
                    break
        finally:
            await stream.aclose()
            await deleting.delete(client, resources.DEPLOYMENTS, name, namespace=NAMESPACE)


async def test_watch_from_an_expired_version_is_gone(sandbox: Sandbox, victim: str) -> None:
    # A restarted API server's watch cache starts at the present: version "1" is history it lacks.
    sandbox.kill(victim)
    sandbox.heal(victim)
    async with identity(sandbox, victim) as client:
        with pytest.raises(errors.Gone) as caught:
            async for _ in watching.watch(client, resources.NODES, resource_version="1"):
                pass
        assert caught.value.status == 410 and caught.value.reason == "Expired"
        assert "too old resource version" in caught.value.message
        # What the caller does about it: list again, and watch on from the list's version.
        listing = await fetching.list_objects(client, resources.NODES)
        async for event in watching.watch(client, resources.NODES, resource_version=listing.resource_version):
            assert event.type in ("BOOKMARK", "MODIFIED")
            break


async def test_writes_outside_our_namespace_are_forbidden(sandbox: Sandbox) -> None:
    member = sandbox.member_names[0]
    async with identity(sandbox, member) as client:
        with pytest.raises(errors.MemberForbidden) as caught:
            await applying.apply(client, deployment("io-layer-forbidden", namespace="default"))
        assert caught.value.status == 403 and "forbidden" in caught.value.message
        with pytest.raises(errors.MemberForbidden):
            await fetching.list_objects(client, resources.SECRETS)
        with pytest.raises(errors.MemberForbidden):
            await deleting.delete(client, resources.DEPLOYMENTS, "anything", namespace="kube-system")


# ----- faults


async def test_healthy_member_probes_ok(sandbox: Sandbox) -> None:
    for member in sandbox.member_names:
        async with identity(sandbox, member) as client:
            result = await probing.probe(client)
        assert result.ok and result.failure is None, result
        assert 0 < result.latency_s < FAST.request


async def test_killed_member_is_unreachable_at_once(sandbox: Sandbox, victim: str) -> None:
    async with identity(sandbox, victim) as client:
        events = watching.watch(client, resources.NODES)  # no version: starts with the existing nodes
        assert (await anext(events)).type == "ADDED"
        async with hurt(sandbox, victim, sandbox.kill):
            started = time.monotonic()
            with pytest.raises(errors.MemberUnreachable):
                async for _ in events:  # the open stream breaks
                    pass
            with pytest.raises(errors.MemberUnreachable) as caught:
                await fetching.list_objects(client, resources.NODES)
            # Refused once the socket is closed; reset while the dying process still holds it.
            assert "refused" in caught.value.message or "reset" in caught.value.message, caught.value
            result = await probing.probe(client)
            assert (result.ok, result.failure) == (False, "refused"), result
            assert time.monotonic() - started < 2, "a refused connection must not wait for any deadline"
        assert (await probing.probe(client)).ok


async def test_partitioned_member_times_out_within_the_deadline(sandbox: Sandbox, victim: str) -> None:
    async with identity(sandbox, victim) as client:
        events = watching.watch(client, resources.NODES)
        assert (await anext(events)).type == "ADDED"
        async with hurt(sandbox, victim, sandbox.partition):
            started = time.monotonic()
            with pytest.raises(errors.MemberTimeout):
                async for _ in events:  # silence: the read deadline (watch + grace) ends it
                    pass
            silence = time.monotonic() - started
            assert silence < FAST.watch + FAST.watch_grace + 1.5, silence

            started = time.monotonic()
            with pytest.raises(errors.MemberTimeout):
                await fetching.list_objects(client, resources.NODES)
            assert time.monotonic() - started < FAST.request + 0.5

            result = await probing.probe(client, timeout=1.5)
            assert (result.ok, result.failure) == (False, "timeout"), result
            assert 1.0 <= result.latency_s < 2.0, result
        assert (await probing.probe(client)).ok


async def test_revoked_credentials_are_unauthorized(sandbox: Sandbox, victim: str) -> None:
    async with identity(sandbox, victim) as client:
        sandbox.censor(victim, "revoke-credentials")
        try:
            result = await eventually(
                lambda: _failing_probe(client), timeout=60,
            )
            assert result.failure == "unauthorized", result
            with pytest.raises(errors.MemberUnauthorized):
                await fetching.list_objects(client, resources.NODES)
        finally:
            sandbox.register(victim)
    async with identity(sandbox, victim) as client:  # the new token
        assert (await probing.probe(client)).ok


async def _failing_probe(client: ClusterClient) -> probing.Probe | None:
    result = await probing.probe(client)
    return None if result.ok else result


async def test_probe_falls_back_to_discovery_then_is_forbidden_on_a_hardened_member(
    sandbox: Sandbox, victim: str
) -> None:
    kubectl = sandbox.kubectl(victim)
    defaults = ["system:public-info-viewer", "system:discovery"]  # both grant /readyz to every user
    saved = [kubectl.get_json("clusterrolebinding", binding) for binding in defaults]
    subject = {"kind": "ServiceAccount", "name": members.IDENTITY, "namespace": members.SYSTEM_NAMESPACE}
    discovery_only = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "io-discovery-only"},
         "rules": [{"nonResourceURLs": ["/api"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "io-discovery-only"}, "subjects": [subject],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "io-discovery-only"}},
    ]
    async with identity(sandbox, victim) as client:
        kubectl.apply(discovery_only)
        kubectl.run("delete", "clusterrolebinding", *defaults)
        try:
            result = await eventually(lambda: _probe_via(client, "/api"), timeout=30)
            assert result.ok and result.failure is None, result
            kubectl.run("delete", "clusterrolebinding", "io-discovery-only")
            result = await eventually(lambda: _failing_probe(client), timeout=30)
            assert (result.failure, result.message) == ("forbidden", "GET /api is forbidden to our identity"), result
        finally:
            kubectl.apply([{key: obj[key] for key in ("apiVersion", "kind", "roleRef", "subjects")}
                           | {"metadata": {"name": obj["metadata"]["name"]}} for obj in saved])
            kubectl.run("delete", "clusterrolebinding,clusterrole", "io-discovery-only", "--ignore-not-found")
        await eventually(lambda: _probe_via(client, "/readyz"), timeout=30)


async def _probe_via(client: ClusterClient, path: str) -> probing.Probe | None:
    result = await probing.probe(client)
    return result if result.message == f"GET {path}: ok" else None
