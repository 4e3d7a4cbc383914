"""The prune stage: the (country, provider) pairs among which some optimal placement is sure to lie.

Words (see the glossary in docs/placement.md): a *pair* is the members of one country run by one
provider; a *class* is the countries inside exactly the same binding alliances (its *signature*); a
class may hold at most A replicas (its *room*: the smallest room among its alliances, or R, the
replicas left to place, when it is in none). A class's *matching* is a set of its pairs with pairwise
distinct countries and providers; its *quota* is A+R-1 such pairs.

Within a class, pairs are taken in order of their best member until the matching is full. Any replica
a placement puts on a pair left out can move to a pair of the matching without breaking a rule or
costing more: the other replicas can block at most A-1 of them through their country (only replicas of
the same class share its countries) and R-1 through their provider, the one left is empty in both (so
no max is exceeded and no min is lost), in the same alliances, and no dearer. The same move shows
more: once a class's matching is full, a new replica that shares its country or provider with any
other can move to an empty pair and lower the spread, so an optimal placement puts at most one new
replica on each pair of that class, and only its best member is needed. Two more cuts work the same
way inside one country (R pairs, as R-1 other replicas block at most R-1 providers) and inside one
provider of a class (A pairs, as A-1 others block at most A-1 of its countries). Each move goes to a
pair that ranks earlier, so moves end, on pairs that are kept; and a pair with replicas to keep is
always kept. Floors (replicas that stay, see `problem.formulate`) take their countries and providers
for good, so each count above grows by the floors' countries or providers it must avoid.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from samizdat.core.placement.eligibility import Eligibility
from samizdat.core.placement.snapshot import MemberInfo

Signature = frozenset[str]  # the binding alliances a country is in, by name: its class


class Pair(NamedTuple):
    """The members of one pair that matter, as far as they were read."""

    country: str
    provider: str
    best: tuple[int, ...]  # preference key of its most preferred eligible member
    members: tuple[tuple[MemberInfo, int, int], ...]  # (member, room, keep)
    whole: bool  # the members have room for all the pair may take (or there are no more)


@dataclass(frozen=True, slots=True)
class Reader:
    """Reads a pair's members that matter: those with replicas to keep, then the most preferred others
    until they have room for all the pair may take (or, to spread out, for one new replica)."""

    eligibility: Eligibility
    kept_in: Mapping[tuple[str, str], Sequence[str]]  # pair -> its members with replicas now
    limit_of: Mapping[str, int]  # country -> replicas it may still take (open countries with any)
    per_provider: int  # maxPerProvider, at most the replicas

    def read(self, country: str, provider: str, spread_out: bool) -> Pair | None:
        facts, eligibility = self.eligibility.facts, self.eligibility
        kept_here = self.kept_in.get((country, provider), ())
        chosen = [
            (member, *found)
            for name in kept_here
            if (found := eligibility.in_open_country(member := facts.by_name[name])) is not None
        ]
        kept_names = {member.name for member, _, _ in chosen}
        whole_need = min(self.limit_of[country], self.per_provider)
        need, room = 1 if spread_out else whole_need, 0
        best = min((facts.preference[name] for name in kept_names), default=None) if kept_here else None
        # Members where nothing fits fail the GPU filter unless they run replicas, and those are kept.
        for member in eligibility.kind.fitting(country, provider):
            if room >= need:
                break
            found = eligibility.in_open_country(member)
            if found is None:
                continue
            if best is None or facts.preference[member.name] < best:
                best = facts.preference[member.name]
            if member.name not in kept_names:
                chosen.append((member, *found))
                room += found[0]
        else:
            room = whole_need  # every member was seen: there is nothing more to find
        if best is None:
            return None
        return Pair(country, provider, best, tuple(chosen), room >= whole_need)


@dataclass(frozen=True, slots=True)
class Floors:
    """What the floors settle: the replicas they leave to place, and the countries and providers they
    hold, blocked for good to every matching."""

    replicas_left: int
    countries: Collection[str]
    providers: Collection[str]


@dataclass(slots=True)
class _Class:
    """One class's progress: the pairs read but not yet taken, and its matching so far."""

    quota: int
    fillable: bool  # it has as many countries as its quota, so its matching can fill
    per_provider: int  # pairs one provider may give it
    waiting: list[tuple[tuple[int, ...], str, str, Pair]] = field(default_factory=list)  # a heap
    countries: set[str] = field(default_factory=set)
    providers: set[str] = field(default_factory=set)

    @property
    def filled(self) -> bool:
        return len(self.countries) >= self.quota


@dataclass(frozen=True, slots=True)
class Classes:
    """The countries that may take replicas, by class, and the room of each class."""

    signature: Mapping[str, Signature]  # country -> its class
    room: Mapping[Signature, int]


def prune(
    ranked: Sequence[tuple[tuple[int, ...], str, str]], classes: Classes, reader: Reader, floors: Floors
) -> list[Pair]:
    """The pairs some optimal placement is sure to be found among (see the module doc).

    `ranked` lists every pair where a new replica fits by its most preferred such member. A pair's
    eligible best can only be that member or a later one (or a member with replicas to keep, and pairs
    with those are taken in any case), so pairs are read in that order and taken, per class, in the
    order of their eligible best once no unread pair of the class can come before them.
    """
    pruning = _Pruning(classes, reader, floors)
    pruning.scan(ranked)
    pruning.finish()
    return list(pruning.taken.values())


class _Pruning:
    """The state of one prune: per class its matching, per country and (class, provider) the pairs
    taken, and the pairs taken so far.

    A country needs no more pairs than there can be providers blocked for it, plus one: a replica on a
    later pair of that country can move to one of its earlier pairs whose provider holds nothing else
    (same country, so same alliances; a fresh provider; and no dearer). So a country's pairs past that
    many are not even read; the same holds for a provider within a class.
    """

    def __init__(self, classes: Classes, reader: Reader, floors: Floors) -> None:
        self.signature = signature = classes.signature
        self.reader, self.floors = reader, floors
        replicas = floors.replicas_left
        sizes = Counter(signature.values())
        self.classes: dict[Signature, _Class] = {}
        for group, room in classes.room.items():
            quota = room + replicas - 1
            blocked = sum(1 for country in floors.countries if signature.get(country) == group)
            self.classes[group] = _Class(quota=quota, fillable=sizes[group] >= quota, per_provider=room + blocked)
        self.per_country = replicas + len(floors.providers)
        self.in_country: dict[str, int] = {}
        self.in_provider: dict[tuple[Signature, str], int] = {}
        self.taken: dict[tuple[str, str], Pair] = {}
        self.open = set(classes.room)

    def full(self, group: Signature, country: str, provider: str) -> bool:
        return (
            self.in_country.get(country, 0) >= self.per_country
            or self.in_provider.get((group, provider), 0) >= self.classes[group].per_provider
        )

    def scan(self, ranked: Sequence[tuple[tuple[int, ...], str, str]]) -> None:
        """Read pairs in rank order, taking each class's read pairs as far as no unread one can precede them."""
        for key, country, provider in ranked:
            if not self.open:
                break
            group = self.signature.get(country)
            if group is None or group not in self.open or self.full(group, country, provider):
                continue
            self.take(group, key)
            if group not in self.open:
                continue
            if (pair := self.reader.read(country, provider, self.classes[group].fillable)) is not None:
                heapq.heappush(self.classes[group].waiting, (pair.best, country, provider, pair))
        for group in list(self.open):
            self.take(group, None)

    def take(self, group: Signature, bound: tuple[int, ...] | None) -> None:
        """Take the class's read pairs that rank up to `bound` (all when None) until its matching fills."""
        progress = self.classes[group]
        heap = progress.waiting
        while heap and not progress.filled and (bound is None or heap[0][0] <= bound):
            _, country, provider, pair = heapq.heappop(heap)
            if self.full(group, country, provider):
                continue
            self.taken[country, provider] = pair
            self.in_country[country] = self.in_country.get(country, 0) + 1
            self.in_provider[group, provider] = self.in_provider.get((group, provider), 0) + 1
            if not (country in progress.countries or country in self.floors.countries) and not (
                provider in progress.providers or provider in self.floors.providers
            ):
                progress.countries.add(country)
                progress.providers.add(provider)
        if progress.filled:
            self.open.discard(group)

    def finish(self) -> None:
        """Read whole the pairs of classes whose matching never filled (a pair may then need several new
        replicas), and add the pairs with replicas to keep."""
        unfilled = {group for group in self.open if self.classes[group].fillable}
        for (country, provider), pair in list(self.taken.items()):
            if not pair.whole and self.signature[country] in unfilled:
                self.taken[country, provider] = self.reader.read(country, provider, False) or pair
        for country, provider in self.reader.kept_in:
            if country in self.signature and (country, provider) not in self.taken and (
                kept := self.reader.read(country, provider, self.signature[country] not in self.open)
            ) is not None:
                self.taken[country, provider] = kept

