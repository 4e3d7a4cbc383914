"""The hub stretched over several sites: one etcd raft cluster with a member per site, and in each site
a kube-apiserver (and kube-controller-manager) of the same logical Kubernetes API; faults per site.

With `up --hub-sites 3` the hub stores its data in its own three-member etcd cluster instead of the
shared one, so losing any one site leaves a quorum and a working hub. Members keep the shared etcd:
no member depends on any hub site. Site 0 is the sandbox's `hub` cluster (its apiserver, its
controller-manager, its admin kubeconfig); sites 1 and up add an apiserver and a controller-manager,
each talking to its own site's etcd member only, as a site in another jurisdiction would. All sites'
apiservers share the hub's serving certificate, token file, ServiceAccount issuer and signing key: they
are one API, and a token issued at one site is valid at every other.

Faults act on a whole site: `kill_site` SIGKILLs its etcd member, apiserver, controller-manager and the
operator recorded for that site (`operator-site-<n>.pid` in the sandbox directory: see
`operator_pid_file`); `partition_site` SIGSTOPs them (peers and clients time out); `heal_site` restarts
or resumes what is left (a killed operator is the test's to restart).

Ports, from the sandbox's port base: etcd clients 500+n, etcd peers 510+n, apiservers of sites 1..
520+n, their controller-managers 320+n (next to the members' 300+i), operators' metrics 540+n.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from e2e.sandbox.launcher import HUB, ClusterState, Launcher, SandboxState, _wait_for, alive, kill_group

MAX_SITES = 5  # an odd number of etcd members up to five; more buys nothing but latency
STATE_FILE = "hubsites.json"
ETCD_CLIENT, ETCD_PEER, SITE_APISERVER, SITE_CONTROLLERS, SITE_OPERATOR_METRICS = 500, 510, 520, 320, 540
# The sandbox's loopback sites answer in microseconds: etcd's defaults (100 ms heartbeats, 1 s election
# timeout) elect a new raft leader within about a second of one being killed. A WAN deployment sets
# these from its round-trip times: docs/operations.md.
ETCD_TIMING = ("--heartbeat-interval=100", "--election-timeout=1000")


@dataclass
class Site:
    """One hub site: its etcd member and, for sites after the first, its own control-plane processes."""

    index: int
    etcd_pid: int = 0
    pids: dict[str, int] = field(default_factory=dict)  # apiserver, controller-manager (sites ≥ 1)
    faults: list[str] = field(default_factory=list)


@dataclass
class HubSites:
    directory: Path
    port_base: int
    sites: list[Site] = field(default_factory=list)

    @property
    def file(self) -> Path:
        return self.directory / STATE_FILE

    def save(self) -> None:
        payload = {"port_base": self.port_base, "sites": [dataclasses.asdict(site) for site in self.sites]}
        self.file.write_text(json.dumps(payload, indent=2))

    @classmethod
    def load(cls, directory: Path) -> HubSites | None:
        """The hub sites of the sandbox in `directory`, or None when its hub has a single site."""
        path = directory / STATE_FILE
        if not path.exists():
            return None
        payload = json.loads(path.read_text())
        return cls(directory, payload["port_base"], [Site(**raw) for raw in payload["sites"]])

    def etcd_client_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port_base + ETCD_CLIENT + index}"

    def etcd_peer_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port_base + ETCD_PEER + index}"

    def api_port(self, hub: ClusterState, index: int) -> int:
        return hub.api_port if index == 0 else self.port_base + SITE_APISERVER + index

    def server(self, hub: ClusterState, index: int) -> str:
        return f"https://127.0.0.1:{self.api_port(hub, index)}"

    def site(self, index: int) -> Site:
        if not 0 <= index < len(self.sites):
            raise KeyError(f"no hub site {index} (sites 0..{len(self.sites) - 1})")
        return self.sites[index]


def site_ports(base: int, count: int) -> list[int]:
    """Every port hub sites beyond the sandbox's own layout listen on."""
    if count <= 1:
        return []
    return [base + offset + n for n in range(count) for offset in (ETCD_CLIENT, ETCD_PEER)] + [
        base + offset + n for n in range(1, count) for offset in (SITE_APISERVER, SITE_CONTROLLERS)
    ]


def operator_pid_file(directory: Path, index: int) -> Path:
    """Where the operator running at site `index` records its PID (`OperatorProcess(name=...)`)."""
    return directory / f"operator-site-{index}.pid"


def site_kubeconfig(launcher: Launcher, index: int) -> Path:
    """The admin kubeconfig of hub site `index` (site 0's is the hub's own)."""
    return launcher.admin_kubeconfig(HUB if index == 0 else f"{HUB}-site-{index}")


# ----- starting


def start_etcd(launcher: Launcher, state: SandboxState, count: int) -> HubSites:
    """Start the hub's etcd cluster of `count` members (one per site) and wait for its quorum."""
    if not 1 < count <= MAX_SITES or count % 2 == 0:
        raise ValueError(f"a hub over several sites needs an odd number of sites from 3 to {MAX_SITES}, got {count}")
    sites = HubSites(launcher.directory, state.port_base, [Site(n) for n in range(count)])
    for site in sites.sites:
        shutil.rmtree(_etcd_data(sites, site.index), ignore_errors=True)  # a fresh world, as `up` promises
        site.etcd_pid = launcher._spawn(_name(site.index), "etcd", _etcd_argv(launcher, sites, site.index))
    sites.save()
    for site in sites.sites:
        _wait_for(_healthy(sites.etcd_client_url(site.index)), f"hub etcd {site.index}", 60)
    return sites


def _healthy(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200


def hub_cluster(sites: HubSites, hub: ClusterState) -> ClusterState:
    """The hub's cluster state storing in site 0's etcd member, its controllers electing a leader."""
    return dataclasses.replace(hub, etcd_servers=sites.etcd_client_url(0), replicated=True)


def start_sites(launcher: Launcher, state: SandboxState, sites: HubSites) -> None:
    """Start the apiserver and controller-manager of every site after the first (the hub is up)."""
    hub = state.clusters[HUB]
    for site in sites.sites[1:]:
        _start_control_plane(launcher, sites, hub, site)
    sites.save()
    for site in sites.sites[1:]:
        launcher.wait_ready(_site_cluster(sites, hub, site.index))


def _start_control_plane(launcher: Launcher, sites: HubSites, hub: ClusterState, site: Site) -> None:
    apiserver = _site_cluster(sites, hub, site.index)
    # Same name as the hub's for the argv: the same certificate, tokens, issuer and signing key.
    site.pids["apiserver"] = launcher._spawn(_name(site.index), "apiserver", launcher.apiserver_argv(apiserver))
    controllers = _controllers_cluster(launcher, sites, hub, site.index)
    launcher.write_kubeconfig(site_kubeconfig(launcher, site.index), controllers, "sandbox-admin", launcher.admin_token)
    launcher.start_controllers(controllers)
    site.pids["controller-manager"] = controllers.pids.pop("controller-manager")


def _site_cluster(sites: HubSites, hub: ClusterState, index: int) -> ClusterState:
    return dataclasses.replace(hub, api_port=sites.api_port(hub, index), etcd_servers=sites.etcd_client_url(index),
                               replicated=True, pids={}, faults=[])


def _controllers_cluster(launcher: Launcher, sites: HubSites, hub: ClusterState, index: int) -> ClusterState:
    # Its own name (its own kubeconfig, pointing at its own site's apiserver) and an index that puts its
    # controller-manager's port at 320+n, clear of the members' 300+i.
    name = f"{HUB}-site-{index}"
    directory = launcher.cluster_dir(name)
    shutil.copy(launcher.cluster_dir(HUB) / "sa.key", directory / "sa.key")
    return ClusterState(name, HUB, SITE_CONTROLLERS - 300 + index, sites.api_port(hub, index),
                        etcd_servers=sites.etcd_client_url(index), replicated=True)


# ----- faults


def kill_site(launcher: Launcher, state: SandboxState, sites: HubSites, index: int) -> None:
    """SIGKILL everything at site `index`: its etcd member, apiserver, controllers and operator."""
    site = sites.site(index)
    for pid in _site_pids(launcher, state, sites, index):
        kill_group(pid)
    site.faults = [*site.faults, "killed"]
    sites.save()


def partition_site(launcher: Launcher, state: SandboxState, sites: HubSites, index: int) -> None:
    """SIGSTOP everything at site `index`: its peers and clients see time-outs, not refusals."""
    site = sites.site(index)
    for pid in _site_pids(launcher, state, sites, index):
        if alive(pid):
            os.killpg(pid, signal.SIGSTOP)
    site.faults = [*site.faults, "partitioned"]
    sites.save()


def heal_site(launcher: Launcher, state: SandboxState, sites: HubSites, index: int) -> None:
    """Resume a partitioned site, or restart a killed one's etcd member and control plane (its data
    comes back from the other members). A killed operator stays down: the test that killed it restarts it."""
    site = sites.site(index)
    hub = state.clusters[HUB]
    if "killed" in site.faults:
        site.etcd_pid = launcher._spawn(_name(index), "etcd", _etcd_argv(launcher, sites, index))
        if index == 0:
            launcher.start_apiserver(hub)
            launcher.wait_ready(hub)
            launcher.stop_controllers(hub)
            launcher.start_controllers(hub)
            state.save()
        else:
            _start_control_plane(launcher, sites, hub, site)
    elif "partitioned" in site.faults:
        for pid in _site_pids(launcher, state, sites, index):
            if alive(pid):
                os.killpg(pid, signal.SIGCONT)
    site.faults = []
    sites.save()
    launcher.wait_ready(_site_cluster(sites, hub, index))


def stop(sites: HubSites) -> None:
    """Stop every hub-site process the sandbox's own `down` does not know of."""
    for site in sites.sites:
        for pid in (*site.pids.values(), site.etcd_pid):
            kill_group(pid)
    sites.file.unlink(missing_ok=True)


def _site_pids(launcher: Launcher, state: SandboxState, sites: HubSites, index: int) -> list[int]:
    site = sites.site(index)
    own = state.clusters[HUB].pids.values() if index == 0 else site.pids.values()
    operator = operator_pid_file(launcher.directory, index)
    operators = [int(operator.read_text())] if operator.exists() else []
    return [site.etcd_pid, *own, *operators]


def _name(index: int) -> str:
    return f"{HUB}-site-{index}"


def _etcd_data(sites: HubSites, index: int) -> Path:
    return sites.directory / "hub-etcd" / f"site-{index}"


def _etcd_argv(launcher: Launcher, sites: HubSites, index: int) -> list[str]:
    cluster = ",".join(f"site-{n}={sites.etcd_peer_url(n)}" for n in range(len(sites.sites)))
    return [
        str(launcher.binaries.path("etcd")),
        f"--name=site-{index}", f"--data-dir={_etcd_data(sites, index)}",
        f"--listen-client-urls={sites.etcd_client_url(index)}",
        f"--advertise-client-urls={sites.etcd_client_url(index)}",
        f"--listen-peer-urls={sites.etcd_peer_url(index)}",
        f"--initial-advertise-peer-urls={sites.etcd_peer_url(index)}",
        # Read only on the first start; a restarted member finds its cluster in its data directory.
        f"--initial-cluster={cluster}", "--initial-cluster-state=new", "--initial-cluster-token=samizdat-hub",
        *ETCD_TIMING,
        "--unsafe-no-fsync", "--quota-backend-bytes=2147483648", "--log-level=warn",
    ]
