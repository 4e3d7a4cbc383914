"""The member health state machine, without a clock or an API."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from samizdat.core import health
from samizdat.core.health import Failure, HealthPolicy, MemberHealth
from samizdat.core.model import Phase

POLICY = HealthPolicy(suspect_after_failures=2, down_after_seconds=3.0, recover_after_successes=2)


def run(outcomes: list[tuple[float, Failure | None]], start: MemberHealth | None = None) -> MemberHealth:
    state = start or MemberHealth()
    for now, failure in outcomes:
        state = health.observe_probe(state, POLICY, now, failure)
    return state


@pytest.mark.parametrize(
    ("outcomes", "phase"),
    [
        pytest.param([(0, None)], Phase.READY, id="first-success-is-ready"),
        pytest.param([(0, None), (1, Failure.TIMEOUT)], Phase.READY, id="one-lost-probe-keeps-ready"),
        pytest.param([(0, None), (1, Failure.TIMEOUT), (2, Failure.TIMEOUT)], Phase.SUSPECT, id="suspect"),
        pytest.param([(0, None), (1, Failure.REFUSED), (2, Failure.REFUSED), (4, Failure.REFUSED)], Phase.DOWN,
                     id="down-after-seconds"),
        pytest.param([(0, None), (1, Failure.TIMEOUT), (2, Failure.TIMEOUT), (3, None)], Phase.SUSPECT,
                     id="suspect-needs-two-successes"),
        pytest.param([(0, None), (1, Failure.TIMEOUT), (2, Failure.TIMEOUT), (3, None), (4, None)], Phase.READY,
                     id="suspect-recovers"),
        pytest.param([(0, Failure.REFUSED), (1, Failure.REFUSED), (5, Failure.REFUSED), (6, None)], Phase.DOWN,
                     id="down-needs-two-successes"),
        pytest.param([(0, Failure.REFUSED), (5, Failure.REFUSED), (6, None), (7, Failure.REFUSED)], Phase.DOWN,
                     id="flap-stays-down"),
    ],
)
def test_probe_outcomes_move_phases_with_hysteresis(outcomes: list[tuple[float, Failure | None]], phase: Phase) -> None:
    assert run(outcomes).phase is phase


def test_a_member_never_ready_stays_pending_with_the_reason_until_down() -> None:
    state = run([(0, Failure.TIMEOUT), (1, Failure.TIMEOUT)])
    assert (state.phase, state.reason) == (Phase.PENDING, "ProbeTimeout")
    assert run([(0, Failure.TIMEOUT), (1, None)]).phase is Phase.READY, "a slow first probe costs nothing"
    assert run([(0, Failure.TIMEOUT), (1, Failure.TIMEOUT), (3, Failure.TIMEOUT)]).phase is Phase.DOWN


def test_down_state_names_the_failure() -> None:
    state = run([(0, Failure.UNAUTHORIZED), (10, Failure.UNAUTHORIZED)])
    assert state.phase is Phase.DOWN and state.lost
    assert state.reason == "ProbeUnauthorized"


def test_a_member_that_answers_garbage_is_never_ready_and_says_why() -> None:
    state = MemberHealth()
    for now in range(10):
        state = health.observe_probe(state, POLICY, now, Failure.MALFORMED,
                                     "GET /readyz: answered 200 without the API server's 'ok'")
        assert state.phase is not Phase.READY
    assert (state.phase, state.reason) == (Phase.DOWN, "ProbeMalformed")


def test_views_that_cannot_be_listed_fail_a_member_like_probes() -> None:
    state = run([(0, None)])
    for now in (1, 2, 5):
        state = health.observe_probe(state, POLICY, now, Failure.MALFORMED, "pods: reply is not JSON", seen_by="View")
    assert (state.phase, state.reason, state.message) == (Phase.DOWN, "ViewMalformed", "pods: reply is not JSON")


def test_quarantine_ignores_probes_until_it_ends_then_requires_recovery() -> None:
    state = health.observe_censorship(run([(0, None)]), now=10, quarantine_seconds=30, kind="ObjectDeleted",
                                      message="deployment deleted")
    assert state.phase is Phase.QUARANTINED and not state.schedulable
    assert health.observe_probe(state, POLICY, 20, None).phase is Phase.QUARANTINED
    after = health.observe_probe(state, POLICY, 41, None)
    assert after.phase is Phase.DOWN
    assert health.observe_probe(after, POLICY, 42, None).phase is Phase.READY


def test_repeated_censorship_extends_never_shortens_quarantine() -> None:
    first = health.observe_censorship(MemberHealth(), now=0, quarantine_seconds=100, kind="k", message="m")
    second = health.observe_censorship(first, now=10, quarantine_seconds=5, kind="k", message="m")
    assert second.quarantined_until == 100


@given(st.lists(st.tuples(st.floats(0, 2), st.sampled_from([None, *Failure])), max_size=40))
def test_never_down_before_failures_last_long_enough(steps: list[tuple[float, Failure | None]]) -> None:
    now, state, failing_since = 0.0, MemberHealth(), None
    for gap, failure in steps:
        now += gap
        previous = state
        state = health.observe_probe(state, POLICY, now, failure)
        # a success short of recovery does not end the failing streak: that is the hysteresis
        if failure is None and state.phase is Phase.READY:
            failing_since = None
        elif failure is not None and failing_since is None:
            failing_since = now
        if state.phase is Phase.DOWN and previous.phase is not Phase.DOWN:
            assert failing_since is not None and now - failing_since >= POLICY.down_after_seconds
        if failure is not None:
            assert state.phase is not Phase.READY or state.consecutive_failures < POLICY.suspect_after_failures
