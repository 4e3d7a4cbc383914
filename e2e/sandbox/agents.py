"""Fake GPUs for the sandbox's kwok nodes: NVML answers matching each node, read by a real `samizdat agent`.

Each GPU node gets a file of recorded NVML answers (`samizdat.agent.nvml.Recorded`) that says what its
labels say: the product, memory and count of `nvidia.com/gpu.*`, and confidential computing ready
where `nvidia.com/cc.mode=on`, unless a test makes the answers disagree with the labels (a node that
claims CC it does not have). Faults are injected by rewriting a node's file: `inject_xid` appends an
XID event, which the agent reads on its next pass as it would read the driver's event queue.

One agent process per member serves all that member's GPU nodes (`samizdat agent --replay NODE=FILE`
per node): each node still has its own reader, its own answers and the same loop and Node writes a real
node's DaemonSet pod runs; only the Python process is shared, which keeps the sandbox at one process
per member rather than one per node. Agents run only where a test starts them, never with `up`, and a
test that started them calls `stop`, which also wipes what they wrote, so later tests see plain nodes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from e2e.sandbox.launcher import kill_recorded
from e2e.sandbox.world import Sandbox

MIB = 1024 * 1024
DRIVER_VERSION = "550.54.15"
CUDA_DRIVER_VERSION = 12040
CC_READY = {"cc_state": [2, 1, 0], "cc_gpus_ready": 1, "cc_settings": [2, 1, 0, 0]}  # prod, on, no devtools
CC_OFF = {"cc_state": [0, 0, 0], "cc_gpus_ready": 0, "cc_settings": [0, 0, 0, 0]}
AGENT_LABEL_PREFIXES = ("samizdat.io/gpu.", "samizdat.io/cc", "nvidia.com/cuda.", "nvidia.com/mig.capable")
AGENT_ANNOTATIONS = ("samizdat.io/gpu-observed-at", "samizdat.io/agent-version", "samizdat.io/gpu-observation")
FAULT_TAINT = "samizdat.io/gpu-fault"
INTERVAL_S = 0.5  # how often the sandbox's agents read their answers


def answers(node: dict[str, Any], *, cc: bool | None = None) -> dict[str, Any]:
    """NVML answers matching the node's labels; `cc` overrides what `nvidia.com/cc.mode` claims."""
    labels = node["metadata"]["labels"]
    name = node["metadata"]["name"]
    confidential = labels.get("nvidia.com/cc.mode") == "on" if cc is None else cc
    device = {"name": labels["nvidia.com/gpu.product"].replace("-", " "),
              "memory_total": int(labels["nvidia.com/gpu.memory"]) * MIB, "mig_mode": [0, 0],
              "uncorrected_ecc": 0, "retired_pages_pending": False, "remapped_rows": [0, 0, 0, 0]}
    return {
        "init": None, "driver_version": DRIVER_VERSION, "cuda_driver_version": CUDA_DRIVER_VERSION,
        "devices": [{**device, "uuid": f"GPU-{name}-{index}"} for index in range(int(labels["nvidia.com/gpu.count"]))],
        **(CC_READY if confidential else CC_OFF),
        "xid_events": [],
    }


class Agents:
    """The agents of one sandbox, one process per member that has any."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.directory = sandbox.directory / "agents"
        self.directory.mkdir(exist_ok=True)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def answers_file(self, member: str, node: str) -> Path:
        return self.directory / member / f"{node}.json"

    def gpu_nodes(self, member: str) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = self.sandbox.kubectl(member).get_json("nodes", "-l", "nvidia.com/gpu.present=true")["items"]
        return nodes

    def start(self, member: str, *, cc: bool | None = None) -> list[str]:
        """Agents for every GPU node of `member` (answers as their labels say, or `cc` forced); returns the
        node names once each carries the agent's observation."""
        self.stop(member)
        nodes = self.gpu_nodes(member)
        (self.directory / member).mkdir(exist_ok=True)
        replays = []
        for node in nodes:
            name = node["metadata"]["name"]
            self._write(self.answers_file(member, name), answers(node, cc=cc))
            replays += ["--replay", f"{name}={self.answers_file(member, name)}"]
        log = self.sandbox.directory / "logs" / f"agent-{member}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as out:
            self.processes[member] = subprocess.Popen(
                [sys.executable, "-m", "samizdat", "agent", "--kubeconfig", str(self.sandbox.admin_kubeconfig(member)),
                 "--interval", str(INTERVAL_S), *replays],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        self._pid_file(member).write_text(str(self.processes[member].pid))
        names = [node["metadata"]["name"] for node in nodes]
        self.wait_published(member, names)
        return names

    def wait_published(self, member: str, names: Iterable[str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        wanted = set(names)
        while time.monotonic() < deadline:
            published = {node["metadata"]["name"] for node in self.gpu_nodes(member)
                         if "samizdat.io/agent-version" in node["metadata"].get("annotations", {})}
            if wanted <= published:
                return
            time.sleep(0.3)
        raise TimeoutError(f"{member}: agents did not publish on {sorted(wanted)} within {timeout:.0f}s")

    def inject_xid(self, member: str, node: str, xid: int, device: int = 0) -> None:
        """An XID event on one GPU of `node`, as the driver would queue it."""
        self._edit(member, node, lambda a: {**a, "xid_events": [*a["xid_events"], {"device": device, "xid": xid}]})

    def stop(self, member: str) -> None:
        """Stop the member's agent and wipe what agents wrote on its nodes."""
        process = self.processes.pop(member, None)
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
        kill_recorded(self._pid_file(member))
        kubectl = self.sandbox.kubectl(member)
        nodes = self.gpu_nodes(member)
        for node in nodes:
            metadata = node["metadata"]
            labels = {key: None for key in metadata.get("labels", {}) if key.startswith(AGENT_LABEL_PREFIXES)}
            annotations = {key: None for key in metadata.get("annotations", {}) if key in AGENT_ANNOTATIONS}
            taints = [t for t in node.get("spec", {}).get("taints") or [] if t.get("key") != FAULT_TAINT]
            if labels or annotations or len(taints) != len(node.get("spec", {}).get("taints") or []):
                patch = {"metadata": {"labels": labels, "annotations": annotations}, "spec": {"taints": taints or None}}
                kubectl.run("patch", "node", metadata["name"], "--type=merge", "-p", json.dumps(patch))

    def stop_all(self) -> None:
        for member in list(self.processes):
            self.stop(member)

    def _pid_file(self, member: str) -> Path:
        # `Sandbox.down` stops agents a test left behind through these files.
        return self.sandbox.directory / f"agent-{member}.pid"

    def _edit(self, member: str, node: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        path = self.answers_file(member, node)
        self._write(path, change(json.loads(path.read_text())))

    @staticmethod
    def _write(path: Path, document: dict[str, Any]) -> None:
        # whole or not at all: the agent may read at any moment
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(document))
        os.replace(scratch, path)
