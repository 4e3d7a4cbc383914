"""Reference checks: the country codes and alliance names a resource names, each unknown one a problem
with its field's path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from samizdat.core import jurisdictions, model

Builder = Callable[..., dict[str, Any]]


@pytest.mark.parametrize(
    ("placement", "problems"),
    [
        pytest.param({"deniedAlliances": ["five-eyes", "eu"]}, [], id="known"),
        pytest.param(
            {"allowedJurisdictions": ["DE", "UK"]},
            ["spec.placement.allowedJurisdictions: 'UK' is not an ISO 3166-1 alpha-2 country code"],
            id="unknown-allowed-country",
        ),
        pytest.param(
            {"deniedJurisdictions": ["ZZ"]},
            ["spec.placement.deniedJurisdictions: 'ZZ' is not an ISO 3166-1 alpha-2 country code"],
            id="unknown-denied-country",
        ),
        pytest.param(
            {"deniedAlliances": ["five-eye"]},
            ["spec.placement.deniedAlliances: no alliance named 'five-eye'"
             " (known: eea, eu, five-eyes, fourteen-eyes, nine-eyes)"],
            id="alliance-typo",
        ),
    ],
)
def test_workload_problems(ai_workload: Builder, placement: dict[str, Any], problems: list[str]) -> None:
    workload = model.AIWorkload.model_validate(ai_workload({"placement": placement}))

    assert list(jurisdictions.workload_problems(workload, jurisdictions.alliance_table())) == problems


def test_member_and_alliance_problems(member_cluster: Builder, alliance: Builder) -> None:
    member = model.MemberCluster.model_validate(member_cluster(country="XK"))
    pact = model.Alliance.model_validate(alliance("pact", ["DE", "QQ"]))

    assert jurisdictions.member_problems(member) == (
        "spec.jurisdiction.country: 'XK' is not an ISO 3166-1 alpha-2 country code",
    )
    assert jurisdictions.alliance_problems(pact) == ("spec.members: 'QQ' is not an ISO 3166-1 alpha-2 country code",)
