"""Which of a workload's placed replicas serve and which wait as warm standbys.

The solver places `replicas + failover.standbyReplicas` replicas as one set, so every hard rule holds
for serving and standby replicas together; roles are a step after it that moves no replica. The serving
replicas alone must hold the rules too, since they are where clients are served from. Every rule but one
holds for any subset of a placement that holds it (a member or country allowed, a maximum per member or
country); minJurisdictions does not, so it comes first below: a promotion that would leave the serving
replicas in too few countries is not made, another standby is promoted or a new replica serves once it
has loaded.

`serving_split` decides, per member, how many of its placed replicas serve. It removes one serving slot
at a time (one per standby) from the member where losing it costs least, judged in this order:
0. serving countries, up to `min_countries` (the workload's minJurisdictions): the hard rule;
1. serving replicas that are ready: a ready standby is promoted before a cold one is made to serve, so a
   failover restores serving capacity in one label write instead of a model load;
2. cover: how many serving members, and serving countries, would still find a standby outside them if
   they were lost — what keeps the next failover warm;
3. stability: serving replicas that already serve keep serving (fewer label writes).
Greedy, one slot at a time, ties broken by member name: standbys are few, and the order is documented
in docs/placement.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Held:
    """What a member holds of one workload now: of its live pods, how many are ready, how many serve."""

    ready: int = 0
    serving: int = 0


def serving_split(
    assignments: Mapping[str, int], held: Mapping[str, Held], countries: Mapping[str, str], replicas: int,
    min_countries: int = 1,
) -> dict[str, int]:
    """Serving replicas per member of `assignments` (every member listed, 0 included): `replicas` of
    them serve and the rest are standbys, the serving ones in at least `min_countries` countries where
    the placement has them. With fewer placed (a lost member whose replicas cannot go anywhere else),
    standbys are given up first: every placed replica serves before any waits. `held` may omit a member
    that holds nothing yet; `countries` names every member's country."""
    serving = {name: count for name, count in assignments.items() if count > 0}
    for _ in range(max(0, sum(serving.values()) - replicas)):
        candidates = [name for name, count in sorted(serving.items()) if count > 0]
        best = max(candidates, key=lambda name: _score(_without(serving, name), assignments, held, countries,
                                                       min_countries))
        serving[best] -= 1
    return {name: serving.get(name, 0) for name in assignments}


def _without(serving: Mapping[str, int], name: str) -> dict[str, int]:
    return {**serving, name: serving[name] - 1}


def _score(
    serving: Mapping[str, int], assignments: Mapping[str, int], held: Mapping[str, Held], countries: Mapping[str, str],
    min_countries: int,
) -> tuple[int, ...]:
    nothing = Held()
    spread = len({countries[name] for name, count in serving.items() if count > 0})
    ready = sum(min(count, held.get(name, nothing).ready) for name, count in serving.items())
    standbys = {name: assignments[name] - count for name, count in serving.items()}
    members, lone_countries = uncovered(serving, standbys, countries)
    return (min(spread, min_countries), ready, -members, -lone_countries,
            sum(min(count, held.get(name, nothing).serving) for name, count in serving.items()))


def uncovered(serving: Mapping[str, int], standbys: Mapping[str, int], countries: Mapping[str, str]) -> tuple[int, int]:
    """How many serving members, and how many serving countries, would find no standby outside them
    if they were lost."""
    members = sum(
        1 for name, count in serving.items()
        if count > 0 and not any(spare > 0 for other, spare in standbys.items() if other != name)
    )
    serving_countries = {countries[name] for name, count in serving.items() if count > 0}
    spare_countries = {countries[name] for name, spare in standbys.items() if spare > 0}
    return members, sum(1 for country in serving_countries if not spare_countries - {country})
