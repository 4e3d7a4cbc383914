"""What a benchmark reports of its trials: median, 99th percentile (the slowest trial with fewer than a
hundred), the maximum and every trial, in seconds."""

from __future__ import annotations

import statistics
from typing import Any


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(seconds: list[float]) -> dict[str, Any]:
    return {
        "trials": len(seconds),
        "p50_s": round(statistics.median(seconds), 3),
        "p99_s": round(percentile(seconds, 0.99), 3),
        "max_s": round(max(seconds), 3),
        "all_s": [round(s, 3) for s in seconds],
    }
