"""Operator-wide setup: kopf's settings, the fleet, the hub client and the leader election, shared
through kopf's memo, and the indexes the fleet reads (every live workload uid, the user's Alliance
objects).

With an election (`--lease-name`), every operator runs kopf standalone and keeps its member connections
and views warm; only the leader's writes get through (`clusters.writing` asks the candidate), and the
handlers skip what would only be refused: reconciling, status, Events. kopf itself still adds its
finalizer on standbys too (the same finalizer for all: harmless); samizdat's handlers are daemons and a
deletion handler, which on a standby neither finishes nor fails but waits until it leads or the object is
gone, so kopf records no handler progress there and only the leader's removes the finalizer, after
deleting the copies. kopf's own Events (a handler's warnings and errors) are posted only while leading.

With `--hub-server` (one chart release per hub site), both kopf and samizdat's own hub client talk to
that API server, the site's own, with the pod's ServiceAccount, instead of the `kubernetes` Service
whose endpoints may be any site's: `login_at_own_site` is kopf's login then.

What the handlers share lives in kopf's memo (copied per object, its values shared), read through one
typed door: `shared(memo)`, a `Memo` whose fields say what each is.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any, cast

import kopf

from samizdat.remote import metrics
from samizdat.core import leadership, model
from samizdat.remote.clusters import kubeconfig
from samizdat.remote.clusters import recording
from samizdat.remote.clusters.client import ClusterClient
from samizdat.remote.clusters.electing import Candidate
from samizdat.remote.fleet import Fleet, MemberSettings
from samizdat.remote import hub

STANDBY_POLL_S = 0.5  # how often a standby looks whether it leads now (a takeover waits no longer)


class Memo(kopf.Memo):
    """kopf's memo as samizdat fills it: `samizdat run` gives the settings, `configure` the rest."""

    # from `samizdat run` (absent in a bare kopf run: read with `get` and a default)
    quarantine_seconds: float
    metrics_port: int
    renew_credentials_at: float
    election: leadership.Election | None
    hub_server: str | None
    # made by `configure`
    hub: ClusterClient
    candidate: Candidate | None
    standing: asyncio.Task[None]  # the election, while there is one
    speaking: asyncio.Task[None]  # kopf's posting switched with the lead, while there is an election
    fleet: Fleet
    recorder: recording.Recorder
    dns_applied: dict[str, int]  # workload uid -> the DNSEndpoint generation external-dns last applied


def shared(memo: kopf.Memo) -> Memo:
    """The memo with its fields typed: kopf hands handlers its own class, a copy of the one `samizdat
    run` made (a `Memo`), or whatever a test made; every one is read by attribute alike."""
    return cast(Memo, memo)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    memo = shared(memo)
    # Status belongs to samizdat's own fields only; kopf keeps its bookkeeping in annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="samizdat.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="samizdat.io", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "samizdat.io/cleanup"
    # Per-object log lines become Events only when they warn (kopf's own); samizdat records its decisions
    # itself (hub.say), so that a repeat counts on one Event.
    settings.posting.level = logging.WARNING
    # Events say samizdat did it (`From:` in `kubectl describe`), and which replica (the pod's hostname).
    settings.posting.reporting_component = hub.REPORTING_COMPONENT
    settings.posting.reporting_instance = socket.gethostname()[:128]
    settings.posting.event_name_prefix = "samizdat-"
    settings.networking.request_timeout = 30
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # With peering (HA), a replica killed while active keeps its claim until it lapses: 10 s instead of
    # kopf's 60 lets a standby take over within seconds, for one keep-alive PATCH every few seconds.
    settings.peering.lifetime = 10
    memo.hub = hub.connect(memo.get("hub_server"))
    election = memo.get("election")
    memo.candidate = Candidate.standing_for(memo.hub, election) if election is not None else None
    if memo.candidate is not None:
        memo.hub.authority = memo.candidate  # status writes to the hub are the leader's too
        memo.standing = asyncio.create_task(memo.candidate.run(), name="leader-election")
        settings.posting.enabled = False
        memo.speaking = asyncio.create_task(_post_only_while_leading(settings, memo.candidate), name="kopf-posting")
    memo.fleet = Fleet(MemberSettings(quarantine_s=memo.get("quarantine_seconds", 300.0), authority=memo.candidate))
    memo.recorder = hub.recorder(memo.hub)
    memo.dns_applied = {}
    port = memo.get("metrics_port", 0)
    if port:
        metrics.serve(port)


def login_at_own_site(
    memo: kopf.Memo, settings: kopf.OperatorSettings, service_account: Path = kubeconfig.SERVICE_ACCOUNT_DIR,
    **_: Any,
) -> kopf.ConnectionInfo:
    """kopf's login with `--hub-server`: the pod's ServiceAccount (token and CA) at `memo.hub_server`.

    `samizdat run` registers it only then, since a login handler of ours replaces all of kopf's own
    (kubeconfig, in-cluster). kopf logs in again after a 401, so a rotated token is read then."""
    credentials = kubeconfig.from_service_account(root=service_account, server=shared(memo).hub_server)
    token = Path(credentials.token_file).read_text().strip() if credentials.token_file else None
    return kopf.ConnectionInfo(
        server=credentials.server, ca_data=credentials.ca_pem, token=token or None,
        default_namespace=credentials.namespace, trust_env=settings.networking.trust_env,
    )


async def _post_only_while_leading(settings: kopf.OperatorSettings, candidate: Candidate) -> None:
    """kopf posts its Events (a handler's warnings and errors) only from the leader: a standby decides
    nothing, and what it would say is noise at best, a write to the hub at worst."""
    while True:
        settings.posting.enabled = candidate.leading()
        await asyncio.sleep(STANDBY_POLL_S)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    memo = shared(memo)
    if memo.get("standing") is not None:
        memo.speaking.cancel()
        memo.standing.cancel()  # stops writing and releases the Lease, so a standby takes over at once
        await asyncio.gather(memo.speaking, memo.standing, return_exceptions=True)
    await memo.fleet.close()
    await memo.recorder.aclose()
    await memo.hub.aclose()


@kopf.index(model.GROUP, model.VERSION, "alliances")
def alliance_index(body: kopf.Body, name: str, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: dict(body)}


@kopf.index(model.GROUP, model.VERSION, "aiworkloads")
def workload_uids(uid: str, **_: Any) -> dict[str, bool]:
    """Every live AIWorkload uid, complete before any daemon starts: the orphan sweep relies on it."""
    return {uid: True}


def leading(memo: kopf.Memo) -> bool:
    """Whether this operator may write now: it leads the election, or there is none."""
    candidate = shared(memo).get("candidate")
    return candidate is None or candidate.leading()


def tracking_fleet(memo: kopf.Memo, handler_kwargs: dict[str, Any]) -> Fleet:
    """The fleet, reading kopf's indexes: the one place that hands them over. Indexes reach only
    handlers (by the names of their functions), and either kind of daemon may start first."""
    fleet = shared(memo).fleet
    fleet.track(workloads=handler_kwargs["workload_uids"], alliances=handler_kwargs["alliance_index"])
    return fleet
