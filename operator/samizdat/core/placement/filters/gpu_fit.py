"""Filter `gpu`: at least one more replica fits on one node, or the member already runs some.

Members that pass get their exact capacity from the same `context.fits` later; this only rules out the
ones where nothing fits, with a reason naming what was asked for.
"""

from __future__ import annotations

from samizdat.core.placement.framework import FITS, Context, FilterResult
from samizdat.core.placement.snapshot import MemberInfo

NAME = "gpu"
PER_COUNTRY = False


def filter(member: MemberInfo, context: Context) -> FilterResult:
    if context.request.current.get(member.name, 0) > 0 or context.fits(member):
        return FITS
    return FilterResult((f"no node fits {context.replica_need}",))

