"""Censorship read from our own copies: what samizdat asked for (in the copy's annotations) against what
the copy says now, and watch events samizdat did not cause."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from samizdat.core import manifests, model, tampering
from samizdat.core.model import CensorshipKind

UID = "1234abcd-0000-4000-8000-000000000000"


def ours(replicas: int = 2) -> dict[str, Any]:
    workload = model.AIWorkload.model_validate({
        "apiVersion": "samizdat.io/v1alpha1", "kind": "AIWorkload",
        "metadata": {"name": "llm", "namespace": "team-a", "uid": UID, "generation": 1},
        "spec": {"replicas": replicas, "gpu": {"count": 1},
                 "template": {"spec": {"containers": [{"name": "server", "image": "example/llm:1"}]}}},
    })
    return manifests.build_copy(workload, replicas)


def altered(**change: Any) -> dict[str, Any]:
    obj = copy.deepcopy(ours())
    if "replicas" in change:
        obj["spec"]["replicas"] = change["replicas"]
    if "image" in change:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = change["image"]
    if change.get("deleting"):
        obj["metadata"]["deletionTimestamp"] = "2026-12-07T12:00:00Z"
    return obj


@pytest.mark.parametrize(("obj", "kind"), [
    pytest.param(ours(), None, id="untouched"),
    pytest.param(altered(replicas=0), CensorshipKind.SCALED_TO_ZERO, id="scaled-to-zero"),
    pytest.param(altered(replicas=1), CensorshipKind.SPEC_ALTERED, id="scaled-down"),
])
def test_a_copy_read_back_is_told_from_our_own_annotations(obj: dict[str, Any], kind: CensorshipKind | None) -> None:
    evidence = tampering.tampering(obj)
    assert (evidence.kind if evidence else None) == kind


def test_a_swapped_image_is_tampering_and_says_what_runs_instead() -> None:
    evidence = tampering.tampering(altered(image="registry.invalid/censored:latest"))
    assert evidence is not None and evidence.kind is CensorshipKind.SPEC_ALTERED
    assert "censored" in evidence.message


@pytest.mark.parametrize(("obj", "kinds"), [
    pytest.param(ours(), (), id="as-written"),
    pytest.param(altered(replicas=0), (CensorshipKind.SCALED_TO_ZERO,), id="scaled-to-zero"),
    pytest.param(altered(replicas=5), (CensorshipKind.SPEC_ALTERED,), id="scaled-up"),
    pytest.param(altered(image="evil/llm:1"), (CensorshipKind.SPEC_ALTERED,), id="image-swapped"),
    pytest.param(altered(deleting=True, replicas=0), (CensorshipKind.OBJECT_DELETED, CensorshipKind.SCALED_TO_ZERO),
                 id="being-deleted-and-scaled"),
])
def test_a_copy_changed_by_someone_else_is_censorship_about_its_workload(
    obj: dict[str, Any], kinds: tuple[CensorshipKind, ...]
) -> None:
    found = tampering.copy_event(obj, deleted=False, ours=False)
    assert tuple(evidence.kind for evidence in found) == kinds
    assert all(evidence.workload_uid == UID for evidence in found)


def test_a_deleted_copy_is_censorship_unless_samizdat_deleted_it() -> None:
    (deleted,) = tampering.copy_event(ours(), deleted=True, ours=False)
    assert deleted.kind is CensorshipKind.OBJECT_DELETED and "deleted" in deleted.message
    assert tampering.copy_event(ours(), deleted=True, ours=True) == ()
    assert tampering.copy_event(altered(replicas=0), deleted=False, ours=True) == (), "our own scale-down first"


def test_the_workload_namespace_gone_after_it_was_there_is_censorship() -> None:
    removed = tampering.namespace_event(True, False)
    assert removed is not None and removed.kind is CensorshipKind.NAMESPACE_REMOVED
    assert tampering.namespace_event(None, False) is None, "missing from the start: a setup error"
    assert tampering.namespace_event(True, True) is None
