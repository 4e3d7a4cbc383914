"""The hub stretched over three sites (`up --hub-sites 3`): one API served by every site, surviving the
loss of any one site, frozen (not corrupted) without a quorum, and never needed by the members; and the
leader election moving to another site when the leader's site is killed.

The suite starts its own small sandbox (three hub sites, one member) for the module and stops it after.
Every scenario heals what it broke in a `finally`, so the next one starts from a whole hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from e2e.sandbox import hubsites
from e2e.sandbox.launcher import HUB
from e2e.sandbox.world import Sandbox, free_port_base, port_free, sandbox_ports
from samizdat.remote.clusters import client, electing, kubeconfig
from samizdat.core.leadership import Timing

SITES = 3
FAST = Timing(lease_duration_s=2, renew_deadline_s=1.2, retry_period_s=0.3)
QUICK = client.Deadlines(connect=1.0, read=2.0, request=3.0)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, hubsites.HubSites]]:
    base = free_port_base(1)
    while not all(port_free(port) for port in [*sandbox_ports(base, 1), *hubsites.site_ports(base, SITES)]):
        base = free_port_base(1, start=base + 1000)
    sandbox = Sandbox(tmp_path_factory.mktemp("hubsites"), port_base=base)
    try:
        sandbox.up(1, hub_sites=SITES)
        sites = hubsites.HubSites.load(sandbox.directory)
        assert sites is not None
        yield sandbox, sites
    finally:
        sandbox.down()


def kubectl_at(sandbox: Sandbox, site: int, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(sandbox.binaries.path("kubectl")), f"--kubeconfig={hubsites.site_kubeconfig(sandbox.launcher, site)}",
         f"--request-timeout={timeout:g}s", *args],
        capture_output=True, text=True, timeout=timeout + 5, check=False,
    )


def config_map(name: str, value: str) -> str:
    return (f'{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"default"}},'
            f'"data":{{"v":"{value}"}}}}')


def write_at(sandbox: Sandbox, site: int, name: str, value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(sandbox.binaries.path("kubectl")), f"--kubeconfig={hubsites.site_kubeconfig(sandbox.launcher, site)}",
         "--request-timeout=8s", "apply", "-f", "-"],
        input=config_map(name, value), capture_output=True, text=True, timeout=15, check=False,
    )


def read_at(sandbox: Sandbox, site: int, name: str) -> str | None:
    done = kubectl_at(sandbox, site, "get", "configmap", name, "-n", "default", "-o", "jsonpath={.data.v}")
    return done.stdout if done.returncode == 0 else None


@contextlib.contextmanager
def fault(sandbox: Sandbox, sites: hubsites.HubSites, kind: str, *indices: int) -> Iterator[None]:
    act = {"kill": hubsites.kill_site, "partition": hubsites.partition_site}[kind]
    try:
        for index in indices:
            act(sandbox.launcher, sandbox.state, sites, index)
        yield
    finally:
        for index in indices:
            hubsites.heal_site(sandbox.launcher, sandbox.state, sites, index)


def test_every_site_serves_one_api(world: tuple[Sandbox, hubsites.HubSites]) -> None:
    sandbox, _ = world
    name = f"one-api-{uuid.uuid4().hex[:6]}"
    assert write_at(sandbox, 0, name, "written-at-0").returncode == 0
    assert [read_at(sandbox, site, name) for site in range(SITES)] == ["written-at-0"] * SITES


def test_the_hub_works_on_without_a_killed_site_and_the_site_catches_up(
    world: tuple[Sandbox, hubsites.HubSites],
) -> None:
    sandbox, sites = world
    name = f"killed-{uuid.uuid4().hex[:6]}"
    with fault(sandbox, sites, "kill", 0):
        assert kubectl_at(sandbox, 0, "get", "namespaces", timeout=2).returncode != 0
        done = write_at(sandbox, 1, name, "while-0-was-dead")
        assert done.returncode == 0, done.stderr
        assert read_at(sandbox, 2, name) == "while-0-was-dead"
    assert read_at(sandbox, 0, name) == "while-0-was-dead"


def test_a_partitioned_site_times_out_and_the_others_keep_working(
    world: tuple[Sandbox, hubsites.HubSites],
) -> None:
    sandbox, sites = world
    name = f"partitioned-{uuid.uuid4().hex[:6]}"
    with fault(sandbox, sites, "partition", 2):
        started = time.monotonic()
        assert kubectl_at(sandbox, 2, "get", "namespaces", timeout=2).returncode != 0
        assert time.monotonic() - started >= 1.5  # silence, not a refusal
        done = write_at(sandbox, 0, name, "majority")
        assert done.returncode == 0, done.stderr
    assert read_at(sandbox, 2, name) == "majority"


def test_without_a_quorum_the_hub_is_frozen_and_members_run_on(world: tuple[Sandbox, hubsites.HubSites]) -> None:
    sandbox, sites = world
    member = sandbox.member_names[0]
    name = f"frozen-{uuid.uuid4().hex[:6]}"
    with fault(sandbox, sites, "kill", 0, 1):
        # Site 2's apiserver still answers, but nothing can be committed without a quorum.
        assert write_at(sandbox, 2, name, "lost").returncode != 0
        # The member stores in the shared etcd, not in any hub site's: it takes writes as before.
        member_kubectl = sandbox.kubectl(member)
        member_kubectl.run("apply", "-f", "-", stdin=config_map(name, "member-alive"))
        assert member_kubectl.run("get", "configmap", name, "-n", "default", "-o", "jsonpath={.data.v}").stdout \
            == "member-alive"
    assert read_at(sandbox, 0, name) is None  # the refused write did not happen later either


@contextlib.asynccontextmanager
async def hub_at(sandbox: Sandbox, site: int) -> AsyncIterator[client.ClusterClient]:
    credentials = kubeconfig.load(hubsites.site_kubeconfig(sandbox.launcher, site))
    async with client.ClusterClient(f"{HUB}-site-{site}", credentials, deadlines=QUICK) as hub:
        yield hub


async def test_the_leadership_moves_to_another_site_when_the_leaders_site_is_killed(
    world: tuple[Sandbox, hubsites.HubSites],
) -> None:
    sandbox, sites = world
    lease = f"election-{uuid.uuid4().hex[:6]}"
    async with hub_at(sandbox, 0) as at_0, hub_at(sandbox, 1) as at_1, hub_at(sandbox, 2) as at_2:
        candidates = [electing.Candidate(hub, identity=f"site-{n}", namespace="default", name=lease, timing=FAST)
                      for n, hub in enumerate((at_0, at_1, at_2))]
        await candidates[0].attempt()  # site 0 leads first
        loops = [asyncio.create_task(candidate.run()) for candidate in candidates[1:]]
        leader_loop = asyncio.create_task(_renew_until_cancelled(candidates[0]))
        try:
            await asyncio.sleep(1.0)
            assert candidates[0].leading() and not any(c.leading() for c in candidates[1:])
            with fault(sandbox, sites, "kill", 0):
                leader_loop.cancel()  # the process died with its site: no release
                killed_at = time.monotonic()
                while not any(c.leading() for c in candidates[1:]):
                    assert time.monotonic() - killed_at < 20, "no site took over"
                    await asyncio.sleep(0.05)
                took = time.monotonic() - killed_at
                assert not candidates[0].leading()
                new = next(c for c in candidates[1:] if c.leading())
                warrant = new.warrant()
                assert warrant is not None and warrant.epoch == 2
        finally:
            for task in (*loops, leader_loop):
                task.cancel()
            await asyncio.gather(*loops, leader_loop, return_exceptions=True)
    # A standby judges from when it last saw a renewal: the lease plus at most a try or two.
    assert took <= FAST.lease_duration_s + 4 * FAST.retry_period_s + 2


async def _renew_until_cancelled(candidate: electing.Candidate) -> None:
    while True:
        await asyncio.sleep(await candidate.attempt())
