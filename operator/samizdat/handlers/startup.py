"""Operator-wide setup: kopf's settings, the fleet and the hub client, shared through kopf's memo, and
the indexes the fleet reads (every live workload uid, the user's Alliance objects)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from samizdat import metrics, model
from samizdat.fleet import Fleet, MemberSettings
from samizdat.handlers import hub


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Status belongs to samizdat's own fields only; kopf keeps its bookkeeping in annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="samizdat.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="samizdat.io", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "samizdat.io/cleanup"
    # Per-object log lines become Events only when they warn; decisions are posted explicitly.
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = 30
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # With peering (HA), a replica killed while active keeps its claim until it lapses: 10 s instead of
    # kopf's 60 lets a standby take over within seconds, for one keep-alive PATCH every few seconds.
    settings.peering.lifetime = 10
    memo.fleet = Fleet(MemberSettings(quarantine_s=memo.get("quarantine_seconds", 300.0)))
    memo.hub = hub.connect()
    port = memo.get("metrics_port", 0)
    if port:
        metrics.serve(port)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await memo.fleet.close()
    await memo.hub.aclose()


@kopf.index(model.GROUP, model.VERSION, "alliances")
def alliance_index(body: kopf.Body, name: str, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: dict(body)}


@kopf.index(model.GROUP, model.VERSION, "aiworkloads")
def workload_uids(uid: str, **_: Any) -> dict[str, bool]:
    """Every live AIWorkload uid, complete before any daemon starts: the orphan sweep relies on it."""
    return {uid: True}


def tracking_fleet(memo: kopf.Memo, handler_kwargs: dict[str, Any]) -> Fleet:
    """The fleet, reading kopf's indexes: the one place that hands them over. Indexes reach only
    handlers (by the names of their functions), and either kind of daemon may start first."""
    fleet: Fleet = memo.fleet
    fleet.track(workloads=handler_kwargs["workload_uids"], alliances=handler_kwargs["alliance_index"])
    return fleet
