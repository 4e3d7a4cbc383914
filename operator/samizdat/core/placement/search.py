"""The select-and-assign stage: an exact branch and bound over alliance cells, one flow per node.

Why a search at all: every rule but two fits one minimum-cost flow (see `relaxation`). The two that do
not are alliances that cross each other (fourteen-eyes and the EU share members but neither contains
the other) and `minJurisdictions` counted across alliance cells. So:

* The root embeds the largest laminar family of binding alliances in the flow; if its best placement
  also keeps the other alliances and reaches `minJurisdictions`, it is optimal and we are done. That is
  the common case, and it costs one flow.
* A node whose placement overfills an alliance branches on how that alliance's cap is split among
  "pieces" of it that are laminar with the node's tree (maximal groups of sibling subtrees): one child
  per split, each child caps every piece, so the alliance can never overfill below it.
* A node short of jurisdictions branches on how many countries one optimistic cell really uses.

Every feasible placement lies in some child, every child's flow is a relaxation of its region, and
each branching settles one alliance or one cell for good, so the search is complete and finite:
at most (splits of the cap over an alliance's pieces) per alliance times (quota choices) per cell,
independent of the number of members. Bounds prune it: a node whose relaxation cannot beat the best
placement found is dropped, and a child is bounded before it is solved: capping a piece below its
current load costs at least that excess times the cheapest way to move one replica out of it (a
shortest cycle in the parent's residual network; the cost of each further one only rises), so most
children of a split are dropped without a flow of their own. The objective is exact for kept
replicas (stability) always, and for the softer preferences for the first `SOFT_BUDGET` nodes; past
that only stability can reopen a branch.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from samizdat.core.placement import flow, relaxation
from samizdat.core.placement.problem import Alliance, Problem, packed

# Flows solved while spread, cost and latency may still reopen a branch; keeps the worst case cheap.
SOFT_BUDGET = 16


@dataclass(frozen=True, slots=True)
class _Node:
    family: dict[frozenset[int], int]
    quotas: tuple[int | None, ...]
    bound: int | None  # no placement in this node beats it (a packed objective, see `problem.packed`)


@dataclass(frozen=True, slots=True)
class Searched:
    flows: tuple[int, ...] | None  # replicas per candidate, None when no placement keeps every rule
    nodes: int  # flows solved, for benchmarks and tests


def search(problem: Problem) -> Searched:
    """The best placement of `problem` (depth first, most promising child first), or none at all."""
    shared = relaxation.layout(problem)
    stack = [_Node(family=_embedded(problem), quotas=(None,) * len(problem.cells), bound=None)]
    best: relaxation.Relaxed | None = None
    solved = 0
    while stack:
        node = stack.pop()
        if best is not None and node.bound is not None and not _improves(problem, node.bound, best, solved):
            continue
        relaxed = _relax(problem, shared, node)
        solved += 1
        if relaxed is None or (
            best is not None and not _improves(problem, packed(problem, relaxed.objective), best, solved)
        ):
            continue
        children = _branch(problem, node, relaxed)
        if not children and _flawless(problem, relaxed):
            best = relaxed
        stack.extend(reversed(children))
    return Searched(flows=None if best is None else best.flows, nodes=solved)


def _relax(problem: Problem, shared: relaxation.Layout, node: _Node) -> relaxation.Relaxed | None:
    """The node's relaxation, tried first without the minimums: when its best placement reaches them
    anyway, that placement is also the best one that must reach them, found on a smaller network."""
    loose = relaxation.relax(problem, shared, node.family, node.quotas, counting=False)
    if loose is None or not (problem.min_jurisdictions or problem.min_providers):
        return loose
    if _distinct(problem, loose) >= problem.min_jurisdictions and loose.fresh_providers >= problem.min_providers:
        return loose
    return relaxation.relax(problem, shared, node.family, node.quotas)


def _improves(problem: Problem, bound: int, incumbent: relaxation.Relaxed, solved: int) -> bool:
    if solved <= SOFT_BUDGET:
        return bound < packed(problem, incumbent.objective)
    # Past the budget only kept replicas count; the packed bound's top digit bounds them.
    return bound // problem.stability_weight < incumbent.objective[0]


def _embedded(problem: Problem) -> dict[frozenset[int], int]:
    """The root's tree: binding alliances, widest first, skipping any that would cross one taken."""
    family: dict[frozenset[int], int] = {}
    widest = sorted(
        problem.alliances,
        key=lambda alliance: (-sum(len(problem.cells[cell].countries) for cell in alliance.cells), alliance.name),
    )
    for alliance in widest:
        if all(alliance.cells <= cells or cells <= alliance.cells or not alliance.cells & cells for cells in family):
            family[alliance.cells] = min(alliance.cap, family.get(alliance.cells, alliance.cap))
    return family


def _flawless(problem: Problem, relaxed: relaxation.Relaxed) -> bool:
    return _overfilled(problem, relaxed) is None and _distinct(problem, relaxed) >= problem.min_jurisdictions


def _distinct(problem: Problem, relaxed: relaxation.Relaxed) -> int:
    """Countries the placement adds to those its floors already use."""
    totals = zip(relaxed.country_totals, problem.country_base, strict=True)
    return sum(1 for total, floors in totals if total and not floors)


def _load(problem: Problem, cells: frozenset[int], relaxed: relaxation.Relaxed) -> int:
    return sum(relaxed.country_totals[country] for cell in cells for country in problem.cells[cell].countries)


def _overfilled(problem: Problem, relaxed: relaxation.Relaxed) -> Alliance | None:
    """The most overfilled alliance (first by name on ties), or None."""
    worst, excess = None, 0
    for alliance in problem.alliances:
        over = _load(problem, alliance.cells, relaxed) - alliance.cap
        if over > excess:
            worst, excess = alliance, over
    return worst


def _branch(problem: Problem, node: _Node, relaxed: relaxation.Relaxed) -> list[_Node]:
    """Children that together hold every placement of `node`, most promising first; [] at a leaf."""
    overfilled = _overfilled(problem, relaxed)
    if overfilled is not None:
        return _split(problem, node, overfilled, relaxed)
    if _distinct(problem, relaxed) < problem.min_jurisdictions:
        return _settle_quota(problem, node, relaxed)
    return []


def _split(problem: Problem, node: _Node, alliance: Alliance, relaxed: relaxation.Relaxed) -> list[_Node]:
    pieces = _pieces(node.family, alliance.cells, frozenset(range(len(problem.cells))))
    highs = [_ceiling(problem, node.family, piece, alliance.cap) for piece in pieces]
    lows = [sum(node.quotas[cell] or 0 for cell in piece) for piece in pieces]
    total = min(alliance.cap, sum(highs))
    loads = [_load(problem, piece, relaxed) for piece in pieces]
    prices = _cut_prices(node.family, pieces, relaxed.tree)
    base = packed(problem, relaxed.objective)
    children = []
    for caps in _compositions(total, lows, highs):
        excess = [max(0, load - cap) for load, cap in zip(loads, caps, strict=True)]
        if any(over and price is None for over, price in zip(excess, prices, strict=True)):
            continue  # a piece that cannot hold fewer replicas than now: no placement in this child
        # Each piece's cap alone already costs its excess times its price (the cost of holding fewer
        # replicas in a part rises with each one more), so the child costs at least the dearest.
        bound = base + max((over * (price or 0) for over, price in zip(excess, prices, strict=True)), default=0)
        family = dict(node.family)
        for piece, cap in zip(pieces, caps, strict=True):
            family[piece] = min(cap, family.get(piece, cap))
        children.append((bound, sum(excess), caps, _Node(family=family, quotas=node.quotas, bound=bound)))
    children.sort(key=lambda child: child[:3])
    return [child for *_, child in children]


def _cut_prices(
    family: dict[frozenset[int], int], pieces: list[frozenset[int]], tree: relaxation.Tree | None
) -> list[int | None]:
    """Per piece, the least one replica fewer in it costs (None: it cannot hold fewer); 0 when unknown."""
    if tree is None:
        return [0] * len(pieces)
    prices = []
    for piece in pieces:
        # The piece's parts: its widest sets of the family, and its cells outside those.
        widest = [cells for cells in family if cells <= piece and not any(cells < other <= piece for other in family)]
        loose = piece.difference(*widest)
        entries = [tree.sets[cells] for cells in widest] + [tree.cells[cell] for cell in sorted(loose)]
        above = {node for node, _ in entries}
        if len(above) != 1:
            raise AssertionError(f"piece {sorted(piece)} hangs from several nodes {sorted(above)}")
        arcs = frozenset(arc for _, arcs in entries for arc in arcs)
        prices.append(flow.cheapest_cut_back(tree.network, above.pop(), arcs))
    return prices


def _pieces(
    family: dict[frozenset[int], int], target: frozenset[int], everything: frozenset[int]
) -> list[frozenset[int]]:
    """Split `target` into the fewest sets that each keep `family` laminar when added to it.

    Walking the tree from the root, the children of a node (its maximal subsets in the family, and its
    loose cells) that lie wholly inside `target` form one piece; children that straddle it are opened.
    """
    pieces: list[frozenset[int]] = []

    def visit(container: frozenset[int], inside: list[frozenset[int]]) -> None:
        maximal = [cells for cells in inside if not any(cells < other for other in inside)]
        loose = container.difference(*maximal)
        group: set[int] = set()
        for child in sorted(maximal, key=sorted) + [frozenset({cell}) for cell in sorted(loose)]:
            if child <= target:
                group |= child
            elif child & target:
                visit(child, [cells for cells in family if cells < child])
        if group:
            pieces.append(frozenset(group))

    visit(everything, list(family))
    return pieces


def _ceiling(problem: Problem, family: dict[frozenset[int], int], piece: frozenset[int], cap: int) -> int:
    """The most replicas `piece` of an alliance with `cap` can hold in this node: that cap, its own and
    its ancestors' caps, its countries' limits."""
    room = sum(problem.country_limit[country] for cell in piece for country in problem.cells[cell].countries)
    caps = [limit for cells, limit in family.items() if piece <= cells]
    return min([room, cap, *caps])


def _compositions(total: int, lows: Sequence[int], highs: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every way to write `total` as a sum with `lows[i] <= part i <= highs[i]`."""
    if not lows:
        if total == 0:
            yield ()
        return
    rest_low, rest_high = sum(lows[1:]), sum(highs[1:])
    for first in range(max(lows[0], total - rest_high), min(highs[0], total - rest_low) + 1):
        for rest in _compositions(total - first, lows[1:], highs[1:]):
            yield (first, *rest)


def _settle_quota(problem: Problem, node: _Node, relaxed: relaxation.Relaxed) -> list[_Node]:
    """Decide how many countries the optimistic cell with the most unused credit really uses."""
    counted = relaxation.credits(problem, node.family, node.quotas)
    used = {
        cell: sum(
            1
            for country in problem.cells[cell].countries
            if relaxed.country_totals[country] and not problem.country_base[country]
        )
        for cell in counted
    }
    open_cells = [cell for cell in counted if node.quotas[cell] is None]
    cell = max(open_cells, key=lambda c: (counted[c] - used[c], -c))
    target = min(counted[cell], used[cell] + problem.min_jurisdictions - _distinct(problem, relaxed))
    quotas = sorted(range(counted[cell] + 1), key=lambda d: (abs(d - target), -d))
    bound = packed(problem, relaxed.objective)
    return [_Node(family=node.family, quotas=_with(node.quotas, cell, quota), bound=bound) for quota in quotas]


def _with(quotas: tuple[int | None, ...], cell: int, quota: int) -> tuple[int | None, ...]:
    return tuple(itertools.chain(quotas[:cell], (quota,), quotas[cell + 1 :]))
