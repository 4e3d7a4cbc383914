"""Event names: the same thing said about the same object is one Event; anything else is another."""

from __future__ import annotations

from typing import Any

import pytest

from samizdat.remote.clusters import recording
from samizdat.remote.clusters.recording import Regarding

WORKLOAD = Regarding("samizdat.io/v1alpha1", "AIWorkload", "demo", "uid-1", "default")
MEMBER = Regarding("samizdat.io/v1alpha1", "MemberCluster", "de-berlin", "uid-2")
SAID = ("Warning", "MemberLost", "replicas in de-berlin no longer count (down: refused)")


def test_the_same_thing_said_again_about_the_same_object_has_the_same_name() -> None:
    assert recording.event_name(WORKLOAD, *SAID) == recording.event_name(WORKLOAD, *SAID)
    assert recording.event_name(WORKLOAD, *SAID).startswith("demo.")


DIFFERENT: list[Any] = [
    pytest.param(Regarding("samizdat.io/v1alpha1", "AIWorkload", "demo", "uid-3", "default"), SAID,
                 id="a-new-object-of-the-same-name"),
    pytest.param(WORKLOAD, ("Normal", *SAID[1:]), id="another-type"),
    pytest.param(WORKLOAD, (SAID[0], "MemberDown", SAID[2]), id="another-reason"),
    pytest.param(WORKLOAD, (*SAID[:2], "replicas in de-berlin no longer count (down: timeout)"), id="another-message"),
]


@pytest.mark.parametrize(("regarding", "said"), DIFFERENT)
def test_anything_else_is_another_event(regarding: Regarding, said: tuple[Any, str, str]) -> None:
    assert recording.event_name(regarding, *said) != recording.event_name(WORKLOAD, *SAID)


def test_names_stay_valid_for_the_longest_object_names() -> None:
    long = Regarding("v1", "Thing", "x" * 253, "uid")
    assert len(recording.event_name(long, *SAID)) <= 253


def test_a_reference_names_the_namespace_only_of_namespaced_objects() -> None:
    assert WORKLOAD.reference()["namespace"] == "default"
    assert "namespace" not in MEMBER.reference()
    body = {"apiVersion": "samizdat.io/v1alpha1", "kind": "MemberCluster",
            "metadata": {"name": "de-berlin", "uid": "uid-2", "generation": 1}}
    assert Regarding.of(body) == MEMBER
