"""When a member's credential shows as expiring, what its status says, and who renews it (the
renewal through a member's TokenRequest API is e2e; here the renewal daemon runs against samizdat's own
hub and minting calls, faked)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest

from samizdat.core import membership
from samizdat.remote.clusters import minting
from samizdat.remote.clusters.client import ClusterClient
from samizdat.app.handlers import credentials
from samizdat.remote import hub
from samizdat.core.model import MemberClusterConditionType as Type
from support.tokens import bound_claims, jwt

ANCHOR = {"name": "samizdat-credential-x", "uid": "s1"}


def kubeconfig_with(token: str) -> str:
    return membership.kubeconfig("m", membership.Endpoint("https://127.0.0.1:6443"), token)


def valid() -> credentials.Standing:
    return credentials.standing(kubeconfig_with(jwt(bound_claims(issued=1_000, expires=2_000, secret=ANCHOR))))


@pytest.mark.parametrize(("current", "now", "expected"), [
    pytest.param(valid(), 1_100, (False, "Valid"), id="fresh"),
    pytest.param(valid(), 1_900, (False, "Valid"), id="due-not-yet-tried"),
    pytest.param(credentials.Standing(valid().claims, failure="403 forbidden"), 1_700, (False, "Valid"),
                 id="failed-early-attempt-before-due"),
    pytest.param(credentials.Standing(valid().claims, failure="403 forbidden"), 1_850, (True, "RenewalFailed"),
                 id="renewal-failed"),
    pytest.param(credentials.Standing(valid().claims, failure="403 forbidden"), 2_000, (True, "Expired"),
                 id="expired"),
    pytest.param(credentials.standing(kubeconfig_with("legacy-token")), 1_100, (False, "NotRenewable"),
                 id="long-lived-token"),
])
def test_credentials_expiring_holds_once_a_due_renewal_failed(
    current: credentials.Standing, now: float, expected: tuple[bool, str]
) -> None:
    observed = credentials.observe(current, now, renew_at=0.8)
    assert (observed.type, observed.holds, observed.reason) == (Type.CREDENTIALS_EXPIRING, *expected)


def test_a_failed_renewal_names_the_expiry_and_the_error() -> None:
    observed = credentials.observe(credentials.Standing(valid().claims, failure="member 'm': forbidden"), 1_850, 0.8)
    assert observed.message == ("the token expires at 1970-01-01T00:33:20Z and renewing it failed: "
                                "member 'm': forbidden")


def test_status_names_the_credential_secret_expiry_and_renewal() -> None:
    status = credentials.status(valid(), renew_at=0.5)
    assert status is not None
    assert status.secret == "samizdat-credential-x"
    assert status.expires_at == datetime.fromtimestamp(2_000, UTC)
    assert status.renew_at == datetime.fromtimestamp(1_500, UTC)
    assert credentials.status(credentials.standing(kubeconfig_with("legacy")), 0.8) is None


def test_a_kubeconfig_without_a_token_is_not_renewable() -> None:
    text = kubeconfig_with("x").replace("token: x", "token: ''")
    assert credentials.standing(text).not_renewable == "the kubeconfig holds no token"


# ----- who renews: the leader only (with an election), never a standby


class Candidate:
    """The election as the daemon asks it (`startup.leading`); the election itself is test_leadership's."""

    def __init__(self, leading: bool) -> None:
        self.now_leading = leading

    def leading(self) -> bool:
        return self.now_leading


class Renewals:
    """The hub's credential Secret and the member's TokenRequest API as samizdat's own calls see them
    (`hub.read_versioned_kubeconfig`, `hub.write_kubeconfig`, `minting.mint`), and the daemon's stop flag: each
    wait of the daemon is one turn, and `turns` ends it."""

    def __init__(self, candidate: Candidate | None, turns: int) -> None:
        now = int(time.time())
        self.secret = kubeconfig_with(jwt(bound_claims(issued=now - 1_000, expires=now + 100, secret=ANCHOR)))
        self.fresh = jwt(bound_claims(issued=now, expires=now + 1_100, secret=ANCHOR))
        self.candidate, self.turns, self.waits = candidate, turns, 0
        self.minted: list[str] = []
        self.said: list[str] = []
        self.on_turn: dict[int, bool] = {}  # turn -> whether this operator leads from then on
        self.version = 1  # the Secret's resourceVersion
        self.joined_meanwhile: str | None = None  # a kubeconfig a `join` writes while a renewal mints

    async def read(self, hub_: object, namespace: str, name: str, key: str) -> tuple[str, str]:
        return self.secret, str(self.version)

    async def write(self, hub_: object, namespace: str, name: str, key: str, text: str, *, version: str) -> bool:
        if str(self.version) != version:
            return False  # the API server's Conflict
        self.secret, self.version = text, self.version + 1
        return True

    async def mint(self, client: ClusterClient, *, namespace: str, service_account: str,
                   request: Mapping[str, Any]) -> minting.Minted:
        self.minted.append(client.member)
        if self.joined_meanwhile is not None:
            self.secret, self.version = self.joined_meanwhile, self.version + 1
        return minting.Minted(self.fresh, "")

    def say(self, recorder: object, body: object, type_: str, reason: str, message: str) -> None:
        self.said.append(reason)

    # kopf's DaemonStopped, as the daemon uses it
    def __bool__(self) -> bool:
        return self.waits >= self.turns

    async def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        if self.candidate is not None and self.waits in self.on_turn:
            self.candidate.now_leading = self.on_turn[self.waits]
        return bool(self)


async def renew(renewals: Renewals, monkeypatch: pytest.MonkeyPatch, member_cluster: Any) -> None:
    monkeypatch.setattr(hub, "read_versioned_kubeconfig", renewals.read)
    monkeypatch.setattr(hub, "write_kubeconfig", renewals.write)
    monkeypatch.setattr(hub, "say", renewals.say)
    monkeypatch.setattr(minting, "mint", renewals.mint)
    memo = kopf.Memo(hub=object(), recorder=object(), candidate=renewals.candidate)
    await credentials.renew_credentials(body=member_cluster("m1"), name="m1", memo=memo, stopped=renewals,
                                        logger=logging.getLogger("test-credentials"))


@pytest.mark.parametrize("candidate", [pytest.param(Candidate(leading=True), id="leader"),
                                       pytest.param(None, id="no-election")])
async def test_the_leader_renews_a_due_credential(
    candidate: Candidate | None, monkeypatch: pytest.MonkeyPatch, member_cluster: Any
) -> None:
    renewals = Renewals(candidate, turns=3)
    await renew(renewals, monkeypatch, member_cluster)
    assert renewals.minted == ["m1"], "renewed once, then the fresh token is not due"
    assert membership.token_claims(renewals.fresh) == credentials.standing(renewals.secret).claims
    assert renewals.said == ["CredentialsRenewed"]


async def test_a_standby_leaves_a_due_renewal_to_the_leader_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, member_cluster: Any, caplog: pytest.LogCaptureFixture
) -> None:
    renewals = Renewals(Candidate(leading=False), turns=5)
    with caplog.at_level(logging.DEBUG, logger="test-credentials"):
        await renew(renewals, monkeypatch, member_cluster)
    assert renewals.minted == [], "no token minted only to have its write refused"
    assert renewals.said == [], "no CredentialRenewalFailed Event from a standby"
    said = [record for record in caplog.records if "leader's job" in record.getMessage()]
    assert [record.levelno for record in said] == [logging.INFO]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_a_standby_that_takes_over_renews(monkeypatch: pytest.MonkeyPatch, member_cluster: Any) -> None:
    renewals = Renewals(Candidate(leading=False), turns=4)
    renewals.on_turn = {2: True}  # leads from the daemon's second wait on
    await renew(renewals, monkeypatch, member_cluster)
    assert renewals.minted == ["m1"]
    assert renewals.said == ["CredentialsRenewed"]


async def test_a_renewal_racing_a_join_leaves_the_joins_credential(
    monkeypatch: pytest.MonkeyPatch, member_cluster: Any
) -> None:
    renewals = Renewals(None, turns=3)
    now = int(time.time())
    joined = kubeconfig_with(jwt(bound_claims(issued=now, expires=now + 3_600, secret="samizdat-credential-new")))
    renewals.joined_meanwhile = joined
    await renew(renewals, monkeypatch, member_cluster)
    assert renewals.minted == ["m1"]
    assert renewals.secret == joined, "a token of the retiring credential was written over the join's"
    assert renewals.said == [], "neither renewed nor failed: the join's credential is not due"
