"""Country codes: which are ISO 3166-1 alpha-2, and their names."""

from __future__ import annotations

import pytest

from samizdat.core import jurisdictions


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
