"""Filter `deniedAlliances`: no replica in a country that belongs to a denied alliance.

Membership comes from the snapshot's alliance table; a denied name the table does not know denies
nothing (the CRD layer is where unknown names are reported).
"""

from __future__ import annotations

from samizdat.core.placement.framework import FITS, Context, FilterResult
from samizdat.core.placement.snapshot import MemberInfo

NAME = "deniedAlliances"
PER_COUNTRY = True


def filter(member: MemberInfo, context: Context) -> FilterResult:
    names = context.denied_alliances_of.get(member.country)
    if not names:
        return FITS
    return FilterResult(tuple(f"denied: alliance {name}" for name in names))
