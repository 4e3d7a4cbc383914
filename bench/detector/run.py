"""The failure detector (`samizdat.core.health.link`) on a fake clock, over synthetic link traces.

No sockets: each probe's fate is drawn from a model of the link, and the monitor is told what the
operator would see, when it would see it. Two questions, per link profile:

Each question is put to this detector ("link") and to the one samizdat had before it ("today":
`health.observe_probe` alone, one probe at a time with a fixed 1 s time-out), in the same run.

1. How often does it call a live member Down (false Downs per member-hour), and how often Suspect?
   A long trace per profile, no death; `--probe-seconds` of it (10^7 by default, 10^5 with --quick).
2. How long after a real death is the member Down (p50/p99)? Trials per profile and kind of death:
   killed (refused or reset within one round trip) and silent: stopped (SIGSTOP: the kernel takes
   connections, nothing answers) or half-open (connections stay open, bytes vanish), which a client
   cannot tell apart.

Link models (one-way delays per segment; a lost segment waits for its retransmission time-out, 1 s,
doubled for each further loss of the same segment, as TCP shows an application):
- clean: loopback, 0.2-1 ms round trips, nothing lost.
- wan: 25-275 ms each way (RTT about 300 +- 250 ms), 5 % of segments lost.
- throttled: loopback at 64 KB/s: a probe's own bytes take 15-90 ms.
- resets: loopback whose connections are reset every 10 s: the probe that finds its connection
  reset fails at once and the next opens a fresh one.
A probe on a reused connection is 2 segments (request, answer); one on a fresh connection (after a
failure) adds TCP's and TLS 1.3's handshakes: 3 round trips, 8 segments.

    python bench/detector/run.py            # 10^7 probe-seconds a profile, 2,000 deaths each kind
    python bench/detector/run.py --quick    # what CI runs
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stats  # noqa: E402
from samizdat.core import health  # noqa: E402
from samizdat.core.health import Failure  # noqa: E402
from samizdat.core.health.link import DEADLINE_CAP_S, LinkMonitor, Verdict  # noqa: E402
from samizdat.core.model import Phase  # noqa: E402

INTERVAL_S = 1.0  # probeIntervalSeconds' default
FLOOR_S = 1.0  # probeTimeoutSeconds' default
DOWN_AFTER_S = 3.0  # downAfterSeconds' default (the e2e sandbox's members use 2 s: --down-after 2)
IN_FLIGHT = 4  # probes one member may have outstanding; a send is skipped beyond that
WARM_UP_S = 120.0  # before a death: the link's figures are measured
RTO_S = 1.0

# (latency of the probe's answer, or None for no answer at all; the failure when it fails fast)
Fate = tuple[float | None, Failure | None]
Link = Callable[[random.Random, bool, float], Fate]


def _segments(rng: random.Random, count: int, loss: float) -> float:
    """Seconds that `count` segments wait for retransmissions."""
    waited = 0.0
    for _ in range(count):
        timeout = RTO_S
        while loss and rng.random() < loss:
            waited += timeout
            timeout *= 2
    return waited


def clean(rng: random.Random, fresh: bool, now: float) -> Fate:
    rtt = rng.uniform(0.0002, 0.001)
    return (rtt * (3 if fresh else 1), None)


def wan(rng: random.Random, fresh: bool, now: float) -> Fate:
    trips = 3 if fresh else 1
    rtt = sum(rng.uniform(0.025, 0.275) + rng.uniform(0.025, 0.275) for _ in range(trips))
    return (rtt + _segments(rng, 8 if fresh else 2, 0.05), None)


def throttled(rng: random.Random, fresh: bool, now: float) -> Fate:
    sent_bytes = rng.uniform(4000, 6000) if fresh else rng.uniform(900, 1400)
    return (rng.uniform(0.0002, 0.001) + sent_bytes / 65536, None)


def resets(rng: random.Random, fresh: bool, now: float) -> Fate:
    if not fresh and now % 10.0 < INTERVAL_S:  # the connection was reset since the last probe
        return (rng.uniform(0.0001, 0.0005), Failure.REFUSED)
    return clean(rng, fresh, now)


LINKS: dict[str, Link] = {"clean": clean, "wan": wan, "throttled": throttled, "resets": resets}


def _dead(kind: str, link: Link) -> Link:
    def fate(rng: random.Random, fresh: bool, now: float) -> Fate:
        if kind == "killed":
            latency, _ = link(rng, False, now)
            return (latency, Failure.REFUSED)
        return (None, None)  # silent: nothing ever comes back
    return fate


def simulate(link: Link, seconds: float, rng: random.Random, down_after_s: float,
             death: tuple[float, Link, str] | None = None) -> dict[str, Any]:
    """One member probed for `seconds` (or until Down after `death`): counts of verdict changes."""
    monitor = LinkMonitor(INTERVAL_S, FLOOR_S, down_after_s)
    events: list[tuple[float, int, str, float]] = []
    sequence = 0
    in_flight = 0
    fresh = False
    verdict = Verdict.ALIVE
    downs = suspects = probes = 0
    down_at: float | None = None
    next_send = 0.0
    last_judged = -1.0
    retried, retry_allowed = False, 0.0  # at most one immediate retry a probe interval
    while True:
        due = monitor.due(last_judged, 0.0)
        if due is not None and due < next_send and (not events or due < events[0][0]):
            now = due  # nothing heard by then: judge the silence as it stands
        elif events and events[0][0] < next_send:
            now, _, what, value = heapq.heappop(events)
            if what == "answer" and death is not None and now >= death[0]:
                # sent before the death, answered after it: the link took it down with the member
                if death[2] == "killed":
                    monitor.failed(now, Failure.REFUSED)
                    fresh = True
            elif what == "answer":
                monitor.answered(now, value)
            elif what in ("refused", "timeout"):
                monitor.failed(now, Failure.REFUSED if what == "refused" else Failure.TIMEOUT)
                fresh = True
                if not retried:  # a failed probe is tried again at once, on a fresh connection
                    retried, next_send = True, now
            else:  # "done": the probe's request ended, by an answer or at the cap
                in_flight -= 1
                continue
        else:
            now = next_send
            next_send += monitor.interval()
            retried = retried and now < retry_allowed
            retry_allowed = now + monitor.interval()
            if now >= seconds:
                break
            if in_flight < IN_FLIGHT:
                probes += 1
                in_flight += 1
                deadline = monitor.deadline()
                alive_link = link if death is None or now < death[0] else death[1]
                latency, failure = alive_link(rng, fresh, now)
                fresh = False
                if failure is not None and latency is not None:
                    heapq.heappush(events, (now + latency, sequence, "refused", 0.0))
                    heapq.heappush(events, (now + latency, sequence + 1, "done", 0.0))
                else:
                    if latency is None or latency > deadline:
                        heapq.heappush(events, (now + deadline, sequence, "timeout", 0.0))
                    if latency is not None and latency <= DEADLINE_CAP_S:
                        heapq.heappush(events, (now + latency, sequence + 1, "answer", latency))
                    ended = latency if latency is not None and latency <= DEADLINE_CAP_S else DEADLINE_CAP_S
                    heapq.heappush(events, (now + ended, sequence + 2, "done", 0.0))
                sequence += 3
        last_judged = now
        judged = monitor.judge(now, 0.0).verdict
        if death is not None and now >= death[0] and judged is Verdict.DOWN:
            down_at = now  # Down at the death already, when falsely Down before it
            break
        if judged is not verdict:
            if judged is Verdict.DOWN:
                downs += 1
            elif judged is Verdict.SUSPECT and verdict is Verdict.ALIVE:
                suspects += 1
            verdict = judged
    figures = monitor.figures()
    return {"probes": probes, "downs": downs, "suspects": suspects, "down_at": down_at,
            "deadline_s": figures.deadline_s, "silence_s": figures.silence_s,
            "rtt_p50_s": figures.rtt_p50_s, "rtt_p99_s": figures.rtt_p99_s, "loss": figures.probe_loss}


def simulate_today(link: Link, seconds: float, rng: random.Random, down_after_s: float,
                   death: tuple[float, Link, str] | None = None) -> dict[str, Any]:
    """The same member under the detector samizdat had before (`health.observe_probe` alone): one
    probe at a time, each waited for up to the fixed time-out, Down once failures have lasted
    downAfterSeconds. Counted the same way, for the ratio."""
    policy = health.HealthPolicy(down_after_seconds=down_after_s)
    state = health.MemberHealth()
    now, fresh, probes, downs, suspects = 0.0, False, 0, 0, 0
    down_at: float | None = None
    while now < seconds:
        sent = now
        probes += 1
        latency, failure = (link if death is None or sent < death[0] else death[1])(rng, fresh, sent)
        if latency is not None and latency <= FLOOR_S and failure is None:
            now, outcome = sent + latency, None
        elif latency is not None and failure is not None:
            now, outcome = sent + latency, failure
        else:
            now, outcome = sent + FLOOR_S, Failure.TIMEOUT
        if death is not None and now >= death[0] and outcome is None:
            now, outcome = sent + FLOOR_S, Failure.TIMEOUT  # answered after the death: lost with it
        fresh = outcome is not None
        before = state.phase
        state = health.observe_probe(state, policy, now, outcome)
        if death is not None and now >= death[0] and state.phase is Phase.DOWN:
            down_at = now  # Down at the death already, when falsely Down before it
            break
        if state.phase is not before:
            if state.phase is Phase.DOWN:
                downs += 1
            elif state.phase is Phase.SUSPECT and before is Phase.READY:
                suspects += 1
        now = max(now, sent + INTERVAL_S)
    return {"probes": probes, "downs": downs, "suspects": suspects, "down_at": down_at}


DETECTORS = {"link": simulate, "today": simulate_today}


def false_downs(job: tuple[str, str, float, float, int]) -> dict[str, Any]:
    """A live member on one profile for `seconds`, in hour-long pieces (each a fresh member)."""
    detector, profile, seconds, down_after_s, seed = job
    rng = random.Random(seed)
    pieces = max(1, round(seconds / 3600))
    totals = {"probes": 0, "downs": 0, "suspects": 0}
    last: dict[str, Any] = {}
    for _ in range(pieces):
        last = DETECTORS[detector](LINKS[profile], seconds / pieces, rng, down_after_s)
        for key in totals:
            totals[key] += last[key]
    hours = seconds / 3600
    return {"detector": detector, "profile": profile, "probe_seconds": seconds, "member_hours": round(hours, 1),
            **totals,
            "false_downs_per_1000_member_hours": round(1000 * totals["downs"] / hours, 3),
            "suspect_spells_per_member_hour": round(totals["suspects"] / hours, 3),
            "figures_at_end": {k: last[k] for k in ("rtt_p50_s", "rtt_p99_s", "loss", "deadline_s", "silence_s")
                               if k in last}}


def detection(job: tuple[str, str, str, int, float, int]) -> dict[str, Any]:
    detector, profile, kind, trials, down_after_s, seed = job
    rng = random.Random(seed)
    taken = []
    down_before = 0
    for _ in range(trials):
        died = WARM_UP_S + rng.uniform(0.0, INTERVAL_S)
        result = DETECTORS[detector](LINKS[profile], WARM_UP_S + 60.0, rng, down_after_s,
                          death=(died, _dead(kind, LINKS[profile]), kind))
        assert result["down_at"] is not None, f"{profile}/{kind}: a death was never found"
        taken.append(result["down_at"] - died)
        down_before += result["downs"] > 0
    summary = stats.summary(taken)
    del summary["all_s"]
    # trials whose member was (falsely) Down before it died: their detection counts as instant
    return {"detector": detector, "profile": profile, "death": kind, **summary, "down_before_death": down_before}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^5 probe-seconds and 100 deaths a case")
    parser.add_argument("--probe-seconds", type=float, default=1e7)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--down-after", type=float, default=DOWN_AFTER_S, help="downAfterSeconds")
    args = parser.parse_args()
    seconds, trials = (1e5, 100) if args.quick else (args.probe_seconds, args.trials)
    started = time.perf_counter()
    long_jobs = [(detector, profile, seconds, args.down_after, args.seed + i)
                 for i, (detector, profile) in enumerate((d, p) for d in DETECTORS for p in LINKS)]
    death_jobs = [(detector, profile, kind, trials, args.down_after, args.seed + 100 + i)
                  for i, (detector, profile, kind) in enumerate(
                      (d, p, k) for d in DETECTORS for p in LINKS for k in ("killed", "silent"))]
    with multiprocessing.Pool() as pool:
        live = pool.map(false_downs, long_jobs)
        deaths = pool.map(detection, death_jobs)
    print(json.dumps({
        "method": "pure simulation of samizdat.core.health.link on a fake clock (bench/detector/run.py docstring)",
        "settings": {"probe_interval_s": INTERVAL_S, "probe_timeout_floor_s": FLOOR_S,
                     "down_after_s": args.down_after, "in_flight": IN_FLIGHT, "seed": args.seed},
        "live_members": live, "deaths": deaths, "wall_s": round(time.perf_counter() - started, 1),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
