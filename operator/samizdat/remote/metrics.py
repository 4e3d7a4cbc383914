"""samizdat's Prometheus metrics: names, units and labels in one place, and the functions that set them.

Named after the Prometheus guide and kube-state-metrics: `samizdat_<object>_<field>_<unit>`, counters
end in `_total`, durations are in seconds. Labels are bounded by objects a user created (members,
workloads, countries) or by closed sets (phase, failure kind, censorship kind, failover reason).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from samizdat.core import health, model

# Closed label sets, spelled once where they are defined.
PHASES = tuple(phase.value for phase in model.Phase)
CENSORSHIP_KINDS = tuple(kind.value for kind in model.CensorshipKind)
FAILURE_KINDS = tuple(failure.value for failure in health.Failure)
FAILOVER_REASONS = tuple(reason.value for reason in model.FailoverReason)
VIEWS = ("nodes", "pods", "namespaces", "deployments", "jobs")  # what a member's informers list and watch

MEMBER_UP = Gauge("samizdat_member_up", "1 if the last probe of the member's API server succeeded.", ["member"])
MEMBER_PHASE = Gauge("samizdat_member_phase", "1 for the member's current phase, 0 for the others.",
                     ["member", "phase"])
MEMBER_PHASE_CHANGES = Counter("samizdat_member_phase_changes_total",
                               "Times the member entered each phase: Suspect spells, false or true Downs.",
                               ["member", "phase"])
MEMBER_PROBE_DURATION = Histogram(
    "samizdat_member_probe_duration_seconds", "Time one probe of a member's API server took.", ["member"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MEMBER_GPUS = Gauge("samizdat_member_gpus", "Allocatable GPUs on the member's GPU nodes.", ["member"])
MEMBER_GPUS_FREE = Gauge("samizdat_member_gpus_free", "GPUs not requested by any pod on a Ready member.", ["member"])
MEMBER_API_ERRORS = Counter("samizdat_member_api_errors_total", "Failed probes of a member, by failure kind.",
                            ["member", "kind"])
CENSORSHIP_EVENTS = Counter("samizdat_censorship_events_total", "Censorship seen in a member, by kind.",
                            ["member", "kind"])
MEMBERS_QUARANTINED = Gauge("samizdat_members_quarantined", "Members quarantined for censorship.")
WORKLOAD_DESIRED = Gauge("samizdat_workload_replicas_desired", "Replicas the workload asks for (standby included).",
                         ["namespace", "workload"])
WORKLOAD_READY = Gauge("samizdat_workload_replicas_ready", "Replicas of the workload ready in members that count.",
                       ["namespace", "workload"])
WORKLOAD_SERVING = Gauge("samizdat_workload_replicas_serving",
                         "Ready replicas of the workload that serve (selected by its serving Services).",
                         ["namespace", "workload"])
WORKLOAD_STANDBY = Gauge("samizdat_workload_replicas_standby",
                         "Ready warm standbys of the workload: loaded, not serving, promoted in place on a loss.",
                         ["namespace", "workload"])
WORKLOAD_JURISDICTIONS = Gauge("samizdat_workload_jurisdictions", "Countries with at least one replica.",
                               ["namespace", "workload"])
WORKLOAD_JURISDICTIONS_REQUIRED = Gauge("samizdat_workload_jurisdictions_required",
                                        "The workload's minJurisdictions.", ["namespace", "workload"])
WORKLOAD_RULES_SATISFIED = Gauge("samizdat_workload_rules_satisfied", "1 if every placement rule holds.",
                                 ["namespace", "workload"])
WORKLOAD_RULE_VIOLATIONS = Gauge("samizdat_workload_rule_violations", "Placement rules currently broken.",
                                 ["namespace", "workload"])
STARTING_STATES = tuple(state.value for state in model.ReplicaState if state is not model.ReplicaState.READY)
START_CAUSES = tuple(cause.value for cause in model.StartCause)
WORKLOAD_STARTING = Gauge("samizdat_workload_replicas_starting",
                          "Replicas of the workload not Ready yet, by state (Starting, Unscheduled, CannotStart).",
                          ["namespace", "workload", "state"])
REPLICAS_STARVED = Counter("samizdat_replicas_starved_total",
                           "Replicas counted as not placed because they were not Ready within their start "
                           "deadline, by cause.", ["cause"])
JURISDICTION_REPLICAS = Gauge("samizdat_jurisdiction_replicas", "Ready replicas of all workloads per country.",
                              ["country"])
FAILOVERS = Counter("samizdat_failovers_total", "Failovers completed, by reason.", ["reason"])
FAILOVER_DURATION = Histogram(
    "samizdat_failover_duration_seconds",
    "From the loss of a member to the workload's full serving capacity Ready again (a standby promoted, or "
    "replicas moved and loaded elsewhere).",
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120),
)
DECISION_DURATION = Histogram(
    "samizdat_placement_decision_duration_seconds", "Time the placement core took for one decision.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
)
MEMBER_CREDENTIALS_EXPIRY = Gauge(
    "samizdat_member_credentials_expiry_timestamp_seconds",
    "When the token samizdat holds for the member expires (Unix time); renewed before then.", ["member"],
)
CREDENTIAL_RENEWALS = Counter("samizdat_member_credential_renewals_total",
                              "Renewals of a member's token through its TokenRequest API, by result.",
                              ["member", "result"])
EVICTIONS_HALTED = Gauge("samizdat_evictions_halted", "1 while the self-partition guard halts evictions.")
MEMBER_VIEW_ERRORS = Counter(
    "samizdat_member_view_errors_total",
    "Failed lists and watches of a member's views (nodes, pods, namespaces, copies), by failure kind.",
    ["member", "view", "reason"],
)

_countries_by_workload: dict[tuple[str, str], Mapping[str, int]] = {}
_published_countries: set[str] = set()


def serve(port: int, address: str = "0.0.0.0") -> None:
    start_http_server(port, addr=address)


# Counters exist at 0 from the start, so that `increase()` sees their first event too.
for _reason in FAILOVER_REASONS:
    FAILOVERS.labels(_reason)
for _cause in START_CAUSES:
    REPLICAS_STARVED.labels(_cause)


def member_connected(member: str) -> None:
    for kind in CENSORSHIP_KINDS:
        CENSORSHIP_EVENTS.labels(member, kind)
    for kind in FAILURE_KINDS:
        MEMBER_API_ERRORS.labels(member, kind)
        for view in VIEWS:
            MEMBER_VIEW_ERRORS.labels(member, view, kind)


def member_credentials_expire(member: str, expires_at: float) -> None:
    MEMBER_CREDENTIALS_EXPIRY.labels(member).set(expires_at)
    for result in ("renewed", "failed"):
        CREDENTIAL_RENEWALS.labels(member, result)


def credential_renewal(member: str, ok: bool) -> None:
    CREDENTIAL_RENEWALS.labels(member, "renewed" if ok else "failed").inc()


def forget_credentials(member: str) -> None:
    _remove(MEMBER_CREDENTIALS_EXPIRY, member)
    for result in ("renewed", "failed"):
        _remove(CREDENTIAL_RENEWALS, member, result)


def member_probed(member: str, ok: bool, seconds: float, failure: str | None) -> None:
    MEMBER_UP.labels(member).set(1 if ok else 0)
    MEMBER_PROBE_DURATION.labels(member).observe(seconds)
    if not ok:
        MEMBER_API_ERRORS.labels(member, failure or "error").inc()


def member_phase(member: str, phase: str, quarantined_members: int) -> None:
    for each in PHASES:
        MEMBER_PHASE.labels(member, each).set(1 if each == phase else 0)
    MEMBER_PHASE_CHANGES.labels(member, phase).inc()
    MEMBERS_QUARANTINED.set(quarantined_members)


def member_censored(member: str, kind: str) -> None:
    CENSORSHIP_EVENTS.labels(member, kind).inc()


def member_view_failed(member: str, view: str, reason: str) -> None:
    MEMBER_VIEW_ERRORS.labels(member, view, reason).inc()


def member_gpus(member: str, total: int, free: int | None) -> None:
    """`free` is None while the member is not Ready: the series goes, rather than show a stale count."""
    MEMBER_GPUS.labels(member).set(total)
    if free is None:
        _remove(MEMBER_GPUS_FREE, member)
    else:
        MEMBER_GPUS_FREE.labels(member).set(free)


def forget_member(member: str) -> None:
    for gauge in (MEMBER_UP, MEMBER_GPUS, MEMBER_GPUS_FREE):
        _remove(gauge, member)
    for phase in PHASES:
        _remove(MEMBER_PHASE, member, phase)
        _remove(MEMBER_PHASE_CHANGES, member, phase)


def workload_state(
    namespace: str, workload: str, *, desired: int, ready_by_country: Mapping[str, int], serving: int, standby: int,
    jurisdictions: int, required: int, violations: int,
) -> None:
    WORKLOAD_DESIRED.labels(namespace, workload).set(desired)
    WORKLOAD_READY.labels(namespace, workload).set(sum(ready_by_country.values()))
    WORKLOAD_SERVING.labels(namespace, workload).set(serving)
    WORKLOAD_STANDBY.labels(namespace, workload).set(standby)
    WORKLOAD_JURISDICTIONS.labels(namespace, workload).set(jurisdictions)
    WORKLOAD_JURISDICTIONS_REQUIRED.labels(namespace, workload).set(required)
    WORKLOAD_RULES_SATISFIED.labels(namespace, workload).set(0 if violations else 1)
    WORKLOAD_RULE_VIOLATIONS.labels(namespace, workload).set(violations)
    _countries_by_workload[(namespace, workload)] = dict(ready_by_country)
    _publish_countries()


def workload_starting(namespace: str, workload: str, by_state: Mapping[str, int]) -> None:
    for state in STARTING_STATES:
        WORKLOAD_STARTING.labels(namespace, workload, state).set(by_state.get(state, 0))


def replicas_starved(cause: str, replicas: int) -> None:
    REPLICAS_STARVED.labels(cause).inc(replicas)


def forget_workload(namespace: str, workload: str) -> None:
    for state in STARTING_STATES:
        _remove(WORKLOAD_STARTING, namespace, workload, state)
    for gauge in (WORKLOAD_DESIRED, WORKLOAD_READY, WORKLOAD_SERVING, WORKLOAD_STANDBY, WORKLOAD_JURISDICTIONS,
                  WORKLOAD_JURISDICTIONS_REQUIRED, WORKLOAD_RULES_SATISFIED, WORKLOAD_RULE_VIOLATIONS):
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


def _remove(metric: Gauge | Counter, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass  # never set: nothing to forget
