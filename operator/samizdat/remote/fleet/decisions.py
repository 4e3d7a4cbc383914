"""The fleet's book of what was decided: where each workload should run, what the capacity ledger
charges to each member meanwhile (see `samizdat.core.ledger`), and which members each workload keeps
away from for now (its start-deadline back-offs, see `samizdat.core.starts`). No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from samizdat.core import ledger, starts
from samizdat.remote.fleet.views import Copy


class DecisionBook:
    def __init__(self) -> None:
        self._decisions: dict[str, dict[str, int]] = {}  # workload uid -> member -> replicas
        # The capacity ledger's side of the decisions: member -> workload uid -> replicas promised, and
        # the pod spec each workload's replicas run (what they need, which nodes they may use).
        self._promised: dict[str, dict[str, int]] = {}
        self._pod_specs: dict[str, Mapping[str, Any]] = {}
        self._back_offs: dict[str, dict[str, starts.BackOff]] = {}  # workload uid -> member -> back-off

    def record(self, uid: str, assignments: Mapping[str, int], pod_spec: Mapping[str, Any]) -> bool:
        """Remember where the workload should run; whether that changed anything."""
        wanted = {name: replicas for name, replicas in assignments.items() if replicas > 0}
        if self._decisions.get(uid) == wanted and self._pod_specs.get(uid) == pod_spec:
            return False
        self._unpromise(uid)
        self._decisions[uid] = wanted
        self._pod_specs[uid] = pod_spec
        for name, replicas in wanted.items():
            self._promised.setdefault(name, {})[uid] = replicas
        return True

    def forget(self, uid: str) -> None:
        self._unpromise(uid)
        self._decisions.pop(uid, None)
        self._pod_specs.pop(uid, None)
        self._back_offs.pop(uid, None)

    def _unpromise(self, uid: str) -> None:
        for name in self._decisions.get(uid, {}):
            self._promised.get(name, {}).pop(uid, None)

    def holders(self, uid: str) -> set[str]:
        """The members the latest decision gives replicas of the workload."""
        return set(self._decisions.get(uid, {}))

    def wants(self, member: str, copy: Copy) -> bool:
        """Whether the latest decision still wants this copy there (no decision yet: it may)."""
        decision = self._decisions.get(copy.workload_uid)
        return decision is None or decision.get(member, 0) > 0

    def promises(self, member: str, copies: Mapping[str, Copy]) -> tuple[ledger.Promise, ...]:
        """What the capacity ledger charges to the member: every replica the latest decisions give it,
        and, for a workload with no decision yet (after a restart), what our copy there asks for."""
        promised = self._promised.get(member, {})
        found = [ledger.Promise(uid, replicas, self._pod_specs[uid]) for uid, replicas in promised.items()]
        found += [
            ledger.Promise(uid, copy.desired, copy.body.get("spec", {}).get("template", {}).get("spec", {}))
            for uid, copy in copies.items() if uid not in self._decisions and copy.desired > 0
        ]
        return tuple(sorted(found, key=lambda p: p.workload_uid))

    def back_off(self, uid: str, member: str, verdict: starts.Verdict, now: float, seconds: float) -> None:
        """Keep the member from new replicas of the workload for `seconds` from `now`."""
        self._back_offs[uid] = starts.back_off(self._back_offs.get(uid, {}), member, verdict, now, seconds)

    def backed_off(self, uid: str, now: float) -> dict[str, starts.BackOff]:
        """The members kept from new replicas of the workload at `now`."""
        table = starts.active(self._back_offs.get(uid, {}), now)
        self._back_offs[uid] = table
        return table
