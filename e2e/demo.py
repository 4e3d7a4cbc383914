"""The demo behind `bash e2e/demo.sh`: a running samizdat placing a sample workload across countries."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from e2e.operator import OperatorProcess
from e2e.sandbox.world import Sandbox
from e2e.workloads import aiworkload, install_samizdat, wait_settled

DEMO_RULES = {"minJurisdictions": 3, "maxPerJurisdiction": 2, "deniedAlliances": ["five-eyes"]}


def placement_table(member_clusters: list[dict[str, Any]], workload: dict[str, Any]) -> str:
    """One row per member: where it is, who runs it, its phase, and the workload's replicas serving there."""
    placed = {p["cluster"]: p for p in workload.get("status", {}).get("placements", [])}
    rows = [("MEMBER", "COUNTRY", "PROVIDER", "PHASE", "SERVING", "READY")]
    for member in sorted(member_clusters, key=lambda m: m["metadata"]["name"]):
        name = member["metadata"]["name"]
        here = placed.get(name, {})
        rows.append((name, member["spec"]["jurisdiction"]["country"], member["spec"]["provider"],
                     member.get("status", {}).get("phase", "Pending"),
                     str(here.get("replicas", 0)), str(here.get("readyReplicas", 0))))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    status = workload.get("status", {})
    summary = (f"{workload['metadata']['name']}: {status.get('readyReplicas', 0)}/{workload['spec']['replicas']} "
               f"replicas ready in {status.get('jurisdictions', 0)} countries "
               f"({', '.join(status.get('jurisdictionList', []))})")
    return "\n".join([*lines, "", summary])


def main() -> int:
    started = time.monotonic()
    sandbox = Sandbox()
    if not sandbox.running():
        print("demo: starting the sandbox (hub + 6 member clusters)…", flush=True)
        sandbox.up(6)
    install_samizdat(sandbox)
    hub = sandbox.kubectl("hub")
    operator = OperatorProcess(sandbox, quarantine_seconds=60)
    operator.start()
    print(f"demo: operator started (pid {operator.process.pid if operator.process else '?'}, "
          f"log {operator.log})", flush=True)
    hub.run("apply", "-f", "-", stdin=json.dumps(aiworkload("demo", 4, DEMO_RULES)))
    print("demo: applied AIWorkload default/demo: 4 replicas × 1 GPU, minJurisdictions 3, "
          "maxPerJurisdiction 2, deniedAlliances [five-eyes]", flush=True)
    try:
        wait_settled(sandbox, "demo", 4, timeout=120)
    except AssertionError as error:
        print(f"demo: the workload did not settle: {error}\n{operator.tail()}", file=sys.stderr)
        return 1
    print(hub.run("get", "aiworkloads", "-A").stdout)
    print(placement_table(hub.get_json("memberclusters")["items"], hub.get_json("aiworkload", "demo", "-n", "default")))
    print(f"demo: placed in {time.monotonic() - started:.0f}s. The sandbox and operator keep running:\n"
          "  source .venv/bin/activate                # the sandbox's kubectl, on PATH\n"
          f"  export KUBECONFIG={sandbox.admin_kubeconfig('hub')}\n"
          "  python -m e2e.sandbox kill de-frankfurt  # then: kubectl get aiw demo -w\n"
          "  python -m e2e.sandbox down               # stop everything")
    return 0


if __name__ == "__main__":
    sys.exit(main())
