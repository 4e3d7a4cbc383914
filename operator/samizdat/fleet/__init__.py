"""The operator's live view of its member clusters, built on the I/O layer in `samizdat.clusters`."""

from samizdat.fleet.fleet import Fleet
from samizdat.fleet.member import Censorship, Copy, Member, MemberSettings, tampering

__all__ = ["Censorship", "Copy", "Fleet", "Member", "MemberSettings", "tampering"]
