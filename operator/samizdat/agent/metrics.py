"""The agent's Prometheus metrics, one series per node it reports on (a DaemonSet pod reports one).

Named as the operator's are: `samizdat_agent_<field>`, counters in `_total`. Labels are bounded: nodes,
XID codes (a closed catalogue of a few hundred) and the closed set of `inventory.CC_STATES`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

from samizdat.core import inventory
from samizdat.agent.observation import Observation

NVML_UP = Gauge("samizdat_agent_nvml_up", "1 if NVML answered on the node (driver present).", ["node"])
GPUS = Gauge("samizdat_agent_gpus", "GPUs NVML sees on the node.", ["node"])
GPUS_HEALTHY = Gauge("samizdat_agent_gpus_healthy", "GPUs on the node without a fault that takes them out.",
                     ["node"])
XID_EVENTS = Counter("samizdat_agent_xid_events_total", "Critical XID events seen on the node's GPUs, by code.",
                     ["node", "xid"])
CC_STATE = Gauge("samizdat_agent_cc_state", "1 for the node's observed confidential-computing state, 0 for others.",
                 ["node", "state"])
FATAL = Gauge("samizdat_agent_gpu_fault", "1 while the node carries the agent's fatal-GPU-fault taint.", ["node"])
PUBLISH_ERRORS = Counter("samizdat_agent_publish_errors_total", "Failed writes of the observation to the Node.",
                         ["node"])


def serve(port: int, address: str = "0.0.0.0") -> None:
    start_http_server(port, addr=address)


def node_started(node: str) -> None:
    """Counters exist at 0 from the start, so that `increase()` sees their first event too."""
    PUBLISH_ERRORS.labels(node)


def observed(node: str, observation: Observation, new_xids: list[tuple[int, int]]) -> None:
    NVML_UP.labels(node).set(0 if observation.nvml_error else 1)
    GPUS.labels(node).set(len(observation.gpus))
    GPUS_HEALTHY.labels(node).set(observation.healthy_gpus)
    FATAL.labels(node).set(1 if observation.fatal_faults else 0)
    for state in inventory.CC_STATES:
        CC_STATE.labels(node, state).set(1 if state == observation.cc_state else 0)
    for _, xid in new_xids:
        XID_EVENTS.labels(node, str(xid)).inc()


def publish_failed(node: str) -> None:
    PUBLISH_ERRORS.labels(node).inc()
