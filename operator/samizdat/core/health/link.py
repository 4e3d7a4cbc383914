"""A member's link as its probes measure it, and whether the member behind it still lives.

On loopback a member answers in a millisecond or not at all. Behind an international link it answers
in 50-550 ms, now and then a second or two later (a lost segment waits for its retransmission), and a
national firewall may throttle the link, reset its connections or let bytes vanish. A fixed probe
time-out of one second calls such a member dead every few minutes; a long grace period (Karmada's
40 s, the node lifecycle's 50 s) calls a dead one alive for as long. This monitor tells slow from dead
from what probes alone show, on a clock passed in (pure, so a simulation can run it over years of
synthetic traffic in minutes; see bench/detector):

- **Probes overlap.** One is sent every interval whether or not the last one has answered (its caller
  bounds how many are in flight), so one stalled request holds back no evidence; after a failure the
  caller opens a fresh connection, so a stalled connection is not mistaken for a dead member. A probe
  past its deadline counts as failed for the link's figures, but an answer that still comes (within
  `DEADLINE_CAP_S`) is life all the same: a link that suddenly slows is measured, not buried.
- **A probe's deadline follows the link**: the p99 of recent answer times with room for one more
  retransmission (x `DEADLINE_MARGIN`), never below the member's own probe time-out nor above
  `DEADLINE_CAP_S`. On loopback that is the floor, today's one second.
- **Two kinds of evidence make a member Down.** *Silence*: no answer at all for `silence_s`, the
  deadline plus two intervals (and never less than the policy's downAfterSeconds), for members that
  stop answering: partitioned, stopped, behind a black hole. *Refusal*: every probe refused or reset
  and none answered for downAfterSeconds, for members that are killed (a refusal comes back in one
  round trip, so it needs no allowance for a slow link). A failed probe alone proves nothing.
- **The operator's own stalls are not the member's silence**: time the caller reports its event loop
  was stuck (`stalled`) is not counted as silence, up to one silence allowance, as Lifeguard's local
  health scales SWIM's time-outs by how late the prober itself is (and caps the scale).

Why not phi accrual (Akka, Cassandra)? It fits a distribution to heartbeat gaps, and on a lossy link
that distribution has the heavy tail of retransmissions: a normal fit calls the first two-second gap
impossible, an exponential one needs the threshold tuned per link anyway. A deadline from the measured
p99 plus a fixed allowance for one retransmission says the same thing in the link's own units, and
bench/detector measures what it costs in false Downs and in detection time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from samizdat.core.health.tracker import Failure

WINDOW = 128  # probe outcomes the link's figures are taken over: one to two minutes
DEADLINE_MARGIN = 1.5  # p99 x this: room for one retransmission more than the worst recent answer
DEADLINE_CAP_S = 5.0  # no link is measured so slow that a probe may take longer
MISSED_PROBES = 3  # silence allowed beyond the link's p99, in probes that should have answered
# A link whose p99 is above this share of the probe time-out is slow: it is probed twice as often, so
# its silence is judged on twice the evidence in the same time.
SLOW_LINK = 0.5
# Failures that come back fast and mean nobody is listening (killed), as opposed to time-outs (silence).
REFUSALS = frozenset({Failure.REFUSED})


class Verdict(StrEnum):
    ALIVE = "Alive"
    SUSPECT = "Suspect"  # no answer for longer than a probe's deadline: take no new replicas there
    DOWN = "Down"  # silent or refusing for long enough: its replicas are re-placed


@dataclass(frozen=True, slots=True)
class LinkFigures:
    """The link as samizdat measures it, for MemberCluster status and metrics."""

    rtt_p50_s: float | None
    rtt_p99_s: float | None
    probe_loss: float  # share of the last WINDOW probes that failed
    deadline_s: float
    silence_s: float  # how long the member may stay silent before it is Down


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    reason: str  # CamelCase, for a condition: Answering, Silent, Refusing
    message: str  # in words, naming the budget that was spent


class LinkMonitor:
    """The probes of one member folded into link figures and a verdict.

    Mutable for speed (a simulation feeds it hundreds of millions of probes), but it reads no clock and
    does no I/O: `answered`, `failed` and `judge` are told the time. Its caller sends a probe every
    `interval()` with a deadline of `deadline()`, tries a failed one again at once on a fresh
    connection (once an interval), reports each answer however late, and judges again at `due()`.
    """

    def __init__(self, interval_s: float, floor_s: float, down_after_s: float) -> None:
        self.interval_s = interval_s
        self.floor_s = floor_s
        self.down_after_s = down_after_s
        self._latencies: deque[float] = deque(maxlen=WINDOW)
        self._outcomes: deque[bool] = deque(maxlen=WINDOW)
        self._deadline_s = floor_s
        self._p99: float | None = None
        self._slow = False
        self._fresh = 0  # answers since the deadline was last worked out
        self.last_answer: float | None = None
        self._refused_since: float | None = None  # first refusal since the last answer
        self._refusals = 0  # refusals since the last answer
        self._stalled_s = 0.0  # of the time since the last answer, how long the operator itself was stuck

    # ----- what the caller tells it

    def deadline(self) -> float:
        """How long the next probe may take."""
        return self._deadline_s

    def answered(self, now: float, latency_s: float) -> None:
        self._latencies.append(latency_s)
        self._outcomes.append(True)
        self.last_answer = now
        self._refused_since = None
        self._refusals = 0
        self._stalled_s = 0.0
        self._fresh += 1
        # Worked out again every few answers, and at once when one is slower than the link's p99.
        if self._fresh >= 8 or self._p99 is None or latency_s > self._p99:
            self._fresh = 0
            self._measure()

    def failed(self, now: float, failure: Failure) -> None:
        self._outcomes.append(False)
        if failure in REFUSALS:
            if self._refused_since is None:
                self._refused_since = now
            self._refusals += 1
        else:  # a time-out between refusals: the silence rule judges it
            self._refused_since = None
            self._refusals = 0

    def stalled(self, seconds: float) -> None:
        """The operator's event loop was stuck for `seconds`: not the member's silence. At most one
        silence allowance is forgiven this way, so an operator stuck for good still finds a dead member
        Down, at worst twice as late (as Lifeguard bounds its local-health multiplier)."""
        self._stalled_s = min(self.silence_s, self._stalled_s + seconds)

    # ----- what it answers

    def interval(self) -> float:
        """How long after this probe the next one is sent."""
        return self.interval_s / 2 if self._slow else self.interval_s

    @property
    def silence_s(self) -> float:
        p99 = self._p99 if self._p99 is not None else self.floor_s
        return max(self.down_after_s, p99 + MISSED_PROBES * self.interval())

    def due(self, now: float, since: float) -> float | None:
        """The first time after `now` that the verdict may worsen with nothing more heard (None:
        never): when to judge again if no probe ends before then."""
        quiet = self._quiet(since)
        times = [quiet + self._deadline_s + self.interval(), quiet + self.silence_s]
        refused = self._down_by_refusal()
        later = [at for at in (*times, refused) if at is not None and at > now]
        return min(later) if later else None

    def judge(self, now: float, since: float) -> Judgement:
        """The verdict at `now` on a member first probed at `since` (silence before the first answer
        counts from then)."""
        quiet = self._quiet(since)
        refused = self._down_by_refusal()
        if refused is not None and now >= refused:
            return Judgement(Verdict.DOWN, "Refusing", f"every probe refused for {self.down_after_s:g}s")
        if now >= quiet + self.silence_s:
            return Judgement(Verdict.DOWN, "Silent", f"no answer within {self.silence_s:.1f}s"
                             f" (the link's p99 and {MISSED_PROBES} probes more)")
        if refused is not None or now >= quiet + self._deadline_s + self.interval():
            return Judgement(Verdict.SUSPECT, "Refusing" if refused is not None else "Silent",
                             f"no answer within {self._deadline_s + self.interval():.1f}s")
        return Judgement(Verdict.ALIVE, "Answering", "answering")

    def _quiet(self, since: float) -> float:
        """Since when the member has been silent, the operator's own stalls not counted."""
        return (self.last_answer if self.last_answer is not None else since) + self._stalled_s

    def _down_by_refusal(self) -> float | None:
        """When refusals make the member Down: downAfterSeconds after the first of two or more in a row
        (one alone is a reset connection, and the next probe opens a new one)."""
        if self._refused_since is None or self._refusals < 2:
            return None
        return self._refused_since + self.down_after_s

    def figures(self) -> LinkFigures:
        ordered = sorted(self._latencies)
        failed = sum(1 for ok in self._outcomes if not ok)
        return LinkFigures(
            rtt_p50_s=_quantile(ordered, 0.5), rtt_p99_s=_quantile(ordered, 0.99),
            probe_loss=failed / len(self._outcomes) if self._outcomes else 0.0,
            deadline_s=self._deadline_s, silence_s=self.silence_s,
        )

    def _measure(self) -> None:
        self._p99 = _quantile(sorted(self._latencies), 0.99)
        wanted = DEADLINE_MARGIN * self._p99 if self._p99 is not None else self.floor_s
        self._deadline_s = min(DEADLINE_CAP_S, max(self.floor_s, wanted))
        self._slow = self._p99 is not None and self._p99 > SLOW_LINK * self.floor_s


def _quantile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted values (None for none)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
