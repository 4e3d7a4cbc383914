"""Our own errors for everything that can go wrong talking to a member cluster's API.

The HTTP library is an implementation detail of this package: nothing above `samizdat.remote.clusters` may
catch (or even import) its exceptions. Every transport failure and every HTTP error status is turned
into one of the classes below, each naming the member, so callers reason in the failure model
(killed, partitioned, censoring) instead of in sockets:

- `MemberUnreachable`: connections refused or reset — the member was *killed*.
- `MemberTimeout`: nothing answered within a deadline — the member is *partitioned*.
- `MemberUnauthorized` / `MemberForbidden`: it answers but refuses us — credentials or RBAC *revoked*.
- `MemberMalformed`: it answers "success", but not as a Kubernetes API does (not JSON, not the object
  asked for): a broken or hostile endpoint, never to be trusted with a replica.
- `NotFound`, `Conflict`, `Gone`: ordinary API outcomes that callers branch on.
- `NotLeader`: nothing was sent — this operator holds no warrant to write (it is a standby, or its
  leadership lapsed); raised by the write path, not by the member.
- `StaleEpoch`: the member's fence stands above this leader's epoch (a newer leader has been there), or
  refused the write for that reason; `Unfenced`: the member has no working fence, so (with an election)
  nothing is written there. Both from the write path (see `fencing`).
- `MemberAPIError`: any other error status, with the API's own `Status` message.

The original exception is always chained (`raise ... from`), so tracebacks keep the low-level cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx

# Error bodies from a member are untrusted: keep log lines short, and hope nothing secret sits in front.
MESSAGE_MAX_CHARS = 256


class MemberError(Exception):
    """Something went wrong with a request to member `member`; `message` says what, for humans."""

    def __init__(self, member: str, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(member, message)
        self.member = member
        self.message = message
        self.status = status  # the HTTP status, when the member answered at all
        self.reason = reason  # the API's machine-readable `Status.reason` (e.g. "Expired"), when given

    def __str__(self) -> str:
        return f"member {self.member!r}: {self.message}"


class MemberUnreachable(MemberError):
    """The connection was refused, reset or closed mid-response: nobody is listening any more."""


class MemberTimeout(MemberError):
    """A deadline passed without an answer: packets vanish somewhere between us and the member."""


class MemberTLSError(MemberError):
    """The member's certificate did not verify against the CA we were given: not who we think it is."""


class MemberMalformed(MemberError):
    """A 2xx reply that is not what the Kubernetes API sends: not JSON, or not shaped as the object asked for."""


class MemberUnauthorized(MemberError):
    """HTTP 401: the member no longer accepts our credentials (e.g. the token was revoked)."""


class MemberForbidden(MemberError):
    """HTTP 403: our identity is known but not allowed to do this (RBAC removed, or outside our namespace)."""


class NotFound(MemberError):
    """HTTP 404: no such object (or no such namespace)."""


class Conflict(MemberError):
    """HTTP 409: already exists, or a field-manager / resourceVersion conflict."""


class Gone(MemberError):
    """HTTP 410: the resourceVersion is too old to watch from; list again and watch from the new one."""


class NotLeader(MemberError):
    """The write was not sent: this operator is not the leader now (or its warrant lapsed)."""


class StaleEpoch(MemberError):
    """The member's fence refuses this leader's epoch: a newer leader has raised it."""


class Unfenced(MemberError):
    """The member has no working fence (missing, unreadable, or admitting what it must refuse): not written."""


class MemberAPIError(MemberError):
    """Any other error status (400, 422, 429, 5xx, …), carrying the API's `Status` message."""


_BY_STATUS: dict[int, type[MemberError]] = {
    401: MemberUnauthorized,
    403: MemberForbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
}


_TIMEOUTS: dict[type[BaseException], str] = {
    httpx.ConnectTimeout: "connecting timed out",
    httpx.ReadTimeout: "no response within the read deadline",
    httpx.WriteTimeout: "sending the request timed out",
    httpx.PoolTimeout: "no free connection within the deadline",
}


def for_status(member: str, status: int, payload: Mapping[str, Any] | str | None) -> MemberError:
    """The error for an error status; `payload` is the API's `Status` object if it sent one, else text.

    Also used for the `ERROR` events of a watch stream, whose object is a `Status` with a `code`.
    """
    reason: str | None = None
    if isinstance(payload, Mapping):
        message = str(payload.get("message") or "")
        reason = str(payload["reason"]) if payload.get("reason") else None
    else:
        message = " ".join((payload or "").split())
    message = _shorten(message) or f"HTTP {status}"
    return _BY_STATUS.get(status, MemberAPIError)(member, message, status=status, reason=reason)


def for_response(member: str, status: int, body: bytes) -> MemberError:
    """The error for an HTTP error response, parsing the body as a `Status` when it is one."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = body.decode("utf-8", errors="replace")
    if not isinstance(payload, (Mapping, str)):
        payload = None
    return for_status(member, status, payload)


def for_exception(member: str, error: BaseException) -> MemberError | None:
    """The error for a transport-level exception, or None when it is not one of ours to translate."""
    if isinstance(error, (httpx.TimeoutException, TimeoutError)):
        # ConnectTimeout also covers a TLS handshake that never completes: a stopped server's kernel
        # still accepts the TCP connection, so a partition often shows up here rather than as a read.
        return MemberTimeout(member, _TIMEOUTS.get(type(error), "the request deadline passed"))
    if isinstance(error, (httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError, ssl.SSLError)):
        tls = _tls_failure(error)
        if tls is not None:
            return MemberTLSError(member, _shorten(f"TLS failed: {tls}"))
        cause = _socket_cause(error) or str(error) or type(error).__name__
        if isinstance(error, httpx.ConnectError):
            return MemberUnreachable(member, _shorten(f"cannot connect: {cause}"))
        return MemberUnreachable(member, _shorten(f"connection lost: {cause}"))
    if isinstance(error, (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict)):
        # Protocol violations, bad URLs, proxies, decoding: a broken or hostile peer, or our own config.
        return MemberError(member, _shorten(f"{type(error).__name__}: {error}"))
    return None


@contextlib.contextmanager
def translated(member: str) -> Iterator[None]:
    """Re-raise transport exceptions from the block as our own errors (anything else passes untouched)."""
    try:
        yield
    except MemberError:
        raise
    except Exception as error:
        ours = for_exception(member, error)
        if ours is None:
            raise
        raise ours from error


@contextlib.asynccontextmanager
async def deadline(member: str, seconds: float, *, started: float | None = None) -> AsyncIterator[None]:
    """Bound the block by `seconds` after `started` (loop time; default: now), translating errors inside.

    Never hold it across a `yield` of an async generator: the deadline would then also cut into
    whatever the consumer does between items, and cancel the consumer's own awaits.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at((loop.time() if started is None else started) + seconds):
            with translated(member):
                yield
    except TimeoutError as error:
        # asyncio.timeout only turns *its own* cancellation into TimeoutError; an outer cancellation
        # of the caller still propagates as CancelledError, untouched.
        # Rounded: the figure lands in conditions and Events, which must read the same on every repeat.
        raise MemberTimeout(member, f"no complete response within {seconds:.2g}s") from error


def _tls_failure(error: BaseException) -> ssl.SSLError | None:
    """The TLS error behind `error` if it means "wrong peer or protocol", not merely "connection gone".

    A server killed mid-stream surfaces as an SSL EOF inside a read error; that is a kill, not a
    certificate problem, so only verification failures and handshake failures count as TLS errors.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        # EOF, a close, or a handshake cut off mid-read ("the operation did not complete"): the peer
        # went away, as a killed server does; none of these says anything about certificates.
        if isinstance(seen, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLWantReadError,
                             ssl.SSLWantWriteError, ssl.SSLSyscallError)):
            return None
        if isinstance(seen, ssl.SSLError) and isinstance(error, httpx.ConnectError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _socket_cause(error: BaseException) -> str | None:
    """The operating system's word for it ("connection refused"), from deep in the exception chain.

    The HTTP stack wraps the socket error in generic ones ("All connection attempts failed").
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, ssl.SSLError) and seen.errno:
            # os.strerror, not .strerror: asyncio puts its own text there ("Connect call failed (...)");
            # and not for SSL errors, whose numbers are OpenSSL's, not the operating system's.
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    return None


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_MAX_CHARS else text[: MESSAGE_MAX_CHARS - 1] + "…"
