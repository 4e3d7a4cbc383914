"""Filter `clusterSelector`: equality match of every selector label on the member's labels."""

from __future__ import annotations

from samizdat.placement.framework import FITS, Context, FilterResult
from samizdat.placement.snapshot import Member

NAME = "clusterSelector"
PER_COUNTRY = False


def filter(member: Member, context: Context) -> FilterResult:
    selector = context.request.rules.cluster_selector
    if not selector:
        return FITS
    misses = sorted(key for key, value in selector.items() if member.labels.get(key) != value)
    if not misses:
        return FITS
    return FilterResult((f"clusterSelector does not match ({', '.join(misses)})",))
