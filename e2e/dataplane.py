"""A stand-in data plane, and a client of it as users write them: for measuring what clients feel.

kwok's pods serve nothing, so each member gets a `StandIn`: a tiny HTTP server at the member's traffic
address and the workload's node port that listens while, and only while, the member's own API shows a
Ready serving pod of the workload, and stops (connections refused) when it does not or the member does
not answer (killed, partitioned). It stands in for kube-proxy and the model server behind it; nothing
in samizdat reads it.

`Client` resolves the workload's name at the sandbox's DNS server (no longer than the TTL allows),
connects with a short timeout, retries once on another address, and records every request's outcome.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from e2e.roles import SERVING, ready, role
from e2e.sandbox import members
from e2e.sandbox.dns import DNS
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import UID_LABEL

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
WATCH_S = 0.2  # how often a stand-in reads its member's pods


class StandIn(threading.Thread):
    """Listens on `address:port` while `member` has a Ready serving pod of workload `uid`."""

    def __init__(self, sandbox: Sandbox, member: str, address: str, port: int, uid: str) -> None:
        super().__init__(name=f"standin-{member}", daemon=True)
        self.member, self.address, self.port, self.uid = member, address, port, uid
        self.api = httpx.Client(base_url=sandbox.server(member), verify=sandbox.launcher.tls_context(), timeout=0.5,
                                headers={"Authorization": f"Bearer {sandbox.launcher.admin_token}"})
        self.halted = threading.Event()
        self._listener: socket.socket | None = None

    def serving(self) -> bool:
        try:
            reply = self.api.get(f"/api/v1/namespaces/{members.WORKLOAD_NAMESPACE}/pods",
                                 params={"labelSelector": f"{UID_LABEL}={self.uid}"})
            reply.raise_for_status()
        except httpx.HTTPError:
            return False  # a member that does not answer serves no one either
        return any(ready(pod) and role(pod) == SERVING and not pod["metadata"].get("deletionTimestamp")
                   for pod in reply.json().get("items", []))

    def run(self) -> None:
        while not self.halted.wait(WATCH_S):
            if self.serving():
                self._open()
            else:
                self._close()
        self._close()
        self.api.close()

    def stop(self) -> None:
        self.halted.set()
        self.join(timeout=5)

    def _open(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.address, self.port))
        except OSError:
            listener.close()
            return  # the last listener is still going away: again on the next look
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._answer, args=(listener,), name=f"{self.name}-answer", daemon=True).start()

    def _close(self) -> None:
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would leave the port bound
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    @staticmethod
    def _answer(listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # closed: the member stopped serving
            with connection:
                try:
                    connection.recv(4096)
                    connection.sendall(ANSWER)
                except OSError:
                    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    at: float  # monotonic
    ok: bool
    address: str | None


class Client(threading.Thread):
    """Asks `name:port` every `every` seconds, as a careful client: re-resolves once the TTL is up or on
    an error, connects with a short timeout, tries another address of the answer before giving up."""

    def __init__(self, dns: DNS, name: str, port: int, ttl_s: float, every: float = 0.1,
                 connect_timeout: float = 0.5) -> None:
        super().__init__(name=f"client-{name}", daemon=True)
        self.dns, self.name_, self.port, self.ttl_s = dns, name, port, ttl_s
        self.every, self.connect_timeout = every, connect_timeout
        self.outcomes: list[Outcome] = []
        self.halted = threading.Event()
        self._answer: list[str] = []
        self._resolved_at = -1e9

    def run(self) -> None:
        while not self.halted.wait(self.every):
            self.outcomes.append(self._request())

    def stop(self) -> None:
        self.halted.set()
        self.join(timeout=10)

    def failed_window(self, after: float) -> float:
        """Seconds from the first failed request after `after` to the last one (0: none failed)."""
        failed = [o.at for o in self.outcomes if o.at >= after and not o.ok]
        return failed[-1] - failed[0] if failed else 0.0

    def _request(self) -> Outcome:
        now = time.monotonic()
        if now - self._resolved_at >= self.ttl_s or not self._answer:
            self._resolve()
        for attempt, address in enumerate(self._answer[:2]):
            if self._get(address):
                return Outcome(time.monotonic(), True, address)
            if attempt == 0:
                self._resolve()  # on an error, ask again before the retry
        return Outcome(time.monotonic(), False, None)

    def _resolve(self) -> None:
        self._answer = self.dns.query(self.name_)
        self._resolved_at = time.monotonic()

    def _get(self, address: str) -> bool:
        try:
            with socket.create_connection((address, self.port), timeout=self.connect_timeout) as connection:
                connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                return connection.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False


@dataclass(frozen=True, slots=True)
class KillTrial:
    victim: str
    record_s: float  # from the kill until samizdat's DNSEndpoint no longer lists the victim's address
    dns_s: float  # from the kill until the DNS server no longer answers it
    failed_s: float  # the client's window of failed requests after the kill (0: none failed)
    requests: int  # the client's requests after the kill
    failures: int


def kill_and_follow(sandbox: Sandbox, client: Client, name: str, addresses: dict[str, str], victim: str,
                    record: Callable[[], list[str]], settle_s: float) -> KillTrial:
    """Kill `victim` while `client` runs; wait until `record` (the DNSEndpoint's addresses) and then the
    DNS server stop listing its address, then `settle_s` more (past the TTL), and report what the
    client saw. The victim is left killed."""
    killed = time.monotonic()
    sandbox.kill(victim)
    eventually(lambda: addresses[victim] not in record(), timeout=30, interval=0.05,
               what=f"the DNSEndpoint no longer listing {victim}")
    record_s = time.monotonic() - killed
    eventually(lambda: addresses[victim] not in sandbox.dns.query(name), timeout=30, interval=0.05,
               what=f"DNS no longer answering {victim}")
    dns_s = time.monotonic() - killed
    time.sleep(settle_s)
    after = [o for o in client.outcomes if o.at > killed]
    return KillTrial(victim, record_s, dns_s, client.failed_window(killed), len(after), sum(not o.ok for o in after))
