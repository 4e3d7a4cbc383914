"""`samizdat run`: the operator itself, in the hub named by the kubeconfig (or the pod's ServiceAccount)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import kopf


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe is noise
    import samizdat.handlers  # noqa: F401  (registers the handlers)

    asyncio.run(kopf.operator(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.peering is None,
        peering_name=args.peering,
        # kopf pauses every replica whose priority ties with another's: start times in microseconds do
        # not tie even for replicas a Deployment starts together (and stay below 2**53, exact in JSON)
        priority=args.priority if args.priority is not None else time.time_ns() // 1000,
        memo=kopf.Memo(quarantine_seconds=args.quarantine_seconds, metrics_port=args.metrics_port,
                       renew_credentials_at=args.renew_credentials_at),
        liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None,
    ))
    return 0
