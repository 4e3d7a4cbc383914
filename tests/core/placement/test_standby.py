"""Which placed replicas serve and which wait as warm standbys (`placement.standby`), and which pod
writes make a member match (`manifests.relabels`)."""

from __future__ import annotations

from typing import Any

import pytest

from samizdat.core import manifests
from samizdat.core.placement.standby import Held, serving_split, uncovered

COUNTRY = {"a": "DE", "b": "DE", "c": "FR", "d": "JP"}


@pytest.mark.parametrize(("assignments", "held", "replicas", "serving"), [
    pytest.param({"a": 1, "c": 1, "d": 1}, {"a": Held(ready=1, serving=1), "c": Held(ready=1), "d": Held()}, 2,
                 {"a": 1, "c": 1, "d": 0}, id="ready-standby-promoted-cold-one-waits"),
    pytest.param({"a": 2, "c": 1}, {}, 2, {"a": 2, "c": 0}, id="standby-outside-every-serving-member"),
    pytest.param({"a": 1, "b": 1, "c": 1}, {}, 2, {"a": 1, "b": 1, "c": 0}, id="standby-outside-every-country"),
    pytest.param({"a": 1, "c": 1, "d": 1},
                 {"a": Held(ready=1), "c": Held(ready=1, serving=1), "d": Held(ready=1, serving=1)}, 2,
                 {"a": 0, "c": 1, "d": 1}, id="serving-ones-keep-serving"),
    pytest.param({"a": 1, "b": 1, "d": 1},
                 {"a": Held(ready=1), "b": Held(ready=1, serving=1), "d": Held(ready=1, serving=1)}, 2,
                 {"a": 1, "b": 1, "d": 0}, id="cover-before-stability"),
    pytest.param({"a": 1, "c": 1}, {}, 2, {"a": 1, "c": 1}, id="too-few-placed-standbys-given-up"),
    pytest.param({"a": 1, "c": 0}, {}, 0, {"a": 0, "c": 0}, id="none-serves"),
])
def test_serving_split(
    assignments: dict[str, int], held: dict[str, Held], replicas: int, serving: dict[str, int],
) -> None:
    assert serving_split(assignments, held, COUNTRY, replicas) == serving


@pytest.mark.parametrize(("assignments", "held", "serving"), [
    pytest.param({"a": 1, "b": 1, "c": 1}, {}, {"a": 0, "b": 1, "c": 1}, id="spread-before-country-cover"),
    pytest.param({"a": 1, "b": 1, "c": 1},
                 {"a": Held(ready=1, serving=1), "b": Held(ready=1), "c": Held()}, {"a": 1, "b": 0, "c": 1},
                 id="no-promotion-into-one-country-the-new-replica-serves-once-loaded"),
    pytest.param({"a": 1, "c": 1, "d": 1},
                 {"a": Held(ready=1, serving=1), "c": Held(), "d": Held(ready=1)}, {"a": 1, "c": 0, "d": 1},
                 id="a-standby-abroad-promoted"),
    pytest.param({"a": 2, "b": 1}, {"a": Held(ready=2, serving=2), "b": Held(ready=1)}, {"a": 2, "b": 0},
                 id="one-country-placed-cover-decides"),
])
def test_serving_replicas_keep_min_jurisdictions(
    assignments: dict[str, int], held: dict[str, Held], serving: dict[str, int],
) -> None:
    assert serving_split(assignments, held, COUNTRY, 2, min_countries=2) == serving


def test_cover_is_counted_per_member_and_per_country() -> None:
    assert uncovered({"a": 1, "b": 1, "c": 0}, {"a": 0, "b": 0, "c": 1}, COUNTRY) == (0, 0)
    assert uncovered({"a": 0, "b": 1, "c": 1}, {"a": 1, "b": 0, "c": 0}, COUNTRY) == (0, 1), "DE has no spare abroad"
    assert uncovered({"a": 1, "c": 1}, {"a": 1, "c": 0}, COUNTRY) == (1, 1), "a's standby dies with it"


def pod(name: str, role: str | None, ready: bool, created: str = "1") -> dict[str, Any]:
    labels = {manifests.ROLE_LABEL: role} if role else {}
    return {"metadata": {"name": name, "labels": labels, "creationTimestamp": created},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


@pytest.mark.parametrize(("pods", "serving", "writes"), [
    pytest.param([pod("p1", "serving", True), pod("p2", "standby", True)], 1, [], id="as-wanted"),
    pytest.param([pod("p1", "standby", False, "1"), pod("p2", "standby", True, "2"), pod("p3", "standby", True, "3")],
                 1, [("p2", "serving")], id="oldest-ready-standby-promoted"),
    pytest.param([pod("p1", "serving", False), pod("p2", "standby", True)], 1,
                 [("p2", "serving"), ("p1", "standby")], id="promote-before-demote"),
    pytest.param([pod("p1", None, False)], 0, [("p1", "standby")], id="unlabelled-is-made-standby"),
    pytest.param([pod("p1", "standby", False)], 3, [("p1", "serving")], id="fewer-pods-than-wanted"),
])
def test_relabels(pods: list[dict[str, Any]], serving: int, writes: list[tuple[str, str]]) -> None:
    assert manifests.relabels(pods, serving) == writes
