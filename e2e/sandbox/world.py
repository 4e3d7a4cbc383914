"""The sandbox as one object: bring the hub and members up or down, inspect them, and inflict faults.

Faults act the way the real events do. `kill` SIGKILLs a member's API server, so connections are refused.
`partition` SIGSTOPs it: the kernel still accepts TCP connections but nothing answers, so requests time
out exactly as when packets vanish. `censor` acts as a hostile admin of that member with the admin
credentials, never through samizdat's identity: against samizdat's objects and identity (`delete`,
`scale-zero`, `swap-image`, `revoke-credentials`, `delete-namespace`), or by starving them without
touching them (`cordon`, `taint`, `quota-zero`, `stop-scheduler`, `block-image`). `heal` undoes every
fault recorded for the member: it restarts or resumes the API server with its data (in etcd) intact,
lifts the starvation, and restarts the controllers whose processes the fault touched, waiting for the
old ones to exit and free their ports, and for the new ones to serve. (`heal` leaves the first five
censor actions to the test that chose them: `register` restores samizdat's identity.)

Every port lies in [base, base + PORT_SPAN), which must lie outside the kernel's ephemeral port range:
there an outgoing connection can hold a port just when a restarted member process needs to bind it.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from e2e.sandbox import hubsites, layout, members, stages, toolchain
from e2e.sandbox import links as links_module
from e2e.sandbox.dns import DNS
from e2e.sandbox.links import Links
from e2e.sandbox.launcher import (
    HUB, ClusterState, Launcher, SandboxState, alive, kill_group, kill_recorded, port_free,
)
from samizdat.core import membership

REPO_ROOT = Path(__file__).resolve().parents[2]
# fault recorded for the member by each censor action that starves samizdat instead of touching its objects
STARVATIONS = {
    "cordon": "cordoned",
    "taint": "tainted",
    "quota-zero": "gpu-quota-zero",
    "stop-scheduler": "scheduler-stopped",
    "block-image": "image-blocked",
}
CENSOR_ACTIONS = ("delete", "scale-zero", "swap-image", "revoke-credentials", "delete-namespace", *STARVATIONS)
CENSORED_IMAGE = "registry.invalid/censored:latest"
# Both effects: NoSchedule keeps new replicas off the nodes, NoExecute evicts the running ones, so the
# workload's pods are gone and their replacements sit Pending while samizdat's Deployment is untouched.
# (`cordon` is the milder act that leaves running replicas alone.)
CENSOR_TAINT = "sandbox.samizdat.io/censored"
CENSOR_TAINT_EFFECTS = ("NoSchedule", "NoExecute")
CENSOR_QUOTA = "censor-zero-gpus"
GPU_NODES = "nvidia.com/gpu.present=true"
# faults after which the member's controllers are restarted by `heal`
PROCESS_FAULTS = frozenset({"killed", "partitioned", "scheduler-stopped", "image-blocked"})
LINK_FAULT = "link-"  # a fault "link-wan" is the link profile wan on the member's proxy (`degrade`)
# where an operator run against this sandbox (the demo's, the suites') serves its metrics; the HA test
# runs two more beside it
OPERATOR_METRICS_OFFSET = 1080
PORT_SPAN = OPERATOR_METRICS_OFFSET + 10


def default_directory() -> Path:
    return Path(os.environ.get("SAMIZDAT_SANDBOX_DIR", REPO_ROOT / ".sandbox"))


def default_port_base() -> int:
    return int(os.environ.get("SAMIZDAT_SANDBOX_PORT_BASE", "17000"))


class Sandbox:
    """A running (or about to run) hub plus members, rooted in one state directory."""

    def __init__(self, directory: Path | None = None, port_base: int | None = None) -> None:
        self.directory = directory or default_directory()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.binaries = toolchain.ensure_binaries()
        if (self.directory / "state.json").exists():
            self.state = SandboxState.load(self.directory)
        else:
            self.state = SandboxState(self.directory, port_base or default_port_base())
        self.launcher = Launcher(self.binaries, self.directory, self.state.port_base)
        self.links = Links(self.directory, self.state.port_base)
        self.dns = DNS(self.directory, self.state.port_base)  # started on demand: `start_dns`

    # ----- lifecycle

    def up(self, member_count: int = 6, hub_sites: int = 1, links: bool = False) -> dict[str, float]:
        """Start everything and return how long each step took (seconds).

        `hub_sites` > 1 stretches the hub over that many sites with an etcd cluster of its own (hubsites);
        `links` puts a Toxiproxy proxy between samizdat and each member (see `links`).
        """
        if self.running():
            raise RuntimeError(f"sandbox already running in {self.directory}; run `down` first")
        check_port_base(self.state.port_base)
        ports = [*sandbox_ports(self.state.port_base, member_count), *hubsites.site_ports(self.state.port_base, hub_sites),
                 *(link_ports(self.state.port_base, member_count) if links else ())]
        busy = [port for port in ports if not port_free(port)]
        if busy:
            raise RuntimeError(
                f"ports {busy} on 127.0.0.1 are taken (another sandbox still running?); stop it with "
                "`python -m e2e.sandbox down` or choose SAMIZDAT_SANDBOX_PORT_BASE"
            )
        timings: dict[str, float] = {}
        started = time.monotonic()
        self.launcher.start_etcd(self.state)
        sites = hubsites.start_etcd(self.launcher, self.state, hub_sites) if hub_sites > 1 else None
        layouts = layout.members(member_count)
        names = [HUB, *(member.name for member in layouts)]
        self.state.clusters = {
            name: ClusterState(name, HUB if name == HUB else "member", index, self.state.port_base + 100 + index)
            for index, name in enumerate(names)
        }
        if sites is not None:
            self.state.clusters[HUB] = hubsites.hub_cluster(sites, self.state.clusters[HUB])
        for cluster in self.state.clusters.values():
            self.launcher.start_apiserver(cluster)
        self.state.save()
        for cluster in self.state.clusters.values():
            self.launcher.wait_ready(cluster)
            self.launcher.start_controllers(cluster)
        self.state.save()
        if sites is not None:
            hubsites.start_sites(self.launcher, self.state, sites)
        timings["apiservers_ready_s"] = time.monotonic() - started
        hub = self.kubectl(HUB)
        hub.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": members.SYSTEM_NAMESPACE}}])
        for member in layouts:
            member_kubectl = self.kubectl(member.name)
            self._wait_for_default_account(member_kubectl)
            member_kubectl.apply(members.gpu_nodes(member))
        for member in layouts:
            self.wait_nodes_ready(member.name, sum(group.count for group in member.node_groups))
        for cluster in self.state.clusters.values():
            self.launcher.wait_serving(cluster)
        if links:
            self.start_links()
        timings["total_s"] = time.monotonic() - started
        return timings

    def register(self, *names: str, through_links: bool = True) -> None:
        """Register members as a user does, with `samizdat join` (all at once, without waiting for an
        operator); again for a member already registered, it rotates its credential: how a test undoes
        `revoke-credentials` or `delete-namespace`. Needs samizdat's CRDs in the hub. `through_links`
        False joins them directly while the links still run (before stopping them, so that no member is
        cut off on the way)."""
        joins = [(name, subprocess.Popen(self.join_command(name, "--no-wait", through_links=through_links),
                                         env=self.join_environment(name),
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
                 for name in names]
        for name, process in joins:
            output, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"samizdat join {name} failed ({process.returncode}):\n{output}")

    def join_command(self, name: str, *extra: str, executable: str = "samizdat",
                     through_links: bool = True) -> list[str]:
        """`samizdat join` for a member of the default layout, as its admin would type it."""
        member = layout.by_name(name)
        flags = [
            "--member-context", name, "--hub-context", HUB, "--country", member.country,
            "--region", member.region, "--provider", member.provider,
            "--cost-per-gpu-hour", str(member.cost_per_gpu_hour), "--latency-ms", str(member.latency_ms),
            # loopback members: Down after 2 s of failed probes
            "--down-after-seconds", "2",
        ]
        if through_links and self.links.running():  # samizdat goes through the member's link; its admin does not
            flags += ["--member-server", f"https://127.0.0.1:{self.links.proxy_port(self.state.clusters[name].index)}"]
        return [str(Path(sys.executable).parent / executable), "join", name, *flags,
                *(["--tee"] if member.tee else []), *extra]

    def join_environment(self, *names: str) -> dict[str, str]:
        """The environment of a user whose kubeconfig has the hub's and these members' admin contexts."""
        paths = [self.admin_kubeconfig(HUB), *(self.admin_kubeconfig(name) for name in names)]
        return dict(os.environ, KUBECONFIG=os.pathsep.join(map(str, paths)))

    def identity_kubeconfig(self, name: str) -> str:
        """The kubeconfig samizdat uses for `name` now: what `join` (or a renewal) last wrote to the hub."""
        encoded = self.kubectl(HUB).run(
            "get", "secret", f"member-{name}", "-n", members.SYSTEM_NAMESPACE, "-o", "jsonpath={.data.kubeconfig}",
        ).stdout
        return base64.b64decode(encoded).decode()

    def down(self) -> None:
        # operators and GPU agents (e2e/sandbox/agents.py) the demo or a test left running
        for pid_file in [*self.directory.glob("operator*.pid"), *self.directory.glob("agent-*.pid")]:
            kill_recorded(pid_file)
        self.links.stop()
        self.dns.stop()
        self.launcher.stop(self.state)
        sites = hubsites.HubSites.load(self.directory)
        if sites is not None:
            hubsites.stop(sites)
        self.state.file.unlink(missing_ok=True)
        self.state.clusters = {}

    def running(self) -> bool:
        return bool(self.state.etcd_pid) and alive(self.state.etcd_pid)

    # ----- access

    @property
    def member_names(self) -> list[str]:
        return [name for name, cluster in self.state.clusters.items() if cluster.role != HUB]

    def admin_kubeconfig(self, name: str) -> Path:
        return self.launcher.admin_kubeconfig(name)

    def identity_kubeconfig_path(self, name: str) -> Path:
        """A file with `identity_kubeconfig(name)`, refreshed at every call."""
        path = self.launcher.cluster_dir(name) / "samizdat.kubeconfig"
        path.write_text(self.identity_kubeconfig(name))
        path.chmod(0o600)
        return path

    def kubectl(self, name: str) -> members.Kubectl:
        return members.Kubectl(self.binaries.path("kubectl"), self.admin_kubeconfig(name))

    def server(self, name: str) -> str:
        return self.state.clusters[name].server

    @property
    def ca_file(self) -> Path:
        return self.launcher.ca[0]

    def status(self) -> list[dict[str, Any]]:
        rows = []
        for cluster in self.state.clusters.values():
            processes = {component: alive(pid) for component, pid in cluster.pids.items()}
            rows.append({
                "name": cluster.name, "role": cluster.role, "server": cluster.server,
                "faults": cluster.faults, "processes": processes,
                "rss_mib": round(sum(rss_mib(pid) for pid in cluster.pids.values()), 1),
            })
        return rows

    def total_rss_mib(self) -> float:
        pids = [self.state.etcd_pid, *(pid for c in self.state.clusters.values() for pid in c.pids.values())]
        return round(sum(rss_mib(pid) for pid in pids), 1)

    def wait_nodes_ready(self, name: str, expected: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nodes = self.kubectl(name).get_json("nodes")["items"]
            ready = [node for node in nodes if _condition(node, "Ready") == "True"]
            if len(ready) >= expected:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{name}: GPU nodes not Ready after {timeout:.0f}s")

    @staticmethod
    def _wait_for_default_account(kubectl: members.Kubectl, timeout: float = 60) -> None:
        # the ServiceAccount controller must be up before token Secrets can be filled
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if kubectl.run("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise TimeoutError("kube-controller-manager never created the default ServiceAccount")

    # ----- faults

    def _member(self, name: str) -> ClusterState:
        if name not in self.member_names:
            raise KeyError(f"no member named {name!r} (members: {', '.join(self.member_names)})")
        return self.state.clusters[name]

    def kill(self, name: str) -> None:
        cluster = self._member(name)
        kill_group(cluster.pids["apiserver"])
        cluster.faults = [*cluster.faults, "killed"]
        self.state.save()

    def partition(self, name: str) -> None:
        cluster = self._member(name)
        os.killpg(cluster.pids["apiserver"], signal.SIGSTOP)
        cluster.faults = [*cluster.faults, "partitioned"]
        self.state.save()

    def start_links(self) -> dict[str, str]:
        """Start Toxiproxy with one proxy per member; returns where samizdat reaches each member now
        (members registered from then on are reached through their proxy)."""
        self.links.start()
        return {name: self.links.add_proxy(name, self.state.clusters[name].index, self.state.clusters[name].api_port)
                for name in self.member_names}

    def start_dns(self) -> None:
        """Start BIND and external-dns (e2e/sandbox/dns.py) over this hub, with external-dns's CRD in it."""
        kubectl = self.kubectl("hub")
        kubectl.run("apply", "--server-side", "-f", str(toolchain.dns_endpoint_crd()))
        kubectl.run("wait", "--for=condition=Established", "crd/dnsendpoints.externaldns.k8s.io", "--timeout=60s")
        if not self.dns.running():
            self.dns.start(self.admin_kubeconfig("hub"))

    def degrade(self, name: str, profile: str) -> None:
        """Put a link profile (`links.PROFILES`) between samizdat and the member; `heal` clears it."""
        cluster = self._member(name)
        if not self.links.running():
            raise RuntimeError("this sandbox has no links (start it with `up --links`)")
        self.links.degrade(name, profile)
        cluster.faults = [*(f for f in cluster.faults if not f.startswith(LINK_FAULT)), f"{LINK_FAULT}{profile}"]
        self.state.save()

    def heal(self, name: str) -> None:
        """Undo every fault recorded for the member (see the module's docstring)."""
        cluster = self._member(name)
        faults = set(cluster.faults)
        if self.links.running():
            self.links.heal(name)
        if "killed" in faults:
            self.launcher.start_apiserver(cluster)
        elif "partitioned" in faults:
            os.killpg(cluster.pids["apiserver"], signal.SIGCONT)
        self.launcher.wait_ready(cluster)
        kubectl = self.kubectl(name)
        if "cordoned" in faults:
            kubectl.run("uncordon", "-l", GPU_NODES)
        if "tainted" in faults:
            kubectl.run("taint", "nodes", "-l", GPU_NODES, f"{CENSOR_TAINT}-")
        if "gpu-quota-zero" in faults:
            kubectl.run("delete", "resourcequota", CENSOR_QUOTA, "-n", members.WORKLOAD_NAMESPACE, "--ignore-not-found")
        cluster.blocked_images = []
        if faults & PROCESS_FAULTS:
            # A member back from an outage reboots its controllers too; left running they would sit in
            # client-go's reconnect back-off for many seconds, an artefact of the sandbox, not of the fault.
            self._restart_controllers(cluster)
        cluster.faults = []
        self.state.save()

    def _restart_controllers(self, cluster: ClusterState, components: tuple[str, ...] = ()) -> None:
        components = components or self.launcher.controllers(cluster)
        self.launcher.stop_controllers(cluster, components)
        self.state.save()
        if "kwok" in components:
            # the old kwok's node leases go with it, or the new one would wait for them to expire (40 s)
            self.kubectl(cluster.name).run("delete", "leases", "--all", "-n", "kube-node-lease")
        self.launcher.start_controllers(cluster, components)
        self.state.save()
        self.launcher.wait_serving(cluster, components)

    def censor(self, name: str, action: str, image: str | None = None) -> None:
        """Act as the member's hostile admin: against samizdat's objects and identity, or by starving
        them (`image` names what `block-image` blocks)."""
        cluster = self._member(name)
        if (action == "block-image") != (image is not None):
            raise ValueError("--image goes with --action block-image, and only with it")
        kubectl = self.kubectl(name)
        namespace = ["-n", members.WORKLOAD_NAMESPACE]
        if action == "delete":
            kubectl.run("delete", "deployments,jobs", "--all", *namespace, "--wait=false")
        elif action == "scale-zero":
            kubectl.run("scale", "deployments", "--all", "--replicas=0", *namespace)
        elif action == "swap-image":
            for deployment in kubectl.get_json("deployments", *namespace)["items"]:
                containers = deployment["spec"]["template"]["spec"]["containers"]
                patch = {"spec": {"template": {"spec": {"containers": [
                    {"name": container["name"], "image": CENSORED_IMAGE} for container in containers
                ]}}}}
                kubectl.run("patch", "deployment", deployment["metadata"]["name"], *namespace,
                            "--type=strategic", "-p", json.dumps(patch))
        elif action == "revoke-credentials":
            # every token samizdat holds is bound to one of these: the member's API refuses them at once
            kubectl.run("delete", "secrets", "-l", membership.CREDENTIAL_SELECTOR, "-n", members.SYSTEM_NAMESPACE)
        elif action == "delete-namespace":
            kubectl.run("delete", "namespace", members.WORKLOAD_NAMESPACE, "--wait=false")
        elif action in STARVATIONS:
            self._starve(cluster, action, image)
        else:
            raise ValueError(f"unknown censor action {action!r}; one of {', '.join(CENSOR_ACTIONS)}")

    def _starve(self, cluster: ClusterState, action: str, image: str | None) -> None:
        kubectl = self.kubectl(cluster.name)
        if action == "cordon":
            kubectl.run("cordon", "-l", GPU_NODES)
        elif action == "taint":
            kubectl.run("taint", "nodes", "-l", GPU_NODES, "--overwrite",
                        *(f"{CENSOR_TAINT}=true:{effect}" for effect in CENSOR_TAINT_EFFECTS))
        elif action == "quota-zero":
            kubectl.apply([{
                "apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": {"name": CENSOR_QUOTA, "namespace": members.WORKLOAD_NAMESPACE},
                "spec": {"hard": {"requests.nvidia.com/gpu": "0"}},
            }])
        elif action == "stop-scheduler":
            self.launcher.stop_controllers(cluster, ("scheduler",))
        else:
            assert image is not None
            cluster.blocked_images = sorted({*cluster.blocked_images, stages.check_image(image)})
            self._restart_controllers(cluster, ("kwok",))
        cluster.faults = [*cluster.faults, STARVATIONS[action]]
        self.state.save()


def link_ports(base: int, member_count: int) -> list[int]:
    """The ports `up --links` adds: Toxiproxy's API and one proxy per member."""
    return [base + links_module.API_OFFSET, *(base + links_module.PROXY_OFFSET + i for i in range(1, member_count + 1))]


def sandbox_ports(base: int, member_count: int) -> list[int]:
    """Every port a sandbox with this base listens on (the layout of `Launcher`)."""
    clusters = range(member_count + 1)
    return [base + 79, base + 80, base + OPERATOR_METRICS_OFFSET,
            *(base + offset + i for offset in (100, 200, 300, 400) for i in clusters)]


def ephemeral_ports() -> range:
    """The kernel's ephemeral port range, from which it picks the local port of outgoing connections."""
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def _overlaps_ephemeral(base: int, ephemeral: range) -> bool:
    return base < ephemeral.stop and ephemeral.start < base + PORT_SPAN


def check_port_base(base: int) -> None:
    ephemeral = ephemeral_ports()
    if base < 1024 or base + PORT_SPAN > 65536:
        raise ValueError(f"sandbox port base {base}: its ports [{base}, {base + PORT_SPAN}) must lie in 1024–65535")
    if _overlaps_ephemeral(base, ephemeral):
        raise ValueError(
            f"sandbox port base {base}: its ports [{base}, {base + PORT_SPAN}) overlap the kernel's ephemeral "
            f"port range {ephemeral.start}–{ephemeral.stop - 1} (/proc/sys/net/ipv4/ip_local_port_range), where "
            "an outgoing connection can take a port just when a restarted member process needs it; choose "
            f"SAMIZDAT_SANDBOX_PORT_BASE at most {ephemeral.start - PORT_SPAN} or at least {ephemeral.stop}"
        )


def free_port_base(member_count: int, start: int = 27000, step: int = 1000) -> int:
    """The first port base from `start` at which a sandbox of `member_count` members lies outside the
    ephemeral port range and finds every port free, so a test session never talks to a sandbox left over
    from another."""
    ephemeral = ephemeral_ports()
    for base in range(start, 65536 - PORT_SPAN, step):
        if not _overlaps_ephemeral(base, ephemeral) and all(
            port_free(port) for port in sandbox_ports(base, member_count)
        ):
            return base
    raise RuntimeError(f"no free port range for a sandbox outside the ephemeral ports from {start}")


def _condition(obj: dict[str, Any], kind: str) -> str | None:
    for condition in obj.get("status", {}).get("conditions", []):
        if condition.get("type") == kind:
            return str(condition.get("status"))
    return None


def rss_mib(pid: int) -> float:
    """The resident memory of one process, in MiB (0 when it is gone): the sandbox's, the operator's."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0
