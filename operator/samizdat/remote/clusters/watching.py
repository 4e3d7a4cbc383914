"""Watching objects in a member: one bounded watch request, and the endless list-then-watch on top of it.

A watch asks the server to end it after `timeoutSeconds`, and reads with a deadline a little longer
than that: a healthy server always ends or speaks by then, so silence beyond it means the member is
partitioned (`MemberTimeout`), not merely quiet. Bookmarks keep the resourceVersion fresh while nothing
changes, so a resumed watch rarely falls off the end of the server's history; when it does, the server
answers 410 and `Gone` tells the caller to list again (`list_then_watch` does exactly that).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, get_args

from samizdat.remote.clusters import errors, fetching, resources
from samizdat.remote.clusters.client import ClusterClient
from samizdat.remote.clusters.fetching import Listing

logger = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))
# A watch the server ends sooner than this, having sent nothing, is retried only after this long:
# a broken or hostile member must not make the operator spin.
MIN_WATCH_S = 1.0


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change of one object; for a BOOKMARK, `object` only carries the new resourceVersion."""

    type: EventType
    object: dict[str, Any]

    @property
    def resource_version(self) -> str | None:
        metadata = self.object.get("metadata")
        version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
        return str(version) if version else None


async def watch(
    client: ClusterClient,
    resource: resources.Resource,
    *,
    namespace: str | None = None,
    resource_version: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout_seconds: int | None = None,
) -> AsyncGenerator[WatchEvent, None]:
    """Events after `resource_version` until the server ends the watch after `timeout_seconds`.

    Without a resourceVersion the server starts with a synthetic ADDED for every existing object.
    Raises `Gone` when the version is too old, `MemberTimeout` when the member stays silent for
    `timeout_seconds + deadlines.watch_grace`, and other `MemberError`s as requests do.
    """
    timeout_seconds = timeout_seconds or client.deadlines.watch
    params = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
    if resource_version:
        params["resourceVersion"] = resource_version
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    silence = timeout_seconds + client.deadlines.watch_grace
    lines = client.stream(
        resource.path(namespace=namespace), params=params,
        idle=silence, deadline=silence + client.deadlines.connect,
    )
    async with contextlib.aclosing(lines):
        async for line in lines:
            event = _parse(client.member, line, resource)
            if event is not None:
                yield event


async def list_then_watch(
    client: ClusterClient,
    resource: resources.Resource,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout_seconds: int | None = None,
) -> AsyncGenerator[Listing | WatchEvent, None]:
    """A `Listing`, then every event after it, forever; a fresh `Listing` whenever the watch expires.

    A consumer replaces its whole view of the member on each `Listing` and updates it on each event.
    Bookmarks are passed on too: they prove the member is alive even when nothing changes. Ends only
    by raising a `MemberError` (unreachable, timed out, unauthorized, …) or by the consumer stopping.
    """
    loop = asyncio.get_running_loop()
    while True:
        listing = await fetching.list_objects(
            client, resource, namespace=namespace, label_selector=label_selector, field_selector=field_selector
        )
        yield listing
        version = listing.resource_version
        try:
            while True:
                started, heard = loop.time(), False
                events = watch(
                    client, resource, namespace=namespace, resource_version=version,
                    label_selector=label_selector, field_selector=field_selector, timeout_seconds=timeout_seconds,
                )
                async with contextlib.aclosing(events):
                    async for event in events:
                        heard = True
                        version = event.resource_version or version
                        yield event
                if not heard and loop.time() - started < MIN_WATCH_S:
                    await asyncio.sleep(MIN_WATCH_S)
        except errors.Gone:
            logger.debug("member %r: watch of %s expired at %s; listing again", client.member, resource.plural, version)


def _parse(member: str, line: bytes, resource: resources.Resource) -> WatchEvent | None:
    try:
        raw = json.loads(line)
    except ValueError:
        raise errors.MemberMalformed(member, f"watch of {resource.plural} carries a line that is not JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("object"), dict):
        raise errors.MemberMalformed(member, f"watch of {resource.plural} carries an event without an object")
    kind, obj = raw.get("type"), raw["object"]
    if kind == "ERROR":
        # The expired-resourceVersion case arrives here, as a Status with code 410, after a 200 OK.
        code = obj.get("code")
        raise errors.for_status(member, code if isinstance(code, int) else 500, obj)
    if kind not in EVENT_TYPES:
        logger.warning("member %r: ignoring a watch event of unknown type %r", member, kind)
        return None
    if kind != "BOOKMARK":  # a bookmark carries only a resourceVersion
        fetching.check_object(member, obj, resource)
    return WatchEvent(kind, obj)
