"""What the agent saw of a node's GPUs, and what it therefore publishes on the node (pure values).

`Observation` is NVML's answers turned into facts; `publication` turns it into the labels, annotations,
node condition and taint the agent writes. Names come from `samizdat.core.inventory`, which reads them back.

Which faults take a GPU out of service, and why:
- XIDs in `FATAL_XIDS`, from NVIDIA's XID catalogue, all of which need a GPU reset or a reboot:
  48 double-bit ECC error, 61/62 internal micro-controller breakpoint/halt, 64 ECC page retirement or
  row-remapper recording failure, 74 NVLink error, 79 GPU has fallen off the bus, 95 uncontained ECC
  error, 119/120 GSP timeout/error. Others (13, 31, 43, 45, 94... application faults, or contained ECC
  errors that only kill the process) are counted but leave the GPU in service, as NVIDIA's device
  plugin does.
- NVML answering `GPU_IS_LOST` for the GPU, and a failed row remapping (the memory can no longer hide
  its bad rows).
- A pending page retirement or row remapping takes the GPU out of the healthy count (it needs a reset
  to take effect) but is not fatal: running work may finish.

A fatal fault on any GPU taints the whole node `samizdat.io/gpu-fault:NoExecute`: NoSchedule alone would
leave pods bound to a GPU that can no longer make progress, and a replica stuck there is worse than one
restarted elsewhere. The node's other GPUs are lost with it until someone resets the GPU and the agent
restarts (XIDs are remembered for the agent's lifetime, as the driver remembers them until a reset).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from samizdat.core import inventory

FATAL_XIDS = frozenset({48, 61, 62, 64, 74, 79, 95, 119, 120})
TAINT_EFFECT = "NoExecute"


@dataclass(frozen=True, slots=True)
class MIGDevice:
    name: str
    memory_mib: int | None


@dataclass(frozen=True, slots=True)
class GPU:
    """One physical GPU. None means NVML could not say (NOT_SUPPORTED and the like)."""

    index: int
    uuid: str | None
    name: str | None
    memory_mib: int | None
    mig_enabled: bool | None = None
    mig_devices: tuple[MIGDevice, ...] = ()
    uncorrected_ecc_errors: int | None = None
    retired_pages_pending: bool | None = None
    row_remap_pending: bool | None = None
    row_remap_failed: bool | None = None
    lost: bool = False
    xids: Mapping[int, int] = field(default_factory=dict)  # XID -> events seen since the agent started

    @property
    def fatal_faults(self) -> tuple[str, ...]:
        """Why this GPU is out of service for good (until reset), empty when it is not."""
        faults = ["GPULost"] if self.lost else []
        faults += [f"Xid{xid}" for xid in sorted(self.xids) if xid in FATAL_XIDS]
        if self.row_remap_failed:
            faults.append("RowRemapFailure")
        return tuple(faults)

    @property
    def healthy(self) -> bool:
        return not self.fatal_faults and not self.retired_pages_pending and not self.row_remap_pending


@dataclass(frozen=True, slots=True)
class ConfidentialComputing:
    """`nvmlSystemGetConfComputeState` and friends; None where the driver does not say."""

    supported: bool
    environment: str | None = None  # "prod", "sim" or "unavailable"
    enabled: bool | None = None
    devtools: bool | None = None
    gpus_ready: bool | None = None  # nvmlSystemGetConfComputeGpusReadyState: accepting work
    multi_gpu: str | None = None  # from the settings: "none", "protected-pcie", "nvle"

    @property
    def state(self) -> str:
        """One of `inventory.CC_STATES`; only `ready` is a TEE."""
        if not self.supported:
            return "unsupported"
        if not self.enabled:
            return "off"
        if self.devtools:
            return "devtools"  # CC on, but debuggable: no confidentiality
        if self.environment != "prod":
            return "simulated"
        return inventory.CC_READY if self.gpus_ready else "not-ready"


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything read in one pass. `nvml_error` names why NVML did not answer at all (no driver)."""

    nvml_error: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None  # the CUDA version the driver supports, e.g. "12.4"
    gpus: tuple[GPU, ...] = ()
    cc: ConfidentialComputing = ConfidentialComputing(supported=False)

    @property
    def healthy_gpus(self) -> int:
        return sum(1 for gpu in self.gpus if gpu.healthy)

    @property
    def fatal_faults(self) -> tuple[str, ...]:
        return tuple(f"GPU {gpu.index}: {fault}" for gpu in self.gpus for fault in gpu.fatal_faults)

    @property
    def cc_state(self) -> str:
        return "unknown" if self.nvml_error else self.cc.state

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        for gpu in document["gpus"]:
            gpu["xids"] = {str(xid): count for xid, count in gpu["xids"].items()}
        document["cc_state"] = self.cc_state
        document["healthy_gpus"] = self.healthy_gpus
        return document


@dataclass(frozen=True, slots=True)
class Publication:
    """What the agent writes on its node: labels (None removes one), annotations, condition, taint."""

    labels: Mapping[str, str | None]
    annotations: Mapping[str, str]
    condition: Mapping[str, str]
    taint: Mapping[str, str] | None


_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(text: str) -> str:
    """A product name as GFD spells it in a label: spaces to dashes, at most 63 characters."""
    return _LABEL_VALUE.sub("-", text.strip()).strip("-_.")[:63].rstrip("-_.")


def _driver_labels(observation: Observation) -> dict[str, str | None]:
    """GFD's driver and CUDA labels (`nvidia.com/cuda.driver-version.*`, `.runtime-version.*`)."""
    labels: dict[str, str | None] = {}
    if observation.driver_version:
        parts = [*observation.driver_version.split("."), "", ""]
        labels["nvidia.com/cuda.driver-version.full"] = label_value(observation.driver_version)
        for key, value in zip(("major", "minor", "revision"), parts, strict=False):
            if value:
                labels[f"nvidia.com/cuda.driver-version.{key}"] = label_value(value)
    if observation.cuda_version:
        major, _, minor = observation.cuda_version.partition(".")
        labels["nvidia.com/cuda.runtime-version.full"] = observation.cuda_version
        labels["nvidia.com/cuda.runtime-version.major"] = major
        labels["nvidia.com/cuda.runtime-version.minor"] = minor
    return labels


def _gpu_labels(observation: Observation) -> dict[str, str | None]:
    """GFD's names where GFD has them (so nodes without GFD work, and GFD agrees where it runs), and
    samizdat's observed copies, which the inventory prefers. A node whose GPUs NVML cannot name gets its
    observed GPU labels removed rather than left stale."""
    first = observation.gpus[0] if observation.gpus else None
    if first is None or not first.name or first.memory_mib is None:
        return {key: None for key in (inventory.OBSERVED_PRODUCT_LABEL, inventory.OBSERVED_MEMORY_LABEL,
                                      inventory.OBSERVED_COUNT_LABEL)}
    product, memory, count = label_value(first.name), str(first.memory_mib), str(len(observation.gpus))
    return {
        "nvidia.com/gpu.present": "true",
        inventory.PRODUCT_LABEL: product,
        inventory.MEMORY_LABEL: memory,
        inventory.COUNT_LABEL: count,
        "nvidia.com/mig.capable": "true" if first.mig_enabled is not None else "false",
        inventory.OBSERVED_PRODUCT_LABEL: product,
        inventory.OBSERVED_MEMORY_LABEL: memory,
        inventory.OBSERVED_COUNT_LABEL: count,
    }


def _condition(observation: Observation) -> dict[str, str]:
    if observation.nvml_error:
        return {"type": inventory.HEALTH_CONDITION, "status": "Unknown", "reason": "NVMLUnavailable",
                "message": f"NVML did not answer: {observation.nvml_error}"}
    faults = observation.fatal_faults
    if faults:
        return {"type": inventory.HEALTH_CONDITION, "status": "False", "reason": "FatalGPUFault",
                "message": "; ".join(faults)}
    unhealthy = [gpu.index for gpu in observation.gpus if not gpu.healthy]
    if unhealthy:
        return {"type": inventory.HEALTH_CONDITION, "status": "False", "reason": "GPUResetRequired",
                "message": f"GPUs {unhealthy} have page retirements or row remappings pending a reset"}
    return {"type": inventory.HEALTH_CONDITION, "status": "True", "reason": "GPUsHealthy",
            "message": f"{len(observation.gpus)} GPUs healthy"}


def publication(observation: Observation, now: datetime, agent_version: str) -> Publication:
    """The node's labels, annotations, GPU health condition and fault taint for `observation`."""
    labels = {**_driver_labels(observation), **_gpu_labels(observation)}
    # NVML silent (no driver, no permission) says nothing about health: count nothing rather than zero
    labels[inventory.OBSERVED_HEALTHY_LABEL] = None if observation.nvml_error else str(observation.healthy_gpus)
    labels[inventory.OBSERVED_CC_LABEL] = observation.cc_state
    faults = observation.fatal_faults
    taint = {"key": inventory.FAULT_TAINT, "value": label_value(faults[0].split(": ")[1]),
             "effect": TAINT_EFFECT} if faults else None
    return Publication(
        labels=labels,
        annotations={
            inventory.OBSERVED_AT_ANNOTATION: now.isoformat(timespec="seconds"),
            inventory.AGENT_VERSION_ANNOTATION: agent_version,
            inventory.OBSERVATION_ANNOTATION: json.dumps(observation.to_json(), sort_keys=True,
                                                         separators=(",", ":")),
        },
        condition=_condition(observation),
        taint=taint,
    )
