"""Minimum-cost flow on a small directed network: the exact engine under every placement relaxation.

Successive shortest paths with Dijkstra on reduced costs (Johnson potentials). Networks here are built
layer by layer, so every arc runs from a lower to a higher node number: the initial potentials come from
one pass over the nodes in that order instead of a Bellman-Ford, and negative costs (rewards) are fine.

Costs are Python integers on purpose: the placement objective is lexicographic and is packed into one
integer with wide radixes, which floats would silently round.

An arc may be convex: its k-th unit (from 0) costs `cost + k * step`. That is k parallel unit arcs of
rising cost folded into one; the residual graph only ever needs the cheapest unused unit forward and
the dearest used unit backward, which is all Dijkstra would pick among the parallel arcs anyway. So a
convex arc's cost and its twin's are rewritten as units pass, and Dijkstra itself never sees a step.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection

# Farther than any path: placement costs stay below 2**128 even for thousands of replicas and members.
UNREACHED = 1 << 512


class Network:
    """Arcs in parallel lists; arc `a` and its residual twin `a ^ 1` are always allocated together."""

    __slots__ = ("adjacency", "capacities", "costs", "heads", "potential", "steps")

    def __init__(self) -> None:
        self.adjacency: list[list[int]] = []
        self.heads: list[int] = []
        self.capacities: list[int] = []
        self.costs: list[int] = []
        self.steps: list[int] = []
        # Node prices after `min_cost_flow`: every arc with room left has a non-negative reduced cost
        # under them, which is what proves the flow optimal (and what `cheapest_cut_back` prices with).
        self.potential: list[int] = []

    def add_node(self) -> int:
        self.adjacency.append([])
        return len(self.adjacency) - 1

    def add_arc(self, tail: int, head: int, capacity: int, cost: int, step: int = 0) -> int:
        """Add an arc (convex when `step` > 0) and return its number; `tail < head` keeps the network
        acyclic (see module doc)."""
        if not tail < head:
            raise ValueError(f"arc {tail}->{head} breaks the topological numbering")
        arc = len(self.heads)
        self.heads += (head, tail)
        self.capacities += (capacity, 0)
        self.costs += (cost, -cost)
        self.steps += (step, step)
        self.adjacency[tail].append(arc)
        self.adjacency[head].append(arc + 1)
        return arc

    def flow(self, arc: int) -> int:
        return self.capacities[arc ^ 1]


def _shortest_tree(network: Network, source: int) -> tuple[list[int], list[int]]:
    """Shortest distances from `source` in the acyclic initial network (UNREACHED where unreachable),
    and the arc each node is reached by (-1 for none): one pass in topological order.

    A node unreachable now stays unreachable: residual twins only ever point back along used paths.
    """
    adjacency, heads, capacities, costs = network.adjacency, network.heads, network.capacities, network.costs
    distance = [UNREACHED] * len(adjacency)
    via = [-1] * len(adjacency)
    distance[source] = 0
    for node, arcs in enumerate(adjacency):
        here = distance[node]
        if here == UNREACHED:
            continue
        for arc in arcs:
            if arc & 1 or not capacities[arc]:
                continue
            head = heads[arc]
            candidate = here + costs[arc]
            if candidate < distance[head]:
                distance[head] = candidate
                via[head] = arc
    return distance, via


def _shortest_paths(
    network: Network, potential: list[int], source: int, sink: int | None, barred: Collection[int] = ()
) -> tuple[list[int], list[int]]:
    """Dijkstra on reduced costs from `source` (stopped at `sink` when given), never leaving `source`
    along an arc in `barred`: distances and the arc reaching each node."""
    adjacency, heads, capacities, costs = network.adjacency, network.heads, network.capacities, network.costs
    distance = [UNREACHED] * len(adjacency)
    via = [-1] * len(adjacency)
    distance[source] = 0
    frontier = [(0, source)]
    while frontier:
        here, node = heapq.heappop(frontier)
        if here != distance[node]:
            continue
        if node == sink:
            # Stopping at the sink is safe: nodes not yet settled get the sink's distance (see caller).
            break
        offset = here + potential[node]
        arcs = adjacency[node]
        if node == source and barred:
            arcs = [arc for arc in arcs if arc not in barred]
        for arc in arcs:
            if capacities[arc]:
                head = heads[arc]
                candidate = offset + costs[arc] - potential[head]
                if candidate < distance[head]:
                    distance[head] = candidate
                    via[head] = arc
                    heapq.heappush(frontier, (candidate, head))
    return distance, via


def _augment(network: Network, via: list[int], source: int, sink: int, most: int) -> int:
    """Send what the path `via` describes can carry (at most `most`) and return it."""
    heads, capacities, costs, steps = network.heads, network.capacities, network.costs, network.steps
    push = most
    node = sink
    while node != source:
        arc = via[node]
        # a convex arc's price holds for one unit only
        push = min(push, 1 if steps[arc] else capacities[arc])
        node = heads[arc ^ 1]
    node = sink
    while node != source:
        arc = via[node]
        capacities[arc] -= push
        capacities[arc ^ 1] += push
        if steps[arc]:
            # the unit just sent is now the dearest to send back; the next one forward costs a step more
            costs[arc ^ 1] = -costs[arc]
            costs[arc] += steps[arc]
        node = heads[arc ^ 1]
    return push


def min_cost_flow(network: Network, source: int, sink: int, amount: int) -> int:
    """Send up to `amount` units from `source` to `sink` at minimum cost; return the units sent.

    After k units the flow is a minimum-cost flow of value k (the successive-shortest-path invariant),
    so a caller asking for exactly `amount` units checks the return value. The first path needs no
    Dijkstra: the topological pass that sets the potentials has found it already.
    """
    distance, via = _shortest_tree(network, source)
    potential = network.potential = [0 if settled == UNREACHED else settled for settled in distance]
    sent = 0
    while sent < amount and distance[sink] != UNREACHED:
        sent += _augment(network, via, source, sink, amount - sent)
        if sent == amount:
            break
        distance, via = _shortest_paths(network, potential, source, sink)
        reach = distance[sink]
        if reach != UNREACHED:
            for node, settled in enumerate(distance):
                potential[node] += reach if settled > reach else settled
    return sent


def cheapest_cut_back(network: Network, start: int, arcs: Collection[int]) -> int | None:
    """What it costs at least to send one unit less through `arcs` (all out of `start`) after
    `min_cost_flow`, the amount sent staying the same; None when no flow can do that.

    Such a change is a cycle of arcs with room through `start` that comes back along one of `arcs` and
    leaves along none of them: the cheapest is one Dijkstra on reduced costs, which are non-negative
    under the potentials the flow left and add up to the true cost around any cycle.
    """
    heads, capacities, costs, potential = network.heads, network.capacities, network.costs, network.potential
    distance, _ = _shortest_paths(network, potential, start, None, arcs)
    back = [
        distance[heads[arc]] + costs[arc ^ 1] + potential[heads[arc]] - potential[start]
        for arc in arcs
        if capacities[arc ^ 1] and distance[heads[arc]] != UNREACHED
    ]
    return min(back, default=None)
