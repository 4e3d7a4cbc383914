"""`ClusterClient`: one connection pool to one cluster's API server, and the only code that does HTTP.

Every request has a deadline. A killed member refuses connections at once, but a partitioned one just
goes quiet, and an operator waiting without bound on a quiet member stops failing over. So each request
is bounded three ways: connecting (TCP and TLS), silence between bytes, and the request as a whole.

The client knows nothing of Kubernetes objects; the verb modules (`fetching`, `watching`, `applying`,
`deleting`, `scaling`, `probing`) build paths and bodies on top of it. Writes go through
`writing.write`, never straight through `request` (the one exception is the election's own Lease, see
`leasing`, and the fence epoch, see `fencing`). A client may carry an `Authority`, the leader election,
which `writing.write` asks before every write, and a `FenceKeeper`, which raises the member's fence to
the leader's epoch before its first write there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import ssl
import tempfile
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx

from samizdat.remote.clusters import errors
from samizdat.remote.clusters.kubeconfig import Credentials, KubeconfigError
from samizdat.core.leadership import Permit

USER_AGENT = "samizdat"
# A single reply is at most one page of a list (see fetching.PAGE_SIZE) or one object; a member sending
# more is broken or hostile, and must not be able to make the operator buffer without bound.
MAX_REPLY_BYTES = 64 * 1024 * 1024
MAX_EVENT_BYTES = 16 * 1024 * 1024
# Replies past this size wait for the member's one large-reply slot, so a member can hold at most one
# large reply in the operator's memory at a time, however many requests it keeps busy. Real pages of
# PAGE_SIZE objects stay well under it; only a broken or hostile member queues here.
LARGE_REPLY_BYTES = 1024 * 1024
# Rotated tokens (projected service-account tokens) are re-read this often, as client-go does.
TOKEN_FILE_REFRESH_S = 60.0


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long to wait for a member before calling it timed out (seconds)."""

    connect: float = 2.0  # TCP connect plus TLS handshake
    read: float = 5.0  # the longest silence between bytes of a reply (and to send a request)
    request: float = 10.0  # one whole request, from connecting to the last byte
    watch: int = 30  # `timeoutSeconds` asked of the server: it ends a quiet watch by then
    # How much longer than `watch` a stream may stay silent before the member counts as partitioned.
    watch_grace: float = 5.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "request", "watch", "watch_grace"):
            if getattr(self, name) <= 0:
                raise ValueError(f"deadline {name} must be positive")

    def clipped(self, seconds: float) -> Deadlines:
        """These deadlines, none longer than `seconds` (for a probe with its own budget)."""
        return Deadlines(
            connect=min(self.connect, seconds), read=min(self.read, seconds), request=min(self.request, seconds),
            watch=self.watch, watch_grace=self.watch_grace,
        )


class Authority(Protocol):
    """Who may write through a client: the leader election, asked once per write."""

    def permit(self) -> Permit | None:
        """The epoch to stamp a write with and how long the warrant holds; None: do not write."""
        ...


class FenceKeeper(Protocol):
    """Keeps a member's fence at the writing leader's epoch (`fencing.Keeper`)."""

    async def before_write(self, client: ClusterClient, permit: Permit, deadline: float) -> None:
        """Raise the member's fence to `permit.epoch` if it is not there yet; raise if it cannot be."""
        ...


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful (2xx) reply: its status and body, already read in full."""

    member: str
    status: int
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; a member answering anything else is malformed."""
        try:
            payload = json.loads(self.body)
        except ValueError:
            raise errors.MemberMalformed(self.member, "reply is not JSON", status=self.status) from None
        if not isinstance(payload, dict):
            raise errors.MemberMalformed(self.member, "reply is not a JSON object", status=self.status)
        return payload

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class ClusterClient:
    """The HTTP client of one member (or the hub); use as `async with ClusterClient(...)` or `aclose()` it."""

    def __init__(
        self,
        member: str,
        credentials: Credentials,
        *,
        deadlines: Deadlines | None = None,
        transport: httpx.AsyncBaseTransport | None = None,  # tests only: to feed transport failures
        authority: Authority | None = None,  # None: writes need no warrant (tools, tests, `join`)
        fence: FenceKeeper | None = None,  # None: no fence to raise (the hub, or no election)
        tls: ssl.SSLContext | None = None,  # None: built from the credentials (see `reconnected`)
    ) -> None:
        self.member = member
        self.credentials = credentials
        self.deadlines = deadlines or Deadlines()
        self.authority = authority
        self.fence = fence
        self._token: tuple[str, float] | None = None  # (token, monotonic time read) when from a file
        self._large_reply = asyncio.Lock()  # held by the one reply of this member past LARGE_REPLY_BYTES
        self._tls = tls if tls is not None else _tls_context(credentials)
        self._http = httpx.AsyncClient(
            base_url=credentials.server,
            verify=self._tls,
            proxy=credentials.proxy_url,
            transport=transport,
            timeout=self._timeout(self.deadlines.read),
            # Redirects could carry our token elsewhere; the environment (HTTPS_PROXY, SSL_CERT_FILE…)
            # must not silently re-route member traffic away from what its kubeconfig says.
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"ClusterClient({self.member!r}, {self.credentials.server!r})"

    async def __aenter__(self) -> ClusterClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    def reconnected(self) -> ClusterClient:
        """A client of the same member with the same identity on connections of its own, none reused
        from this one (whose idle connections may be stalled or half-open): for reads only, so no
        authority or fence. The TLS context is shared, not built again."""
        return ClusterClient(self.member, self.credentials, deadlines=self.deadlines, tls=self._tls)

    def use_token(self, token: str) -> None:
        """Authenticate from now on with `token` (a renewed credential), keeping the connections open."""
        self.credentials = dataclasses.replace(self.credentials, token=token, token_file=None)
        self._token = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        deadline: float | None = None,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> Reply:
        """Send one request and read its reply within `deadline` seconds (default: `deadlines.request`),
        refusing (`MemberMalformed`) a reply longer than `max_bytes`.

        Raises a `MemberError` for any transport failure or non-2xx status.
        """
        deadlines = self.deadlines.clipped(deadline) if deadline is not None else self.deadlines
        headers = self._headers()
        if content_type is not None:
            headers["Content-Type"] = content_type
        request = self._http.build_request(
            method, path, params=params, content=body, headers=headers,
            timeout=self._timeout(deadlines.read, deadlines), extensions=self._extensions(),
        )
        async with errors.deadline(self.member, deadlines.request):
            response = await self._http.send(request, stream=True)
            try:
                content = await self._read_capped(response, max_bytes)
            finally:
                await response.aclose()
        if not 200 <= response.status_code < 300:
            raise errors.for_response(self.member, response.status_code, content)
        return Reply(self.member, response.status_code, content)

    async def stream(
        self, path: str, *, params: Mapping[str, str] | None = None, idle: float, deadline: float
    ) -> AsyncGenerator[bytes, None]:
        """Yield the non-empty lines of a streaming GET (a watch), each without its newline.

        `idle` bounds the silence between bytes, `deadline` the whole stream; both end in MemberTimeout.
        The deadline is enforced around each read only, never across a `yield`, so time the consumer
        spends on a line is not charged to the member.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        request = self._http.build_request(
            "GET", path, params=params, headers=self._headers(),
            timeout=self._timeout(idle), extensions=self._extensions(),
        )
        response: httpx.Response | None = None
        try:
            async with errors.deadline(self.member, deadline, started=started):
                response = await self._http.send(request, stream=True)
                if not 200 <= response.status_code < 300:
                    content = await self._read_capped(response, MAX_REPLY_BYTES)
                    raise errors.for_response(self.member, response.status_code, content)
            chunks = response.aiter_raw()
            # A bytearray grown in place, split only when a chunk brings a newline: an endless line
            # costs linear time up to the cap, not a copy of everything so far per chunk. Blank lines
            # count towards the cap too (the API server never sends them), so a stream of nothing but
            # whitespace ends as soon as one too long an event would, not only at the deadline.
            pending = bytearray()
            since_event = 0  # bytes received since the last line yielded
            while True:
                async with errors.deadline(self.member, deadline, started=started):
                    chunk = await anext(chunks, None)
                if chunk is None:
                    break
                pending += chunk
                since_event += len(chunk)
                if since_event > MAX_EVENT_BYTES:
                    raise errors.MemberMalformed(self.member, f"a watch event exceeds {MAX_EVENT_BYTES} bytes")
                if b"\n" not in chunk:
                    continue
                *lines, rest = bytes(pending).split(b"\n")
                pending = bytearray(rest)
                for line in lines:
                    if line.strip():
                        since_event = len(pending)
                        yield line
            if pending.strip():
                yield bytes(pending)
        finally:
            if response is not None:
                await response.aclose()

    # ----- internals

    async def _read_capped(self, response: httpx.Response, limit: int) -> bytes:
        """The whole body, refused past `limit` bytes. A body past LARGE_REPLY_BYTES waits for (and then
        holds, until read) the member's large-reply slot: what one member makes the operator buffer at
        once is bounded by about one capped reply, not by how many requests it keeps in flight."""
        content = bytearray()
        slot: asyncio.Lock | None = None
        try:
            async for chunk in response.aiter_raw():
                content += chunk
                if slot is None and len(content) > LARGE_REPLY_BYTES:
                    slot = self._large_reply
                    await slot.acquire()
                if len(content) > limit:
                    raise errors.MemberMalformed(
                        self.member, f"reply exceeds {limit} bytes", status=response.status_code
                    )
        finally:
            if slot is not None:
                slot.release()
        return bytes(content)

    def _timeout(self, read: float, deadlines: Deadlines | None = None) -> httpx.Timeout:
        deadlines = deadlines or self.deadlines
        return httpx.Timeout(connect=deadlines.connect, read=read, write=deadlines.read, pool=deadlines.connect)

    def _extensions(self) -> dict[str, Any]:
        # tls-server-name: verify the certificate against this name instead of the URL's host.
        return {"sni_hostname": self.credentials.tls_server_name} if self.credentials.tls_server_name else {}

    def _headers(self) -> dict[str, str]:
        token = self._bearer_token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _bearer_token(self) -> str | None:
        if self.credentials.token is not None or self.credentials.token_file is None:
            return self.credentials.token
        now = time.monotonic()
        if self._token is None or now - self._token[1] > TOKEN_FILE_REFRESH_S:
            try:
                token = Path(self.credentials.token_file).read_text().strip()
            except OSError as error:
                if self._token is None:
                    raise errors.MemberUnauthorized(self.member, f"cannot read the token file: {error}") from None
                token = self._token[0]  # keep the last good token while the kubelet swaps the file
            self._token = (token, now)
        return self._token[0]


def _tls_context(credentials: Credentials) -> ssl.SSLContext:
    """The TLS settings of a kubeconfig, as an SSL context (client certificates loaded from memory)."""
    try:
        if credentials.insecure_skip_tls_verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif credentials.ca_pem is not None:
            context = ssl.create_default_context(cadata=credentials.ca_pem)
        else:
            context = ssl.create_default_context()
        if credentials.client_cert_pem is not None and credentials.client_key_pem is not None:
            _load_client_certificate(context, credentials.client_cert_pem, credentials.client_key_pem)
    except (ssl.SSLError, ValueError) as error:
        raise KubeconfigError(f"unusable TLS material for {credentials.server}: {error}") from None
    return context


def _load_client_certificate(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    # The ssl module loads certificate chains only from files: write them to a private directory for
    # the duration of the call. The key never outlives it on disk.
    with tempfile.TemporaryDirectory(prefix="samizdat-tls-") as directory:
        cert_path, key_path = Path(directory) / "client.crt", Path(directory) / "client.key"
        for path, text in ((cert_path, cert_pem), (key_path, key_pem)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(text)
        context.load_cert_chain(cert_path, key_path)
