"""The fleet and its members over fake member APIs (see `support.fleet`): fences after a heal, censorship
seen in the watches, settling after a restart, renewed credentials, and losses that read the same while
they last."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from samizdat.app.handlers import credentials, memberclusters
from samizdat.app.handlers.reconcile import reconcile
from samizdat.core import health
from samizdat.core.model import CensorshipKind, FailoverReason, Phase
from samizdat.remote.clusters import errors, resources
from samizdat.remote.clusters.probing import Probe
from samizdat.remote.fleet import Fleet, MemberSettings
from samizdat.remote.fleet import fleet as fleet_module
from samizdat.core.tampering import Censorship
from support.fleet import KUBECONFIG, UID, World, holders, member_cluster, reconciled, settle, workload, world

__all__ = ["world"]  # the fixture, used by name


async def test_a_healed_member_is_fenced_before_its_old_copy_counts(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    victim = sorted(holders(world))[0]
    world.lose(victim)
    await reconciled(world, workload())

    world.heal(victim)
    assert victim not in world.fleet.current(UID), "back, but not fenced yet: its copy must not count"
    assert not world.fleet.is_fenced(victim)
    await settle()

    assert world.members[victim].erased, "the fence deleted the copy the latest decision no longer wants"
    assert world.fleet.is_fenced(victim) and victim not in holders(world)
    assert sum(world.fleet.current(UID).values()) == 2, "no rule exceeded after the heal"
    again = await reconcile(workload(), world.fleet)
    assert again.changes == () and not again.lost


def _scaled_to_zero(body: dict[str, Any]) -> dict[str, Any]:
    body["spec"]["replicas"] = 0
    return body


def _image_swapped(body: dict[str, Any]) -> dict[str, Any]:
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "censor/llm:1"
    return body


@pytest.mark.parametrize(("event", "change", "kind"), [
    pytest.param("DELETED", lambda body: body, CensorshipKind.OBJECT_DELETED, id="copy-deleted"),
    pytest.param("MODIFIED", _scaled_to_zero, CensorshipKind.SCALED_TO_ZERO, id="scaled-to-zero"),
    pytest.param("MODIFIED", _image_swapped, CensorshipKind.SPEC_ALTERED, id="image-swapped"),
])
async def test_censorship_in_the_copy_stream_quarantines_and_moves_replicas(
    world: World, event: str, change: Any, kind: CensorshipKind,
) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    censor = sorted(holders(world))[0]
    seen = world.fleet.copies_of(UID)[censor].body

    world.members[censor].observed(resources.DEPLOYMENTS, event, change(copy.deepcopy(seen)))

    state = world.fleet.state(censor)
    assert state is not None and state.health.phase is Phase.QUARANTINED
    assert state.censorship is not None and state.censorship.kind is kind
    outcome = await reconcile(workload(), world.fleet)
    assert outcome.lost[censor].reason is FailoverReason.CENSORING
    assert outcome.decision is not None and censor not in outcome.decision.assignments
    assert sum(outcome.decision.assignments.values()) == 2
    now = datetime.now(UTC)
    standing = credentials.standing(KUBECONFIG)
    status = memberclusters.build_status(member_cluster(censor), state, now,
                                         credentials.observe(standing, now.timestamp(), 0.8), None)
    assert status["phase"] == "Quarantined" and status["censorshipEvidence"]["kind"] == kind.value
    assert {c["type"]: c["status"] for c in status["conditions"]}["Censoring"] == "True"


@pytest.mark.parametrize(("change", "kind"), [
    pytest.param(None, CensorshipKind.OBJECT_DELETED, id="copy-deleted"),
    pytest.param(_scaled_to_zero, CensorshipKind.SCALED_TO_ZERO, id="scaled-to-zero"),
    pytest.param(_image_swapped, CensorshipKind.SPEC_ALTERED, id="image-swapped"),
])
async def test_censorship_done_while_a_watch_was_broken_is_found_in_the_listing_after(
    world: World, change: Any, kind: CensorshipKind,
) -> None:
    """A reset or half-open link breaks the watch; the member's admin acts in the gap, so no event ever
    tells; the listing that follows the reconnect must."""
    await world.connect()
    await reconcile(workload(), world.fleet)
    censor = sorted(holders(world))[0]
    seen = world.fleet.copies_of(UID)[censor].body
    others = tuple(c.body for c in world.members[censor].copies.values() if c.body is not seen)
    listed = others if change is None else (*others, change(copy.deepcopy(seen)))

    world.members[censor].listed(resources.DEPLOYMENTS, listed)

    state = world.fleet.state(censor)
    assert state is not None and state.health.phase is Phase.QUARANTINED
    assert state.censorship is not None and state.censorship.kind is kind


async def test_a_copy_samizdat_deleted_while_the_watch_was_broken_is_no_censorship(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    holder = sorted(holders(world))[0]
    member = world.members[holder]
    member.watching = False
    await member.delete_copy(world.fleet.copies_of(UID)[holder])  # its DELETED event lost with the watch
    assert UID in member.copies

    member.listed(resources.DEPLOYMENTS, ())

    assert member.health.phase is Phase.READY and member.censorship is None
    assert UID not in member.copies


async def test_reconciles_share_one_snapshot_until_something_changes(world: World) -> None:
    await world.connect()
    first = world.fleet.snapshot()
    await reconcile(workload(), world.fleet)  # writes copies: the members' views change
    placed = world.fleet.snapshot()
    assert placed is not first
    assert world.fleet.snapshot() is placed, "nothing changed: the same snapshot, and its placement index"
    world.fleet.alliances_changed()
    assert world.fleet.snapshot() is not placed


def test_settling_ends_after_a_bound_even_if_a_member_never_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    fleet = Fleet(MemberSettings())
    assert fleet.settling(["never"])
    clock[0] += fleet_module.SETTLE_S + 1
    assert not fleet.settling(["never"])


async def test_a_member_disconnected_while_its_copy_is_removed_is_reported_unreachable(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    name, copy = sorted(world.fleet.copies_of(UID).items())[0]
    await world.fleet.disconnect(name)
    with pytest.raises(errors.MemberUnreachable):
        await world.fleet.remove(name, copy)


async def test_a_renewed_token_keeps_the_member_connected_and_its_replicas_counted(world: World) -> None:
    await world.connect()
    member = world.members["de"]
    counted = world.fleet.countable("de")
    assert world.fleet.use_credentials("de", KUBECONFIG.replace("token: t", "token: renewed"))
    assert world.members["de"] is member and member.credentials.token == "renewed"
    assert world.fleet.countable("de") == counted, "a renewal must not uncount the member's replicas"
    moved = KUBECONFIG.replace("token: t", "token: renewed").replace("127.0.0.1:6443", "127.0.0.1:7443")
    assert not world.fleet.use_credentials("de", moved), "a new server needs a new connection"
    assert not world.fleet.use_credentials("nobody", KUBECONFIG)



async def test_a_member_whose_views_cannot_be_listed_is_never_ready_and_says_why(
    world: World, caplog: pytest.LogCaptureFixture,
) -> None:
    await world.connect()
    member = world.members["jp"]
    garbage = errors.MemberMalformed("jp", "reply is not JSON")
    with caplog.at_level("DEBUG", logger="samizdat.remote.fleet.member"):
        for _ in range(5):  # the pods informer retrying, with its probe answering fine meanwhile
            member.liveness.view_failed("pods", garbage)
            member.answers()
            world.clock.now += 1
    state = world.fleet.state("jp")
    assert state is not None and (state.health.phase, state.health.reason) == (Phase.DOWN, "ViewMalformed")
    assert state.health.message == "pods: reply is not JSON" and not state.ready
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "pods cannot be listed" in warnings[0].getMessage(), "logged once, not per retry"
    now = datetime.now(UTC)
    status = memberclusters.build_status(member_cluster("jp"), state, now,
                                         credentials.observe(credentials.standing(KUBECONFIG), now.timestamp(), 0.8),
                                         None)
    assert status["freeGPUs"] is None, "a member that does not count shows no free GPUs: they may be stale"
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Ready"] == "ViewMalformed"

    member.listed(resources.PODS, ())
    member.liveness.view_works("pods")
    world.heal("jp")
    state = world.fleet.state("jp")
    assert state is not None and state.health.phase is Phase.READY


async def test_a_loss_quotes_censorship_evidence_only_to_the_workload_it_concerns(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    censor = sorted(holders(world))[0]
    other = "ffff0000-0000-4000-8000-000000000000"
    world.members[censor].liveness.censored(Censorship(
        CensorshipKind.OBJECT_DELETED, "Deployment someone-else-1 deleted", other))
    lost = world.fleet.losses(UID)[censor]
    assert lost.why == f"quarantined: the member censors (ObjectDeleted); its evidence is on MemberCluster {censor}"
    assert "someone-else" not in lost.why
    assert world.fleet.losses(other) == {}, "the other workload held no replicas here"


async def test_a_loss_reads_the_same_for_as_long_as_it_lasts(world: World) -> None:
    await world.connect()
    await reconcile(workload(), world.fleet)
    victim = sorted(holders(world))[0]
    world.lose(victim)
    first = world.fleet.losses(UID)[victim].why
    # on its way back the member says other things: its API not ready yet, then views refused
    for failure, message in ((health.Failure.REFUSED, "GET /readyz: connection lost: connection reset by peer"),
                             (health.Failure.ERROR, "GET /readyz: not ready (etcd failing)")):
        world.clock.now += 1
        world.members[victim].probed(Probe(victim, False, 0.5, failure, message))
        assert world.fleet.losses(UID)[victim].why == first == "down (ProbeRefused)"


async def test_a_members_probe_round_trip_reaches_the_snapshot_only_when_it_moves(world: World) -> None:
    await world.connect()
    member = world.members["de"]
    for latency in (0.030, 0.032, 0.031):
        member.probed(Probe("de", True, latency, None, "ok"))
    first = world.fleet.snapshot()
    assert {m.name: m.probe_rtt_ms for m in first.members}["de"] == pytest.approx(31, abs=1)
    member.probed(Probe("de", True, 0.033, None, "ok"))
    assert world.fleet.snapshot() is first, "a move within 20 % remakes no snapshot"
    for _ in range(16):
        member.probed(Probe("de", True, 0.300, None, "ok"))
    assert {m.name: m.probe_rtt_ms for m in world.fleet.snapshot().members}["de"] == pytest.approx(300)
    result = await reconcile(workload(maxProbeRTTMs=100), world.fleet)
    assert result.decision is not None and result.decision.feasible
    assert "de" not in result.decision.assignments, "the far member takes no replica"
