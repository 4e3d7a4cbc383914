"""Member credentials that expire: renewed before they do, and a failing renewal shown before it matters.

`samizdat join` gives each member a token of bounded lifetime, bound to a credential Secret in the
member. One kopf daemon per MemberCluster renews it once `renew_at` of its lifetime has passed: it asks
the member's own TokenRequest API (the identity may request tokens for itself only) for a token of the
same lifetime bound to the same Secret, and writes the kubeconfig with it to the hub Secret. The member
daemon sees the new kubeconfig and hands the token to the live client, without reconnecting, so a
renewal moves nothing. Renewing through the same anchor means a rotation by `join` (a new anchor, the
old one deleted) also ends every renewal of the old credential, and a renewal writes the hub Secret only
while it is still at the version the renewal read, so one that races a join never overwrites
the join's new credential with a token of the one being retired.

A renewal that fails is retried and shows at once as `CredentialsExpiring=True` (with the expiry time),
a Warning Event and the expiry metric, while the old token still has a fifth of its life (by default).
If the member's admin revoked the identity instead, the operator's calls get 401 and the member is
quarantined as censoring, as before: this module only adds the warning ahead of an expiry.

With an election, renewing is the leader's job: a standby's daemon keeps reading the Secret (so its
standing and metrics are warm when it takes over) but mints nothing, since writing the renewed
kubeconfig to the hub would be refused anyway and the minted token thrown away; it says so once, at
info, and renews within `RECHECK_S` of leading.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from samizdat.core.report.events import MemberReason
from samizdat.core import membership, model
from samizdat.remote import metrics
from samizdat.remote.clusters import errors, kubeconfig, minting
from samizdat.remote.clusters.client import Deadlines, ClusterClient
from samizdat.remote import hub
from samizdat.app.handlers import startup
from samizdat.core.report.conditions import Observed
from samizdat.core.model import MemberClusterConditionType as Type

RECHECK_S = 10.0  # how often the daemon re-reads the Secret while nothing is due (a join may rotate it)
RETRY_S = (5.0, 60.0)  # back-off bounds between failed renewals
DEADLINES = Deadlines(connect=3.0, read=10.0, request=15.0)


@dataclass(frozen=True, slots=True)
class Standing:
    """What the operator knows of one member's credential: its claims (None if not renewable), why it
    is not renewable, and the last renewal's failure (None after a success)."""

    claims: membership.TokenClaims | None
    not_renewable: str | None = None
    failure: str | None = None


def standing(kubeconfig_text: str) -> Standing:
    """The standing of the credential in a kubeconfig, before any renewal was tried."""
    try:
        token = kubeconfig.parse(kubeconfig_text).token
        if token is None:
            raise membership.NotRenewable("the kubeconfig holds no token")
        return Standing(membership.token_claims(token))
    except (kubeconfig.KubeconfigError, membership.NotRenewable) as error:
        return Standing(None, not_renewable=str(error))


def observe(current: Standing, now: float, renew_at: float) -> Observed[Type]:
    """The CredentialsExpiring condition: true once a renewal is due and the last attempt failed."""
    claims = current.claims
    if claims is None:
        return Observed(Type.CREDENTIALS_EXPIRING, False, "NotRenewable", current.not_renewable or "")
    expires = _iso(claims.expires_at)
    if now >= claims.expires_at:
        return Observed(Type.CREDENTIALS_EXPIRING, True, "Expired", f"the token expired at {expires}: "
                        f"{current.failure or 'not renewed'}; run `samizdat join` again")
    if current.failure is not None and claims.renewal_due(now, renew_at):
        return Observed(Type.CREDENTIALS_EXPIRING, True, "RenewalFailed",
                        f"the token expires at {expires} and renewing it failed: {current.failure}")
    return Observed(Type.CREDENTIALS_EXPIRING, False, "Valid",
                    f"the token is valid until {expires}; renewal at {_iso(claims.renew_at(renew_at))}")


def status(current: Standing, renew_at: float) -> model.MemberCredentials | None:
    claims = current.claims
    if claims is None:
        return None
    return model.MemberCredentials(
        secret=claims.anchor.name if claims.anchor else None,
        expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
        renew_at=datetime.fromtimestamp(claims.renew_at(renew_at), UTC),
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def standings(memo: kopf.Memo) -> dict[str, Standing]:
    """Every member's credential standing, as the renewal daemons last saw it (read by status writers)."""
    table: dict[str, Standing] = memo.setdefault("credential_standings", {})
    return table


@kopf.daemon(model.GROUP, model.VERSION, "memberclusters", cancellation_timeout=5.0)
async def renew_credentials(
    body: kopf.Body, name: str, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    renew_at: float = memo.get("renew_credentials_at", membership.DEFAULT_RENEW_AT)
    table = standings(memo)
    delay = RETRY_S[0]
    deferring = False  # a standby said that this renewal is the leader's (said once per standby spell)
    try:
        while not stopped:
            ref = model.MemberCluster.model_validate(dict(body)).spec.kubeconfig_secret_ref
            try:
                text, version = await hub.read_versioned_kubeconfig(startup.shared(memo).hub, ref.namespace, ref.name, ref.key)
            except errors.MemberError:
                await stopped.wait(RECHECK_S)  # the member daemon reports a missing Secret
                continue
            found = standing(text)
            previous = table.get(name)
            if previous is not None and previous.claims == found.claims:
                found = previous  # the same token: keep what its renewals have met
            table[name] = found
            if found.claims is None:
                await stopped.wait(RECHECK_S)
                continue
            metrics.member_credentials_expire(name, found.claims.expires_at)
            wait = found.claims.renew_at(renew_at) - time.time()
            if wait > 0:
                await stopped.wait(min(wait, RECHECK_S))
                continue
            if not startup.leading(memo):
                if not deferring:
                    logger.info("the credential of member %s is due for renewal: renewing it is the leader's job",
                                name)
                    deferring = True
                await stopped.wait(RECHECK_S)
                continue
            deferring = False
            try:
                renewed = await _renew(name, text, found.claims)
                if not await hub.write_kubeconfig(startup.shared(memo).hub, ref.namespace, ref.name, ref.key, renewed, version=version):
                    continue  # a join rotated the credential meanwhile: renew what it wrote, when due
            except (errors.MemberError, kubeconfig.KubeconfigError, membership.NotRenewable) as error:
                if found.failure is None:
                    hub.say(startup.shared(memo).recorder, body, "Warning", MemberReason.CREDENTIAL_RENEWAL_FAILED,
                            f"renewing the token (expires {_iso(found.claims.expires_at)}) failed: {error}")
                table[name] = Standing(found.claims, failure=str(error))
                metrics.credential_renewal(name, ok=False)
                logger.warning("renewing the credential of member %s failed: %s", name, error)
                await stopped.wait(delay)
                delay = min(delay * 2, RETRY_S[1])
                continue
            delay = RETRY_S[0]
            table[name] = standing(renewed)
            metrics.credential_renewal(name, ok=True)
            hub.say(startup.shared(memo).recorder, body, "Normal", MemberReason.CREDENTIALS_RENEWED,
                    "renewed the token through the member's TokenRequest API")
    finally:
        table.pop(name, None)
        metrics.forget_credentials(name)


async def _renew(name: str, text: str, claims: membership.TokenClaims) -> str:
    """A kubeconfig like `text` with a fresh token of the same lifetime, bound to the same credential Secret."""
    if claims.anchor is None:
        raise membership.NotRenewable("the token is bound to no credential Secret (register with `samizdat join`)")
    request = membership.token_request(max(membership.MIN_TOKEN_LIFETIME_S, round(claims.lifetime_s)), claims.anchor)
    async with ClusterClient(name, kubeconfig.parse(text), deadlines=DEADLINES) as client:
        minted = await minting.mint(client, namespace=claims.namespace, service_account=claims.service_account,
                                    request=request)
    return membership.with_token(text, minted.token)
