"""`python -m e2e.sandbox up|down|status|kill|partition|heal|censor|kubeconfig` — the sandbox by hand;
`kill-site|partition-site|heal-site|site-kubeconfig N` for a hub stretched over sites (`up --hub-sites 3`).

A pod whose template is annotated `sandbox.samizdat.io/ready-after: 20s` is Running at once and Ready only
20 s later, as a model server loading its weights; pods without it are Ready at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from e2e.sandbox import hubsites, toolchain
from e2e.sandbox.links import PROFILES
from e2e.sandbox.world import CENSOR_ACTIONS, Sandbox

CENSOR_HELP = """what the member's hostile admin does, with the admin's credentials:
  delete, scale-zero, swap-image, revoke-credentials, delete-namespace   act on samizdat's objects or identity
  cordon           cordon the member's GPU nodes (running pods stay; new ones stay Pending)
  taint            taint the GPU nodes NoSchedule and NoExecute (running pods evicted; new ones Pending)
  quota-zero       a ResourceQuota of 0 requests.nvidia.com/gpu on samizdat-workloads (new pods refused)
  stop-scheduler   stop the member's kube-scheduler (new pods Pending, never scheduled)
  block-image      the member's nodes cannot pull --image (new pods of it held in ImagePullBackOff)
`heal MEMBER` undoes cordon, taint, quota-zero, stop-scheduler and block-image, and clears a `degrade`d link."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m e2e.sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="build (once) and start a hub plus N member clusters")
    up.add_argument("--members", type=int, default=6)
    up.add_argument("--hub-sites", type=int, default=1,
                    help="stretch the hub over this many sites (3 or 5), each with its own etcd member")
    up.add_argument("--links", action="store_true",
                    help="put a Toxiproxy proxy between samizdat and each member, for `degrade`")
    commands.add_parser("down", help="stop every process of the sandbox")
    commands.add_parser("status", help="clusters, their processes, faults and memory")
    commands.add_parser("build", help="only build the cached binaries")
    commands.add_parser("kill", help="SIGKILL one member's API server (refused)").add_argument("member")
    commands.add_parser("partition", help="SIGSTOP one member's API server (time-outs)").add_argument("member")
    commands.add_parser("heal", help="undo every fault of one member; restart its controllers").add_argument("member")
    degrade = commands.add_parser("degrade", help="degrade the link between samizdat and one member (up --links)")
    degrade.add_argument("member")
    degrade.add_argument("--profile", choices=PROFILES, required=True)
    for fault in ("kill-site", "partition-site", "heal-site"):
        commands.add_parser(fault, help=f"{fault.split('-')[0]} one hub site (etcd member, apiserver, operator)"
                            ).add_argument("site", type=int)
    commands.add_parser("site-kubeconfig", help="print the admin kubeconfig of one hub site").add_argument(
        "site", type=int)
    censor = commands.add_parser("censor", help="act as a hostile admin of one member", epilog=CENSOR_HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    censor.add_argument("member")
    censor.add_argument("--action", choices=CENSOR_ACTIONS, required=True)
    censor.add_argument("--image", help="the image to block (block-image only)")
    kubeconfig = commands.add_parser("kubeconfig", help="print the path of a cluster's admin kubeconfig")
    kubeconfig.add_argument("cluster")
    kubeconfig.add_argument("--identity", action="store_true", help="samizdat's least-privilege one instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (RuntimeError, ValueError, KeyError) as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    sandbox = Sandbox()
    if args.command == "build":
        toolchain.ensure_tool("toxiproxy")  # the links' proxy, for `up --links` and e2e/test_links
        toolchain.ensure_tool("external-dns")  # for the sandbox's DNS (e2e/test_traffic)
        print(sandbox.binaries.directory)
    elif args.command == "up":
        timings = sandbox.up(args.members, hub_sites=args.hub_sites, links=args.links)
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
        sandbox.censor(args.member, args.action, image=args.image)
    elif args.command == "degrade":
        sandbox.degrade(args.member, args.profile)
    else:
        getattr(sandbox, args.command)(args.member)
    return 0


if __name__ == "__main__":
    sys.exit(main())
