"""When a member's credential shows as expiring, and what its status says (pure; the renewal itself is e2e)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from samizdat import membership
from samizdat.handlers import credentials
from samizdat.model import MemberClusterConditionType as Type
from tokens import bound_claims, jwt

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
