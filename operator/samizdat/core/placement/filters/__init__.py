"""Eligibility filter plugins, one module per rule; `FILTERS` is the order their reasons are listed in."""

from __future__ import annotations

from samizdat.core.placement.filters import (
    allowed_jurisdictions,
    cluster_selector,
    denied_alliances,
    denied_jurisdictions,
    gpu_fit,
    probe_rtt,
    tee,
    unschedulable,
)
from samizdat.core.placement.framework import FilterPlugin

FILTERS: tuple[FilterPlugin, ...] = (
    unschedulable,
    allowed_jurisdictions,
    denied_jurisdictions,
    denied_alliances,
    tee,
    cluster_selector,
    probe_rtt,
    gpu_fit,
)

__all__ = [
    "FILTERS",
    "allowed_jurisdictions",
    "cluster_selector",
    "denied_alliances",
    "denied_jurisdictions",
    "gpu_fit",
    "probe_rtt",
    "tee",
    "unschedulable",
]
