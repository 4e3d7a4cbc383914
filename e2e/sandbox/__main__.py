"""`python -m e2e.sandbox up|down|status|kill|partition|heal|censor|kubeconfig` — the sandbox by hand;
`kill-site|partition-site|heal-site|site-kubeconfig N` for a hub stretched over sites (`up --hub-sites 3`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from e2e.sandbox import hubsites
from e2e.sandbox.world import CENSOR_ACTIONS, Sandbox


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m e2e.sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="build (once) and start a hub plus N member clusters")
    up.add_argument("--members", type=int, default=6)
    up.add_argument("--hub-sites", type=int, default=1,
                    help="stretch the hub over this many sites (3 or 5), each with its own etcd member")
    commands.add_parser("down", help="stop every process of the sandbox")
    commands.add_parser("status", help="clusters, their processes, faults and memory")
    commands.add_parser("build", help="only build the cached binaries")
    for fault in ("kill", "partition", "heal"):
        commands.add_parser(fault, help=f"{fault} one member's API server").add_argument("member")
    for fault in ("kill-site", "partition-site", "heal-site"):
        commands.add_parser(fault, help=f"{fault.split('-')[0]} one hub site (etcd member, apiserver, operator)"
                            ).add_argument("site", type=int)
    commands.add_parser("site-kubeconfig", help="print the admin kubeconfig of one hub site").add_argument(
        "site", type=int)
    censor = commands.add_parser("censor", help="act as a hostile admin of one member")
    censor.add_argument("member")
    censor.add_argument("--action", choices=CENSOR_ACTIONS, required=True)
    kubeconfig = commands.add_parser("kubeconfig", help="print the path of a cluster's admin kubeconfig")
    kubeconfig.add_argument("cluster")
    kubeconfig.add_argument("--identity", action="store_true", help="samizdat's least-privilege one instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sandbox = Sandbox()
    if args.command == "build":
        print(sandbox.binaries.directory)
    elif args.command == "up":
        timings = sandbox.up(args.members, hub_sites=args.hub_sites)
        time.sleep(2)  # let the controllers settle before measuring memory
        print(json.dumps({**timings, "rss_mib": sandbox.total_rss_mib(), "clusters": sandbox.status()}, indent=2))
    elif args.command == "down":
        sandbox.down()
    elif args.command == "status":
        print(json.dumps({"rss_mib": sandbox.total_rss_mib(), "clusters": sandbox.status()}, indent=2))
    elif args.command == "kubeconfig":
        path = sandbox.identity_kubeconfig_path(args.cluster) if args.identity else sandbox.admin_kubeconfig(args.cluster)
        print(path)
    elif args.command == "site-kubeconfig":
        print(hubsites.site_kubeconfig(sandbox.launcher, args.site))
    elif args.command in ("kill-site", "partition-site", "heal-site"):
        sites = hubsites.HubSites.load(sandbox.directory)
        if sites is None:
            print("this sandbox's hub has a single site (start it with `up --hub-sites 3`)", file=sys.stderr)
            return 1
        fault = {"kill-site": hubsites.kill_site, "partition-site": hubsites.partition_site,
                 "heal-site": hubsites.heal_site}[args.command]
        fault(sandbox.launcher, sandbox.state, sites, args.site)
    elif args.command == "censor":
        sandbox.censor(args.member, args.action)
    else:
        getattr(sandbox, args.command)(args.member)
    return 0


if __name__ == "__main__":
    sys.exit(main())
