"""Filter `clusterSelector`: equality match of every selector label on the member's labels."""

from __future__ import annotations

from samizdat.core.placement.framework import FITS, Context, FilterResult
from samizdat.core.placement.snapshot import MemberInfo

NAME = "clusterSelector"
PER_COUNTRY = False


def filter(member: MemberInfo, context: Context) -> FilterResult:
    selector = context.request.rules.cluster_selector
    if not selector:
        return FITS
    misses = sorted(key for key, value in selector.items() if member.labels.get(key) != value)
    if not misses:
        return FITS
    return FilterResult((f"clusterSelector does not match ({', '.join(misses)})",))
