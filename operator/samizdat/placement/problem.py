"""Compile a snapshot and a request into the solver's problem: the filter and score stages.

Filters that look only at a member's country run once per country; the others run on the members of
each (country, provider) pair in order of preference, only until the pair has room for all it may
ever take. Scores come from the snapshot's index, normalised over the fleet.

Then the pairs are pruned, exactly. Countries inside the same binding alliances form a class; a class
may hold at most A replicas (the smallest room among its alliances, or R = replicas when it is in
none). Within a class, pairs are taken in order of their best member until they hold A+R-1 pairs with
pairwise distinct countries and providers (the class's matching). Any replica a placement puts on a
pair left out can move to one of those without breaking a rule or costing more: the other replicas
can block at most A-1 of them through their country (only replicas of the same class share its
countries) and R-1 through their provider, the one left is empty in both (so no max is exceeded and
no min is lost), in the same alliances, and no dearer. The same move shows more: once a class's
matching is full, a new replica that shares its country or provider with any other can move to an
empty pair and lower the spread, so an optimal placement puts at most one new replica on each pair of
that class, and only its best member is needed. Two more cuts work the same way inside one country
(R pairs, as R-1 other replicas block at most R-1 providers) and inside one provider of a class (A
pairs, as A-1 others block at most A-1 of its countries). Each move goes to a pair that ranks
earlier, so moves end, on pairs that are kept; and a pair with replicas to keep is always kept.
Floors (replicas that stay, see `compile`) take their countries and providers for good, so each
count above grows by the floors' countries or providers it must avoid, R being the replicas left.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from samizdat.placement import framework, index
from samizdat.placement.filters import FILTERS
from samizdat.placement.scores import SCORES
from samizdat.placement.snapshot import Member, Request, Snapshot


class Candidate(NamedTuple):
    """An eligible member, seen by the solver through indices and integers only.

    (Per-member records are named tuples rather than frozen dataclasses: hundreds are built per
    decision, and a frozen dataclass pays for `object.__setattr__` on every field.)
    """

    member: Member
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


class _Pair(NamedTuple):
    country: str
    provider: str
    best: tuple[int, ...]  # preference key of its most preferred eligible member
    members: tuple[tuple[Member, int, int], ...]  # (member, room, keep)
    whole: bool  # the members have room for all the pair may take (or there are no more)


def compile(snapshot: Snapshot, request: Request, *, stay: bool = False, remember: bool = True) -> Problem | None:
    """The problem for `request.replicas >= 1`; `remember=False` for a snapshot seen only once.

    With `stay`, every replica of `request.current` that may stay becomes a floor and only the rest is
    left to decide; None when the floors alone already break a rule (or outnumber the replicas).
    """
    facts = index.of(snapshot, remember=remember)
    rules, replicas = request.rules, request.replicas
    kind = facts.kind(request.gpu, rules.require_tee)
    context = framework.context(snapshot, request, kind.fits)
    by_country = [plugin for plugin in FILTERS if plugin.PER_COUNTRY]
    by_member = [plugin for plugin in FILTERS if not plugin.PER_COUNTRY]
    per_cluster = _limit(rules.max_per_cluster, replicas)
    per_jurisdiction = _limit(rules.max_per_jurisdiction, replicas)
    per_provider = _limit(rules.max_per_provider, replicas)
    alliance_cap = _limit(rules.max_per_alliance, replicas)

    def eligible(member: Member) -> tuple[Member, int, int] | None:
        for plugin in by_member:
            if plugin.filter(member, context).reasons:
                return None
        current = max(0, request.current.get(member.name, 0))
        room = min(current + context.fits(member), per_cluster, replicas)
        return (member, room, min(current, room)) if room > 0 else None

    open_countries = [
        country
        for country, member in facts.representative.items()
        if not any(plugin.filter(member, context).reasons for plugin in by_country)
    ]
    open_set = set(open_countries)
    kept_in: dict[tuple[str, str], list[str]] = {}
    floors: dict[str, int] = {}
    for name, count in sorted(request.current.items()):
        member = facts.by_name.get(name)
        if member is None or count <= 0 or member.country not in open_set:
            continue
        kept_in.setdefault((member.country, member.provider), []).append(name)
        if stay and (found := eligible(member)) is not None:
            floors[name] = found[2]
    remaining = replicas - sum(floors.values())
    country_base, provider_base = _bases(facts, floors)
    alliance_room = {
        name: alliance_cap - sum(country_base[country] for country in members)
        for name, members in snapshot.alliances.items()
    }
    if (
        remaining < 0
        or any(n > per_jurisdiction for n in country_base.values())
        or any(n > per_provider for n in provider_base.values())
        or any(room < 0 for room in alliance_room.values())
    ):
        return None

    limit_of: dict[str, int] = {}
    for country in open_countries:
        # A country's replicas count against every alliance it is in, so none may exceed its room.
        rooms = [alliance_room[name] for name in facts.alliances_of[country]]
        limit = min([per_jurisdiction - country_base[country], remaining, *rooms])
        if limit > 0 and per_provider > 0:
            limit_of[country] = limit

    def evaluate(country: str, provider: str, spread_out: bool) -> _Pair | None:
        """The pair's members that matter: those with replicas to keep, and the most preferred others
        until they have room for all the pair may take, or for one new replica when `spread_out`."""
        kept_here = kept_in.get((country, provider), ())
        keeping = [found for name in kept_here if (found := eligible(facts.by_name[name]))]
        kept_names = {member.name for member, _, _ in keeping}
        whole_need = min(limit_of[country], per_provider)
        need, room, chosen = 1 if spread_out else whole_need, 0, keeping
        best = min((facts.preference[name] for name in kept_names), default=None) if kept_here else None
        # Members where nothing fits fail the GPU filter unless they run replicas, and those are kept.
        fitting = kind.fitting(country, provider)
        for member in fitting:
            if room >= need:
                break
            found = eligible(member)
            if found is None:
                continue
            if best is None or facts.preference[member.name] < best:
                best = facts.preference[member.name]
            if member.name not in kept_names:
                chosen.append(found)
                room += found[1]
        else:
            room = whole_need  # every member was seen: there is nothing more to find
        if best is None:
            return None
        return _Pair(country, provider, best, tuple(chosen), room >= whole_need)

    binding = _binding_alliances(snapshot.alliances, limit_of, alliance_room, remaining)
    binding_names = {name for name, _ in binding}
    signature = {
        country: frozenset(name for name in facts.alliances_of[country] if name in binding_names)
        for country in limit_of
    }
    # the most replicas each class may take: its smallest alliance room (a binding alliance's room is
    # below the replicas left, by the definition of binding) or all that are left
    class_room = {
        group: min((room for name, room in binding if name in group), default=remaining)
        for group in set(signature.values())
    }
    pairs = _select(
        kind.ranked(),
        signature,
        evaluate,
        [pair for pair in kept_in if pair[0] in limit_of],
        set(country_base),
        set(provider_base),
        remaining,
        class_room,
    )

    countries = tuple(sorted({pair.country for pair in pairs}))
    providers = tuple(sorted({pair.provider for pair in pairs}))
    country_index = {country: position for position, country in enumerate(countries)}
    provider_index = {provider: position for position, provider in enumerate(providers)}
    weights = _preference_weights(remaining, len(facts.by_name))
    candidates: list[Candidate] = []
    for pair in sorted(pairs, key=lambda pair: (pair.country, pair.provider)):
        at_country, at_provider = country_index[pair.country], provider_index[pair.provider]
        for member, room, keep in pair.members:
            floor = floors.get(member.name, 0)
            if room > floor:
                preference = facts.packed_preference(member, weights)
                candidates.append(Candidate(member, at_country, at_provider, room - floor, keep - floor, preference))
    alliances, cells, cell_of_country = _cells(binding, countries, signature)
    spread_weight = remaining * max((candidate.preference for candidate in candidates), default=0) + 1
    return Problem(
        replicas=remaining,
        candidates=tuple(candidates),
        countries=countries,
        providers=providers,
        country_limit=tuple(limit_of[country] for country in countries),
        provider_limit=tuple(per_provider - provider_base[provider] for provider in providers),
        country_base=tuple(country_base[country] for country in countries),
        provider_base=tuple(provider_base[provider] for provider in providers),
        # Without floors one replica already makes one country and one provider: nothing to count.
        min_jurisdictions=_still_needed(rules.min_jurisdictions, len(country_base)),
        min_providers=_still_needed(rules.min_providers, len(provider_base)),
        alliances=alliances,
        cells=cells,
        cell_of_country=cell_of_country,
        floors=floors,
        stability_weight=spread_weight * (replicas * replicas + 1),
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


def _binding_alliances(
    table: Mapping[str, frozenset[str]], limit_of: Mapping[str, int], room: Mapping[str, int], replicas: int
) -> list[tuple[str, int]]:
    """The alliances that could take more than their room, with that room."""
    binding = []
    for name in sorted(table):
        if replicas > room[name] and sum(limit_of.get(country, 0) for country in table[name]) > room[name]:
            binding.append((name, room[name]))
    return binding


def _select(
    ranked: Sequence[tuple[tuple[int, ...], str, str]],
    signature: Mapping[str, frozenset[str]],
    evaluate: Callable[[str, str, bool], _Pair | None],
    keeping: Sequence[tuple[str, str]],
    floored_countries: set[str],
    floored_providers: set[str],
    replicas: int,
    class_room: Mapping[frozenset[str], int],
) -> list[_Pair]:
    """The pairs some optimal placement is sure to be found among (see the module doc).

    `ranked` lists every (country, provider) pair where a new replica fits by its most preferred such
    member. A pair's eligible best can only be that member or a later one (or a member with replicas to
    keep, and pairs with those are taken in any case), so pairs are evaluated in that order and taken,
    per class, in the order of their eligible best once no unevaluated pair of the class can come before
    them. Floors block their countries and providers for good, so pairs there never join the matching.

    First, though, a country needs no more pairs than there can be providers blocked for it, plus one:
    a replica on a later pair of that country can move to one of its earlier pairs whose provider holds
    nothing else (same country, so same alliances; a fresh provider; and no dearer). So a country's
    pairs past that many are not even evaluated, and the classes are scanned over what is left.
    """
    quota = {group: room + replicas - 1 for group, room in class_room.items()}
    # A class with fewer countries than its quota can never fill its matching: see its pairs whole.
    sizes = Counter(signature.values())
    fillable = {group for group, size in sizes.items() if size >= quota[group]}
    per_country = replicas + len(floored_providers)
    per_provider = {
        group: room + sum(1 for country in floored_countries if signature.get(country) == group)
        for group, room in class_room.items()
    }
    in_country: dict[str, int] = {}
    in_provider: dict[tuple[frozenset[str], str], int] = {}
    waiting: dict[frozenset[str], list[tuple[tuple[int, ...], str, str, _Pair]]] = {}
    matched: dict[frozenset[str], tuple[set[str], set[str]]] = {}
    taken: dict[tuple[str, str], _Pair] = {}
    open_classes = set(signature.values())

    def full(group: frozenset[str], country: str, provider: str) -> bool:
        return in_country.get(country, 0) >= per_country or in_provider.get((group, provider), 0) >= per_provider[group]

    def take_up_to(group: frozenset[str], bound: tuple[int, ...] | None) -> None:
        heap = waiting.get(group, [])
        countries, providers = matched.setdefault(group, (set(), set()))
        while heap and len(countries) < quota[group] and (bound is None or heap[0][0] <= bound):
            _, country, provider, pair = heapq.heappop(heap)
            if full(group, country, provider):
                continue
            taken[country, provider] = pair
            in_country[country] = in_country.get(country, 0) + 1
            in_provider[group, provider] = in_provider.get((group, provider), 0) + 1
            if not (country in countries or country in floored_countries) and not (
                provider in providers or provider in floored_providers
            ):
                countries.add(country)
                providers.add(provider)
        if len(countries) >= quota[group]:
            open_classes.discard(group)

    for key, country, provider in ranked:
        if not open_classes:
            break
        group = signature.get(country)
        if group is None or group not in open_classes or full(group, country, provider):
            continue
        take_up_to(group, key)
        if group in open_classes and (pair := evaluate(country, provider, group in fillable)) is not None:
            heapq.heappush(waiting.setdefault(group, []), (pair.best, country, provider, pair))
    for group in list(open_classes):
        take_up_to(group, None)
    # A class whose matching never filled up may need a pair to take several new replicas.
    unfilled = open_classes & fillable
    for (country, provider), pair in list(taken.items()):
        if not pair.whole and signature[country] in unfilled:
            taken[country, provider] = evaluate(country, provider, False) or pair
    for country, provider in keeping:
        if (country, provider) not in taken and (
            pair := evaluate(country, provider, signature[country] not in open_classes)
        ) is not None:
            taken[country, provider] = pair
    return list(taken.values())


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
