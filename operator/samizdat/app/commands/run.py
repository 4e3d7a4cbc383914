"""`samizdat run`: the operator itself, in the hub named by the kubeconfig (or the pod's ServiceAccount)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import socket
import sys
import time
from pathlib import Path

import kopf

from samizdat.remote.clusters import kubeconfig
from samizdat.core.leadership import Election, Timing

DEFAULT_LEASE_NAMESPACE = "samizdat-system"


def election(args: argparse.Namespace, service_account: Path = kubeconfig.SERVICE_ACCOUNT_DIR) -> Election | None:
    """The election from the command line (None: no `--lease-name`, this operator is the only one);
    raises ValueError for timings that cannot be safe."""
    timing = Timing(args.lease_duration, args.renew_deadline, args.retry_period)
    if args.lease_name is None:
        return None
    namespace_file = service_account / "namespace"
    namespace = args.lease_namespace or (
        namespace_file.read_text().strip() if namespace_file.is_file() else "") or DEFAULT_LEASE_NAMESPACE
    # Unique per process: a restarted operator must not mistake its predecessor's Lease for its own.
    identity = args.identity or f"{socket.gethostname()}-{secrets.token_hex(4)}"
    return Election(identity, namespace, args.lease_name, timing)


def log_in_at_own_site(registry: kopf.OperatorRegistry | None = None) -> None:
    """kopf logs in at `--hub-server` (`startup.login_at_own_site`), in place of its own logins."""
    from samizdat.app.handlers import startup

    kopf.on.login(id="own-site", registry=registry)(startup.login_at_own_site)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe is noise
    try:
        chosen = election(args)
    except ValueError as error:
        print(f"samizdat run: {error}", file=sys.stderr)
        return 2
    import samizdat.app.handlers  # noqa: F401  (registers the handlers)

    if args.hub_server is not None:
        try:  # fail here, once, rather than in every login
            kubeconfig.from_service_account(server=args.hub_server)
        except kubeconfig.KubeconfigError as error:
            print(f"samizdat run: --hub-server needs the pod's ServiceAccount: {error}", file=sys.stderr)
            return 2
        log_in_at_own_site()
    asyncio.run(kopf.operator(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.peering is None,
        peering_name=args.peering,
        # kopf pauses every replica whose priority ties with another's: start times in microseconds do
        # not tie even for replicas a Deployment starts together (and stay below 2**53, exact in JSON)
        priority=args.priority if args.priority is not None else time.time_ns() // 1000,
        memo=kopf.Memo(quarantine_seconds=args.quarantine_seconds, metrics_port=args.metrics_port,
                       renew_credentials_at=args.renew_credentials_at, election=chosen,
                       hub_server=args.hub_server),
        liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None,
    ))
    return 0
