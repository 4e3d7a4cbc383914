"""The AIWorkload resource: what to run, on which GPUs, and the hard rules on where it may run.

`spec.placement` holds the jurisdiction rules the solver must never break. The cross-field rules that
can be judged from the object alone are CEL rules in the CRD and the same checks in Python here, so a
workload the apiserver accepts is one this model accepts, and the other way round.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, AwareDatetime, Field, Strict, model_validator

from samizdat.core.model.common import (
    API_VERSION,
    CONDITIONS,
    CelRule,
    Condition,
    CountryCode,
    CountryCodes,
    Count,
    DNSLabel,
    DNSSubdomain,
    Flag,
    Model,
    NonNegativeInt,
    NonNegativeNumber,
    ObjectMeta,
    PositiveCount,
    cel_rules,
    enforce,
    list_map,
    list_set,
    unique,
)

AI_WORKLOAD: Final = "AIWorkload"


class Mode(StrEnum):
    """How replicas run: a long-lived service or a run-to-completion job."""

    SERVE = "Serve"
    TRAIN = "Train"


class WhenUnsatisfiable(StrEnum):
    """What placement does when the spread minimums cannot all be met under the limits."""

    SCHEDULE_ANYWAY = "ScheduleAnyway"
    """Place every replica under the limits with the most spread still possible, and say so."""
    DO_NOT_SCHEDULE = "DoNotSchedule"
    """Place nothing new until every minimum can be met again (replicas that run keep running)."""


class GPURequirements(Model):
    """What each replica needs; all of a replica's GPUs come from one node."""

    count: PositiveCount = 1
    """GPUs per replica."""
    products: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=63)], ...], list_set(32), AfterValidator(unique)
    ] = ()
    """Acceptable GPU products (nvidia.com/gpu.product values); empty means any."""
    min_memory_mib: Annotated[NonNegativeInt, Field(alias="minMemoryMiB")] = 0
    """Minimum memory of each GPU in MiB."""


class ClusterSelector(Model):
    """Restricts placement to members whose labels match."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    """Labels a member must carry, all of them, with these exact values."""


ALLOWED_DENIED_DISJOINT: Final = CelRule(
    "!has(self.allowedJurisdictions) || !has(self.deniedJurisdictions)"
    " || self.deniedJurisdictions.all(c, !(c in self.allowedJurisdictions))",
    "a jurisdiction cannot be both in allowedJurisdictions and in deniedJurisdictions",
    ".deniedJurisdictions",
)
MIN_JURISDICTIONS_WITHIN_ALLOWED: Final = CelRule(
    "!has(self.allowedJurisdictions) || size(self.allowedJurisdictions) == 0"
    " || self.minJurisdictions <= size(self.allowedJurisdictions)",
    "minJurisdictions cannot exceed the number of allowedJurisdictions",
    ".minJurisdictions",
)


class PlacementRules(Model):
    """Rules on where replicas may run: limits, never broken (allowed and denied jurisdictions and
    alliances, every maxPer*, requireTEE, the cluster selector, GPU fit), and spread minimums
    (minJurisdictions, minProviders), which whenUnsatisfiable says whether to give up under duress."""

    model_config = cel_rules(ALLOWED_DENIED_DISJOINT, MIN_JURISDICTIONS_WITHIN_ALLOWED)

    min_jurisdictions: PositiveCount = 1
    """Spread minimum: replicas should span at least this many countries."""
    max_per_jurisdiction: PositiveCount | None = None
    """At most this many replicas in any one country."""
    max_per_alliance: PositiveCount | None = None
    """At most this many replicas in the countries of any one alliance (see Alliance objects)."""
    max_per_provider: PositiveCount | None = None
    """At most this many replicas on members of any one provider."""
    max_per_cluster: PositiveCount | None = None
    """At most this many replicas on any one member."""
    min_providers: PositiveCount = 1
    """Spread minimum: replicas should span at least this many providers."""
    allowed_jurisdictions: CountryCodes = ()
    """If not empty, only members in these countries (ISO 3166-1 alpha-2) are used."""
    denied_jurisdictions: CountryCodes = ()
    """Members in these countries (ISO 3166-1 alpha-2) are never used."""
    denied_alliances: Annotated[tuple[DNSLabel, ...], list_set(64), AfterValidator(unique)] = ()
    """Members in any country of these alliances (Alliance object names, e.g. five-eyes) are never used."""
    require_tee: Annotated[Flag, Field(alias="requireTEE")] = False
    """Only members and nodes with confidential computing (GPU TEE) are used."""
    require_observed_tee: Annotated[Flag, Field(alias="requireObservedTEE")] = False
    """requireTEE, proven: only nodes whose samizdat agent observed confidential computing ready through
    NVML count; a label alone (nvidia.com/cc.mode) does not. Implies requireTEE."""
    cluster_selector: ClusterSelector = ClusterSelector()
    """Only members whose labels match are used."""
    max_probe_rtt_ms: Annotated[PositiveCount | None, Field(alias="maxProbeRTTMs")] = None
    """Only members whose link answers samizdat's probes within this many milliseconds (the median of
    the recent probes, as samizdat measures it) are used: replicas avoid far or degraded links."""
    when_unsatisfiable: WhenUnsatisfiable = WhenUnsatisfiable.SCHEDULE_ANYWAY
    """When the spread minimums cannot be met under the limits: ScheduleAnyway places every replica
    with the most spread still possible (condition SpreadDegraded names the unmet minimum);
    DoNotSchedule places nothing new until they can be met."""

    @model_validator(mode="after")
    def _rules(self) -> PlacementRules:
        enforce(not set(self.allowed_jurisdictions) & set(self.denied_jurisdictions), ALLOWED_DENIED_DISJOINT)
        enforce(
            not self.allowed_jurisdictions or self.min_jurisdictions <= len(self.allowed_jurisdictions),
            MIN_JURISDICTIONS_WITHIN_ALLOWED,
        )
        return self


class FailoverPolicy(Model):
    """How the workload survives losing members."""

    standby_replicas: Count = 0
    """Warm replicas kept beyond spec.replicas, loaded and ready but not serving, so a failover need
    not wait for a cold start: a standby is promoted in place (one pod label write). Placement rules
    count them like every other replica. Serve mode only; for Train they are ordinary replicas."""
    quarantine_seconds: Count = 300
    """After a member starves a replica of this workload past its deadline, no new replica of it is placed
    there for this many seconds while another member has room for it (a member that censors is
    quarantined as well, for the operator's --quarantine-seconds)."""
    start_deadline_seconds: PositiveCount = 600
    """A replica not Ready this many seconds after samizdat asked for it counts as lost and is placed
    elsewhere. The default allows a large model server to pull its image and load tens of GiB of weights
    onto its GPUs (minutes on a cold node), while a replica starved by its member waits at most 10 min."""
    schedule_deadline_seconds: PositiveCount = 10
    """A replica that has not begun to start this many seconds after samizdat asked for it (no node
    took its pod, its pod was never created, or its node refuses to pull an image that runs in other
    members) counts as lost and is placed elsewhere, even inside startDeadlineSeconds: samizdat places
    only where GPUs are free, so a scheduler binds such a pod at once, and loading weights only begins
    after that. One kept out by an act the member's own objects show (GPU nodes with room for it
    cordoned or tainted, a quota on samizdat's namespace) is lost after 5 s."""


NODE_PORTS: Final = range(30000, 32768)  # the API server's default --service-node-port-range


class DNSRecord(Model):
    """A DNS name that answers the addresses of the members serving the workload, kept by samizdat as an
    external-dns DNSEndpoint in the hub, next to the workload."""

    name: DNSSubdomain
    """The fully qualified name clients resolve, e.g. llm.models.example.org."""
    ttl_seconds: Annotated[int, Strict(), Field(ge=1, le=3600)] = 5
    """How long resolvers may keep an answer: a client learns of a failover at most this much later."""
    node_port: Annotated[int, Strict(), Field(ge=NODE_PORTS.start, le=NODE_PORTS.stop - 1)] | None = None
    """The node port of the first container port, the same on every member, so name:port never changes.
    Default: derived from the workload's namespace and name (status.dns.port says which)."""


class Traffic(Model):
    """How clients outside the members find the serving replicas."""

    dns: DNSRecord | None = None
    """One DNS name for the workload (opt-in; needs external-dns and its DNSEndpoint CRD in the hub)."""


class ModelRef(Model):
    """The model weights the workload serves or starts from."""

    digest: Annotated[str, Field(pattern=r"^sha256:[a-f0-9]{64}$", min_length=71, max_length=71)]
    """sha256 digest of the weights; replicas refuse weights that do not match."""
    uri: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    """Where the weights can be fetched from."""


# Spec-level rules count every replica the solver places: serving plus standby (see placed_replicas).
_PLACED = "(self.replicas + self.failover.standbyReplicas)"
MIN_JURISDICTIONS_WITHIN_REPLICAS: Final = CelRule(
    f"self.replicas == 0 || self.placement.minJurisdictions <= {_PLACED}",
    "placement.minJurisdictions cannot exceed replicas + failover.standbyReplicas",
    ".placement.minJurisdictions",
)
MIN_PROVIDERS_WITHIN_REPLICAS: Final = CelRule(
    f"self.replicas == 0 || self.placement.minProviders <= {_PLACED}",
    "placement.minProviders cannot exceed replicas + failover.standbyReplicas",
    ".placement.minProviders",
)
DNS_ONLY_TO_SERVE: Final = CelRule(
    "!has(self.traffic) || !has(self.traffic.dns) || !has(self.mode) || self.mode == 'Serve'",
    "traffic.dns needs mode Serve: a training run has no clients to answer",
    ".traffic.dns",
)
REPLICAS_WITHIN_ALLOWED_CAPACITY: Final = CelRule(
    "self.replicas == 0 || !has(self.placement.maxPerJurisdiction) || !has(self.placement.allowedJurisdictions)"
    " || size(self.placement.allowedJurisdictions) == 0"
    f" || {_PLACED} <= self.placement.maxPerJurisdiction * size(self.placement.allowedJurisdictions)",
    "replicas + failover.standbyReplicas cannot exceed placement.maxPerJurisdiction"
    " times the number of placement.allowedJurisdictions",
    ".replicas",
)


class AIWorkloadSpec(Model):
    """What to run, on which GPUs, and where it may run."""

    model_config = cel_rules(
        MIN_JURISDICTIONS_WITHIN_REPLICAS, MIN_PROVIDERS_WITHIN_REPLICAS, REPLICAS_WITHIN_ALLOWED_CAPACITY,
        DNS_ONLY_TO_SERVE,
    )

    replicas: Count = 1
    """Replicas to run; 0 scales the workload to zero (standby included)."""
    mode: Annotated[Mode, Field(max_length=5)] = Mode.SERVE  # bounded, for the cost of the CEL rules reading it
    """Serve runs each member's replicas as a Deployment, Train as a Job."""
    template: dict[str, Any]
    """Pod template (a PodTemplateSpec) for every replica; samizdat adds the GPU request and its labels."""
    gpu: GPURequirements = GPURequirements()
    """GPUs each replica needs."""
    placement: PlacementRules = PlacementRules()
    """Rules on where replicas may run: limits and spread minimums."""
    failover: FailoverPolicy = FailoverPolicy()
    """Standby replicas and quarantine after a member fails."""
    model: ModelRef | None = None
    """The model weights, pinned by digest."""
    traffic: Traffic = Traffic()
    """How clients find the serving replicas: a DNS name that follows every failover."""

    @property
    def placed_replicas(self) -> int:
        """Replicas the solver places: serving plus standby, none at all when scaled to zero."""
        return self.replicas + self.failover.standby_replicas if self.replicas else 0

    @property
    def serving_replicas(self) -> int:
        """Replicas that serve once Ready: spec.replicas when serving a model (standbys wait), every placed
        replica of a training run (its standbys are ordinary replicas)."""
        return self.replicas if self.mode is Mode.SERVE else self.placed_replicas

    @model_validator(mode="after")
    def _rules(self) -> AIWorkloadSpec:
        placed, rules = self.placed_replicas, self.placement
        enforce(not placed or rules.min_jurisdictions <= placed, MIN_JURISDICTIONS_WITHIN_REPLICAS)
        enforce(not placed or rules.min_providers <= placed, MIN_PROVIDERS_WITHIN_REPLICAS)
        enforce(
            not placed
            or rules.max_per_jurisdiction is None
            or not rules.allowed_jurisdictions
            or placed <= rules.max_per_jurisdiction * len(rules.allowed_jurisdictions),
            REPLICAS_WITHIN_ALLOWED_CAPACITY,
        )
        enforce(self.traffic.dns is None or self.mode is Mode.SERVE, DNS_ONLY_TO_SERVE)
        return self


class AIWorkloadConditionType(StrEnum):
    PLACED = "Placed"
    RULES_SATISFIED = "RulesSatisfied"
    AVAILABLE = "Available"
    DEGRADED = "Degraded"


class ReplicaState(StrEnum):
    """Where a replica is on its way to Ready."""

    READY = "Ready"
    STARTING = "Starting"
    """Scheduled, not Ready yet: pulling its image, loading weights."""
    UNSCHEDULED = "Unscheduled"
    """Never scheduled: no pod created, or a pod no node takes."""
    CANNOT_START = "CannotStart"
    """Scheduled, but its containers cannot run: image pull or crash loop."""


class StartCause(StrEnum):
    """Why a replica is in its state (the reason of its Event)."""

    READY = "Ready"
    LOADING = "Loading"
    INSUFFICIENT_GPUS = "InsufficientGPUs"
    NO_FITTING_NODE = "NoFittingNode"
    NODES_CORDONED = "NodesCordoned"
    NODES_TAINTED = "NodesTainted"
    QUOTA_EXCEEDED = "QuotaExceeded"
    NO_SCHEDULER = "NoScheduler"
    PODS_NOT_CREATED = "PodsNotCreated"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    CRASH_LOOP = "CrashLoop"


class StartingReplicas(Model):
    """Replicas on one member that are not Ready yet, alike in state and cause."""

    state: ReplicaState
    """Starting, Unscheduled or CannotStart."""
    reason: StartCause
    """Why, as one CamelCase word."""
    replicas: PositiveCount
    """How many replicas are in this state for this reason."""
    overdue: Count = 0
    """How many of them are past spec.failover.startDeadlineSeconds (they count as not placed)."""
    message: Annotated[str, Field(max_length=4096)] = ""
    """The member's evidence for one of them (pod conditions, the copy's failure condition)."""


class MemberPlacement(Model):
    """Replicas of this workload on one member."""

    cluster: Annotated[str, Field(min_length=1, max_length=253)]
    """Name of the MemberCluster."""
    jurisdiction: CountryCode
    """Country of the member at the time of placement."""
    provider: Annotated[str, Field(min_length=1, max_length=63)]
    """Provider of the member at the time of placement."""
    replicas: Count
    """Replicas placed on the member."""
    ready_replicas: Count = 0
    """Replicas on the member that are ready."""
    starting: Annotated[tuple[StartingReplicas, ...], Field(max_length=16)] = ()
    """Replicas not Ready yet, grouped by state and cause, with the member's evidence."""
    serving_replicas: Count = 0
    """Ready replicas on the member that serve (pods labelled samizdat.io/role=serving)."""
    standby_replicas: Count = 0
    """Ready replicas on the member kept warm as standbys, not serving (samizdat.io/role=standby)."""


class Endpoint(Model):
    """Where clients reach a workload's serving replicas in one member. Only members whose replicas
    count and that have a ready serving replica are listed, so a lost member never is."""

    cluster: Annotated[str, Field(min_length=1, max_length=253)]
    """Name of the MemberCluster."""
    jurisdiction: CountryCode
    """Country of the member."""
    ready_replicas: Count
    """Serving replicas ready behind this endpoint."""
    addresses: Annotated[tuple[Annotated[str, Field(max_length=300)], ...], Field(max_length=64)] = ()
    """host:port pairs a client outside the member connects to: the member's address (as its
    kubeconfig names it) and the serving Service's node ports."""
    service: Annotated[str, Field(max_length=253)] | None = None
    """The serving Service in the member, as name.namespace."""
    cluster_ip: Annotated[Annotated[str, Field(max_length=64)] | None, Field(alias="clusterIP")] = None
    """The Service's address inside the member."""


class FailoverReason(StrEnum):
    """Why replicas left a member: it was lost, or it censored (and was quarantined)."""

    MEMBER_DOWN = "MemberDown"
    CENSORING = "Censoring"


class Failover(Model):
    """One move of replicas away from a member that failed or censored."""

    time: AwareDatetime
    """When the failover started."""
    from_cluster: Annotated[str, Field(min_length=1, max_length=253)]
    """The member the replicas left."""
    reason: Annotated[str, Field(min_length=1, max_length=1024)]
    """Why, as one CamelCase word (e.g. MemberDown, Censoring)."""
    seconds: NonNegativeNumber
    """How long until the workload's full serving capacity was Ready again: a standby promoted in place,
    or the moved replicas loaded elsewhere."""
    without_room_seconds: NonNegativeNumber = 0.0
    """Of `seconds`, how long no placement of every replica under the rules existed among the members
    samizdat could use (its status said "cannot place" meanwhile): time the failover waited for
    capacity to come back, not time spent moving."""
    standby_seconds: NonNegativeNumber | None = None
    """How long until every standby was Ready again too (a new one loads for as long as a cold start);
    absent while they load, and for workloads without standbys."""


class DNSStatus(Model):
    """The workload's DNS record as samizdat last wrote it, and whether external-dns has applied it."""

    name: DNSSubdomain
    """The name the record answers."""
    port: Annotated[int, Strict(), Field(ge=1, le=65535)]
    """The node port clients connect to at every address, the same on every member."""
    addresses: Annotated[tuple[Annotated[str, Field(max_length=45)], ...], Field(max_length=256)] = ()
    """The addresses the record answers: one per member with a Ready serving replica reached on the port."""
    changed: AwareDatetime | None = None
    """When the addresses last changed."""
    applied: Flag = False
    """Whether external-dns has applied the record as it is now (its DNSEndpoint's observedGeneration)."""
    message: Annotated[str, Field(max_length=1024)] = ""
    """Why the record is not written, or which serving members it cannot answer, if any."""


class AIWorkloadStatus(Model):
    """Where the workload runs, and whether its rules hold."""

    conditions: Annotated[tuple[Condition[AIWorkloadConditionType], ...], Field(json_schema_extra=CONDITIONS)] = ()
    """Placed, RulesSatisfied, Available and Degraded."""
    placements: Annotated[tuple[MemberPlacement, ...], Field(json_schema_extra=list_map("cluster"))] = ()
    """Replicas per member."""
    jurisdictions: Count = 0
    """Number of countries with at least one replica."""
    jurisdiction_list: CountryCodes = ()
    """Countries with at least one replica."""
    replicas: Count = 0
    """Replicas placed, standby included."""
    ready_replicas: Count = 0
    """Replicas that are ready."""
    serving_replicas: Count = 0
    """Ready replicas that serve; warm standbys are never counted here."""
    standby_replicas: Count = 0
    """Ready replicas kept warm as standbys (promoted in place when serving replicas are lost)."""
    endpoints: Annotated[tuple[Endpoint, ...], Field(json_schema_extra=list_map("cluster"))] = ()
    """Per member, where clients reach the serving replicas; updated on every failover."""
    last_failover: Failover | None = None
    """The most recent failover."""
    dns: DNSStatus | None = None
    """The workload's DNS record (spec.traffic.dns), as written to the hub."""
    observed_generation: NonNegativeInt | None = None
    """The metadata.generation this status was computed from."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable summary, e.g. which rule keeps the workload from being placed."""


class AIWorkload(Model):
    """An AI workload placed across member clusters in several jurisdictions under hard rules."""

    api_version: Literal["samizdat.io/v1alpha1"] = API_VERSION
    kind: Literal["AIWorkload"] = AI_WORKLOAD
    metadata: ObjectMeta
    spec: AIWorkloadSpec
    status: AIWorkloadStatus = AIWorkloadStatus()
