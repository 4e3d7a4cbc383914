"""Filter: members the health layer marked unschedulable (down, quarantined, cordoned) take nothing.

Their replicas are not kept either: a member unfit for new replicas is not trusted with old ones, so
the solver moves those (failover) rather than counting them as placed.
"""

from __future__ import annotations

from samizdat.core.placement.framework import FITS, Context, FilterResult
from samizdat.core.placement.snapshot import MemberInfo

NAME = "unschedulable"
PER_COUNTRY = False


def filter(member: MemberInfo, context: Context) -> FilterResult:
    if member.unschedulable_reason is None:
        return FITS
    return FilterResult((f"unschedulable: {member.unschedulable_reason}",))
