"""Countries: which ISO 3166-1 alpha-2 codes are assigned, and what they are called.

The model layer only checks the shape of a code (two upper-case letters, as the CRD does); whether it
names a country is decided here, from pycountry's copy of the ISO 3166 database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import pycountry

_SHAPE: Final = re.compile(r"[A-Z]{2}")


class UnknownCountryError(ValueError):
    """A code that is not an assigned ISO 3166-1 alpha-2 code."""


def is_country(code: str) -> bool:
    """Whether `code` is an assigned ISO 3166-1 alpha-2 code, written upper case as the CRDs require."""
    # pycountry matches case-insensitively; the CRDs do not, so neither do we.
    return _SHAPE.fullmatch(code) is not None and pycountry.countries.get(alpha_2=code) is not None


def country_name(code: str) -> str:
    """The name people use for the country (e.g. "South Korea" rather than "Korea, Republic of")."""
    country = pycountry.countries.get(alpha_2=code) if _SHAPE.fullmatch(code) else None
    if country is None:
        raise UnknownCountryError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    name: str = getattr(country, "common_name", None) or country.name
    return name


def unknown_countries(codes: Iterable[str]) -> tuple[str, ...]:
    """The codes among `codes` that name no country, each once, sorted."""
    return tuple(sorted({code for code in codes if not is_country(code)}))
