"""Conditions as the API conventions want them (every status builder's): a transition time that moves only when status does."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Generic, NamedTuple, TypeVar

from samizdat.core.model import Condition, ConditionStatus

TypeT = TypeVar("TypeT", bound=StrEnum)


class Observed(NamedTuple, Generic[TypeT]):
    type: TypeT
    holds: bool | None  # None: unknown
    reason: str
    message: str


def merge(
    previous: Iterable[Condition[TypeT]], observed: Iterable[Observed[TypeT]], now: datetime, generation: int | None
) -> tuple[Condition[TypeT], ...]:
    """New conditions from `observed`, keeping each one's lastTransitionTime while its status is unchanged."""
    before = {condition.type: condition for condition in previous}
    merged = []
    for item in observed:
        status = ConditionStatus.UNKNOWN if item.holds is None else (
            ConditionStatus.TRUE if item.holds else ConditionStatus.FALSE
        )
        old = before.get(item.type)
        since = old.last_transition_time if old is not None and old.status is status else now
        merged.append(Condition[TypeT](
            type=item.type, status=status, reason=item.reason, message=item.message[:32768],
            last_transition_time=since, observed_generation=generation,
        ))
    return tuple(merged)
