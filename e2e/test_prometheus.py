"""Every dashboard query and every alert rule the chart ships, run against a real Prometheus that scraped
the real operator through a failover, an outage longer than the failover target, and an act of censorship.

The scenario (once per module) uses the two members every sandbox has, us-east (US) and gb-london (GB):
- `prom-mover`: 1 replica allowed in US or GB. Its member is killed: it fails over to the other
  (MemberDown); later that member scales it to zero: it fails over back (Censoring).
- `prom-spread`: 2 replicas, one in each of US and GB (minJurisdictions 2). While a member is down it
  cannot be placed anywhere else, so it stays below minJurisdictions until the member is healed: its
  failover takes as long as the outage, longer than the 10 s target.
Then each query runs over the scenario's time range, template variables replaced by real values, and
must return data, unless it is listed in QUIET with the reason it may be empty.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from e2e import prometheus
from e2e.helm import CHART
from e2e.operator import OperatorProcess
from e2e.prometheus import Prometheus
from e2e.sandbox.launcher import HUB
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import aiworkload, get_workload, wait_settled

ALERTS = CHART / "files" / "alerts.yaml"
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
MOVER, SPREAD = "prom-mover", "prom-spread"
US_GB = ["us-east", "gb-london"]
SLOW_OUTAGE_S = 15  # how long the member stays down: longer than the 10 s failover target
# The labels a pod scraped through the chart's ServiceMonitor carries; `namespace` collides on purpose
# with the workload metrics' own label, which must win (honor_labels).
TARGET_LABELS = {"job": "samizdat", "namespace": "samizdat-system", "pod": "samizdat-0"}

# Values Grafana would give the dashboards' variables for this scenario.
VARIABLES = {
    "__rate_interval": "15s",  # Grafana's choice for a 1 s scrape interval is 4 scrapes; 15 s is safe
    "namespace": "default",
    "workload": MOVER,
}

# Queries that may return nothing after this scenario: id -> (why, a query of what they measure, which
# must return data, so the series they watch exist and carry the labels they use).
QUIET: dict[str, tuple[str, str]] = {
    "alert/SamizdatEvictionsHalted": (
        "fires only while at least 55% of the members are unhealthy at once; the scenario keeps most up",
        "samizdat_evictions_halted",
    ),
    "alert/SamizdatMemberCensoring": (
        "a member's first censorship creates its counter at 1: increase() cannot see it, and a Prometheus "
        "younger than the alert's 10 minute window cannot tell it from an old one (it fires here once "
        "the operator creates the counters at 0 when a member connects)",
        "samizdat_censorship_events_total",
    ),
}

# Lines in the operator's log that mean its hub identity lacks a right (kopf's and samizdat's wording).
PERMISSION_PROBLEMS = re.compile(
    r"Not enough permissions|Failed to post an event|not recorded|status not written|cannot write status",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Scenario:
    prometheus: Prometheus
    start: float
    end: float
    killed: str
    censored: str
    operator_log: str  # what the operator logged during the scenario


def _wait_failover(hub: Sandbox, name: str, reason: str, source: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        last = get_workload(hub, name).get("status", {}).get("lastFailover", {})
        return last if last.get("reason") == reason and last.get("fromCluster") == source else None

    return eventually(done, timeout=90, what=f"{name} failover from {source} ({reason})")


@pytest.fixture(scope="module")
def scenario(hub: Sandbox, operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Scenario]:
    if prometheus.binary() is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), hub.state.port_base + 1090,
                        f"127.0.0.1:{operator.metrics_port}", [ALERTS], TARGET_LABELS)
    kubectl = hub.kubectl(HUB)
    log_offset = operator.log.stat().st_size if operator.log.exists() else 0
    down: str | None = None
    server.start()
    try:
        eventually(server.targets_up, timeout=30, what="the operator's metrics endpoint scraped")
        start = time.time()
        kubectl.apply([
            aiworkload(MOVER, 1, {"allowedJurisdictions": ["US", "GB"]}),
            aiworkload(SPREAD, 2, {"allowedJurisdictions": ["US", "GB"], "minJurisdictions": 2,
                                   "maxPerJurisdiction": 1}),
        ])
        mover = wait_settled(hub, MOVER, 1)
        wait_settled(hub, SPREAD, 2)
        down = mover["status"]["placements"][0]["cluster"]
        survivor = next(name for name in US_GB if name != down)
        hub.kill(down)
        killed_at = time.monotonic()
        _wait_failover(hub, MOVER, "MemberDown", down)
        wait_settled(hub, MOVER, 1)
        time.sleep(max(0.0, killed_at + SLOW_OUTAGE_S - time.monotonic()))
        hub.heal(down)
        killed = down
        down = None
        wait_settled(hub, SPREAD, 2, timeout=120)  # the healed member counts again
        hub.censor(survivor, "scale-zero")
        _wait_failover(hub, MOVER, "Censoring", survivor)
        wait_settled(hub, MOVER, 1)
        server.wait_for_scrapes(3)
        with operator.log.open("rb") as log:
            log.seek(log_offset)
            said = log.read().decode(errors="replace")
        yield Scenario(server, start, time.time(), killed, survivor, said)
    finally:
        if down is not None:
            hub.heal(down)
        kubectl.run("delete", "aiworkload", MOVER, SPREAD, "-n", "default", "--ignore-not-found",
                    "--timeout=60s", check=False)
        server.stop()


# ----- what the chart ships

def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # rows nest their panels


def dashboard_queries() -> list[Any]:
    params = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                params.append(pytest.param(target["expr"], id=f"{board['uid']}/{panel['title']}/{target['refId']}"))
    return params


def alert_queries() -> list[Any]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [pytest.param(rule["expr"], id=f"alert/{rule['alert']}")
            for group in rules["groups"] for rule in group["rules"]]


def variable_queries() -> list[Any]:
    params = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                params.append(pytest.param(variable["name"], variable["query"]["query"],
                                           id=f"{board['uid']}/variable/{variable['name']}"))
    return params


def substitute(expr: str) -> str:
    """The query as Grafana sends it: every $var, ${var} replaced by its value for this scenario."""
    used = set(re.findall(r"\$\{?(\w+)\}?", expr))
    unknown = used - set(VARIABLES)
    assert not unknown, f"variables without a value in this test: {sorted(unknown)} in {expr}"
    for name in sorted(used, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", VARIABLES[name]).replace("$" + name, VARIABLES[name])
    return expr


def _finite(series: list[dict[str, Any]]) -> list[float]:
    """The finite values of a range (`values`) or instant (`value`) result; NaN is no data."""
    samples = [sample for s in series for sample in s.get("values", [s.get("value", (0, "NaN"))])]
    return [float(value) for _, value in samples if math.isfinite(float(value))]


def _over_scenario(scenario: Scenario, expr: str) -> list[dict[str, Any]]:
    return scenario.prometheus.query_range(expr, scenario.start, scenario.end)


# ----- the checks

@pytest.mark.parametrize("expr", [*dashboard_queries(), *alert_queries()])
def test_query_returns_data(scenario: Scenario, expr: str, request: pytest.FixtureRequest) -> None:
    source = request.node.callspec.id
    series = _over_scenario(scenario, substitute(expr))
    if source in QUIET:
        why, measured = QUIET[source]
        assert _finite(_over_scenario(scenario, measured)), (
            f"{source} may return nothing ({why}), but what it measures must exist: {measured}"
        )
        return
    assert _finite(series), f"{source}: no data for {substitute(expr)}"


@pytest.mark.parametrize(("name", "definition"), variable_queries())
def test_template_variable_offers_the_scenario_value(scenario: Scenario, name: str, definition: str) -> None:
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", definition)
    assert match, f"not a label_values() query: {definition}"
    selector, label = substitute(match.group(1)), match.group(2)
    offered = {s["metric"].get(label) for s in _over_scenario(scenario, selector)}
    assert VARIABLES[name] in offered, f"${name} would offer {sorted(filter(None, offered))}"


def test_every_alert_rule_evaluates_without_error(scenario: Scenario) -> None:
    health = scenario.prometheus.rule_health()
    shipped = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    assert set(health) == shipped
    assert all(state == "ok" for state, _ in health.values()), health


@pytest.mark.parametrize(("expr", "at_least"), [
    pytest.param('sum(samizdat_failovers_total{reason="MemberDown"})', 2, id="failovers-member-down"),
    pytest.param('sum(samizdat_failovers_total{reason="Censoring"})', 1, id="failovers-censoring"),
    pytest.param("sum(samizdat_failover_duration_seconds_count)", 3, id="failover-durations"),
    pytest.param("sum(samizdat_failover_duration_seconds_count)"
                 " - sum(samizdat_failover_duration_seconds_bucket{le='10.0'})", 1, id="a-failover-over-10s"),
    pytest.param("sum(samizdat_censorship_events_total{member='{censored}'})", 1, id="censorship-counted"),
    pytest.param("max_over_time(samizdat_member_phase{member='{killed}', phase='Down'}[{window}])", 1,
                 id="member-was-down"),
    pytest.param("max_over_time(samizdat_members_quarantined[{window}])", 1, id="member-was-quarantined"),
    pytest.param("count(max_over_time(samizdat_jurisdiction_replicas{country=~'US|GB'}[{window}]) > 0)", 2,
                 id="replicas-in-two-countries"),
])
def test_the_scenario_moved_the_metrics(scenario: Scenario, expr: str, at_least: float) -> None:
    window = f"{math.ceil(scenario.end - scenario.start)}s"
    query = expr.replace("{censored}", scenario.censored).replace("{killed}", scenario.killed).replace(
        "{window}", window)
    values = [float(s["value"][1]) for s in scenario.prometheus.query(query)]
    assert values and max(values) >= at_least, f"{query} = {values}"


def test_operator_had_every_right_it_needed_in_the_hub(scenario: Scenario) -> None:
    problems = [line for line in scenario.operator_log.splitlines() if PERMISSION_PROBLEMS.search(line)]
    assert not problems, "\n".join(problems[:20])
