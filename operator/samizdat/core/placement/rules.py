"""The hard rules as a checker: `violations` lists every way a placement breaks them, as values.

Written straight from the spec, sharing nothing with the search but the filter plugins and the capacity
function, so that the solver's own output is checked by a second, simpler reading of the rules before
it leaves the package (and by the tests, which also have their own).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from samizdat.core.placement import capacity, framework, index
from samizdat.core.placement.filters import FILTERS
from samizdat.core.placement.snapshot import Request, Snapshot


@dataclass(frozen=True, slots=True)
class Violation:
    """One breach of a hard rule. `rule` is the spec field broken, as users write it (`maxPerJurisdiction`,
    `minJurisdictions`, the names `decision.Shortfall.rule` uses), or one of the checks no field names:
    `replicas`, `membership`, `eligibility`, `capacity`; `member` is the one member at fault, when there is
    one. `str()` is the text users read."""

    rule: str
    detail: str
    member: str | None = None

    def __str__(self) -> str:
        return f"{self.member if self.member is not None else self.rule}: {self.detail}"


def violations(snapshot: Snapshot, request: Request, assignments: Mapping[str, int]) -> list[Violation]:
    """Breaches of the hard rules by `assignments` (member -> replicas); [] if none."""
    rules = request.rules
    found: list[Violation] = []
    expected = max(0, request.replicas)
    placed = sum(assignments.values())
    if placed != expected:
        found.append(Violation("replicas", f"{placed} placed, {expected} requested"))
    members = index.of(snapshot).by_name
    context = framework.context(snapshot, request)
    per_country: Counter[str] = Counter()
    per_provider: Counter[str] = Counter()
    for name, replicas in sorted(assignments.items()):
        member = members.get(name)
        if member is None:
            found.append(Violation("membership", "not a member of the snapshot", name))
            continue
        if replicas <= 0:
            found.append(Violation("replicas", f"{replicas} replicas listed", name))
            continue
        reasons = [reason for plugin in FILTERS for reason in plugin.filter(member, context).reasons]
        if reasons:
            found.append(Violation("eligibility", f"not eligible ({'; '.join(reasons)})", name))
        current = max(0, request.current.get(name, 0))
        room = current + capacity.new_replicas(member, request.gpu, rules.require_tee, ceiling=replicas)
        if replicas > room:
            found.append(Violation("capacity", f"{replicas} replicas, capacity {room}", name))
        if rules.max_per_cluster is not None and replicas > rules.max_per_cluster:
            found.append(Violation("maxPerCluster", f"{name} has {replicas} > {rules.max_per_cluster}"))
        per_country[member.country] += replicas
        per_provider[member.provider] += replicas
    found += _over("maxPerJurisdiction", per_country, rules.max_per_jurisdiction)
    found += _over("maxPerProvider", per_provider, rules.max_per_provider)
    if rules.max_per_alliance is not None:
        per_alliance = Counter(
            {name: sum(per_country[country] for country in countries) for name, countries in snapshot.alliances.items()}
        )
        found += _over("maxPerAlliance", per_alliance, rules.max_per_alliance)
    if expected:
        if len(per_country) < rules.min_jurisdictions:
            found.append(Violation("minJurisdictions", f"{len(per_country)} < {rules.min_jurisdictions}"))
        if len(per_provider) < rules.min_providers:
            found.append(Violation("minProviders", f"{len(per_provider)} < {rules.min_providers}"))
    return found


def _over(rule: str, totals: Counter[str], limit: int | None) -> list[Violation]:
    if limit is None:
        return []
    return [Violation(rule, f"{key} has {total} > {limit}") for key, total in sorted(totals.items()) if total > limit]
