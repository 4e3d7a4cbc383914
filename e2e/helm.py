"""The Helm chart in the sandbox hub: install it as a user would, and act with the identity it creates.

`chart_operator_kubeconfig(sandbox)` is how the e2e suites run the operator with exactly the RBAC the
chart grants (not the sandbox admin's): it installs the chart if needed, asks the API server for a
token of the chart's ServiceAccount (`kubectl create token`), and writes a kubeconfig for it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from e2e.sandbox import members
from e2e.sandbox.launcher import HUB
from e2e.sandbox.world import REPO_ROOT, Sandbox

CHART = REPO_ROOT / "helm" / "samizdat"
RELEASE = "samizdat"
NAMESPACE = members.SYSTEM_NAMESPACE  # where the sandbox keeps member kubeconfig Secrets, as the chart expects
SERVICE_ACCOUNT = RELEASE  # the chart's full name for a release named like the chart
TOKEN_DURATION = "24h"  # longer than any test session


def helm(sandbox: Sandbox, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(sandbox.binaries.path("helm")), f"--kubeconfig={sandbox.admin_kubeconfig(HUB)}", *args],
        capture_output=True, text=True, check=check, timeout=300,
    )


def release_status(sandbox: Sandbox) -> dict[str, Any] | None:
    result = helm(sandbox, "status", RELEASE, "-n", NAMESPACE, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def install_chart(sandbox: Sandbox, *settings: str) -> dict[str, Any]:
    """Install (or upgrade to) the chart from the working tree with its default values but `settings`
    (`key=value`, as `--set` takes them); return the status.

    `--reset-values`: otherwise `helm upgrade` would keep the values of the previous revision.

    The hub has no nodes, so the operator's pod stays Pending: the release is still deployed, because
    Helm waits for nothing but hooks by default, and every object it created exists.
    """
    sets = [f"--set={setting}" for setting in settings]
    helm(sandbox, "upgrade", "--install", "--reset-values", *sets, RELEASE, str(CHART), "-n", NAMESPACE)
    status = release_status(sandbox)
    assert status is not None, "helm upgrade --install succeeded but the release is missing"
    return status


def chart_operator_kubeconfig(sandbox: Sandbox) -> Path:
    """A kubeconfig for the chart's ServiceAccount in the hub; installs the chart first if it is not there.

    Server and CA come from the hub's admin kubeconfig; the context's namespace is the release's, as
    inside the operator's pod, so kopf posts Events of cluster-scoped objects there too.
    """
    if release_status(sandbox) is None:
        install_chart(sandbox)
    token = sandbox.kubectl(HUB).run(
        "create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, f"--duration={TOKEN_DURATION}",
    ).stdout.strip()
    admin = yaml.safe_load(sandbox.admin_kubeconfig(HUB).read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": HUB, "cluster": {
            "server": cluster["server"],
            "certificate-authority-data": cluster["certificate-authority-data"],
        }}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": HUB, "context": {"cluster": HUB, "user": SERVICE_ACCOUNT, "namespace": NAMESPACE}}],
        "current-context": HUB,
    }
    path = sandbox.directory / "samizdat-chart.kubeconfig"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path

