"""MemberCluster: one kopf daemon per member connects it, and keeps its status as its health changes.

The daemon reads the member's kubeconfig from the hub Secret, hands it to the fleet (which probes and
watches the member), and then writes status whenever the member's phase, conditions or GPU inventory
change. A missing Secret or a broken kubeconfig becomes a condition and an Event, and is retried with a
back-off; it never crashes the operator.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pydantic

from samizdat.core import health, membership, model
from samizdat.core.health.link import LinkFigures
from samizdat.remote import metrics
from samizdat.remote.clusters import errors, kubeconfig
from samizdat.core.report.events import PHASE_REASONS, EventType, MemberReason
from samizdat.remote.fleet import Fleet, MemberState
from samizdat.app.handlers import credentials, startup
from samizdat.core.report import conditions
from samizdat.remote import hub
from samizdat.core.report.conditions import Observed
from samizdat.core.model import MemberClusterConditionType as Type
from samizdat.core.model import Phase

STATUS_REFRESH_S = 30.0  # the probe time and latency are refreshed at least this often
RETRY_CONNECT_S = (1.0, 30.0)  # back-off bounds when the Secret or kubeconfig is unusable
SECRET_RECHECK_S = 10.0  # how often the kubeconfig Secret is re-read for new credentials
# ... and while the member is not Ready: a member whose admin revoked our credential and then re-ran
# `samizdat join` must be back in a second, for until then its copies are neither counted nor fenced
# (a chaos run saw a limit broken for 10.5 s after such a heal). One GET of the hub per troubled member.
TROUBLED_SECRET_RECHECK_S = 1.0


def parse(body: kopf.Body) -> model.MemberCluster:
    return model.MemberCluster.model_validate(dict(body))


def build_status(
    spec: model.MemberCluster, member: MemberState, now: datetime, credential: Observed[Type],
    credential_status: model.MemberCredentials | None,
) -> dict[str, Any]:
    """The member's status from its live health, inventory and credential (pure: the caller writes it and
    its metrics)."""
    state = member.health
    probe = member.last_probe
    shapes = member.shapes
    reachable = probe.ok if probe is not None else None
    censoring = member.censorship
    ready = member.ready
    if ready:
        why_not = ("Ready", "member counts for placement")
    elif health.schedulable(state.phase):
        why_not = ("Syncing", "views of the member not complete yet, or its stale copies being fenced")
    else:
        why_not = (state.reason, state.message)
    observed = [
        Observed(Type.READY, ready, *why_not),
        Observed(Type.REACHABLE, reachable, "ProbeSucceeded" if reachable else state.reason,
                 f"last probe {probe.latency_s * 1000:.0f} ms" if probe is not None and probe.ok else state.message),
        Observed(Type.CENSORING, censoring is not None,
                 censoring.kind.value if censoring else "NoEvidence",
                 censoring.message if censoring else "no tampering seen"),
        credential,
    ]
    if member.fence is not None:  # with an election: whether the leader's writes found a working fence
        fence = member.fence
        observed.append(
            Observed(Type.FENCED, True, "FenceRaised", f"fence epoch {fence.epoch}") if fence.working
            else Observed(Type.FENCED, False, "NoWorkingFence", f"nothing is written here: {fence.broken}")
            if fence.broken is not None
            else Observed(Type.FENCED, None, "NotRaisedYet", "raised before the leader's first write here")
        )
    quarantined_until = None
    if state.phase is Phase.QUARANTINED and state.quarantined_until is not None:
        quarantined_until = now + timedelta(seconds=state.quarantined_until - time.monotonic())
    status = model.MemberClusterStatus(
        conditions=conditions.merge(spec.status.conditions, observed, now, spec.metadata.generation),
        phase=state.phase,
        quarantined_until=quarantined_until,
        last_probe_latency_ms=round(probe.latency_s * 1000, 1) if probe is not None and probe.ok else None,
        link=_link(member.link) if probe is not None else None,
        censorship_evidence=model.CensorshipEvidence(kind=censoring.kind, message=censoring.message, time=now)
        if censoring else None,
        credentials=credential_status,
        gpu_inventory=tuple(
            model.GPUNodeShape(product=s.product, memory_mib=s.memory_mib, tee=s.tee, free_gpus=s.free_gpus,
                               nodes=s.nodes, tee_observed=s.tee_observed)
            for s in shapes
        ),
        total_gpus=member.total_gpus,
        # Only a member that counts has a current free count; any other figure may be stale.
        free_gpus=sum(s.free_gpus * s.nodes for s in shapes) if ready else None,
        observed_generation=spec.metadata.generation,
    )
    dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    # A merge patch keeps what it does not mention: clear what no longer applies explicitly.
    for key in ("quarantinedUntil", "censorshipEvidence", "lastProbeLatencyMs", "credentials", "freeGPUs"):
        dumped.setdefault(key, None)
    return dumped


def _link(figures: LinkFigures) -> model.MemberLink:
    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds * 1000, 1)
    return model.MemberLink(
        rtt_p50_ms=ms(figures.rtt_p50_s), rtt_p99_ms=ms(figures.rtt_p99_s), probe_loss=round(figures.probe_loss, 3),
        probe_deadline_ms=round(figures.deadline_s * 1000, 1), silence_allowed_ms=round(figures.silence_s * 1000, 1),
    )


def _comparable(status: dict[str, Any]) -> dict[str, Any]:
    """Status without what changes on every probe, to decide whether a write is worth it."""
    return {k: v for k, v in status.items() if k not in ("lastProbeTime", "lastProbeLatencyMs", "link", "conditions")} | {
        "conditions": [(c["type"], c["status"], c["reason"]) for c in status.get("conditions", [])]
    }


@kopf.index(model.GROUP, model.VERSION, "memberclusters")
def member_names(name: str, **_: Any) -> dict[str, bool]:
    """Every MemberCluster, complete before any daemon starts: workloads wait for them to settle."""
    return {name: True}


@kopf.daemon(model.GROUP, model.VERSION, "memberclusters", cancellation_timeout=5.0)
async def run_member(
    body: kopf.Body, name: str, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: kopf.Logger, **kwargs: Any
) -> None:
    fleet = startup.tracking_fleet(memo, kwargs)  # the fence's orphan sweep needs every live workload
    delay = RETRY_CONNECT_S[0]
    connected = False
    connected_with = ""
    try:
        while not stopped:
            try:
                spec = parse(body)
            except pydantic.ValidationError as error:
                hub.say(startup.shared(memo).recorder, body, "Warning", MemberReason.INVALID_SPEC, str(error))
                await stopped.wait(RETRY_CONNECT_S[1])
                continue
            if not connected:
                try:
                    ref = spec.spec.kubeconfig_secret_ref
                    text = await hub.read_kubeconfig(startup.shared(memo).hub, ref.namespace, ref.name, ref.key)
                    server = await fleet.connect(spec, text)
                    connected, connected_with = True, text
                    hub.say(startup.shared(memo).recorder, body, "Normal", MemberReason.CONNECTING, f"connecting to {server}")
                    delay = RETRY_CONNECT_S[0]
                except (errors.MemberError, kubeconfig.KubeconfigError) as error:
                    await _report_unusable(memo, body, spec, error)
                    await stopped.wait(delay)
                    delay = min(delay * 2, RETRY_CONNECT_S[1])
                    continue
            await _follow(fleet, name, body, memo, stopped, logger, connected_with)
            connected = False  # the kubeconfig changed: connect again with the new one
    finally:
        await fleet.disconnect(name)


async def _new_credentials(memo: kopf.Memo, spec: model.MemberCluster, connected_with: str) -> str | None:
    """The member's kubeconfig if it differs from the one the member is connected with, else None."""
    ref = spec.spec.kubeconfig_secret_ref
    try:
        text = await hub.read_kubeconfig(startup.shared(memo).hub, ref.namespace, ref.name, ref.key)
    except errors.MemberError:
        return None
    return text if text != connected_with else None


async def _follow(
    fleet: Fleet, name: str, body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped,
    logger: kopf.Logger, connected_with: str,
) -> None:
    """Write status on every change of the member until the daemon stops or its kubeconfig changes."""
    changed = fleet.subscribe(name, member=True)
    written: dict[str, Any] | None = None
    last_write = last_secret_check = 0.0
    last_phase: Phase | None = None
    last_fence: str | None = None  # why the member's fence did not work, as last announced
    recheck = SECRET_RECHECK_S
    try:
        while not stopped:
            changed.clear()
            spec = parse(body)
            # Renewed, rotated or re-issued credentials (e.g. after a revocation) take effect without a
            # restart: a new token goes to the live client; a new server or CA needs a new connection.
            if time.monotonic() - last_secret_check > recheck:
                last_secret_check = time.monotonic()
                text = await _new_credentials(memo, spec, connected_with)
                if text is not None and _uses(fleet, name, text):
                    connected_with = text
                elif text is not None:
                    hub.say(startup.shared(memo).recorder, body, "Normal", MemberReason.CREDENTIALS_CHANGED, "reconnecting")
                    await fleet.disconnect(name)
                    return
            fleet.update_spec(spec)
            member = fleet.state(name)
            if member is None:
                return  # disconnected under us: connect again
            recheck = SECRET_RECHECK_S if member.health.phase is Phase.READY else TROUBLED_SECRET_RECHECK_S
            now = datetime.now(UTC)
            standing = credentials.standing(connected_with)
            renew_at = memo.get("renew_credentials_at", membership.DEFAULT_RENEW_AT)
            renewal = credentials.standings(memo).get(name)
            if renewal is not None and renewal.claims == standing.claims:
                standing = renewal  # the renewal daemon knows how its attempts went
            status = build_status(spec, member, now, credentials.observe(standing, now.timestamp(), renew_at),
                                  credentials.status(standing, renew_at))
            metrics.member_gpus(name, status["totalGPUs"], status["freeGPUs"])
            if not startup.leading(memo):
                written = None  # a standby writes neither status nor Events; on taking over it writes afresh
            else:
                if member.health.phase is not last_phase:
                    _announce(memo, body, member.health, last_phase)
                    last_phase = member.health.phase
                broken = member.fence.broken if member.fence is not None else None
                if broken != last_fence:
                    _announce_fence(memo, body, broken)
                    last_fence = broken
            stale = time.monotonic() - last_write > STATUS_REFRESH_S
            if startup.leading(memo) and (written is None or stale or _comparable(status) != _comparable(written)):
                status["lastProbeTime"] = now.isoformat()
                try:
                    await hub.patch_status(startup.shared(memo).hub, "memberclusters", name, None, status)
                    written, last_write = status, time.monotonic()
                except errors.MemberError as error:
                    logger.warning("cannot write status of member %s: %s", name, error)
            try:
                await asyncio.wait_for(changed.wait(), timeout=recheck)
            except TimeoutError:
                pass
            await asyncio.sleep(0.2)  # coalesce bursts of pod and node events into one write
    finally:
        fleet.unsubscribe(name, member=True)


def _uses(fleet: Fleet, name: str, text: str) -> bool:
    try:
        return fleet.use_credentials(name, text)
    except kubeconfig.KubeconfigError:
        return False  # reconnecting reports it


def _announce(memo: kopf.Memo, body: kopf.Body, state: health.MemberHealth, before: Phase | None) -> None:
    """One Event per phase transition, in the member's own words (the probe's or a view's failure)."""
    phase = state.phase
    if before is None and phase is Phase.PENDING:
        return
    message = f"{before.value if before else 'New'} -> {phase.value}: {state.message}"
    kind: EventType = "Warning" if health.lost(phase) or health.unreachable(phase) else "Normal"
    hub.say(startup.shared(memo).recorder, body, kind, PHASE_REASONS[phase], message)


def _announce_fence(memo: kopf.Memo, body: kopf.Body, broken: str | None) -> None:
    """A Warning when the member's fence stops working (the leader writes nothing there), a Normal
    Event when it works again."""
    if broken is not None:
        hub.say(startup.shared(memo).recorder, body, "Warning", MemberReason.NO_WORKING_FENCE, f"nothing is written to this member: {broken}")
    else:
        hub.say(startup.shared(memo).recorder, body, "Normal", MemberReason.FENCE_WORKS, "the member's fence works again")


async def _report_unusable(memo: kopf.Memo, body: kopf.Body, spec: model.MemberCluster, error: Exception) -> None:
    reason = (MemberReason.KUBECONFIG_INVALID if isinstance(error, kubeconfig.KubeconfigError)
              else MemberReason.SECRET_UNAVAILABLE)
    hub.say(startup.shared(memo).recorder, body, "Warning", reason, str(error))
    now = datetime.now(UTC)
    status = model.MemberClusterStatus(
        phase=Phase.PENDING,
        conditions=conditions.merge(spec.status.conditions, [
            Observed(Type.READY, False, reason, str(error)),
            Observed(Type.REACHABLE, None, reason, "not connected"),
            Observed(Type.CENSORING, False, "NoEvidence", "not connected"),
        ], now, spec.metadata.generation),
        observed_generation=spec.metadata.generation,
    )
    try:
        await hub.patch_status(startup.shared(memo).hub, "memberclusters", spec.metadata.name, None,
                               status.model_dump(mode="json", by_alias=True, exclude_none=True))
    except errors.MemberError:
        pass  # the hub itself is unwell; kopf will report that
