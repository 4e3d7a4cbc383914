"""Tests of the exact machinery under `solve`: the min-cost flow, the alliance tree, the branch and bound."""

from __future__ import annotations

import itertools

import pytest
from support.placement import ALLIANCES, member, request, world

from samizdat.core.placement import flow, problem, search


def test_min_cost_flow_takes_the_cheapest_paths_and_reports_a_shortfall() -> None:
    network = flow.Network()
    source, left, right, sink = (network.add_node() for _ in range(4))
    cheap = network.add_arc(source, left, 2, 1)
    dear = network.add_arc(source, right, 5, 4)
    network.add_arc(left, sink, 5, 0)
    network.add_arc(right, sink, 1, -1)  # negative costs are fine: the network is acyclic
    assert flow.min_cost_flow(network, source, sink, 10) == 3
    assert (network.flow(cheap), network.flow(dear)) == (2, 1)


def test_min_cost_flow_reroutes_through_residual_arcs() -> None:
    # The first path a -> c hogs c; the optimum for two units routes a -> d and b -> c.
    network = flow.Network()
    source, a, b, c, d, sink = (network.add_node() for _ in range(6))
    network.add_arc(source, a, 1, 0)
    network.add_arc(source, b, 1, 0)
    ac = network.add_arc(a, c, 1, 0)
    network.add_arc(a, d, 1, 3)
    network.add_arc(b, c, 1, 1)
    network.add_arc(c, sink, 1, 0)
    network.add_arc(d, sink, 1, 0)
    assert flow.min_cost_flow(network, source, sink, 2) == 2
    assert network.flow(ac) == 0


def test_cutting_back_an_arc_costs_the_cheapest_way_round_it() -> None:
    # Two units go the free way through `free`; one unit less there must take the arc that costs 5,
    # unless that arc is full, and then nothing can make `free` carry less.
    for room, price in ((2, 5), (0, None)):
        network = flow.Network()
        source, a, b, sink = (network.add_node() for _ in range(4))
        free = network.add_arc(source, a, 2, 0)
        network.add_arc(source, b, room, 5)
        network.add_arc(a, sink, 2, 0)
        network.add_arc(b, sink, 2, 0)
        assert flow.min_cost_flow(network, source, sink, 2) == 2
        assert flow.cheapest_cut_back(network, source, {free}) == price


def test_arcs_must_run_forward() -> None:
    network = flow.Network()
    first, second = network.add_node(), network.add_node()
    with pytest.raises(ValueError, match="topological"):
        network.add_arc(second, first, 1, 0)


def _builtin_problem() -> problem.Problem:
    countries = sorted(set().union(*ALLIANCES.values()) | {"CH", "JP"})
    snapshot = world(*(member(country.lower(), country) for country in countries))
    return problem.formulate(snapshot, request(8, max_per_alliance=2, min_jurisdictions=3))


def test_the_root_embeds_a_laminar_family_of_the_builtin_alliances() -> None:
    posed = _builtin_problem()
    names = {alliance.cells: alliance.name for alliance in posed.alliances}
    embedded = sorted(names[cells] for cells in search._embedded(posed))
    # eea and eu nest, five-eyes is apart from both; nine- and fourteen-eyes cross eu.
    assert embedded == ["eea", "eu", "five-eyes"]


def test_pieces_of_a_crossing_alliance_keep_the_tree_laminar() -> None:
    posed = _builtin_problem()
    family = search._embedded(posed)
    fourteen = next(alliance.cells for alliance in posed.alliances if alliance.name == "fourteen-eyes")
    pieces = search._pieces(family, fourteen, frozenset(range(len(posed.cells))))
    assert frozenset().union(*pieces) == fourteen
    assert sum(len(piece) for piece in pieces) == len(fourteen), "pieces are disjoint"
    for piece, cells in itertools.product(pieces, family):
        assert piece <= cells or cells <= piece or not piece & cells


@pytest.mark.parametrize(
    ("total", "lows", "highs", "count"),
    [
        pytest.param(2, [0, 0, 0], [2, 2, 2], 6, id="stars-and-bars"),
        pytest.param(2, [1, 0], [2, 2], 2, id="lower-bounds"),
        pytest.param(3, [0, 0], [1, 1], 0, id="too-little-room"),
        pytest.param(0, [], [], 1, id="empty"),
    ],
)
def test_compositions(total: int, lows: list[int], highs: list[int], count: int) -> None:
    splits = list(search._compositions(total, lows, highs))
    assert len(splits) == len(set(splits)) == count
    assert all(sum(split) == total for split in splits)


def test_crossing_alliances_are_settled_by_branching() -> None:
    snapshot = world(
        member("us", "US", cost_per_gpu_hour=1), member("dk", "DK", cost_per_gpu_hour=1),
        member("de", "DE", cost_per_gpu_hour=1), member("no", "NO", cost_per_gpu_hour=1),
        member("at", "AT", cost_per_gpu_hour=2), member("ch", "CH", cost_per_gpu_hour=5),
        member("jp", "JP", cost_per_gpu_hour=5),
    )  # fmt: skip
    posed = problem.formulate(snapshot, request(5, max_per_alliance=1, min_jurisdictions=4, max_per_jurisdiction=2))
    outcome = search.search(posed)
    assert outcome.flows is not None
    assert outcome.nodes > 1
    placed = {c.member.name: n for c, n in zip(posed.candidates, outcome.flows, strict=True) if n}
    assert placed == {"at": 1, "ch": 2, "jp": 1, "us": 1}


def test_an_impossible_split_is_proved_impossible() -> None:
    # Every country is in fourteen-eyes or the EEA, each capped at 1, yet 3 jurisdictions are needed.
    snapshot = world(member("us", "US"), member("de", "DE"), member("at", "AT"), member("no", "NO"))
    posed = problem.formulate(snapshot, request(3, max_per_alliance=1, min_jurisdictions=3))
    assert search.search(posed).flows is None


def test_a_convex_arc_prices_each_unit_higher_and_gives_back_the_dearest_first() -> None:
    # Units on `convex` cost 0, 10, 20, 30; `flat` costs 15 each, with room for 2.
    network = flow.Network()
    source, middle, sink = (network.add_node() for _ in range(3))
    convex = network.add_arc(source, middle, 4, 0, 10)
    flat = network.add_arc(source, middle, 2, 15)
    network.add_arc(middle, sink, 10, 0)
    assert flow.min_cost_flow(network, source, sink, 4) == 4
    assert (network.flow(convex), network.flow(flat)) == (2, 2)
