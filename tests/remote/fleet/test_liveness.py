"""One member's liveness on a fake clock: its link monitor decides Suspect and Down from silence and
refusals, what the member answers goes through the phase machine, and the operator's stalls are forgiven."""

from __future__ import annotations

import pytest

from samizdat.core import health
from samizdat.core.health import Failure
from samizdat.core.model import Phase
from samizdat.remote.clusters.probing import Probe
from samizdat.remote.fleet.changes import MemberChange
from samizdat.remote.fleet.liveness import Liveness

POLICY = health.HealthPolicy(down_after_seconds=2.0)


class Watched:
    """A member's liveness, the clock it reads and the phases it told."""

    def __init__(self) -> None:
        self.now = 100.0
        self.told: list[Phase] = []
        self.liveness = Liveness("de", POLICY, 1.0, 1.0, 60.0, lambda: self.now, self._told)

    def _told(self, change: MemberChange, new: health.MemberHealth) -> None:
        if change is MemberChange.PHASE:
            self.told.append(new.phase)

    def answers(self, seconds: int, latency: float = 0.001) -> None:
        """One answered probe a second for `seconds`."""
        for _ in range(seconds):
            self.now += 1.0
            self.liveness.probed(Probe("de", True, latency, None, "GET /readyz: ok"))

    def fails(self, after: float, failure: Failure) -> None:
        self.now += after
        budget = "no answer within 1.0s" if failure is Failure.TIMEOUT else "connection refused"
        self.liveness.probed(Probe("de", False, 1.0, failure, f"GET /readyz: {budget}"))

    def silent_until(self, at: float) -> None:
        self.now = at
        self.liveness.judge_silence()

    @property
    def phase(self) -> Phase:
        return self.liveness.health.phase


@pytest.fixture
def member() -> Watched:
    watched = Watched()
    watched.answers(30)
    assert watched.phase is Phase.READY
    watched.told.clear()
    return watched


def test_one_time_out_proves_nothing_silence_does(member: Watched) -> None:
    last_answer = member.now
    member.fails(1.0, Failure.TIMEOUT)
    assert member.phase is Phase.READY, "one probe past its deadline: maybe a lost segment"
    due = member.liveness.silence_due()
    assert due == pytest.approx(last_answer + 2.0), "Suspect after one deadline and one interval of silence"
    member.silent_until(due)
    assert member.phase is Phase.SUSPECT
    member.silent_until(last_answer + member.liveness.link.silence_s)
    assert member.phase is Phase.DOWN
    assert member.liveness.health.reason == "ProbeTimeout"
    assert member.liveness.lost_since == pytest.approx(last_answer), "the loss is dated from the last answer"
    assert member.told == [Phase.SUSPECT, Phase.DOWN]


def test_a_killed_member_is_down_after_down_after_seconds_of_refusals(member: Watched) -> None:
    member.fails(0.5, Failure.REFUSED)
    assert member.phase is Phase.READY, "one refusal is a reset connection"
    first = member.now
    member.fails(0.01, Failure.REFUSED)  # tried again at once, on a fresh connection
    assert member.phase is Phase.SUSPECT
    member.silent_until(first + POLICY.down_after_seconds - 0.01)
    assert member.phase is Phase.SUSPECT
    member.silent_until(first + POLICY.down_after_seconds)
    assert member.phase is Phase.DOWN and member.liveness.health.reason == "ProbeRefused"
    assert "every probe refused for 2s" in member.liveness.health.message


def test_a_far_member_answering_slower_than_its_time_out_stays_ready() -> None:
    watched = Watched()
    watched.answers(60, latency=0.6)
    for _ in range(20):  # answers slower than the 1 s time-out: the old detector made it Suspect each time
        watched.now += 0.5
        watched.liveness.probed(Probe("de", True, 1.3, None, "GET /readyz: ok"))
    assert watched.phase is Phase.READY and watched.told == [Phase.READY], "Ready once, from Pending"
    figures = watched.liveness.link_figures()
    assert figures.deadline_s == pytest.approx(1.5 * 1.3) and figures.rtt_p50_s == pytest.approx(0.6)


def test_an_answer_with_an_error_is_life_but_not_ready(member: Watched) -> None:
    member.fails(1.0, Failure.ERROR)
    assert member.phase is Phase.SUSPECT, "the API answers, not ready: the phase machine's call"
    assert member.liveness.silence_due() is not None and member.liveness.link.last_answer == member.now


def test_the_operators_stall_is_forgiven_but_only_once_over(member: Watched) -> None:
    last_answer = member.now
    allowance = member.liveness.link.silence_s
    member.liveness.stalled(1.5)
    member.silent_until(last_answer + allowance + 1.4)
    assert member.phase is not Phase.DOWN
    for _ in range(10):
        member.liveness.stalled(1.0)
    member.silent_until(last_answer + 2 * allowance + 0.01)
    assert member.phase is Phase.DOWN, "an operator stuck for good still finds a dead member Down"


def test_a_member_never_answering_is_down_from_its_first_probe() -> None:
    watched = Watched()
    first = watched.now
    watched.fails(1.0, Failure.TIMEOUT)  # sent at `first`, unanswered at its deadline
    assert watched.phase is Phase.PENDING
    watched.silent_until(first + 3.5)
    assert watched.phase is Phase.PENDING, "never Ready: nothing to suspect"
    watched.silent_until(first + 4.0)
    assert watched.phase is Phase.DOWN


def test_a_down_member_earns_ready_with_answers_in_a_row(member: Watched) -> None:
    member.fails(0.5, Failure.REFUSED)
    member.fails(0.01, Failure.REFUSED)
    member.silent_until(member.now + 3)
    assert member.phase is Phase.DOWN
    member.answers(1)
    member.fails(0.5, Failure.REFUSED)
    member.answers(1)
    assert member.phase is Phase.DOWN, "a failure between answers starts the count again"
    member.answers(1)
    assert member.phase is Phase.READY
