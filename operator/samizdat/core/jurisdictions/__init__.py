"""Jurisdiction data: ISO 3166-1 countries, the built-in alliances, and checks of what resources name."""

from samizdat.core.jurisdictions.alliances import alliance_table, alliances_of, builtin_alliances, merge_alliances
from samizdat.core.jurisdictions.countries import UnknownCountryError, country_name, is_country, unknown_countries
from samizdat.core.jurisdictions.references import alliance_problems, member_problems, workload_problems

__all__ = [
    "UnknownCountryError",
    "alliance_problems",
    "alliance_table",
    "alliances_of",
    "builtin_alliances",
    "country_name",
    "is_country",
    "member_problems",
    "merge_alliances",
    "unknown_countries",
    "workload_problems",
]
