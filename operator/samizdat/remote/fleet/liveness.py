"""How one member is doing: its probes, its failing views and the evidence of its censorship folded into
its health (`samizdat.core.health`), when and why its current loss began, and its probe round trip.

Probes that fail on the link (refused, timed out) go to the member's `LinkMonitor`, whose verdict alone
makes the member Suspect or Down: a failed probe proves nothing, silence and refusals for long enough
do (see `samizdat.core.health.link`). Probes that the member answers, even with an error, are life;
what they say (not ready, 401, malformed) and views that cannot be listed go through the phase
machine's hysteresis as before.

No I/O: the member's probe and watch loops report here, and every phase change is told back through
one callback, so the member can silence the writes waiting on it and the fleet can react.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque
from collections.abc import Callable

from samizdat.core import health
from samizdat.core.health.link import LinkFigures, LinkMonitor, Verdict
from samizdat.core.model import CensorshipKind, Phase
from samizdat.core.tampering import Censorship
from samizdat.remote import metrics
from samizdat.remote.clusters import errors, probing
from samizdat.remote.fleet.changes import MemberChange

logger = logging.getLogger(__name__)

# A watch that breaks is listed again at once; a view fails the member only when that also fails.
VIEW_FAILURES_BEFORE_UNHEALTHY = 2
# Failures that say something about the link, not about what the member answered: the link monitor's.
LINK_FAILURES = frozenset({health.Failure.REFUSED, health.Failure.TIMEOUT})
VERDICT_PHASES = {Verdict.ALIVE: Phase.READY, Verdict.SUSPECT: Phase.SUSPECT, Verdict.DOWN: Phase.DOWN}
# The probe round trip placement reads (`maxProbeRTTMs`): the median of this many answered probes,
# published again when it moves by more than this share.
RTT_PROBES = 16
RTT_CHANGE = 0.2


class Liveness:
    """One member's health and the history behind it; see the module docstring."""

    def __init__(
        self, name: str, policy: health.HealthPolicy, probe_interval_s: float, probe_timeout_s: float,
        quarantine_s: float, clock: Callable[[], float], tell: Callable[[MemberChange, health.MemberHealth], None],
    ) -> None:
        self.name = name
        self.policy = policy
        self.quarantine_s = quarantine_s
        # The member's own probe time-out is the floor of every deadline the link earns.
        self.link = LinkMonitor(probe_interval_s, probe_timeout_s, policy.down_after_seconds)
        self.probing_since: float | None = None  # when the first probe was sent: silence counts from then
        # What health judges time by (monotonic seconds); the fleet compares loss times on the same clock.
        self.clock = clock
        self._tell = tell
        self.health = health.MemberHealth()
        self.censorship: Censorship | None = None
        self.last_probe: probing.Probe | None = None
        self.lost_since: float | None = None  # monotonic time the current loss began
        self.lost_reason: str | None = None  # the health reason the current loss began with
        # Views whose list or watch keeps failing: view -> (failures in a row, the last failure, its message).
        self._view_failures: dict[str, tuple[int, health.Failure, str]] = {}
        self._round_trips: deque[float] = deque(maxlen=RTT_PROBES)  # of the last answered probes, in ms
        self.probe_rtt_ms: float | None = None  # their median as placement reads it (see `_measured`)

    @property
    def answering(self) -> bool:
        """Whether 401/403 can be blamed on the member: an API server still starting answers them
        until its authenticators and RBAC caches are warm, which is no revocation."""
        return health.healthy(self.health.phase)

    def probed(self, result: probing.Probe) -> None:
        """Fold one probe's outcome into the member's health."""
        now = self.clock()
        if self.probing_since is None:
            self.probing_since = now - result.latency_s
        self.last_probe = result
        metrics.member_probed(self.name, result.ok, result.latency_s, result.failure)
        if not result.ok and result.failure in LINK_FAILURES:
            self.link.failed(now, result.failure)
            self._judge_link(now, result.failure, result.message)
            return
        self.link.answered(now, result.latency_s)
        if result.ok:
            self._measured(result.latency_s * 1000)
        if result.failure is health.Failure.UNAUTHORIZED and self.answering:
            self.censored(Censorship(CensorshipKind.CREDENTIALS_REVOKED, f"API answered 401: {result.message}"))
        failure = None if result.ok else (result.failure or health.Failure.ERROR)
        unusable = self.failing_view()
        if failure is None and unusable is not None:
            # The API answers, but samizdat cannot see the member's nodes, pods or copies: not usable either.
            view, failure, why = unusable
            observed = health.observe_probe(self.health, self.policy, self.clock(), failure, f"{view}: {why}",
                                            seen_by="View")
        else:
            observed = health.observe_probe(self.health, self.policy, self.clock(), failure, result.message)
        self._set_health(observed)

    def silence_due(self) -> float | None:
        """When the link's verdict may worsen with nothing more heard (None: nothing to judge yet, or
        nothing it could come to): when the probe loop must call `judge_silence` if no probe ends first."""
        if self.probing_since is None:
            return None
        return self.link.due(self.clock(), self.probing_since)

    def judge_silence(self) -> None:
        """Judge the link again at `silence_due`, nothing new heard: the last probe's failure stands."""
        if self.probing_since is None:
            return
        last = self.last_probe
        if last is not None and not last.ok and last.failure in LINK_FAILURES:
            self._judge_link(self.clock(), last.failure, last.message)
        else:  # answered last, or in flight: nothing heard since is silence
            self._judge_link(self.clock(), health.Failure.TIMEOUT, "no answer yet")

    def stalled(self, seconds: float) -> None:
        """The operator itself was stuck for `seconds` (its event loop woke the probe loop that late)."""
        self.link.stalled(seconds)

    def link_figures(self) -> LinkFigures:
        return self.link.figures()

    def _judge_link(self, now: float, failure: health.Failure, message: str) -> None:
        assert self.probing_since is not None
        judgement = self.link.judge(now, self.probing_since)
        silent_since = self.link.last_answer if self.link.last_answer is not None else self.probing_since
        self._set_health(health.observe_silence(
            self.health, now, VERDICT_PHASES[judgement.verdict], silent_since, failure,
            f"{judgement.message}; last probe: {message}",
        ))

    def view_failed(self, view: str, error: errors.MemberError) -> None:
        failure = probing.failure_of(error)
        metrics.member_view_failed(self.name, view, failure.value)
        times = self._view_failures.get(view, (0, failure, ""))[0] + 1
        self._view_failures[view] = (times, failure, error.message)
        # Logged once when the view stops working, not on every retry of a member that stays broken.
        if times == VIEW_FAILURES_BEFORE_UNHEALTHY:
            logger.warning("member %s: %s cannot be listed (%s: %s); retrying with back-off",
                           self.name, view, failure.value, error.message)
        else:
            logger.debug("member %s: %s list or watch failed: %s", self.name, view, error)
        if isinstance(error, (errors.MemberUnauthorized, errors.MemberForbidden)) and self.answering:
            rbac = "RBAC revoked: " if isinstance(error, errors.MemberForbidden) else ""
            self.censored(Censorship(CensorshipKind.CREDENTIALS_REVOKED, f"{rbac}{error}"))

    def view_works(self, view: str) -> None:
        failed = self._view_failures.pop(view, None)
        if failed is not None and failed[0] >= VIEW_FAILURES_BEFORE_UNHEALTHY:
            logger.info("member %s: %s listed again", self.name, view)

    def failing_view(self) -> tuple[str, health.Failure, str] | None:
        """The first view that keeps failing (its name, failure kind and message), or None."""
        for view, (times, failure, message) in sorted(self._view_failures.items()):
            if times >= VIEW_FAILURES_BEFORE_UNHEALTHY:
                return view, failure, message
        return None

    def censored(self, evidence: Censorship) -> None:
        """Quarantine the member on this evidence (further evidence extends the quarantine)."""
        logger.warning("member %s censors: %s: %s", self.name, evidence.kind, evidence.message)
        self.censorship = evidence
        metrics.member_censored(self.name, evidence.kind.value)
        self._set_health(health.observe_censorship(
            self.health, self.clock(), self.quarantine_s, evidence.kind.value, evidence.message
        ))
        self._tell(MemberChange.CENSORSHIP, self.health)

    def _set_health(self, new: health.MemberHealth) -> None:
        old, self.health = self.health, new
        if old.phase is new.phase:
            return
        lost = health.lost(new.phase)
        if lost and self.lost_since is None:
            # A failure started when the first probe failed, not when it was judged Down.
            self.lost_since = new.failing_since if new.failing_since is not None else self.clock()
            # Why it was lost, kept while the loss lasts: a member restarting says other things on its
            # way back (not ready, views refused), and the loss must read the same until it ends.
            self.lost_reason = new.reason
        elif not lost:
            self.lost_since = self.lost_reason = None
        logger.info("member %s: %s -> %s (%s)", self.name, old.phase, new.phase, new.message)
        if new.phase is Phase.READY:
            self.censorship = None
        self._tell(MemberChange.PHASE, new)

    def _measured(self, rtt_ms: float) -> None:
        """Fold one answered probe's round trip into `probe_rtt_ms`, which changes (and tells the fleet,
        so the next snapshot reads it) only when the median moves by more than RTT_CHANGE: a jittery
        link must not remake every workload's snapshot on each probe."""
        self._round_trips.append(rtt_ms)
        median = statistics.median(self._round_trips)
        published = self.probe_rtt_ms
        if published is None or abs(median - published) > RTT_CHANGE * max(published, 1.0):
            self.probe_rtt_ms = round(median, 1)
            self._tell(MemberChange.LINK, self.health)
