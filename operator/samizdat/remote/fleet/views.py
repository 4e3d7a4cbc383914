"""What one member holds, as its list-then-watch views show it: nodes, pods, samizdat's copies, their
Services and the workload namespace, with the figures placement and status derive from them.

The views do no I/O and judge nothing: the member's watch loops feed them listings and events, and each
fold answers with what it saw that may be censorship (see `samizdat.core.tampering`), for the member to
act on. Derived figures (node shapes, the ledger's charged shapes, GPUs used, pods by workload) are
worked out once per change of the views.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from samizdat.core import inventory, ledger, manifests, tampering
from samizdat.core.placement.snapshot import NodeShape
from samizdat.core.tampering import Censorship
from samizdat.remote.clusters import resources

COPY_RESOURCES = tuple(resources.of_kind(kind.api_version, kind.kind) for kind in manifests.COPY_KINDS)


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
class Seen:
    """What one listing or watch event changed: whether anything placement reads did, the evidence of
    censorship it carried, and the copies it showed deleted (by their names)."""

    changed: bool
    evidence: tuple[Censorship, ...] = ()
    deleted_copies: tuple[str, ...] = ()


class Views:
    """The member's objects as last listed or watched; see the module docstring."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.copies: dict[str, Copy] = {}  # by workload uid
        # The Service of each served copy as the member answered our apply (its ClusterIP and node
        # ports are the member's to choose); forgotten with the copy, which owns it in the member.
        self.services: dict[str, dict[str, Any]] = {}  # by workload uid
        self._synced: set[str] = set()
        # None until first seen: a namespace missing from the start is a setup error, not censorship.
        self._namespace_present: bool | None = None
        self._shapes: tuple[NodeShape, ...] | None = None
        # The ledger's view (shapes with the given promises charged), and pods by workload uid: both
        # derived from the views, dropped whenever nodes or pods change.
        self._promised: tuple[tuple[ledger.Promise, ...], tuple[NodeShape, ...]] | None = None
        self._by_workload: dict[str, list[dict[str, Any]]] | None = None
        self._used: Mapping[str, int] | None = None

    @property
    def complete(self) -> bool:
        """Every view has been listed once."""
        return len(self._synced) == 3 + len(COPY_RESOURCES)

    # ----- folding in what the watches report

    def listed(self, resource: resources.Resource, items: tuple[dict[str, Any], ...], ours: Collection[str]) -> Seen:
        """Replace the view of `resource` with a complete listing of it. A listing follows a watch that
        broke (a reset, a half-open stream, a restart), so it is read as the events the gap hid: a copy
        known before and missing now was deleted, a listed one is judged as a MODIFIED event would be,
        and an act of censorship done during the gap is evidence all the same. `ours`: the copies
        samizdat itself is deleting."""
        evidence: tuple[Censorship, ...] = ()
        deleted: tuple[str, ...] = ()
        if resource is resources.NODES:
            self.nodes = {o["metadata"]["name"]: o for o in items}
        elif resource is resources.PODS:
            self.pods = {o["metadata"]["uid"]: o for o in items}
        elif resource is resources.NAMESPACES:
            evidence = self._namespace_seen(bool(items) and not items[0]["metadata"].get("deletionTimestamp"))
        else:
            kept = {uid: c for uid, c in self.copies.items() if c.kind != resource.kind}
            for obj in items:
                _copy_seen(obj, kept)
                evidence += tampering.copy_event(obj, False, ours=obj["metadata"]["name"] in ours)
            gone = [c for uid, c in self.copies.items() if c.kind == resource.kind and uid not in kept]
            for copy in gone:
                evidence += tampering.copy_event(copy.body, True, ours=copy.name in ours)
                self.services.pop(copy.workload_uid, None)
            deleted = tuple(copy.name for copy in gone)
            self.copies = kept
        self._changed()
        self._synced.add(resource.plural)
        return Seen(True, evidence, deleted)

    def observed(self, resource: resources.Resource, kind: str, obj: dict[str, Any], ours: Collection[str]) -> Seen:
        """Fold one watch event (ADDED, MODIFIED or DELETED) of `resource` into the view; `ours`: the
        copies samizdat itself is deleting, whose events are no censorship."""
        deleted = kind == "DELETED"
        metadata = obj["metadata"]
        seen = Seen(True)
        if resource is resources.NODES:
            _store(self.nodes, metadata["name"], obj, deleted)
        elif resource is resources.PODS:
            if not _store(self.pods, metadata["uid"], obj, deleted):
                return Seen(False)  # pod status churn that changes no GPU accounting
        elif resource is resources.NAMESPACES:
            seen = Seen(True, self._namespace_seen(not deleted and not metadata.get("deletionTimestamp")))
        else:
            seen = self._copy_event(obj, deleted, ours)
        self._changed()
        return seen

    def forget_copy(self, uid: str) -> None:
        """A copy samizdat deleted that no watch event will confirm (it was gone already)."""
        self.copies.pop(uid, None)

    def _changed(self) -> None:
        self._shapes = self._promised = self._by_workload = self._used = None

    def _namespace_seen(self, present: bool) -> tuple[Censorship, ...]:
        evidence = tampering.namespace_event(self._namespace_present, present)
        self._namespace_present = present
        return (evidence,) if evidence is not None else ()

    def _copy_event(self, obj: dict[str, Any], deleted: bool, ours: Collection[str]) -> Seen:
        name = obj["metadata"]["name"]
        evidence = tampering.copy_event(obj, deleted, ours=name in ours)
        if deleted:
            uid = obj["metadata"].get("labels", {}).get(manifests.UID_LABEL, "")
            self.copies.pop(uid, None)
            self.services.pop(uid, None)
            return Seen(True, evidence, deleted_copies=(name,))
        _copy_seen(obj, self.copies)
        return Seen(True, evidence)

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

    def total_gpus(self) -> int:
        """Allocatable on every node, whether it takes new replicas or not."""
        return sum(inventory.allocatable_gpus(node) for node in self.nodes.values())


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


def _copy_seen(obj: dict[str, Any], into: dict[str, Copy]) -> None:
    labels = obj["metadata"].get("labels", {})
    uid = labels.get(manifests.UID_LABEL)
    if not uid:
        return
    kind = manifests.copy_kind(obj["kind"])
    into[uid] = Copy(obj["kind"], obj["metadata"]["name"], uid, kind.desired(obj), kind.ready(obj), obj)
