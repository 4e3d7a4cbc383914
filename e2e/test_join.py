"""`samizdat join` and `unjoin` on the sandbox, and credentials that the operator renews before they expire.

One member (fr-paris, alone in its country) is taken out and brought back, in order: bad flags leave
nothing; `unjoin` re-places its replicas before removing every trace; a fresh `join` makes it Ready and
takes a workload; a second `join` rotates the credential so the member refuses the old token; a token of
the API's minimum lifetime is renewed by the operator within a minute (the session's operator runs with
`--renew-credentials-at 0.05`) while the member stays Ready; a renewal the member refuses shows as
`CredentialsExpiring` before the token expires. The module leaves the member joined as it found it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from e2e.operator import OperatorProcess
from e2e.sandbox import members
from e2e.sandbox.launcher import HUB, kubeconfig_yaml
from e2e.sandbox.world import Sandbox
from e2e.waiting import eventually
from e2e.workloads import aiworkload, apply_manifest, copies, delete_workload, wait_running, wait_settled
from samizdat.core import membership

VICTIM = "fr-paris"
RENEWAL_LIFETIME_S = membership.MIN_TOKEN_LIFETIME_S

pytestmark = pytest.mark.timeout(300)


def run(sandbox: Sandbox, argv: list[str], *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=sandbox.join_environment(*names), capture_output=True, text=True, timeout=180)


def join(sandbox: Sandbox, *extra: str) -> subprocess.CompletedProcess[str]:
    result = run(sandbox, sandbox.join_command(VICTIM, "--timeout", "90", *extra), VICTIM)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def unjoin(sandbox: Sandbox) -> subprocess.CompletedProcess[str]:
    samizdat = str(Path(sandbox.join_command(VICTIM)[0]))
    argv = [samizdat, "unjoin", VICTIM, "--member-context", VICTIM, "--hub-context", HUB, "--timeout", "90"]
    return run(sandbox, argv, VICTIM)


def member_cluster(sandbox: Sandbox, name: str = VICTIM) -> dict[str, Any] | None:
    result = sandbox.kubectl(HUB).run("get", "memberclusters", name, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def condition(member: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for item in (member or {}).get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return dict(item)
    return {}


def ready(sandbox: Sandbox) -> bool:
    return condition(member_cluster(sandbox), "Ready").get("status") == "True"


def token(sandbox: Sandbox) -> str:
    return str(yaml.safe_load(sandbox.identity_kubeconfig(VICTIM))["users"][0]["user"]["token"])


def member_api(sandbox: Sandbox, bearer: str) -> int:
    """The status code of one read with `bearer` against the victim's own API server."""
    return httpx.get(f"{sandbox.server(VICTIM)}/api/v1/nodes?limit=1", verify=sandbox.launcher.tls_context(),
                     headers={"Authorization": f"Bearer {bearer}"}, timeout=5).status_code


def samizdat_objects(sandbox: Sandbox) -> list[str]:
    """Every object of samizdat's left in the victim, named."""
    kubectl = sandbox.kubectl(VICTIM)
    found = []
    for obj in membership.identity_objects():
        metadata = obj["metadata"]
        scope = ["-n", metadata["namespace"]] if "namespace" in metadata else []
        if kubectl.run("get", obj["kind"].lower(), metadata["name"], *scope, check=False).returncode == 0:
            found.append(f"{obj['kind']} {metadata['name']}")
    credentials = kubectl.get_json("secrets", "-n", members.SYSTEM_NAMESPACE, "-l", membership.CREDENTIAL_SELECTOR)
    found += [f"Secret {item['metadata']['name']}" for item in credentials["items"]]
    return found


def credential_secrets(sandbox: Sandbox) -> set[str]:
    items = sandbox.kubectl(VICTIM).get_json("secrets", "-n", members.SYSTEM_NAMESPACE, "-l",
                                              membership.CREDENTIAL_SELECTOR)["items"]
    return {item["metadata"]["name"] for item in items}


def hub_events(sandbox: Sandbox, reason: str) -> list[dict[str, Any]]:
    events = sandbox.kubectl(HUB).get_json("events", "-A", "--field-selector", f"involvedObject.name={VICTIM}")
    return [event for event in events["items"] if event["reason"] == reason]


@pytest.fixture(scope="module", autouse=True)
def leave_the_victim_joined(hub: Sandbox) -> Iterator[None]:
    """Whatever happens here, the rest of the session finds the victim registered as before."""
    yield
    if member_cluster(hub) is None:
        join(hub)


# ----- bad input


def limited_kubeconfig(sandbox: Sandbox) -> Path:
    """A context for the victim whose user may only read (the `view` role): lacks what join needs."""
    kubectl = sandbox.kubectl(VICTIM)
    kubectl.run("create", "serviceaccount", "limited-joiner", "-n", "default")
    kubectl.run("create", "clusterrolebinding", "limited-joiner", "--clusterrole=view",
                "--serviceaccount=default:limited-joiner")
    bearer = kubectl.run("create", "token", "limited-joiner", "-n", "default", "--duration=10m").stdout.strip()
    path = sandbox.directory / "limited-joiner.kubeconfig"
    path.write_text(kubeconfig_yaml("limited", sandbox.server(VICTIM), sandbox.ca_file.read_text(), "limited-joiner",
                                    bearer))
    return path


def unreachable_kubeconfig(sandbox: Sandbox) -> Path:
    path = sandbox.directory / "unreachable.kubeconfig"
    # port 1 on loopback: nothing listens, the connection is refused at once
    path.write_text(kubeconfig_yaml("unreachable", "https://127.0.0.1:1", sandbox.ca_file.read_text(), "nobody", "x"))
    return path


def test_bad_flags_give_one_line_exit_2_and_create_nothing(hub: Sandbox, operator: OperatorProcess) -> None:
    before = credential_secrets(hub)
    limited, unreachable = limited_kubeconfig(hub), unreachable_kubeconfig(hub)
    flags = ["--hub-context", HUB, "--country", "FR", "--provider", "nowhere-gpu"]
    cases = {
        "not an ISO 3166-1 alpha-2 country code": (["--member-context", VICTIM, *flags[:3], "XY", *flags[4:]], []),
        "cannot reach the member context unreachable": (["--member-context", "unreachable", *flags], [unreachable]),
        "missing rights in the member (context limited)": (["--member-context", "limited", *flags], [limited]),
    }
    samizdat = hub.join_command(VICTIM)[0]
    try:
        for message, (argv, extra_files) in cases.items():
            env = hub.join_environment(VICTIM)
            env["KUBECONFIG"] = os.pathsep.join([env["KUBECONFIG"], *map(str, extra_files)])
            result = subprocess.run([samizdat, "join", "nowhere", *argv], env=env, capture_output=True, text=True,
                                    timeout=60)
            assert result.returncode == 2, (message, result.stdout, result.stderr)
            assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
            assert message in result.stderr, result.stderr
        assert "missing rights" in result.stderr and "create serviceaccounts/token" in result.stderr
    finally:
        hub.kubectl(VICTIM).run("delete", "clusterrolebinding", "limited-joiner", "--ignore-not-found")
        hub.kubectl(VICTIM).run("delete", "serviceaccount", "limited-joiner", "-n", "default", "--ignore-not-found")
    assert member_cluster(hub, "nowhere") is None
    assert hub.kubectl(HUB).run("get", "secret", "member-nowhere", "-n", members.SYSTEM_NAMESPACE,
                                check=False).returncode != 0
    assert credential_secrets(hub) == before


def test_kubectl_runs_join_as_a_plugin(hub: Sandbox) -> None:
    kubectl = hub.binaries.path("kubectl")
    path = os.pathsep.join([str(Path(hub.join_command(VICTIM)[0]).parent), str(Path(kubectl).parent),
                            os.environ.get("PATH", "")])
    result = subprocess.run([str(kubectl), "samizdat", "join", "--help"], env=dict(os.environ, PATH=path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: kubectl samizdat join")
    assert "--member-context" in result.stdout and "--dry-run" in result.stdout


# ----- out and back in


def test_unjoin_replaces_replicas_first_and_leaves_nothing(hub: Sandbox, operator: OperatorProcess) -> None:
    # one replica on each of five members: the victim (cheap, close) among them, and room elsewhere after
    apply_manifest(hub, aiworkload("unjoined", 5, {"maxPerCluster": 1}))
    try:
        workload = wait_settled(hub, "unjoined", 5)
        uid = workload["metadata"]["uid"]
        assert VICTIM in wait_running(hub, uid, 5)
        result = unjoin(hub)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        drained = next(i for i, line in enumerate(lines) if "no samizdat replicas left" in line)
        cleaned = next(i for i, line in enumerate(lines) if line.startswith("member: deleted"))
        assert drained < cleaned, result.stdout  # re-placed by the operator, not deleted with the namespace
        wait_settled(hub, "unjoined", 5)
        assert VICTIM not in wait_running(hub, uid, 5)
        eventually(lambda: samizdat_objects(hub) == [], timeout=60,  # the namespace takes a moment to go
                   what="no samizdat object left in the member")
        assert member_cluster(hub) is None
        assert hub.kubectl(HUB).run("get", "secret", f"member-{VICTIM}", "-n", members.SYSTEM_NAMESPACE,
                                    check=False).returncode != 0
    finally:
        delete_workload(hub, "unjoined")


def test_join_makes_a_fresh_member_ready_and_it_takes_a_workload(hub: Sandbox, operator: OperatorProcess) -> None:
    if member_cluster(hub) is not None:  # run on its own, without the unjoin before
        assert unjoin(hub).returncode == 0
    eventually(lambda: samizdat_objects(hub) == [], timeout=60, what="a member without samizdat")
    result = join(hub)
    assert f"{VICTIM} is Ready" in result.stdout, result.stdout
    apply_manifest(hub, aiworkload("joined", 1, {"allowedJurisdictions": ["FR"]}))
    uid = None  # known once settled; a failure before that has no copy to wait for
    try:
        uid = wait_settled(hub, "joined", 1)["metadata"]["uid"]
        assert wait_running(hub, uid, 1) == {VICTIM: 1}
    finally:
        delete_workload(hub, "joined")
        if uid is not None:
            eventually(lambda: not copies(hub, uid), timeout=60, what="the copy removed")


def test_a_second_join_rotates_and_the_member_refuses_the_old_token(hub: Sandbox, operator: OperatorProcess) -> None:
    old = token(hub)
    before = credential_secrets(hub)
    assert member_api(hub, old) == 200
    join(hub)
    assert token(hub) != old
    # the API server caches a token's successful review for 10 s: refused within that, not at once
    eventually(lambda: member_api(hub, old) == 401, timeout=30, what="the old token refused")
    assert member_api(hub, token(hub)) == 200
    assert credential_secrets(hub).isdisjoint(before)
    assert ready(hub)


# ----- renewal


def test_the_operator_renews_a_short_token_and_the_member_stays_ready(hub: Sandbox, operator: OperatorProcess) -> None:
    join(hub, "--token-lifetime", str(RENEWAL_LIFETIME_S))
    first = member_cluster(hub)
    assert first is not None
    issued = first["status"]["credentials"]["expiresAt"]
    anchor = first["status"]["credentials"]["secret"]
    old = token(hub)
    started = time.monotonic()
    while time.monotonic() - started < 75:
        current = member_cluster(hub)
        assert condition(current, "Ready").get("status") == "True", current
        if current and current["status"]["credentials"]["expiresAt"] != issued:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"no renewal within 75 s; operator log:\n{operator.tail()}")
    renewed = member_cluster(hub)
    assert renewed is not None and renewed["status"]["credentials"]["secret"] == anchor
    assert renewed["status"]["credentials"]["expiresAt"] > issued
    assert token(hub) != old and member_api(hub, token(hub)) == 200
    assert condition(renewed, "CredentialsExpiring")["status"] == "False"
    assert hub_events(hub, "CredentialsRenewed")


def test_a_refused_renewal_shows_before_the_token_expires(hub: Sandbox, operator: OperatorProcess) -> None:
    join(hub, "--token-lifetime", str(RENEWAL_LIFETIME_S))
    hub.kubectl(VICTIM).run("delete", "rolebinding", membership.TOKEN_ROLE, "-n", members.SYSTEM_NAMESPACE)
    try:
        member = eventually(lambda: (m := member_cluster(hub)) and condition(m, "CredentialsExpiring").get(
            "status") == "True" and m, timeout=75, what="CredentialsExpiring=True")
        found = condition(member, "CredentialsExpiring")
        assert found["reason"] == "RenewalFailed" and "forbidden" in found["message"], found
        expires = member["status"]["credentials"]["expiresAt"]
        assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) < expires  # shown before expiry
        assert condition(member, "Ready")["status"] == "True"  # the token still works meanwhile
        assert hub_events(hub, "CredentialRenewalFailed")
    finally:
        join(hub)  # the member's admin relents: identity re-applied, a token of the default lifetime
    assert condition(member_cluster(hub), "CredentialsExpiring").get("status") == "False"
