"""Events in the hub, written as client-go's recorder writes them: one object per thing said, counted.

The API server aggregates nothing: kopf posts every Event as a new object, so a message said ten times
is ten Events and a busy hub's Events drown. A client that wants `kubectl describe` to show
"(x10 over 5m)" names the Event after what it says and, when it says it again, patches the Event's
`count` and `lastTimestamp`. `Recorder.record` does exactly that. The name hashes the involved object's
uid with the type, reason and message, so the same thing said about the same object lands on the same
Event even after the operator restarted (the POST then conflicts, and the existing count is read).

Messages must therefore be stable: no measured durations, no timestamps. Events are auxiliary; a
failure to record one is logged and never stops the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from samizdat.core.report.events import EventType
from samizdat.remote.clusters import errors, fetching, resources, writing
from samizdat.remote.clusters.client import ClusterClient

logger = logging.getLogger(__name__)

MESSAGE_MAX_CHARS = 1024
# Counts of Events this process wrote, so a repeat is one PATCH; as client-go's correlator, bounded.
CACHE_SIZE = 4096
MERGE_PATCH = "application/merge-patch+json"
# Where Events about cluster-scoped objects go: `kubectl describe` finds them there, and the API's
# validation accepts an Event with no involved namespace only in "default".
CLUSTER_SCOPED_NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class Regarding:
    """The object an Event is about, as its `involvedObject` names it."""

    api_version: str
    kind: str
    name: str
    uid: str
    namespace: str | None = None  # None for cluster-scoped objects

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Regarding:
        """The reference to an object, from its body as read from the hub."""
        metadata = body["metadata"]
        return cls(body["apiVersion"], body["kind"], metadata["name"], metadata["uid"], metadata.get("namespace"))

    def reference(self) -> dict[str, str]:
        reference = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid}
        if self.namespace:
            reference["namespace"] = self.namespace
        return reference


def event_name(regarding: Regarding, type_: EventType, reason: str, message: str) -> str:
    """The Event's name: the object's name and a hash of who it is about and what it says."""
    digest = hashlib.sha256("\0".join((regarding.uid, type_, reason, message)).encode()).hexdigest()[:16]
    return f"{regarding.name[:200]}.{digest}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Recorder:
    """Records Events in the hub on behalf of `component` (its replica: `instance`)."""

    def __init__(self, hub: ClusterClient, component: str, instance: str) -> None:
        self.hub = hub
        self.component = component
        self.instance = instance[:128]
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._pending: set[asyncio.Task[None]] = set()

    def say(self, regarding: Regarding, type_: EventType, reason: str, message: str) -> None:
        """Record in the background: a reconciler must not wait on the hub for an Event."""
        task = asyncio.create_task(self.record(regarding, type_, reason, message), name=f"event {reason}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def aclose(self) -> None:
        """Wait for Events still being recorded (at shutdown: they say what was last decided)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=5)

    async def record(self, regarding: Regarding, type_: EventType, reason: str, message: str) -> None:
        """Say `message` about `regarding`: a new Event, or one more count on the Event that said it before."""
        message = message if len(message) <= MESSAGE_MAX_CHARS else message[: MESSAGE_MAX_CHARS - 1] + "…"
        name = event_name(regarding, type_, reason, message)
        namespace = regarding.namespace or CLUSTER_SCOPED_NAMESPACE
        try:
            count = await self._said_again(name, namespace)
            if count is None:
                count = await self._say(name, namespace, regarding, type_, reason, message)
        except errors.NotLeader:
            logger.debug("Event %s %s about %s %s not recorded: a standby says nothing", type_, reason,
                         regarding.kind, regarding.name)
            return
        except errors.MemberError as error:
            logger.warning("Event %s %s about %s %s not recorded: %s", type_, reason, regarding.kind, regarding.name,
                           error)
            return
        self._counts[name] = count
        self._counts.move_to_end(name)
        while len(self._counts) > CACHE_SIZE:
            self._counts.popitem(last=False)

    async def _said_again(self, name: str, namespace: str) -> int | None:
        """Count one more on an Event this process wrote; None when there is none (any more)."""
        count = self._counts.get(name)
        if count is None:
            return None
        try:
            return await self._bump(name, namespace, count)
        except errors.NotFound:  # Events expire (an hour by default): say it anew
            self._counts.pop(name, None)
            return None

    async def _say(
        self, name: str, namespace: str, regarding: Regarding, type_: EventType, reason: str, message: str
    ) -> int:
        now = _now()
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": regarding.reference(),
            "type": type_, "reason": reason, "message": message,
            "count": 1, "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": self.component},  # the `From` of `kubectl describe`
            "reportingComponent": self.component, "reportingInstance": self.instance,
        }
        try:
            await writing.write(self.hub, "POST", resources.EVENTS.path(namespace=namespace), body=body)
            return 1
        except errors.Conflict:
            # Said before this process started (or by a peer): continue its count.
            existing = await fetching.get(self.hub, resources.EVENTS, name, namespace=namespace)
            count = existing.get("count")
            return await self._bump(name, namespace, count if isinstance(count, int) and count > 0 else 1)

    async def _bump(self, name: str, namespace: str, count: int) -> int:
        patch = {"count": count + 1, "lastTimestamp": _now()}
        await writing.write(self.hub, "PATCH", resources.EVENTS.path(namespace=namespace, name=name), body=patch,
                            content_type=MERGE_PATCH)
        return count + 1
