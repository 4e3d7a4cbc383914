"""The MemberCluster resource: one GPU cluster samizdat may place work on, where it is, and how it fares.

`spec` is the administrator's description of the member; `status` is written by the operator from
probes and watches, including the GPU inventory that placement decides over.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, AwareDatetime, Field, Strict, model_validator

from samizdat.core.model.common import (
    API_VERSION,
    CONDITIONS,
    CelRule,
    Condition,
    CountryCode,
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
)

MEMBER_CLUSTER: Final = "MemberCluster"


class SecretKeyRef(Model):
    """Where in the hub the kubeconfig for reaching this member is kept."""

    name: DNSSubdomain
    """Name of the Secret."""
    namespace: DNSLabel
    """Namespace of the Secret (MemberCluster is cluster-scoped, so it must be given)."""
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", min_length=1, max_length=253)] = "kubeconfig"
    """Key in the Secret's data that holds the kubeconfig."""


class Jurisdiction(Model):
    """The legal jurisdiction the member's hardware sits in."""

    country: CountryCode
    """ISO 3166-1 alpha-2 code of the country, upper case (e.g. DE, GB, US)."""
    region: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    """Optional finer location, e.g. an ISO 3166-2 subdivision or a provider region; informational."""


# The apiserver checks these rules against the `{}` default of `health` before filling in the nested
# defaults, so each rule must hold when its fields are absent.
_BOTH_SET = "!has(self.probeIntervalSeconds) || !has(self.{0}) || "
PROBE_TIMEOUT_WITHIN_INTERVAL: Final = CelRule(
    _BOTH_SET.format("probeTimeoutSeconds") + "self.probeTimeoutSeconds <= self.probeIntervalSeconds",
    "probeTimeoutSeconds must not exceed probeIntervalSeconds",
    ".probeTimeoutSeconds",
)
DOWN_AFTER_AT_LEAST_INTERVAL: Final = CelRule(
    _BOTH_SET.format("downAfterSeconds") + "self.downAfterSeconds >= self.probeIntervalSeconds",
    "downAfterSeconds must be at least probeIntervalSeconds",
    ".downAfterSeconds",
)


class HealthPolicy(Model):
    """How the member is probed and when it is judged Suspect or Down."""

    model_config = cel_rules(PROBE_TIMEOUT_WITHIN_INTERVAL, DOWN_AFTER_AT_LEAST_INTERVAL)

    # Defaults make a killed or partitioned member Down within about 3 s, so failover finishes in
    # seconds; a far or lossy link needs no other settings: its deadlines follow its measured round
    # trips (status.link), see docs/failure-detector.md.
    probe_interval_seconds: PositiveCount = 1
    """Seconds between two probes of the member's API (half that on a link slower than half the time-out)."""
    probe_timeout_seconds: PositiveCount = 1
    """Seconds a probe may take before it counts as failed, on a fast link: a slower one earns a longer
    deadline from its measured round trips, up to 5 s (status.link.probeDeadlineMs)."""
    suspect_after_failures: PositiveCount = 1
    """Probes in a row answered with an error (not ready, malformed) after which the member is Suspect:
    no new replicas go there. Unanswered probes make it Suspect after one deadline and one interval."""
    down_after_seconds: PositiveCount = 3
    """Seconds of refused probes or of errors after which the member is Down and its replicas are moved;
    silence must also outlast the link's p99 and three probe intervals (status.link.silenceAllowedMs)."""

    @model_validator(mode="after")
    def _rules(self) -> HealthPolicy:
        enforce(self.probe_timeout_seconds <= self.probe_interval_seconds, PROBE_TIMEOUT_WITHIN_INTERVAL)
        enforce(self.down_after_seconds >= self.probe_interval_seconds, DOWN_AFTER_AT_LEAST_INTERVAL)
        return self


def _ip_address(text: str) -> str:
    """An IPv4 or IPv6 address, as clients and DNS A/AAAA records need it (a host name is not one)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None


class MemberClusterSpec(Model):
    """The member as its administrator describes it."""

    kubeconfig_secret_ref: SecretKeyRef
    """The Secret in the hub holding the kubeconfig samizdat uses to reach this member."""
    jurisdiction: Jurisdiction
    """Where the member is, legally."""
    provider: Annotated[str, Field(min_length=1, max_length=63)]
    """Who operates the member (a cloud, a sovereign cloud, a GPU marketplace); counted by maxPerProvider."""
    tee: Flag = False
    """Whether the member offers confidential computing (GPU TEE); workloads with requireTEE need it."""
    cost_per_gpu_hour: Annotated[NonNegativeNumber, Field(alias="costPerGPUHour")] = 0.0
    """Price of one GPU for one hour, in any currency used consistently across members; a score input."""
    latency_ms: NonNegativeNumber = 0.0
    """Typical latency to the member's users in milliseconds; a score input."""
    cordoned: Flag = False
    """When true, no replicas are placed here and running ones are re-placed elsewhere (as `samizdat unjoin` does)."""
    traffic_address: Annotated[str, Field(max_length=45), AfterValidator(_ip_address)] | None = None
    """The IP address clients outside the member reach its node ports at (its load balancer or a node's
    public address); listed in workloads' status.endpoints and DNS records. Default: the API server's
    address in the member's kubeconfig."""
    health: HealthPolicy = HealthPolicy()
    """Probe timing and the thresholds for Suspect and Down."""


class MemberClusterConditionType(StrEnum):
    READY = "Ready"
    REACHABLE = "Reachable"
    CENSORING = "Censoring"
    CREDENTIALS_EXPIRING = "CredentialsExpiring"
    FENCED = "Fenced"  # with a leader election only: whether the member's fence works (see docs/operations.md)


class Phase(StrEnum):
    """Lifecycle of a member as the health tracker sees it."""

    PENDING = "Pending"
    READY = "Ready"
    SUSPECT = "Suspect"
    DOWN = "Down"
    QUARANTINED = "Quarantined"


def unschedulable(phase: Phase, why: str | None = None) -> str:
    """The one text for why a member in `phase` takes no new replicas: "down: connection refused"."""
    return f"{phase.value.lower()}: {why}" if why else phase.value.lower()


class CensorshipKind(StrEnum):
    """What a member did to our objects (failure model 3 in the design)."""

    OBJECT_DELETED = "ObjectDeleted"
    SCALED_TO_ZERO = "ScaledToZero"
    SPEC_ALTERED = "SpecAltered"
    CREDENTIALS_REVOKED = "CredentialsRevoked"
    NAMESPACE_REMOVED = "NamespaceRemoved"
    # Starvation: our admitted copy kept from running by someone else's act on the member.
    NODES_CORDONED = "NodesCordoned"
    NODES_TAINTED = "NodesTainted"
    QUOTA_IMPOSED = "QuotaImposed"
    IMAGE_BLOCKED = "ImageBlocked"


class CensorshipEvidence(Model):
    """What was seen that marks the member as censoring."""

    kind: CensorshipKind
    """The kind of interference observed."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Details: which object, what changed, which status code."""
    time: AwareDatetime
    """When it was observed."""


class GPUNodeShape(Model):
    """A group of GPU nodes that are alike for placement: same product, memory, TEE mode and free GPUs."""

    product: Annotated[str, Field(min_length=1, max_length=63)]
    """GPU product as labelled by GPU Feature Discovery (nvidia.com/gpu.product)."""
    memory_mib: Annotated[NonNegativeInt, Field(alias="memoryMiB")]
    """Memory of one GPU in MiB (nvidia.com/gpu.memory)."""
    tee: Flag = False
    """Whether these nodes run GPUs in confidential-computing mode: as samizdat's agent observed it where
    one runs (samizdat.io/cc), else as labelled (nvidia.com/cc.mode)."""
    tee_observed: Annotated[Flag, Field(alias="teeObserved")] = False
    """Whether samizdat's agent observed confidential computing ready on these nodes through NVML."""
    free_gpus: Annotated[NonNegativeInt, Field(alias="freeGPUs")]
    """GPUs still free on each one of these nodes."""
    nodes: PositiveCount
    """How many nodes have this shape."""


class MemberCredentials(Model):
    """The credential samizdat reaches the member with, as its token says (set for renewable tokens)."""

    secret: DNSSubdomain | None = None
    """The credential Secret in the member the token is bound to (`samizdat join` creates one per join)."""
    expires_at: AwareDatetime | None = None
    """When the token expires."""
    renew_at: AwareDatetime | None = None
    """When the operator renews it, through the member's TokenRequest API."""


class MemberLink(Model):
    """The link to the member as samizdat's probes measure it, over its last 128 probes."""

    rtt_p50_ms: NonNegativeNumber | None = None
    """Median time a probe took to be answered, in milliseconds."""
    rtt_p99_ms: NonNegativeNumber | None = None
    """99th percentile of the same: a far or lossy link shows its retransmissions here."""
    probe_loss: Annotated[float, Strict(), Field(ge=0, le=1)] = 0.0
    """Share of the probes that failed (refused, or unanswered by their deadline)."""
    probe_deadline_ms: NonNegativeNumber
    """How long a probe may take before it counts as failed: the p99 with room for one retransmission,
    between spec.health's probeTimeoutSeconds and 5 s."""
    silence_allowed_ms: NonNegativeNumber
    """How long the member may stay silent before it is Down: the p99 and three probe intervals more,
    never less than downAfterSeconds."""


class MemberClusterStatus(Model):
    """The member as the operator last observed it."""

    conditions: Annotated[tuple[Condition[MemberClusterConditionType], ...], Field(json_schema_extra=CONDITIONS)] = ()
    """Ready, Reachable, Censoring, CredentialsExpiring and (with a leader election) Fenced."""
    phase: Phase = Phase.PENDING
    """Pending until first probed, then Ready, Suspect, Down or Quarantined."""
    quarantined_until: AwareDatetime | None = None
    """While phase is Quarantined: when the quarantine ends."""
    last_probe_time: AwareDatetime | None = None
    """When the member's API was last probed."""
    last_probe_latency_ms: NonNegativeNumber | None = None
    """Round-trip time of the last successful probe in milliseconds."""
    link: MemberLink | None = None
    """The link as measured; the Reachable condition says why a member is Suspect or Down."""
    censorship_evidence: CensorshipEvidence | None = None
    """The latest interference seen, if any."""
    credentials: MemberCredentials | None = None
    """The credential in use, when it is a token samizdat renews."""
    gpu_inventory: tuple[GPUNodeShape, ...] = ()
    """GPU nodes grouped by shape; exact for per-node fit, compact for big clusters. As last seen: its free
    counts are current only while phase is Ready."""
    total_gpus: Annotated[NonNegativeInt, Field(alias="totalGPUs")] = 0
    """GPUs on all nodes of the member, as last seen."""
    free_gpus: Annotated[NonNegativeInt | None, Field(alias="freeGPUs")] = None
    """GPUs not allocated to any pod, while phase is Ready; absent otherwise, since the last count from a
    member that is not Ready may no longer hold."""
    observed_generation: NonNegativeInt | None = None
    """The metadata.generation this status was computed from."""


class MemberCluster(Model):
    """A GPU cluster in some country, reachable from the hub, that samizdat may place workloads on."""

    api_version: Literal["samizdat.io/v1alpha1"] = API_VERSION
    kind: Literal["MemberCluster"] = MEMBER_CLUSTER
    metadata: ObjectMeta
    spec: MemberClusterSpec
    status: MemberClusterStatus = MemberClusterStatus()
