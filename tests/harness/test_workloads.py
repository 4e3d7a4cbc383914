"""The e2e harness's own rule check (e2e/workloads.py) on made-up replica counts: the samplers and the chaos
judge trust it to name the rule a placement breaks, so it must name the right one and no other."""

from __future__ import annotations

from typing import Any

import pytest

from e2e import workloads

RULES = {"minJurisdictions": 2, "maxPerJurisdiction": 1, "deniedAlliances": ["five-eyes"]}


@pytest.mark.parametrize(
    ("counts", "rules", "broken"),
    [
        pytest.param({"de-frankfurt": 1, "ch-zurich": 1}, RULES, [], id="as-asked"),
        pytest.param({"de-frankfurt": 1, "de-berlin": 1}, RULES, ["maxPerJurisdiction", "minJurisdictions"],
                     id="one-country-twice"),
        pytest.param({"de-frankfurt": 2}, {"maxPerCluster": 1}, ["maxPerCluster"], id="crowded-member"),
        pytest.param({"de-frankfurt": 1, "ch-zurich": 1}, {"deniedJurisdictions": ["CH"]}, ["deniedJurisdictions"],
                     id="denied-country"),
    ],
)
def test_rule_violations_name_the_rules_a_placement_breaks(
    counts: dict[str, int], rules: dict[str, Any], broken: list[str]
) -> None:
    assert [v.rule for v in workloads.rule_violations(counts, rules)] == broken


def test_while_moving_fewer_countries_is_no_rule_broken_but_the_limits_still_are() -> None:
    moving = {"de-frankfurt": 1, "de-berlin": 1}
    (only,) = workloads.breaks_while_moving(moving, RULES)
    assert only.rule == "maxPerJurisdiction" and str(only) == only.detail and "DE" in only.detail
    assert workloads.breaks_while_moving({"de-frankfurt": 1}, RULES) == [], "one country, short: moving"
