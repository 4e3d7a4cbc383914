"""Fencing members that come back: before a member returning from Down or Quarantined counts again,
the copies it still runs that the latest decisions no longer want (or whose workload is gone) are
deleted, so no rule is exceeded after a heal. Only then is the member fenced, and only a fenced member
is written to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from samizdat.core import health
from samizdat.remote.clusters import errors
from samizdat.remote.fleet.member import Member
from samizdat.remote.fleet.views import Copy

logger = logging.getLogger(__name__)


class Fences:
    def __init__(self, wanted: Callable[[str, Copy], bool], fenced: Callable[[str], None]) -> None:
        self._wanted = wanted  # whether this copy may stay in this member
        self._on_fenced = fenced
        self._fenced: set[str] = set()
        self._fencing: dict[str, asyncio.Task[None]] = {}

    def __contains__(self, name: object) -> bool:
        """Whether the member has been fenced since it was last lost."""
        return name in self._fenced

    def lost(self, name: str) -> None:
        """The member was lost: it must be fenced again before it counts."""
        self._fenced.discard(name)

    def cancel(self, name: str) -> None:
        self._fenced.discard(name)
        fence = self._fencing.pop(name, None)
        if fence is not None:
            fence.cancel()

    def start(self, member: Member) -> None:
        running = self._fencing.get(member.name)
        if running is None or running.done():
            self._fencing[member.name] = asyncio.create_task(self._fence(member), name=f"{member.name}/fence")

    async def _fence(self, member: Member) -> None:
        while health.schedulable(member.health.phase) and not member.views_complete:
            await asyncio.sleep(0.1)  # fence against complete views only
        stale = [copy for copy in member.copies.values() if not self._wanted(member.name, copy)]
        for copy in stale:
            logger.info("member %s: fencing stale copy %s of workload %s", member.name, copy.name, copy.workload_uid)
            try:
                await member.delete_copy(copy)
            except errors.MemberError as error:
                logger.warning("member %s: fencing %s failed: %s", member.name, copy.name, error)
                return  # the member is not counted until a later fence succeeds
        self._fenced.add(member.name)
        self._on_fenced(member.name)
