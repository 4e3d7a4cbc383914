"""One member cluster as the operator lives with it: its connection, its probe and watch loops, and the
writes samizdat makes there.

A `Member` joins three parts: `Views` (what the member holds, list-then-watch, `views.py`), `Liveness`
(its probes and failing views turned into health, `liveness.py`) and, here, the client, the loops that
feed both, and the one write path. Censorship is read from the views' folds (`samizdat.core.tampering`)
and quarantines the member through its liveness; samizdat's own deletes are remembered here until the
watch confirms them, so they are never mistaken for someone else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from samizdat.core import health, ledger, manifests, membership
from samizdat.core.health import MemberHealth
from samizdat.core.health.link import DEADLINE_CAP_S, LinkFigures
from samizdat.core.model import CensorshipKind
from samizdat.core.placement.snapshot import NodeShape
from samizdat.core.tampering import Censorship
from samizdat.remote.clusters import (
    applying, deleting, errors, fencing, kubeconfig, probing, resources, scaling, watching, writing,
)
from samizdat.remote.clusters.client import Authority, ClusterClient
from samizdat.remote.clusters.fetching import Listing
from samizdat.remote.fleet.changes import MemberChange
from samizdat.remote.fleet.liveness import LINK_FAILURES, Liveness
from samizdat.remote.fleet.views import COPY_RESOURCES, Copy, Seen, Views

logger = logging.getLogger(__name__)

COPY_SELECTOR = "app.kubernetes.io/managed-by=samizdat"
# After a failed list or watch a view is retried with a back-off, so a broken member costs a few requests,
# not a storm; short enough that a member back from an outage is seen again within seconds.
RETRY_AFTER_ERROR_S = (1.0, 4.0)
# Probes one member may have outstanding (they overlap on a slow link); beyond that a send is skipped:
# the link is stalled, and the silence rule judges it.
PROBES_IN_FLIGHT = 4
# A probe loop woken this much later than it asked was held up by the operator itself, not the member.
STALL_S = 0.05
POD_DRAIN_TIMEOUT_S = 30.0  # how long a removed copy's pods may take to go before it is deleted anyway
CONTROLLER_GRACE_S = 3.0  # how long the member's own controllers get to remove those pods


@dataclass(frozen=True, slots=True)
class MemberSettings:
    probe_interval_s: float = 1.0
    probe_timeout_s: float = 1.0
    quarantine_s: float = 300.0
    policy: health.HealthPolicy = health.HealthPolicy()
    # The leader election every write asks first (None: a single operator, writes unguarded).
    authority: Authority | None = None


@dataclass(frozen=True, slots=True)
class MemberState:
    """One member at one moment, as its status reports it: a value, so status builders stay pure."""

    name: str
    health: MemberHealth
    last_probe: probing.Probe | None
    link: LinkFigures
    censorship: Censorship | None
    shapes: tuple[NodeShape, ...]
    total_gpus: int  # allocatable on every node, whether it takes new replicas or not
    ready: bool  # Ready, every view complete and fenced: the member counts for placement
    # The member's fence as the leader's writes found it; None without an election (nothing to raise).
    fence: fencing.FenceState | None = None


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
        on_change: Callable[[Member, MemberChange], None],
    ) -> None:
        self.name = name
        self._credentials = credentials
        self._client: ClusterClient | None = None
        self.settings = settings
        self.on_change = on_change
        self.views = Views()
        self.liveness = Liveness(name, settings.policy, settings.probe_interval_s, settings.probe_timeout_s,
                                 settings.quarantine_s, time.monotonic, self._health_changed)
        # Probes have connections of their own, new ones after a failed probe (see `_probe_loop`).
        self._prober: ClusterClient | None = None
        self._probes_on: dict[ClusterClient, int] = {}  # probes in flight on each probe client
        self._next_probe = 0.0  # monotonic time of the next probe
        self._retried_at = -math.inf  # when a failed probe was last tried again at once
        self._probe_wake = asyncio.Event()
        self._deleting: set[str] = set()  # copy names samizdat itself is deleting
        self._writes_waiting: set[asyncio.Event] = set()  # set when the member is lost (see `answering`)
        self._tasks: list[asyncio.Task[None]] = []

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
        for client in (self._client, self._prober, *self._probes_on):
            if client is not None:
                await client.aclose()

    @property
    def credentials(self) -> kubeconfig.Credentials:
        return self._credentials

    def use_token(self, token: str) -> None:
        """Authenticate from now on with a renewed or rotated token, keeping the connections and views."""
        self._credentials = replace(self._credentials, token=token, token_file=None)
        for client in (self._client, self._prober):
            if client is not None:
                client.use_token(token)

    @property
    def client(self) -> ClusterClient:
        """The member's API, connected on first use (its TLS context is costly to build)."""
        if self._client is None:
            # With an election, the leader's writes raise the member's fence first (see clusters.fencing).
            keeper = fencing.Keeper(
                manifests.WORKLOAD_NAMESPACE, membership.IDENTITY_NAMESPACE,
                on_change=lambda: self.on_change(self, MemberChange.FENCE),
            ) if self.settings.authority is not None else None
            self._client = ClusterClient(self.name, self._credentials, authority=self.settings.authority, fence=keeper)
        return self._client

    @property
    def host(self) -> str | None:
        return urlsplit(self._credentials.server).hostname

    # ----- what the fleet reads (the views' and the liveness' own, by their names)

    @property
    def health(self) -> MemberHealth:
        return self.liveness.health

    @property
    def censorship(self) -> Censorship | None:
        return self.liveness.censorship

    @property
    def lost_since(self) -> float | None:
        return self.liveness.lost_since

    @property
    def lost_reason(self) -> str | None:
        return self.liveness.lost_reason

    @property
    def clock(self) -> Callable[[], float]:
        """What health judges time by (monotonic seconds); the fleet compares loss times on the same clock."""
        return self.liveness.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.liveness.clock = clock

    @property
    def probe_rtt_ms(self) -> float | None:
        return self.liveness.probe_rtt_ms

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        return self.views.nodes

    @property
    def pods(self) -> dict[str, dict[str, Any]]:
        return self.views.pods

    @property
    def copies(self) -> dict[str, Copy]:
        return self.views.copies

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return self.views.services

    @property
    def views_complete(self) -> bool:
        return self.views.complete

    @property
    def ready_to_count(self) -> bool:
        """Replicas here may be counted: the member is healthy and every view is complete."""
        return health.schedulable(self.health.phase) and self.views.complete

    def state(self, fenced: bool) -> MemberState:
        return MemberState(
            name=self.name, health=self.health, last_probe=self.liveness.last_probe,
            link=self.liveness.link_figures(), censorship=self.censorship,
            shapes=self.views.shapes(), total_gpus=self.views.total_gpus(),
            ready=self.ready_to_count and fenced, fence=self.fence,
        )

    @property
    def fence(self) -> fencing.FenceState | None:
        """What the leader's writes found of the member's fence (None: no election, or not connected yet)."""
        keeper = self._client.fence if self._client is not None else None
        return keeper.state if isinstance(keeper, fencing.Keeper) else None

    def pods_of(self, uid: str) -> list[dict[str, Any]]:
        return self.views.pods_of(uid)

    def workload_pods(self, uid: str) -> list[dict[str, Any]]:
        return self.views.workload_pods(uid)

    def used_gpus(self) -> Mapping[str, int]:
        return self.views.used_gpus()

    def promised_shapes(self, promises: tuple[ledger.Promise, ...]) -> tuple[NodeShape, ...]:
        return self.views.promised_shapes(promises)

    def replicas_lost_to_gpu_faults(self, uid: str) -> int:
        return self.views.replicas_lost_to_gpu_faults(uid)

    # ----- health

    async def _probe_loop(self) -> None:
        """Send a probe every `link.interval()`, whether or not the earlier ones have answered, and judge
        the link's silence when it is due with nothing heard (`samizdat.core.health.link`). A probe
        still unanswered at its deadline counts as failed, but its answer is still taken until
        `DEADLINE_CAP_S`; after a failed probe the next ones go on fresh connections, and one is sent
        at once. Time this loop wakes up late is the operator's own stall, forgiven as silence."""
        link = self.liveness.link
        in_flight: set[asyncio.Task[None]] = set()
        self._next_probe = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if now >= self._next_probe:
                    if len(in_flight) < PROBES_IN_FLIGHT:
                        task = asyncio.create_task(self._probe_once(), name=f"{self.name}/probe-once")
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                    self._next_probe = now + link.interval()
                due = self.liveness.silence_due()
                wake_at = self._next_probe if due is None else min(self._next_probe, due)
                self._probe_wake.clear()
                try:
                    await asyncio.wait_for(self._probe_wake.wait(), max(0.0, wake_at - time.monotonic()))
                except TimeoutError:
                    if (late := time.monotonic() - wake_at) > STALL_S:
                        self.liveness.stalled(late)
                if due is not None and time.monotonic() >= due:
                    self.liveness.judge_silence()
        finally:
            for task in in_flight:
                task.cancel()

    async def _probe_once(self) -> None:
        client = self._probe_client()
        deadline = self.liveness.link.deadline()
        self._probes_on[client] = self._probes_on.get(client, 0) + 1
        answer = asyncio.ensure_future(probing.probe(client, timeout=DEADLINE_CAP_S))
        try:
            done, _ = await asyncio.wait({answer}, timeout=deadline)
            if not done:
                self._probe_failed(probing.unanswered(self.name, deadline))
                late = await answer
                if late.failure not in LINK_FAILURES:  # answered after all: life (its failure counted)
                    self.probed(late)
            elif (result := answer.result()).failure in LINK_FAILURES:
                self._probe_failed(result)
            else:
                self.probed(result)
        finally:
            answer.cancel()
            self._probes_on[client] -= 1
            if client is not self._prober and not self._probes_on[client]:
                del self._probes_on[client]
                await client.aclose()

    def _probe_client(self) -> ClusterClient:
        if self._prober is None:
            self._prober = self.client.reconnected()
        return self._prober

    def _probe_failed(self, result: probing.Probe) -> None:
        """A probe failed on the link: counted, the next ones go on fresh connections (a stalled or
        half-open one is left to its probes in flight), and one goes at once, once an interval."""
        self.probed(result)
        stale, self._prober = self._prober, None
        if stale is not None and not self._probes_on.get(stale):
            self._probes_on.pop(stale, None)
            self._spawn(stale.aclose(), "probe-close")
        now = time.monotonic()
        if now - self._retried_at >= self.liveness.link.interval():
            self._retried_at = self._next_probe = now
            self._probe_wake.set()

    def probed(self, result: probing.Probe) -> None:
        """Fold one probe's outcome into the member's health."""
        self.liveness.probed(result)

    def starved(self, kind: CensorshipKind, message: str) -> None:
        """Quarantine the member for keeping our admitted replicas from starting (see `samizdat.core.starts`)."""
        self.liveness.censored(Censorship(kind, message))

    def _health_changed(self, change: MemberChange, new: MemberHealth) -> None:
        if change is MemberChange.PHASE and health.lost(new.phase):
            for silenced in self._writes_waiting:
                silenced.set()
        self.on_change(self, change)

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
                            self.liveness.view_works(resource.plural)
                            delay = RETRY_AFTER_ERROR_S[0]
                        elif item.type != "BOOKMARK":
                            self.observed(resource, item.type, item.object)
            except errors.MemberError as error:
                self.liveness.view_failed(resource.plural, error)
            # The last view stays: whether the member is gone is the probes' call (with hysteresis),
            # and the views' only when listing them keeps failing; the next listing replaces it whole.
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_AFTER_ERROR_S[1])

    def listed(self, resource: resources.Resource, items: tuple[dict[str, Any], ...]) -> None:
        """Replace the view of `resource` with a complete listing of it."""
        self._seen(self.views.listed(resource, items, ours=self._deleting))

    def observed(self, resource: resources.Resource, kind: str, obj: dict[str, Any]) -> None:
        """Fold one watch event (ADDED, MODIFIED or DELETED) of `resource` into the view."""
        self._seen(self.views.observed(resource, kind, obj, ours=self._deleting))

    def _seen(self, seen: Seen) -> None:
        # ours, confirmed; someone else's is in the evidence
        self._deleting.difference_update(seen.deleted_copies)
        for evidence in seen.evidence:
            self.liveness.censored(evidence)
        if seen.changed:
            self.on_change(self, MemberChange.VIEW)

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
        while copy.workload_uid in self.views.running_workload_uids():
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
        self._spawn(self._retire(copy), f"retire/{copy.name}")

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run `work` in the background until done or the member stops."""
        task = asyncio.create_task(work, name=f"{self.name}/{what}")
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
            self.views.forget_copy(copy.workload_uid)

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
