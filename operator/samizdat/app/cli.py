"""The `samizdat` command: `run` starts the operator, `plan` answers "where would this go?" offline,
`agent` reports a GPU node's NVML facts and health on its Node, and `join` and `unjoin` register a member
cluster and take it out (also as `kubectl samizdat ...`, a kubectl plugin)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from samizdat.core import membership
from samizdat.remote.clusters import kubeconfig
from samizdat.app.commands import join, unjoin

# kubectl runs a plugin `kubectl-samizdat` for `kubectl samizdat ...`: help then names the command typed.
PLUGIN = "kubectl-samizdat"


def build_parser(prog: str = "samizdat") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="show where a workload would be placed, and why not elsewhere")
    plan.add_argument("--clusters", required=True, help="YAML file of MemberCluster objects (with status)")
    plan.add_argument("--workload", required=True, help="YAML file with one AIWorkload")
    plan.add_argument("--alliances", help="YAML file of extra Alliance objects (override built-ins by name)")
    plan.add_argument("--current", help="JSON file {cluster: replicas} of the current placement")
    plan.add_argument("-o", "--output", choices=["table", "json"], default="table")

    run = commands.add_parser("run", help="run the operator against the hub in the current kubeconfig")
    run.add_argument("--namespace", action="append", default=[], help="watch only these namespaces")
    run.add_argument("--peering", metavar="NAME",
                     help="coordinate replicas through this kopf peering object (HA); default: standalone")
    run.add_argument("--metrics-port", type=int, default=8080)
    run.add_argument("--priority", type=int, default=None,
                     help="peering priority; the highest runs, the others stand by (default: start time in µs, "
                          "so the newest replica takes over)")
    run.add_argument("--quarantine-seconds", type=float, default=300.0,
                     help="how long a member that censored takes no replicas")
    run.add_argument("--health-port", type=int, default=0, help="serve /healthz for liveness probes (0: off)")
    run.add_argument("--renew-credentials-at", type=_fraction, default=membership.DEFAULT_RENEW_AT,
                     help="renew a member's token once this fraction of its lifetime has passed")
    run.add_argument("--hub-server", type=_hub_server, default=None, metavar="URL",
                     help="talk to the hub at this API server (https) with the pod's ServiceAccount token and CA: "
                          "with a hub over several sites, this site's own kube-apiserver (default: the "
                          "`kubernetes` Service in a pod, else the kubeconfig)")

    election = run.add_argument_group(
        "leader election", "operators in several hub sites elect one leader through a Lease; only it writes to members")
    election.add_argument("--lease-name", default=None,
                          help="stand for leader through this Lease in the hub (e.g. samizdat-leader); without it "
                               "the operator writes as the only one, as with a hub in one site")
    election.add_argument("--lease-namespace", default=None,
                          help="its namespace (default: the pod's own namespace, else samizdat-system)")
    election.add_argument("--identity", default=None,
                          help="this operator's name in the Lease, unique per process (default: host name and a "
                               "random suffix)")
    election.add_argument("--lease-duration", type=int, default=8, metavar="SECONDS",
                          help="how long standbys wait after they last saw the Lease change before taking it")
    election.add_argument("--renew-deadline", type=float, default=5.0, metavar="SECONDS",
                          help="how long after its last renewal the leader stops writing (less than the duration)")
    election.add_argument("--retry-period", type=float, default=1.0, metavar="SECONDS",
                          help="how often candidates read and the leader renews the Lease")


    join.add_arguments(commands.add_parser(
        "join", help="register a member cluster: its identity, a bounded credential, the hub's Secret and MemberCluster",
        description=join.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    ))
    unjoin.add_arguments(commands.add_parser(
        "unjoin", help="re-place a member's replicas elsewhere, then remove samizdat from it and from the hub",
        description=unjoin.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    ))

    agent = commands.add_parser("agent", help="report this GPU node's NVML facts and health on its Node")
    agent.add_argument("--node", help="the Node to report on (default: $NODE_NAME)")
    agent.add_argument("--kubeconfig", help="default: the pod's service account, else $KUBECONFIG")
    agent.add_argument("--replay", action="append", default=[], metavar="NODE=FILE",
                       help="report on NODE from recorded NVML answers instead of the driver (sandbox, tests)")
    agent.add_argument("--interval", type=float, default=5.0, help="seconds between NVML reads")
    agent.add_argument("--refresh", type=float, default=300.0,
                       help="rewrite the Node at least this often even without a change (seconds)")
    agent.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics (0: off)")
    return parser


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("a fraction between 0 and 1 (exclusive)")
    return value


def _hub_server(text: str) -> str:
    try:
        return kubeconfig.hub_server(text)
    except kubeconfig.KubeconfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    invoked = os.path.basename(sys.argv[0]) if sys.argv else ""
    args = build_parser("kubectl samizdat" if invoked == PLUGIN else "samizdat").parse_args(argv)
    if args.command == "join":
        return join.main(args)
    if args.command == "unjoin":
        return unjoin.main(args)
    if args.command == "plan":
        from samizdat.app.commands import plan

        return plan.main(args)
    if args.command == "agent":
        from samizdat.app.commands import agent

        return agent.main(args)
    from samizdat.app.commands import run

    return run.main(args)


if __name__ == "__main__":
    sys.exit(main())
