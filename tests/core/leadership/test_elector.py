"""The leader elector's state machine with an injected clock, and a simulation of candidates racing.

A small in-memory Lease store with compare-and-swap on resourceVersion stands in for the hub's API: it
is samizdat's own model of the one property the election relies on, not a fake of a Kubernetes client.
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samizdat.core.leadership import (
    Elector,
    LeaseRecord,
    StoredLease,
    Timing,
    Wait,
    Write,
)

TIMING = Timing()  # 8 s / 5 s / 1 s
WALL = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@dataclass
class Store:
    """The hub's view of one Lease: a write succeeds only at the resourceVersion it names."""

    lease: StoredLease | None = None
    version: int = 0

    def cas(self, write: Write) -> StoredLease | None:
        current = self.lease.resource_version if self.lease is not None else None
        if write.resource_version != current:
            return None
        self.version += 1
        self.lease = StoredLease(write.record, str(self.version))
        return self.lease


def step(elector: Elector, store: Store, now: float, *, wall: datetime = WALL) -> Elector:
    """One try as the I/O loop makes it: read, plan, and write if the plan says so (no latency)."""
    elector = elector.read(store.lease, now)
    intent = elector.plan(now, wall)
    if isinstance(intent, Wait):
        return elector
    stored = store.cas(intent)
    return elector.conflicted() if stored is None else elector.written(stored, now, now)


# ----- one candidate, then two, on a clock we move by hand


def test_first_candidate_creates_the_lease_as_epoch_1() -> None:
    store = Store()
    alice = step(Elector("alice"), store, 100.0)
    assert alice.may_write(100.0)
    assert alice.warrant is not None and alice.warrant.epoch == 1
    assert store.lease is not None and store.lease.record.holder == "alice"
    assert store.lease.record.duration_s == 8


def test_a_leader_renews_and_keeps_its_epoch() -> None:
    store = Store()
    alice = step(Elector("alice"), store, 0.0)
    for now in range(1, 30):
        alice = step(alice, store, float(now))
        assert alice.may_write(now + 0.5)
    assert alice.warrant is not None and alice.warrant.epoch == 1
    assert store.lease is not None and store.lease.record.transitions == 1


def test_a_standby_waits_while_the_holder_renews() -> None:
    store = Store()
    alice, bob = step(Elector("alice"), store, 0.0), Elector("bob")
    for now in range(1, 60):
        alice = step(alice, store, float(now))
        bob = step(bob, store, float(now) + 0.5)
        assert not bob.may_write(now + 0.5)
    assert isinstance(bob.plan(60.0, WALL), Wait)


def test_a_standby_takes_over_lease_duration_after_it_last_saw_a_change() -> None:
    store = Store()
    alice, bob = step(Elector("alice"), store, 0.0), Elector("bob")
    alice = step(alice, store, 1.0)  # alice's last renewal; then she dies
    bob = step(bob, store, 1.5)  # bob first sees the record at 1.5: expiry is judged from then
    for now in (2.5, 5.0, 9.4):
        bob = step(bob, store, now)
        assert not bob.may_write(now)
    bob = step(bob, store, 9.5)
    assert bob.may_write(9.5)
    assert bob.warrant is not None and bob.warrant.epoch == 2
    assert not alice.may_write(9.5)


def test_a_leader_that_cannot_renew_stops_writing_at_the_renew_deadline() -> None:
    store = Store()
    alice = step(Elector("alice"), store, 0.0)
    alice = step(alice, store, 1.0)  # sent (and stored) at 1.0: warrant until 6.0
    for now in (2.0, 3.0, 4.0, 5.0):
        alice = alice.failed(now)  # the hub does not answer
        assert alice.may_write(now)
    assert alice.may_write(5.99)
    assert not alice.may_write(6.0)
    assert alice.failed(6.0).warrant is None


def test_the_warrant_runs_from_when_the_renewal_was_sent_not_answered() -> None:
    store = Store()
    alice = Elector("alice").read(None, 0.0)
    intent = alice.plan(0.0, WALL)
    assert isinstance(intent, Write)
    stored = store.cas(intent)
    assert stored is not None
    alice = alice.written(stored, sent_at=0.0, now=4.0)  # a slow hub: 4 s for the answer
    assert alice.warrant is not None and alice.warrant.valid_until == 5.0
    assert not alice.may_write(5.0)


def test_a_lease_stolen_between_read_and_write_is_not_ours() -> None:
    store = Store()
    alice, bob = step(Elector("alice"), store, 0.0), Elector("bob")
    bob, carol = bob.read(store.lease, 0.5), Elector("carol").read(store.lease, 0.5)
    # Alice stops renewing; bob reads at 9.0 and decides to take the lease ...
    bob = bob.read(store.lease, 9.0)
    intent = bob.plan(9.0, WALL)
    assert isinstance(intent, Write) and intent.acquiring
    # ... but carol writes the Lease before bob's write arrives.
    carol = step(carol, store, 9.0)
    assert carol.may_write(9.0)
    assert store.cas(intent) is None
    bob = bob.conflicted()
    assert not bob.may_write(9.0)
    bob = step(bob, store, 10.0)  # and on reading again, carol's renewal resets bob's wait
    assert not bob.may_write(10.0)
    assert isinstance(bob.plan(10.0, WALL), Wait)


def test_a_leader_whose_renewal_conflicts_stops_at_once() -> None:
    store = Store()
    alice = step(Elector("alice"), store, 0.0)
    alice = alice.read(store.lease, 1.0)
    intent = alice.plan(1.0, WALL)
    assert isinstance(intent, Write) and not intent.acquiring
    assert store.lease is not None
    store.lease = StoredLease(dataclasses.replace(store.lease.record, holder="mallory", transitions=2), "99")
    assert store.cas(intent) is None
    alice = alice.conflicted()
    assert not alice.may_write(1.0)


def test_a_leader_that_reads_another_holder_steps_down_before_its_deadline() -> None:
    store = Store()
    alice = step(Elector("alice"), store, 0.0)
    assert store.lease is not None
    store.lease = StoredLease(LeaseRecord("bob", 8, 2), "7")  # e.g. alice was paused, bob took over
    alice = alice.read(store.lease, 1.0)
    assert not alice.may_write(1.0)


def test_the_epoch_only_grows_over_many_takeovers() -> None:
    store = Store()
    names = ("alice", "bob", "carol")
    electors = {name: Elector(name) for name in names}
    epochs: list[int] = []
    now = 0.0
    for turn in range(12):
        # Only one candidate runs at a time; the others are "dead" until their turn comes round.
        name = names[turn % 3]
        for _ in range(12):
            electors[name] = step(electors[name], store, now)
            now += 1.0
        warrant = electors[name].warrant
        assert warrant is not None
        epochs.append(warrant.epoch)
    assert epochs == sorted(set(epochs))
    assert epochs[-1] == 12


def test_reacquiring_our_own_lapsed_lease_is_a_new_epoch() -> None:
    store = Store()
    alice = step(Elector("alice"), store, 0.0)
    alice = alice.failed(10.0)  # the hub was unreachable for 10 s: the warrant lapsed
    assert not alice.may_write(10.0)
    alice = step(alice, store, 10.0)  # the Lease still names alice: she may take it at once
    assert alice.warrant is not None and alice.warrant.epoch == 2


@pytest.mark.parametrize(
    "wall_jump",
    [
        pytest.param(timedelta(0), id="steady"),
        pytest.param(timedelta(hours=5), id="forward-5h"),
        pytest.param(timedelta(days=-400), id="back-400d"),
    ],
)
def test_wall_clocks_jumping_change_nothing(wall_jump: timedelta) -> None:
    # Alice's wall clock jumps (so the renewTime she writes does too); bob's decisions must not move.
    store = Store()
    alice, bob = Elector("alice"), Elector("bob")
    takeovers: list[float] = []
    for tenth in range(0, 300):
        now = tenth / 10
        if now < 5 and tenth % 10 == 0:
            alice = step(alice, store, now, wall=WALL + (wall_jump if now >= 2 else timedelta(0)))
        if tenth % 10 == 5:
            bob = step(bob, store, now, wall=WALL - wall_jump)
            if bob.may_write(now) and not takeovers:
                takeovers.append(now)
    # alice's last renewal at 4.0; bob saw it at 4.5 and takes over 8 s later.
    assert takeovers == [12.5]


def test_a_monotonic_clock_only_moves_forward_so_a_pause_counts_in_full() -> None:
    # A standby paused for a minute must not think the lease fresh: it still judges from its last look.
    store = Store()
    alice = step(Elector("alice"), store, 0.0)
    bob = step(Elector("bob"), store, 0.5)
    alice = step(alice, store, 60.0)  # alice renews just before bob wakes
    bob = step(bob, store, 60.1)  # bob sees a change: he must wait a full lease from now
    assert not bob.may_write(60.1)
    assert isinstance(bob.plan(68.0, WALL), Wait)


def test_release_stops_writing_and_frees_the_lease_for_the_next_try() -> None:
    store = Store()
    alice = step(Elector("alice"), store, 0.0)
    bob = step(Elector("bob"), store, 0.5)
    alice, intent = alice.release(WALL)
    assert not alice.may_write(0.6)
    assert intent is not None and store.cas(intent) is not None
    bob = step(bob, store, 1.0)
    assert bob.may_write(1.0)
    assert bob.warrant is not None and bob.warrant.epoch == 2


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        pytest.param((5, 5.0, 1.0), "must exceed the renew deadline", id="duration-equals-deadline"),
        pytest.param((8, 1.5, 1.0), "at least two renewal attempts", id="deadline-too-short"),
        pytest.param((8, 5.0, 0.0), "must be positive", id="no-retry-period"),
    ],
)
def test_timings_that_cannot_be_safe_are_refused(periods: tuple[int, float, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Timing(*periods)


def test_default_timings_tolerate_clocks_running_1_6_times_apart() -> None:
    assert TIMING.clock_rate_tolerance == pytest.approx(1.6)


# ----- many candidates, real latencies, pauses and drifting clocks


@dataclass(frozen=True)
class Try:
    """One try of one candidate: how long it sleeps first, and what the network does to its requests."""

    pause: float  # extra sleep before the try (a SIGSTOP, a slow event loop), real seconds
    read_latency: float
    write_latency: float  # from taking the send time to the hub storing the write
    reply_latency: float
    lost: bool  # the write's answer never arrives (the write may still have been stored)


@dataclass
class Candidate:
    elector: Elector
    rate: float  # local seconds per real second
    offset: float
    tries: list[Try]
    acquisitions: list[int] = field(default_factory=list)

    def local(self, real: float) -> float:
        return self.offset + self.rate * real


tries = st.builds(
    Try,
    pause=st.one_of(st.just(0.0), st.floats(0.0, 3.0), st.floats(3.0, 20.0)),
    read_latency=st.floats(0.0, 2.0),
    write_latency=st.one_of(st.floats(0.0, 1.0), st.floats(1.0, 15.0)),
    reply_latency=st.one_of(st.floats(0.0, 1.0), st.floats(1.0, 15.0)),
    lost=st.booleans(),
)
# Clocks within a factor 1.5 of each other (the defaults tolerate 1.6), offsets far apart.
clocks = st.tuples(st.floats(0.82, 1.22), st.floats(-1e6, 1e6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    candidates=st.lists(st.tuples(clocks, st.lists(tries, min_size=1, max_size=40)), min_size=2, max_size=3)
)
def test_no_two_candidates_ever_hold_a_warrant_at_once(
    candidates: list[tuple[tuple[float, float], list[Try]]],
) -> None:
    store = Store()
    racers = [
        Candidate(Elector(f"site-{i}"), rate, offset, list(script))
        for i, ((rate, offset), script) in enumerate(candidates)
    ]
    queue: list[tuple[float, int, int, str, object]] = []
    order = 0

    def schedule(at: float, who: int, kind: str, payload: object = None) -> None:
        nonlocal order
        order += 1
        heapq.heappush(queue, (at, order, who, kind, payload))

    def next_try(at: float, who: int) -> None:
        racer = racers[who]
        if racer.tries:
            sleep = TIMING.retry_period_s / racer.rate  # the retry period, as its own clock measures it
            schedule(at + sleep + racer.tries[0].pause, who, "read")

    for who in range(len(racers)):
        schedule(0.0, who, "read")
    committed_epochs: list[int] = []
    while queue:
        real, _, who, kind, payload = heapq.heappop(queue)
        racer = racers[who]
        now = racer.local(real)
        if kind == "read":
            if not racer.tries:
                continue
            schedule(real + racer.tries[0].read_latency, who, "plan", store.lease)
        elif kind == "plan":
            assert payload is None or isinstance(payload, StoredLease)
            racer.elector = racer.elector.read(payload, now)
            intent = racer.elector.plan(now, WALL)
            if isinstance(intent, Wait):
                racer.tries.pop(0)
                next_try(real, who)
            else:
                schedule(real + racer.tries[0].write_latency, who, "commit", (intent, now))
        elif kind == "commit":
            assert isinstance(payload, tuple)
            intent, sent_at = payload
            stored = store.cas(intent)
            if stored is not None and intent.acquiring:
                committed_epochs.append(stored.record.transitions)
            schedule(real + racer.tries[0].reply_latency, who, "reply", (stored, sent_at))
        else:
            assert isinstance(payload, tuple)
            stored, sent_at = payload
            lost = racer.tries.pop(0).lost
            if lost:
                racer.elector = racer.elector.failed(now)
            elif stored is None:
                racer.elector = racer.elector.conflicted()
            else:
                racer.elector = racer.elector.written(stored, sent_at, now)
            next_try(real, who)
        # Between events each warrant can only lapse, so checking at every event checks all times.
        holders = [r.elector.identity for r in racers if r.elector.may_write(r.local(real))]
        assert len(holders) <= 1, f"two leaders at {real:.3f}: {holders}"
        for r in racers:
            warrant = r.elector.valid_warrant(r.local(real))
            if warrant is not None:
                assert warrant.epoch == max(committed_epochs), "a warrant of an old epoch is still valid"
    assert committed_epochs == sorted(set(committed_epochs))
