"""The plugin interfaces of the placement pipeline and the per-request context they read.

Like kube-scheduler's and Karmada's framework: a filter plugin answers "may this workload's replicas
land on this member?" with a result carrying human reasons; a score plugin rates a member on one soft
preference, normalised to 0..100 across the snapshot's members (see `index`). Plugins are modules (see `filters/` and
`scores/`), so adding a rule means adding one file and one line in that package's registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from samizdat.core.placement import capacity
from samizdat.core.placement.snapshot import MemberInfo, Request, Snapshot

MAX_SCORE = 100


@dataclass(frozen=True, slots=True)
class FilterResult:
    """A filter's verdict on one member: it fits when there are no reasons against it."""

    reasons: tuple[str, ...] = ()


FITS = FilterResult()


@dataclass(frozen=True, slots=True)
class Context:
    """One request read against one snapshot, with the look-ups every plugin would otherwise redo."""

    request: Request
    # country -> names of the request's denied alliances that contain it (sorted)
    denied_alliances_of: Mapping[str, tuple[str, ...]]
    replica_need: str  # what one replica needs, in words, for reasons
    fits: Callable[[MemberInfo], int]  # new replicas that fit on a member's free GPUs (see `capacity`)


def context(snapshot: Snapshot, request: Request, fits: Callable[[MemberInfo], int] | None = None) -> Context:
    """The context for `request`; `fits` defaults to computing `capacity.new_replicas` afresh."""
    denied: dict[str, list[str]] = {}
    for name in sorted(request.rules.denied_alliances):
        for country in snapshot.alliances.get(name, frozenset()):
            denied.setdefault(country, []).append(name)
    return Context(
        request=request,
        denied_alliances_of={country: tuple(names) for country, names in denied.items()},
        replica_need=capacity.describe(request),
        fits=fits or (lambda member: capacity.new_replicas(member, request.gpu, request.rules.require_tee, 1 << 62)),
    )


class FilterPlugin(Protocol):
    """An eligibility rule; `NAME` is the spec field it enforces, as users write it.

    `PER_COUNTRY` says the verdict depends on nothing of the member but its country, so the pipeline
    asks once per country instead of once per member.
    """

    @property
    def NAME(self) -> str: ...  # noqa: N802 - a module constant satisfies this protocol

    @property
    def PER_COUNTRY(self) -> bool: ...  # noqa: N802 - a module constant satisfies this protocol

    def filter(self, member: MemberInfo, context: Context) -> FilterResult: ...


class ScorePlugin(Protocol):
    """A soft preference: `raw` is a quantity where lower is better (cost, latency)."""

    @property
    def NAME(self) -> str: ...  # noqa: N802 - a module constant satisfies this protocol

    def raw(self, member: MemberInfo) -> float: ...


def normalise(values: Mapping[str, float]) -> dict[str, int]:
    """Map raw values (lower is better) onto 0..MAX_SCORE, best = MAX_SCORE, like NormalizeScore."""
    if not values:
        return {}
    low, high = min(values.values()), max(values.values())
    if high == low:
        return dict.fromkeys(values, MAX_SCORE)
    return {name: round(MAX_SCORE * (high - value) / (high - low)) for name, value in values.items()}
