"""Whether the countries and alliances a resource names exist.

The CRDs can check that a country code has the right shape, not that it is assigned, and cannot check
that an alliance name refers to an Alliance. A typo in `deniedAlliances` must not silently deny
nothing, so callers (the `plan` command, the handlers) ask here and refuse the object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from samizdat.core import model
from samizdat.core.jurisdictions.countries import unknown_countries


def _unknown(path: str, codes: Iterable[str]) -> list[str]:
    return [f"{path}: {code!r} is not an ISO 3166-1 alpha-2 country code" for code in unknown_countries(codes)]


def member_problems(member: model.MemberCluster) -> tuple[str, ...]:
    return tuple(_unknown("spec.jurisdiction.country", [member.spec.jurisdiction.country]))


def alliance_problems(alliance: model.Alliance) -> tuple[str, ...]:
    return tuple(_unknown("spec.members", alliance.spec.members))


def workload_problems(workload: model.AIWorkload, alliances: Mapping[str, frozenset[str]]) -> tuple[str, ...]:
    """Unknown countries in the placement rules, and denied alliances missing from `alliances`."""
    rules = workload.spec.placement
    return (
        *_unknown("spec.placement.allowedJurisdictions", rules.allowed_jurisdictions),
        *_unknown("spec.placement.deniedJurisdictions", rules.denied_jurisdictions),
        *(
            f"spec.placement.deniedAlliances: no alliance named {name!r} (known: {', '.join(sorted(alliances))})"
            for name in rules.denied_alliances
            if name not in alliances
        ),
    )
