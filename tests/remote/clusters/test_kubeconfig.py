"""Kubeconfig parsing: what a registered member's kubeconfig may say, and the clear refusals of the rest."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from samizdat.remote.clusters import kubeconfig
from samizdat.remote.clusters.kubeconfig import Credentials, KubeconfigError

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CA_DATA = base64.b64encode(CA.encode()).decode()
CERT = "-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def config(
    cluster: Mapping[str, Any] | None = None,
    user: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A one-context kubeconfig (cluster "c", user "u", context "ctx"), with sections replaced as given."""
    raw: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443", "certificate-authority-data": CA_DATA,
                                                **(cluster or {})}}],
        "users": [{"name": "u", "user": {"token": "secret-token", **(user or {})}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", **(context or {})}}],
        "current-context": "ctx",
    }
    raw.update(top)
    return raw


def text(raw: dict[str, Any]) -> str:
    return yaml.safe_dump(raw)


def without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in keys}


VALID: list[Any] = [
    pytest.param(config(), Credentials(server="https://10.0.0.1:6443", ca_pem=CA, token="secret-token", context="ctx"),
                 id="token-and-ca-data"),
    pytest.param(config(cluster={"server": "https://api.example:443/"}),
                 Credentials(server="https://api.example:443", ca_pem=CA, token="secret-token", context="ctx"),
                 id="trailing-slash-dropped"),
    pytest.param(config(cluster={"server": "https://rancher.example/k8s/clusters/c-1"}),
                 Credentials(server="https://rancher.example/k8s/clusters/c-1", ca_pem=CA, token="secret-token",
                             context="ctx"),
                 id="server-with-path-prefix"),
    pytest.param(config(user={"token": None, "client-certificate-data": b64(CERT), "client-key-data": b64(KEY)}),
                 Credentials(server="https://10.0.0.1:6443", ca_pem=CA, client_cert_pem=CERT, client_key_pem=KEY,
                             context="ctx"),
                 id="client-certificate"),
    pytest.param(config(cluster={"certificate-authority-data": None, "insecure-skip-tls-verify": True}),
                 Credentials(server="https://10.0.0.1:6443", insecure_skip_tls_verify=True, token="secret-token",
                             context="ctx"),
                 id="insecure-skip-tls-verify"),
    pytest.param(config(cluster={"certificate-authority-data": None}),
                 Credentials(server="https://10.0.0.1:6443", token="secret-token", context="ctx"),
                 id="system-trust-store"),
    pytest.param(config(cluster={"tls-server-name": "kubernetes", "proxy-url": "http://proxy:3128"},
                        context={"namespace": "samizdat-workloads"}),
                 Credentials(server="https://10.0.0.1:6443", ca_pem=CA, token="secret-token",
                             tls_server_name="kubernetes", proxy_url="http://proxy:3128",
                             namespace="samizdat-workloads", context="ctx"),
                 id="tls-server-name-proxy-namespace"),
    pytest.param(config(user={"token": None}),
                 Credentials(server="https://10.0.0.1:6443", ca_pem=CA, context="ctx"),
                 id="anonymous"),
    pytest.param(without(config(), "current-context"),
                 Credentials(server="https://10.0.0.1:6443", ca_pem=CA, token="secret-token", context="ctx"),
                 id="only-context-without-current-context"),
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_parses(raw: dict[str, Any], expected: Credentials) -> None:
    assert kubeconfig.parse(text(raw)) == expected


def _two_contexts() -> dict[str, Any]:
    raw = config()
    raw["clusters"].append({"name": "d", "cluster": {"server": "https://10.0.0.2:6443"}})
    raw["contexts"].append({"name": "other", "context": {"cluster": "d", "user": "u"}})
    return raw


def test_named_context_wins_over_current_context() -> None:
    credentials = kubeconfig.parse(text(_two_contexts()), context="other")
    assert (credentials.server, credentials.context, credentials.ca_pem) == ("https://10.0.0.2:6443", "other", None)


INVALID: list[Any] = [
    pytest.param("clusters: [", "not valid YAML", id="not-yaml"),
    pytest.param("- a\n- b\n", "must be a YAML mapping", id="not-a-mapping"),
    pytest.param("", "0 contexts", id="empty"),
    pytest.param(text(without(_two_contexts(), "current-context")), "2 contexts to choose from",
                 id="ambiguous-context"),
    pytest.param(text({**config(), "current-context": "nope"}), "context 'nope' is not defined", id="unknown-context"),
    pytest.param(text(config(context={"cluster": "nope"})), "cluster 'nope', which is not defined",
                 id="unknown-cluster"),
    pytest.param(text(config(context={"user": "nope"})), "user 'nope', which is not defined", id="unknown-user"),
    pytest.param(text(config(context={"cluster": None})), "names no cluster", id="context-without-cluster"),
    pytest.param(text(config(cluster={"server": None})), "has no server URL", id="no-server"),
    pytest.param(text(config(cluster={"server": "http://10.0.0.1:8080"})), "must be an https:// URL", id="plain-http"),
    pytest.param(text(config(cluster={"server": "https://10.0.0.1:port"})), "invalid port", id="bad-port"),
    pytest.param(text(config(cluster={"certificate-authority-data": "%%%"})), "not base64", id="bad-base64"),
    pytest.param(text(config(cluster={"certificate-authority-data": b64("hello")})), "not a PEM certificate",
                 id="ca-not-pem"),
    pytest.param(text(config(cluster={"insecure-skip-tls-verify": True})), "insecure-skip-tls-verify together",
                 id="insecure-with-ca"),
    pytest.param(text(config(cluster={"insecure-skip-tls-verify": "yes"})), "must be true or false",
                 id="insecure-not-boolean"),
    pytest.param(text(config(user={"client-certificate-data": b64(CERT)})), "needs its key", id="cert-without-key"),
    pytest.param(text(config(user={"client-key-data": b64(KEY)})), "needs its key", id="key-without-cert"),
    pytest.param(text(config(user={"exec": {"command": "aws"}})), "exec credentials are not supported", id="exec"),
    pytest.param(text(config(user={"auth-provider": {"name": "gcp"}})), "auth-provider credentials are not supported",
                 id="auth-provider"),
    pytest.param(text(config(user={"username": "admin", "password": "pw"})), "basic authentication", id="basic-auth"),
    pytest.param(text(config(user={"token": 42})), "token must be a string", id="token-not-string"),
    pytest.param(text(config(clusters={"c": {}})), "clusters must be a list", id="clusters-not-list"),
    pytest.param(text(config(contexts=[{"context": {"cluster": "c"}}])), "needs a name", id="nameless-entry"),
]


@pytest.mark.parametrize(("source", "complaint"), INVALID)
def test_refuses(source: str, complaint: str) -> None:
    with pytest.raises(KubeconfigError, match=complaint):
        kubeconfig.parse(source)


FILE_REFERENCES: list[Any] = [
    pytest.param({"cluster": {"certificate-authority-data": None, "certificate-authority": "/etc/ca.crt"}},
                 id="certificate-authority"),
    pytest.param({"user": {"token": None, "tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}},
                 id="tokenFile"),
    pytest.param({"user": {"client-certificate": "/c.crt", "client-key": "/c.key"}}, id="client-certificate"),
]


@pytest.mark.parametrize("sections", FILE_REFERENCES)
def test_a_kubeconfig_from_a_secret_may_not_read_local_files(sections: dict[str, Any]) -> None:
    # Otherwise whoever registers a member could have the hub's own token sent to their server.
    with pytest.raises(KubeconfigError, match="refers to a file"):
        kubeconfig.parse(text(config(**sections)))


def test_credentials_repr_hides_secrets() -> None:
    credentials = Credentials(server="https://h", token="secret-token", client_key_pem=KEY)
    assert "secret-token" not in repr(credentials) and "KEY" not in repr(credentials)


# ----- files of our own


@pytest.fixture
def kube_dir(tmp_path: Path) -> Path:
    (tmp_path / "ca.crt").write_text(CA)
    (tmp_path / "token").write_text("file-token\n")
    (tmp_path / "client.crt").write_text(CERT)
    (tmp_path / "client.key").write_text(KEY)
    return tmp_path


def test_load_resolves_files_relative_to_the_kubeconfig(kube_dir: Path) -> None:
    raw = config(cluster={"certificate-authority-data": None, "certificate-authority": "ca.crt"},
                 user={"token": None, "tokenFile": "token",
                       "client-certificate": "client.crt", "client-key": "client.key"})
    (kube_dir / "config").write_text(text(raw))
    credentials = kubeconfig.load(kube_dir / "config")
    assert credentials.ca_pem == CA and credentials.client_cert_pem == CERT and credentials.client_key_pem == KEY
    assert credentials.token is None and credentials.token_file == str(kube_dir / "token")


def test_parse_with_a_base_directory_allows_files(kube_dir: Path) -> None:
    raw = config(cluster={"certificate-authority-data": None, "certificate-authority": "ca.crt"})
    assert kubeconfig.parse(text(raw), base_dir=kube_dir).ca_pem == CA


def test_inline_data_wins_over_files_and_an_inline_token_over_a_token_file(kube_dir: Path) -> None:
    raw = config(cluster={"certificate-authority": "missing.crt"}, user={"tokenFile": "token"})
    credentials = kubeconfig.parse(text(raw), base_dir=kube_dir)
    assert (credentials.ca_pem, credentials.token, credentials.token_file) == (CA, "secret-token", None)


def test_missing_files_are_named(kube_dir: Path) -> None:
    raw = config(cluster={"certificate-authority-data": None, "certificate-authority": "missing.crt"})
    with pytest.raises(KubeconfigError, match=r"no such file .*missing\.crt"):
        kubeconfig.parse(text(raw), base_dir=kube_dir)
    with pytest.raises(KubeconfigError, match="cannot read kubeconfig"):
        kubeconfig.load(kube_dir / "absent")


def test_environment_merges_kubeconfig_files_first_one_wins(tmp_path: Path) -> None:
    first = {**config(cluster={"server": "https://first:6443"}), "current-context": ""}
    second = config(cluster={"server": "https://second:6443"})
    second["contexts"].append({"name": "more", "context": {"cluster": "c", "user": "u", "namespace": "ns"}})
    second["current-context"] = "more"
    (tmp_path / "a").write_text(text(first))
    (tmp_path / "b").write_text(text(second))
    environ = {"KUBECONFIG": f"{tmp_path / 'a'}:{tmp_path / 'missing'}:{tmp_path / 'b'}"}
    credentials = kubeconfig.from_environment(environ=environ)
    assert (credentials.server, credentials.context, credentials.namespace) == ("https://first:6443", "more", "ns")


def test_environment_falls_back_to_the_home_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(text(config()))
    assert kubeconfig.from_environment(environ={}, home=tmp_path).token == "secret-token"
    with pytest.raises(KubeconfigError, match="no kubeconfig file"):
        kubeconfig.from_environment(environ={}, home=tmp_path / "nobody")


def test_service_account(kube_dir: Path) -> None:
    (kube_dir / "namespace").write_text("samizdat-system")
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    credentials = kubeconfig.from_service_account(root=kube_dir, environ=environ)
    assert credentials == Credentials(server="https://10.96.0.1:443", ca_pem=CA, token_file=str(kube_dir / "token"),
                                      namespace="samizdat-system", context="in-cluster")
    ipv6 = kubeconfig.from_service_account(root=kube_dir, environ={**environ, "KUBERNETES_SERVICE_HOST": "fd00::1"})
    assert ipv6.server == "https://[fd00::1]:443"


def test_service_account_at_this_sites_own_api_server(kube_dir: Path) -> None:
    # One hub site's operator: its ServiceAccount, at its site's apiserver rather than the Service.
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    for env in (environ, {}):
        credentials = kubeconfig.from_service_account(root=kube_dir, environ=env, server="https://10.1.0.10:6443/")
        assert (credentials.server, credentials.ca_pem, credentials.token_file) == (
            "https://10.1.0.10:6443", CA, str(kube_dir / "token"))
    with pytest.raises(KubeconfigError, match="must be an https:// URL"):
        kubeconfig.from_service_account(root=kube_dir, environ=environ, server="http://10.1.0.10:6443")
    with pytest.raises(KubeconfigError, match="no service account token"):
        kubeconfig.from_service_account(root=kube_dir / "absent", environ={}, server="https://10.1.0.10:6443")


def test_service_account_outside_a_cluster(kube_dir: Path) -> None:
    with pytest.raises(KubeconfigError, match="not running in a cluster"):
        kubeconfig.from_service_account(root=kube_dir, environ={})
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(KubeconfigError, match="no service account token"):
        kubeconfig.from_service_account(root=kube_dir / "absent", environ=environ)
