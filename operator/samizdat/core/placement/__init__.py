"""The pure placement core: decide where a workload's replicas go over an immutable snapshot."""

from samizdat.core.placement.decision import Decision, Shortfall
from samizdat.core.placement.rules import Violation, violations
from samizdat.core.placement.snapshot import GPURequest, MemberInfo, NodeShape, Request, Rules, Snapshot, withhold
from samizdat.core.placement.solver import SolverError, solve

__all__ = [
    "Decision",
    "GPURequest",
    "MemberInfo",
    "NodeShape",
    "Request",
    "Rules",
    "Shortfall",
    "Snapshot",
    "SolverError",
    "Violation",
    "solve",
    "violations",
    "withhold",
]
