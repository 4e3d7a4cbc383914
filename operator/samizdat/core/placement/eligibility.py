"""The filter stage: which members may hold a workload's replicas, and how many each may hold (its room).

One reading of eligibility shared by the solver (`problem`), the binding-rule search (`binding`) and
the `diagnosis`. `rules.violations` reads the rules again on its own, on purpose: it is the
independent check of what the solver returns.
"""

from __future__ import annotations

from samizdat.core.placement import framework, index
from samizdat.core.placement.filters import FILTERS
from samizdat.core.placement.snapshot import MemberInfo, Request


class Eligibility:
    """One request read against one snapshot's index: the filters, and each member's room and keep.

    A member's *room* is the replicas it may hold: those it runs now plus the new ones that fit on its
    free GPUs, at most `maxPerCluster` and `replicas`. Its *keep* is how many of those it runs now may
    stay. Filters that look only at the country (`PER_COUNTRY`) are asked once per country.
    """

    __slots__ = ("_by_country", "_by_member", "_ceiling", "context", "facts", "kind")

    def __init__(self, facts: index.Index, request: Request) -> None:
        self.facts = facts
        self.kind = facts.kind(request.gpu, request.rules.require_tee)
        self.context = framework.context(facts.snapshot, request, self.kind.fits)
        self._by_country = [plugin for plugin in FILTERS if plugin.PER_COUNTRY]
        self._by_member = [plugin for plugin in FILTERS if not plugin.PER_COUNTRY]
        replicas, per_cluster = max(0, request.replicas), request.rules.max_per_cluster
        self._ceiling = replicas if per_cluster is None else max(0, min(per_cluster, replicas))

    def rejections(self, member: MemberInfo) -> tuple[str, ...]:
        """Every filter's reasons against `member`, in the order of `FILTERS`; () when it is eligible."""
        return tuple(reason for plugin in FILTERS for reason in plugin.filter(member, self.context).reasons)

    def open_countries(self) -> list[str]:
        """The countries whose members the per-country filters let through."""
        return [
            country
            for country, member in self.facts.representative.items()
            if not any(plugin.filter(member, self.context).reasons for plugin in self._by_country)
        ]

    def room(self, member: MemberInfo) -> int:
        """The replicas `member` may hold, counting neither eligibility nor the other replicas' rules."""
        current = max(0, self.context.request.current.get(member.name, 0))
        return min(current + self.context.fits(member), self._ceiling)

    def in_open_country(self, member: MemberInfo) -> tuple[int, int] | None:
        """(room, keep) of a member of an open country that the other filters admit and that has room."""
        for plugin in self._by_member:
            if plugin.filter(member, self.context).reasons:
                return None
        room = self.room(member)
        if room <= 0:
            return None
        return room, min(max(0, self.context.request.current.get(member.name, 0)), room)
