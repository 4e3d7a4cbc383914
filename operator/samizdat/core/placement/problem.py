"""The formulate stage: a snapshot and a request become the solver's `Problem`, and its objective.

`formulate` runs the stages of docs/placement.md up to the search: the filters (`eligibility`, country
filters once per country, the others on the members of each (country, provider) pair in order of
preference, only until the pair has room for all it may ever take), the floors (replicas that stay),
the exact pruning of pairs (`pruning`), then the problem over what is left: candidates seen through
indices and integers, per-country and per-provider limits, and the binding alliances over cells.
Scores come from the snapshot's index, normalised over the fleet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from samizdat.core.placement import framework, index, pruning
from samizdat.core.placement.eligibility import Eligibility
from samizdat.core.placement.scores import SCORES
from samizdat.core.placement.snapshot import MemberInfo, Request, Snapshot


class Candidate(NamedTuple):
    """An eligible member, seen by the solver through indices and integers only.

    (Per-member records are named tuples rather than frozen dataclasses: hundreds are built per
    decision, and a frozen dataclass pays for `object.__setattr__` on every field.)
    """

    member: MemberInfo
    country: int
    provider: int
    capacity: int  # replicas it may hold: current + new fits, within maxPerCluster and replicas
    keep: int  # of its current replicas, how many may stay
    preference: int  # per-replica soft cost (scores, then name), lower is better


@dataclass(frozen=True, slots=True)
class Alliance:
    """An alliance that can exceed its cap here, as the set of cells it covers."""

    name: str
    cells: frozenset[int]
    cap: int  # replicas it may still take


@dataclass(frozen=True, slots=True)
class Cell:
    """Countries inside exactly the same binding alliances: interchangeable for every alliance rule."""

    countries: tuple[int, ...]
    alliances: frozenset[int]


@dataclass(frozen=True, slots=True)
class Problem:
    """What remains to decide: `replicas` more replicas on top of the `floors` that stay where they are.

    Limits and minimums are what remains of the rules once the floors are counted: a country may take
    `country_limit` more, and `min_jurisdictions` more countries without floors must be used.
    """

    replicas: int
    candidates: tuple[Candidate, ...]
    countries: tuple[str, ...]
    providers: tuple[str, ...]
    country_limit: tuple[int, ...]
    provider_limit: tuple[int, ...]
    country_base: tuple[int, ...]  # floors per country
    provider_base: tuple[int, ...]  # floors per provider
    min_jurisdictions: int  # 0: nothing to count
    min_providers: int  # 0: nothing to count
    alliances: tuple[Alliance, ...]
    cells: tuple[Cell, ...]
    cell_of_country: tuple[int | None, ...]  # None: in no binding alliance
    floors: Mapping[str, int]  # member -> replicas fixed where they are
    # Radixes of the lexicographic objective (stability > spread > preference), see `objective`.
    stability_weight: int
    spread_weight: int


def formulate(snapshot: Snapshot, request: Request, *, stay: bool = False) -> Problem | None:
    """The problem for `request.replicas >= 1`.

    With `stay`, every replica of `request.current` that may stay becomes a floor and only the rest is
    left to decide; None when the floors alone already break a rule (or outnumber the replicas).
    The stages, in the order of docs/placement.md: filter (`eligibility`), floors, what the rules leave
    once the floors are counted, the binding alliances and their classes, prune (`pruning`), assemble.
    """
    eligibility = Eligibility(index.of(snapshot), request)
    open_countries = eligibility.open_countries()
    kept_in = _kept_pairs(eligibility, set(open_countries))
    remaining = _Remaining.after(eligibility, _floors(eligibility, kept_in) if stay else {}, open_countries)
    if remaining is None:
        return None
    binding = _binding_alliances(snapshot.alliances, remaining)
    classes = _classes(eligibility.facts, binding, remaining)
    pairs = pruning.prune(
        eligibility.kind.ranked(),
        classes,
        pruning.Reader(eligibility, kept_in, remaining.country_limit, remaining.per_provider),
        pruning.Floors(remaining.replicas, set(remaining.country_base), set(remaining.provider_base)),
    )
    return _assemble(eligibility, remaining, binding, classes, pairs)


def _kept_pairs(eligibility: Eligibility, open_countries: set[str]) -> dict[tuple[str, str], list[str]]:
    """Pair -> its members (by name, sorted) that run replicas now, in open countries."""
    facts = eligibility.facts
    kept_in: dict[tuple[str, str], list[str]] = {}
    for name, count in sorted(eligibility.context.request.current.items()):
        member = facts.by_name.get(name)
        if member is not None and count > 0 and member.country in open_countries:
            kept_in.setdefault((member.country, member.provider), []).append(name)
    return kept_in


def _floors(eligibility: Eligibility, kept_in: Mapping[tuple[str, str], Sequence[str]]) -> dict[str, int]:
    """Member -> its replicas that may stay (its keep), for every member with any: the floors."""
    floors: dict[str, int] = {}
    for names in kept_in.values():
        for name in names:
            if (found := eligibility.in_open_country(eligibility.facts.by_name[name])) is not None:
                floors[name] = found[1]
    return dict(sorted(floors.items()))


@dataclass(frozen=True, slots=True)
class _Remaining:
    """What the rules leave once the floors are counted: the replicas to place and the room under
    each max (per jurisdiction and provider as it was, per alliance and country less the floors)."""

    floors: Mapping[str, int]  # member -> replicas fixed where they are
    replicas: int
    per_jurisdiction: int
    per_provider: int
    country_base: Counter[str]  # floors per country
    provider_base: Counter[str]  # floors per provider
    alliance_room: Mapping[str, int]  # alliance -> replicas it may still take
    country_limit: Mapping[str, int]  # open country -> replicas it may still take, if any

    @classmethod
    def after(
        cls, eligibility: Eligibility, floors: Mapping[str, int], open_countries: Sequence[str]
    ) -> _Remaining | None:
        """None when the floors alone break a rule or outnumber the replicas."""
        facts, request = eligibility.facts, eligibility.context.request
        rules, replicas = request.rules, request.replicas
        country_base, provider_base = _bases(facts, floors)
        alliance_cap = _limit(rules.max_per_alliance, replicas)
        left = replicas - sum(floors.values())
        per_jurisdiction = _limit(rules.max_per_jurisdiction, replicas)
        per_provider = _limit(rules.max_per_provider, replicas)
        alliance_room = {
            name: alliance_cap - sum(country_base[country] for country in members)
            for name, members in facts.snapshot.alliances.items()
        }
        if (
            left < 0
            or any(n > per_jurisdiction for n in country_base.values())
            or any(n > per_provider for n in provider_base.values())
            or any(room < 0 for room in alliance_room.values())
        ):
            return None
        country_limit: dict[str, int] = {}
        for country in open_countries:
            # A country's replicas count against every alliance it is in, so none may exceed its room.
            rooms = [alliance_room[name] for name in facts.alliances_of[country]]
            limit = min([per_jurisdiction - country_base[country], left, *rooms])
            if limit > 0 and per_provider > 0:
                country_limit[country] = limit
        return cls(
            floors, left, per_jurisdiction, per_provider, country_base, provider_base, alliance_room, country_limit
        )


def _classes(facts: index.Index, binding: Sequence[tuple[str, int]], remaining: _Remaining) -> pruning.Classes:
    """Countries that may take replicas by the binding alliances they are in, and each class's room:
    its smallest alliance room (a binding alliance's room is below the replicas left, by the definition
    of binding) or all that are left."""
    binding_names = {name for name, _ in binding}
    signature = {
        country: frozenset(name for name in facts.alliances_of[country] if name in binding_names)
        for country in remaining.country_limit
    }
    room = {
        group: min((room for name, room in binding if name in group), default=remaining.replicas)
        for group in set(signature.values())
    }
    return pruning.Classes(signature, room)


def _assemble(
    eligibility: Eligibility,
    remaining: _Remaining,
    binding: Sequence[tuple[str, int]],
    classes: pruning.Classes,
    pairs: Sequence[pruning.Pair],
) -> Problem:
    """The problem over the pruned pairs: candidates by index, limits, cells, objective radixes."""
    facts, request, floors = eligibility.facts, eligibility.context.request, remaining.floors
    countries = tuple(sorted({pair.country for pair in pairs}))
    providers = tuple(sorted({pair.provider for pair in pairs}))
    country_index = {country: position for position, country in enumerate(countries)}
    provider_index = {provider: position for position, provider in enumerate(providers)}
    weights = _preference_weights(remaining.replicas, len(facts.by_name))
    candidates: list[Candidate] = []
    for pair in sorted(pairs, key=lambda pair: (pair.country, pair.provider)):
        at_country, at_provider = country_index[pair.country], provider_index[pair.provider]
        for member, room, keep in pair.members:
            floor = floors.get(member.name, 0)
            if room > floor:
                preference = facts.packed_preference(member, weights)
                candidates.append(Candidate(member, at_country, at_provider, room - floor, keep - floor, preference))
    alliances, cells, cell_of_country = _cells(binding, countries, classes.signature)
    spread_weight = remaining.replicas * max((candidate.preference for candidate in candidates), default=0) + 1
    return Problem(
        replicas=remaining.replicas,
        candidates=tuple(candidates),
        countries=countries,
        providers=providers,
        country_limit=tuple(remaining.country_limit[country] for country in countries),
        provider_limit=tuple(remaining.per_provider - remaining.provider_base[provider] for provider in providers),
        country_base=tuple(remaining.country_base[country] for country in countries),
        provider_base=tuple(remaining.provider_base[provider] for provider in providers),
        # Without floors one replica already makes one country and one provider: nothing to count.
        min_jurisdictions=_still_needed(request.rules.min_jurisdictions, len(remaining.country_base)),
        min_providers=_still_needed(request.rules.min_providers, len(remaining.provider_base)),
        alliances=alliances,
        cells=cells,
        cell_of_country=cell_of_country,
        floors=floors,
        stability_weight=spread_weight * (request.replicas * request.replicas + 1),
        spread_weight=spread_weight,
    )


def objective(problem: Problem, flows: tuple[int, ...]) -> tuple[int, int, int]:
    """The soft objective of a placement, lexicographic: (-kept replicas, spread, preference).

    Spread sums, over countries and providers, the pairs of replicas sharing one: it is convex, so the
    flow networks price the k-th replica of a country at k-1 and an even spread is cheapest.
    """
    per_country = list(problem.country_base)
    per_provider = list(problem.provider_base)
    kept = preference = 0
    for candidate, replicas in zip(problem.candidates, flows, strict=True):
        if replicas:
            per_country[candidate.country] += replicas
            per_provider[candidate.provider] += replicas
            kept += min(replicas, candidate.keep)
            preference += replicas * candidate.preference
    spread = sum(n * (n - 1) // 2 for n in per_country) + sum(n * (n - 1) // 2 for n in per_provider)
    return (-kept, spread, preference)


def packed(problem: Problem, objective: tuple[int, int, int]) -> int:
    """`objective` as one integer, ordered the same way: what the flow networks price a placement at,
    up to a constant (the spread its floors make among themselves)."""
    kept, spread, preference = objective
    return kept * problem.stability_weight + spread * problem.spread_weight + preference


def _limit(value: int | None, replicas: int) -> int:
    return replicas if value is None else max(0, min(value, replicas))


def _still_needed(minimum: int, used: int) -> int:
    return 0 if used == 0 and minimum <= 1 else max(0, minimum - used)


def _bases(facts: index.Index, floors: Mapping[str, int]) -> tuple[Counter[str], Counter[str]]:
    """Floors per country and per provider."""
    countries: Counter[str] = Counter()
    providers: Counter[str] = Counter()
    for name, replicas in floors.items():
        countries[facts.by_name[name].country] += replicas
        providers[facts.by_name[name].provider] += replicas
    return countries, providers


def _binding_alliances(table: Mapping[str, frozenset[str]], remaining: _Remaining) -> list[tuple[str, int]]:
    """The alliances that could take more than their room, with that room."""
    binding = []
    limit_of, room = remaining.country_limit, remaining.alliance_room
    for name in sorted(table):
        if remaining.replicas > room[name] and sum(limit_of.get(country, 0) for country in table[name]) > room[name]:
            binding.append((name, room[name]))
    return binding


def _cells(
    binding: Sequence[tuple[str, int]],
    countries: tuple[str, ...],
    signature: Mapping[str, frozenset[str]],
) -> tuple[tuple[Alliance, ...], tuple[Cell, ...], tuple[int | None, ...]]:
    """The binding alliances over the cells their memberships cut the problem's countries into."""
    signatures = sorted({signature[country] for country in countries if signature[country]}, key=sorted)
    cells = tuple(
        Cell(
            countries=tuple(i for i, country in enumerate(countries) if signature[country] == names),
            alliances=frozenset(a for a, (name, _) in enumerate(binding) if name in names),
        )
        for names in signatures
    )
    alliances = tuple(
        Alliance(name=name, cells=frozenset(k for k, cell in enumerate(cells) if a in cell.alliances), cap=room)
        for a, (name, room) in enumerate(binding)
    )
    position = {names: k for k, names in enumerate(signatures)}
    cell_of_country = tuple(position.get(signature[country]) for country in countries)
    return alliances, cells, cell_of_country


def _preference_weights(replicas: int, members: int) -> tuple[int, ...]:
    """Radixes packing a preference key (score gaps, then name rank) into one integer per replica.

    Each level is wide enough that no sum over `replicas` replicas of a lower level outweighs one step
    of a higher level, so comparing packed sums is comparing keys lexicographically.
    """
    weights = [1]
    weight = replicas * members + 1
    for _ in SCORES:
        weights.append(weight)
        weight *= replicas * framework.MAX_SCORE + 1
    return tuple(reversed(weights))
