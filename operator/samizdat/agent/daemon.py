"""The agent's loop for one node: observe through NVML, publish on change, keep metrics current.

The read is cheap (a few dozen NVML calls), so it runs every `interval_s`; the Node is written only
when what would be published changes, or every `refresh_s` so the observed-at time shows the agent is
alive. A failed write is logged and retried on the next pass; the loop never dies of an API or NVML
error, since a crash-looping agent would leave a fault taint behind (or fail to set one).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import samizdat
from samizdat.core import inventory
from samizdat.agent import metrics, nvml, observation, publishing, reading
from samizdat.remote.clusters import errors
from samizdat.remote.clusters.client import ClusterClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    interval_s: float = 5.0
    refresh_s: float = 300.0


def _unstamped(published: observation.Publication) -> observation.Publication:
    """What was published, without the time it was observed (which changes on every pass)."""
    annotations = {k: v for k, v in published.annotations.items() if k != inventory.OBSERVED_AT_ANNOTATION}
    return dataclasses.replace(published, annotations=annotations)


async def report(
    node: str, library: nvml.Library, client: ClusterClient, settings: Settings, stop: asyncio.Event
) -> None:
    """Report on `node` until `stop` is set."""
    metrics.node_started(node)
    reader = reading.Reader(library)
    written: observation.Publication | None = None
    last_write = 0.0
    while not stop.is_set():
        try:
            seen = await asyncio.to_thread(reader.observe)  # NVML calls block
        except nvml.NVMLFailure as failure:
            logger.error("node %s: NVML failed unexpectedly: %s", node, failure)
            seen = observation.Observation(nvml_error=failure.name)
        for index, xid in reader.new_xids:
            logger.warning("node %s: XID %d on GPU %d", node, xid, index)
        metrics.observed(node, seen, reader.new_xids)
        now = datetime.now(UTC)
        published = observation.publication(seen, now, samizdat.__version__)
        if _unstamped(published) != written or time.monotonic() - last_write > settings.refresh_s:
            try:
                await publishing.publish(client, node, published, now)
                written, last_write = _unstamped(published), time.monotonic()
            except errors.MemberError as error:
                logger.warning("node %s: publishing failed (retrying): %s", node, error)
                metrics.publish_failed(node)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.interval_s)
        except TimeoutError:
            pass
