"""Builders for placement tests: members with sensible defaults, the built-in alliance table.

Holds no tests itself; the placement test modules import it so that each table reads as data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from samizdat.core import jurisdictions, placement

ALLIANCES = jurisdictions.alliance_table()


def shape(
    free: int = 8, nodes: int = 1, *, product: str = "H100", memory: int = 80000, tee: bool = False
) -> placement.NodeShape:
    return placement.NodeShape(product=product, memory_mib=memory, tee=tee, free_gpus=free, nodes=nodes)


def member(
    name: str,
    country: str,
    provider: str = "cloud",
    *,
    shapes: Iterable[placement.NodeShape] | None = None,
    **fields: Any,
) -> placement.MemberInfo:
    """A member with one node of 8 free H100s unless told otherwise."""
    return placement.MemberInfo(
        name=name, country=country, provider=provider, shapes=(shape(),) if shapes is None else tuple(shapes), **fields
    )


def world(*members: placement.MemberInfo, alliances: Mapping[str, frozenset[str]] = ALLIANCES) -> placement.Snapshot:
    return placement.Snapshot(members=tuple(members), alliances=alliances)


def request(
    replicas: int,
    *,
    gpus: int = 1,
    products: Iterable[str] = (),
    memory: int = 0,
    current: Mapping[str, int] | None = None,
    **rules: Any,
) -> placement.Request:
    """A request; `rules` are `Rules` fields, sets given as any iterable."""
    for name in ("allowed_jurisdictions", "denied_jurisdictions", "denied_alliances"):
        if name in rules:
            rules[name] = frozenset(rules[name])
    return placement.Request(
        replicas=replicas,
        gpu=placement.GPURequest(count=gpus, products=frozenset(products), min_memory_mib=memory),
        rules=placement.Rules(**rules),
        current=dict(current or {}),
    )


def per_country(snapshot: placement.Snapshot, assignments: Mapping[str, int]) -> dict[str, int]:
    countries = {m.name: m.country for m in snapshot.members}
    totals: dict[str, int] = {}
    for name, replicas in assignments.items():
        totals[countries[name]] = totals.get(countries[name], 0) + replicas
    return totals
