"""The pure placement core: decide where a workload's replicas go over an immutable snapshot."""

from samizdat.placement.decision import Decision, Shortfall
from samizdat.placement.rules import violations
from samizdat.placement.snapshot import GPURequest, Member, NodeShape, Request, Rules, Snapshot
from samizdat.placement.solver import SolverError, solve

__all__ = [
    "Decision",
    "GPURequest",
    "Member",
    "NodeShape",
    "Request",
    "Rules",
    "Shortfall",
    "Snapshot",
    "SolverError",
    "solve",
    "violations",
]
