"""DNS in the sandbox: a real authoritative server and the real external-dns in front of it.

BIND 9 (Debian's `bind9` package, `named`) serves the zone `ZONE` on 127.0.0.1 at the sandbox's port
base + DNS_OFFSET (UDP and TCP), accepting dynamic updates (RFC 2136) signed with a TSIG key made for
this sandbox. external-dns (`sigs.k8s.io/external-dns`, pinned in e2e/toolchain/external-dns, built on
first use) runs as its users run it: `--source=crd` over the hub's DNSEndpoints, `--provider=rfc2136`
into that zone with the key, `--registry=txt`, event-driven. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from e2e.sandbox import toolchain
from e2e.sandbox.launcher import alive, kill_recorded

ZONE = "e2e.samizdat.test"
KEY_NAME = "samizdat-sandbox"
DNS_OFFSET = 700  # named, UDP and TCP
EXTERNAL_DNS_METRICS_OFFSET = 701
# external-dns reacts to a DNSEndpoint change at once (--events), but no sooner than this after its
# last sync; its default is 5 s, which a user after fast failover lowers too.
MIN_EVENT_SYNC = "1s"
SYNC_INTERVAL = "30s"


class DNS:
    """The sandbox's DNS server and external-dns, rooted in `directory`."""

    def __init__(self, directory: Path, port_base: int) -> None:
        self.directory = directory / "dns"
        self.port = port_base + DNS_OFFSET
        self.metrics_port = port_base + EXTERNAL_DNS_METRICS_OFFSET

    @property
    def named_pid(self) -> Path:
        return self.directory / "named.pid.samizdat"

    @property
    def external_dns_pid(self) -> Path:
        return self.directory / "external-dns.pid"

    def running(self) -> bool:
        return all(p.exists() and alive(int(p.read_text())) for p in (self.named_pid, self.external_dns_pid))

    def secret(self) -> str:
        """The TSIG key's secret (base64), made once per sandbox."""
        path = self.directory / "tsig.secret"
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            path.write_text(base64.b64encode(os.urandom(32)).decode())
            path.chmod(0o600)
        return path.read_text()

    def start(self, hub_kubeconfig: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._start_named()
        self._start_external_dns(hub_kubeconfig)

    def stop(self) -> None:
        kill_recorded(self.external_dns_pid)
        kill_recorded(self.named_pid)

    def query(self, name: str, kind: str = "A") -> list[str]:
        """What the server answers for `name` now (`dig +short`), as a client's resolver would hear it."""
        done = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.port), "+short", "+tries=1", "+time=1",
                               name, kind], capture_output=True, text=True, timeout=10)
        return sorted(line for line in done.stdout.split() if line and not line.startswith(";"))

    # ----- internals

    def _start_named(self) -> None:
        zone_file = self.directory / f"{ZONE}.zone"
        zone_file.write_text(
            f"$TTL 5\n@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 60 10 600 1\n@ IN NS ns.{ZONE}.\n"
            "ns IN A 127.0.0.1\n"
        )
        (self.directory / "named.conf").write_text(f'''
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{self.secret()}"; }};
options {{
    directory "{self.directory}";
    pid-file none;
    listen-on port {self.port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ 127.0.0.1; }};
    allow-transfer {{ key "{KEY_NAME}"; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
zone "{ZONE}" {{
    type primary;
    file "{zone_file}";
    journal "{zone_file}.jnl";
    allow-update {{ key "{KEY_NAME}"; }};
}};
''')
        (zone_file.parent / f"{zone_file.name}.jnl").unlink(missing_ok=True)
        log = (self.directory / "named.log").open("ab")
        # -g: foreground, logging to stderr; -n 1: one worker thread is plenty for a test zone
        process = subprocess.Popen(["named", "-g", "-n", "1", "-c", str(self.directory / "named.conf")],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        log.close()
        self.named_pid.write_text(str(process.pid))
        self._wait(lambda: bool(self.query(ZONE, "SOA")), f"named on 127.0.0.1:{self.port}")

    def _start_external_dns(self, hub_kubeconfig: Path) -> None:
        binary = toolchain.ensure_tool("external-dns")
        log = (self.directory / "external-dns.log").open("ab")
        process = subprocess.Popen([
            str(binary), f"--kubeconfig={hub_kubeconfig}",
            "--source=crd", "--crd-source-apiversion=externaldns.k8s.io/v1alpha1", "--crd-source-kind=DNSEndpoint",
            "--provider=rfc2136", "--rfc2136-host=127.0.0.1", f"--rfc2136-port={self.port}",
            f"--rfc2136-zone={ZONE}", f"--domain-filter={ZONE}",
            f"--rfc2136-tsig-keyname={KEY_NAME}", f"--rfc2136-tsig-secret={self.secret()}",
            "--rfc2136-tsig-secret-alg=hmac-sha256", "--rfc2136-tsig-axfr",
            "--registry=txt", f"--txt-owner-id={KEY_NAME}", "--policy=sync",
            "--events", f"--min-event-sync-interval={MIN_EVENT_SYNC}", f"--interval={SYNC_INTERVAL}",
            f"--metrics-address=127.0.0.1:{self.metrics_port}",
        ], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.external_dns_pid.write_text(str(process.pid))

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not come up within {timeout:.0f}s (see {self.directory})")
