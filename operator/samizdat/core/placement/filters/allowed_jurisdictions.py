"""Filter `allowedJurisdictions`: when the list is non-empty, only members in those countries qualify."""

from __future__ import annotations

from samizdat.core.placement.framework import FITS, Context, FilterResult
from samizdat.core.placement.snapshot import MemberInfo

NAME = "allowedJurisdictions"
PER_COUNTRY = True


def filter(member: MemberInfo, context: Context) -> FilterResult:
    allowed = context.request.rules.allowed_jurisdictions
    if not allowed or member.country in allowed:
        return FITS
    return FilterResult((f"not in allowedJurisdictions: {member.country}",))
