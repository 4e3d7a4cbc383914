"""An exact MILP oracle for placement (HiGHS), and an independent rule checker: for tests and bench only.

Nothing here imports the solver's modules beyond the snapshot values: eligibility, capacity and the
rules are read again from the spec, so that the solver is checked against a second reading.

The model: an integer x_m per member (0..room), a binary y_c per country and z_p per provider that may
be 1 only if the country/provider holds a replica (sum x >= y), sum x = replicas, every max rule as a
row (every alliance of the table for maxPerAlliance), sum y >= minJurisdictions, sum z >= minProviders.
`solve` maximises kept replicas k_m <= min(x_m, current_m), the solver's first preference: enough to
check feasibility and stability, and quick. `solve_exact` optimises the solver's whole lexicographic
objective (kept replicas, spread, then the soft preferences): the same problem the solver solves.

With `whenUnsatisfiable: ScheduleAnyway` the minimums are objectives, not rows: columns
t_J <= minJurisdictions, t_J <= sum y and t_P <= minProviders, t_P <= sum z are maximised first, in
that order, before every other objective: every replica under the limits, then the most jurisdictions
up to the minimum, then the most providers up to theirs, then the usual objective. When the minimums
can be met this is the strict problem's optimum, so the same models serve both modes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import highspy
import numpy as np

from samizdat.core.model import WhenUnsatisfiable
from samizdat.core.placement.snapshot import MemberInfo, NodeShape, Request, Snapshot

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


def preference_parts(snapshot: Snapshot) -> dict[str, tuple[int, int, int]]:
    """Per member, what the solver's soft preferences sum per replica, read again from the spec: the cost
    and latency gaps to the best member (both normalised to 0..100 over the fleet), then the name rank."""
    def gaps(values: dict[str, float]) -> dict[str, int]:
        low, high = min(values.values()), max(values.values())
        if high == low:
            return dict.fromkeys(values, 0)
        return {name: 100 - round(100 * (high - value) / (high - low)) for name, value in values.items()}

    cost = gaps({m.name: m.cost_per_gpu_hour for m in snapshot.members})
    latency = gaps({m.name: m.latency_ms for m in snapshot.members})
    ranks = {name: rank for rank, name in enumerate(sorted(m.name for m in snapshot.members))}
    return {name: (cost[name], latency[name], ranks[name]) for name in ranks}


def degrades(request: Request) -> bool:
    """Whether the request's spread minimums are objectives rather than rules (see the module doc)."""
    return request.rules.when_unsatisfiable is WhenUnsatisfiable.SCHEDULE_ANYWAY


def score(snapshot: Snapshot, request: Request, assignments: Mapping[str, int]) -> tuple[int, ...]:
    """The solver's lexicographic objective of a placement, lower is better: (-jurisdictions and
    -providers, each counted up to its minimum, -kept replicas, spread, cost gaps, latency gaps, name
    ranks), spread being the pairs of replicas sharing a country or a provider. (A placement that keeps
    the minimums scores both at their minimums, so the first two only tell degraded placements apart.)"""
    by_name = {member.name: member for member in snapshot.members}
    parts = preference_parts(snapshot)
    countries: dict[str, int] = {}
    providers: dict[str, int] = {}
    sums = [0, 0, 0]
    for name, n in assignments.items():
        countries[by_name[name].country] = countries.get(by_name[name].country, 0) + n
        providers[by_name[name].provider] = providers.get(by_name[name].provider, 0) + n
        sums = [total + n * part for total, part in zip(sums, parts[name], strict=True)]
    kept = sum(min(assignments.get(name, 0), max(0, n)) for name, n in request.current.items())
    spread = sum(n * (n - 1) // 2 for n in [*countries.values(), *providers.values()])
    reached = (-min(len(countries), request.rules.min_jurisdictions), -min(len(providers), request.rules.min_providers))
    return (*reached, -kept, spread, *sums)


@dataclass
class _Model:
    """The rule rows and columns both oracles share: x (replicas per member), kept, y (country used),
    z (provider used), in that order."""

    highs: highspy.Highs
    members: list[MemberInfo]
    room: list[int]
    keep: list[int]
    by_country: dict[str, list[int]]
    by_provider: dict[str, list[int]]
    targets: list[int]  # t_J, t_P when the minimums are objectives (see the module doc), else []

    @property
    def size(self) -> int:
        return len(self.members)

    def placed(self) -> dict[str, int]:
        values = self.highs.getSolution().col_value
        return {m.name: round(values[i]) for i, m in enumerate(self.members) if round(values[i]) > 0}


def _add_rows(highs: highspy.Highs, rows: list[tuple[float, float, list[int], list[float]]]) -> None:
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


def _add_columns(highs: highspy.Highs, lower: list[float], upper: list[float], integer: bool) -> int:
    """Add columns (cost 0) and return the index of the first."""
    first = highs.getNumCol()
    empty_int = np.array([], dtype=np.int32)
    count = len(lower)
    highs.addCols(count, np.zeros(count), np.array(lower), np.array(upper), 0, empty_int, empty_int, np.array([]))
    if integer:
        columns = np.arange(first, first + count, dtype=np.int32)
        highs.changeColsIntegrality(count, columns, np.ones(count, dtype=np.uint8))
    return first


def _model(snapshot: Snapshot, request: Request) -> _Model | None:
    """Every hard rule as rows over eligible members; None when no member is eligible."""
    replicas, rules = max(0, request.replicas), request.rules
    limits = room(snapshot, request)
    members = [member for member in snapshot.members if limits[member.name] > 0]
    if not members:
        return None
    n = len(members)
    keep = [min(max(0, request.current.get(m.name, 0)), limits[m.name]) for m in members]
    by_country: dict[str, list[int]] = {}
    by_provider: dict[str, list[int]] = {}
    for index, m in enumerate(members):
        by_country.setdefault(m.country, []).append(index)
        by_provider.setdefault(m.provider, []).append(index)
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    _add_columns(highs, [0.0] * n, [float(limits[m.name]) for m in members], integer=True)
    _add_columns(highs, [0.0] * n, [float(k) for k in keep], integer=False)
    y0 = _add_columns(highs, [0.0] * len(by_country), [1.0] * len(by_country), integer=True)
    z0 = _add_columns(highs, [0.0] * len(by_provider), [1.0] * len(by_provider), integer=True)
    minimums = (rules.min_jurisdictions, rules.min_providers)
    targets = []
    if degrades(request):
        targets = [_add_columns(highs, [0.0], [float(minimum)], integer=False) for minimum in minimums]
    rows: list[tuple[float, float, list[int], list[float]]] = [(replicas, replicas, list(range(n)), [1.0] * n)]
    rows += [(-np.inf, 0.0, [n + index, index], [1.0, -1.0]) for index in range(n)]
    for position, (groups, base, cap, minimum) in enumerate((
        (by_country, y0, rules.max_per_jurisdiction, minimums[0]),
        (by_provider, z0, rules.max_per_provider, minimums[1]),
    )):
        keys = sorted(groups)
        for offset, key in enumerate(keys):
            inside = groups[key]
            if cap is not None:
                rows.append((-np.inf, cap, inside, [1.0] * len(inside)))
            rows.append((0.0, np.inf, [*inside, base + offset], [1.0] * len(inside) + [-1.0]))
        used = [base + offset for offset in range(len(keys))]
        if targets:  # t <= the countries (providers) used
            rows.append((0.0, np.inf, [*used, targets[position]], [1.0] * len(used) + [-1.0]))
        else:
            rows.append((minimum, np.inf, used, [1.0] * len(keys)))
    if rules.max_per_alliance is not None:
        for alliance in snapshot.alliances.values():
            inside = [i for country in sorted(alliance) for i in by_country.get(country, ())]
            if inside:
                rows.append((-np.inf, rules.max_per_alliance, inside, [1.0] * len(inside)))
    _add_rows(highs, rows)
    return _Model(highs, members, [limits[m.name] for m in members], keep, by_country, by_provider, targets)


def _lexicographic(model: _Model, objectives: list[np.ndarray]) -> None:
    """Set `objectives` (minimised, first is first) as prioritised objectives of one run, after the
    spread targets when the minimums are objectives (maximised, t_J before t_P)."""
    highs, columns = model.highs, model.highs.getNumCol()
    first = []
    for target in model.targets:
        coefficients = np.zeros(columns)
        coefficients[target] = -1.0
        first.append(coefficients)
    ordered = [*first, *objectives]
    if len(ordered) == 1:  # one objective needs no priorities (and solves quicker without)
        highs.changeColsCost(columns, np.arange(columns, dtype=np.int32), ordered[0])
        return
    highs.setOptionValue("blend_multi_objectives", False)
    highs.setOptionValue("mip_rel_gap", 0.0)
    highs.setOptionValue("mip_abs_gap", 0.5)  # every objective is integral at a vertex
    for level, coefficients in enumerate(ordered):
        objective = highspy.HighsLinearObjective()
        objective.weight = 1.0
        objective.offset = 0.0
        objective.coefficients = coefficients
        objective.abs_tolerance = 0.5
        objective.rel_tolerance = 0.0
        objective.priority = len(ordered) - level
        highs.addLinearObjective(objective)


def _status(model: _Model) -> bool:
    """Whether the model has a solution (an optimal one); anything but infeasible is a bug here."""
    status = model.highs.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal:
        return True
    if status != highspy.HighsModelStatus.kInfeasible:
        raise RuntimeError(f"oracle: unexpected status {model.highs.modelStatusToString(status)}")
    return False


def solve(snapshot: Snapshot, request: Request) -> Answer:
    """The oracle's answer: feasibility, one placement that keeps the most replicas, and how many."""
    started = time.perf_counter()
    if max(0, request.replicas) == 0:
        return Answer(True, {}, 0, time.perf_counter() - started)
    model = _model(snapshot, request)
    if model is None:
        return Answer(False, {}, 0, time.perf_counter() - started)
    keeping = np.zeros(model.highs.getNumCol())
    keeping[model.size : 2 * model.size] = -1.0  # maximise kept replicas
    _lexicographic(model, [keeping])
    model.highs.run()
    feasible = _status(model)
    seconds = time.perf_counter() - started
    if not feasible:
        return Answer(False, {}, 0, seconds)
    placed = model.placed()
    kept = sum(min(placed.get(m.name, 0), model.keep[i]) for i, m in enumerate(model.members))
    return Answer(True, placed, kept, seconds)


@dataclass(frozen=True)
class ExactAnswer:
    feasible: bool
    assignments: dict[str, int]
    objective: tuple[int, ...] | None  # see `score`
    seconds: float


def solve_exact(snapshot: Snapshot, request: Request) -> ExactAnswer:
    """An optimal placement for the solver's whole objective (see `score`), as five lexicographic
    objectives of one HiGHS model: spread is linear in per-unit columns (the k-th replica of a country
    or provider costs k-1, rising, so a minimum fills them in order), the rest is linear already."""
    started = time.perf_counter()
    if max(0, request.replicas) == 0:
        return ExactAnswer(True, {}, score(snapshot, request, {}), time.perf_counter() - started)
    model = _model(snapshot, request)
    if model is None:
        return ExactAnswer(False, {}, None, time.perf_counter() - started)
    highs, n, replicas = model.highs, model.size, max(0, request.replicas)
    spread_units: list[tuple[int, int]] = []  # (column, its unit cost)
    rows: list[tuple[float, float, list[int], list[float]]] = []
    for groups in (model.by_country, model.by_provider):
        for inside in groups.values():
            units = min(replicas, sum(model.room[i] for i in inside))
            first = _add_columns(highs, [0.0] * units, [1.0] * units, integer=False)
            spread_units += [(first + k, k) for k in range(units)]
            rows.append((0.0, 0.0, [*inside, *range(first, first + units)], [1.0] * len(inside) + [-1.0] * units))
    _add_rows(highs, rows)
    parts = preference_parts(snapshot)
    columns = highs.getNumCol()
    objectives = [np.zeros(columns) for _ in range(5)]
    objectives[0][n : 2 * n] = -1.0
    for column, cost in spread_units:
        objectives[1][column] = cost
    for index, member in enumerate(model.members):
        for level in range(3):
            objectives[2 + level][index] = parts[member.name][level]
    _lexicographic(model, objectives)
    highs.run()
    feasible = _status(model)
    seconds = time.perf_counter() - started
    if not feasible:
        return ExactAnswer(False, {}, None, seconds)
    placed = model.placed()
    return ExactAnswer(True, placed, score(snapshot, request, placed), seconds)


def relax(snapshot: Snapshot, request: Request, rule: str) -> tuple[Snapshot, Request]:
    """The instance with one rule relaxed, as `samizdat.core.placement.binding` documents relaxing."""
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
