"""The operator's live view of its member clusters, built on the I/O layer in `samizdat.remote.clusters`.

Handlers use only the names below (an import test holds them to it): the `Fleet` and the values it
answers with; a `Member` is the fleet's own business.
"""

from samizdat.remote.fleet.fleet import Fleet, Loss
from samizdat.core.tampering import Censorship, tampering
from samizdat.remote.fleet.member import MemberSettings, MemberState
from samizdat.remote.fleet.views import Copy
from samizdat.remote.fleet.view import WorkloadView, read as read_view

__all__ = ["Censorship", "Copy", "Fleet", "Loss", "MemberSettings", "MemberState", "tampering", "WorkloadView", "read_view"]
