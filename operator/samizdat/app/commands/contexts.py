"""What `join` and `unjoin` share: the user's kubeconfig contexts as clients, rights checked up front, one-line errors.

Both commands act as the user, with the contexts of the user's own kubeconfig (`$KUBECONFIG`, or
`--kubeconfig`), through samizdat's own client. Anything wrong with the input — a context that is not
defined, a cluster that cannot be reached, a right the user lacks — is found before the first write and
reported as one line with exit status 2.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from samizdat.remote.clusters import errors, kubeconfig, reviewing
from samizdat.remote.clusters.client import Deadlines, ClusterClient

# A user at a terminal: quick to say a cluster is unreachable, patient with a slow one.
DEADLINES = Deadlines(connect=3.0, read=10.0, request=15.0)
BAD_INPUT = 2


class UsageError(Exception):
    """Bad input, said in one line; the command exits 2 having written nothing."""


@dataclass(frozen=True, slots=True)
class Context:
    """A cluster as the user reaches it: which role it plays here, its context, its client."""

    role: str  # "member" or "hub", for messages
    name: str
    client: ClusterClient


def credentials(context: str | None, path: str | None, role: str) -> kubeconfig.Credentials:
    """The credentials of `context` (None: the current one) in `path` or, without one, `$KUBECONFIG`."""
    try:
        if path is not None:
            return kubeconfig.load(Path(path), context=context)
        return kubeconfig.from_environment(context=context)
    except kubeconfig.KubeconfigError as error:
        raise UsageError(f"{role} context {context or '(current)'}: {error}") from None


def connect(role: str, context: str | None, path: str | None) -> Context:
    found = credentials(context, path, role)
    return Context(role, found.context or context or "(current)", ClusterClient(role, found, deadlines=DEADLINES))


async def check_rights(context: Context, needed: Iterable[reviewing.Access]) -> None:
    """Raise UsageError naming every right in `needed` the user lacks there (or why we could not ask)."""
    needed = list(dict.fromkeys(needed))
    try:
        answers = await asyncio.gather(*(reviewing.allowed(context.client, access) for access in needed))
    except errors.MemberError as error:
        raise UsageError(unusable(context, error)) from None
    missing = [str(access) for access, ok in zip(needed, answers, strict=True) if not ok]
    if missing:
        raise UsageError(f"missing rights in the {context.role} (context {context.name}): {'; '.join(missing)}")


def unusable(context: Context, error: errors.MemberError) -> str:
    """One line saying why a cluster cannot be used at all."""
    where = f"{context.role} context {context.name} ({context.client.credentials.server})"
    if isinstance(error, (errors.MemberUnreachable, errors.MemberTimeout, errors.MemberTLSError)):
        return f"cannot reach the {where}: {error.message}"
    if isinstance(error, errors.MemberUnauthorized):
        return f"the {where} refuses these credentials: {error.message}"
    return f"the {where} answered: {error.message}"


def fail(command: str, message: str) -> int:
    print(f"samizdat {command}: error: {message}", file=sys.stderr)
    return BAD_INPUT


def say(line: str) -> None:
    print(line, flush=True)


def dump(objects: Iterable[dict[str, Any]]) -> str:
    """Objects as a multi-document YAML stream, in the order given."""
    return yaml.safe_dump_all(list(objects), sort_keys=False, explicit_start=True)


def describe(obj: dict[str, Any]) -> str:
    """`Kind namespace/name`, as kubectl names an object."""
    metadata = obj.get("metadata", {})
    name = metadata.get("name") or metadata.get("generateName", "") + "…"
    return f"{obj.get('kind')} {metadata['namespace'] + '/' if metadata.get('namespace') else ''}{name}"
