"""Shared test data: the smallest valid resources, as users would write them, for each test to vary.

The builders return plain dicts (what `kubectl` or a YAML file gives), so the same data can be checked
against the pydantic models and against the CRD schemas.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

Builder = Callable[..., dict[str, Any]]


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` merged in recursively; a value of None removes the key."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def member_cluster() -> Builder:
    """`member_cluster(name, country, provider, spec={...}, status={...})` -> a MemberCluster dict."""

    def build(
        name: str = "m1",
        country: str = "DE",
        provider: str = "cloud-a",
        *,
        spec: dict[str, Any] | None = None,
        status: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        base = {
            "apiVersion": "samizdat.io/v1alpha1",
            "kind": "MemberCluster",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {
                "kubeconfigSecretRef": {"name": name, "namespace": "samizdat-system"},
                "jurisdiction": {"country": country},
                "provider": provider,
            },
            "status": {
                "phase": "Ready",
                "gpuInventory": [{"product": "NVIDIA-H100-80GB-HBM3", "memoryMiB": 81559, "freeGPUs": 8, "nodes": 2}],
            },
        }
        return _merge(base, {"spec": spec or {}, "status": status or {}})

    return build


@pytest.fixture
def ai_workload() -> Builder:
    """`ai_workload(spec={...})` -> an AIWorkload dict; `spec` is merged into a minimal valid spec."""

    def build(spec: dict[str, Any] | None = None, name: str = "w1") -> dict[str, Any]:
        base = {
            "apiVersion": "samizdat.io/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "replicas": 2,
                "template": {"spec": {"containers": [{"name": "server", "image": "example/server:1"}]}},
            },
        }
        return _merge(base, {"spec": spec or {}})

    return build


@pytest.fixture
def alliance() -> Builder:
    """`alliance(name, members)` -> an Alliance dict."""

    def build(name: str, members: list[str], description: str = "") -> dict[str, Any]:
        return {
            "apiVersion": "samizdat.io/v1alpha1",
            "kind": "Alliance",
            "metadata": {"name": name},
            "spec": {"members": members, "description": description, "source": "test"},
        }

    return build


# Hypothesis profiles for the property suites: "ci" (the default) finishes in minutes on two cores;
# "thorough" (`pytest --hypothesis-profile=thorough`) runs many more examples before a release.
from hypothesis import HealthCheck, settings  # noqa: E402

# "ci" is derandomized: a suite that must be green on every submission checks the same examples each run,
# while "thorough" keeps drawing new ones to find what those miss.
settings.register_profile(
    "ci", max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")
