"""The member's fence in a real member API server: writes by samizdat's identity below the fence epoch
are refused by the member itself, deletes included, and the fence epoch only grows.

Installed on the last member with its admin credentials (as a member admin, or `samizdat join`, would)
and removed again afterwards, so the rest of the session sees members without a fence.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from e2e.sandbox import members
from e2e.sandbox.world import Sandbox
from samizdat.clusters import applying, client, deleting, errors, kubeconfig, resources, scaling, writing
from samizdat.leadership import EPOCH_ANNOTATION, Permit, fence

NAMESPACE = members.WORKLOAD_NAMESPACE
USERNAME = f"system:serviceaccount:{members.SYSTEM_NAMESPACE}:{members.IDENTITY}"
REFUSED = (errors.MemberForbidden, errors.MemberAPIError)

pytestmark = pytest.mark.timeout(60)


class Epoch:
    """A leader of a fixed epoch, always warranted: what a paused leader believes when it wakes up."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def permit(self) -> Permit | None:
        return Permit(self.epoch, 5.0)


def fence_access() -> list[dict[str, Any]]:
    """What the member admin grants samizdat for the fence epoch (docs/operations.md)."""
    subject = [{"kind": "ServiceAccount", "name": members.IDENTITY, "namespace": members.SYSTEM_NAMESPACE}]
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "samizdat-fence", "namespace": NAMESPACE},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [fence.FENCE_NAME],
                    "verbs": ["get", "update", "patch", "delete"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "samizdat-fence", "namespace": NAMESPACE},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "samizdat-fence"},
         "subjects": subject},
    ]


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"samizdat.io/test": "fence"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "server", "image": "registry.invalid/inference:1"}]},
        }},
    }


@contextlib.asynccontextmanager
async def fenced_member(sandbox: Sandbox, epoch: int) -> AsyncIterator[str]:
    member = sandbox.member_names[-1]
    objects = [*fence_access(), *fence.build_fence(NAMESPACE, USERNAME, epoch)]
    admin = sandbox.kubectl(member)
    admin.apply(objects)
    try:
        yield member
    finally:
        for obj in reversed(objects):
            scope = ["-n", obj["metadata"]["namespace"]] if "namespace" in obj["metadata"] else []
            kind = obj["kind"].lower() + ("." + obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else "")
            admin.run("delete", kind, obj["metadata"]["name"], *scope, "--ignore-not-found", check=False)
        admin.run("delete", "deployments", "-l", "samizdat.io/test=fence", "-n", NAMESPACE, check=False)


def as_leader(sandbox: Sandbox, member: str, epoch: int) -> client.MemberClient:
    credentials = kubeconfig.load(sandbox.identity_kubeconfig_path(member))
    return client.MemberClient(member, credentials, authority=Epoch(epoch))


async def refused(write: Any) -> str:
    with pytest.raises(REFUSED) as caught:
        await write
    return str(caught.value)


async def test_a_stale_leaders_writes_are_refused_by_the_member(sandbox: Sandbox) -> None:
    name = f"fence-{uuid.uuid4().hex[:6]}"
    async with fenced_member(sandbox, epoch=5) as member:
        # Admission policies take effect once the member's policy cache has loaded them: wait for the
        # first refusal rather than sleep.
        async with as_leader(sandbox, member, 4) as stale, as_leader(sandbox, member, 5) as current:
            await _until_fenced(stale, name)
            applied = await applying.apply(current, deployment(name))
            assert applied["metadata"]["annotations"][EPOCH_ANNOTATION] == "5"
            assert "older than the fence epoch 5" in await refused(applying.apply(stale, deployment(name)))
            # a delete needs a retirement mark of at least the fence epoch, which epoch 4 cannot make ...
            assert await refused(deleting.delete(stale, resources.DEPLOYMENTS, name, namespace=NAMESPACE))
            # ... and an unmarked object cannot be deleted even by a current leader that skips the mark
            assert await refused(writing.write(current, "DELETE", resources.DEPLOYMENTS.path(
                namespace=NAMESPACE, name=name), body=deleting.DELETE_OPTIONS))
            # ... nor scale it; the current leader may (its epoch rides on the Deployment's patch)
            assert await refused(scaling.scale(stale, resources.DEPLOYMENTS, name, namespace=NAMESPACE, replicas=1))
            assert await scaling.scale(current, resources.DEPLOYMENTS, name, namespace=NAMESPACE, replicas=1) == 1
            # The new leader raises the fence to 6: now epoch 5 is stale too.
            await applying.apply(current, fence.build_fence_epoch(NAMESPACE, 6))
            async with as_leader(sandbox, member, 6) as newer:
                assert await refused(applying.apply(current, deployment(name)))
                assert "only grows" in await refused(applying.apply(newer, fence.build_fence_epoch(NAMESPACE, 5)))
                assert "never deleted" in await refused(
                    deleting.delete(newer, resources.CONFIGMAPS, fence.FENCE_NAME, namespace=NAMESPACE))
                await applying.apply(newer, deployment(name))  # stamps 6 on the object ...
                assert await deleting.delete(newer, resources.DEPLOYMENTS, name, namespace=NAMESPACE)  # ... then deletes


async def _until_fenced(stale: client.MemberClient, name: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    probe = deployment(f"{name}-probe")
    while True:
        try:
            await applying.apply(stale, probe)
        except REFUSED:
            return
        assert time.monotonic() < deadline, "the fence never took effect"
        await asyncio.sleep(0.5)
