"""The one bridge from samizdat's resources (`samizdat.core.model`) to the placement core's snapshot values.

It lives in `placement` because the layers only let higher packages import lower ones: `model` knows
nothing of placement, and the solver itself never sees a resource, only what is built here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from samizdat.core import jurisdictions, model
from samizdat.core.placement import snapshot

# Why a member in each phase takes no new replicas. Ready members take them; Quarantined is judged
# with its end time in `unschedulable_reason`.
_PHASE_REASONS = {
    model.Phase.PENDING: model.unschedulable(model.Phase.PENDING, "not probed yet"),
    model.Phase.SUSPECT: model.unschedulable(model.Phase.SUSPECT, "failing probes"),
    model.Phase.DOWN: model.unschedulable(model.Phase.DOWN),
}


def unschedulable_reason(member: model.MemberCluster, now: datetime) -> str | None:
    """Why no new replica may land on `member` at `now`, or None when one may.

    Pending, Suspect, Down, cordoned and Quarantined members take none. A quarantine whose
    `quarantinedUntil` has passed counts as lifted even before the health tracker rewrites the phase;
    one without an end time lasts until the phase changes.
    """
    status = member.status
    reasons = ["cordoned"] if member.spec.cordoned else []
    if status.phase in _PHASE_REASONS:
        reasons.append(_PHASE_REASONS[status.phase])
    elif status.phase is model.Phase.QUARANTINED:
        until = status.quarantined_until
        if until is None:
            reasons.append("quarantined")
        elif now < until:
            reasons.append(f"quarantined until {until.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}")
    return "; ".join(reasons) or None


def to_member(member: model.MemberCluster, now: datetime) -> snapshot.MemberInfo:
    """The member as placement sees it at `now` (`now` must be timezone-aware)."""
    spec = member.spec
    return snapshot.MemberInfo(
        name=member.metadata.name,
        country=spec.jurisdiction.country,
        provider=spec.provider,
        region=spec.jurisdiction.region,
        tee=spec.tee,
        cost_per_gpu_hour=spec.cost_per_gpu_hour,
        latency_ms=spec.latency_ms,
        labels=dict(member.metadata.labels),
        shapes=tuple(
            snapshot.NodeShape(
                product=shape.product,
                memory_mib=shape.memory_mib,
                tee=shape.tee,
                free_gpus=shape.free_gpus,
                nodes=shape.nodes,
                tee_observed=shape.tee_observed,
            )
            for shape in member.status.gpu_inventory
        ),
        unschedulable_reason=unschedulable_reason(member, now),
    )


def to_rules(placement: model.PlacementRules) -> snapshot.Rules:
    return snapshot.Rules(
        min_jurisdictions=placement.min_jurisdictions,
        max_per_jurisdiction=placement.max_per_jurisdiction,
        max_per_alliance=placement.max_per_alliance,
        max_per_provider=placement.max_per_provider,
        max_per_cluster=placement.max_per_cluster,
        min_providers=placement.min_providers,
        allowed_jurisdictions=frozenset(placement.allowed_jurisdictions),
        denied_jurisdictions=frozenset(placement.denied_jurisdictions),
        denied_alliances=frozenset(placement.denied_alliances),
        require_tee=placement.require_tee or placement.require_observed_tee,
        require_observed_tee=placement.require_observed_tee,
        cluster_selector=dict(placement.cluster_selector.match_labels),
        max_probe_rtt_ms=placement.max_probe_rtt_ms,
        when_unsatisfiable=placement.when_unsatisfiable,
    )


def to_request(workload: model.AIWorkload, current: Mapping[str, int]) -> snapshot.Request:
    """The placement question for `workload`, given its replicas per member now.

    The solver places serving and standby replicas alike (`AIWorkloadSpec.placed_replicas`): a standby
    replica holds the same weights in the same kind of place, so every rule must hold for it too.
    """
    spec = workload.spec
    return snapshot.Request(
        replicas=spec.placed_replicas,
        gpu=snapshot.GPURequest(
            count=spec.gpu.count,
            products=frozenset(spec.gpu.products),
            min_memory_mib=spec.gpu.min_memory_mib,
        ),
        rules=to_rules(spec.placement),
        current=dict(current),
    )


def to_snapshot(
    members: Iterable[model.MemberCluster], alliances: Iterable[model.Alliance], now: datetime
) -> snapshot.Snapshot:
    """Members at `now`, with the built-in alliances merged with the user's `alliances`."""
    return snapshot.Snapshot(
        members=tuple(to_member(member, now) for member in members),
        alliances=jurisdictions.alliance_table(alliances),
    )
