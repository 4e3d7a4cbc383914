"""The Events one reconcile of an AIWorkload says, and the reasons they and its conditions give.

Pure: the caller posts them (once while each holds, see `samizdat.app.handlers.aiworkloads`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, NamedTuple

from samizdat.core import model, placement
from samizdat.core.report.result import Change, Result, Verb


class Reason(StrEnum):
    """Why samizdat says something about an AIWorkload, CamelCase as the API conventions want it."""

    EVICTIONS_HALTED = "EvictionsHalted"
    INFEASIBLE = "Infeasible"
    SPREAD_DEGRADED = "SpreadDegraded"  # also the RulesSatisfied condition's (docs/placement.md)
    MEMBER_LOST = "MemberLost"
    APPLY_FAILED = "ApplyFailed"
    START_DEADLINE_EXCEEDED = "StartDeadlineExceeded"
    INVALID_SPEC = "InvalidSpec"
    CLEANUP_DEFERRED = "CleanupDeferred"
    PLACED = "Placed"
    SCALED = "Scaled"
    UPDATED = "Updated"
    REMOVED = "Removed"
    PROMOTED = "Promoted"
    DEMOTED = "Demoted"
    DNS_RECORD_UPDATED = "DNSRecordUpdated"
    DNS_RECORD_FAILED = "DNSRecordFailed"


class MemberReason(StrEnum):
    """Why samizdat says something about a MemberCluster."""

    INVALID_SPEC = "InvalidSpec"
    KUBECONFIG_INVALID = "KubeconfigInvalid"
    SECRET_UNAVAILABLE = "SecretUnavailable"
    CONNECTING = "Connecting"
    CREDENTIALS_CHANGED = "CredentialsChanged"
    CREDENTIALS_RENEWED = "CredentialsRenewed"
    CREDENTIAL_RENEWAL_FAILED = "CredentialRenewalFailed"
    NO_WORKING_FENCE = "NoWorkingFence"
    FENCE_WORKS = "FenceWorks"
    MEMBER_PENDING = "MemberPending"
    MEMBER_READY = "MemberReady"
    MEMBER_SUSPECT = "MemberSuspect"
    MEMBER_DOWN = "MemberDown"
    MEMBER_QUARANTINED = "MemberQuarantined"


# The Event reason of a member's move into each phase.
PHASE_REASONS: dict[model.Phase, MemberReason] = {
    model.Phase.PENDING: MemberReason.MEMBER_PENDING, model.Phase.READY: MemberReason.MEMBER_READY,
    model.Phase.SUSPECT: MemberReason.MEMBER_SUSPECT, model.Phase.DOWN: MemberReason.MEMBER_DOWN,
    model.Phase.QUARANTINED: MemberReason.MEMBER_QUARANTINED,
}

# The Event reason of each change, said in so many words rather than derived from the verb's spelling.
CHANGE_REASONS: dict[Verb, Reason] = {
    Verb.PLACED: Reason.PLACED, Verb.SCALED: Reason.SCALED, Verb.UPDATED: Reason.UPDATED,
    Verb.REMOVED: Reason.REMOVED, Verb.PROMOTED: Reason.PROMOTED, Verb.DEMOTED: Reason.DEMOTED,
}
_CHANGED_WHAT = {Verb.PROMOTED: "standby replica(s) to serving", Verb.DEMOTED: "serving replica(s) to standby"}

EventType = Literal["Normal", "Warning"]


class Event(NamedTuple):
    type: EventType
    # A `Reason`, or for a start deadline the `StartCause` that names why the replicas did not start.
    reason: Reason | model.StartCause
    message: str


def events(workload: model.AIWorkload, result: Result) -> list[Event]:
    """Every Event `result` gives cause for, in the order they are said."""
    said: list[Event] = []
    if result.halted:
        said.append(Event("Warning", Reason.EVICTIONS_HALTED, result.halted))
    decision = result.decision
    if decision is not None and not decision.feasible:
        said.append(Event("Warning", Reason.INFEASIBLE, infeasible_message(decision)))
    if decision is not None and decision.degraded:
        said.append(Event("Warning", Reason.SPREAD_DEGRADED, degraded_message(decision)))
    for name, loss in sorted(result.lost.items()):
        said.append(Event("Warning", Reason.MEMBER_LOST, f"replicas in {name} no longer count, the member is {loss.why}"))
    # Without standbys every pod is still labelled serving once Ready (a relabel write): plumbing, not
    # news, and to speak of standbys to a workload that has none would tell its user something untrue.
    has_standbys = workload.spec.failover.standby_replicas > 0
    said += [_changed(change) for change in result.changes if has_standbys or change.verb not in _CHANGED_WHAT]
    for name, error in sorted(result.failures.items()):
        said.append(Event("Warning", Reason.APPLY_FAILED, f"{name}: {error}"))
    failover = workload.spec.failover
    for name, verdict in sorted(result.starved.items()):
        then = ("the member is quarantined" if verdict.censorship is not None
                else f"{name} kept from new replicas of this workload for {failover.quarantine_seconds}s "
                     "while another member has room")
        said.append(Event("Warning", verdict.cause or Reason.START_DEADLINE_EXCEEDED, (
            f"{verdict.lost} replica(s) in {name} not Ready within {verdict.deadline_s:g}s, placed "
            f"elsewhere; {then}: {verdict.evidence}"
        )))
    return said


def _changed(change: Change) -> Event:
    what = _CHANGED_WHAT.get(change.verb, "replica(s)")
    return Event("Normal", CHANGE_REASONS[change.verb], f"{change.verb} {change.replicas} {what} in {change.member}")


def infeasible_message(decision: placement.Decision) -> str:
    rule = decision.binding_rule or "rules"
    return f"cannot place: {rule} binds: {decision.explanation or 'no placement satisfies every rule'}"


def degraded_message(decision: placement.Decision) -> str:
    short = "; ".join(str(shortfall) for shortfall in decision.shortfalls)
    return f"every replica placed under the limits, spread given up: {short} ({decision.explanation})"
