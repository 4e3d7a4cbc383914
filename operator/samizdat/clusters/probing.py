"""Is a member there, and does it still accept us? One bounded GET, classified into the failure model.

The probe asks `/readyz` with samizdat's own identity. Default RBAC lets every authenticated user read
it (ClusterRoles `system:public-info-viewer` and `system:discovery`), and a request with a bad token is
rejected with 401 before authorization, so one request tells apart killed (refused), partitioned
(timeout), credentials revoked (unauthorized) and not ready (error). A hardened member may have removed
those bindings and granted only discovery; then the probe falls back to `/api` before calling the
member forbidden.

A probe never raises a `MemberError`: failing is its normal answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from samizdat.clusters import errors
from samizdat.clusters.client import MemberClient
from samizdat.health import Failure

PATHS = ("/readyz", "/api")

_FAILURES: tuple[tuple[type[errors.MemberError], Failure], ...] = (
    (errors.MemberUnreachable, Failure.REFUSED),
    (errors.MemberTimeout, Failure.TIMEOUT),
    (errors.MemberUnauthorized, Failure.UNAUTHORIZED),
    (errors.MemberForbidden, Failure.FORBIDDEN),
)


@dataclass(frozen=True, slots=True)
class Probe:
    """The outcome of one probe: `ok`, or which `failure` and why; `latency_s` until either was known."""

    member: str
    ok: bool
    latency_s: float
    failure: Failure | None
    message: str


async def probe(client: MemberClient, timeout: float | None = None) -> Probe:
    """Probe the member within `timeout` seconds in all (default: the client's request deadline)."""
    budget = timeout if timeout is not None else client.deadlines.request
    started = time.monotonic()
    for index, path in enumerate(PATHS):
        remaining = budget - (time.monotonic() - started)
        try:
            if remaining <= 0:
                raise errors.MemberTimeout(client.member, f"no answer within {budget:g}s")
            await client.request("GET", path, deadline=remaining)
        except errors.MemberForbidden:
            if index + 1 < len(PATHS):
                continue  # this identity may not read PATHS[index]; try the next
            return _failed(client.member, started, Failure.FORBIDDEN, f"GET {path} is forbidden to our identity")
        except errors.MemberError as error:
            failure = next((name for kind, name in _FAILURES if isinstance(error, kind)), Failure.ERROR)
            return _failed(client.member, started, failure, error.message)
        return Probe(client.member, True, time.monotonic() - started, None, f"GET {path}: ok")
    raise AssertionError("unreachable: the last path always returns")


def _failed(member: str, started: float, failure: Failure, message: str) -> Probe:
    return Probe(member, False, time.monotonic() - started, failure, message)
