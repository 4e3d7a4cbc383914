"""The demo behind `bash e2e/demo.sh`: a running samizdat placing a sample workload across countries."""

from __future__ import annotations

import json
import sys
import time

from e2e.operator import OperatorProcess
from e2e.sandbox.world import Sandbox
from e2e.workloads import aiworkload, install_samizdat, wait_settled

DEMO_RULES = {"minJurisdictions": 3, "maxPerJurisdiction": 2, "deniedAlliances": ["five-eyes"]}


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
    print(hub.run("get", "memberclusters").stdout)
    print(hub.run("get", "aiworkloads", "-A").stdout)
    print(hub.run("get", "aiworkload", "demo", "-n", "default", "-o",
                  "custom-columns=CLUSTER:.status.placements[*].cluster,COUNTRY:.status.placements[*].jurisdiction,"
                  "REPLICAS:.status.placements[*].replicas,READY:.status.placements[*].readyReplicas").stdout)
    print(f"demo: placed in {time.monotonic() - started:.0f}s. The sandbox and operator keep running:\n"
          f"  export KUBECONFIG={sandbox.admin_kubeconfig('hub')}\n"
          "  .venv/bin/python -m e2e.sandbox kill de-frankfurt   # then: kubectl get aiw demo -w\n"
          "  .venv/bin/python -m e2e.sandbox down                # stop everything")
    return 0


if __name__ == "__main__":
    sys.exit(main())
