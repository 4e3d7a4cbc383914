"""samizdat's alert rules (helm/samizdat/files/alerts.yaml, the PrometheusRule's spec) under promtool:
`check rules` and the unit tests in docs/alerts/, plus the conventions every rule keeps.

promtool comes with Debian's `prometheus` package; these tests skip, saying so, where it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "helm" / "samizdat" / "files" / "alerts.yaml"
UNIT_TESTS = sorted((ROOT / "docs" / "alerts").glob("*.test.yaml"))
SEVERITIES = {"critical", "warning", "info"}

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian: apt-get install prometheus)",
)


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


@needs_promtool
@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=lambda path: path.name)
def test_promtool_unit_tests_pass(unit_test: Path) -> None:
    result = promtool("test", "rules", str(unit_test))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_load_the_shipped_rule_file() -> None:
    for unit_test in UNIT_TESTS:
        loaded = [(unit_test.parent / name).resolve() for name in yaml.safe_load(unit_test.read_text())["rule_files"]]
        assert loaded == [RULES.resolve()], unit_test.name


def test_every_alert_is_shown_firing_by_a_unit_test() -> None:
    fired = {
        case["alertname"]
        for unit_test in UNIT_TESTS
        for group in yaml.safe_load(unit_test.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in rules()}


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_alert_has_severity_for_and_runbook(rule: dict[str, Any]) -> None:
    assert rule["alert"].startswith("Samizdat")
    assert rule["labels"]["severity"] in SEVERITIES
    assert "for" in rule, "state how long the condition must hold, even when that is 0m"
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook"}
    assert all(text.strip() for text in annotations.values())
    assert annotations["runbook"].lstrip().startswith("1."), "a runbook is numbered steps"
