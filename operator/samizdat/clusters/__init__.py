"""Member-cluster I/O: every call to a member's API (and the hub's Secrets) goes through this package.

One `MemberClient` per member, every request under a deadline, every failure one of our own
`MemberError`s, one verb per module, and a single write path (`writing.write`), which only the elected
leader (`electing.Candidate`) gets through.
"""

from samizdat.clusters import kubeconfig, resources
from samizdat.clusters.applying import apply
from samizdat.clusters.client import Deadlines, MemberClient, Reply
from samizdat.clusters.deleting import delete
from samizdat.clusters.errors import (
    Conflict,
    Gone,
    MemberAPIError,
    MemberError,
    MemberForbidden,
    MemberTimeout,
    MemberTLSError,
    MemberUnauthorized,
    MemberUnreachable,
    NotFound,
)
from samizdat.clusters.fetching import Listing, get, list_objects, read_secret
from samizdat.clusters.kubeconfig import Credentials, KubeconfigError
from samizdat.clusters.probing import Failure, Probe, probe
from samizdat.clusters.resources import Resource
from samizdat.clusters.scaling import scale
from samizdat.clusters.watching import EventType, WatchEvent, list_then_watch, watch

__all__ = [
    "Conflict",
    "Credentials",
    "Deadlines",
    "EventType",
    "Failure",
    "Gone",
    "KubeconfigError",
    "Listing",
    "MemberAPIError",
    "MemberClient",
    "MemberError",
    "MemberForbidden",
    "MemberTLSError",
    "MemberTimeout",
    "MemberUnauthorized",
    "MemberUnreachable",
    "NotFound",
    "Probe",
    "Reply",
    "Resource",
    "WatchEvent",
    "apply",
    "delete",
    "get",
    "kubeconfig",
    "list_objects",
    "list_then_watch",
    "probe",
    "read_secret",
    "resources",
    "scale",
    "watch",
]
