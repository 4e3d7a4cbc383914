"""The failover clock: how long one workload took to serve again after losing a member, as a pure step
over one reconcile's `Tally` at a time.

The caller keeps the timer, feeds it each reconcile's tally, and observes `finished` in its metrics: the
timer itself writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from samizdat.core import model
from samizdat.core.report.view import HolderLost


@dataclass(frozen=True, slots=True)
class Tally:
    """What one reconcile tells the clock: its losses, whether it converged, replicas ready of those
    wanted, the monotonic time `now`, and whether it found `room` for every replica. Given `serving`
    (ready serving replicas) of `serving_wanted`, serving capacity whole again ends the failover as
    clients see it."""

    lost: Mapping[str, HolderLost]
    converged: bool
    ready: int
    wanted: int
    now: float
    room: bool = True
    serving: int | None = None
    serving_wanted: int | None = None


@dataclass(frozen=True, slots=True)
class FailoverClock:
    """Times one failover from the loss of a member: to the workload's full serving capacity Ready again
    (what clients feel: a promoted standby, or a moved replica loaded elsewhere), and on to every replica,
    standbys included, Ready again."""

    from_cluster: str
    reason: str
    started_monotonic: float
    started: datetime
    observed_at: float  # monotonic time of the last reconcile folded in
    room: bool  # whether that reconcile found a placement for every replica under the rules
    without_room_s: float = 0.0  # until full serving capacity: time after a reconcile that found none
    serving_s: float | None = None  # seconds to full serving capacity, once reached

    @classmethod
    def start(cls, loss: HolderLost, now: float, room: bool) -> FailoverClock:
        started = datetime.now(UTC) - timedelta(seconds=now - loss.since)
        return cls(loss.member, loss.reason.value, loss.since, started, observed_at=now, room=room)

    def tick(self, now: float, room: bool) -> FailoverClock:
        """The clock after one more reconcile at `now`. The time since the previous one was without room
        when that one found no placement: every fleet change (a member back, a replica gone) wakes a
        reconcile, so room is seen when it appears. Time before the first reconcile counts as with room:
        it is samizdat's to notice the loss."""
        if self.serving_s is not None:
            return self  # `without_room_seconds` is a part of `seconds`, which is fixed by now
        waited = 0.0 if self.room else now - self.observed_at
        return replace(self, observed_at=now, room=room, without_room_s=self.without_room_s + waited)

    def failover(self, seconds: float, standby_seconds: float | None = None) -> model.Failover:
        return model.Failover(time=self.started, from_cluster=self.from_cluster, reason=self.reason,
                              seconds=seconds, without_room_seconds=round(self.without_room_s, 3),
                              standby_seconds=standby_seconds)


@dataclass(frozen=True, slots=True)
class Finished:
    """A failover that ended, as clients felt it, on the step that returned it: what its metric observes."""

    reason: str
    seconds: float


@dataclass(frozen=True, slots=True)
class FailoverTimer:
    """Times one workload's failovers, each loss once: to full serving capacity Ready again (what
    clients feel), and on to every replica, standbys included, Ready again.

    A loss is a member lost since a given moment (`since`). A clock starts at the earliest loss
    not timed yet, and every loss seen while it runs is timed by it: it stops when every replica is
    ready again. A member that stays lost after that starts no new clock (under compound faults one
    often does: killed, not yet healed when the next fault strikes); otherwise each later reconcile
    would time the same loss again, from its start, and report ever longer failovers that never ran.
    A member lost again after it came back is a new loss.
    """

    running: FailoverClock | None = None
    timed: frozenset[tuple[str, float]] = frozenset()
    last: model.Failover | None = None
    finished: Finished | None = None  # set by the step on which serving capacity came back

    def observe(self, tally: Tally) -> FailoverTimer:
        """The timer with one reconcile's tally folded in. Serving capacity whole again ends the failover
        as clients see it: `last` says so at once and `finished` asks for its metric, since with warm
        standbys that is one label write while the new standby loads for as long as a cold start;
        `standby_seconds` follows once every replica is ready again."""
        now, serving, serving_wanted = tally.now, tally.serving, tally.serving_wanted
        fresh = sorted((loss for loss in tally.lost.values() if (loss.member, loss.since) not in self.timed),
                       key=lambda loss: (loss.since, loss.member))
        # losses that ended are forgotten: their member may be lost again
        timer = replace(self, timed=frozenset((loss.member, loss.since) for loss in tally.lost.values()),
                        finished=None)
        if self.running is not None:
            clock, started_now = self.running.tick(now, tally.room), False
        elif fresh:
            clock, started_now = FailoverClock.start(fresh[0], now, tally.room), True
        else:
            return timer
        elapsed = round(now - clock.started_monotonic, 3)
        if (serving is not None and serving_wanted is not None and clock.serving_s is None
                and serving >= serving_wanted):
            clock = replace(clock, serving_s=elapsed)
            timer = replace(timer, finished=Finished(clock.reason, elapsed), last=clock.failover(elapsed))
        timer = replace(timer, running=clock)
        if (started_now or not tally.converged or tally.ready < tally.wanted
                or (serving is not None and clock.serving_s is None)):
            return timer  # a clock ends on a later reconcile than the one that started it
        if clock.serving_s is None:
            timer = replace(timer, finished=Finished(clock.reason, elapsed))
        standbys = serving_wanted is not None and tally.wanted > serving_wanted
        return replace(timer, running=None, last=clock.failover(
            elapsed if clock.serving_s is None else clock.serving_s, standby_seconds=elapsed if standbys else None))
