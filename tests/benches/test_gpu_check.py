"""bench/gpu-check runs the agent's read path against the real driver; on a machine without one (CI,
this sandbox) it must say so in its JSON and exit 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu-check" / "run.py"


def test_gpu_check_prints_its_json_and_exits_0() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--xid-wait", "0"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"gpu", "nvml_error", "message", "observation", "publication", "seconds"}
    if report["gpu"]:
        assert report["observation"]["driver_version"] and report["observation"]["gpus"]
    else:  # no driver is an answer: said plainly, and nothing that would taint or relabel a node
        assert report["nvml_error"] and report["message"].startswith("no NVIDIA GPU here")
        assert report["publication"]["taint"] is None
        assert report["publication"]["condition"]["status"] == "Unknown"
