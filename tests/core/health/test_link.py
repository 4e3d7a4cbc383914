"""The link monitor on a fake clock: slow is not dead, silence and refusals are, each by its own budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from samizdat.core.health import Failure
from samizdat.core.health.link import DEADLINE_CAP_S, MISSED_PROBES, LinkMonitor, Verdict


def fed(latencies: list[float], *, interval: float = 1.0, floor: float = 1.0, down_after: float = 2.0
        ) -> tuple[LinkMonitor, float]:
    """A monitor whose probes, one an interval, answered after `latencies`; and the time of the last answer."""
    monitor = LinkMonitor(interval, floor, down_after)
    now = 0.0
    for latency in latencies:
        now += interval
        monitor.answered(now + latency, latency)
    return monitor, now + latencies[-1]


def test_a_clean_link_keeps_the_members_own_time_out_and_down_after() -> None:
    monitor, _ = fed([0.001] * 50)
    assert monitor.deadline() == 1.0
    assert monitor.interval() == 1.0
    assert monitor.silence_s == pytest.approx(max(2.0, 0.001 + MISSED_PROBES * 1.0))


def test_a_slow_link_gets_a_deadline_from_its_p99_and_twice_the_probes() -> None:
    monitor, _ = fed([0.3] * 40 + [1.4] * 2)
    assert monitor.deadline() == pytest.approx(1.5 * 1.4)
    assert monitor.interval() == 0.5
    assert monitor.silence_s == pytest.approx(1.4 + MISSED_PROBES * 0.5)
    figures = monitor.figures()
    assert figures.rtt_p50_s == 0.3 and figures.rtt_p99_s == 1.4 and figures.probe_loss == 0.0


def test_no_deadline_exceeds_the_cap() -> None:
    monitor, _ = fed([4.9] * 20)
    assert monitor.deadline() == DEADLINE_CAP_S


def test_silence_makes_a_member_suspect_then_down() -> None:
    monitor, last = fed([0.001] * 20)
    assert monitor.judge(last + 1.9, 0.0).verdict is Verdict.ALIVE
    assert monitor.judge(last + 2.0, 0.0).verdict is Verdict.SUSPECT  # one deadline and one interval
    down = monitor.judge(last + monitor.silence_s, 0.0)
    assert down.verdict is Verdict.DOWN and down.reason == "Silent"


def test_an_answer_past_its_deadline_is_still_life() -> None:
    monitor, last = fed([0.001] * 20)
    monitor.failed(last + 2.0, Failure.TIMEOUT)
    monitor.answered(last + 2.9, 2.5)  # sent at last + 0.4, answered late
    assert monitor.judge(last + 2.9 + monitor.silence_s - 0.01, 0.0).verdict is not Verdict.DOWN
    assert monitor.figures().probe_loss == pytest.approx(1 / 22)


def test_one_refusal_is_a_reset_connection_two_in_a_row_for_down_after_are_a_killed_member() -> None:
    monitor, last = fed([0.001] * 20)
    monitor.failed(last + 0.5, Failure.REFUSED)
    assert monitor.judge(last + 0.6, 0.0).verdict is Verdict.ALIVE
    monitor.failed(last + 0.6, Failure.REFUSED)
    assert monitor.judge(last + 0.7, 0.0).verdict is Verdict.SUSPECT
    assert monitor.due(last + 2.1, 0.0) == pytest.approx(last + 0.5 + 2.0)
    refused = monitor.judge(last + 2.5, 0.0)
    assert refused.verdict is Verdict.DOWN and refused.reason == "Refusing"


def test_an_answer_between_refusals_starts_the_count_again() -> None:
    monitor, last = fed([0.001] * 20)
    monitor.failed(last + 0.5, Failure.REFUSED)
    monitor.answered(last + 1.0, 0.001)
    monitor.failed(last + 1.5, Failure.REFUSED)
    monitor.failed(last + 2.4, Failure.REFUSED)
    assert monitor.judge(last + 2.6, 0.0).verdict is Verdict.SUSPECT  # 2.5 s after the first refusal, 1.1 s of these


def test_the_operators_own_stall_is_not_the_members_silence() -> None:
    monitor, last = fed([0.001] * 20)
    monitor.stalled(1.5)
    assert monitor.judge(last + monitor.silence_s + 1.4, 0.0).verdict is not Verdict.DOWN
    assert monitor.judge(last + monitor.silence_s + 1.5, 0.0).verdict is Verdict.DOWN


def test_an_operator_stuck_for_good_still_finds_a_dead_member_down_at_most_twice_as_late() -> None:
    monitor, last = fed([0.001] * 20)
    for _ in range(30):
        monitor.stalled(1.0)
    assert monitor.judge(last + 2 * monitor.silence_s + 0.001, 0.0).verdict is Verdict.DOWN


def test_a_member_never_answering_is_judged_from_its_first_probe() -> None:
    monitor = LinkMonitor(1.0, 1.0, 2.0)  # no p99 yet: the floor stands for it
    assert monitor.judge(3.9, 0.0).verdict is Verdict.SUSPECT
    assert monitor.judge(4.0, 0.0).verdict is Verdict.DOWN
    assert monitor.due(2.5, 0.0) == pytest.approx(4.0)


def test_the_quick_simulation_finds_no_false_down_where_the_old_detector_finds_many() -> None:
    """bench/detector --quick (what CI runs of it): 10^5 probe-seconds a profile, 100 deaths a case."""
    script = Path(__file__).resolve().parents[3] / "bench" / "detector" / "run.py"
    out = subprocess.run([sys.executable, str(script), "--quick", "--down-after", "2"], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    result = json.loads(out)
    live = {(row["detector"], row["profile"]): row for row in result["live_members"]}
    assert all(row["downs"] == 0 for (detector, _), row in live.items() if detector == "link")
    assert live["today", "wan"]["downs"] > 100
    deaths = {(row["detector"], row["profile"], row["death"]): row for row in result["deaths"]}
    assert deaths["link", "wan", "silent"]["p99_s"] <= 5.0
    assert all(row["p99_s"] <= 3.05 for (detector, profile, _), row in deaths.items()
               if detector == "link" and profile != "wan")
