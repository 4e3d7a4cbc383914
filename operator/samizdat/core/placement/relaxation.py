"""One node of the search as a minimum-cost flow: exact for every rule except the alliances it leaves out.

The network, from source to sink:

    source ─▶ [alliance tree over cells] ─▶ cell ─┬─▶ country in ─(convex spread cost)─▶ country out
          └─▶ [jurisdiction counter] ─(1 each)──┘      ─▶ member (kept part, new part) ─▶ provider in
    provider in ─(convex spread cost)─▶ provider out ─┬─────────────────────────▶ sink
                                                          └─(1 each)─▶ [provider counter] ─▶ sink

* Capacity, `maxPerCluster`, `maxPerJurisdiction` and `maxPerProvider` are arc capacities.
* `minProviders` is a counter: each provider's first replica may pass one arc of capacity 1 into a node
  whose arc to the sink must carry `minProviders` units, so at least that many providers are used.
* `minJurisdictions` is the same counter on the country side (countries and providers holding floors
  count already and get no counter arc; their spread cost starts at their floors). A counter must sit
  directly above the countries, so a cell that is aggregated under the alliance tree counts its own
  first replicas: a quota the search decided (a lower bound, like the counter) or, until decided, an
  optimistic credit of as many countries as it could possibly use. The solution's real country count is checked after.
* `family` holds the laminar sets of cells with a cap (the alliances embedded at the root, and the
  pieces branching added); they become the tree. Alliances not in it are checked on the solution.
* A country (provider) that no counter arc touches is one node, not two: its single arc in (out)
  carries its limit and its spread cost. Dijkstra then settles fewer nodes on every path it seeks.

Lower bounds are rewards: each unit on a counter arc is worth more than any placement can otherwise
cost, so a minimum-cost flow that leaves one unsaturated proves no placement in this node satisfies it.
The rest of the cost is the lexicographic objective (kept replicas, then spread, then preference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from samizdat.core.placement import flow
from samizdat.core.placement.problem import Problem, objective

Family = Mapping[frozenset[int], int]


class Segment(NamedTuple):
    """Parallel arcs from a country to a provider: one candidate's kept or new replicas."""

    candidate: int
    capacity: int
    cost: int


@dataclass(frozen=True, slots=True)
class Layout:
    """The part of the network every node shares, computed once per problem."""

    # (country, provider) -> its segments, cheapest first, only as many as the pair can ever use
    pairs: tuple[tuple[int, int, tuple[Segment, ...]], ...]
    # units on a counter arc are worth this much (see module doc)
    reward: int


@dataclass(frozen=True, slots=True)
class Tree:
    """A solved network without minimums, and how each part of its alliance tree is entered: what
    `flow.cheapest_cut_back` needs to price holding fewer replicas in a part."""

    network: flow.Network
    sets: Mapping[frozenset[int], tuple[int, tuple[int, ...]]]  # set of the family -> (node above, arcs in)
    cells: Mapping[int, tuple[int, tuple[int, ...]]]  # cell -> (node above, arcs in)


@dataclass(frozen=True, slots=True)
class Relaxed:
    flows: tuple[int, ...]  # replicas per candidate
    country_totals: tuple[int, ...]
    fresh_providers: int  # providers used that hold no floors
    tree: Tree | None  # only for a relaxation without minimums
    objective: tuple[int, int, int]


def layout(problem: Problem) -> Layout:
    """Candidates grouped by (country, provider), cut to the cheapest that can fill what the pair may take.

    Members of one pair are parallel arcs between the same two nodes, and a minimum-cost flow never
    uses a dearer parallel arc while a cheaper one has room, so the rest can be left out.
    """
    stability = problem.stability_weight
    grouped: dict[tuple[int, int], list[Segment]] = {}
    for index, candidate in enumerate(problem.candidates):
        segments = grouped.setdefault((candidate.country, candidate.provider), [])
        if candidate.keep:
            segments.append(Segment(index, candidate.keep, candidate.preference - stability))
        if candidate.capacity > candidate.keep:
            segments.append(Segment(index, candidate.capacity - candidate.keep, candidate.preference))
    pairs = []
    for (country, provider), segments in sorted(grouped.items()):
        need = min(problem.replicas, problem.country_limit[country], problem.provider_limit[provider])
        if need <= 0:
            segments.clear()
        elif len(segments) > 1:
            segments.sort(key=lambda s: (s.cost, s.candidate))
            for kept, segment in enumerate(segments):
                need -= segment.capacity
                if need <= 0:
                    del segments[kept + 1 :]
                    break
        pairs.append((country, provider, tuple(segments)))
    return Layout(pairs=tuple(pairs), reward=problem.stability_weight * (problem.replicas + 1))


def credits(problem: Problem, family: Family, quotas: Sequence[int | None]) -> dict[int, int]:
    """Countries each aggregated cell counts towards `minJurisdictions`: its quota, else its most."""
    caps: dict[int, int] = {}
    for cells, cap in family.items():
        for cell in cells:
            caps[cell] = min(cap, caps.get(cell, cap))
    counted = {}
    for cell, cap in caps.items():
        quota = quotas[cell]
        fresh = sum(1 for country in problem.cells[cell].countries if not problem.country_base[country])
        counted[cell] = quota if quota is not None else min(cap, fresh, problem.min_jurisdictions)
    return counted


def relax(
    problem: Problem, shared: Layout, family: Family, quotas: Sequence[int | None], *, counting: bool = True
) -> Relaxed | None:
    """The best placement of this node's relaxation, or None when not even the relaxation has one.

    Without `counting`, the minimums (`minJurisdictions`, `minProviders` and the cells' quotas) are left
    out: a looser relaxation on a smaller network. The network is built layer by layer, source to sink,
    so that every arc runs forward (what `flow` needs).
    """
    build = _Builder(problem, shared.reward)
    counting_countries = counting and problem.min_jurisdictions > 0
    shortfall = (
        problem.min_jurisdictions - sum(credits(problem, family, quotas).values()) if counting_countries else 0
    )
    counter = build.network.add_node() if shortfall > 0 else None
    if counter is not None:
        build.rewarded_arc(build.source, counter, shortfall)
    tree = build.alliance_tree(family, quotas if counting_countries else None)
    country_out = build.countries(tree, counter)
    segment_arcs = build.providers(shared, country_out, counting and problem.min_providers > 0)
    return build.solve(segment_arcs, tree)


@dataclass(frozen=True, slots=True)
class _Tree:
    """The alliance tree as built: each cell's node and counter, and how each part of it is entered."""

    cell_node: dict[int, int]
    cell_counter: dict[int, int]
    sets: dict[frozenset[int], tuple[int, tuple[int, ...]]]  # set of the family -> (node above, arcs in)
    cells: dict[int, tuple[int, tuple[int, ...]]]  # cell -> (node above, arcs in)


class _Builder:
    """One relaxation's network, built one layer at a time, and the counter arcs that must be full."""

    sink: int  # added last but one layer, once the providers' nodes are numbered

    def __init__(self, problem: Problem, reward: int) -> None:
        self.problem, self.reward = problem, reward
        self.network = flow.Network()
        self.rewarded: list[tuple[int, int]] = []  # (arc, units it must carry)
        self.source = self.network.add_node()

    def rewarded_arc(self, tail: int, head: int, units: int) -> None:
        if units > 0:
            self.rewarded.append((self.network.add_arc(tail, head, units, -self.reward), units))

    def alliance_tree(self, family: Family, quotas: Sequence[int | None] | None) -> _Tree:
        """The family's sets and their cells, each cell with a counter for its quota (when counting)."""
        network, replicas = self.network, self.problem.replicas
        # Larger sets first, so a parent (a strict superset) always precedes its children.
        sets = sorted(family, key=lambda s: (-len(s), sorted(s)))
        set_node: dict[frozenset[int], int] = {}
        set_entry: dict[frozenset[int], tuple[int, tuple[int, ...]]] = {}
        for cells in sets:
            node = set_node[cells] = network.add_node()
            parents = [other for other in sets if len(other) > len(cells) and cells < other]
            tail = set_node[min(parents, key=len)] if parents else self.source
            set_entry[cells] = (tail, (network.add_arc(tail, node, family[cells], 0),))
        cell_node: dict[int, int] = {}
        cell_entry: dict[int, tuple[int, tuple[int, ...]]] = {}
        for cell in sorted({cell for cells in sets for cell in cells}):
            node = cell_node[cell] = network.add_node()
            smallest = min((cells for cells in sets if cell in cells), key=len)
            cell_entry[cell] = (set_node[smallest], (network.add_arc(set_node[smallest], node, replicas, 0),))
        cell_counter: dict[int, int] = {}
        for cell in cell_node:
            quota = quotas[cell] if quotas is not None else None
            if quota:
                cell_counter[cell] = network.add_node()
                self.rewarded_arc(cell_node[cell], cell_counter[cell], quota)
        return _Tree(cell_node, cell_counter, set_entry, cell_entry)

    def countries(self, tree: _Tree, counter: int | None) -> list[int]:
        """Each country's node out, entered from its cell in the tree or from the source.

        A country with floors counts already: no counter arc, and its spread cost starts at its floors.
        A country that no counter feeds needs no node of its own for the way in: its one arc in carries
        the limit and the spread cost (fewer nodes, faster paths).
        """
        problem, network = self.problem, self.network
        country_out: list[int] = []
        for index, (limit, floors) in enumerate(zip(problem.country_limit, problem.country_base, strict=True)):
            home = problem.cell_of_country[index]
            if home is not None and home in tree.cell_node:
                tail, counted_by = tree.cell_node[home], tree.cell_counter.get(home)
            else:
                tail, counted_by = self.source, counter
            spread = (floors * problem.spread_weight, problem.spread_weight)
            if counted_by is None or floors:
                country_out.append(network.add_node())
                arc = network.add_arc(tail, country_out[-1], limit, *spread)
                if home is not None and home not in tree.cell_node:
                    # a cell outside the tree is entered straight from the source, country by country
                    tree.cells[home] = (self.source, (*tree.cells.get(home, (self.source, ()))[1], arc))
                continue
            country_in = network.add_node()
            country_out.append(network.add_node())
            network.add_arc(tail, country_in, problem.replicas, 0)
            network.add_arc(counted_by, country_in, 1, 0)
            network.add_arc(country_in, country_out[-1], limit, *spread)
        return country_out

    def providers(self, shared: Layout, country_out: list[int], counting: bool) -> list[tuple[int, int]]:
        """The members' segments from countries to providers, the providers to the sink (each provider's
        first replica through the counter when counting): the arcs of the segments, with their candidate."""
        problem, network = self.problem, self.network
        provider_in = [network.add_node() for _ in problem.providers]
        segment_arcs: list[tuple[int, int]] = []  # (arc, candidate)
        for country, provider, segments in shared.pairs:
            for segment in segments:
                arc = network.add_arc(country_out[country], provider_in[provider], segment.capacity, segment.cost)
                segment_arcs.append((arc, segment.candidate))
        provider_out = [network.add_node() if counting and not floors else None for floors in problem.provider_base]
        provider_counter = network.add_node() if counting else None
        self.sink = network.add_node()
        for index, (limit, floors) in enumerate(zip(problem.provider_limit, problem.provider_base, strict=True)):
            spread = (floors * problem.spread_weight, problem.spread_weight)
            out = provider_out[index]
            if out is None or provider_counter is None:
                network.add_arc(provider_in[index], self.sink, limit, *spread)
                continue
            network.add_arc(provider_in[index], out, limit, *spread)
            network.add_arc(out, self.sink, problem.replicas, 0)
            network.add_arc(out, provider_counter, 1, 0)
        if provider_counter is not None:
            self.rewarded_arc(provider_counter, self.sink, problem.min_providers)
        return segment_arcs

    def solve(self, segment_arcs: list[tuple[int, int]], tree: _Tree) -> Relaxed | None:
        """The minimum-cost flow read back as a placement; None when it falls short of the replicas or
        of a counter (no placement of the relaxation reaches that minimum)."""
        problem, network = self.problem, self.network
        if flow.min_cost_flow(network, self.source, self.sink, problem.replicas) < problem.replicas:
            return None
        if any(network.flow(arc) < units for arc, units in self.rewarded):
            return None
        flows = [0] * len(problem.candidates)
        for arc, index in segment_arcs:
            flows[index] += network.flow(arc)
        totals = [0] * len(problem.countries)
        fresh_providers = set()
        for candidate, replicas_here in zip(problem.candidates, flows, strict=True):
            if replicas_here:
                totals[candidate.country] += replicas_here
                if not problem.provider_base[candidate.provider]:
                    fresh_providers.add(candidate.provider)
        placed = tuple(flows)
        return Relaxed(
            flows=placed,
            country_totals=tuple(totals),
            fresh_providers=len(fresh_providers),
            objective=objective(problem, placed),
            tree=None if self.rewarded else Tree(network, tree.sets, tree.cells),
        )
