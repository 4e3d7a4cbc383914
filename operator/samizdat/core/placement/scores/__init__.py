"""Score plugins, one module per soft preference; `SCORES` lists them from most to least important."""

from __future__ import annotations

from samizdat.core.placement.framework import ScorePlugin
from samizdat.core.placement.scores import cost, latency

SCORES: tuple[ScorePlugin, ...] = (cost, latency)

__all__ = ["SCORES", "cost", "latency"]
