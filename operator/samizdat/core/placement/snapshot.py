"""The immutable world the placement core decides over: members, their GPU node shapes, the request.

Everything here is a frozen value. The I/O layer builds a `Snapshot` from watches of member clusters;
`samizdat plan` builds one from YAML files; tests and benchmarks build them directly. The solver never
sees a Kubernetes object, only these values.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass, field

from samizdat.core.model import WhenUnsatisfiable


@dataclass(frozen=True, slots=True)
class NodeShape:
    """`nodes` GPU nodes that are alike in every way placement cares about.

    Nodes are grouped by what they can still take (`free_gpus` per node), so a shape is exact for
    per-node fit: a replica needing `g` GPUs fits `free_gpus // g` times on each of the `nodes` nodes.
    """

    product: str
    memory_mib: int
    tee: bool
    free_gpus: int
    nodes: int
    # Confidential computing seen ready by samizdat's NVML agent, not merely claimed by a label.
    tee_observed: bool = False


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One member cluster as the placement core sees it."""

    name: str
    country: str
    provider: str
    region: str | None = None
    tee: bool = False
    cost_per_gpu_hour: float = 0.0
    latency_ms: float = 0.0
    # samizdat's own measure of the member's link: the median of its recent probes (None: not yet).
    probe_rtt_ms: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    shapes: tuple[NodeShape, ...] = ()
    # Why no new replica may land here (down, quarantined, cordoned), or None when it may.
    unschedulable_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    """The placement rules of one workload (`spec.placement`). None means "no limit".

    Every rule is a limit, never broken, except the two spread minimums, `min_jurisdictions` and
    `min_providers`: with `WhenUnsatisfiable.SCHEDULE_ANYWAY` they are given up, as little as possible,
    when no placement of every replica under the limits meets them (see `solver.solve`).
    """

    min_jurisdictions: int = 1
    max_per_jurisdiction: int | None = None
    max_per_alliance: int | None = None
    max_per_provider: int | None = None
    max_per_cluster: int | None = None
    min_providers: int = 1
    allowed_jurisdictions: frozenset[str] = frozenset()
    denied_jurisdictions: frozenset[str] = frozenset()
    denied_alliances: frozenset[str] = frozenset()
    require_tee: bool = False
    # requireTEE proven: the member must have nodes whose agent observed confidential computing ready.
    require_observed_tee: bool = False
    # Equality match on member labels (`spec.placement.clusterSelector.matchLabels`).
    cluster_selector: Mapping[str, str] = field(default_factory=dict)
    max_probe_rtt_ms: int | None = None
    when_unsatisfiable: WhenUnsatisfiable = WhenUnsatisfiable.SCHEDULE_ANYWAY


@dataclass(frozen=True, slots=True)
class GPURequest:
    """What one replica needs; all of its GPUs must come from a single node."""

    count: int = 1
    products: frozenset[str] = frozenset()
    min_memory_mib: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """One workload's placement question: how many replicas, what each needs, where they are now."""

    replicas: int
    gpu: GPURequest = GPURequest()
    rules: Rules = Rules()
    # Replicas currently placed per member; the solver keeps healthy ones where they are.
    current: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Members plus the alliance table (alliance name -> member countries, ISO 3166-1 alpha-2)."""

    members: tuple[MemberInfo, ...]
    alliances: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # What `index.of` works out of it, once: derived from the fields above, so never compared, hashed
    # or shown, and not carried over by `dataclasses.replace` (a changed snapshot gets its own).
    placement_index: object = field(default=None, init=False, compare=False, hash=False, repr=False)


def withhold(snapshot: Snapshot, members: Mapping[str, str]) -> Snapshot:
    """The snapshot as one workload must see it while some members are backed off from it (member ->
    why): they keep the replicas of it they hold, but offer it no free GPUs for new ones."""
    if not members:
        return snapshot
    return dataclasses.replace(snapshot, members=tuple(
        dataclasses.replace(m, shapes=()) if m.name in members else m for m in snapshot.members
    ))
