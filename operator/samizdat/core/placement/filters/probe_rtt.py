"""Filter `maxProbeRTTMs`: the member's link must answer samizdat's probes within this many milliseconds.

The figure is the member's probe round trip as samizdat measures it (the median of its recent probes,
see `Member.probe_rtt_ms`), not the member's own claim (`spec.latencyMs`, a score). A member not
measured yet is not kept out: it is unschedulable until its probes answer anyway.
"""

from __future__ import annotations

from samizdat.core.placement.framework import FITS, Context, FilterResult
from samizdat.core.placement.snapshot import MemberInfo

NAME = "maxProbeRTTMs"
PER_COUNTRY = False


def filter(member: MemberInfo, context: Context) -> FilterResult:
    limit = context.request.rules.max_probe_rtt_ms
    if limit is None or member.probe_rtt_ms is None or member.probe_rtt_ms <= limit:
        return FITS
    return FilterResult((f"probe RTT {member.probe_rtt_ms:g} ms over maxProbeRTTMs {limit}",))
