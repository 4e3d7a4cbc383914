"""Every way a member can fail maps to exactly one of our errors, and no HTTP-library exception escapes."""

from __future__ import annotations

import asyncio
import errno
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from samizdat.remote.clusters import errors, fetching, probing, resources, watching
from samizdat.remote.clusters.client import ClusterClient, Reply
from samizdat.remote.clusters.kubeconfig import Credentials


def status(code: int, reason: str, message: str) -> bytes:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                       "reason": reason, "message": message}).encode()


STATUSES: list[Any] = [
    pytest.param(401, status(401, "Unauthorized", "Unauthorized"), errors.MemberUnauthorized, "Unauthorized",
                 id="401-unauthorized"),
    pytest.param(403, status(403, "Forbidden", 'deployments.apps is forbidden: User "x" cannot create'),
                 errors.MemberForbidden, 'deployments.apps is forbidden: User "x" cannot create', id="403-forbidden"),
    pytest.param(404, status(404, "NotFound", 'deployments.apps "a" not found'), errors.NotFound,
                 'deployments.apps "a" not found', id="404-not-found"),
    pytest.param(409, status(409, "Conflict", "Apply failed with 1 conflict"), errors.Conflict,
                 "Apply failed with 1 conflict", id="409-conflict"),
    pytest.param(410, status(410, "Expired", "too old resource version: 1 (737)"), errors.Gone,
                 "too old resource version: 1 (737)", id="410-gone"),
    pytest.param(422, status(422, "Invalid", "spec.replicas: Invalid value: -1"), errors.MemberAPIError,
                 "spec.replicas: Invalid value: -1", id="422-invalid"),
    pytest.param(429, status(429, "TooManyRequests", "too many requests"), errors.MemberAPIError,
                 "too many requests", id="429-throttled"),
    pytest.param(500, b"[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n", errors.MemberAPIError,
                 "[+]ping ok [-]etcd failed: reason withheld readyz check failed", id="500-text-body"),
    pytest.param(503, b"", errors.MemberAPIError, "HTTP 503", id="503-empty-body"),
    pytest.param(502, b'["not", "a", "status"]', errors.MemberAPIError, "HTTP 502", id="502-odd-json"),
    pytest.param(301, b"", errors.MemberAPIError, "HTTP 301", id="301-redirects-are-not-followed"),
]


@pytest.mark.parametrize(("code", "body", "expected", "message"), STATUSES)
def test_status_codes(code: int, body: bytes, expected: type[errors.MemberError], message: str) -> None:
    error = errors.for_response("de-berlin", code, body)
    assert type(error) is expected
    assert (error.member, error.status, error.message) == ("de-berlin", code, message)
    assert str(error) == f"member 'de-berlin': {message}"


def test_status_reason_is_kept_and_long_messages_are_cut() -> None:
    error = errors.for_response("m", 410, status(410, "Expired", "x" * 1000))
    assert error.reason == "Expired"
    assert len(error.message) == errors.MESSAGE_MAX_CHARS and error.message.endswith("…")


def _chained(outer: BaseException, *causes: BaseException) -> BaseException:
    """`outer` raised from `causes[0]` raised from `causes[1]`…, as the HTTP stack chains them."""
    chain = [outer, *causes]
    for error, cause in zip(chain, chain[1:]):
        error.__cause__ = cause
    return outer


def _verification_failed() -> ssl.SSLCertVerificationError:
    return ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")


TRANSPORT: list[Any] = [
    pytest.param(_chained(httpx.ConnectError("All connection attempts failed"),
                          OSError("All connection attempts failed"),
                          ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)")),
                 errors.MemberUnreachable, "cannot connect: connection refused", id="refused"),
    pytest.param(_chained(httpx.ReadError(""), ConnectionResetError(errno.ECONNRESET, "reset")),
                 errors.MemberUnreachable, "connection lost: connection reset by peer", id="reset"),
    pytest.param(httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
                 errors.MemberUnreachable,
                 "connection lost: peer closed connection without sending complete message body", id="closed-mid-body"),
    pytest.param(_chained(httpx.ReadError("EOF"), ssl.SSLEOFError(8, "EOF occurred in violation of protocol")),
                 errors.MemberUnreachable, "connection lost: EOF", id="tls-eof-is-a-kill-not-a-tls-error"),
    pytest.param(httpx.ConnectTimeout(""), errors.MemberTimeout, "connecting timed out", id="connect-timeout"),
    pytest.param(httpx.ReadTimeout(""), errors.MemberTimeout, "no response within the read deadline",
                 id="read-timeout"),
    pytest.param(httpx.WriteTimeout(""), errors.MemberTimeout, "sending the request timed out", id="write-timeout"),
    pytest.param(httpx.PoolTimeout(""), errors.MemberTimeout, "no free connection within the deadline",
                 id="pool-timeout"),
    pytest.param(_chained(httpx.ConnectError("verify failed"), _verification_failed()),
                 errors.MemberTLSError, "TLS failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
                 id="certificate-not-verified"),
    pytest.param(httpx.LocalProtocolError("bad header"), errors.MemberError, "LocalProtocolError: bad header",
                 id="protocol-violation"),
    pytest.param(httpx.InvalidURL("bad"), errors.MemberError, "InvalidURL: bad", id="invalid-url"),
    pytest.param(httpx.StreamClosed(), errors.MemberError, "StreamClosed", id="stream-misuse"),
]


@pytest.mark.parametrize(("exception", "expected", "message"), TRANSPORT)
def test_transport_failures(exception: BaseException, expected: type[errors.MemberError], message: str) -> None:
    error = errors.for_exception("fr-paris", exception)
    assert type(error) is expected
    assert error is not None and error.message.startswith(message) and error.member == "fr-paris"


def test_other_exceptions_are_not_ours_to_translate() -> None:
    assert errors.for_exception("m", KeyError("x")) is None
    with pytest.raises(KeyError), errors.translated("m"):
        raise KeyError("x")


async def test_the_deadline_bounds_the_whole_block() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(errors.MemberTimeout, match="no complete response within 0.05s") as caught:
        async with errors.deadline("m", 0.05):
            await asyncio.sleep(10)
    assert loop.time() - started < 1
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_a_deadline_is_quoted_rounded_so_repeats_read_the_same() -> None:
    # What is left of a budget (0.049998s…) must not make each repeat of an Event a new message.
    with pytest.raises(errors.MemberTimeout, match=r"no complete response within 0.05s$"):
        async with errors.deadline("m", 0.0499987):
            await asyncio.sleep(10)


async def test_the_deadline_leaves_an_outer_cancellation_alone() -> None:
    async def bounded() -> None:
        async with errors.deadline("m", 10):
            await asyncio.sleep(10)

    task = asyncio.create_task(bounded())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ----- through the client: the only place an httpx.MockTransport is used, and only to raise.


def _client(failure: Exception) -> ClusterClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    return ClusterClient("jp-tokyo", Credentials(server="https://member.invalid"),
                                 transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(("failure", "expected"), [
    pytest.param(httpx.ConnectError("refused"), errors.MemberUnreachable, id="refused"),
    pytest.param(httpx.ConnectTimeout("timed out"), errors.MemberTimeout, id="timeout"),
    pytest.param(httpx.RemoteProtocolError("closed"), errors.MemberUnreachable, id="closed"),
])
async def test_requests_and_watches_raise_only_our_errors(failure: Exception, expected: type[Exception]) -> None:
    async with _client(failure) as client:
        with pytest.raises(expected):
            await fetching.get(client, resources.NODES, "n")
        with pytest.raises(expected):
            async for _ in watching.watch(client, resources.NODES):
                pass
        assert (await probing.probe(client)).ok is False


@pytest.mark.parametrize(("failure", "expected"), [
    pytest.param(httpx.ReadTimeout("silence"), errors.MemberTimeout, id="silent-stream"),
    pytest.param(httpx.RemoteProtocolError("incomplete chunked read"), errors.MemberUnreachable, id="broken-stream"),
])
async def test_a_stream_breaking_midway_raises_our_error(failure: Exception, expected: type[Exception]) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}\n'
        raise failure

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body())

    transport = httpx.MockTransport(handler)
    async with ClusterClient("m", Credentials(server="https://m.invalid"), transport=transport) as client:
        events = watching.watch(client, resources.NODES)
        assert (await anext(events)).resource_version == "7"
        with pytest.raises(expected):
            await anext(events)


def test_handshake_cut_off_by_a_killed_server_is_unreachable_not_tls() -> None:
    cut = httpx.ConnectError("handshake")
    cut.__cause__ = ssl.SSLWantReadError("The operation did not complete (read)")
    assert isinstance(errors.for_exception("m", cut), errors.MemberUnreachable)


# ----- answers that say 200 but are not what an API server sends


MALFORMED_PROBE_ANSWERS: list[Any] = [
    pytest.param("/readyz", b'{"kind": "Status", ', id="readyz-broken-json"),
    pytest.param("/readyz", b"", id="readyz-empty"),
    pytest.param("/readyz", b"okay", id="readyz-other-text"),
    pytest.param("/api", b"{not json", id="api-not-json"),
    pytest.param("/api", b'{"kind": "Status"}', id="api-other-object"),
]


@pytest.mark.parametrize(("path", "body"), MALFORMED_PROBE_ANSWERS)
def test_a_probe_believes_200_only_with_an_api_servers_answer(path: str, body: bytes) -> None:
    with pytest.raises(errors.MemberMalformed):
        probing._check_answer(path, Reply("m", 200, body))


def test_an_api_servers_answers_pass_the_probe() -> None:
    probing._check_answer("/readyz", Reply("m", 200, b"ok"))
    probing._check_answer("/api", Reply("m", 200, b'{"kind": "APIVersions", "versions": ["v1"]}'))


MALFORMED_ITEMS: list[Any] = [
    pytest.param({"items": "nodes"}, id="items-not-a-list"),
    pytest.param([{}], id="item-without-metadata"),
    pytest.param(["node-a"], id="item-not-an-object"),
    pytest.param([{"metadata": {"name": "a"}}], id="item-without-uid"),
    pytest.param([{"metadata": {"name": "", "uid": "u"}}], id="item-with-empty-name"),
]


@pytest.mark.parametrize("items", MALFORMED_ITEMS)
def test_list_items_without_the_metadata_of_api_objects_are_malformed(items: Any) -> None:
    with pytest.raises(errors.MemberMalformed, match="nodes"):
        list(fetching._with_kind("m", items, resources.NODES))


def test_list_items_get_their_kind_and_a_null_list_is_empty() -> None:
    node = {"metadata": {"name": "a", "uid": "u"}}
    assert list(fetching._with_kind("m", [node], resources.NODES)) == [{**node, "apiVersion": "v1", "kind": "Node"}]
    assert list(fetching._with_kind("m", None, resources.NODES)) == []


@pytest.mark.parametrize(("body", "said"), [
    pytest.param(b"[+]ping ok\n[-]etcd failed: reason withheld\n[-]informer-sync failed\nreadyz check failed\n",
                 "not ready (etcd, informer-sync failing)", id="failing-checks"),
    pytest.param(b"[+]ping ok\n[+]log ok\n" * 40, "not ready (HTTP 500)", id="failing-check-cut-off"),
])
def test_a_probe_of_an_api_server_not_ready_names_only_its_failing_checks(body: bytes, said: str) -> None:
    assert probing._in_short(errors.for_response("m", 500, body)) == said
