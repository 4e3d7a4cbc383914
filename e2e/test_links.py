"""Links through Toxiproxy (e2e/sandbox/links.py): what each profile does to requests between samizdat and a
member, measured with samizdat's own client and probe through the member's proxy, while the member itself
stays up (its admin, talking to it directly, is answered throughout).

The session's operator keeps talking to the members directly: these tests put a proxy in front of one
member for their own client only, so no other test sees a degraded link.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import statistics
import time
from collections.abc import Iterator

import pytest

from e2e.sandbox.world import Sandbox
from samizdat.core.health import Failure
from samizdat.remote.clusters import errors, kubeconfig, probing
from samizdat.remote.clusters.client import ClusterClient, Deadlines

PAYLOAD_BYTES = 200_000


@pytest.fixture(scope="module")
def link(hub: Sandbox) -> Iterator[tuple[str, str]]:
    """One member and the URL of its proxy, healed after every test that degrades it."""
    urls = hub.start_links()
    name = hub.member_names[-1]
    try:
        yield name, urls[name]
    finally:
        hub.links.stop()


@pytest.fixture
def through(hub: Sandbox, link: tuple[str, str]) -> Iterator[ClusterClient]:
    """A client of the member's API through its proxy, with its admin's credentials (each test opens
    and closes it on its own event loop); the link is healed after the test."""
    name, url = link
    credentials = dataclasses.replace(kubeconfig.parse(hub.admin_kubeconfig(name).read_text()), server=url)
    try:
        yield ClusterClient(name, credentials, deadlines=Deadlines(request=30.0))
    finally:
        hub.links.heal(name)


async def probes(client: ClusterClient, count: int, timeout: float) -> list[probing.Probe]:
    return [await probing.probe(client, timeout=timeout) for _ in range(count)]


def direct_answers(hub: Sandbox, name: str) -> bool:
    return hub.kubectl(name).run("get", "--raw", "/readyz", check=False).stdout.strip() == "ok"


async def test_a_clean_link_answers_at_once(through: ClusterClient) -> None:
    async with through:
        found = await probes(through, 10, timeout=1.0)
        assert all(p.ok for p in found), found
        assert statistics.median(p.latency_s for p in found) < 0.05


async def test_wan_adds_the_round_trip_of_a_far_member(hub: Sandbox, link: tuple[str, str],
                                                       through: ClusterClient) -> None:
    async with through:
        await probes(through, 1, timeout=5.0)  # the connection is made before the link degrades
        hub.links.degrade(link[0], "wan")
        found = await probes(through, 20, timeout=5.0)
        latencies = [p.latency_s for p in found if p.ok]
        assert len(latencies) >= 18, found
        assert 0.1 <= statistics.median(latencies) <= 1.0, latencies  # one round trip: 50-550 ms, stalls aside
        assert max(latencies) >= 0.25


async def test_half_open_lets_bytes_vanish_while_the_member_stays_up(hub: Sandbox, link: tuple[str, str],
                                                                      through: ClusterClient) -> None:
    async with through:
        await probes(through, 1, timeout=1.0)
        hub.links.degrade(link[0], "half-open")
        (probe,) = await probes(through, 1, timeout=1.0)
        assert not probe.ok and probe.failure is Failure.TIMEOUT, probe
        assert direct_answers(hub, link[0])
        hub.links.heal(link[0])
        assert all(p.ok for p in await probes(through, 3, timeout=2.0))


async def test_throttled_limits_what_a_large_answer_costs(hub: Sandbox, link: tuple[str, str],
                                                          through: ClusterClient) -> None:
    async with through:
        admin = hub.kubectl(link[0])
        admin.run("delete", "configmap", "links-payload", "-n", "default", "--ignore-not-found")
        payload = hub.directory / "links-payload.txt"
        # random, so that the API server's gzip cannot shrink it; a file: too long for one argument
        payload.write_text(base64.b64encode(os.urandom(PAYLOAD_BYTES * 3 // 4)).decode())
        admin.run("create", "configmap", "links-payload", "-n", "default", f"--from-file=payload={payload}")
        path = "/api/v1/namespaces/default/configmaps/links-payload"
        try:
            started = time.monotonic()
            await through.request("GET", path)
            clean_s = time.monotonic() - started
            hub.links.degrade(link[0], "throttled")
            started = time.monotonic()
            await through.request("GET", path)
            throttled_s = time.monotonic() - started
        finally:
            admin.run("delete", "configmap", "links-payload", "-n", "default", "--ignore-not-found")
        assert clean_s < 1.0
        assert throttled_s >= 0.7 * PAYLOAD_BYTES / (64 * 1024), (clean_s, throttled_s)  # 64 KB/s


async def test_resets_break_connections_every_ten_seconds(hub: Sandbox, link: tuple[str, str],
                                                          through: ClusterClient) -> None:
    async with through:
        hub.links.degrade(link[0], "resets")
        refused, answered = 0, 0
        deadline = time.monotonic() + 12.0
        while time.monotonic() < deadline:
            try:
                await through.request("GET", "/readyz", deadline=1.0)
                answered += 1
            except errors.MemberUnreachable:
                refused += 1
            await asyncio.sleep(0.1)
        assert refused >= 1 and answered >= 10 * refused, (refused, answered)


def test_heal_takes_every_toxic_off_the_link(hub: Sandbox, link: tuple[str, str]) -> None:
    for profile in ("wan", "throttled", "half-open", "resets"):
        hub.links.degrade(link[0], profile)
        assert hub.links.toxics(link[0]) or profile == "resets"
        hub.links.heal(link[0])
        assert hub.links.toxics(link[0]) == []
        assert not (hub.directory / f"shaper-{link[0]}.pid").exists()
