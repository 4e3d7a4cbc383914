"""Starts and stops the sandbox's processes: one etcd, then per cluster an API server and its controllers.

Each cluster is a real control plane on 127.0.0.1: kube-apiserver (TLS, RBAC, ServiceAccount tokens),
kube-controller-manager (Deployments, Jobs, namespaces, garbage collection, token Secrets) and, for
members, kube-scheduler plus kwok, which plays the kubelets of the GPU nodes. The clusters share one etcd
under distinct key prefixes: each cluster still sees only its own data, and one etcd costs a fraction of
six. Processes run detached in their own sessions, so `up` returns and `down` (or another shell) can stop
them later from the PIDs recorded in `state.json`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import yaml

from e2e.sandbox import pki, stages
from e2e.sandbox.toolchain import KWOK_STAGES, Binaries

HUB = "hub"
ADMIN_TOKEN_USER = "sandbox-admin"
# a member's controllers, and the offset from the port base of the port each serves on (plus the index)
CONTROLLER_PORT_OFFSETS = {"controller-manager": 300, "scheduler": 400, "kwok": 200}
MEMBER_CONTROLLERS = tuple(CONTROLLER_PORT_OFFSETS)
HUB_CONTROLLERS = ("controller-manager",)


@dataclass
class ClusterState:
    """What `down`, the fault commands and the tests need to know about one running cluster."""

    name: str
    role: str  # "hub" or "member"
    index: int
    api_port: int
    pids: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    etcd_servers: str = ""  # "": the shared etcd; a hub over several sites stores in its own (hubsites)
    replicated: bool = False  # one of several control planes of one API: its controllers elect a leader
    # images this member's kubelets cannot pull (`censor --action block-image`)
    blocked_images: list[str] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"


@dataclass
class SandboxState:
    directory: Path
    port_base: int
    etcd_pid: int = 0
    clusters: dict[str, ClusterState] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.directory / "state.json"

    def save(self) -> None:
        payload = {
            "port_base": self.port_base,
            "etcd_pid": self.etcd_pid,
            "clusters": {name: asdict(cluster) for name, cluster in self.clusters.items()},
        }
        self.file.write_text(json.dumps(payload, indent=2))

    @classmethod
    def load(cls, directory: Path) -> SandboxState:
        payload = json.loads((directory / "state.json").read_text())
        state = cls(directory, payload["port_base"], payload["etcd_pid"])
        state.clusters = {name: ClusterState(**raw) for name, raw in payload["clusters"].items()}
        return state


class Launcher:
    """Owns the process lifecycle of one sandbox directory."""

    def __init__(self, binaries: Binaries, directory: Path, port_base: int = 17000) -> None:
        self.binaries = binaries
        self.directory = directory
        self.port_base = port_base
        self.ca = pki.ensure_ca(directory / "pki")
        self.admin_token = self._admin_token()

    # ----- paths and ports

    def cluster_dir(self, name: str) -> Path:
        path = self.directory / "clusters" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def admin_kubeconfig(self, name: str) -> Path:
        return self.cluster_dir(name) / "admin.kubeconfig"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.port_base + 79}"

    def _log(self, cluster: str, component: str) -> Path:
        logs = self.directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs / f"{cluster}.{component}.log"

    def _admin_token(self) -> str:
        path = self.directory / "pki" / "admin.token"
        if not path.exists():
            path.write_text(os.urandom(24).hex())
            path.chmod(0o600)
        return path.read_text().strip()

    # ----- processes

    def _spawn(self, cluster: str, component: str, argv: list[str]) -> int:
        log = self._log(cluster, component).open("ab")
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        return process.pid

    def start_etcd(self, state: SandboxState) -> None:
        data = self.directory / "etcd"
        # `up` starts a fresh world: objects of an earlier sandbox must not come back to life
        shutil.rmtree(data, ignore_errors=True)
        state.etcd_pid = self._spawn("shared", "etcd", [
            str(self.binaries.path("etcd")),
            "--name=sandbox", f"--data-dir={data}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{self.port_base + 80}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{self.port_base + 80}",
            f"--initial-cluster=sandbox=http://127.0.0.1:{self.port_base + 80}",
            # a throwaway test store: durability costs fsyncs the sandbox does not need
            "--unsafe-no-fsync", "--quota-backend-bytes=4294967296", "--log-level=warn",
        ])
        _wait_for(lambda: httpx.get(f"{self.etcd_url}/health", timeout=1).status_code == 200, "etcd", 30)

    def apiserver_argv(self, cluster: ClusterState) -> list[str]:
        directory = self.cluster_dir(cluster.name)
        serving = pki.issue_serving_cert(self.ca, directory, f"{cluster.name}-apiserver")
        signing_key = pki.ensure_signing_key(directory / "sa.key")
        tokens = directory / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN_TOKEN_USER},{ADMIN_TOKEN_USER},"system:masters"\n')
        return [
            str(self.binaries.path("kube-apiserver")),
            f"--etcd-servers={cluster.etcd_servers or self.etcd_url}", f"--etcd-prefix=/{cluster.name}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={cluster.api_port}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={self.ca[0]}", f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer=https://{cluster.name}.sandbox.samizdat.invalid",
            f"--service-account-key-file={signing_key}", f"--service-account-signing-key-file={signing_key}",
            f"--service-cluster-ip-range=10.{96 + cluster.index}.0.0/16",
            "--profiling=false", "--v=0",
        ]

    def start_apiserver(self, cluster: ClusterState) -> None:
        """Start (or restart, with its data in etcd) the cluster's API server; its controllers follow once
        it is ready (`start_controllers`), as kube-controller-manager gives up on one slow to become healthy."""
        self.write_kubeconfig(self.admin_kubeconfig(cluster.name), cluster, ADMIN_TOKEN_USER, self.admin_token)
        self.wait_port_free(cluster.name, "apiserver", cluster.api_port)
        cluster.pids["apiserver"] = self._spawn(cluster.name, "apiserver", self.apiserver_argv(cluster))

    def controllers(self, cluster: ClusterState) -> tuple[str, ...]:
        return HUB_CONTROLLERS if cluster.role == HUB else MEMBER_CONTROLLERS

    def controller_port(self, cluster: ClusterState, component: str) -> int:
        return self.port_base + CONTROLLER_PORT_OFFSETS[component] + cluster.index

    def _controller_argv(self, cluster: ClusterState, component: str) -> list[str]:
        directory = self.cluster_dir(cluster.name)
        kubeconfig = f"--kubeconfig={self.admin_kubeconfig(cluster.name)}"
        port = self.controller_port(cluster, component)
        if component == "controller-manager":
            return [
                str(self.binaries.path("kube-controller-manager")), kubeconfig,
                f"--leader-elect={str(cluster.replicated).lower()}", "--bind-address=127.0.0.1",
                f"--secure-port={port}", f"--service-account-private-key-file={directory / 'sa.key'}", f"--root-ca-file={self.ca[0]}",
                # no cloud, no real kubelets: skip the controllers that would only log errors
                "--controllers=*,-nodeipam,-service-lb-controller,-route,-persistentvolume-expander",
                "--profiling=false",
            ]
        if component == "scheduler":
            return [
                str(self.binaries.path("kube-scheduler")), kubeconfig, "--leader-elect=false",
                "--bind-address=127.0.0.1", f"--secure-port={port}", "--profiling=false",
            ]
        config = directory / "kwok-stages.yaml"
        config.write_text(stages.member_stages(self.binaries.path(KWOK_STAGES), cluster.blocked_images))
        return [
            str(self.binaries.path("kwok")), kubeconfig, f"--config={config}",
            "--manage-all-nodes=true",
            f"--cidr=10.{cluster.index}.0.0/16", f"--node-ip=10.{cluster.index}.255.1",
            f"--server-address=127.0.0.1:{port}",
            "--node-lease-duration-seconds=40",
        ]

    def start_controllers(self, cluster: ClusterState, components: tuple[str, ...] = ()) -> None:
        """Everything but the API server (or only `components`): the controllers that make a member run pods."""
        for component in components or self.controllers(cluster):
            cluster.pids[component] = self._spawn(cluster.name, component, self._controller_argv(cluster, component))

    def stop_controllers(self, cluster: ClusterState, components: tuple[str, ...] = ()) -> None:
        """Stop them and return only once each process is gone and its port free, so that whatever
        starts next can bind it."""
        for component in components or self.controllers(cluster):
            if component in cluster.pids:
                pid = cluster.pids.pop(component)
                kill_group(pid)
                if alive(pid):
                    raise RuntimeError(f"{cluster.name}: {component} (pid {pid}) still running after SIGKILL")
            self.wait_port_free(cluster.name, component, self.controller_port(cluster, component))

    def wait_port_free(self, cluster: str, component: str, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not port_free(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cluster}: port {port} of its {component} still taken after {timeout:.0f}s")
            time.sleep(0.1)

    def wait_serving(self, cluster: ClusterState, components: tuple[str, ...] = (), timeout: float = 60) -> None:
        """Wait until each controller answers its health check; fail at once, with the end of its log, if
        one exits instead (a port taken, a bad flag)."""
        for component in components or self.controllers(cluster):
            pid = cluster.pids[component]
            scheme = "http" if component == "kwok" else "https"  # the others serve self-signed TLS
            url = f"{scheme}://127.0.0.1:{self.controller_port(cluster, component)}/healthz"

            def healthy(pid: int = pid, url: str = url, component: str = component) -> bool:
                if not alive(pid):
                    log = self._log(cluster.name, component).read_text(errors="replace").splitlines()
                    raise RuntimeError(f"{cluster.name}: {component} exited at start:\n" + "\n".join(log[-5:]))
                return httpx.get(url, verify=False, timeout=2).status_code == 200

            _wait_for(healthy, f"{cluster.name} {component}", timeout)

    def wait_ready(self, cluster: ClusterState, timeout: float = 90) -> None:
        def ready() -> bool:
            response = httpx.get(
                f"{cluster.server}/readyz", verify=self.tls_context(), timeout=2,
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
            return response.status_code == 200

        _wait_for(ready, f"{cluster.name} kube-apiserver", timeout)

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca[0]))

    def write_kubeconfig(self, path: Path, cluster: ClusterState, user: str, token: str) -> None:
        path.write_text(kubeconfig_yaml(cluster.name, cluster.server, self.ca[0].read_text(), user, token))
        path.chmod(0o600)

    def stop(self, state: SandboxState) -> None:
        for cluster in state.clusters.values():
            for pid in cluster.pids.values():
                kill_group(pid)
        kill_group(state.etcd_pid)


def kubeconfig_yaml(cluster: str, server: str, ca_pem: str, user: str, token: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode(),
        }}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }
    return yaml.safe_dump(config, sort_keys=False)


def kill_group(pid: int, timeout: float = 10) -> None:
    """SIGCONT first: a process group stopped by `partition` would otherwise never see the SIGKILL land.
    Waits until the process is gone, so its ports are free for whatever starts next."""
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)


def terminate(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM, and SIGKILL if the process has not gone after `timeout` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def kill_recorded(pid_file: Path) -> None:
    """Stop a process recorded in `pid_file` by an earlier run (the demo's operator), if still there."""
    if pid_file.exists():
        kill_group(int(pid_file.read_text()))
        pid_file.unlink()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); its state letter tells
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # reaped between the two looks: reading fails with ESRCH
        return False
    return status != "Z"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the Go servers bind: a socket of the previous process left in TIME_WAIT does not block
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for(probe: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except httpx.HTTPError as error:
            last_error = error
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s (last error: {last_error})")
