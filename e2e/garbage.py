"""A member endpoint that answers every request with 200 and a hostile body: malformed JSON, a 50 MB
body, an endless stream, or a 10 s stall (`Behaviour`, settable while it serves).

Not a fake of the Kubernetes API: it is the failure under test, a broken or hostile endpoint registered
as a member. It speaks HTTPS with a certificate from the sandbox's CA, so samizdat's client gets past
TLS and the status line and meets the garbage where such a member would put it: in the body of every
probe, list and watch. It listens on 127.0.0.1 only, on a port below the ephemeral range.
"""

from __future__ import annotations

import contextlib
import enum
import http.server
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from e2e.sandbox import members, pki
from e2e.sandbox.launcher import kubeconfig_yaml
from e2e.sandbox.world import Sandbox, port_free
from samizdat.core import membership

# Cut off mid-object: every JSON parser refuses it, whatever was asked for.
GARBAGE = b'{"kind": "NodeList", "apiVersion": "v1", "items": [{"metadata": {"name": "gpu-0"\n'
PORTS = range(24000, 26000)  # below the sandboxes' bases (27000+) and the ephemeral range
HUGE_BYTES = 50 * 1000 * 1000
STALL_S = 10.0
ENDLESS_LINE = b" " * 65535 + b"\n"  # blank lines: no event ever ends, and none is too long on its own


class Behaviour(enum.StrEnum):
    MALFORMED = "malformed"  # a JSON object cut off mid-way
    HUGE = "huge"  # a valid JSON object (a Status) padded to HUGE_BYTES
    ENDLESS = "endless"  # a chunked body of blank lines that never ends
    STALL = "stall"  # nothing for STALL_S, then the malformed body


def _huge_body() -> bytes:
    envelope = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Success", "message": ""}).encode()
    return envelope.replace(b'""', b'"' + b" " * (HUGE_BYTES - len(envelope)) + b'"')


class _GarbageHTTPServer(http.server.ThreadingHTTPServer):
    requests = 0  # answered so far; read by tests to know the member was really asked
    behaviour = Behaviour.MALFORMED
    huge = b""  # made once, on first use

    def huge_body(self) -> bytes:
        if not self.huge:
            self.huge = _huge_body()
        return self.huge


class _AnswerGarbage(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _garbage(self) -> None:
        assert isinstance(self.server, _GarbageHTTPServer)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests += 1
        behaviour = self.server.behaviour
        if behaviour is Behaviour.STALL:
            time.sleep(STALL_S)
        try:
            if behaviour is Behaviour.ENDLESS:
                self._endless()
            else:
                self._whole(self.server.huge_body() if behaviour is Behaviour.HUGE else GARBAGE)
        except OSError:
            self.close_connection = True  # the client gave up on it: what a hostile member wants

    def _whole(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"%x\r\n%s\r\n" % (len(ENDLESS_LINE), ENDLESS_LINE)
        while self.server.behaviour is Behaviour.ENDLESS:  # type: ignore[attr-defined]
            self.wfile.write(chunk)
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _garbage

    def log_message(self, format: str, *args: object) -> None:
        pass  # a request a second from the operator's probe: keep the test output readable


class GarbageServer:
    """Serves garbage on `https://127.0.0.1:<port>` until stopped; use as a context manager."""

    def __init__(self, ca: tuple[Path, Path], directory: Path) -> None:
        self.ca = ca
        pair = pki.issue_serving_cert(ca, directory, "garbage-member")
        self.port = next(port for port in PORTS if port_free(port))
        self._server = _GarbageHTTPServer(("127.0.0.1", self.port), _AnswerGarbage)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair.cert, pair.key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="garbage-member", daemon=True)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def requests(self) -> int:
        """How many requests were answered with garbage so far."""
        return self._server.requests

    @property
    def behaviour(self) -> Behaviour:
        return self._server.behaviour

    @behaviour.setter
    def behaviour(self, behaviour: Behaviour) -> None:
        self._server.behaviour = behaviour

    def kubeconfig(self, name: str) -> str:
        """A kubeconfig for this endpoint, as a user registering it as a member would write one."""
        return kubeconfig_yaml(name, self.server, self.ca[0].read_text(), "samizdat", "any-token")

    def __enter__(self) -> GarbageServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextlib.contextmanager
def registered(sandbox: Sandbox, server: GarbageServer, name: str, country: str) -> Iterator[None]:
    """`server` registered in the hub as MemberCluster `name`, as a user would register a member; removed
    again on the way out."""
    kubectl = sandbox.kubectl("hub")
    secret = membership.hub_secret(name, server.kubeconfig(name), namespace=members.SYSTEM_NAMESPACE)
    kubectl.apply([secret, {
        "apiVersion": "samizdat.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
        "spec": {"kubeconfigSecretRef": {"name": f"member-{name}", "namespace": members.SYSTEM_NAMESPACE},
                 "jurisdiction": {"country": country}, "provider": "garbage-gpus",
                 "health": {"probeIntervalSeconds": 1, "probeTimeoutSeconds": 1, "downAfterSeconds": 2}},
    }])
    try:
        yield
    finally:
        kubectl.run("delete", "mc", name, "--ignore-not-found", "--wait=false")
        kubectl.run("delete", "secret", f"member-{name}", "-n", members.SYSTEM_NAMESPACE, "--ignore-not-found")
