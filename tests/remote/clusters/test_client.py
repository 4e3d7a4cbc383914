"""The member client's configuration: deadlines, TLS material, tokens, replies and the write-side checks."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from samizdat.remote.clusters import applying, errors, resources, scaling
from samizdat.remote.clusters import client as client_module
from samizdat.remote.clusters.client import Deadlines, ClusterClient, Reply
from samizdat.remote.clusters.kubeconfig import Credentials, KubeconfigError

SERVER = "https://member.invalid:6443"


@pytest.fixture(scope="module")
def pem() -> dict[str, str]:
    """A self-signed certificate and its key, as PEM text."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "samizdat-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return {
        "cert": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode(),
    }


def test_default_deadlines_bound_everything() -> None:
    deadlines = Deadlines()
    assert (deadlines.connect, deadlines.read, deadlines.request) == (2.0, 5.0, 10.0)
    assert deadlines.watch + deadlines.watch_grace < 60


@pytest.mark.parametrize("field", ["connect", "read", "request", "watch", "watch_grace"])
def test_deadlines_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=f"deadline {field} must be positive"):
        Deadlines(**{field: 0})


def test_a_probe_budget_clips_every_deadline() -> None:
    clipped = Deadlines(connect=2, read=5, request=10).clipped(1.5)
    assert (clipped.connect, clipped.read, clipped.request) == (1.5, 1.5, 1.5)


async def test_tls_material_is_loaded_from_memory(pem: dict[str, str]) -> None:
    credentials = Credentials(server=SERVER, ca_pem=pem["cert"], client_cert_pem=pem["cert"], client_key_pem=pem["key"])
    async with ClusterClient("m", credentials) as client:
        assert not client.closed
    assert client.closed


BAD_TLS: list[Any] = [
    pytest.param({"ca_pem": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"}, id="garbage-ca"),
    pytest.param({"client_cert_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                  "client_key_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
                 id="garbage-client-certificate"),
]


@pytest.mark.parametrize("material", BAD_TLS)
def test_unusable_tls_material_is_a_kubeconfig_error(material: dict[str, Any]) -> None:
    with pytest.raises(KubeconfigError, match="unusable TLS material"):
        ClusterClient("m", Credentials(server=SERVER, **material))


async def test_the_client_key_does_not_stay_on_disk(pem: dict[str, str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    credentials = Credentials(server=SERVER, client_cert_pem=pem["cert"], client_key_pem=pem["key"])
    await ClusterClient("m", credentials).aclose()
    assert list(tmp_path.iterdir()) == []


async def test_tokens_come_inline_or_from_a_rotating_file(tmp_path: Path) -> None:
    async with ClusterClient("m", Credentials(server=SERVER, token="inline")) as client:
        assert client._headers() == {"Authorization": "Bearer inline"}
    async with ClusterClient("m", Credentials(server=SERVER)) as client:
        assert client._headers() == {}

    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    async with ClusterClient("m", Credentials(server=SERVER, token_file=str(token_file))) as client:

        def age_the_cached_token() -> None:
            assert client._token is not None
            client._token = (client._token[0], client._token[1] - client_module.TOKEN_FILE_REFRESH_S - 1)

        assert client._headers() == {"Authorization": "Bearer first"}
        token_file.write_text("second\n")
        assert client._headers() == {"Authorization": "Bearer first"}  # not re-read on every request
        age_the_cached_token()
        assert client._headers() == {"Authorization": "Bearer second"}
        os.unlink(token_file)
        age_the_cached_token()
        assert client._headers() == {"Authorization": "Bearer second"}  # kept while the file is swapped


async def test_an_unreadable_token_file_is_unauthorized(tmp_path: Path) -> None:
    async with ClusterClient("m", Credentials(server=SERVER, token_file=str(tmp_path / "absent"))) as client:
        with pytest.raises(errors.MemberUnauthorized, match="cannot read the token file"):
            client._headers()


def test_repr_names_the_member_not_the_token() -> None:
    client = ClusterClient("us-east", Credentials(server=SERVER, token="secret-token"))
    assert repr(client) == f"ClusterClient('us-east', '{SERVER}')"


REPLIES: list[Any] = [
    pytest.param(b"ok", "reply is not JSON", id="text"),
    pytest.param(b"[1, 2]", "reply is not a JSON object", id="list"),
]


@pytest.mark.parametrize(("body", "complaint"), REPLIES)
def test_replies_that_are_not_objects_are_malformed(body: bytes, complaint: str) -> None:
    reply = Reply("m", 200, body)
    with pytest.raises(errors.MemberMalformed, match=complaint):
        reply.json()


def test_a_reply_reads_as_json_or_text() -> None:
    assert Reply("m", 200, b'{"kind": "Node"}').json() == {"kind": "Node"}
    assert Reply("m", 200, b"ok").text == "ok"


# ----- manifest checks that happen before anything is sent


def _deployment(**metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": {}}


BAD_MANIFESTS: list[Any] = [
    pytest.param({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "s", "namespace": "n"}},
                 "no known resource for apiVersion='v1' kind='PersistentVolumeClaim'", id="unknown-kind"),
    pytest.param(_deployment(namespace="n"), "needs metadata.name", id="no-name"),
    pytest.param(_deployment(name="d"), "needs metadata.namespace", id="no-namespace"),
]


@pytest.mark.parametrize(("manifest", "complaint"), BAD_MANIFESTS)
async def test_apply_refuses_manifests_it_cannot_address(manifest: dict[str, Any], complaint: str) -> None:
    async with ClusterClient("m", Credentials(server=SERVER)) as client:
        with pytest.raises(ValueError, match=complaint):
            await applying.apply(client, manifest)


async def test_scale_refuses_what_cannot_scale() -> None:
    async with ClusterClient("m", Credentials(server=SERVER)) as client:
        with pytest.raises(ValueError, match="jobs have no scale subresource"):
            await scaling.scale(client, resources.JOBS, "j", namespace="n", replicas=0)
        with pytest.raises(ValueError, match="must not be negative"):
            await scaling.scale(client, resources.DEPLOYMENTS, "d", namespace="n", replicas=-1)
