"""Why each member got no replica, or no more: the per-member half of a decision's explanation.

Worked out when first read, not when decided: a failover storm makes thousands of decisions that
nobody reads member by member, and a thousand members' reasons cost more than the decision itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping

from samizdat.core.placement import index
from samizdat.core.placement.eligibility import Eligibility
from samizdat.core.placement.snapshot import MemberInfo, Request, Snapshot


class Diagnosis(Mapping[str, tuple[str, ...]]):
    """Member name -> reasons, for every member that is unused or at a limit.

    `assignments` is None for an infeasible decision. The mapping is a value like the decision that
    holds it: its content depends only on the arguments, it is merely computed late, once.
    """

    def __init__(self, snapshot: Snapshot, request: Request, assignments: Mapping[str, int] | None) -> None:
        self._snapshot, self._request, self._assignments = snapshot, request, assignments
        self._reasons: dict[str, tuple[str, ...]] | None = None

    def _all(self) -> dict[str, tuple[str, ...]]:
        if self._reasons is None:
            self._reasons = _diagnose(self._snapshot, self._request, self._assignments)
        return self._reasons

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"Diagnosis({self._all()!r})"


def _diagnose(
    snapshot: Snapshot, request: Request, assignments: Mapping[str, int] | None
) -> dict[str, tuple[str, ...]]:
    rules = request.rules
    eligibility = Eligibility(index.of(snapshot), request)
    facts = eligibility.facts
    placed = assignments or {}
    per_country: Counter[str] = Counter()
    per_provider: Counter[str] = Counter()
    for name, replicas in placed.items():
        per_country[facts.by_name[name].country] += replicas
        per_provider[facts.by_name[name].provider] += replicas
    full = _full_groups(snapshot, request, per_country, per_provider)
    diagnosis: dict[str, tuple[str, ...]] = {}
    for name, member in facts.by_name.items():
        rejected = eligibility.rejections(member)
        if rejected:
            diagnosis[name] = rejected
            continue
        room = eligibility.room(member)
        replicas = placed.get(name, 0)
        if request.replicas <= 0:
            diagnosis[name] = ("not needed: replicas 0",)
        elif room <= 0:
            diagnosis[name] = (f"maxPerCluster {rules.max_per_cluster}",)
        elif assignments is None:
            diagnosis[name] = (f"eligible (capacity {room}) but no placement keeps every rule",)
        elif rules.max_per_cluster is not None and replicas >= rules.max_per_cluster:
            diagnosis[name] = (f"maxPerCluster {rules.max_per_cluster}",)
        elif replicas and replicas == room < request.replicas:
            diagnosis[name] = (f"capacity {replicas}",)
        else:
            reasons = full.get(("country", member.country), ()) + full.get(("provider", member.provider), ())
            if replicas == 0 and not reasons:
                reasons = (_not_selected(member),)
            if reasons:
                diagnosis[name] = reasons
    return diagnosis


def _not_selected(member: MemberInfo) -> str:
    return (
        f"not selected: others preferred (cost {member.cost_per_gpu_hour:g}/GPU-h, latency {member.latency_ms:g} ms)"
    )


def _full_groups(
    snapshot: Snapshot, request: Request, per_country: Counter[str], per_provider: Counter[str]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """("country" or "provider", key) -> why members there can take no more: the groups at their cap."""
    rules = request.rules
    reasons: dict[tuple[str, str], list[str]] = {}
    if rules.max_per_jurisdiction is not None:
        for country, replicas in per_country.items():
            if replicas >= rules.max_per_jurisdiction:
                reasons.setdefault(("country", country), []).append(
                    f"jurisdiction {country} full (maxPerJurisdiction {rules.max_per_jurisdiction})"
                )
    if rules.max_per_provider is not None:
        for provider, replicas in per_provider.items():
            if replicas >= rules.max_per_provider:
                reasons.setdefault(("provider", provider), []).append(
                    f"provider {provider} full (maxPerProvider {rules.max_per_provider})"
                )
    if rules.max_per_alliance is not None:
        for name, countries in sorted(snapshot.alliances.items()):
            if sum(per_country[country] for country in countries) >= rules.max_per_alliance:
                for country in sorted(countries):
                    reasons.setdefault(("country", country), []).append(
                        f"alliance {name} full (maxPerAlliance {rules.max_per_alliance})"
                    )
    return {key: tuple(found) for key, found in reasons.items()}
