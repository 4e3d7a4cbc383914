"""A MemberCluster's status from its live state (pure): the link as measured, and why it is Suspect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from samizdat.app.handlers import memberclusters
from samizdat.core import health, model
from samizdat.core.health import Failure
from samizdat.core.health.link import LinkFigures
from samizdat.core.model import MemberClusterConditionType as Type
from samizdat.core.model import Phase
from samizdat.core.report.conditions import Observed
from samizdat.remote.clusters.probing import Probe
from samizdat.remote.fleet import MemberState

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
FAR = LinkFigures(rtt_p50_s=0.2914, rtt_p99_s=1.3, probe_loss=0.0468, deadline_s=1.95, silence_s=2.8)


def status(spec: dict[str, Any], state: health.MemberHealth, probe: Probe | None) -> dict[str, Any]:
    member = MemberState(name="fr", health=state, last_probe=probe, link=FAR, censorship=None, shapes=(),
                         total_gpus=8, ready=False)
    credential = Observed(Type.CREDENTIALS_EXPIRING, False, "NotExpiring", "static credential")
    return memberclusters.build_status(model.MemberCluster.model_validate(spec), member, NOW, credential, None)


def test_status_shows_the_link_as_measured_and_why_the_member_is_suspect(member_cluster: Any) -> None:
    suspect = health.MemberHealth(
        phase=Phase.SUSPECT, failing_since=1.0, last_failure=Failure.TIMEOUT, reason="ProbeTimeout",
        message="no answer within 2.0s; last probe: GET /readyz: no answer within 1.9s",
    )
    unanswered = Probe("fr", False, 1.95, Failure.TIMEOUT, "GET /readyz: no answer within 1.9s")
    written = status(member_cluster("fr", "FR"), suspect, unanswered)
    assert written["phase"] == "Suspect"
    assert written["link"] == {"rttP50Ms": 291.4, "rttP99Ms": 1300.0, "probeLoss": 0.047,
                               "probeDeadlineMs": 1950.0, "silenceAllowedMs": 2800.0}
    reachable = next(c for c in written["conditions"] if c["type"] == "Reachable")
    assert reachable["status"] == "False" and reachable["reason"] == "ProbeTimeout"
    assert reachable["message"].startswith("no answer within 2.0s")


def test_a_member_never_probed_shows_no_link(member_cluster: Any) -> None:
    written = status(member_cluster("fr", "FR"), health.MemberHealth(), None)
    assert written["phase"] == "Pending" and "link" not in written
