"""What a snapshot says independently of any request, worked out once per snapshot and reused.

A failover storm re-places thousands of workloads against one snapshot; redoing per-member work for
each would dominate. So members are grouped by country and provider and pre-sorted by preference,
scores are normalised over the whole fleet (like kube-scheduler's NormalizeScore, but fleet-wide so
that it does not depend on the request), and GPU fit is memoised per kind of replica. A snapshot is a
frozen value, so this is memoisation, not state: no answer depends on what happens to be cached.
"""

from __future__ import annotations

from samizdat.core.placement import capacity, framework
from samizdat.core.placement.scores import SCORES
from samizdat.core.placement.snapshot import GPURequest, MemberInfo, Snapshot

# Kinds of replica (GPU request and TEE) whose per-member fit is kept per snapshot.
KINDS = 256
# Radix sets of packed preferences kept per snapshot (one per count of replicas left to place).
WEIGHTINGS = 64

KindKey = tuple[int, frozenset[str], int, bool]


class Index:
    """Members by name, by country and provider (most preferred first), fleet-wide preference keys."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        ordered = sorted(snapshot.members, key=lambda member: member.name)
        self.by_name = {member.name: member for member in ordered}
        scores = [framework.normalise({m.name: plugin.raw(m) for m in ordered}) for plugin in SCORES]
        # (score gaps in plugin order, then name rank): lexicographically smaller is preferred
        self.preference: dict[str, tuple[int, ...]] = {
            member.name: (*(framework.MAX_SCORE - score[member.name] for score in scores), rank)
            for rank, member in enumerate(ordered)
        }
        grouped: dict[str, dict[str, list[MemberInfo]]] = {}
        for member in ordered:
            grouped.setdefault(member.country, {}).setdefault(member.provider, []).append(member)
        self.countries: dict[str, dict[str, tuple[MemberInfo, ...]]] = {
            country: {
                provider: tuple(sorted(members, key=lambda m: self.preference[m.name]))
                for provider, members in sorted(providers.items())
            }
            for country, providers in sorted(grouped.items())
        }
        # country -> one of its members, for filters whose verdict depends on the country alone
        self.representative = {
            country: next(iter(providers.values()))[0] for country, providers in self.countries.items()
        }
        # country -> the alliances it is in, by name
        self.alliances_of: dict[str, tuple[str, ...]] = {
            country: tuple(name for name, members in sorted(snapshot.alliances.items()) if country in members)
            for country in self.countries
        }
        self._kinds: dict[KindKey, Kind] = {}
        self._packed: dict[tuple[int, ...], dict[str, int]] = {}

    def packed_preference(self, member: MemberInfo, weights: tuple[int, ...]) -> int:
        """The member's preference key as one integer, with `weights` as the radixes of its parts."""
        memo = self._packed.get(weights)
        if memo is None:
            if len(self._packed) >= WEIGHTINGS:
                self._packed.clear()
            memo = self._packed[weights] = {}
        found = memo.get(member.name)
        if found is None:
            parts = self.preference[member.name]
            found = memo[member.name] = sum(part * weight for part, weight in zip(parts, weights, strict=True))
        return found

    def kind(self, gpu: GPURequest, require_tee: bool) -> Kind:
        """What this snapshot holds for one kind of replica (GPU request and TEE), memoised."""
        key: KindKey = (gpu.count, gpu.products, gpu.min_memory_mib, require_tee)
        found = self._kinds.get(key)
        if found is None:
            if len(self._kinds) >= KINDS:
                self._kinds.clear()
            found = self._kinds[key] = Kind(self, gpu, require_tee)
        return found


class Kind:
    """One kind of replica against one snapshot: how many fit on each member, and where any fit at all.

    Worked out lazily, member by member, because most questions touch only the few members at the head
    of each (country, provider) pair; `ranked` alone looks at every member, once per kind.
    """

    def __init__(self, index: Index, gpu: GPURequest, require_tee: bool) -> None:
        self._index = index
        self._gpu = gpu
        self._require_tee = require_tee
        self._fits: dict[str, int] = {}
        self._fitting: dict[tuple[str, str], tuple[MemberInfo, ...]] = {}
        self._ranked: list[tuple[tuple[int, ...], str, str]] | None = None

    def fits(self, member: MemberInfo) -> int:
        """New replicas of this kind that still fit on the member's free GPUs."""
        found = self._fits.get(member.name)
        if found is None:
            # Uncapped, so that one memo serves every replica count; `count < 1` fits anywhere.
            found = self._fits[member.name] = capacity.new_replicas(
                member, self._gpu, self._require_tee, ceiling=1 << 62
            )
        return found

    def fitting(self, country: str, provider: str) -> tuple[MemberInfo, ...]:
        """The pair's members where at least one more replica fits, most preferred first."""
        found = self._fitting.get((country, provider))
        if found is None:
            members = self._index.countries[country][provider]
            found = self._fitting[country, provider] = tuple(member for member in members if self.fits(member))
        return found

    def ranked(self) -> list[tuple[tuple[int, ...], str, str]]:
        """Every pair where a new replica fits, by its most preferred such member, most preferred first."""
        if self._ranked is None:
            preference = self._index.preference
            self._ranked = sorted(
                (preference[members[0].name], country, provider)
                for country, providers in self._index.countries.items()
                for provider in providers
                if (members := self.fitting(country, provider))
            )
        return self._ranked


def of(snapshot: Snapshot) -> Index:
    """The index of `snapshot`, built on first use and kept on the snapshot itself, so it lives exactly
    as long as the snapshot does (a snapshot made up for one question takes its index with it). Two
    threads asking at once may each build one; either is the same answer."""
    found = snapshot.placement_index
    if not isinstance(found, Index):
        found = Index(snapshot)
        object.__setattr__(snapshot, "placement_index", found)  # a frozen value's derived figures
    return found
