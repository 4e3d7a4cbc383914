"""samizdat over a hub stretched across sites, for the e2e suites and bench/hub-failover: a sandbox with
hub sites (`e2e.sandbox.hubsites`), members registered with `samizdat join` (every member fenced), and
one operator per site, each talking to its own site's apiserver and standing for the same Lease.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from e2e.operator import OperatorProcess
from e2e.sandbox import hubsites, members
from e2e.sandbox.world import Sandbox, free_port_base, port_free, sandbox_ports
from e2e.waiting import eventually
from e2e.workloads import UID_LABEL, install_samizdat

LEASE = "samizdat-leader"
# Short timings keep every scenario within seconds; the defaults (8 s / 5 s / 1 s) are only longer.
ELECTION = ("--lease-name", LEASE, "--lease-namespace", members.SYSTEM_NAMESPACE,
            "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5")


class World:
    """The sandbox, its hub sites and one operator per site."""

    def __init__(self, sandbox: Sandbox, sites: hubsites.HubSites) -> None:
        self.sandbox = sandbox
        self.sites = sites
        self.count = len(sites.sites)
        base = sandbox.state.port_base + hubsites.SITE_OPERATOR_METRICS
        self.operators = [
            OperatorProcess(sandbox, kubeconfig=hubsites.site_kubeconfig(sandbox.launcher, n), metrics_port=base + n,
                            name=f"operator-site-{n}")
            for n in range(self.count)
        ]
        self.starts = 0

    def start(self, site: int) -> None:
        """Start the site's operator under a new identity (`site-N-K`): a restarted process is another
        candidate, never its predecessor."""
        self.starts += 1
        self.operators[site].args = (*ELECTION, "--identity", f"site-{site}-{self.starts}")
        self.operators[site].start()

    def hub(self, site: int) -> members.Kubectl:
        return members.Kubectl(self.sandbox.binaries.path("kubectl"), hubsites.site_kubeconfig(self.sandbox.launcher, site))

    def live_site(self) -> int:
        return next(n for n in range(self.count) if not self.sites.site(n).faults)

    def leader(self, among: range | list[int] | None = None) -> int:
        """The site whose operator holds the Lease (read at a site that is up), once it is one of `among`."""
        among = range(self.count) if among is None else among

        def found() -> list[int]:  # a list: site 0 must count as found
            for site in (n for n in range(self.count) if not self.sites.site(n).faults):
                done = self.hub(site).run("get", "lease", LEASE, "-n", members.SYSTEM_NAMESPACE,
                                          "-o", "jsonpath={.spec.holderIdentity}", check=False)
                holder = done.stdout.strip().split("-") if done.returncode == 0 else []
                if len(holder) == 3 and holder[0] == "site" and int(holder[1]) in among:
                    return [int(holder[1])]
            return []
        return eventually(found, timeout=30, what=f"a site of {list(among)} leading")[0]

    def log_since(self, site: int, offset: int) -> str:
        log = self.operators[site].log
        return log.read_bytes()[offset:].decode(errors="replace") if log.exists() else ""

    def log_size(self, site: int) -> int:
        log = self.operators[site].log
        return log.stat().st_size if log.exists() else 0

    def apply(self, manifest: dict[str, Any]) -> None:
        self.hub(self.live_site()).run("apply", "-f", "-", stdin=json.dumps(manifest))

    def uid(self, name: str) -> str:
        return str(self.hub(self.live_site()).get_json("aiworkload", name, "-n", "default")["metadata"]["uid"])

    def heal(self, site: int) -> None:
        hubsites.heal_site(self.sandbox.launcher, self.sandbox.state, self.sites, site)
        process = self.operators[site].process
        if process is None or process.poll() is not None:
            self.start(site)

    def copies(self, uid: str) -> dict[str, tuple[int, str, int]]:
        """Per reachable member: its copy's generation (moved by spec writes only, not by the member's
        controllers updating status), samizdat's annotations on it (its epoch, a retirement mark) and its
        replicas, read from the member."""
        found = {}
        for member in self.sandbox.member_names:
            if self.sandbox.state.clusters[member].faults:
                continue
            items = self.sandbox.kubectl(member).get_json(
                "deployments", "-n", members.WORKLOAD_NAMESPACE, "-l", f"{UID_LABEL}={uid}")["items"]
            for item in items:
                annotations = item["metadata"].get("annotations", {})
                ours = {key: value for key, value in annotations.items() if key.startswith("samizdat.io/")}
                found[member] = (int(item["metadata"]["generation"]), json.dumps(ours, sort_keys=True),
                                 int(item["spec"]["replicas"]))
        return found




@contextlib.contextmanager
def started(directory: Path, members_count: int, sites_count: int = 3) -> Iterator[World]:
    """A sandbox of `sites_count` hub sites and `members_count` members, with one operator per site; all
    stopped on the way out, a failed start included."""
    base = free_port_base(members_count)
    while not all(port_free(port) for port in [*sandbox_ports(base, members_count),
                                                *hubsites.site_ports(base, sites_count)]):
        base = free_port_base(members_count, start=base + 1000)
    sandbox = Sandbox(directory, port_base=base)
    operators: list[OperatorProcess] = []
    try:
        sandbox.up(members_count, hub_sites=sites_count)
        install_samizdat(sandbox)
        sites = hubsites.HubSites.load(sandbox.directory)
        assert sites is not None
        world = World(sandbox, sites)
        operators = world.operators
        for site in range(sites_count):
            world.start(site)
        world.leader()
        yield world
    finally:
        for operator in operators:
            operator.stop()
        sandbox.down()
