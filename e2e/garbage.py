"""A member endpoint that answers every request with 200 and a body of malformed JSON.

Not a fake of the Kubernetes API: it is the failure under test, a broken or hostile endpoint registered
as a member. It speaks HTTPS with a certificate from the sandbox's CA, so samizdat's client gets past
TLS and the status line and meets the garbage where such a member would put it: in the body of every
probe, list and watch. It listens on 127.0.0.1 only, on a port below the ephemeral range.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path
from types import TracebackType

from e2e.sandbox import pki
from e2e.sandbox.launcher import kubeconfig_yaml
from e2e.sandbox.world import port_free

# Cut off mid-object: every JSON parser refuses it, whatever was asked for.
GARBAGE = b'{"kind": "NodeList", "apiVersion": "v1", "items": [{"metadata": {"name": "gpu-0"\n'
PORTS = range(24000, 26000)  # below the sandboxes' bases (27000+) and the ephemeral range


class _GarbageHTTPServer(http.server.ThreadingHTTPServer):
    requests = 0  # answered so far; read by tests to know the member was really asked


class _AnswerGarbage(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _garbage(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(GARBAGE)))
        self.end_headers()
        self.wfile.write(GARBAGE)
        assert isinstance(self.server, _GarbageHTTPServer)
        self.server.requests += 1

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
