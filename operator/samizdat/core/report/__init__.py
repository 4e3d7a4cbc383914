"""The pure half of one AIWorkload reconcile's report: the frozen `Result` a reconcile returns, and the
status, Events and failover clock built from it and the view it was decided on."""

from samizdat.core.report.clock import FailoverClock, FailoverTimer, Finished, Tally
from samizdat.core.report.events import CHANGE_REASONS, Event, EventType, Reason, events
from samizdat.core.report.result import Change, Relabel, Result, Verb
from samizdat.core.report.status import WorkloadGauges, build_status, tally
from samizdat.core.report.view import HeldCopy, HolderLost, View

__all__ = [
    "CHANGE_REASONS",
    "Change",
    "Event",
    "EventType",
    "FailoverClock",
    "FailoverTimer",
    "Finished",
    "HeldCopy",
    "HolderLost",
    "Reason",
    "Relabel",
    "Result",
    "Tally",
    "Verb",
    "View",
    "WorkloadGauges",
    "build_status",
    "events",
    "tally",
]
