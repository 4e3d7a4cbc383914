"""One candidate's view of the leader election, as a pure state machine over a monotonic clock.

The semantics are client-go's `leaderelection` (the Lease lock), with one addition, the **warrant**:

- A candidate judges a lease expired on its *own* monotonic clock: `lease duration` after it last saw
  the Lease change (a new resourceVersion; client-go compares the record, see `read` for why not). The holder's `renewTime` is never compared with anyone's clock, so neither wall
  clocks that disagree nor a wall clock that jumps changes who leads. Only clock *rates* matter.
- Acquiring and renewing are compare-and-swap writes of the whole record at the resourceVersion last
  read; a write that conflicts means someone else wrote first, and whoever conflicts does not lead.
- A leader may write to members only while it holds a warrant: until `renew deadline` after it *sent*
  its last successful renewal (the request left before the hub stored it, and every other candidate saw
  the change after that). Other candidates cannot acquire before `lease duration` after they saw that
  same change, so as long as no clock runs more than `lease duration / renew deadline` times faster than
  another (1.6 with the defaults; real clocks differ by parts per million), the old leader's warrant has
  lapsed before anyone else can hold one. That it has lapsed is checked on every member write.
- Every acquisition raises the epoch (`leaseTransitions`) by one, including re-acquiring a lease that
  still names us after our warrant lapsed: one epoch is one unbroken stretch of warranted writing.

What the warrant cannot stop is a write already in flight, or one sent by a process paused between the
check and the send (SIGSTOP, a long GC): those arrive late with an old epoch, and the members' fence,
not this module, refuses them.

Every method takes the time (`now`, monotonic seconds) and returns a new `Elector`; nothing here reads a
clock, sleeps or talks to the hub, so every transition is testable with an injected clock.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from samizdat.core.leadership.lease import LeaseRecord, StoredLease, micro_time


@dataclass(frozen=True, slots=True)
class Timing:
    """The election's three periods (seconds).

    The defaults aim at a takeover within about 10 s of the leader vanishing: a standby sees the last
    renewal within one retry period, waits the 8 s lease duration, and acquires on its next try. The
    5 s renew deadline leaves the leader four or five renewal attempts before it must stop writing, and
    3 s of margin (a clock-rate tolerance of 1.6) before anyone else may start.
    """

    lease_duration_s: int = 8  # an integer: that is what a Lease can record
    renew_deadline_s: float = 5.0
    retry_period_s: float = 1.0

    def __post_init__(self) -> None:
        if self.retry_period_s <= 0:
            raise ValueError("the retry period must be positive")
        if self.renew_deadline_s < 2 * self.retry_period_s:
            raise ValueError("the renew deadline must leave room for at least two renewal attempts "
                             f"({self.renew_deadline_s:g} s < 2 × {self.retry_period_s:g} s)")
        if self.lease_duration_s <= self.renew_deadline_s:
            raise ValueError("the lease duration must exceed the renew deadline, or a leader that stopped "
                             "renewing could still be writing when another takes over "
                             f"({self.lease_duration_s} s ≤ {self.renew_deadline_s:g} s)")

    @property
    def clock_rate_tolerance(self) -> float:
        """How many times faster one candidate's clock may run than another's without two leaders."""
        return self.lease_duration_s / self.renew_deadline_s


@dataclass(frozen=True, slots=True)
class Election:
    """Where and how one operator stands for leader: its name in the Lease, and which Lease."""

    identity: str
    namespace: str
    name: str
    timing: Timing = Timing()


@dataclass(frozen=True, slots=True)
class Warrant:
    """Permission to write to members: as leader of `epoch`, until monotonic time `valid_until`."""

    epoch: int
    valid_until: float

    def permit(self, now: float) -> Permit:
        return Permit(self.epoch, max(0.0, self.valid_until - now))


@dataclass(frozen=True, slots=True)
class Permit:
    """A warrant as of one moment, for one write: the epoch to stamp it with, and how long it holds."""

    epoch: int
    seconds_left: float


@dataclass(frozen=True, slots=True)
class Write:
    """Write `record` to the Lease: create it (`resource_version` None) or replace that version."""

    record: LeaseRecord
    resource_version: str | None
    acquiring: bool  # False: a renewal (or a release) of our own term


@dataclass(frozen=True, slots=True)
class Wait:
    """Someone else (`holder`) leads until at least monotonic time `until`, as far as we can tell."""

    holder: str
    until: float


Intent = Write | Wait


@dataclass(frozen=True, slots=True)
class Elector:
    """One candidate: what it last saw of the Lease, since when, and its warrant if it leads."""

    identity: str
    timing: Timing = Timing()
    observed: StoredLease | None = None  # None with `observed_at` set: the Lease does not exist
    observed_at: float | None = None  # when the record last changed, as we saw it; None: never read
    warrant: Warrant | None = None

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("a candidate needs an identity")

    def may_write(self, now: float) -> bool:
        """Whether this candidate may write to members now (it leads, and has renewed in time)."""
        return self.warrant is not None and now < self.warrant.valid_until

    def valid_warrant(self, now: float) -> Warrant | None:
        return self.warrant if self.may_write(now) else None

    @property
    def leader(self) -> str:
        """The holder as last seen ("" when none): for logs and status, never for deciding to write."""
        return self.observed.record.holder if self.observed is not None else ""

    def read(self, lease: StoredLease | None, now: float) -> Elector:
        """The Lease as just read from the hub (None: it does not exist)."""
        # A change is a new resourceVersion, not a different record: a holder whose wall clock stands
        # still (or jumps back) writes the same renewTime twice, and a standby comparing records would
        # then time out a leader that is renewing fine, and take over while it still holds a warrant.
        changed = self.observed_at is None or lease != self.observed
        warrant = self.valid_warrant(now)
        current = lease.record if lease is not None else None
        if warrant is not None and (current is None or current.holder != self.identity
                                    or current.transitions != warrant.epoch):
            warrant = None  # taken over (or deleted) behind our back: stop at once
        return dataclasses.replace(
            self, observed=lease, observed_at=now if changed else self.observed_at, warrant=warrant
        )

    def plan(self, now: float, wall: datetime) -> Intent:
        """What to do after a read: renew, acquire, or wait for the holder's lease to run out.

        `wall` only fills the record's informational times.
        """
        if self.observed_at is None:
            raise RuntimeError("read the Lease before planning")
        stamp = micro_time(wall)
        duration = self.timing.lease_duration_s
        if self.observed is None:
            return Write(LeaseRecord(self.identity, duration, 1, stamp, stamp), None, acquiring=True)
        record, version = self.observed.record, self.observed.resource_version
        if self.may_write(now):
            return Write(dataclasses.replace(record, duration_s=duration, renew_time=stamp), version, acquiring=False)
        if record.holder and record.holder != self.identity:
            until = self.observed_at + record.duration_s
            if now < until:
                return Wait(record.holder, until)
        # Free, expired, or ours from a term whose warrant lapsed: a new acquisition, a new epoch.
        return Write(LeaseRecord(self.identity, duration, record.transitions + 1, stamp, stamp), version, acquiring=True)

    def written(self, stored: StoredLease, sent_at: float, now: float) -> Elector:
        """The hub stored our write (sent at `sent_at`) and answered with `stored` at `now`."""
        if stored.record.holder != self.identity:
            raise ValueError(f"{self.identity!r} wrote a Lease held by {stored.record.holder!r}")
        # The warrant runs from when the request left, not from when the answer came back: every other
        # candidate saw the change after the hub stored it, and the hub stored it after we sent it.
        warrant = Warrant(stored.record.transitions, sent_at + self.timing.renew_deadline_s)
        return dataclasses.replace(self, observed=stored, observed_at=now, warrant=warrant)

    def conflicted(self) -> Elector:
        """Our write lost a compare-and-swap: someone else wrote the Lease first. We do not lead."""
        return dataclasses.replace(self, warrant=None)

    def failed(self, now: float) -> Elector:
        """A read or write did not get through (time-out, refused): nothing learned; time tells."""
        return dataclasses.replace(self, warrant=self.valid_warrant(now))

    def release(self, wall: datetime) -> tuple[Elector, Write | None]:
        """Give the Lease up (shutting down): stop writing now, then free the Lease if it names us.

        The freed record keeps the epoch and asks for a one-second duration, so standbys take over on
        their next try instead of waiting out the lease.
        """
        stopped = dataclasses.replace(self, warrant=None)
        if self.observed is None or self.observed.record.holder != self.identity:
            return stopped, None
        record = dataclasses.replace(self.observed.record, holder="", duration_s=1, renew_time=micro_time(wall))
        return stopped, Write(record, self.observed.resource_version, acquiring=False)
