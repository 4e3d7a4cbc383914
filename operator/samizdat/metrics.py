"""samizdat's Prometheus metrics: names, units and labels in one place, and the functions that set them.

Named after the Prometheus guide and kube-state-metrics: `samizdat_<object>_<field>_<unit>`, counters
end in `_total`, durations are in seconds. Labels are bounded by objects a user created (members,
workloads, countries) or by closed sets (phase, failure kind, censorship kind, failover reason).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from samizdat import health, model

# Closed label sets, spelled once where they are defined.
PHASES = tuple(phase.value for phase in model.Phase)
CENSORSHIP_KINDS = tuple(kind.value for kind in model.CensorshipKind)
FAILURE_KINDS = tuple(failure.value for failure in health.Failure)
FAILOVER_REASONS = tuple(reason.value for reason in model.FailoverReason)

MEMBER_UP = Gauge("samizdat_member_up", "1 if the last probe of the member's API server succeeded.", ["member"])
MEMBER_PHASE = Gauge("samizdat_member_phase", "1 for the member's current phase, 0 for the others.",
                     ["member", "phase"])
MEMBER_PROBE_DURATION = Histogram(
    "samizdat_member_probe_duration_seconds", "Time one probe of a member's API server took.", ["member"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MEMBER_GPUS = Gauge("samizdat_member_gpus", "Allocatable GPUs on the member's GPU nodes.", ["member"])
MEMBER_GPUS_FREE = Gauge("samizdat_member_gpus_free", "GPUs not requested by any pod on the member.", ["member"])
MEMBER_API_ERRORS = Counter("samizdat_member_api_errors_total", "Failed probes of a member, by failure kind.",
                            ["member", "kind"])
CENSORSHIP_EVENTS = Counter("samizdat_censorship_events_total", "Censorship seen in a member, by kind.",
                            ["member", "kind"])
MEMBERS_QUARANTINED = Gauge("samizdat_members_quarantined", "Members quarantined for censorship.")
WORKLOAD_DESIRED = Gauge("samizdat_workload_replicas_desired", "Replicas the workload asks for (standby included).",
                         ["namespace", "workload"])
WORKLOAD_READY = Gauge("samizdat_workload_replicas_ready", "Replicas of the workload ready in members that count.",
                       ["namespace", "workload"])
WORKLOAD_JURISDICTIONS = Gauge("samizdat_workload_jurisdictions", "Countries with at least one replica.",
                               ["namespace", "workload"])
WORKLOAD_JURISDICTIONS_REQUIRED = Gauge("samizdat_workload_jurisdictions_required",
                                        "The workload's minJurisdictions.", ["namespace", "workload"])
WORKLOAD_RULES_SATISFIED = Gauge("samizdat_workload_rules_satisfied", "1 if every placement rule holds.",
                                 ["namespace", "workload"])
WORKLOAD_RULE_VIOLATIONS = Gauge("samizdat_workload_rule_violations", "Placement rules currently broken.",
                                 ["namespace", "workload"])
JURISDICTION_REPLICAS = Gauge("samizdat_jurisdiction_replicas", "Ready replicas of all workloads per country.",
                              ["country"])
FAILOVERS = Counter("samizdat_failovers_total", "Failovers completed, by reason.", ["reason"])
FAILOVER_DURATION = Histogram(
    "samizdat_failover_duration_seconds", "From the loss of a member to every moved replica ready elsewhere.",
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120),
)
DECISION_DURATION = Histogram(
    "samizdat_placement_decision_duration_seconds", "Time the placement core took for one decision.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
)
EVICTIONS_HALTED = Gauge("samizdat_evictions_halted", "1 while the self-partition guard halts evictions.")

_countries_by_workload: dict[tuple[str, str], Mapping[str, int]] = {}
_published_countries: set[str] = set()


def serve(port: int, address: str = "0.0.0.0") -> None:
    start_http_server(port, addr=address)


# Counters exist at 0 from the start, so that `increase()` sees their first event too.
for _reason in FAILOVER_REASONS:
    FAILOVERS.labels(_reason)


def member_connected(member: str) -> None:
    for kind in CENSORSHIP_KINDS:
        CENSORSHIP_EVENTS.labels(member, kind)
    for kind in FAILURE_KINDS:
        MEMBER_API_ERRORS.labels(member, kind)


def member_probed(member: str, ok: bool, seconds: float, failure: str | None) -> None:
    MEMBER_UP.labels(member).set(1 if ok else 0)
    MEMBER_PROBE_DURATION.labels(member).observe(seconds)
    if not ok:
        MEMBER_API_ERRORS.labels(member, failure or "error").inc()


def member_phase(member: str, phase: str, quarantined_members: int) -> None:
    for each in PHASES:
        MEMBER_PHASE.labels(member, each).set(1 if each == phase else 0)
    MEMBERS_QUARANTINED.set(quarantined_members)


def member_censored(member: str, kind: str) -> None:
    CENSORSHIP_EVENTS.labels(member, kind).inc()


def member_gpus(member: str, total: int, free: int) -> None:
    MEMBER_GPUS.labels(member).set(total)
    MEMBER_GPUS_FREE.labels(member).set(free)


def forget_member(member: str) -> None:
    for gauge in (MEMBER_UP, MEMBER_GPUS, MEMBER_GPUS_FREE):
        _remove(gauge, member)
    for phase in PHASES:
        _remove(MEMBER_PHASE, member, phase)


def workload_state(
    namespace: str, workload: str, *, desired: int, ready_by_country: Mapping[str, int], jurisdictions: int,
    required: int, violations: int,
) -> None:
    WORKLOAD_DESIRED.labels(namespace, workload).set(desired)
    WORKLOAD_READY.labels(namespace, workload).set(sum(ready_by_country.values()))
    WORKLOAD_JURISDICTIONS.labels(namespace, workload).set(jurisdictions)
    WORKLOAD_JURISDICTIONS_REQUIRED.labels(namespace, workload).set(required)
    WORKLOAD_RULES_SATISFIED.labels(namespace, workload).set(0 if violations else 1)
    WORKLOAD_RULE_VIOLATIONS.labels(namespace, workload).set(violations)
    _countries_by_workload[(namespace, workload)] = dict(ready_by_country)
    _publish_countries()


def forget_workload(namespace: str, workload: str) -> None:
    for gauge in (WORKLOAD_DESIRED, WORKLOAD_READY, WORKLOAD_JURISDICTIONS, WORKLOAD_JURISDICTIONS_REQUIRED,
                  WORKLOAD_RULES_SATISFIED, WORKLOAD_RULE_VIOLATIONS):
        _remove(gauge, namespace, workload)
    _countries_by_workload.pop((namespace, workload), None)
    _publish_countries()


def _publish_countries() -> None:
    totals: Tally[str] = Tally()
    for per_country in _countries_by_workload.values():
        totals.update(per_country)
    for country in _published_countries - set(totals):
        _remove(JURISDICTION_REPLICAS, country)
    _published_countries.clear()
    _published_countries.update(totals)
    for country, replicas in totals.items():
        JURISDICTION_REPLICAS.labels(country).set(replicas)


def failover_done(reason: str, seconds: float) -> None:
    FAILOVERS.labels(reason).inc()
    FAILOVER_DURATION.observe(seconds)


def decision_took(seconds: float) -> None:
    DECISION_DURATION.observe(seconds)


def evictions_halted(halted: bool) -> None:
    EVICTIONS_HALTED.set(1 if halted else 0)


def _remove(metric: Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass  # never set: nothing to forget
