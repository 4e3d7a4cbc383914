"""What a snapshot says independently of any request, worked out once per snapshot and reused.

A failover storm re-places thousands of workloads against one snapshot; redoing per-member work for
each would dominate. So members are grouped by country and provider and pre-sorted by preference,
scores are normalised over the whole fleet (like kube-scheduler's NormalizeScore, but fleet-wide so
that it does not depend on the request), and GPU fit is memoised per kind of replica. A snapshot is a
frozen value, so this is memoisation, not state: no answer depends on what happens to be cached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from samizdat.placement import capacity, framework
from samizdat.placement.scores import SCORES
from samizdat.placement.snapshot import GPURequest, Member, Snapshot

# Snapshots whose index is kept: the operator decides against the newest one or two.
RECENT = 4
# Kinds of replica (GPU request and TEE) whose per-member fit is kept per snapshot.
KINDS = 256

Kind = tuple[int, frozenset[str], int, bool]


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
        grouped: dict[str, dict[str, list[Member]]] = {}
        for member in ordered:
            grouped.setdefault(member.country, {}).setdefault(member.provider, []).append(member)
        self.countries: dict[str, dict[str, tuple[Member, ...]]] = {
            country: {
                provider: tuple(sorted(members, key=lambda m: self.preference[m.name]))
                for provider, members in sorted(providers.items())
            }
            for country, providers in sorted(grouped.items())
        }
        # every (country, provider) pair by its most preferred member, most preferred first
        self.pairs: list[tuple[tuple[int, ...], str, str]] = sorted(
            (self.preference[members[0].name], country, provider)
            for country, providers in self.countries.items()
            for provider, members in providers.items()
        )
        self._fits: dict[Kind, dict[str, int]] = {}

    def fitter(self, gpu: GPURequest, require_tee: bool) -> Callable[[Member], int]:
        """`member -> replicas of this kind that still fit on its free GPUs`, memoised."""
        kind: Kind = (gpu.count, gpu.products, gpu.min_memory_mib, require_tee)
        known = self._fits.get(kind)
        if known is None:
            if len(self._fits) >= KINDS:
                self._fits.clear()
            known = self._fits[kind] = {}
        memo = known

        def fits(member: Member) -> int:
            found = memo.get(member.name)
            if found is None:
                # Uncapped, so that one memo serves every replica count; `count < 1` fits anywhere.
                found = memo[member.name] = capacity.new_replicas(member, gpu, require_tee, ceiling=1 << 62)
            return found

        return fits


_recent: list[Index] = []
_lock = threading.Lock()


def of(snapshot: Snapshot, *, remember: bool = True) -> Index:
    """The index of `snapshot`, built on first use; identity, not equality, picks the cached one.

    `remember=False` builds one without caching it, for a snapshot made up for one question.
    """
    with _lock:
        for position, index in enumerate(_recent):
            if index.snapshot is snapshot:
                _recent.insert(0, _recent.pop(position))
                return index
    index = Index(snapshot)
    if remember:
        with _lock:
            _recent.insert(0, index)
            del _recent[RECENT:]
    return index
