"""Is a member there, and does it still accept us? One bounded GET, classified into the failure model.

The probe asks `/readyz` with samizdat's own identity. Default RBAC lets every authenticated user read
it (ClusterRoles `system:public-info-viewer` and `system:discovery`), and a request with a bad token is
rejected with 401 before authorization, so one request tells apart killed (refused), partitioned
(timeout), credentials revoked (unauthorized) and not ready (error). A hardened member may have removed
those bindings and granted only discovery; then the probe falls back to `/api` before calling the
member forbidden. A 200 is believed only with the body an API server sends (`ok` from /readyz, an
APIVersions object from /api): an endpoint that answers anything with 200 is malformed, not ready.

A probe never raises a `MemberError`: failing is its normal answer. Its message names no measured
duration, only the budget, so a member that keeps failing the same way reads the same every time.
What a failed probe means for the member is the link monitor's call (`samizdat.core.health.link`),
which also forgives the operator's own stalls: under compound faults the operator is busiest exactly
when many members change at once, and its own load must not make healthy members look partitioned.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from samizdat.remote.clusters import errors
from samizdat.remote.clusters.client import ClusterClient, Reply
from samizdat.core.health import Failure

PATHS = ("/readyz", "/api")
# Either answer is a few hundred bytes; a member sending more is not an API server, and up to four
# probes of each member are in flight, so each may hold this much at most.
MAX_PROBE_REPLY_BYTES = 64 * 1024

_FAILURES: tuple[tuple[type[errors.MemberError], Failure], ...] = (
    (errors.MemberUnreachable, Failure.REFUSED),
    (errors.MemberTimeout, Failure.TIMEOUT),
    (errors.MemberUnauthorized, Failure.UNAUTHORIZED),
    (errors.MemberForbidden, Failure.FORBIDDEN),
    (errors.MemberMalformed, Failure.MALFORMED),
)


@dataclass(frozen=True, slots=True)
class Probe:
    """The outcome of one probe: `ok`, or which `failure` and why; `latency_s` until either was known."""

    member: str
    ok: bool
    latency_s: float
    failure: Failure | None
    message: str


async def probe(client: ClusterClient, timeout: float | None = None) -> Probe:
    """Probe the member within `timeout` seconds in all (default: the client's request deadline)."""
    budget = timeout if timeout is not None else client.deadlines.request
    started = time.monotonic()
    for index, path in enumerate(PATHS):
        remaining = budget - (time.monotonic() - started)
        try:
            if remaining <= 0:
                raise errors.MemberTimeout(client.member, "no time left")
            _check_answer(path, await client.request("GET", path, deadline=remaining, max_bytes=MAX_PROBE_REPLY_BYTES))
        except errors.MemberForbidden:
            if index + 1 < len(PATHS):
                continue  # this identity may not read PATHS[index]; try the next
            return _failed(client.member, started, Failure.FORBIDDEN, f"GET {path} is forbidden to our identity")
        except errors.MemberTimeout:
            return _failed(client.member, started, Failure.TIMEOUT, f"GET {path}: no answer within {budget:g}s")
        except errors.MemberError as error:
            return _failed(client.member, started, failure_of(error), f"GET {path}: {_in_short(error)}")
        return Probe(client.member, True, time.monotonic() - started, None, f"GET {path}: ok")
    raise AssertionError("unreachable: the last path always returns")


def unanswered(member: str, deadline: float) -> Probe:
    """A probe still unanswered at its deadline: failed as far as the link is concerned, though its
    answer may yet come (and then counts as life)."""
    return Probe(member, False, deadline, Failure.TIMEOUT, f"GET {PATHS[0]}: no answer within {deadline:.1f}s")


def failure_of(error: errors.MemberError) -> Failure:
    """The failure-model word for `error`, as probes and views report it."""
    return next((name for kind, name in _FAILURES if isinstance(error, kind)), Failure.ERROR)


def _in_short(error: errors.MemberError) -> str:
    """What a failed probe says, briefly: an API server not ready lists its checks (`[+]ping ok [-]etcd
    failed …`), of which only the failing ones tell anything."""
    if error.status is None or error.status < 500:
        return error.message
    failing = re.findall(r"\[-\]([^\s\[]+)", error.message)
    return f"not ready ({', '.join(failing)} failing)" if failing else f"not ready (HTTP {error.status})"


def _check_answer(path: str, reply: Reply) -> None:
    """Raise `MemberMalformed` unless `reply` is what an API server answers on `path`."""
    if path == "/readyz":
        if reply.body.strip() != b"ok":
            raise errors.MemberMalformed(reply.member, "answered 200 without the API server's 'ok'")
    elif reply.json().get("kind") != "APIVersions":
        raise errors.MemberMalformed(reply.member, "answered 200 without an APIVersions object")


def _failed(member: str, started: float, failure: Failure, message: str) -> Probe:
    return Probe(member, False, time.monotonic() - started, failure, message)
