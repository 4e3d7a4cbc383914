"""One member cluster as the operator lives with it: connection, probes, watches, health and censorship.

A `Member` keeps a list-then-watch view of the member's nodes, pods, samizdat's copies and its workload
namespace, probes the API server on a short interval, folds both into a phase (`samizdat.core.health`), and
notices censorship in the watch stream: a copy deleted or changed by someone other than samizdat, our
namespace removed, our credentials refused. Telling our own changes from a hostile admin's needs no
memory that a restart would lose: every copy carries, in annotations written in the same request, the
replicas and images samizdat asked for, so a copy whose spec disagrees with its own annotations was
changed by someone else. Copies samizdat itself deletes are remembered until the watch confirms them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from samizdat.core import health, inventory, ledger, manifests, membership
from samizdat.remote import metrics
from samizdat.remote.clusters import (
    applying, deleting, errors, fencing, kubeconfig, probing, resources, scaling, watching, writing,
)
from samizdat.remote.clusters.client import Authority, ClusterClient
from samizdat.remote.clusters.fetching import Listing
from samizdat.core.model import CensorshipKind, Phase
from samizdat.core.placement.snapshot import NodeShape

logger = logging.getLogger(__name__)

COPY_SELECTOR = "app.kubernetes.io/managed-by=samizdat"
COPY_RESOURCES = tuple(resources.of_kind(kind.api_version, kind.kind) for kind in manifests.COPY_KINDS)
# After a failed list or watch a view is retried with a back-off, so a broken member costs a few requests,
# not a storm; short enough that a member back from an outage is seen again within seconds.
RETRY_AFTER_ERROR_S = (1.0, 4.0)
# A watch that breaks is listed again at once; a view fails the member only when that also fails.
VIEW_FAILURES_BEFORE_UNHEALTHY = 2
# Late time-outs in a row (see `samizdat.remote.clusters.probing`) set aside before they count as failures: a
# member really gone is still found Down while the operator stays busy, a probe interval or two later.
LATE_PROBES_SET_ASIDE = 2
# The probe round trip placement reads (`maxProbeRTTMs`): the median of this many answered probes,
# published again when it moves by more than this share.
RTT_PROBES = 16
RTT_CHANGE = 0.2
POD_DRAIN_TIMEOUT_S = 30.0  # how long a removed copy's pods may take to go before it is deleted anyway
CONTROLLER_GRACE_S = 3.0  # how long the member's own controllers get to remove those pods


@dataclass(frozen=True, slots=True)
class Censorship:
    """Evidence that a member censors: what it did, in its own words."""

    kind: CensorshipKind
    message: str
    workload_uid: str | None = None  # the workload whose copy was touched, when the evidence is about one


@dataclass(frozen=True, slots=True)
class MemberSettings:
    probe_interval_s: float = 1.0
    probe_timeout_s: float = 1.0
    quarantine_s: float = 300.0
    policy: health.HealthPolicy = health.HealthPolicy()
    # The leader election every write asks first (None: a single operator, writes unguarded).
    authority: Authority | None = None


@dataclass
class Copy:
    """samizdat's Deployment or Job for one workload in this member, as last seen."""

    kind: str
    name: str
    workload_uid: str
    desired: int
    ready: int
    body: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class MemberState:
    """One member at one moment, as its status reports it: a value, so status builders stay pure."""

    name: str
    health: health.MemberHealth
    last_probe: probing.Probe | None
    censorship: Censorship | None
    shapes: tuple[NodeShape, ...]
    total_gpus: int  # allocatable on every node, whether it takes new replicas or not
    ready: bool  # Ready, every view complete and fenced: the member counts for placement
    # The member's fence as the leader's writes found it; None without an election (nothing to raise).
    fence: fencing.FenceState | None = None


def tampering(obj: Mapping[str, Any]) -> Censorship | None:
    """A copy whose spec disagrees with what samizdat wrote into its own annotations was changed by
    someone else."""
    annotations = obj.get("metadata", {}).get("annotations", {})
    name = obj.get("metadata", {}).get("name", "?")
    spec = obj.get("spec", {})
    if manifests.REPLICAS_ANNOTATION in annotations:
        asked = int(annotations[manifests.REPLICAS_ANNOTATION])
        actual = spec.get(manifests.copy_kind(str(obj.get("kind"))).replicas_field)
        if actual is not None and int(actual) != asked:
            kind = CensorshipKind.SCALED_TO_ZERO if int(actual) == 0 else CensorshipKind.SPEC_ALTERED
            return Censorship(kind, f"{obj.get('kind')} {name}: replicas {asked} -> {actual} by someone else")
    if manifests.IMAGES_ANNOTATION in annotations:
        asked_images = json.loads(annotations[manifests.IMAGES_ANNOTATION])
        actual_images = manifests.container_images(spec.get("template", {}))
        if actual_images != asked_images:
            return Censorship(
                CensorshipKind.SPEC_ALTERED, f"{obj.get('kind')} {name}: images {asked_images} -> {actual_images}"
            )
    return None


class Member:
    """The operator's live view of, and only door to, one member cluster.

    Its loops feed it through three doors, which tests feed directly: `probed` (one probe's outcome),
    `listed` (a complete listing of one resource) and `observed` (one watch event). Its writes end in
    `apply_copy`, `apply_service`, `label_pod` and `erase`, the only ones that talk to the member.
    """

    def __init__(
        self,
        name: str,
        credentials: kubeconfig.Credentials,
        settings: MemberSettings,
        on_change: Callable[[Member, str], None],
    ) -> None:
        self.name = name
        self._credentials = credentials
        self._client: ClusterClient | None = None
        self.settings = settings
        self.on_change = on_change
        self.health = health.MemberHealth()
        # What health judges time by (monotonic seconds); the fleet compares loss times on the same clock.
        self.clock: Callable[[], float] = time.monotonic
        self.nodes: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.copies: dict[str, Copy] = {}  # by workload uid
        # The Service of each served copy as the member answered our apply (its ClusterIP and node
        # ports are the member's to choose); forgotten with the copy, which owns it in the member.
        self.services: dict[str, dict[str, Any]] = {}  # by workload uid
        self.synced: set[str] = set()
        # None until first seen: a namespace missing from the start is a setup error, not censorship.
        self.namespace_present: bool | None = None
        self.censorship: Censorship | None = None
        self.last_probe: probing.Probe | None = None
        self.lost_since: float | None = None  # monotonic time the current loss began
        self.lost_reason: str | None = None  # the health reason the current loss began with
        # Views whose list or watch keeps failing: view -> (failures in a row, the last failure, its message).
        self.view_failures: dict[str, tuple[int, health.Failure, str]] = {}
        self.late_probes = 0  # late time-outs in a row (the first LATE_PROBES_SET_ASIDE are set aside)
        self._round_trips: deque[float] = deque(maxlen=RTT_PROBES)  # of the last answered probes, in ms
        self.probe_rtt_ms: float | None = None  # their median as placement reads it (see `_measured`)
        self._deleting: set[str] = set()  # copy names samizdat itself is deleting
        self._writes_waiting: set[asyncio.Event] = set()  # set when the member is lost (see `answering`)
        self._tasks: list[asyncio.Task[None]] = []
        self._shapes: tuple[NodeShape, ...] | None = None
        # The ledger's view (shapes with the given promises charged), and pods by workload uid: both
        # derived from the views, dropped whenever nodes or pods change.
        self._promised: tuple[tuple[ledger.Promise, ...], tuple[NodeShape, ...]] | None = None
        self._by_workload: dict[str, list[dict[str, Any]]] | None = None
        self._used: Mapping[str, int] | None = None

    # ----- lifecycle

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._probe_loop(), name=f"{self.name}/probe")]
        informers: list[tuple[resources.Resource, str | None, str | None, str | None]] = [
            (resources.NODES, None, None, None),
            (resources.PODS, None, None, None),
            (resources.NAMESPACES, None, None, f"metadata.name={manifests.WORKLOAD_NAMESPACE}"),
        ]
        informers += [(r, manifests.WORKLOAD_NAMESPACE, COPY_SELECTOR, None) for r in COPY_RESOURCES]
        for resource, namespace, labels, fields in informers:
            self._tasks.append(asyncio.create_task(
                self._inform(resource, namespace, labels, fields), name=f"{self.name}/{resource.plural}"
            ))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    @property
    def credentials(self) -> kubeconfig.Credentials:
        return self._credentials

    def use_token(self, token: str) -> None:
        """Authenticate from now on with a renewed or rotated token, keeping the connections and views."""
        self._credentials = replace(self._credentials, token=token, token_file=None)
        if self._client is not None:
            self._client.use_token(token)

    @property
    def client(self) -> ClusterClient:
        """The member's API, connected on first use (its TLS context is costly to build)."""
        if self._client is None:
            # With an election, the leader's writes raise the member's fence first (see clusters.fencing).
            keeper = fencing.Keeper(
                manifests.WORKLOAD_NAMESPACE, membership.IDENTITY_NAMESPACE, on_change=lambda: self.on_change(self, "fence"),
            ) if self.settings.authority is not None else None
            self._client = ClusterClient(self.name, self._credentials, authority=self.settings.authority, fence=keeper)
        return self._client

    @property
    def host(self) -> str | None:
        return urlsplit(self._credentials.server).hostname

    @property
    def views_complete(self) -> bool:
        return len(self.synced) == 3 + len(COPY_RESOURCES)

    @property
    def ready_to_count(self) -> bool:
        """Replicas here may be counted: the member is healthy and every view is complete."""
        return health.schedulable(self.health.phase) and self.views_complete

    def state(self, fenced: bool) -> MemberState:
        return MemberState(
            name=self.name, health=self.health, last_probe=self.last_probe, censorship=self.censorship,
            shapes=self.shapes(), total_gpus=sum(inventory.allocatable_gpus(node) for node in self.nodes.values()),
            ready=self.ready_to_count and fenced, fence=self.fence,
        )

    @property
    def fence(self) -> fencing.FenceState | None:
        """What the leader's writes found of the member's fence (None: no election, or not connected yet)."""
        keeper = self._client.fence if self._client is not None else None
        return keeper.state if isinstance(keeper, fencing.Keeper) else None

    # ----- health

    async def _probe_loop(self) -> None:
        while True:
            started = time.monotonic()
            self.probed(await probing.probe(self.client, timeout=self.settings.probe_timeout_s))
            await asyncio.sleep(max(0.0, self.settings.probe_interval_s - (time.monotonic() - started)))

    def probed(self, result: probing.Probe) -> None:
        """Fold one probe's outcome into the member's health."""
        self.last_probe = result
        metrics.member_probed(self.name, result.ok, result.latency_s, result.failure)
        if result.ok:
            self._measured(result.latency_s * 1000)
        self.late_probes = self.late_probes + 1 if result.late else 0
        if 0 < self.late_probes <= LATE_PROBES_SET_ASIDE:
            logger.info("member %s: probe set aside, its time-out fired %.2fs late (the operator was busy)",
                        self.name, result.latency_s - self.settings.probe_timeout_s)
            return
        if result.failure is health.Failure.UNAUTHORIZED and self._answering:
            self._censored(Censorship(CensorshipKind.CREDENTIALS_REVOKED, f"API answered 401: {result.message}"))
        failure = None if result.ok else (result.failure or health.Failure.ERROR)
        unusable = self.failing_view()
        if failure is None and unusable is not None:
            # The API answers, but samizdat cannot see the member's nodes, pods or copies: not usable either.
            view, failure, why = unusable
            observed = health.observe_probe(self.health, self.settings.policy, self.clock(), failure,
                                            f"{view}: {why}", seen_by="View")
        else:
            observed = health.observe_probe(self.health, self.settings.policy, self.clock(), failure, result.message)
        self._set_health(observed)

    def _measured(self, rtt_ms: float) -> None:
        """Fold one answered probe's round trip into `probe_rtt_ms`, which changes (and tells the fleet,
        so the next snapshot reads it) only when the median moves by more than RTT_CHANGE: a jittery
        link must not remake every workload's snapshot on each probe."""
        self._round_trips.append(rtt_ms)
        median = statistics.median(self._round_trips)
        published = self.probe_rtt_ms
        if published is None or abs(median - published) > RTT_CHANGE * max(published, 1.0):
            self.probe_rtt_ms = round(median, 1)
            self.on_change(self, "probe")

    def failing_view(self) -> tuple[str, health.Failure, str] | None:
        """The first view that keeps failing (its name, failure kind and message), or None."""
        for view, (times, failure, message) in sorted(self.view_failures.items()):
            if times >= VIEW_FAILURES_BEFORE_UNHEALTHY:
                return view, failure, message
        return None

    @property
    def _answering(self) -> bool:
        """Whether 401/403 can be blamed on the member: an API server still starting answers them
        until its authenticators and RBAC caches are warm, which is no revocation."""
        return health.healthy(self.health.phase)

    def _set_health(self, new: health.MemberHealth) -> None:
        old, self.health = self.health, new
        if old.phase is not new.phase:
            lost = health.lost(new.phase)
            if lost and self.lost_since is None:
                # A failure started when the first probe failed, not when it was judged Down.
                self.lost_since = new.failing_since if new.failing_since is not None else self.clock()
                # Why it was lost, kept while the loss lasts: a member restarting says other things on its
                # way back (not ready, views refused), and the loss must read the same until it ends.
                self.lost_reason = new.reason
            elif not lost:
                self.lost_since = self.lost_reason = None
            logger.info("member %s: %s -> %s (%s)", self.name, old.phase, new.phase, new.message)
            if new.phase is Phase.READY:
                self.censorship = None
            if lost:
                for silenced in self._writes_waiting:
                    silenced.set()
            self.on_change(self, "phase")

    def _censored(self, evidence: Censorship) -> None:
        logger.warning("member %s censors: %s: %s", self.name, evidence.kind, evidence.message)
        self.censorship = evidence
        metrics.member_censored(self.name, evidence.kind.value)
        self._set_health(health.observe_censorship(
            self.health, self.clock(), self.settings.quarantine_s, evidence.kind.value, evidence.message
        ))
        self.on_change(self, "censorship")

    # ----- watches

    async def _inform(
        self, resource: resources.Resource, namespace: str | None, labels: str | None, fields: str | None
    ) -> None:
        delay = RETRY_AFTER_ERROR_S[0]
        while True:
            try:
                stream = watching.list_then_watch(
                    self.client, resource, namespace=namespace, label_selector=labels, field_selector=fields,
                )
                async with contextlib.aclosing(stream):
                    async for item in stream:
                        if isinstance(item, Listing):
                            self.listed(resource, item.items)
                            self._view_works(resource.plural)
                            delay = RETRY_AFTER_ERROR_S[0]
                        elif item.type != "BOOKMARK":
                            self.observed(resource, item.type, item.object)
            except errors.MemberError as error:
                self._view_failed(resource.plural, error)
                if isinstance(error, (errors.MemberUnauthorized, errors.MemberForbidden)) and self._answering:
                    rbac = "RBAC revoked: " if isinstance(error, errors.MemberForbidden) else ""
                    self._censored(Censorship(CensorshipKind.CREDENTIALS_REVOKED, f"{rbac}{error}"))
            # The last view stays: whether the member is gone is the probes' call (with hysteresis),
            # and the views' only when listing them keeps failing; the next listing replaces it whole.
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_AFTER_ERROR_S[1])

    def _view_failed(self, view: str, error: errors.MemberError) -> None:
        failure = probing.failure_of(error)
        metrics.member_view_failed(self.name, view, failure.value)
        times = self.view_failures.get(view, (0, failure, ""))[0] + 1
        self.view_failures[view] = (times, failure, error.message)
        # Logged once when the view stops working, not on every retry of a member that stays broken.
        if times == VIEW_FAILURES_BEFORE_UNHEALTHY:
            logger.warning("member %s: %s cannot be listed (%s: %s); retrying with back-off",
                           self.name, view, failure.value, error.message)
        else:
            logger.debug("member %s: %s list or watch failed: %s", self.name, view, error)

    def _view_works(self, view: str) -> None:
        failed = self.view_failures.pop(view, None)
        if failed is not None and failed[0] >= VIEW_FAILURES_BEFORE_UNHEALTHY:
            logger.info("member %s: %s listed again", self.name, view)

    def listed(self, resource: resources.Resource, items: tuple[dict[str, Any], ...]) -> None:
        """Replace the view of `resource` with a complete listing of it."""
        if resource is resources.NODES:
            self.nodes = {o["metadata"]["name"]: o for o in items}
        elif resource is resources.PODS:
            self.pods = {o["metadata"]["uid"]: o for o in items}
        elif resource is resources.NAMESPACES:
            self._namespace_seen(bool(items) and not items[0]["metadata"].get("deletionTimestamp"))
        else:
            kept = {uid: c for uid, c in self.copies.items() if c.kind != resource.kind}
            for obj in items:
                self._copy_seen(obj, kept)
            self.copies = kept
        self._views_changed()
        self.synced.add(resource.plural)
        self.on_change(self, resource.plural)

    def observed(self, resource: resources.Resource, kind: str, obj: dict[str, Any]) -> None:
        """Fold one watch event (ADDED, MODIFIED or DELETED) of `resource` into the view."""
        deleted = kind == "DELETED"
        metadata = obj["metadata"]
        if resource is resources.NODES:
            self._store(self.nodes, metadata["name"], obj, deleted)
        elif resource is resources.PODS:
            if not self._store(self.pods, metadata["uid"], obj, deleted):
                return  # pod status churn that changes no GPU accounting
        elif resource is resources.NAMESPACES:
            self._namespace_seen(not deleted and not metadata.get("deletionTimestamp"))
        else:
            self._copy_event(obj, deleted)
        self._views_changed()
        self.on_change(self, resource.plural)

    def _views_changed(self) -> None:
        self._shapes = self._promised = self._by_workload = self._used = None

    @staticmethod
    def _store(store: dict[str, dict[str, Any]], key: str, obj: dict[str, Any], deleted: bool) -> bool:
        if deleted:
            return store.pop(key, None) is not None
        before = store.get(key)
        store[key] = obj
        if before is None:
            return True
        # Only what the inventory reads: binding, phase, readiness and node labels/capacity.
        return any(before.get(part) != obj.get(part) for part in ("spec", "status")) or (
            before["metadata"].get("labels") != obj["metadata"].get("labels")
        )

    def _namespace_seen(self, present: bool) -> None:
        if self.namespace_present is True and not present:
            self._censored(Censorship(
                CensorshipKind.NAMESPACE_REMOVED, f"namespace {manifests.WORKLOAD_NAMESPACE} deleted"
            ))
        self.namespace_present = present

    def _copy_seen(self, obj: dict[str, Any], into: dict[str, Copy]) -> None:
        labels = obj["metadata"].get("labels", {})
        uid = labels.get(manifests.UID_LABEL)
        if not uid:
            return
        kind = manifests.copy_kind(obj["kind"])
        into[uid] = Copy(obj["kind"], obj["metadata"]["name"], uid, kind.desired(obj), kind.ready(obj), obj)

    def _copy_event(self, obj: dict[str, Any], deleted: bool) -> None:
        name = obj["metadata"]["name"]
        uid = obj["metadata"].get("labels", {}).get(manifests.UID_LABEL, "")
        about = uid or None  # the evidence concerns this workload: its Events may quote it
        if deleted:
            self.copies.pop(uid, None)
            self.services.pop(uid, None)
            if name in self._deleting:
                self._deleting.discard(name)
            else:
                self._censored(Censorship(CensorshipKind.OBJECT_DELETED, f"{obj.get('kind')} {name} deleted", about))
            return
        if name not in self._deleting:  # our own scale-to-zero before a delete is no tampering
            if obj["metadata"].get("deletionTimestamp"):
                self._censored(Censorship(CensorshipKind.OBJECT_DELETED, f"{obj.get('kind')} {name} being deleted",
                                          about))
            evidence = tampering(obj)
            if evidence is not None:
                self._censored(dataclasses.replace(evidence, workload_uid=about))
        self._copy_seen(obj, self.copies)

    # ----- what placement and status read

    def running_workload_uids(self) -> set[str]:
        """Workloads that still have pods here (terminating ones included: they still run)."""
        labels = (pod["metadata"].get("labels", {}) for pod in self.pods.values())
        return {uid for uid in (label.get(manifests.UID_LABEL) for label in labels) if uid}

    def pods_of(self, uid: str) -> list[dict[str, Any]]:
        """The workload's live pods here: its replicas, starting, loading or ready."""
        return [pod for pod in self.pods.values()
                if pod["metadata"].get("labels", {}).get(manifests.UID_LABEL) == uid and inventory.pod_live(pod)]

    def replicas_lost_to_gpu_faults(self, uid: str) -> int:
        """Replicas of the workload stranded by GPUs the member's agents found fatally faulted."""
        pods = (p for p in self.pods.values() if p["metadata"].get("labels", {}).get(manifests.UID_LABEL) == uid)
        return inventory.replicas_lost_to_faults(pods, self.nodes)

    def shapes(self) -> tuple[NodeShape, ...]:
        """The inventory as the member's own objects show it (bound pods charged): its status."""
        if self._shapes is None:
            self._shapes = inventory.node_shapes(self.nodes.values(), self.pods.values())
        return self._shapes

    def promised_shapes(self, promises: tuple[ledger.Promise, ...]) -> tuple[NodeShape, ...]:
        """The inventory placement must read: bound pods and the ledger's unbound promises charged.
        Kept until the views or the promises change, so a snapshot rebuilt for another member's
        change costs nothing here."""
        if self._promised is None or self._promised[0] != promises:
            self._promised = (promises, ledger.node_shapes(self.nodes.values(), self.pods.values(), promises))
        return self._promised[1]

    def used_gpus(self) -> Mapping[str, int]:
        """GPUs held per node by every pod here."""
        if self._used is None:
            self._used = inventory.used_gpus(self.pods.values())
        return self._used

    def workload_pods(self, uid: str) -> list[dict[str, Any]]:
        """The pods of one workload here (indexed once per change of the pod view)."""
        if self._by_workload is None:
            self._by_workload = {}
            for pod in self.pods.values():
                owner = pod["metadata"].get("labels", {}).get(manifests.UID_LABEL)
                if owner:
                    self._by_workload.setdefault(owner, []).append(pod)
        return self._by_workload.get(uid, [])

    def starved(self, kind: CensorshipKind, message: str) -> None:
        """Quarantine the member for keeping our admitted replicas from starting (see `samizdat.core.starts`)."""
        self._censored(Censorship(kind, message))

    # ----- the writes (through the one write path in samizdat.remote.clusters)

    async def apply_copy(self, manifest: dict[str, Any]) -> None:
        await applying.apply(self.client, manifest)

    async def apply_service(self, uid: str, manifest: dict[str, Any]) -> None:
        self.services[uid] = await applying.apply(self.client, manifest)

    async def label_pod(self, name: str, role: str) -> None:
        """Give one pod its role in one metadata patch: the pod runs on, same UID."""
        await writing.write(self.client, "PATCH", resources.PODS.path(namespace=manifests.WORKLOAD_NAMESPACE, name=name),
                            body=manifests.role_patch(role), content_type=scaling.MERGE_PATCH)

    async def answering(self, write: Coroutine[Any, Any, None]) -> None:
        """Run `write`, given up with `MemberTimeout` as soon as the member is lost (Down, or
        Quarantined): a member gone quiet in the middle of a write would otherwise hold the caller up
        until the write's own deadline, while the replicas it was to take wait to be placed elsewhere.
        (Under compound faults that is common: a member just chosen is partitioned next.) A Suspect
        member, one missed probe, is still written to: under load that is often no fault at all."""
        silenced = asyncio.Event()
        if health.lost(self.health.phase):
            silenced.set()
        self._writes_waiting.add(silenced)
        writing_task = asyncio.ensure_future(write)
        waiting = asyncio.ensure_future(silenced.wait())
        try:
            await asyncio.wait({writing_task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            self._writes_waiting.discard(silenced)
        if writing_task.done():
            return writing_task.result()
        writing_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, errors.MemberError):
            await writing_task
        raise errors.MemberTimeout(self.name, f"stopped answering during the write ({self.health.message})")

    async def _drain(self, copy: Copy) -> None:
        """Wait until the scaled-down copy has no pods left; if the member's controllers lag (they back
        off after an API server restart), delete the pods ourselves rather than let them run on."""
        started = time.monotonic()
        deleted_pods = False
        while copy.workload_uid in self.running_workload_uids():
            waited = time.monotonic() - started
            if waited > POD_DRAIN_TIMEOUT_S:
                logger.warning("member %s: pods of %s still there after %.0fs", self.name, copy.name, waited)
                return
            if waited > CONTROLLER_GRACE_S and not deleted_pods:
                await deleting.delete_all(self.client, resources.PODS, namespace=manifests.WORKLOAD_NAMESPACE,
                                          label_selector=f"{manifests.UID_LABEL}={copy.workload_uid}")
                deleted_pods = True
            await asyncio.sleep(0.1)

    def retire(self, copy: Copy) -> None:
        """Delete a copy in the background: draining its pods takes seconds, and the reconciler that
        asked must not wait for it before writing status or placing elsewhere."""
        if copy.name in self._deleting:
            return
        self._deleting.add(copy.name)
        task = asyncio.create_task(self._retire(copy), name=f"{self.name}/retire/{copy.name}")
        self._tasks.append(task)
        task.add_done_callback(lambda done: self._tasks.remove(done) if done in self._tasks else None)

    async def _retire(self, copy: Copy) -> None:
        try:
            await self.delete_copy(copy)
        except errors.MemberError as error:
            logger.info("member %s: copy %s not removed yet (retried on the next reconcile): %s",
                        self.name, copy.name, error)

    async def delete_copy(self, copy: Copy) -> None:
        """Delete a copy, remembering that samizdat did it, so that its DELETED event is no censorship."""
        self._deleting.add(copy.name)
        try:
            existed = await self.erase(copy)
        except errors.NotFound:
            existed = False
        except errors.MemberError:
            self._deleting.discard(copy.name)
            raise
        if not existed:  # no DELETED event will come to confirm it
            self._deleting.discard(copy.name)
            self.copies.pop(copy.workload_uid, None)

    async def erase(self, copy: Copy) -> bool:
        """Scale the copy to zero, then delete it; whether it still existed. Its pods go at once through
        the Deployment or Job controller, not whenever the member's garbage collector gets to them (after
        an API server restart that can take minutes), so no stale replica runs on while it no longer counts."""
        kind = manifests.copy_kind(copy.kind)
        resource = resources.of_kind(kind.api_version, kind.kind)
        namespace = manifests.WORKLOAD_NAMESPACE
        if kind.scale_subresource:
            await scaling.scale(self.client, resource, copy.name, namespace=namespace, replicas=0)
        else:
            await writing.write(self.client, "PATCH", resource.path(namespace=namespace, name=copy.name),
                                body=kind.scaled_to_zero(), content_type=scaling.MERGE_PATCH)
        await self._drain(copy)
        return await deleting.delete(self.client, resource, copy.name, namespace=namespace)
