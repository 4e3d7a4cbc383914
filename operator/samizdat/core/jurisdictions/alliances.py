"""Alliances: the built-in ones shipped in `alliances.yaml`, merged with the Alliance objects users create.

Placement sees alliances only as a table, alliance name -> member countries; this module builds it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from importlib import resources

import yaml

from samizdat.core import model


@functools.cache
def builtin_alliances() -> tuple[model.Alliance, ...]:
    """five-eyes, nine-eyes, fourteen-eyes, eu and eea, each with the source of its membership list."""
    text = resources.files(__package__).joinpath("alliances.yaml").read_text(encoding="utf-8")
    return tuple(model.Alliance.model_validate(document) for document in yaml.safe_load_all(text))


def merge_alliances(user: Iterable[model.Alliance]) -> dict[str, model.Alliance]:
    """Built-ins plus `user`'s alliances by name; a user alliance replaces the built-in of the same name."""
    merged = {alliance.metadata.name: alliance for alliance in builtin_alliances()}
    merged.update((alliance.metadata.name, alliance) for alliance in user)
    return merged


def alliance_table(user: Iterable[model.Alliance] = ()) -> dict[str, frozenset[str]]:
    """Alliance name -> member countries, built-ins merged with `user` (see `merge_alliances`)."""
    return {name: frozenset(alliance.spec.members) for name, alliance in merge_alliances(user).items()}


def alliances_of(country: str, table: Mapping[str, frozenset[str]]) -> tuple[str, ...]:
    """Names of the alliances in `table` that `country` belongs to, sorted."""
    return tuple(sorted(name for name, members in table.items() if country in members))
