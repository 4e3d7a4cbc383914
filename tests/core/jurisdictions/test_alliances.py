"""The built-in alliances and their sources, and merging the users' own in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from samizdat.core import jurisdictions, model

Builder = Callable[..., dict[str, Any]]
BUILT_IN = {alliance.metadata.name: alliance for alliance in jurisdictions.builtin_alliances()}


def test_built_in_alliances_are_the_documented_five() -> None:
    assert set(BUILT_IN) == {"five-eyes", "nine-eyes", "fourteen-eyes", "eu", "eea"}


@pytest.mark.parametrize(
    ("name", "size"),
    [
        pytest.param("five-eyes", 5, id="five-eyes"),
        pytest.param("nine-eyes", 9, id="nine-eyes"),
        pytest.param("fourteen-eyes", 14, id="fourteen-eyes"),
        pytest.param("eu", 27, id="eu"),
        pytest.param("eea", 30, id="eea"),
    ],
)
def test_built_in_alliance_is_cited_and_valid(name: str, size: int) -> None:
    alliance = BUILT_IN[name]

    assert len(alliance.spec.members) == size
    assert jurisdictions.unknown_countries(alliance.spec.members) == ()
    assert "https://" in alliance.spec.source
    assert alliance.spec.description


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        pytest.param("five-eyes", "nine-eyes", id="five-in-nine"),
        pytest.param("nine-eyes", "fourteen-eyes", id="nine-in-fourteen"),
        pytest.param("eu", "eea", id="eu-in-eea"),
    ],
)
def test_nested_alliances(smaller: str, larger: str) -> None:
    assert set(BUILT_IN[smaller].spec.members) < set(BUILT_IN[larger].spec.members)


@pytest.mark.parametrize(
    ("country", "alliances"),
    [
        pytest.param("US", ("five-eyes", "fourteen-eyes", "nine-eyes"), id="US"),
        pytest.param("GB", ("five-eyes", "fourteen-eyes", "nine-eyes"), id="GB-not-in-eu"),
        pytest.param("NO", ("eea", "fourteen-eyes", "nine-eyes"), id="NO-eea-not-eu"),
        pytest.param("DE", ("eea", "eu", "fourteen-eyes"), id="DE"),
        pytest.param("IS", ("eea",), id="IS"),
        pytest.param("IE", ("eea", "eu"), id="IE"),
        pytest.param("CH", (), id="CH-in-none"),
        pytest.param("BR", (), id="BR-in-none"),
    ],
)
def test_membership(country: str, alliances: tuple[str, ...]) -> None:
    assert jurisdictions.alliances_of(country, jurisdictions.alliance_table()) == alliances


def test_user_alliance_overrides_built_in_by_name(alliance: Builder) -> None:
    user = model.Alliance.model_validate(alliance("five-eyes", ["US", "GB"], "our own reading"))

    merged = jurisdictions.merge_alliances([user])
    table = jurisdictions.alliance_table([user])

    assert merged["five-eyes"] is user
    assert table["five-eyes"] == frozenset({"US", "GB"})
    assert table["nine-eyes"] == frozenset(BUILT_IN["nine-eyes"].spec.members)


def test_user_alliance_adds_to_built_ins(alliance: Builder) -> None:
    user = model.Alliance.model_validate(alliance("nordics", ["DK", "FI", "IS", "NO", "SE"]))

    table = jurisdictions.alliance_table([user])

    assert set(table) == set(BUILT_IN) | {"nordics"}
    assert jurisdictions.alliances_of("FI", table) == ("eea", "eu", "nordics")


def test_merging_leaves_built_ins_untouched(alliance: Builder) -> None:
    jurisdictions.merge_alliances([model.Alliance.model_validate(alliance("eu", ["DE"]))])

    assert len(jurisdictions.alliance_table()["eu"]) == 27
