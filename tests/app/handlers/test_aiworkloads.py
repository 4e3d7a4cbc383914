"""The AIWorkload daemon's own work around a reconcile: Events said once while they hold."""

from __future__ import annotations

from typing import Any

import kopf

from samizdat.app.handlers import aiworkloads
from support.fleet import UID


class Said(list[tuple[str, str, str]]):
    """samizdat's Event recorder as the handlers use it, keeping what was said instead of posting it."""

    def say(self, regarding: Any, type_: str, reason: str, message: str) -> None:
        self.append((regarding.name, reason, message))


def test_an_event_is_said_once_while_it_holds_and_said_again_after_it_stopped() -> None:
    memo = kopf.Memo(recorder=Said())
    body = {"apiVersion": "samizdat.io/v1alpha1", "kind": "AIWorkload",
            "metadata": {"name": "llm", "namespace": "team-a", "uid": UID}}
    lost: list[Any] = [("Warning", "MemberLost", "replicas in de no longer count, the member is down (ProbeRefused)")]
    said: tuple[str, ...] = ()
    for events in (lost, lost, lost, [], lost):  # reconciles: the loss holds, ends (healed), happens again
        said = aiworkloads._say(memo, body, said, events)  # type: ignore[arg-type]
    assert memo.recorder == [("llm", "MemberLost", lost[0][2])] * 2
