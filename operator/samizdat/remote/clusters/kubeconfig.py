"""How to reach one cluster: kubeconfig text (or the in-cluster service account) made into `Credentials`.

Members are registered by users as kubeconfigs kept in hub Secrets, so a kubeconfig here is untrusted
input: `parse` refuses file references (`certificate-authority`, `tokenFile`, …) unless the caller says
where files may come from, or a registered member could make the operator read the hub's own service
account token from disk and send it to a server of the registrant's choosing. Exec plugins and
auth-providers are refused too: running a program named in a Secret is not an option.

The hub itself is reached with `from_service_account()` (in a pod) or `from_environment()` (a developer's
`KUBECONFIG` or `~/.kube/config`), where files are the user's own and allowed.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"

# Keys that name files, per section, with the key that embeds the same thing inline.
_CLUSTER_FILES = {"certificate-authority": "certificate-authority-data"}
_USER_FILES = {"client-certificate": "client-certificate-data", "client-key": "client-key-data", "tokenFile": "token"}


class KubeconfigError(ValueError):
    """The kubeconfig (or service-account environment) cannot be used to reach a cluster; says why."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Everything needed to open a TLS connection to one API server and authenticate to it."""

    server: str  # https://host:port[/path], without a trailing slash
    ca_pem: str | None = None  # None: the system's trust store
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    token: str | None = field(default=None, repr=False)
    # Read at every request rather than once: in-cluster tokens are rotated by the kubelet.
    token_file: str | None = None
    client_cert_pem: str | None = None
    client_key_pem: str | None = field(default=None, repr=False)
    namespace: str | None = None  # the context's default namespace, if it names one
    context: str | None = None  # which kubeconfig context these came from, for messages


def parse(text: str, *, context: str | None = None, base_dir: Path | None = None) -> Credentials:
    """Credentials from kubeconfig text, for `context` or else the current (or only) context.

    File references are resolved against `base_dir`; without one they are refused (see module doc).
    """
    raw = _load_yaml(text, source="kubeconfig")
    if base_dir is not None:
        raw = _absolutize(raw, base_dir)
    return _resolve(raw, context=context, files_allowed=base_dir is not None)


def load(path: Path | str, *, context: str | None = None) -> Credentials:
    """Credentials from a kubeconfig file of our own; relative file references are relative to it."""
    return _resolve(_read_file(Path(path)), context=context, files_allowed=True)


def from_environment(
    *, context: str | None = None, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> Credentials:
    """Credentials for the hub as kubectl would find them: `$KUBECONFIG` (merged) or `~/.kube/config`."""
    environ = os.environ if environ is None else environ
    listed = [Path(p) for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    candidates = listed or [(home or Path.home()) / ".kube" / "config"]
    paths = [path for path in candidates if path.is_file()]
    if not paths:
        where = "$KUBECONFIG" if listed else "the default location"
        raise KubeconfigError(f"no kubeconfig file at {where}: {', '.join(map(str, candidates))}")
    return _resolve(_merge([_read_file(path) for path in paths]), context=context, files_allowed=True)


def from_service_account(
    *, root: Path = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] | None = None, server: str | None = None
) -> Credentials:
    """Credentials of the pod's own service account, for an operator running inside the hub: at the
    `kubernetes` Service, or at `server` (an https URL: one hub site's own API server, see `hub_server`)."""
    environ = os.environ if environ is None else environ
    if server is None:
        host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise KubeconfigError("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set")
        host = f"[{host}]" if ":" in host else host  # an IPv6 address
        server = f"https://{host}:{port}"
    else:
        server = hub_server(server)
    token_file = root / "token"
    if not token_file.is_file():
        raise KubeconfigError(f"no service account token at {token_file}")
    ca_file = root / "ca.crt"
    namespace_file = root / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else ""
    return Credentials(
        server=server,
        ca_pem=_read_pem(ca_file, "service account CA") if ca_file.is_file() else None,
        token_file=str(token_file),
        namespace=namespace or None,
        context="in-cluster",
    )


def hub_server(url: str) -> str:
    """`url` as the hub's API server (`samizdat run --hub-server`): https, a host, a valid port."""
    return _server(url, "the hub server")


# ----- reading and merging


def _load_yaml(text: str, *, source: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KubeconfigError(f"{source} is not valid YAML: {error}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise KubeconfigError(f"{source} must be a YAML mapping, not {type(raw).__name__}")
    return raw


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {error.strerror or error}") from None
    return _absolutize(_load_yaml(text, source=str(path)), path.resolve().parent)


def _absolutize(raw: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """A copy of `raw` whose file references are absolute, as kubectl resolves them against their file."""
    result = dict(raw)
    for section, inner, keys in (("clusters", "cluster", _CLUSTER_FILES), ("users", "user", _USER_FILES)):
        entries = raw.get(section)
        if not isinstance(entries, list):
            continue
        result[section] = [_absolutize_entry(entry, inner, keys, base_dir) for entry in entries]
    return result


def _absolutize_entry(entry: Any, inner: str, keys: Mapping[str, str], base_dir: Path) -> Any:
    if not isinstance(entry, dict) or not isinstance(entry.get(inner), dict):
        return entry
    body = dict(entry[inner])
    for key in keys:
        if isinstance(body.get(key), str) and body[key]:
            body[key] = str(base_dir / Path(body[key]).expanduser())
    return {**entry, inner: body}


def _merge(raws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """kubectl's merge of several kubeconfig files: the first file to define a name (or value) wins."""
    merged: dict[str, Any] = {}
    for section in ("clusters", "users", "contexts"):
        seen: dict[str, Any] = {}
        for raw in raws:
            for entry in raw.get(section) or []:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    seen.setdefault(entry["name"], entry)
        merged[section] = list(seen.values())
    merged["current-context"] = next((raw["current-context"] for raw in raws if raw.get("current-context")), None)
    return merged


# ----- resolving one context


def _resolve(raw: Mapping[str, Any], *, context: str | None, files_allowed: bool) -> Credentials:
    contexts = _named(raw, "contexts", "context")
    if context is None:
        context = raw.get("current-context") or None
    if context is None:
        if len(contexts) != 1:
            raise KubeconfigError(
                f"no current-context, and {len(contexts)} contexts to choose from; name one"
                + (f" of: {', '.join(sorted(contexts))}" if contexts else "")
            )
        context = next(iter(contexts))
    if context not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise KubeconfigError(f"context {context!r} is not defined (contexts: {known})")
    chosen = contexts[context]
    cluster_name, user_name = chosen.get("cluster"), chosen.get("user")
    if not cluster_name:
        raise KubeconfigError(f"context {context!r} names no cluster")
    clusters = _named(raw, "clusters", "cluster")
    if cluster_name not in clusters:
        raise KubeconfigError(f"context {context!r} refers to cluster {cluster_name!r}, which is not defined")
    users = _named(raw, "users", "user")
    if user_name and user_name not in users:
        raise KubeconfigError(f"context {context!r} refers to user {user_name!r}, which is not defined")
    cluster, user = clusters[cluster_name], users.get(user_name, {}) if user_name else {}
    where = f"cluster {cluster_name!r}"

    server = _server(cluster.get("server"), where)
    insecure = _boolean(cluster.get("insecure-skip-tls-verify", False), f"{where}: insecure-skip-tls-verify")
    ca_pem = _embedded_or_file(cluster, "certificate-authority", where, files_allowed)
    if ca_pem is not None and PEM_CERTIFICATE not in ca_pem:
        raise KubeconfigError(f"{where}: the certificate authority is not a PEM certificate")
    if insecure and ca_pem is not None:
        # kubectl refuses this combination too: one of the two settings is a mistake.
        raise KubeconfigError(f"{where}: insecure-skip-tls-verify together with a certificate authority")
    tls_server_name = _string(cluster.get("tls-server-name"), f"{where}: tls-server-name") or None
    proxy_url = _string(cluster.get("proxy-url"), f"{where}: proxy-url") or None

    where = f"user {user_name!r}" if user_name else f"context {context!r}"
    for unsupported in ("exec", "auth-provider"):
        if user.get(unsupported):
            raise KubeconfigError(
                f"{where}: {unsupported} credentials are not supported; use a token or a client certificate"
            )
    if user.get("username") or user.get("password"):
        raise KubeconfigError(f"{where}: basic authentication is not supported by Kubernetes; use a token")
    token = _string(user.get("token"), f"{where}: token") or None
    token_file = _string(user.get("tokenFile"), f"{where}: tokenFile") or None
    if token_file is not None:
        _check_file(token_file, f"{where}: tokenFile", files_allowed)
    cert = _embedded_or_file(user, "client-certificate", where, files_allowed)
    key = _embedded_or_file(user, "client-key", where, files_allowed)
    if (cert is None) != (key is None):
        raise KubeconfigError(f"{where}: a client certificate needs its key, and a key its certificate")

    return Credentials(
        server=server,
        ca_pem=ca_pem,
        insecure_skip_tls_verify=insecure,
        tls_server_name=tls_server_name,
        proxy_url=proxy_url,
        token=token,
        token_file=None if token else token_file,  # kubectl: an inline token wins over a file
        client_cert_pem=cert,
        client_key_pem=key,
        namespace=_string(chosen.get("namespace"), f"context {context!r}: namespace") or None,
        context=context,
    )


def _named(raw: Mapping[str, Any], section: str, inner: str) -> dict[str, dict[str, Any]]:
    entries = raw.get(section) or []
    if not isinstance(entries, list):
        raise KubeconfigError(f"{section} must be a list")
    named: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigError(f"every entry of {section} needs a name")
        body = entry.get(inner) or {}
        if not isinstance(body, dict):
            raise KubeconfigError(f"{section}: {entry['name']!r} must have a mapping under {inner!r}")
        named.setdefault(entry["name"], body)
    return named


def _server(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise KubeconfigError(f"{where} has no server URL")
    url = urlsplit(value)
    if url.scheme != "https" or not url.hostname:
        # A bearer token over plain HTTP is a token handed to anyone on the path.
        raise KubeconfigError(f"{where}: server must be an https:// URL, not {value!r}")
    try:
        url.port  # noqa: B018 -- urlsplit validates the port lazily
    except ValueError:
        raise KubeconfigError(f"{where}: server {value!r} has an invalid port") from None
    return value.rstrip("/")


def _embedded_or_file(section: Mapping[str, Any], key: str, where: str, files_allowed: bool) -> str | None:
    """The PEM text under `<key>-data` (base64), or read from the file under `<key>`; data wins."""
    data = section.get(f"{key}-data")
    if data:
        if not isinstance(data, str):
            raise KubeconfigError(f"{where}: {key}-data must be a base64 string")
        try:
            return base64.b64decode(data, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise KubeconfigError(f"{where}: {key}-data is not base64-encoded PEM") from None
    path = _string(section.get(key), f"{where}: {key}")
    if not path:
        return None
    _check_file(path, f"{where}: {key}", files_allowed)
    return _read_pem(Path(path), f"{where}: {key}")


def _check_file(path: str, what: str, files_allowed: bool) -> None:
    if not files_allowed:
        raise KubeconfigError(f"{what} refers to a file ({path}); embed it instead (e.g. as *-data or token)")
    if not Path(path).is_absolute():
        raise KubeconfigError(f"{what}: relative path {path!r} without a kubeconfig file to resolve it against")
    if not Path(path).is_file():
        raise KubeconfigError(f"{what}: no such file {path}")


def _read_pem(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise KubeconfigError(f"{what}: cannot read {path}: {error}") from None


def _string(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KubeconfigError(f"{what} must be a string")
    return value


def _boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise KubeconfigError(f"{what} must be true or false")
    return value
