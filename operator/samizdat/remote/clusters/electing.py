"""Taking part in the hub's leader election: the loop that drives an `Elector` against the real Lease.

A `Candidate` reads the Lease every retry period, lets the pure elector decide, and writes when told to,
timing every step on the monotonic clock. It is the `Authority` of the clients it is given to: each of
their writes asks it for a permit, so a standby (or a leader whose renewals stopped getting through)
sends nothing, and the leader's writes carry its epoch.

Nothing here stops the operator when leadership is lost: the same process keeps its member connections
and views warm as a standby, and may lead again later under a new epoch.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from samizdat.remote.clusters import errors, leasing
from samizdat.remote.clusters.client import ClusterClient
from samizdat.core.leadership import Election, Elector, Permit, Timing, Wait, Warrant

logger = logging.getLogger(__name__)

# Standbys spread their tries over up to 20 % more than the retry period, as client-go's jitter does,
# so that candidates started together do not hit the hub in lockstep.
JITTER = 0.2


class Candidate:
    """One operator standing for leader of the hub through the Lease `namespace/name`."""

    def __init__(
        self,
        hub: ClusterClient,
        *,
        identity: str,
        namespace: str,
        name: str,
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.hub = hub
        self.namespace = namespace
        self.name = name
        self.elector = Elector(identity, timing or Timing())
        self.clock = clock
        self.wall = wall
        # Set whenever this candidate starts or stops leading (as of its last try): reconcilers wait on it.
        self.changed = asyncio.Event()
        self._leading = False

    @property
    def identity(self) -> str:
        return self.elector.identity

    @property
    def timing(self) -> Timing:
        return self.elector.timing

    def permit(self) -> Permit | None:
        warrant = self.warrant()
        return warrant.permit(self.clock()) if warrant is not None else None

    def warrant(self) -> Warrant | None:
        return self.elector.valid_warrant(self.clock())

    def leading(self) -> bool:
        return self.elector.may_write(self.clock())

    @classmethod
    def standing_for(cls, hub: ClusterClient, election: Election) -> Candidate:
        return cls(hub, identity=election.identity, namespace=election.namespace, name=election.name,
                   timing=election.timing)

    async def run(self) -> None:
        """Stand for leader until cancelled (then give the Lease up if we hold it)."""
        try:
            while True:
                await asyncio.sleep(await self.attempt())
        finally:
            await asyncio.shield(self.release())

    async def attempt(self) -> float:
        """One try: read the Lease, then renew, acquire or wait. Returns how long to sleep until the next."""
        timing = self.timing
        # A request may take what is left of a renewal window after one retry, never the whole of it.
        deadline = timing.renew_deadline_s - timing.retry_period_s
        try:
            lease = await leasing.read_lease(self.hub, namespace=self.namespace, name=self.name, deadline=deadline)
        except errors.MemberError as error:
            self._settle(self.elector.failed(self.clock()), f"cannot read the Lease: {error}")
            return self._retry()
        now = self.clock()
        self.elector = self.elector.read(lease, now)
        intent = self.elector.plan(now, self.wall())
        if isinstance(intent, Wait):
            self._settle(self.elector, f"{intent.holder} holds the Lease")
            # Try again when the holder's lease runs out if that comes before the next retry.
            return min(self._retry(), max(0.0, intent.until - self.clock()) + 0.01)
        sent_at = self.clock()
        try:
            stored = await leasing.write_lease(
                self.hub, intent, namespace=self.namespace, name=self.name, deadline=deadline
            )
        except errors.Conflict:
            self._settle(self.elector.conflicted(), "another candidate wrote the Lease first")
            return self._retry()
        except errors.MemberError as error:
            self._settle(self.elector.failed(self.clock()), f"cannot write the Lease: {error}")
            return self._retry()
        self._settle(self.elector.written(stored, sent_at, self.clock()), "")
        return timing.retry_period_s

    async def release(self) -> None:
        """Stop writing at once, then free the Lease so a standby takes over without waiting it out."""
        self.elector, intent = self.elector.release(self.wall())
        self._settle(self.elector, "shutting down")
        if intent is None:
            return
        try:
            await leasing.write_lease(
                self.hub, intent, namespace=self.namespace, name=self.name, deadline=self.timing.retry_period_s
            )
        except errors.MemberError as error:
            logger.warning("could not release the Lease %s/%s (standbys wait it out): %s", self.namespace, self.name, error)

    def _settle(self, elector: Elector, why: str) -> None:
        self.elector = elector
        leading = elector.may_write(self.clock())
        if leading == self._leading:
            return
        self._leading = leading
        self.changed.set()
        if leading:
            assert elector.warrant is not None
            logger.info("leading the hub as %s, epoch %d (Lease %s/%s)",
                        self.identity, elector.warrant.epoch, self.namespace, self.name)
        else:
            logger.warning("no longer leading the hub: %s", why or "the renew deadline passed")

    def _retry(self) -> float:
        period = self.timing.retry_period_s
        return period if self._leading else period * (1 + random.uniform(0, JITTER))
