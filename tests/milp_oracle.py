"""An exact MILP oracle for placement (HiGHS), and an independent rule checker: for tests and bench only.

Nothing here imports the solver's modules beyond the snapshot values: eligibility, capacity and the
rules are read again from the spec, so that the solver is checked against a second reading.

The model: an integer x_m per member (0..room), a binary y_c per country and z_p per provider that may
be 1 only if the country/provider holds a replica (sum x >= y), sum x = replicas, every max rule as a
row (every alliance of the table for maxPerAlliance), sum y >= minJurisdictions, sum z >= minProviders.
The objective maximises kept replicas k_m <= min(x_m, current_m), the solver's first preference.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import highspy
import numpy as np

from samizdat.placement.snapshot import NodeShape, Request, Snapshot

RULES = (
    "replicas",
    "gpu",
    "maxPerCluster",
    "maxPerJurisdiction",
    "maxPerAlliance",
    "maxPerProvider",
    "minJurisdictions",
    "minProviders",
    "requireTEE",
    "allowedJurisdictions",
    "deniedJurisdictions",
    "deniedAlliances",
    "clusterSelector",
)


@dataclass(frozen=True)
class Answer:
    feasible: bool
    assignments: dict[str, int]
    kept: int
    seconds: float


def room(snapshot: Snapshot, request: Request) -> dict[str, int]:
    """Replicas each member may hold for this request (0 when any eligibility rule rejects it)."""
    rules, gpu, replicas = request.rules, request.gpu, max(0, request.replicas)
    banned: set[str] = set()
    for name in rules.denied_alliances:
        banned |= snapshot.alliances.get(name, frozenset())
    result = {}
    for member in snapshot.members:
        eligible = (
            member.unschedulable_reason is None
            and (not rules.allowed_jurisdictions or member.country in rules.allowed_jurisdictions)
            and member.country not in rules.denied_jurisdictions
            and member.country not in banned
            and (member.tee or not rules.require_tee)
            and all(member.labels.get(key) == value for key, value in rules.cluster_selector.items())
        )
        if not eligible:
            result[member.name] = 0
            continue
        if gpu.count < 1:
            fits = replicas
        else:
            fits = sum(
                shape.nodes * (shape.free_gpus // gpu.count)
                for shape in member.shapes
                if (not gpu.products or shape.product in gpu.products)
                and shape.memory_mib >= gpu.min_memory_mib
                and (shape.tee or not rules.require_tee)
                and shape.nodes > 0
            )
        limit = max(0, request.current.get(member.name, 0)) + fits
        if rules.max_per_cluster is not None:
            limit = min(limit, rules.max_per_cluster)
        result[member.name] = max(0, min(limit, replicas))
    return result


def check(snapshot: Snapshot, request: Request, assignments: Mapping[str, int]) -> list[str]:
    """The rules `assignments` breaks, by spec field name (empty: it keeps them all)."""
    rules = request.rules
    broken = []
    limits = room(snapshot, request)
    by_name = {member.name: member for member in snapshot.members}
    if sum(assignments.values()) != max(0, request.replicas) or any(n <= 0 for n in assignments.values()):
        broken.append("replicas")
    if any(name not in by_name or n > limits[name] for name, n in assignments.items()):
        broken.append("capacity")
    countries: dict[str, int] = {}
    providers: dict[str, int] = {}
    for name, n in assignments.items():
        if name in by_name:
            countries[by_name[name].country] = countries.get(by_name[name].country, 0) + n
            providers[by_name[name].provider] = providers.get(by_name[name].provider, 0) + n
    if rules.max_per_jurisdiction is not None and any(n > rules.max_per_jurisdiction for n in countries.values()):
        broken.append("maxPerJurisdiction")
    if rules.max_per_provider is not None and any(n > rules.max_per_provider for n in providers.values()):
        broken.append("maxPerProvider")
    if rules.max_per_alliance is not None and any(
        sum(countries.get(c, 0) for c in members) > rules.max_per_alliance for members in snapshot.alliances.values()
    ):
        broken.append("maxPerAlliance")
    if request.replicas > 0 and len(countries) < rules.min_jurisdictions:
        broken.append("minJurisdictions")
    if request.replicas > 0 and len(providers) < rules.min_providers:
        broken.append("minProviders")
    return broken


def solve(snapshot: Snapshot, request: Request) -> Answer:
    """The oracle's answer: feasibility, one optimal placement and the most replicas it can keep."""
    started = time.perf_counter()
    replicas, rules = max(0, request.replicas), request.rules
    if replicas == 0:
        return Answer(True, {}, 0, time.perf_counter() - started)
    limits = room(snapshot, request)
    members = [member for member in snapshot.members if limits[member.name] > 0]
    if not members:
        return Answer(False, {}, 0, time.perf_counter() - started)
    countries = sorted({member.country for member in members})
    providers = sorted({member.provider for member in members})
    n = len(members)
    # columns: x (n), kept (n), y (countries), z (providers)
    x0, k0, y0, z0 = 0, n, 2 * n, 2 * n + len(countries)
    columns = z0 + len(providers)
    keep = [min(max(0, request.current.get(m.name, 0)), limits[m.name]) for m in members]
    lower = np.zeros(columns)
    upper = np.array(
        [limits[m.name] for m in members] + keep + [1.0] * (len(countries) + len(providers)), dtype=float
    )
    cost = np.array([0.0] * n + [-1.0] * n + [0.0] * (len(countries) + len(providers)))
    rows: list[tuple[float, float, list[int], list[float]]] = []
    rows.append((replicas, replicas, list(range(n)), [1.0] * n))
    for index in range(n):
        rows.append((-np.inf, 0.0, [k0 + index, x0 + index], [1.0, -1.0]))
    by_country: dict[str, list[int]] = {}
    by_provider: dict[str, list[int]] = {}
    for index, m in enumerate(members):
        by_country.setdefault(m.country, []).append(index)
        by_provider.setdefault(m.provider, []).append(index)
    for groups, base, cap, minimum in (
        (by_country, y0, rules.max_per_jurisdiction, rules.min_jurisdictions),
        (by_provider, z0, rules.max_per_provider, rules.min_providers),
    ):
        keys = sorted(groups)
        for offset, key in enumerate(keys):
            inside = groups[key]
            if cap is not None:
                rows.append((-np.inf, cap, inside, [1.0] * len(inside)))
            rows.append((0.0, np.inf, [*inside, base + offset], [1.0] * len(inside) + [-1.0]))
        rows.append((minimum, np.inf, [base + offset for offset in range(len(keys))], [1.0] * len(keys)))
    if rules.max_per_alliance is not None:
        for alliance in snapshot.alliances.values():
            inside = [i for country in sorted(alliance) for i in by_country.get(country, ())]
            if inside:
                rows.append((-np.inf, rules.max_per_alliance, inside, [1.0] * len(inside)))

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    empty_int = np.array([], dtype=np.int32)
    highs.addCols(columns, cost, lower, upper, 0, empty_int, empty_int, np.array([]))
    starts, indices, values = [], [], []
    for _, _, columns_of_row, coefficients in rows:
        starts.append(len(indices))
        indices += columns_of_row
        values += coefficients
    highs.addRows(
        len(rows),
        np.array([row[0] for row in rows], dtype=float),
        np.array([row[1] for row in rows], dtype=float),
        len(indices),
        np.array(starts, dtype=np.int32),
        np.array(indices, dtype=np.int32),
        np.array(values, dtype=float),
    )
    integer = [*range(n), *range(y0, columns)]
    highs.changeColsIntegrality(len(integer), np.array(integer, dtype=np.int32), np.ones(len(integer), dtype=np.uint8))
    highs.run()
    status = highs.getModelStatus()
    seconds = time.perf_counter() - started
    if status != highspy.HighsModelStatus.kOptimal:
        if status != highspy.HighsModelStatus.kInfeasible:
            raise RuntimeError(f"oracle: unexpected status {highs.modelStatusToString(status)}")
        return Answer(False, {}, 0, seconds)
    values_out = highs.getSolution().col_value
    placed = {m.name: round(values_out[x0 + i]) for i, m in enumerate(members) if round(values_out[x0 + i]) > 0}
    kept = sum(min(placed.get(m.name, 0), keep[i]) for i, m in enumerate(members))
    return Answer(True, placed, kept, seconds)


def relax(snapshot: Snapshot, request: Request, rule: str) -> tuple[Snapshot, Request]:
    """The instance with one rule relaxed, as `samizdat.placement.binding` documents relaxing."""
    rules, gpu = request.rules, request.gpu
    if rule == "replicas":
        members = []
        for member in snapshot.members:
            kind = next(
                (
                    s
                    for s in member.shapes
                    if (not gpu.products or s.product in gpu.products)
                    and s.memory_mib >= gpu.min_memory_mib
                    and (s.tee or not rules.require_tee)
                ),
                None,
            )
            if kind is not None:
                extra = NodeShape(kind.product, kind.memory_mib, kind.tee, max(1, gpu.count), request.replicas)
                member = replace(member, shapes=(*member.shapes, extra))
            members.append(member)
        return replace(snapshot, members=tuple(members)), request
    if rule == "gpu":
        return snapshot, replace(request, gpu=replace(gpu, products=frozenset(), min_memory_mib=0))
    field, value = {
        "maxPerCluster": ("max_per_cluster", None),
        "maxPerJurisdiction": ("max_per_jurisdiction", None),
        "maxPerAlliance": ("max_per_alliance", None),
        "maxPerProvider": ("max_per_provider", None),
        "minJurisdictions": ("min_jurisdictions", 1),
        "minProviders": ("min_providers", 1),
        "requireTEE": ("require_tee", False),
        "allowedJurisdictions": ("allowed_jurisdictions", frozenset()),
        "deniedJurisdictions": ("denied_jurisdictions", frozenset()),
        "deniedAlliances": ("denied_alliances", frozenset()),
        "clusterSelector": ("cluster_selector", {}),
    }[rule]
    return snapshot, replace(request, rules=replace(rules, **{field: value}))
