"""Filter `requireTEE`: the member must be confidential-computing capable.

This is the member-level half; the node-level half (a shape must have `tee`) is part of GPU fit, since
a TEE member may still have non-TEE nodes.
"""

from __future__ import annotations

from samizdat.placement.framework import FITS, Context, FilterResult
from samizdat.placement.snapshot import Member

NAME = "requireTEE"
PER_COUNTRY = False


def filter(member: Member, context: Context) -> FilterResult:
    if member.tee or not context.request.rules.require_tee:
        return FITS
    return FilterResult(("no TEE",))
