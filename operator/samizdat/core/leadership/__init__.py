"""Leader election among the operators of a hub stretched over several sites (pure: no I/O, no clock).

`lease` is the record kept in a `coordination.k8s.io` Lease; `elector` is one candidate's state machine
over it, whose `Warrant` says whether, and as which epoch, the candidate may write to members.
"""

from samizdat.core.leadership.elector import Election, Elector, Intent, Permit, Timing, Wait, Warrant, Write
from samizdat.core.leadership.lease import (
    EPOCH_ANNOTATION,
    RETIRE_ANNOTATION,
    LeaseRecord,
    MalformedLease,
    StoredLease,
    build_lease,
    micro_time,
    parse_lease,
)

__all__ = [
    "Election",
    "EPOCH_ANNOTATION",
    "Elector",
    "Intent",
    "LeaseRecord",
    "MalformedLease",
    "RETIRE_ANNOTATION",
    "Permit",
    "StoredLease",
    "Timing",
    "Wait",
    "Warrant",
    "Write",
    "build_lease",
    "micro_time",
    "parse_lease",
]
