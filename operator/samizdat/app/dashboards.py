"""samizdat's Grafana dashboards, as code: `python -m samizdat.app.dashboards helm/samizdat/dashboards
helm/samizdat-agent/dashboards` writes the JSON the two charts ship.

The JSON files in helm/samizdat/app/dashboards/ are generated from this module and committed; reviewers read
this file, and tests/app/test_dashboards.py fails when the two disagree. Every query uses only the metrics
of operator/samizdat/remote/metrics.py (checked by the same test) and runs against a real Prometheus in
e2e/test_prometheus.py. The GPU agent's dashboard goes to helm/samizdat-agent/dashboards/ instead: the
agents run in the members, so their metrics live in each member's Prometheus, not the hub's; its queries
use only operator/samizdat/agent/metrics.py.

Gauges are read through `max by (...)`: a standby replica of the operator (kopf peering) or a pod being
replaced may still expose the series for a moment, and the dashboards must not add them up.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from samizdat.core.inventory import CC_STATES
from samizdat.remote.metrics import PHASES
from samizdat.core.model import Phase

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
FAILOVER_TARGET_S = 10  # the SamizdatFailoverSlow alert's threshold, drawn on the duration panels

# Phase -> (code on the state timeline, colour): codes start at 1 so that "no series" is not "Pending".
PHASE_STYLE: dict[str, tuple[int, str]] = {
    Phase.PENDING: (1, "blue"), Phase.READY: (2, "green"), Phase.SUSPECT: (3, "yellow"), Phase.DOWN: (4, "red"),
    Phase.QUARANTINED: (5, "purple"),
}

Panel = dict[str, Any]


def target(expr: str, legend: str = "", *, instant: bool = False, fmt: str = "time_series") -> dict[str, Any]:
    return {
        "datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "instant": instant, "range": not instant,
        "format": fmt,
    }


def panel(kind: str, title: str, description: str, grid: tuple[int, int, int, int], targets: list[dict[str, Any]],
          *, unit: str = "short", defaults: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
          **extra: Any) -> Panel:
    x, y, w, h = grid
    for ref, each in zip("ABCDEFGH", targets, strict=False):
        each["refId"] = ref
    return {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, **(defaults or {})}, "overrides": []},
        "options": options or {}, **extra,
    }


def stat(title: str, description: str, grid: tuple[int, int, int, int], expr: str, *,
         mappings: list[dict[str, Any]] | None = None,
         thresholds: list[tuple[float | None, str]] | None = None) -> Panel:
    steps = [{"value": value, "color": color} for value, color in (thresholds or [(None, "green")])]
    return panel(
        "stat", title, description, grid, [target(expr, instant=True)],
        defaults={"mappings": mappings or [], "thresholds": {"mode": "absolute", "steps": steps},
                  "color": {"mode": "thresholds"}},
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                 "colorMode": "background", "graphMode": "none", "textMode": "value"},
    )


def timeseries(title: str, description: str, grid: tuple[int, int, int, int], targets: list[dict[str, Any]], *,
               unit: str = "short", bars: bool = False, target_line: float | None = None) -> Panel:
    custom: dict[str, Any] = {"drawStyle": "bars" if bars else "line", "fillOpacity": 60 if bars else 10,
                              "lineWidth": 1 if bars else 2, "showPoints": "never", "spanNulls": False}
    steps: list[dict[str, Any]] = [{"value": None, "color": "green"}]
    if target_line is not None:
        custom["thresholdsStyle"] = {"mode": "dashed"}
        steps.append({"value": target_line, "color": "red"})
    return panel(
        "timeseries", title, description, grid, targets, unit=unit,
        defaults={"custom": custom, "thresholds": {"mode": "absolute", "steps": steps},
                  "color": {"mode": "palette-classic"}},
        options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                 "tooltip": {"mode": "multi", "sort": "desc"}},
    )


def state_timeline(title: str, description: str, grid: tuple[int, int, int, int], targets: list[dict[str, Any]],
                   mappings: list[dict[str, Any]]) -> Panel:
    return panel(
        "state-timeline", title, description, grid, targets,
        defaults={"mappings": mappings, "color": {"mode": "thresholds"},
                  "thresholds": {"mode": "absolute", "steps": [{"value": None, "color": "text"}]}},
        options={"mergeValues": True, "showValue": "never", "rowHeight": 0.8, "alignValue": "left",
                 "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
    )


def value_map(pairs: dict[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """Grafana value mappings: number -> (text, colour)."""
    return [{"type": "value", "options": {
        str(value): {"text": text, "color": color, "index": index}
        for index, (value, (text, color)) in enumerate(pairs.items())
    }}]


def table(title: str, description: str, grid: tuple[int, int, int, int], expr: str, columns: dict[str, str]) -> Panel:
    """An instant query as a table; `columns` renames the label and value columns it keeps, in order."""
    return panel(
        "table", title, description, grid, [target(expr, instant=True, fmt="table")],
        options={"showHeader": True, "sortBy": [{"displayName": list(columns.values())[-1], "desc": True}]},
        transformations=[{"id": "organize", "options": {
            "excludeByName": {"Time": True},
            "indexByName": {name: index for index, name in enumerate(columns)},
            "renameByName": columns,
        }}],
    )


def dashboard(uid: str, title: str, description: str, panels: list[Panel],
              variables: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    for number, each in enumerate(panels, start=1):
        each["id"] = number
    datasource = {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
                  "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []}
    return {
        "uid": uid, "title": title, "description": description, "tags": ["samizdat"],
        "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "timezone": "",
        "templating": {"list": [datasource, *variables]}, "annotations": {"list": []}, "links": [],
        "panels": panels,
    }


def query_variable(name: str, label: str, metric: str, label_name: str) -> dict[str, Any]:
    query = f"label_values({metric}, {label_name})"
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "definition": query, "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2, "sort": 1, "multi": False, "includeAll": False, "current": {}, "hide": 0, "regex": "",
        "options": [],
    }


# ----- the dashboards

def member_phase_code() -> str:
    """One number per member for its current phase (see PHASE_STYLE), from the one-hot phase gauge."""
    return "\n+ ".join(
        f'max by (member) (samizdat_member_phase{{phase="{phase}"}}) * {PHASE_STYLE[phase][0]}' for phase in PHASES
    )


def fleet() -> dict[str, Any]:
    phase_mappings = value_map({code: (phase, color) for phase, (code, color) in PHASE_STYLE.items()})
    halted = value_map({0: ("running", "green"), 1: ("HALTED", "red")})
    replicas_by_country = "max by (country) (samizdat_jurisdiction_replicas)"
    geomap = panel(
        "geomap", "Ready replicas by country",
        "Ready replicas of all AIWorkloads per jurisdiction (ISO 3166-1 country code of the member).",
        (0, 4, 16, 12), [target(replicas_by_country, instant=True, fmt="table")],
        defaults={"color": {"mode": "thresholds"},
                  "thresholds": {"mode": "absolute", "steps": [{"value": None, "color": "green"}]}},
        options={
            "view": {"id": "zero", "lat": 30, "lon": 10, "zoom": 1.5, "allLayers": True},
            "controls": {"showZoom": True, "mouseWheelZoom": False, "showAttribution": True},
            "basemap": {"type": "default", "name": "Basemap"},
            "tooltip": {"mode": "details"},
            "layers": [{
                "type": "markers", "name": "Replicas", "tooltip": True,
                # Grafana's built-in gazetteer keys countries by their alpha-2 code, as the label is.
                "location": {"mode": "lookup", "lookup": "country", "gazetteer": "public/gazetteer/countries.json"},
                "config": {"showLegend": True, "style": {
                    "size": {"field": "Value", "min": 6, "max": 40, "fixed": 6},
                    "color": {"fixed": "green"}, "opacity": 0.6,
                    "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                    "text": {"mode": "field", "field": "Value", "fixed": ""},
                    "textConfig": {"fontSize": 12, "offsetX": 0, "offsetY": 0, "textAlign": "center",
                                   "textBaseline": "middle"},
                }},
            }],
        },
    )
    return dashboard("samizdat-fleet", "samizdat / Fleet", "Where replicas run, and the health of every member.", [
        stat("Members Ready", "Members that take replicas.", (0, 0, 4, 4),
             'sum(max by (member) (samizdat_member_phase{phase="Ready"}))'),
        stat("Members Down", "Members whose API server cannot be reached.", (4, 0, 4, 4),
             'sum(max by (member) (samizdat_member_phase{phase="Down"}))', thresholds=[(None, "green"), (1, "red")]),
        stat("Members quarantined", "Members caught censoring, taking no replicas until the quarantine ends.",
             (8, 0, 4, 4), "max(samizdat_members_quarantined)", thresholds=[(None, "green"), (1, "purple")]),
        stat("Evictions", "Halted when most members look unhealthy at once: then the fault is probably ours.",
             (12, 0, 4, 4), "max(samizdat_evictions_halted)", mappings=halted),
        stat("Ready replicas", "Ready replicas of all AIWorkloads.", (16, 0, 4, 4),
             "sum(max by (namespace, workload) (samizdat_workload_replicas_ready))"),
        stat("Workloads breaking a rule", "AIWorkloads whose placement breaks at least one rule now.", (20, 0, 4, 4),
             "count(max by (namespace, workload) (samizdat_workload_rules_satisfied) == 0) or vector(0)",
             thresholds=[(None, "green"), (1, "red")]),
        geomap,
        table("Replicas by country", "The same numbers as the map.", (16, 4, 8, 12), replicas_by_country,
              {"country": "Country", "Value": "Ready replicas"}),
        state_timeline("Member health", "Each member's phase over time.", (0, 16, 24, 8),
                       [target(member_phase_code(), "{{member}}")], phase_mappings),
        timeseries("Free GPUs", "GPUs no pod requests, per member.", (0, 24, 12, 8),
                   [target("max by (member) (samizdat_member_gpus_free)", "{{member}}")]),
        timeseries("GPUs", "Allocatable GPUs on each member's GPU nodes.", (12, 24, 12, 8),
                   [target("max by (member) (samizdat_member_gpus)", "{{member}}")]),
        timeseries("Probe latency (p95)", "How long probes of each member's API server take.", (0, 32, 12, 8),
                   [target("histogram_quantile(0.95, sum by (member, le) "
                           "(rate(samizdat_member_probe_duration_seconds_bucket[$__rate_interval])))", "{{member}}")],
                   unit="s"),
        timeseries("Failed probes and views",
                   "Failed probes, and failed lists and watches of the member's views (nodes, pods, copies), per "
                   "second, by member and failure kind: a member that answers its probe but not its lists is no "
                   "more usable than one that does not answer.", (12, 32, 12, 8),
                   [target("sum by (member, kind) (rate(samizdat_member_api_errors_total[$__rate_interval]))",
                           "{{member}} probe {{kind}}"),
                    target("sum by (member, view, reason) (rate(samizdat_member_view_errors_total[$__rate_interval]))",
                           "{{member}} {{view}} {{reason}}")], unit="reqps"),
        table("Censorship seen", "Acts of censorship per member and kind since the operator started.",
              (0, 40, 24, 6), "sum by (member, kind) (samizdat_censorship_events_total)",
              {"member": "Member", "kind": "Kind", "Value": "Events"}),
        timeseries("Credential lifetime left",
                   "Time until each member's token expires. It is renewed at 80 % of its lifetime by default; "
                   "a line that keeps falling means renewals fail (see the CredentialsExpiring condition).",
                   (0, 46, 12, 8),
                   [target("min by (member) (samizdat_member_credentials_expiry_timestamp_seconds) - time()",
                           "{{member}}")], unit="s"),
        timeseries("Credential renewals", "Renewals of members' tokens through their TokenRequest API, by result.",
                   (12, 46, 12, 8),
                   [target("sum by (member, result) "
                           "(increase(samizdat_member_credential_renewals_total[$__rate_interval]))",
                           "{{member}} {{result}}")]),
        timeseries("Suspect and Down spells",
                   "Times each member became Suspect (no new replicas go there) or Down (its replicas move). "
                   "Suspect spells without a Down are a slow or lossy link riding it out; a Down that comes "
                   "back within seconds is worth a look at the member's status.link.", (0, 54, 24, 8),
                   [target("sum by (member, phase) (increase(samizdat_member_phase_changes_total"
                           '{phase=~"Suspect|Down"}[$__rate_interval]))', "{{member}} {{phase}}")], bars=True),
    ])


def failovers() -> dict[str, Any]:
    def quantiles(histogram: str, by: str = "le") -> list[dict[str, Any]]:
        return [target(f"histogram_quantile({q}, sum by ({by}) (rate({histogram}_bucket[$__rate_interval])))",
                       f"p{round(q * 100)}") for q in (0.5, 0.9, 0.99)]

    halted = value_map({0: ("running", "green"), 1: ("HALTED", "red")})
    return dashboard("samizdat-failovers", "samizdat / Failovers and placement",
                     "When replicas moved, why, how long it took, and how fast placement decides.", [
        timeseries("Failovers", "Failovers completed, by reason (a member lost, or a member censoring).",
                   (0, 0, 12, 8),
                   [target("sum by (reason) (increase(samizdat_failovers_total[$__rate_interval]))", "{{reason}}"),
                    # the histogram's count exists from the start, so a first failover is never missed here
                    target("sum(increase(samizdat_failover_duration_seconds_count[$__rate_interval]))", "all")],
                   bars=True),
        stat("Failovers since start", "Failovers the operator completed since it started.", (12, 0, 6, 8),
             "sum(max by (reason) (samizdat_failovers_total)) or vector(0)"),
        stat("Evictions", "Halted when most members look unhealthy at once.", (18, 0, 6, 4),
             "max(samizdat_evictions_halted)", mappings=halted),
        stat("Members quarantined", "Members caught censoring.", (18, 4, 6, 4), "max(samizdat_members_quarantined)",
             thresholds=[(None, "green"), (1, "purple")]),
        timeseries("Failover duration", f"From losing a member to every moved replica ready elsewhere; target "
                   f"{FAILOVER_TARGET_S} s (dashed).", (0, 8, 12, 8),
                   quantiles("samizdat_failover_duration_seconds"), unit="s", target_line=FAILOVER_TARGET_S),
        panel("heatmap", "Failover duration distribution", "Failovers per duration bucket.", (12, 8, 12, 8),
              [target("sum by (le) (increase(samizdat_failover_duration_seconds_bucket[$__rate_interval]))",
                      "{{le}}", fmt="heatmap")],
              unit="s",
              options={"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1,
                       "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange"},
                       "tooltip": {"show": True, "yHistogram": True}, "legend": {"show": True}}),
        timeseries("Placement decision latency", "Time the placement core takes for one decision.", (0, 16, 12, 8),
                   quantiles("samizdat_placement_decision_duration_seconds"), unit="s"),
        timeseries("Placement decisions", "Decisions per second (every reconcile of every workload).",
                   (12, 16, 12, 8),
                   [target("sum(rate(samizdat_placement_decision_duration_seconds_count[$__rate_interval]))",
                           "decisions")], unit="ops"),
        timeseries("Censorship", "Acts of censorship seen, by member and kind.", (0, 24, 12, 8),
                   [target("sum by (member, kind) (increase(samizdat_censorship_events_total[$__rate_interval]))",
                           "{{member}} {{kind}}")], bars=True),
        state_timeline("Evictions halted", "When the self-partition guard held every replica in place.",
                       (12, 24, 12, 8), [target("max(samizdat_evictions_halted)", "evictions")], halted),
        timeseries("Starved replicas", "Replicas not Ready within their start deadline, placed elsewhere, by "
                   "cause (GPUs short, nodes cordoned or tainted, a quota, no scheduler, image refused).",
                   (0, 32, 12, 8),
                   [target("sum by (cause) (increase(samizdat_replicas_starved_total[$__rate_interval]))",
                           "{{cause}}")], bars=True),
    ])


def workload() -> dict[str, Any]:
    selector = 'namespace="$namespace", workload="$workload"'
    rules = value_map({1: ("all rules hold", "green"), 0: ("rule broken", "red")})
    return dashboard(
        "samizdat-workload", "samizdat / Workload", "One AIWorkload: its replicas, jurisdictions and rules.", [
            stat("Ready replicas", "Replicas ready in members that count.", (0, 0, 4, 4),
                 f"max(samizdat_workload_replicas_ready{{{selector}}})"),
            stat("Desired replicas", "Replicas the workload asks for, standby included.", (4, 0, 4, 4),
                 f"max(samizdat_workload_replicas_desired{{{selector}}})"),
            stat("Jurisdictions", "Countries with at least one ready or starting replica.", (8, 0, 4, 4),
                 f"max(samizdat_workload_jurisdictions{{{selector}}})"),
            stat("Jurisdictions short", "How many countries the workload lacks to meet "
                 "spec.placement.minJurisdictions.", (12, 0, 4, 4),
                 f"clamp_min(max(samizdat_workload_jurisdictions_required{{{selector}}}) "
                 f"- max(samizdat_workload_jurisdictions{{{selector}}}), 0)",
                 thresholds=[(None, "green"), (1, "red")]),
            stat("Rules", "Whether every placement rule holds now.", (16, 0, 4, 4),
                 f"max(samizdat_workload_rules_satisfied{{{selector}}})", mappings=rules),
            stat("Rule violations", "Placement rules broken now.", (20, 0, 4, 4),
                 f"max(samizdat_workload_rule_violations{{{selector}}})", thresholds=[(None, "green"), (1, "red")]),
            timeseries("Replicas", "Desired and ready replicas over time; of the ready ones, those serving and "
                       "the warm standbys (failover.standbyReplicas) promoted in place when serving ones are lost.",
                       (0, 4, 12, 8), [
                target(f"max(samizdat_workload_replicas_desired{{{selector}}})", "desired"),
                target(f"max(samizdat_workload_replicas_ready{{{selector}}})", "ready"),
                target(f"max(samizdat_workload_replicas_serving{{{selector}}})", "serving"),
                target(f"max(samizdat_workload_replicas_standby{{{selector}}})", "standby"),
            ]),
            timeseries("Jurisdictions over time", "Countries with replicas, and the minimum the rules require.",
                       (12, 4, 12, 8), [
                target(f"max(samizdat_workload_jurisdictions{{{selector}}})", "jurisdictions"),
                target(f"max(samizdat_workload_jurisdictions_required{{{selector}}})", "required"),
            ]),
            state_timeline("Rules over time", "Whether every placement rule held.", (0, 12, 12, 6),
                           [target(f"max(samizdat_workload_rules_satisfied{{{selector}}})", "rules")], rules),
            timeseries("Rule violations over time", "Placement rules broken at each moment.", (12, 12, 12, 6),
                       [target(f"max(samizdat_workload_rule_violations{{{selector}}})", "violated rules")]),
            timeseries("Replicas not Ready yet", "Starting (scheduled, loading), Unscheduled (no node takes them) "
                       "or CannotStart (image pull, crash loop); status.placements[].starting has the evidence.",
                       (0, 18, 24, 8),
                       [target(f"max by (state) (samizdat_workload_replicas_starting{{{selector}}})", "{{state}}")]),
        ],
        variables=(
            query_variable("namespace", "Namespace", "samizdat_workload_replicas_desired", "namespace"),
            query_variable("workload", "AIWorkload", 'samizdat_workload_replicas_desired{namespace="$namespace"}',
                           "workload"),
        ),
    )


def gpus() -> dict[str, Any]:
    """The NVML agents of one member (samizdat-agent chart): what each GPU node really is and how it is."""
    # codes from 1, as for phases: "no series" is not the first state; CC on but no TEE in orange
    cc_mappings = value_map({code: (state, "green" if code == 1 else "orange" if code <= 4 else "text")
                             for code, state in enumerate(CC_STATES, start=1)})
    cc_code = "\n+ ".join(f'max by (node) (samizdat_agent_cc_state{{state="{state}"}}) * {code}'
                          for code, state in enumerate(CC_STATES, start=1))
    return dashboard("samizdat-gpus", "samizdat / GPU nodes",
                     "What samizdat's NVML agents observe on this member's GPU nodes: GPUs, health, XIDs, "
                     "confidential computing.", [
        stat("GPUs seen", "GPUs NVML reports on all nodes with an agent.", (0, 0, 6, 4),
             "sum(max by (node) (samizdat_agent_gpus))"),
        stat("GPUs healthy", "GPUs without a fault that takes them out of service.", (6, 0, 6, 4),
             "sum(max by (node) (samizdat_agent_gpus_healthy))"),
        stat("Nodes with a fatal GPU fault", "Nodes the agent tainted samizdat.io/gpu-fault:NoExecute.",
             (12, 0, 6, 4), "sum(max by (node) (samizdat_agent_gpu_fault))", thresholds=[(None, "green"), (1, "red")]),
        stat("Nodes without NVML", "Nodes whose agent gets no answer from NVML (no driver, no permission).",
             (18, 0, 6, 4), "count(max by (node) (samizdat_agent_nvml_up) == 0) or vector(0)",
             thresholds=[(None, "green"), (1, "orange")]),
        timeseries("Healthy GPUs per node", "GPUs in service against GPUs seen, per node.", (0, 4, 12, 8), [
            target("max by (node) (samizdat_agent_gpus_healthy)", "{{node}} healthy"),
            target("max by (node) (samizdat_agent_gpus)", "{{node}} seen"),
        ]),
        timeseries("XID events", "Critical XID events per node and code; 48, 61, 62, 64, 74, 79, 95, 119 and "
                   "120 are fatal (see docs/agent.md).", (12, 4, 12, 8),
                   [target("sum by (node, xid) (increase(samizdat_agent_xid_events_total[$__rate_interval]))",
                           "{{node}} XID {{xid}}")], bars=True),
        state_timeline("Confidential computing (observed)", "Each node's CC state as its agent read it through "
                       "NVML; only `ready` makes a node a TEE for requireObservedTEE.", (0, 12, 24, 8),
                       [target(cc_code, "{{node}}")], cc_mappings),
        timeseries("Failed Node writes", "Writes of the observation to the Node that failed, per second.",
                   (0, 20, 24, 6),
                   [target("sum by (node) (rate(samizdat_agent_publish_errors_total[$__rate_interval]))",
                           "{{node}}")], unit="reqps"),
    ])


DASHBOARDS = {"samizdat-fleet": fleet, "samizdat-failovers": failovers, "samizdat-workload": workload}
AGENT_DASHBOARDS = {"samizdat-gpus": gpus}


def render(dashboards: dict[str, Any] = DASHBOARDS) -> dict[str, str]:
    """File name -> JSON text of every dashboard (the operator chart's, unless told otherwise)."""
    return {f"{name}.json": json.dumps(build(), indent=2) + "\n" for name, build in dashboards.items()}


def main(argv: Sequence[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m samizdat.app.dashboards DIRECTORY [AGENT_DIRECTORY]", file=sys.stderr)
        return 2
    for directory, dashboards in zip(map(Path, argv), (DASHBOARDS, AGENT_DASHBOARDS), strict=False):
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in render(dashboards).items():
            (directory / name).write_text(text, encoding="utf-8")
            print(f"wrote {directory / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
