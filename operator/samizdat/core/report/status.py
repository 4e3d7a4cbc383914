"""An AIWorkload's status, the figures its metrics publish and its failover tally, from one `Result`.

Pure and built only from the result and the view it was decided on: nothing here reads the fleet, so
status never describes a later moment than the decision it reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

from samizdat.core import inventory, manifests, model, placement, starts
from samizdat.core.model import AIWorkloadConditionType as Type
from samizdat.core.placement import from_model
from samizdat.core.report.clock import Tally
from samizdat.core.report.conditions import Observed, merge
from samizdat.core.report.events import Reason, degraded_message, infeasible_message
from samizdat.core.report.result import Result
from samizdat.core.report.view import HeldCopy


class WorkloadGauges(TypedDict):
    """What `metrics.workload_state` publishes about one workload, as its status builder saw it."""

    desired: int
    ready_by_country: dict[str, int]
    serving: int
    standby: int
    jurisdictions: int
    required: int
    violations: int


def build_status(
    workload: model.AIWorkload, result: Result, last_failover: model.Failover | None,
) -> tuple[dict[str, Any], WorkloadGauges]:
    """The workload's status from what its reconcile counted, and the figures its metrics publish; it
    changes nothing, so the caller writes both."""
    now = datetime.now(UTC)
    view = result.view
    generation = workload.metadata.generation
    counted = _counted(result)
    roles = _roles(workload, result, counted)
    placements = tuple(
        model.MemberPlacement(
            cluster=name, jurisdiction=view.specs[name].spec.jurisdiction.country,
            provider=view.specs[name].spec.provider, replicas=copy.desired,
            ready_replicas=min(copy.ready, copy.desired),
            starting=starts.summarise(result.replica_starts.get(name, ())),
            serving_replicas=roles[name][0], standby_replicas=roles[name][1],
        )
        for name, copy in sorted(counted.items()) if name in view.specs
    )
    serving = sum(p.serving_replicas for p in placements)
    standby = sum(p.standby_replicas for p in placements)
    countries = sorted({p.jurisdiction for p in placements})
    replicas = sum(p.replicas for p in placements)
    ready = sum(p.ready_replicas for p in placements)
    wanted = workload.spec.placed_replicas
    actual = {p.cluster: p.replicas for p in placements}
    request = from_model.to_request(workload, actual)
    violations = placement.violations(view.snapshot, request, actual) if replicas or wanted else []
    decision = result.decision
    ready_by_country: dict[str, int] = {}
    for item in placements:
        ready_by_country[item.jurisdiction] = ready_by_country.get(item.jurisdiction, 0) + item.ready_replicas
    gauges = WorkloadGauges(
        desired=wanted, ready_by_country=ready_by_country, serving=serving, standby=standby,
        jurisdictions=len(countries),
        required=workload.spec.placement.min_jurisdictions,
        violations=len(violations) + (1 if decision is not None and not decision.feasible else 0),
    )
    observed = [
        _placed(result, actual),
        _rules(result, violations, replicas, wanted),
        Observed(Type.AVAILABLE, serving >= workload.spec.replicas and (serving > 0 or wanted == 0),
                 "ReplicasReady" if serving >= workload.spec.replicas else "ReplicasNotReady",
                 f"{serving}/{workload.spec.replicas} {_READY_WORDS[workload.spec.mode]}"),
        _degraded(result, ready, wanted),
    ]
    message = infeasible_message(decision) if decision is not None and not decision.feasible else (
        result.halted or f"{ready}/{wanted} ready in {len(countries)} jurisdiction(s): {', '.join(countries)}"
    )
    status = model.AIWorkloadStatus(
        conditions=merge(_previous_conditions(workload), observed, now, generation),
        placements=placements, jurisdictions=len(countries), jurisdiction_list=tuple(countries),
        replicas=replicas, ready_replicas=ready, serving_replicas=serving, standby_replicas=standby,
        endpoints=_endpoints(result, placements), last_failover=last_failover,
        observed_generation=generation, message=message,
    )
    return status.model_dump(mode="json", by_alias=True, exclude_none=True), gauges


def tally(workload: model.AIWorkload, result: Result, now: float) -> Tally:
    """One reconcile as the failover clock reads it, at monotonic time `now`, with its serving replicas
    counted by their pods' role labels (ground truth in the members)."""
    counted = _counted(result)
    serving = sum(serving for serving, _ in _roles(workload, result, counted).values())
    ready = sum(min(copy.ready, copy.desired) for copy in counted.values())
    decision = result.decision
    return Tally(result.lost, result.converged, ready, workload.spec.placed_replicas, now,
                 room=decision is None or decision.feasible,  # None: evictions halted, not a lack of room
                 serving=serving, serving_wanted=workload.spec.serving_replicas)


def _counted(result: Result) -> dict[str, HeldCopy]:
    """The workload's copies that count and hold replicas."""
    return {name: copy for name, copy in result.view.counted.items() if copy.desired > 0}


def _roles(workload: model.AIWorkload, result: Result, counted: Mapping[str, HeldCopy]) -> dict[str, tuple[int, int]]:
    """Ready (serving, standby) replicas per counted member, by their pods' role labels as our writes
    left them. Every ready replica of a training run serves."""
    if workload.spec.mode is not model.Mode.SERVE:
        return {name: (min(copy.ready, copy.desired), 0) for name, copy in counted.items()}
    relabelled = {(label.member, label.pod): label.role for label in result.relabelled}
    roles = {}
    for name, copy in counted.items():
        ready = [pod for pod in result.view.pods.get(name, ()) if inventory.pod_ready(pod)]
        serving = sum(1 for pod in ready if _serving(pod, relabelled.get((name, pod["metadata"]["name"]))))
        roles[name] = (min(serving, copy.desired), min(len(ready) - serving, copy.desired))
    return roles


def _serving(pod: Mapping[str, Any], relabelled: str | None) -> bool:
    return relabelled == manifests.SERVING if relabelled is not None else manifests.is_serving(pod)


def _endpoints(result: Result, placements: tuple[model.MemberPlacement, ...]) -> tuple[model.Endpoint, ...]:
    """Where clients reach the serving replicas: members that count and have a ready serving replica."""
    endpoints = []
    for item in placements:
        if item.serving_replicas <= 0:
            continue
        service = result.exposed.get(item.cluster) or result.view.services.get(item.cluster)
        host = result.view.hosts.get(item.cluster)
        spec = service.get("spec", {}) if service is not None else {}
        node_ports = [port["nodePort"] for port in spec.get("ports", []) if port.get("nodePort")]
        endpoints.append(model.Endpoint(
            cluster=item.cluster, jurisdiction=item.jurisdiction, ready_replicas=item.serving_replicas,
            addresses=tuple(f"{host}:{port}" for port in node_ports) if host else (),
            service=f"{service['metadata']['name']}.{manifests.WORKLOAD_NAMESPACE}" if service is not None else None,
            cluster_ip=spec.get("clusterIP"),
        ))
    return tuple(endpoints)


_READY_WORDS = {model.Mode.SERVE: "serving replicas ready", model.Mode.TRAIN: "training replicas running or done"}


def _previous_conditions(workload: model.AIWorkload) -> tuple[model.Condition[Type], ...]:
    return workload.status.conditions if workload.status is not None else ()


def _camel(rule: str | None) -> str:
    return (rule[:1].upper() + rule[1:]) if rule else Reason.INFEASIBLE


def _placed(result: Result, actual: dict[str, int]) -> Observed[Type]:
    decision = result.decision
    if result.halted:
        return Observed(Type.PLACED, bool(actual), Reason.EVICTIONS_HALTED, result.halted)
    assert decision is not None
    if not decision.feasible:
        return Observed(Type.PLACED, False, _camel(decision.binding_rule), infeasible_message(decision))
    if result.failures:
        return Observed(Type.PLACED, False, Reason.APPLY_FAILED,
                        "; ".join(f"{m}: {e}" for m, e in result.failures.items()))
    done = actual == {m: r for m, r in decision.assignments.items() if r > 0}
    where = ", ".join(f"{m}={r}" for m, r in sorted(decision.assignments.items()))
    return Observed(Type.PLACED, done, Reason.PLACED if done else "Placing", where or "no replicas")


def _rules(result: Result, violations: list[placement.Violation], replicas: int, wanted: int) -> Observed[Type]:
    decision = result.decision
    if decision is not None and not decision.feasible:
        return Observed(Type.RULES_SATISFIED, False, _camel(decision.binding_rule), infeasible_message(decision))
    given_up = {shortfall.rule for shortfall in decision.shortfalls} if decision is not None else set()
    if decision is not None and given_up and all(v.rule in given_up for v in violations):
        # only what the decision gives up is broken: no limit is
        return Observed(Type.RULES_SATISFIED, False, Reason.SPREAD_DEGRADED, degraded_message(decision))
    if violations:
        return Observed(Type.RULES_SATISFIED, False, "RuleViolated", "; ".join(str(v) for v in violations))
    if replicas < wanted:
        return Observed(Type.RULES_SATISFIED, False, "ReplicasMissing", f"{replicas}/{wanted} replicas placed")
    return Observed(Type.RULES_SATISFIED, True, "AllRulesHold", "every placement rule holds")


def _degraded(result: Result, ready: int, wanted: int) -> Observed[Type]:
    if result.halted:
        return Observed(Type.DEGRADED, True, Reason.EVICTIONS_HALTED, result.halted)
    if result.lost:
        return Observed(Type.DEGRADED, True, Reason.MEMBER_LOST,
                        "; ".join(f"{m}: {loss.why}" for m, loss in result.lost.items()))
    if result.starved:
        return Observed(Type.DEGRADED, True, Reason.START_DEADLINE_EXCEEDED,
                        "; ".join(f"{m}: {v.evidence}" for m, v in sorted(result.starved.items())))
    if ready < wanted:
        return Observed(Type.DEGRADED, True, "ReplicasNotReady", f"{ready}/{wanted} ready")
    if result.decision is not None and result.decision.degraded:
        return Observed(Type.DEGRADED, True, Reason.SPREAD_DEGRADED, degraded_message(result.decision))
    return Observed(Type.DEGRADED, False, "AsDesired", "all replicas ready")
