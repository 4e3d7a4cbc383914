"""Jurisdiction data: country codes, the built-in alliances and their sources, merging, reference checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from samizdat.core import jurisdictions, model

Builder = Callable[..., dict[str, Any]]
BUILT_IN = {alliance.metadata.name: alliance for alliance in jurisdictions.builtin_alliances()}


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        pytest.param("GB", True, id="GB"),
        pytest.param("US", True, id="US"),
        pytest.param("NO", True, id="NO-norway"),
        pytest.param("UK", False, id="UK-is-not-iso"),
        pytest.param("EL", False, id="EL-eu-greece-is-not-iso"),
        pytest.param("XK", False, id="XK-user-assigned"),
        pytest.param("gb", False, id="lower-case"),
        pytest.param("GBR", False, id="alpha-3"),
        pytest.param("", False, id="empty"),
    ],
)
def test_is_country(code: str, valid: bool) -> None:
    assert jurisdictions.is_country(code) is valid


@pytest.mark.parametrize(
    ("code", "name"),
    [
        pytest.param("GB", "United Kingdom", id="GB"),
        pytest.param("KR", "South Korea", id="common-name-preferred"),
        pytest.param("TW", "Taiwan", id="TW"),
        pytest.param("IS", "Iceland", id="IS"),
    ],
)
def test_country_name(code: str, name: str) -> None:
    assert jurisdictions.country_name(code) == name


@pytest.mark.parametrize("code", [pytest.param("UK", id="UK"), pytest.param("de", id="lower-case")])
def test_country_name_of_unknown_code_raises(code: str) -> None:
    with pytest.raises(jurisdictions.UnknownCountryError, match=repr(code)):
        jurisdictions.country_name(code)


def test_unknown_countries_are_listed_once_and_sorted() -> None:
    assert jurisdictions.unknown_countries(["UK", "DE", "ZZ", "UK", "FR"]) == ("UK", "ZZ")


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


@pytest.mark.parametrize(
    ("placement", "problems"),
    [
        pytest.param({"deniedAlliances": ["five-eyes", "eu"]}, [], id="known"),
        pytest.param(
            {"allowedJurisdictions": ["DE", "UK"]},
            ["spec.placement.allowedJurisdictions: 'UK' is not an ISO 3166-1 alpha-2 country code"],
            id="unknown-allowed-country",
        ),
        pytest.param(
            {"deniedJurisdictions": ["ZZ"]},
            ["spec.placement.deniedJurisdictions: 'ZZ' is not an ISO 3166-1 alpha-2 country code"],
            id="unknown-denied-country",
        ),
        pytest.param(
            {"deniedAlliances": ["five-eye"]},
            ["spec.placement.deniedAlliances: no alliance named 'five-eye'"
             " (known: eea, eu, five-eyes, fourteen-eyes, nine-eyes)"],
            id="alliance-typo",
        ),
    ],
)
def test_workload_problems(ai_workload: Builder, placement: dict[str, Any], problems: list[str]) -> None:
    workload = model.AIWorkload.model_validate(ai_workload({"placement": placement}))

    assert list(jurisdictions.workload_problems(workload, jurisdictions.alliance_table())) == problems


def test_member_and_alliance_problems(member_cluster: Builder, alliance: Builder) -> None:
    member = model.MemberCluster.model_validate(member_cluster(country="XK"))
    pact = model.Alliance.model_validate(alliance("pact", ["DE", "QQ"]))

    assert jurisdictions.member_problems(member) == (
        "spec.jurisdiction.country: 'XK' is not an ISO 3166-1 alpha-2 country code",
    )
    assert jurisdictions.alliance_problems(pact) == ("spec.members: 'QQ' is not an ISO 3166-1 alpha-2 country code",)
