"""The failover clock as a pure step over one reconcile's tally at a time."""

from __future__ import annotations

from samizdat.core import report
from samizdat.core.model import FailoverReason
from samizdat.remote.fleet import Loss


def _loss(member: str, since: float) -> Loss:
    return Loss(member, "down (ProbeRefused)", FailoverReason.MEMBER_DOWN, since)


def test_a_failover_is_timed_once_for_a_member_that_stays_lost() -> None:
    timer = report.FailoverTimer()
    lost = {"de": _loss("de", 100.0)}
    timer = timer.observe(report.Tally(lost, converged=True, ready=1, wanted=2, now=102.0))
    timer = timer.observe(report.Tally(lost, converged=True, ready=2, wanted=2, now=105.0))
    assert timer.last is not None and (timer.last.from_cluster, timer.last.seconds) == ("de", 5.0)

    for now in (130.0, 160.0):  # still Down: resyncs must not time the same loss again, from its start
        timer = timer.observe(report.Tally(lost, converged=True, ready=2, wanted=2, now=now))
    assert timer.last.seconds == 5.0, "a loss already timed started another clock"

    # Another member lost while the first still is: timed from its own loss.
    both = {**lost, "fr": _loss("fr", 170.0)}
    timer = timer.observe(report.Tally(both, converged=True, ready=1, wanted=2, now=171.0))
    timer = timer.observe(report.Tally(both, converged=True, ready=2, wanted=2, now=174.0))
    assert (timer.last.from_cluster, timer.last.seconds) == ("fr", 4.0)

    # Back, then lost again: a new loss, a new failover.
    timer = timer.observe(report.Tally({}, converged=True, ready=2, wanted=2, now=200.0))
    again = {"de": _loss("de", 210.0)}
    timer = timer.observe(report.Tally(again, converged=True, ready=1, wanted=2, now=211.0))
    timer = timer.observe(report.Tally(again, converged=True, ready=2, wanted=2, now=213.5))
    assert (timer.last.from_cluster, timer.last.seconds) == ("de", 3.5)


def test_a_failover_reports_how_long_it_waited_for_room() -> None:
    timer = report.FailoverTimer()
    lost = {"de": _loss("de", 100.0)}
    timer = timer.observe(report.Tally(lost, converged=False, ready=1, wanted=2, now=101.0, room=False))  # nowhere to go
    timer = timer.observe(report.Tally(lost, converged=False, ready=1, wanted=2, now=131.0, room=False))  # a resync: still none
    timer = timer.observe(report.Tally(lost, converged=True, ready=1, wanted=2, now=140.0))  # a member came back: placed
    timer = timer.observe(report.Tally(lost, converged=True, ready=2, wanted=2, now=144.0))

    assert timer.last is not None
    assert (timer.last.seconds, timer.last.without_room_seconds) == (44.0, 39.0), \
        "detection (1 s) and the move (4 s) are the failover's own; the 39 s between are the fleet's"

    again = {"fr": _loss("fr", 200.0)}
    timer = timer.observe(report.Tally(again, converged=True, ready=1, wanted=2, now=201.0))
    timer = timer.observe(report.Tally(again, converged=True, ready=2, wanted=2, now=203.0))
    assert (timer.last.from_cluster, timer.last.without_room_seconds) == ("fr", 0.0), "each failover its own"
