"""The operator as the e2e suites run it: a real `samizdat run` process against the sandbox hub."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from e2e.sandbox.launcher import kill_recorded, terminate
from e2e.sandbox.world import OPERATOR_METRICS_OFFSET, Sandbox, rss_mib


class OperatorProcess:
    """Start, SIGKILL and restart `python -m samizdat run`, logging to the sandbox directory."""

    def __init__(self, sandbox: Sandbox, kubeconfig: Path | None = None, quarantine_seconds: float = 10,
                 metrics_port: int | None = None, name: str = "operator", args: tuple[str, ...] = ()) -> None:
        self.sandbox = sandbox
        self.quarantine_seconds = quarantine_seconds
        # next to the sandbox's own ports, so parallel sandboxes do not collide
        self.metrics_port = metrics_port or sandbox.state.port_base + OPERATOR_METRICS_OFFSET
        self.kubeconfig = kubeconfig or sandbox.admin_kubeconfig("hub")
        self.args = args  # more `samizdat run` options
        self.log = sandbox.directory / "logs" / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        # `python -m e2e.sandbox down` stops an operator left running by the demo through this file.
        self.pid_file = sandbox.directory / f"{name}.pid"

    def start(self) -> None:
        kill_recorded(self.pid_file)
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), PYTHONUNBUFFERED="1")
        with self.log.open("ab") as log:
            log.write(f"\n===== operator started at {time.strftime('%H:%M:%S')} =====\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "samizdat", "run", "--quarantine-seconds", str(self.quarantine_seconds),
                 "--metrics-port", str(self.metrics_port), *self.args], env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(str(self.process.pid))

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a node failure would: no cleanup runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
        self.pid_file.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)
        self.process = None
        self.pid_file.unlink(missing_ok=True)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def metric(self, series: str, **labels: str) -> float | None:
        """The sum of the operator's samples of `series` whose labels include `labels` (None: none)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        found = None
        for line in re.finditer(rf"^{re.escape(series)}(?:{{(.*)}})? (\S+)$", text, re.MULTILINE):
            have = dict(re.findall(r'(\w+)="([^"]*)"', line.group(1) or ""))
            if all(have.get(key) == value for key, value in labels.items()):
                found = (found or 0.0) + float(line.group(2))
        return found


class ProcessMeter(threading.Thread):
    """CPU seconds and peak RSS of one process, from /proc, between `start()` and `stop()`."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss_mib = 0.0
        self._halt = threading.Event()
        self._cpu_start = self.cpu_seconds()
        self._wall_start = time.monotonic()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def run(self) -> None:
        while not self._halt.is_set() and Path(f"/proc/{self.pid}").exists():
            self.peak_rss_mib = max(self.peak_rss_mib, rss_mib(self.pid))
            self._halt.wait(0.2)

    def stop(self) -> dict[str, float]:
        self._halt.set()
        self.join(timeout=5)
        cpu = self.cpu_seconds() - self._cpu_start
        wall = time.monotonic() - self._wall_start
        return {"cpu_seconds": round(cpu, 2), "cpu_cores_avg": round(cpu / wall, 2) if wall else 0.0,
                "peak_rss_mib": round(self.peak_rss_mib, 1)}
