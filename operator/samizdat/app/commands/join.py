"""`samizdat join NAME`: register a member cluster in one command, with a least-privilege identity.

In the member (the user's `--member-context`): samizdat's namespace, ServiceAccount and exactly the RBAC
the operator needs (`samizdat.core.membership`), a new credential Secret, and a token of bounded lifetime bound
to it (TokenRequest API). In the hub: the Secret with the kubeconfig of that identity and the
MemberCluster. Then it waits until the operator uses the new credential and reports the member Ready.

Running it again rotates the credential: the new token is bound to a new credential Secret, and once the
operator has switched to it the older credential Secrets are deleted, so every older token is refused
(deleting them earlier would make the operator see its credentials revoked, i.e. censorship).

Every right needed is checked before the first write (SelfSubjectAccessReview); bad input exits 2 with
one line and nothing written. `--dry-run` prints every object and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pydantic

from samizdat.core import jurisdictions, membership, model
from samizdat.remote.clusters import applying, creating, deleting, errors, fencing, fetching, minting, resources
from samizdat.remote.clusters import kubeconfig as parsing
from samizdat.remote.clusters.client import ClusterClient
from samizdat.remote.clusters.kubeconfig import Credentials
from samizdat.remote.clusters.reviewing import Access
from samizdat.app.commands import contexts
from samizdat.app.commands.contexts import Context, UsageError, say
from samizdat.core.manifests import WORKLOAD_NAMESPACE
from samizdat.core.model import GROUP, VERSION

POLL_S = 1.0
IDENTITY_CHECKS = 20  # every 0.5 s: how long the new identity may be refused while RBAC caches catch up
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# What a dry run shows in place of the token a real join mints.
TOKEN_PLACEHOLDER = "<minted by the TokenRequest API at join>"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the member's name in the hub (a DNS label, e.g. de-frankfurt)")
    parser.add_argument("--member-context", required=True, help="kubeconfig context of the member, as its admin")
    parser.add_argument("--member-server", help="the member API server's URL as samizdat reaches it, where that "
                        "differs from the context's (a load balancer, a relay); its certificate must name it")
    parser.add_argument("--hub-context", help="kubeconfig context of the hub (default: the current context)")
    parser.add_argument("--kubeconfig", help="kubeconfig file with both contexts (default: $KUBECONFIG)")
    parser.add_argument("--country", required=True, help="ISO 3166-1 alpha-2 code of the member's country")
    parser.add_argument("--region", help="finer location, informational (e.g. eu-central-1)")
    parser.add_argument("--provider", required=True, help="who operates the member (counted by maxPerProvider)")
    parser.add_argument("--tee", action="store_true", help="the member offers confidential-computing GPUs")
    parser.add_argument("--cost-per-gpu-hour", type=float, help="price of one GPU-hour (a score input)")
    parser.add_argument("--latency-ms", type=float, help="typical latency to users in ms (a score input)")
    parser.add_argument("--down-after-seconds", type=int,
                        help="seconds of failed probes before the member is Down (default: the CRD's, 3)")
    parser.add_argument("--secret-namespace", default=membership.HUB_SECRET_NAMESPACE,
                        help="hub namespace of member Secrets (the chart's memberSecretsNamespace)")
    parser.add_argument("--token-lifetime", type=int, default=membership.DEFAULT_TOKEN_LIFETIME_S,
                        help=f"seconds the minted token lives (the operator renews it before; "
                             f"at least {membership.MIN_TOKEN_LIFETIME_S})")
    parser.add_argument("--no-wait", dest="wait", action="store_false",
                        help="return once written, without waiting for the operator to report the member Ready")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for Ready")
    parser.add_argument("--dry-run", action="store_true", help="print every object it would write; write nothing")


def registration(args: argparse.Namespace) -> membership.Registration:
    """The MemberCluster's facts from the flags; UsageError for any that cannot be right."""
    if not DNS_LABEL.fullmatch(args.name):
        raise UsageError(f"NAME {args.name!r} must be a DNS label: lower-case letters, digits and '-', at most 63")
    country = str(args.country)
    if not jurisdictions.is_country(country):
        hint = f" (did you mean {country.upper()}?)" if jurisdictions.is_country(country.upper()) else ""
        raise UsageError(f"--country {country!r} is not an ISO 3166-1 alpha-2 country code{hint}")
    if args.token_lifetime < membership.MIN_TOKEN_LIFETIME_S:
        raise UsageError(f"--token-lifetime must be at least {membership.MIN_TOKEN_LIFETIME_S} s (the API's minimum)")
    for flag, value in (("--cost-per-gpu-hour", args.cost_per_gpu_hour), ("--latency-ms", args.latency_ms)):
        if value is not None and value < 0:
            raise UsageError(f"{flag} must not be negative")
    if args.down_after_seconds is not None and args.down_after_seconds < 1:
        raise UsageError("--down-after-seconds must be at least 1")
    if args.member_server is not None and urlsplit(args.member_server).scheme != "https":
        raise UsageError(f"--member-server {args.member_server!r} must be an https:// URL")
    found = membership.Registration(
        name=args.name, country=country, provider=args.provider, region=args.region, tee=args.tee,
        cost_per_gpu_hour=args.cost_per_gpu_hour, latency_ms=args.latency_ms,
        down_after_seconds=args.down_after_seconds, secret_namespace=args.secret_namespace,
    )
    _check_model(found)
    return found


def _check_model(found: membership.Registration) -> None:
    """What the CRD would refuse (name, provider length…), refused here before anything is written."""
    try:
        model.MemberCluster.model_validate(membership.member_cluster(found))
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UsageError(f"{where}: {first['msg']}") from None


def endpoint(credentials: Credentials, server: str | None = None) -> membership.Endpoint:
    """How the operator will reach the member: as the user's own context does, or at `server`."""
    return membership.Endpoint(server=server or credentials.server, ca_pem=credentials.ca_pem,
                               tls_server_name=credentials.tls_server_name,
                               insecure_skip_tls_verify=credentials.insecure_skip_tls_verify)


def main(args: argparse.Namespace) -> int:
    try:
        found = registration(args)
        member_credentials = contexts.credentials(args.member_context, args.kubeconfig, "member")
        if args.dry_run:
            print(dry_run(found, member_credentials, args.token_lifetime, args.member_server), end="")
            return 0
        member = contexts.connect("member", args.member_context, args.kubeconfig)
        hub = contexts.connect("hub", args.hub_context, args.kubeconfig)
    except UsageError as error:
        return contexts.fail("join", str(error))
    return asyncio.run(_join(found, member, hub, args))


def dry_run(found: membership.Registration, member_credentials: Credentials, lifetime_s: int,
            server: str | None = None) -> str:
    """Every object a join writes, as YAML (the token and the credential's name and uid left open)."""
    kubeconfig = membership.kubeconfig(found.name, endpoint(member_credentials, server), TOKEN_PLACEHOLDER)
    secret = membership.hub_secret(found.name, kubeconfig, namespace=found.secret_namespace)
    readable = {**secret, "stringData": {membership.HUB_SECRET_KEY: kubeconfig}}
    readable.pop("data")
    anchor = membership.Anchor("<the credential Secret's name>", "<its uid>")
    return contexts.dump([
        *membership.member_objects(), membership.credential_secret(),
        membership.token_request(lifetime_s, anchor), readable, membership.member_cluster(found),
    ])


def member_rights() -> list[Access]:
    """Every right `join` uses in the member, derived from the objects it writes."""
    rights = [Access("get", resources.NAMESPACES, name=membership.IDENTITY_NAMESPACE),
              Access("create", resources.NAMESPACES)]
    for obj in [*membership.identity_objects(), *membership.fence_objects()]:
        resource = resources.of(obj)
        namespace = obj["metadata"].get("namespace")
        rights += [Access("patch", resource, namespace, obj["metadata"]["name"]), Access("create", resource, namespace)]
    rights.append(Access("create", resources.CONFIGMAPS, membership.IDENTITY_NAMESPACE))  # the fence epoch
    secrets = resources.SECRETS
    rights += [Access(verb, secrets, membership.IDENTITY_NAMESPACE) for verb in ("create", "list", "delete")]
    rights.append(Access("create", resources.SERVICEACCOUNTS, membership.IDENTITY_NAMESPACE, membership.IDENTITY,
                         "token"))
    return rights


def hub_rights(found: membership.Registration) -> list[Access]:
    secret = membership.hub_secret_name(found.name)
    return [
        Access("patch", resources.SECRETS, found.secret_namespace, secret),
        Access("create", resources.SECRETS, found.secret_namespace),
        Access("patch", resources.MEMBERCLUSTERS, name=found.name),
        Access("create", resources.MEMBERCLUSTERS),
        Access("get", resources.MEMBERCLUSTERS, name=found.name),
    ]


async def _join(found: membership.Registration, member: Context, hub: Context, args: argparse.Namespace) -> int:
    async with member.client, hub.client:
        try:
            existing = await _preflight(found, member, hub)
        except UsageError as error:
            return contexts.fail("join", str(error))
        try:
            anchor, kubeconfig = await _write_member(found, member, args.token_lifetime, args.member_server)
            await _write_hub(found, hub, kubeconfig)
        except errors.MemberError as error:
            say(f"join stopped: {error}. Run `samizdat join {found.name}` again to finish, "
                f"or `samizdat unjoin {found.name}` to undo.")
            return 1
        try:
            if existing is None:
                # Nobody uses an older credential (one an earlier registration left behind): retire it now.
                await _retire_credentials(member, keep=anchor)
            elif not args.wait:
                await _retire_credentials(member, keep=anchor, only_say=True)
            if not args.wait:
                return 0
            return await _await_ready(found, member, hub, anchor, args.timeout, rotate=existing is not None)
        except errors.MemberError as error:
            say(f"join stopped: {error}. Run `samizdat join {found.name}` again to finish.")
            return 1


async def _preflight(found: membership.Registration, member: Context, hub: Context) -> dict[str, Any] | None:
    """Check both clusters can be used for the join; return the MemberCluster if it exists already."""
    await asyncio.gather(contexts.check_rights(member, member_rights()), contexts.check_rights(hub, hub_rights(found)))
    try:
        await hub.client.request("GET", f"/apis/{GROUP}/{VERSION}")
    except errors.NotFound:
        raise UsageError(f"the hub (context {hub.name}) has no samizdat CRDs: `kubectl apply -f crds/` "
                         "(or install the chart) first") from None
    except errors.MemberError as error:
        raise UsageError(contexts.unusable(hub, error)) from None
    try:
        await fetching.get(hub.client, resources.NAMESPACES, found.secret_namespace)
    except errors.NotFound:
        raise UsageError(f"namespace {found.secret_namespace} does not exist in the hub (context {hub.name}): "
                         "install the chart first, or name another with --secret-namespace") from None
    except errors.MemberForbidden:
        pass  # may not read namespaces: writing the Secret will tell
    try:
        return await fetching.get(hub.client, resources.MEMBERCLUSTERS, found.name)
    except errors.NotFound:
        return None


async def _write_member(found: membership.Registration, member: Context, lifetime_s: int, server: str | None
                        ) -> tuple[membership.Anchor, str]:
    client = member.client
    say(f"member {found.name} (context {member.name}, {client.credentials.server}):")
    try:
        await fetching.get(client, resources.NAMESPACES, membership.IDENTITY_NAMESPACE)
    except errors.NotFound:
        namespace = membership.identity_namespace()
        namespace["metadata"]["labels"] = dict(membership.CREATED_BY_JOIN)
        await creating.create(client, namespace)
        say(f"  created Namespace {membership.IDENTITY_NAMESPACE}")
    for obj in membership.identity_objects():
        await applying.apply(client, obj)
    say("  applied " + ", ".join(contexts.describe(obj) for obj in membership.identity_objects()))
    await _install_fence(client)
    secret = await creating.create(client, membership.credential_secret())
    anchor = membership.Anchor(secret["metadata"]["name"], secret["metadata"]["uid"])
    minted = await minting.mint(client, namespace=membership.IDENTITY_NAMESPACE, service_account=membership.IDENTITY,
                                request=membership.token_request(lifetime_s, anchor))
    say(f"  created credential Secret {membership.IDENTITY_NAMESPACE}/{anchor.name}; minted a token bound to it, "
        f"expiring {minted.expires}")
    kubeconfig = membership.kubeconfig(found.name, endpoint(client.credentials, server), minted.token)
    await _check_identity(found.name, kubeconfig)
    return anchor, kubeconfig


async def _install_fence(client: ClusterClient) -> None:
    """The fence epoch (created at 0 when missing, never lowered), then the policies that check against it."""
    epoch = membership.fence_epoch()
    try:
        await creating.create(client, epoch)
        say(f"  created {contexts.describe(epoch)} (fence epoch 0; the leader raises it)")
    except errors.Conflict:
        pass  # kept as it stands: a leader may have raised it, and lowering it would unfence the member
    for obj in membership.fence_objects():
        await applying.apply(client, obj)
    say("  applied the fence: " + ", ".join(contexts.describe(obj) for obj in membership.fence_objects()))


async def _check_identity(name: str, kubeconfig: str) -> None:
    """The new identity reads what the operator reads first, before the hub is told to use it.

    The API server authorizes from a cache of RBAC objects: for a moment after they are written, the new
    identity may still be refused, so refusals are retried for a few seconds.
    """
    async with ClusterClient(name, parsing.parse(kubeconfig), deadlines=contexts.DEADLINES) as identity:
        for attempt in range(IDENTITY_CHECKS):
            try:
                await identity.request("GET", resources.NODES.path(), params={"limit": "1"})
                await identity.request("GET", resources.DEPLOYMENTS.path(namespace=WORKLOAD_NAMESPACE),
                                       params={"limit": "1"})
                break
            except (errors.MemberForbidden, errors.MemberUnauthorized):
                if attempt == IDENTITY_CHECKS - 1:
                    raise
                await asyncio.sleep(0.5)
        await _check_fence(identity)


async def _check_fence(identity: ClusterClient) -> None:
    """The fence is in force for the new identity before the hub is told to use it: a copy stamped with the
    fence epoch is admitted and one stamped below it refused (dry runs, nothing persisted). A policy and
    its params take a moment to load after they are written; until then the member may refuse everything."""
    deadline = contexts.DEADLINES.request
    why = ""
    for _ in range(IDENTITY_CHECKS):
        epoch = await fencing.read_epoch(identity, membership.IDENTITY_NAMESPACE, deadline)
        if epoch is None:
            raise errors.Unfenced(identity.member, "the fence epoch holds no integer")
        admitted = await fencing.admits(identity, WORKLOAD_NAMESPACE, epoch, deadline)
        refused = not await fencing.admits(identity, WORKLOAD_NAMESPACE, epoch - 1, deadline)
        if admitted and refused:
            say(f"  the fence is in force at epoch {epoch}")
            return
        why = "a current copy is refused" if not admitted else "a copy of an older epoch is admitted"
        await asyncio.sleep(0.5)
    raise errors.Unfenced(identity.member, f"the fence is not in force: {why}")


async def _write_hub(found: membership.Registration, hub: Context, kubeconfig: str) -> None:
    secret = membership.hub_secret(found.name, kubeconfig, namespace=found.secret_namespace)
    registered = membership.member_cluster(found)
    await applying.apply(hub.client, secret)
    await applying.apply(hub.client, registered)
    say(f"hub (context {hub.name}): wrote {contexts.describe(secret)}, {contexts.describe(registered)}")


async def _retire_credentials(member: Context, keep: membership.Anchor, *, only_say: bool = False) -> None:
    """Delete every credential Secret but `keep`: tokens bound to them are refused from now on.

    `only_say`: name them and leave them (the operator may still be using one).
    """
    listing = await fetching.list_objects(member.client, resources.SECRETS, namespace=membership.IDENTITY_NAMESPACE,
                                          label_selector=membership.CREDENTIAL_SELECTOR)
    old = [item["metadata"]["name"] for item in listing.items if item["metadata"]["name"] != keep.name]
    if only_say:
        if old:
            say(f"older credential Secrets {', '.join(old)} stay valid while the operator may use them; "
                "a join that waits retires them")
        return
    for name in old:
        await deleting.delete(member.client, resources.SECRETS, name, namespace=membership.IDENTITY_NAMESPACE)
    if old:
        say(f"rotated: deleted older credential Secrets {', '.join(old)}; tokens bound to them are refused")


async def _await_ready(
    found: membership.Registration, member: Context, hub: Context, anchor: membership.Anchor, timeout: float,
    *, rotate: bool,
) -> int:
    """Wait until the operator uses the new credential (then retire older ones) and reports Ready."""
    started = time.monotonic()
    switched = not rotate
    status: dict[str, Any] = {}
    while time.monotonic() - started < timeout:
        try:
            status = (await fetching.get(hub.client, resources.MEMBERCLUSTERS, found.name)).get("status") or {}
        except errors.MemberError as error:
            say(f"  (reading MemberCluster {found.name}: {error.message})")
            status = {}
        if not switched and (status.get("credentials") or {}).get("secret") == anchor.name:
            await _retire_credentials(member, keep=anchor)
            switched = True
        ready = _condition(status, "Ready")
        if switched and ready.get("status") == "True":
            say(f"{found.name} is Ready ({time.monotonic() - started:.0f} s)")
            return 0
        await asyncio.sleep(POLL_S)
    ready = _condition(status, "Ready")
    waiting_for = "the operator to use the new credential" if not switched else "Ready"
    say(f"{found.name} joined, but still waiting for {waiting_for} after {timeout:.0f} s: "
        f"{ready.get('reason', 'no status yet')}: {ready.get('message', 'is the operator running?')}")
    return 1


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return {}

