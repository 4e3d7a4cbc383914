"""Filter `requireTEE`: the member must be confidential-computing capable.

This is the member-level half; the node-level half (a shape must have `tee`) is part of GPU fit, since
a TEE member may still have non-TEE nodes. With `requireObservedTEE` the member must also have nodes
whose agent observed confidential computing ready; the replica's pods then select those nodes by the
agent's label (see `manifests`), so a member that is TEE only by labels takes none.
"""

from __future__ import annotations

from samizdat.core.placement.framework import FITS, Context, FilterResult
from samizdat.core.placement.snapshot import MemberInfo

NAME = "requireTEE"
PER_COUNTRY = False


def filter(member: MemberInfo, context: Context) -> FilterResult:
    rules = context.request.rules
    if not rules.require_tee:
        return FITS
    if not member.tee:
        return FilterResult(("no TEE",))
    if rules.require_observed_tee and not any(shape.tee_observed for shape in member.shapes):
        return FilterResult(("no TEE observed by an agent",))
    return FITS
