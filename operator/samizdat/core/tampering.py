"""What a member's own objects say about its conduct: censorship read from copies and watch events.

Telling our own changes from a hostile admin's needs no memory that a restart would lose: every copy
carries, in annotations written in the same request, the replicas and images samizdat asked for, so a
copy whose spec disagrees with its own annotations was changed by someone else. What samizdat itself
deleted is the caller's to know (`ours`): only it remembers its own deletes until the watch confirms
them. Pure: objects in, evidence out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from samizdat.core import manifests
from samizdat.core.model import CensorshipKind


@dataclass(frozen=True, slots=True)
class Censorship:
    """Evidence that a member censors: what it did, in its own words."""

    kind: CensorshipKind
    message: str
    workload_uid: str | None = None  # the workload whose copy was touched, when the evidence is about one


def tampering(obj: Mapping[str, Any]) -> Censorship | None:
    """A copy whose spec disagrees with what samizdat wrote into its own annotations was changed by
    someone else."""
    annotations = obj.get("metadata", {}).get("annotations", {})
    name = obj.get("metadata", {}).get("name", "?")
    spec = obj.get("spec", {})
    if manifests.REPLICAS_ANNOTATION in annotations:
        asked = int(annotations[manifests.REPLICAS_ANNOTATION])
        actual = spec.get(manifests.copy_kind(str(obj.get("kind"))).replicas_field)
        if actual is not None and int(actual) != asked:
            kind = CensorshipKind.SCALED_TO_ZERO if int(actual) == 0 else CensorshipKind.SPEC_ALTERED
            return Censorship(kind, f"{obj.get('kind')} {name}: replicas {asked} -> {actual} by someone else")
    if manifests.IMAGES_ANNOTATION in annotations:
        asked_images = json.loads(annotations[manifests.IMAGES_ANNOTATION])
        actual_images = manifests.container_images(spec.get("template", {}))
        if actual_images != asked_images:
            return Censorship(
                CensorshipKind.SPEC_ALTERED, f"{obj.get('kind')} {name}: images {asked_images} -> {actual_images}"
            )
    return None


def copy_event(obj: Mapping[str, Any], deleted: bool, ours: bool) -> tuple[Censorship, ...]:
    """What one watch event of one of our copies says: deleted, being deleted or altered by someone
    else (the last word weighs most), or nothing. `ours`: samizdat itself is deleting this copy (its
    own scale-to-zero before the delete is no tampering, and its own delete no censorship)."""
    if ours:
        return ()
    metadata = obj.get("metadata", {})
    name = metadata.get("name", "?")
    about = metadata.get("labels", {}).get(manifests.UID_LABEL) or None  # its workload's Events may quote it
    if deleted:
        return (Censorship(CensorshipKind.OBJECT_DELETED, f"{obj.get('kind')} {name} deleted", about),)
    found = []
    if metadata.get("deletionTimestamp"):
        found.append(Censorship(CensorshipKind.OBJECT_DELETED, f"{obj.get('kind')} {name} being deleted", about))
    evidence = tampering(obj)
    if evidence is not None:
        found.append(replace(evidence, workload_uid=about))
    return tuple(found)


def namespace_event(was_present: bool | None, present: bool) -> Censorship | None:
    """Our workload namespace seen (`present`) or not: gone after it was there is censorship; missing
    from the start (`was_present` None) is a setup error."""
    if was_present is True and not present:
        return Censorship(CensorshipKind.NAMESPACE_REMOVED, f"namespace {manifests.WORKLOAD_NAMESPACE} deleted")
    return None
