"""The Grafana dashboards the chart ships: generated from docs/dashboards/generate.py and up to date,
well formed, using only metrics the operator exports (alerts too), and valid PromQL (by promtool).

Whether each query returns data from a real operator is e2e/test_prometheus.py's job.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from samizdat import metrics
from samizdat.agent import metrics as agent_metrics

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "helm" / "samizdat" / "dashboards"
AGENT_OUT = ROOT / "helm" / "samizdat-agent" / "dashboards"
ALERTS = ROOT / "helm" / "samizdat" / "files" / "alerts.yaml"
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}
PANEL_TYPES = {"stat", "timeseries", "state-timeline", "geomap", "table", "heatmap"}


def load_generator() -> ModuleType:
    # docs/ is not a package; the generator is a script run as `python docs/dashboards/generate.py`
    spec = importlib.util.spec_from_file_location("dashboards_generate", ROOT / "docs" / "dashboards" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()
DASHBOARDS = {path.name: json.loads(path.read_text()) for path in sorted(OUT.glob("*.json"))}
AGENT_DASHBOARDS = {path.name: json.loads(path.read_text()) for path in sorted(AGENT_OUT.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            yield item
            yield from walk(item.get("panels", []))

    return walk(dashboard["panels"])


def queries(dashboards: dict[str, Any] = DASHBOARDS) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target, template variable and alert rule shipped (with the operator
    chart's dashboards; the agent chart ships no alerts)."""
    for name, dashboard in dashboards.items():
        for panel in panels(dashboard):
            for target in panel["targets"]:
                yield f"{name}/{panel['title']}/{target['refId']}", target["expr"]
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                yield f"{name}/${variable['name']}", variable["query"]["query"]
    if dashboards is not DASHBOARDS:
        return
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alerts/{rule['alert']}", rule["expr"]


def exported_series(module: ModuleType = metrics) -> set[str]:
    """Every series name `module` (samizdat.metrics unless told) can expose, as Prometheus stores it."""
    names: set[str] = set()
    for metric in vars(module).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        base = metric._name  # prometheus_client keeps the name without the type's suffix
        if isinstance(metric, Counter):
            names |= {f"{base}_total", f"{base}_created"}
        elif isinstance(metric, Histogram):
            names |= {f"{base}_bucket", f"{base}_count", f"{base}_sum", f"{base}_created"}
        else:
            assert isinstance(metric, Gauge), type(metric)
            names.add(base)
    return names


CHARTS = [
    pytest.param(OUT, GENERATOR.DASHBOARDS, DASHBOARDS, metrics, id="operator"),
    pytest.param(AGENT_OUT, GENERATOR.AGENT_DASHBOARDS, AGENT_DASHBOARDS, agent_metrics, id="agent"),
]


@pytest.mark.parametrize(("out", "builders", "shipped", "module"), CHARTS)
def test_generated_dashboards_are_up_to_date(out: Path, builders: dict[str, Any], shipped: dict[str, Any],
                                             module: ModuleType) -> None:
    generated = GENERATOR.render(builders)
    on_disk = {path.name: path.read_text() for path in out.glob("*.json")}
    assert generated == on_disk, "run `.venv/bin/python docs/dashboards/generate.py` and commit the result"


@pytest.mark.parametrize(("out", "builders", "shipped", "module"), CHARTS)
def test_queries_use_only_metrics_the_component_exports(out: Path, builders: dict[str, Any],
                                                        shipped: dict[str, Any], module: ModuleType) -> None:
    exported = exported_series(module)
    unknown = {
        (where, name) for where, expr in queries(shipped) for name in re.findall(r"\bsamizdat_[a-z_]+", expr)
        if name not in exported
    }
    assert not unknown, sorted(unknown)


@pytest.mark.parametrize(("out", "builders", "shipped", "module"), CHARTS)
def test_every_metric_is_shown_or_alerted_on(out: Path, builders: dict[str, Any], shipped: dict[str, Any],
                                             module: ModuleType) -> None:
    used = {name for _, expr in queries(shipped) for name in re.findall(r"\bsamizdat_[a-z_]+", expr)}
    families = {re.sub(r"_(bucket|count|sum|created)$", "", name) for name in used}
    unshown = {name for name in exported_series(module) if not name.endswith("_created")
               and re.sub(r"_(bucket|count|sum)$", "", name) not in families}
    assert not unshown, f"exported but on no dashboard and in no alert: {sorted(unshown)}"


def test_state_timeline_knows_every_member_phase() -> None:
    assert list(GENERATOR.PHASE_STYLE) == list(metrics.PHASES)
    codes = [code for code, _ in GENERATOR.PHASE_STYLE.values()]
    assert len(set(codes)) == len(codes) and 0 not in codes  # 0 would read as "no phase"


@pytest.mark.parametrize("name", sorted([*DASHBOARDS, *AGENT_DASHBOARDS]))
def test_dashboard_is_well_formed(name: str) -> None:
    dashboard = {**DASHBOARDS, **AGENT_DASHBOARDS}[name]
    assert name == f"{dashboard['uid']}.json"
    assert "samizdat" in dashboard["tags"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    datasource = dashboard["templating"]["list"][0]
    assert (datasource["name"], datasource["type"], datasource["query"]) == ("datasource", "datasource", "prometheus")
    all_panels = list(panels(dashboard))
    assert len({p["id"] for p in all_panels}) == len(all_panels)
    assert len({p["title"] for p in all_panels}) == len(all_panels), "panel titles name panels in the e2e ids"
    cells: set[tuple[int, int]] = set()
    for panel in all_panels:
        assert panel["type"] in PANEL_TYPES
        assert panel["description"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= variables | GRAFANA_BUILTINS, (panel["title"], used - variables - GRAFANA_BUILTINS)


def test_workload_dashboard_selects_by_namespace_and_workload() -> None:
    dashboard = DASHBOARDS["samizdat-workload.json"]
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "namespace", "workload"]
    for panel in panels(dashboard):
        for target in panel["targets"]:
            for selector in re.findall(r"samizdat_workload_\w+(\{[^}]*\})?", target["expr"]):
                assert selector == '{namespace="$namespace", workload="$workload"}', (panel["title"], target["expr"])


def test_fleet_dashboard_maps_replicas_by_country_code() -> None:
    [geomap] = [p for p in panels(DASHBOARDS["samizdat-fleet.json"]) if p["type"] == "geomap"]
    [target] = geomap["targets"]
    assert "samizdat_jurisdiction_replicas" in target["expr"] and "by (country)" in target["expr"]
    assert (target["format"], target["instant"]) == ("table", True)
    [layer] = geomap["options"]["layers"]
    assert layer["location"] == {"mode": "lookup", "lookup": "country", "gazetteer": "public/gazetteer/countries.json"}


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian: apt-get install prometheus)")
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel query, template variables replaced, as a recording rule."""
    values = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "namespace": "ns", "workload": "w"}
    records = []
    for number, (where, expr) in enumerate([*queries(), *queries(AGENT_DASHBOARDS)]):
        if where.startswith("alerts/"):
            continue  # tests/test_alerts.py checks the rule file itself
        match = re.fullmatch(r"label_values\((.+),\s*\w+\)", expr)
        expr = match.group(1) if match else expr  # Grafana's function around a selector
        for name, value in values.items():
            expr = expr.replace("$" + name, value)
        records.append({"record": f"dashboard:query_{number}", "expr": expr, "labels": {"where": where}})
    rules = tmp_path / "dashboards.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": records}]}))
    result = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
