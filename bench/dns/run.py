"""Clients following a failover through DNS, measured from the client: the sandbox's BIND and external-dns.

Method: the hub + 6 member sandbox with samizdat, BIND 9 and external-dns (`--source=crd
--provider=rfc2136 --events --min-event-sync-interval=1s`, e2e/sandbox/dns.py); every member given a
loopback address of its own (spec.trafficAddress) and a stand-in server there (e2e/dataplane.py:
it answers on the workload's node port only while the member's own API shows a Ready serving pod). One
AIWorkload of 2 replicas (minJurisdictions 2, maxPerJurisdiction 1) with `spec.traffic.dns` (TTL
`--ttl`, 5 s by default). A client asks the name every 100 ms: resolves at BIND once the TTL is up or
after an error, connects with a 0.5 s timeout, on an error tries another address. Each trial kills the
API server of a member serving the workload and measures, every 50 ms, the time until samizdat's
DNSEndpoint no longer lists its address, then until BIND (asked with `dig`) no longer answers it, and the client's window of failed requests (first to last failure after the
kill). Then the member is healed and the next trial waits until 2 replicas serve and BIND answers both.
Prints JSON.

    python bench/dns/run.py --trials 10
    python bench/dns/run.py --quick        # 2 trials
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stats  # noqa: E402
from e2e.dataplane import Client, StandIn, kill_and_follow  # noqa: E402
from e2e.operator import OperatorProcess  # noqa: E402
from e2e.roles import SERVING, MemberPods, ready_in_role  # noqa: E402
from e2e.sandbox.dns import ZONE  # noqa: E402
from e2e.sandbox.world import Sandbox  # noqa: E402
from e2e.waiting import eventually  # noqa: E402
from e2e.workloads import aiworkload, install_samizdat, wait_members_ready  # noqa: E402

NAME = "bench-dns"
DNS_NAME = f"llm.{ZONE}"
PORT = 31556
SERVER = {"name": "server", "image": "registry.invalid/llm-server:1", "ports": [{"name": "http", "containerPort": 8000}]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--ttl", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 trials")
    args = parser.parse_args()
    trials = 2 if args.quick else args.trials
    sandbox = Sandbox()
    with contextlib.ExitStack() as cleanup:
        if not sandbox.running():
            cleanup.callback(sandbox.down)
            sandbox.up(6)
        install_samizdat(sandbox)
        sandbox.start_dns()
        operator = OperatorProcess(sandbox, quarantine_seconds=5)
        operator.start()
        cleanup.callback(operator.stop)
        kubectl = sandbox.kubectl("hub")
        addresses = {name: f"127.0.0.{21 + i}" for i, name in enumerate(sandbox.member_names)}
        for name, address in addresses.items():
            kubectl.run("patch", "mc", name, "--type=merge", "-p", json.dumps({"spec": {"trafficAddress": address}}))
        cleanup.callback(kubectl.run, "delete", "aiworkload", NAME, "-n", "default", "--wait=false", check=False)
        kubectl.apply([aiworkload(NAME, 2, {"minJurisdictions": 2, "maxPerJurisdiction": 1},
                                  template={"spec": {"containers": [SERVER]}},
                                  traffic={"dns": {"name": DNS_NAME, "nodePort": PORT, "ttlSeconds": args.ttl}})])
        uid = eventually(lambda: kubectl.get_json("aiworkload", NAME, "-n", "default")["metadata"].get("uid"),
                         timeout=30, what="uid")
        pods = MemberPods(sandbox)
        cleanup.callback(pods.close)
        for member, address in addresses.items():
            stand_in = StandIn(sandbox, member, address, PORT, uid)
            stand_in.start()
            cleanup.callback(stand_in.stop)
        client = Client(sandbox.dns, DNS_NAME, PORT, ttl_s=args.ttl)

        def serving_and_answered() -> set[str] | None:
            serving = set(ready_in_role(pods.read(uid), SERVING).values())
            answered = sandbox.dns.query(DNS_NAME)
            return serving if len(serving) == 2 and answered == sorted(addresses[m] for m in serving) else None

        def record() -> list[str]:
            found = kubectl.get_json("dnsendpoints", NAME, "-n", "default")
            return [t for entry in found["spec"].get("endpoints", []) for t in entry["targets"]]

        eventually(serving_and_answered, timeout=120, interval=0.25, what="2 serving, both answered")
        client.start()
        cleanup.callback(client.stop)
        results = []
        for _ in range(trials):
            holders = eventually(serving_and_answered, timeout=120, interval=0.25, what="2 serving, both answered")
            victim = sorted(holders)[0]
            results.append(kill_and_follow(sandbox, client, DNS_NAME, addresses, victim, record, settle_s=args.ttl + 1))
            sandbox.heal(victim)
            wait_members_ready(sandbox)
    print(json.dumps({
        "benchmark": "dns",
        "method": " ".join(__doc__.split("\n\n")[1].split()),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "ttl_s": args.ttl,
        "targets": {"dns_p99_s": 8, "client_failed_window_p99_s": 10},
        "peers": {"k8gb_documented_failover_s": [35, 48]},
        "results": {
            "record_drops_victim": stats.summary([r.record_s for r in results]),
            "dns_stops_answering_victim": stats.summary([r.dns_s for r in results]),
            "client_failed_window": stats.summary([r.failed_s for r in results]),
            "client_requests_after_kill": [r.requests for r in results],
            "client_failures_after_kill": [r.failures for r in results],
            "victims": [r.victim for r in results],
        },
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
