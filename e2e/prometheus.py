"""A real Prometheus on 127.0.0.1 for the e2e suites: scrapes the operator, evaluates the chart's alerts.

It scrapes the way the chart's ServiceMonitor makes the Prometheus Operator scrape: `honor_labels`
(so a workload's own `namespace` label wins over the target's) and the target labels a pod gets
(`namespace`, `pod`, `job`). Scrapes and rule evaluations run every second, so a scenario of a minute
leaves enough samples for every `rate()`. The binary is Debian's `prometheus` package.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from e2e.sandbox.launcher import terminate
from e2e.waiting import eventually

SCRAPE_INTERVAL = "1s"


def binary() -> str | None:
    return shutil.which("prometheus")


class Prometheus:
    """One Prometheus process with its own data directory, stopped by `stop()`."""

    def __init__(self, directory: Path, port: int, target: str, rule_files: list[Path],
                 target_labels: dict[str, str]) -> None:
        self.directory = directory
        self.port = port
        self.target = target
        self.rule_files = rule_files
        self.target_labels = target_labels
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        return {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                       "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [{
                "job_name": self.target_labels.get("job", "samizdat"),
                "honor_labels": True,
                "static_configs": [{"targets": [self.target], "labels": self.target_labels}],
            }],
        }

    def start(self, timeout: float = 30) -> None:
        program = binary()
        if program is None:
            raise RuntimeError("prometheus is not installed (Debian: apt-get install prometheus)")
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [program, f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        eventually(self._ready, timeout=timeout, interval=0.2, what=f"prometheus ready on {self.url}")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited:\n{self.log.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)
        self.process = None

    # ----- the HTTP API

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer, an AssertionError with the error otherwise."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body.get('errorType')}: {body.get('error')}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", f"{expr}: {data['resultType']} result"
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict[str, Any]]:
        data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=str(step))
        return list(data["result"])

    def targets_up(self) -> bool:
        active = self.api("targets")["activeTargets"]
        return bool(active) and all(target["health"] == "up" for target in active)

    def rule_health(self) -> dict[str, tuple[str, str]]:
        """Rule name -> (health, last error) of every loaded rule."""
        return {
            rule["name"]: (rule["health"], rule.get("lastError", ""))
            for group in self.api("rules")["groups"] for rule in group["rules"]
        }

    def wait_for_scrapes(self, count: int = 2) -> None:
        """Let `count` more scrapes and rule evaluations happen, so what just changed is in the data."""
        time.sleep(count * float(SCRAPE_INTERVAL.removesuffix("s")) + 0.5)
