"""`samizdat unjoin NAME`: take a member out, its replicas first, then every trace of samizdat in it and the hub.

1. Cordon it (`spec.cordoned: true`): placement gives a cordoned member nothing and lets it keep nothing,
   so the operator re-places its replicas elsewhere, under the workloads' rules, and deletes its copies.
   Wait until no copy and no pod of samizdat is left in the member (or `--timeout`).
2. Delete the MemberCluster (the operator lets go of the member), then samizdat's objects in the member
   (`samizdat.core.membership`: its RBAC, ServiceAccount, credential Secrets — every token dies with them —
   the workload namespace, and once it is gone the fence epoch), then the hub Secret. The fence's admission policies stay:
   they judge only samizdat's identity, which is gone, and a later `join` finds them in place.

A member that cannot be reached (seized, gone) is still removed from the hub; what is left in it is
named, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from samizdat.core import membership
from samizdat.remote.clusters import deleting, errors, fetching, resources, writing
from samizdat.remote.clusters.client import ClusterClient
from samizdat.remote.clusters.reviewing import Access
from samizdat.app.commands import contexts
from samizdat.app.commands.contexts import Context, UsageError, say
from samizdat.core.manifests import MANAGED_BY, WORKLOAD_NAMESPACE

POLL_S = 1.0
_SAMIZDAT = ",".join(f"{key}={value}" for key, value in MANAGED_BY.items())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the member's name in the hub")
    parser.add_argument("--member-context", required=True, help="kubeconfig context of the member, as its admin")
    parser.add_argument("--hub-context", help="kubeconfig context of the hub (default: the current context)")
    parser.add_argument("--kubeconfig", help="kubeconfig file with both contexts (default: $KUBECONFIG)")
    parser.add_argument("--secret-namespace", default=membership.HUB_SECRET_NAMESPACE,
                        help="hub namespace of member Secrets (the chart's memberSecretsNamespace)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the member's replicas to be re-placed elsewhere")


def main(args: argparse.Namespace) -> int:
    try:
        member = contexts.connect("member", args.member_context, args.kubeconfig)
        hub = contexts.connect("hub", args.hub_context, args.kubeconfig)
    except UsageError as error:
        return contexts.fail("unjoin", str(error))
    return asyncio.run(_unjoin(args.name, args.secret_namespace, member, hub, args.timeout))


def member_rights() -> list[Access]:
    rights = [Access("delete", resources.of(obj), obj["metadata"].get("namespace"), obj["metadata"]["name"])
              for obj in [membership.identity_namespace(), *membership.identity_objects(), membership.fence_epoch()]]
    rights += [Access(verb, resources.SECRETS, membership.IDENTITY_NAMESPACE) for verb in ("list", "delete")]
    rights += [Access("list", resource, WORKLOAD_NAMESPACE)
               for resource in (resources.DEPLOYMENTS, resources.JOBS, resources.PODS)]
    rights.append(Access("get", resources.NAMESPACES, None, WORKLOAD_NAMESPACE))  # is it gone yet
    return rights


def hub_rights(name: str, secret_namespace: str) -> list[Access]:
    return [
        Access("get", resources.MEMBERCLUSTERS, name=name),
        Access("patch", resources.MEMBERCLUSTERS, name=name),
        Access("delete", resources.MEMBERCLUSTERS, name=name),
        Access("delete", resources.SECRETS, secret_namespace, membership.hub_secret_name(name)),
    ]


async def _unjoin(name: str, secret_namespace: str, member: Context, hub: Context, timeout: float) -> int:
    async with member.client, hub.client:
        try:
            await contexts.check_rights(hub, hub_rights(name, secret_namespace))
        except UsageError as error:
            return contexts.fail("unjoin", str(error))
        try:
            await contexts.check_rights(member, member_rights())
            reachable = True
        except UsageError as error:
            if "cannot reach" not in str(error):
                return contexts.fail("unjoin", str(error))
            say(f"{error}: removing {name} from the hub only")
            reachable = False
        try:
            registered = await _exists(hub.client, resources.MEMBERCLUSTERS, name)
            if not registered:
                say(f"hub: no MemberCluster {name}")
            if registered and reachable:
                await _drain(name, member, hub, timeout)
            if registered:
                await _deregister(name, hub, timeout)
            if reachable:
                await _clean_member(member, timeout)
            if await deleting.delete(hub.client, resources.SECRETS, membership.hub_secret_name(name),
                                     namespace=secret_namespace):
                say(f"hub: deleted Secret {secret_namespace}/{membership.hub_secret_name(name)}")
        except errors.MemberError as error:
            say(f"unjoin stopped: {error}. Run it again to finish.")
            return 1
    if not reachable:
        say(f"samizdat's objects are left in the member {name}: run unjoin again once it can be reached")
        return 1
    say(f"{name} is no longer a member")
    return 0


async def _exists(client: ClusterClient, resource: resources.Resource, name: str) -> bool:
    try:
        await fetching.get(client, resource, name)
    except errors.NotFound:
        return False
    return True


async def _gone(client: ClusterClient, resource: resources.Resource, name: str, timeout: float) -> bool:
    """Wait (bounded) until the cluster has finished deleting this (cluster-scoped) object."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not await _exists(client, resource, name):
            return True
        await asyncio.sleep(POLL_S)
    return False


async def _drain(name: str, member: Context, hub: Context, timeout: float) -> None:
    """Cordon the member and wait until the operator has moved every replica away."""
    await writing.write(hub.client, "PATCH", resources.MEMBERCLUSTERS.path(name=name),
                        body={"spec": {"cordoned": True}}, content_type="application/merge-patch+json")
    say(f"hub: cordoned MemberCluster {name}; waiting for its replicas to be re-placed elsewhere")
    started = time.monotonic()
    while True:
        remaining = await _samizdat_objects(member)
        if not remaining:
            say(f"member {name}: no samizdat replicas left ({time.monotonic() - started:.0f} s)")
            return
        if time.monotonic() - started > timeout:
            say(f"member {name}: still holds {', '.join(remaining)} after {timeout:.0f} s; removing them anyway")
            return
        await asyncio.sleep(POLL_S)


async def _samizdat_objects(member: Context) -> list[str]:
    """samizdat's copies and pods still in the member, by kind and name."""
    found = []
    for resource in (resources.DEPLOYMENTS, resources.JOBS, resources.PODS):
        selector = _SAMIZDAT if resource is not resources.PODS else None
        try:
            listing = await fetching.list_objects(member.client, resource, namespace=WORKLOAD_NAMESPACE,
                                                  label_selector=selector)
        except errors.NotFound:
            return []  # no workload namespace at all
        found += [f"{resource.kind} {item['metadata']['name']}" for item in listing.items]
    return found


async def _deregister(name: str, hub: Context, timeout: float) -> None:
    """Delete the MemberCluster and wait (bounded) until the operator has let go of it (its finalizer)."""
    await deleting.delete(hub.client, resources.MEMBERCLUSTERS, name)
    if await _gone(hub.client, resources.MEMBERCLUSTERS, name, timeout):
        say(f"hub: deleted MemberCluster {name}")
    else:
        say(f"hub: MemberCluster {name} is being deleted, waiting for the operator to release it")


async def _clean_member(member: Context, timeout: float) -> None:
    """Delete samizdat's objects in the member: credentials first, then the workload namespace, and the
    fence epoch only once that namespace is gone. The fence refuses every write in the namespace while
    its epoch is missing (see `leadership.fence`), the namespace controller's deletes of copies left
    behind included: deleted first, it would hold the namespace in Terminating for ever."""
    client = member.client
    credentials = await fetching.list_objects(client, resources.SECRETS, namespace=membership.IDENTITY_NAMESPACE,
                                              label_selector=membership.CREDENTIAL_SELECTOR)
    for item in credentials.items:  # first: every token bound to them is refused from here on
        await deleting.delete(client, resources.SECRETS, item["metadata"]["name"],
                              namespace=membership.IDENTITY_NAMESPACE)
    deleted = [f"{len(credentials.items)} credential Secret(s)"]
    for obj in reversed(membership.identity_objects()):  # the workload namespace last
        metadata = obj["metadata"]
        if await deleting.delete(client, resources.of(obj), metadata["name"], namespace=metadata.get("namespace")):
            deleted.append(contexts.describe(obj))
    if not await _gone(client, resources.NAMESPACES, WORKLOAD_NAMESPACE, timeout):
        say(f"member: deleted {', '.join(deleted)}; Namespace {WORKLOAD_NAMESPACE} still terminating after "
            f"{timeout:.0f} s: the fence epoch and Namespace {membership.IDENTITY_NAMESPACE} are left")
        return
    epoch = membership.fence_epoch()
    if await deleting.delete(client, resources.of(epoch), epoch["metadata"]["name"],
                             namespace=epoch["metadata"]["namespace"]):
        deleted.append(contexts.describe(epoch))
    try:
        namespace = await fetching.get(client, resources.NAMESPACES, membership.IDENTITY_NAMESPACE)
    except errors.NotFound:
        namespace = None
    labels = (namespace or {}).get("metadata", {}).get("labels") or {}
    if namespace is not None and all(labels.get(k) == v for k, v in membership.CREATED_BY_JOIN.items()):
        await deleting.delete(client, resources.NAMESPACES, membership.IDENTITY_NAMESPACE)
        deleted.append(f"Namespace {membership.IDENTITY_NAMESPACE}")
        # waited for, so that a `join` right after finds no namespace still terminating to create into
        if not await _gone(client, resources.NAMESPACES, membership.IDENTITY_NAMESPACE, timeout):
            deleted.append(f"(Namespace {membership.IDENTITY_NAMESPACE} still terminating after {timeout:.0f} s)")
    say(f"member: deleted {', '.join(deleted)}")
