"""`samizdat agent`: report one GPU node's NVML facts and health on its Node (a DaemonSet pod per node).

With `--replay NODE=FILE` it reports on kwok nodes from recorded NVML answers instead of a driver: one
process serves every fake node of a sandbox member, each through its own reader and the same loop a
real node runs (see `samizdat.agent.nvml.Recorded`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

from samizdat.agent import daemon, metrics, nvml
from samizdat.remote.clusters import kubeconfig
from samizdat.remote.clusters.client import ClusterClient


def _credentials(path: str | None) -> kubeconfig.Credentials:
    if path:
        return kubeconfig.load(path)
    try:
        return kubeconfig.from_service_account()
    except kubeconfig.KubeconfigError:
        return kubeconfig.from_environment()


def _libraries(args: argparse.Namespace) -> dict[str, nvml.Library]:
    if args.replay:
        replays = dict(item.split("=", 1) for item in args.replay)
        return {node: nvml.Recorded(path=Path(path)) for node, path in replays.items()}
    node = args.node or os.environ.get("NODE_NAME")
    if not node:
        raise SystemExit("samizdat agent: name the node with --node or $NODE_NAME (the downward API)")
    return {node: nvml.Driver()}


async def _run(args: argparse.Namespace) -> None:
    libraries = _libraries(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    settings = daemon.Settings(interval_s=args.interval, refresh_s=args.refresh)
    # the agent's own cluster, named so in errors ("member 'this cluster': …")
    async with ClusterClient("this cluster", _credentials(args.kubeconfig)) as client:
        await asyncio.gather(*(
            daemon.report(node, library, client, settings, stop) for node, library in libraries.items()
        ))


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    asyncio.run(_run(args))
    return 0
