"""`samizdat run`'s leader-election flags (defaults, where the Lease lives, unsafe timings refused) and
`--hub-server`, which points kopf and samizdat's own hub client at one hub site's API server."""

from __future__ import annotations

from pathlib import Path

import kopf
import pytest
from kopf._core.intents.causes import Activity
from kopf._core.intents.registries import SmartOperatorRegistry

from samizdat.app import cli
from samizdat.remote.clusters import kubeconfig
from samizdat.app.commands import run
from samizdat.app.handlers import startup
from samizdat.core.leadership import Election, Timing

SITE_A = "https://10.1.0.10:6443"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def parse(*argv: str, service_account: Path = Path("/nonexistent")) -> Election:
    chosen = run.election(cli.build_parser().parse_args(["run", "--lease-name", "samizdat-leader", *argv]),
                          service_account=service_account)
    assert chosen is not None
    return chosen


def test_without_a_lease_name_there_is_no_election() -> None:
    assert run.election(cli.build_parser().parse_args(["run"])) is None


def test_defaults_take_over_in_about_ten_seconds() -> None:
    chosen = parse()
    assert chosen.timing == Timing(8, 5.0, 1.0)
    assert (chosen.namespace, chosen.name) == ("samizdat-system", "samizdat-leader")


def test_identities_are_unique_per_process() -> None:
    assert parse().identity != parse().identity
    assert parse("--identity", "site-a").identity == "site-a"


def test_the_lease_lives_in_the_pods_namespace(tmp_path: Path) -> None:
    (tmp_path / "namespace").write_text("ops\n")
    assert parse(service_account=tmp_path).namespace == "ops"
    assert parse("--lease-namespace", "elsewhere", service_account=tmp_path).namespace == "elsewhere"


def test_unsafe_timings_stop_the_operator_before_it_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--lease-duration", "5", "--renew-deadline", "5"]) == 2
    assert "must exceed the renew deadline" in capsys.readouterr().err


# ----- --hub-server: one hub site's own API server


def test_by_default_the_hub_is_what_the_pod_or_kubeconfig_says() -> None:
    assert cli.build_parser().parse_args(["run"]).hub_server is None


def test_the_hub_server_is_an_https_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.build_parser().parse_args(["run", "--hub-server", f"{SITE_A}/"]).hub_server == SITE_A
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--hub-server", "http://10.1.0.10:6443"])
    assert "must be an https:// URL" in capsys.readouterr().err


@pytest.mark.skipif((kubeconfig.SERVICE_ACCOUNT_DIR / "token").exists(), reason="in a pod: it would start")
def test_a_hub_server_outside_a_pod_stops_the_operator_before_it_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--hub-server", SITE_A]) == 2
    assert "--hub-server needs the pod's ServiceAccount" in capsys.readouterr().err


def test_kopf_logs_in_at_the_hub_server_with_the_pods_service_account(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text(CA)
    (tmp_path / "token").write_text("pod-token\n")
    (tmp_path / "namespace").write_text("samizdat-system")
    info = startup.login_at_own_site(memo=kopf.Memo(hub_server=SITE_A), settings=kopf.OperatorSettings(),
                                     service_account=tmp_path)
    assert (info.server, info.token, info.ca_data, info.default_namespace) == (SITE_A, "pod-token", CA,
                                                                             "samizdat-system")
    (tmp_path / "token").write_text("rotated-token\n")  # kopf logs in again after a 401
    assert startup.login_at_own_site(memo=kopf.Memo(hub_server=SITE_A), settings=kopf.OperatorSettings(),
                                     service_account=tmp_path).token == "rotated-token"


def test_with_a_hub_server_kopfs_only_login_is_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))  # kopf would log in from it (or the Service)
    registry = SmartOperatorRegistry()
    kopfs = [handler.fn for handler in registry._activities.get_handlers(activity=Activity.AUTHENTICATION)]
    assert kopfs and startup.login_at_own_site not in kopfs
    run.log_in_at_own_site(registry)
    logins = registry._activities.get_handlers(activity=Activity.AUTHENTICATION)
    assert [handler.fn for handler in logins] == [startup.login_at_own_site]
