"""Filter `deniedJurisdictions`: no replica in a denied country."""

from __future__ import annotations

from samizdat.core.placement.framework import FITS, Context, FilterResult
from samizdat.core.placement.snapshot import MemberInfo

NAME = "deniedJurisdictions"
PER_COUNTRY = True


def filter(member: MemberInfo, context: Context) -> FilterResult:
    if member.country not in context.request.rules.denied_jurisdictions:
        return FITS
    return FilterResult((f"denied: jurisdiction {member.country}",))
