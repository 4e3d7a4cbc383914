"""`samizdat join`/`unjoin` before any write: bad input is one line and exit 2; a dry run prints every object.

The clusters here are unreachable loopback ports or not there at all: everything tested happens before
a request would be sent, or is the refusal of the first one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from samizdat.app import cli
from samizdat.core import membership
from samizdat.app.commands import join

KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config",
    # port 1 on loopback: nothing listens there, so a connection is refused at once
    "clusters": [{"name": "m", "cluster": {"server": "https://127.0.0.1:1"}},
                 {"name": "h", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "admin", "user": {"token": "t"}}],
    "contexts": [{"name": "member-admin", "context": {"cluster": "m", "user": "admin"}},
                 {"name": "hub", "context": {"cluster": "h", "user": "admin"}}],
    "current-context": "hub",
}
FLAGS = ["--member-context", "member-admin", "--country", "DE", "--provider", "rhein-compute"]


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["join", "de-frankfurt", *FLAGS[:3], "XX", *FLAGS[4:]],
                 "--country 'XX' is not an ISO 3166-1 alpha-2 country code", id="unknown-country"),
    pytest.param(["join", "de-frankfurt", *FLAGS[:3], "de", *FLAGS[4:]], "(did you mean DE?)", id="lower-case"),
    pytest.param(["join", "De_Frankfurt", *FLAGS], "must be a DNS label", id="bad-name"),
    pytest.param(["join", "de-frankfurt", *FLAGS, "--token-lifetime", "60"], "at least 600", id="short-token"),
    pytest.param(["join", "de-frankfurt", "--member-context", "nope", *FLAGS[2:]],
                 "member context nope: context 'nope' is not defined", id="undefined-context"),
    pytest.param(["join", "de-frankfurt", *FLAGS],
                 "cannot reach the member context member-admin (https://127.0.0.1:1): cannot connect",
                 id="unreachable"),
    pytest.param(["join", "de-frankfurt", *FLAGS, "--member-server", "http://relay:8443"], "must be an https:// URL",
                 id="member-server-not-https"),
    pytest.param(["unjoin", "de-frankfurt", "--member-context", "member-admin"],
                 "cannot reach the hub context hub", id="unjoin-hub-unreachable"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert message in err


def test_a_dry_run_prints_every_object_and_contacts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["join", "de-frankfurt", *FLAGS, "--tee", "--token-lifetime", "3600", "--dry-run"]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [obj["kind"] for obj in objects]
    assert objects[:len(membership.member_objects())] == membership.member_objects()
    assert kinds[-4:] == ["Secret", "TokenRequest", "Secret", "MemberCluster"]
    assert objects[-3]["spec"]["expirationSeconds"] == 3600
    kubeconfig = yaml.safe_load(objects[-2]["stringData"]["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:1"
    assert kubeconfig["users"][0]["user"]["token"] == join.TOKEN_PLACEHOLDER
    assert objects[-1]["spec"]["jurisdiction"] == {"country": "DE"} and objects[-1]["spec"]["tee"] is True


def test_join_checks_every_right_it_uses_in_the_member() -> None:
    rights = {(access.verb, access.resource.plural, access.subresource) for access in join.member_rights()}
    for obj in membership.identity_objects():
        plural = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts"}.get(obj["kind"],
                                                                                      obj["kind"].lower() + "s")
        assert ("patch", plural, None) in rights and ("create", plural, None) in rights
    assert ("create", "serviceaccounts", "token") in rights


def test_the_kubectl_plugin_names_itself_in_help(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.argv", ["/usr/local/bin/kubectl-samizdat", "join", "--help"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: kubectl samizdat join")


def test_samizdat_may_reach_the_member_at_another_address_than_its_admin(capsys: pytest.CaptureFixture[str]) -> None:
    """`--member-server`: a relay or load balancer in front of the member (the sandbox's link proxies)."""
    assert cli.main(["join", "de-frankfurt", *FLAGS, "--member-server", "https://127.0.0.1:2", "--dry-run"]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    kubeconfig = yaml.safe_load(objects[-2]["stringData"]["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:2"
