"""Which rule binds when a workload cannot be placed, and what would make it placeable.

A rule binds when relaxing it alone makes a placement exist. Relaxing means, per spec field:
"replicas": every member that has nodes of the requested kind gets `replicas` more such nodes (more
capacity); "gpu": any product and memory size will do; a max rule: no limit; a min rule: 1; a filter
field: empty (requireTEE: false). A rule that a count over the eligible members already shows short
(too little room, too few jurisdictions) is tried first, as it usually is the one; then the order of
`RELAXATIONS`. The first whose relaxation is placeable is named; when none alone is, the rule a count
shows short is named, else "replicas".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from samizdat.core.placement import capacity, index, problem, search
from samizdat.core.placement.eligibility import Eligibility
from samizdat.core.placement.filters import (
    allowed_jurisdictions,
    cluster_selector,
    denied_alliances,
    denied_jurisdictions,
    gpu_fit,
    probe_rtt,
    tee,
)
from samizdat.core.placement.snapshot import NodeShape, Request, Snapshot

Relaxation = Callable[[Snapshot, Request], tuple[Snapshot, Request] | None]


def _more_capacity(snapshot: Snapshot, request: Request) -> tuple[Snapshot, Request] | None:
    gpu, require_tee = request.gpu, request.rules.require_tee
    members, changed = [], False
    for member in snapshot.members:
        kind = next((shape for shape in member.shapes if capacity.shape_fits(shape, gpu, require_tee)), None)
        if kind is not None:
            extra = NodeShape(kind.product, kind.memory_mib, kind.tee, max(1, gpu.count), request.replicas)
            member = replace(member, shapes=(*member.shapes, extra))
            changed = True
        members.append(member)
    return (replace(snapshot, members=tuple(members)), request) if changed else None


def _any_gpu(snapshot: Snapshot, request: Request) -> tuple[Snapshot, Request] | None:
    if not request.gpu.products and not request.gpu.min_memory_mib:
        return None
    return snapshot, replace(request, gpu=replace(request.gpu, products=frozenset(), min_memory_mib=0))


def _rule(name: str, relaxed: Any) -> Relaxation:
    """Set the `Rules` field `name` to `relaxed`; nothing to relax when it already is."""

    def relax(snapshot: Snapshot, request: Request) -> tuple[Snapshot, Request] | None:
        if getattr(request.rules, name) == relaxed:
            return None
        return snapshot, replace(request, rules=replace(request.rules, **{name: relaxed}))

    return relax


RELAXATIONS: tuple[tuple[str, Relaxation], ...] = (
    ("replicas", _more_capacity),
    (gpu_fit.NAME, _any_gpu),
    ("maxPerCluster", _rule("max_per_cluster", None)),
    ("maxPerJurisdiction", _rule("max_per_jurisdiction", None)),
    ("maxPerAlliance", _rule("max_per_alliance", None)),
    ("maxPerProvider", _rule("max_per_provider", None)),
    ("minJurisdictions", _rule("min_jurisdictions", 1)),
    ("minProviders", _rule("min_providers", 1)),
    (tee.NAME, _rule("require_tee", False)),
    (allowed_jurisdictions.NAME, _rule("allowed_jurisdictions", frozenset())),
    (denied_jurisdictions.NAME, _rule("denied_jurisdictions", frozenset())),
    (denied_alliances.NAME, _rule("denied_alliances", frozenset())),
    (cluster_selector.NAME, _rule("cluster_selector", {})),
    (probe_rtt.NAME, _rule("max_probe_rtt_ms", None)),
)


@dataclass
class _Room:
    """Room of the eligible members (each counted up to `replicas`), in all and per group."""

    total: int = 0
    countries: dict[str, int] = field(default_factory=dict)
    providers: dict[str, int] = field(default_factory=dict)


def _room(snapshot: Snapshot, request: Request) -> _Room:
    eligibility = Eligibility(index.of(snapshot), request)
    room = _Room()
    for member in eligibility.facts.by_name.values():
        if eligibility.rejections(member):
            continue
        here = eligibility.room(member)
        if here > 0:
            room.total += here
            room.countries[member.country] = room.countries.get(member.country, 0) + here
            room.providers[member.provider] = room.providers.get(member.provider, 0) + here
    return room


def binding_rule(snapshot: Snapshot, request: Request) -> tuple[str, str]:
    """The binding rule of an infeasible request and an explanation for humans."""
    room = _room(snapshot, request)
    suspect = _short_count(request, room)
    for rule, relax in sorted(RELAXATIONS, key=lambda entry: entry[0] != suspect):
        relaxed = relax(snapshot, request)
        if relaxed is None:
            continue
        posed = problem.formulate(*relaxed)
        if posed is not None and search.search(posed).flows is not None:
            return rule, _explain(rule, request, snapshot, room)
    rule = suspect or "replicas"
    return rule, f"no single rule change is enough; {_explain(rule, request, snapshot, room)}"


def short_of(snapshot: Snapshot, request: Request, minimum: str) -> str:
    """Why the spread minimum `minimum` ("minJurisdictions" or "minProviders") cannot be met, for a
    degraded decision."""
    return _explain(minimum, request, snapshot, _room(snapshot, request))


def _short_count(request: Request, room: _Room) -> str | None:
    """The first rule that a count over the eligible members alone shows cannot hold, if any."""
    rules, replicas = request.rules, request.replicas
    if room.total < replicas:
        return "replicas"
    if min(len(room.countries), replicas) < rules.min_jurisdictions:
        return "minJurisdictions"
    if min(len(room.providers), replicas) < rules.min_providers:
        return "minProviders"
    if sum(_capped(room.countries, rules.max_per_jurisdiction)) < replicas:
        return "maxPerJurisdiction"
    if sum(_capped(room.providers, rules.max_per_provider)) < replicas:
        return "maxPerProvider"
    return None


def _capped(room: dict[str, int], cap: int | None) -> Iterable[int]:
    return room.values() if cap is None else (min(cap, here) for here in room.values())


def _listed(items: Iterable[str], most: int = 8) -> str:
    names = sorted(items)
    shown = ", ".join(names[:most])
    return shown + (f", … ({len(names)} in all)" if len(names) > most else "") if names else "none"


def _at_most(bound: int, replicas: int) -> str:
    if bound < replicas:
        return f"holds at most {bound} of {replicas} replicas"
    return f"leaves too little room for {replicas} replicas under the other rules"


def _explain(rule: str, request: Request, snapshot: Snapshot, room: _Room) -> str:
    rules, replicas = request.rules, request.replicas
    countries, providers = room.countries, room.providers
    if rule == "replicas":
        return (
            f"needs {replicas} replicas, eligible members have room for {room.total}; "
            f"add nodes that fit {capacity.describe(request)} or lower replicas"
        )
    if rule == gpu_fit.NAME:
        return f"too few nodes fit {capacity.describe(request)}; accept more gpu.products or a lower gpu.minMemoryMiB"
    if rule == "maxPerCluster":
        return f"maxPerCluster {rules.max_per_cluster} {_at_most(room.total, replicas)}; raise it or add members"
    if rule == "maxPerJurisdiction":
        return (
            f"maxPerJurisdiction {rules.max_per_jurisdiction} over {len(countries)} eligible jurisdictions "
            f"({_listed(countries)}) {_at_most(sum(_capped(countries, rules.max_per_jurisdiction)), replicas)}; "
            "raise maxPerJurisdiction or allow more jurisdictions"
        )
    if rule == "maxPerAlliance":
        allied = set().union(*snapshot.alliances.values())
        capped = sorted(name for name, members in snapshot.alliances.items() if members & countries.keys())
        outside = sum(here for country, here in countries.items() if country not in allied)
        return (
            f"maxPerAlliance {rules.max_per_alliance} caps {_listed(capped)}; with room for {outside} outside "
            f"them, {replicas} replicas do not fit; raise maxPerAlliance or allow jurisdictions outside them"
        )
    if rule == "maxPerProvider":
        return (
            f"maxPerProvider {rules.max_per_provider} over {len(providers)} eligible providers "
            f"({_listed(providers)}) {_at_most(sum(_capped(providers, rules.max_per_provider)), replicas)}; "
            "raise maxPerProvider or add providers"
        )
    if rule == "minJurisdictions":
        return _minimum("jurisdictions", rules.min_jurisdictions, countries, "allow more jurisdictions", replicas)
    if rule == "minProviders":
        return _minimum("providers", rules.min_providers, providers, "add members of other providers", replicas)
    if rule == tee.NAME:
        return "requireTEE leaves too little room; add confidential-computing capacity or drop requireTEE"
    if rule == allowed_jurisdictions.NAME:
        return (
            f"allowedJurisdictions ({_listed(rules.allowed_jurisdictions)}) leave too little room; "
            "allow more jurisdictions"
        )
    if rule == denied_jurisdictions.NAME:
        return f"deniedJurisdictions ({_listed(rules.denied_jurisdictions)}) take away needed room; deny fewer"
    if rule == denied_alliances.NAME:
        return f"deniedAlliances ({_listed(rules.denied_alliances)}) take away needed room; deny fewer"
    selector = ", ".join(f"{key}={value}" for key, value in sorted(rules.cluster_selector.items()))
    return f"clusterSelector ({selector}) matches too few members; widen it"


def _minimum(what: str, needed: int, eligible: Iterable[str], remedy: str, replicas: int) -> str:
    names = sorted(eligible)
    if replicas < needed:
        return f"needs {needed} {what} but has only {replicas} replicas; add replicas or lower min{what.capitalize()}"
    if len(names) < needed:
        return (
            f"needs {needed} {what}, only {len(names)} eligible ({_listed(names)}); "
            f"{remedy} or lower min{what.capitalize()}"
        )
    return (
        f"needs {needed} {what}; {len(names)} are eligible ({_listed(names)}) but the other rules "
        f"leave room in fewer; lower min{what.capitalize()} or relax those rules"
    )
