"""The NVML agent's reading: every NVML answer it handles, read from recorded answers (the fake is
`nvml.Recorded`, at the one NVML boundary), and the observation it publishes on its node for each (how it
merges that into the Node: test_publishing.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from samizdat.core import inventory
from samizdat.agent import nvml, observation, reading

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
GIB = 1024**3
H100 = {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0", "memory_total": 80 * GIB, "mig_mode": [0, 0],
        "uncorrected_ecc": 0, "retired_pages_pending": False, "remapped_rows": [0, 0, 0, 0]}
CC_READY = {"cc_state": [nvml.CC_ENVIRONMENT_PROD, nvml.CC_FEATURE_ENABLED, 0], "cc_gpus_ready": 1,
            "cc_settings": [nvml.CC_ENVIRONMENT_PROD, nvml.CC_FEATURE_ENABLED, 0, 1]}
NODE = {"init": None, "driver_version": "550.54.15", "cuda_driver_version": 12040,
        "devices": [H100, {**H100, "uuid": "GPU-1"}], "cc_state": [0, 0, 0], "cc_gpus_ready": 0}
NOT_SUPPORTED = {"error": "NOT_SUPPORTED"}
LOST = {"error": "GPU_IS_LOST"}


def observe(answers: dict[str, Any]) -> observation.Observation:
    return reading.Reader(nvml.Recorded(answers)).observe()


@pytest.mark.parametrize(
    ("answers", "nvml_error"),
    [
        pytest.param({"init": {"error": "LIBRARY_NOT_FOUND"}}, "LIBRARY_NOT_FOUND", id="no-library"),
        pytest.param({"init": {"error": "DRIVER_NOT_LOADED"}}, "DRIVER_NOT_LOADED", id="driver-not-loaded"),
        pytest.param({"init": {"error": "LIB_RM_VERSION_MISMATCH"}}, "LIB_RM_VERSION_MISMATCH", id="mismatch"),
    ],
)
def test_a_missing_driver_is_an_answer(answers: dict[str, Any], nvml_error: str) -> None:
    seen = observe(answers)
    assert seen.nvml_error == nvml_error and seen.gpus == () and seen.cc_state == "unknown"
    published = observation.publication(seen, NOW, "0.1.0")
    assert published.condition["status"] == "Unknown" and published.taint is None
    # no GPU labels claimed, and no healthy count that would zero the node's capacity
    assert published.labels[inventory.OBSERVED_PRODUCT_LABEL] is None
    assert published.labels[inventory.OBSERVED_HEALTHY_LABEL] is None


def test_a_driver_that_appears_later_is_read() -> None:
    answers: dict[str, Any] = {"init": {"error": "DRIVER_NOT_LOADED"}}
    reader = reading.Reader(nvml.Recorded(answers))
    assert reader.observe().nvml_error == "DRIVER_NOT_LOADED"
    answers.update(NODE)
    assert reader.observe().driver_version == "550.54.15"


def test_a_healthy_node_is_read_and_labelled_as_gfd_would() -> None:
    seen = observe(NODE)
    assert seen.driver_version == "550.54.15" and seen.cuda_version == "12.4"
    assert [gpu.memory_mib for gpu in seen.gpus] == [81920, 81920] and seen.healthy_gpus == 2
    published = observation.publication(seen, NOW, "0.1.0")
    assert {k: published.labels[k] for k in (inventory.PRODUCT_LABEL, inventory.MEMORY_LABEL, inventory.COUNT_LABEL,
                                             inventory.OBSERVED_PRODUCT_LABEL, inventory.OBSERVED_HEALTHY_LABEL,
                                             "nvidia.com/cuda.driver-version.major",
                                             "nvidia.com/cuda.runtime-version.minor")} == {
        inventory.PRODUCT_LABEL: "NVIDIA-H100-80GB-HBM3", inventory.MEMORY_LABEL: "81920",
        inventory.COUNT_LABEL: "2", inventory.OBSERVED_PRODUCT_LABEL: "NVIDIA-H100-80GB-HBM3",
        inventory.OBSERVED_HEALTHY_LABEL: "2", "nvidia.com/cuda.driver-version.major": "550",
        "nvidia.com/cuda.runtime-version.minor": "4",
    }
    assert published.condition == {"type": "GPUHealthy", "status": "True", "reason": "GPUsHealthy",
                                   "message": "2 GPUs healthy"}
    assert published.annotations[inventory.AGENT_VERSION_ANNOTATION] == "0.1.0"
    assert json.loads(published.annotations[inventory.OBSERVATION_ANNOTATION])["cc_state"] == "off"


@pytest.mark.parametrize(
    ("answers", "state"),
    [
        pytest.param({"cc_state": NOT_SUPPORTED}, "unsupported", id="not-supported"),
        pytest.param({"cc_state": {"error": "FUNCTION_NOT_FOUND"}}, "unsupported", id="old-driver"),
        pytest.param({"cc_state": [0, 0, 0]}, "off", id="off"),
        pytest.param(CC_READY, "ready", id="on-ready"),
        pytest.param({**CC_READY, "cc_gpus_ready": 0}, "not-ready", id="on-not-ready"),
        pytest.param({**CC_READY, "cc_gpus_ready": NOT_SUPPORTED}, "not-ready", id="on-ready-unknown"),
        pytest.param({**CC_READY, "cc_state": [nvml.CC_ENVIRONMENT_PROD, nvml.CC_FEATURE_ENABLED, nvml.CC_DEVTOOLS_ON]},
                     "devtools", id="devtools"),
        pytest.param({**CC_READY, "cc_state": [nvml.CC_ENVIRONMENT_SIM, nvml.CC_FEATURE_ENABLED, 0]}, "simulated",
                     id="simulated"),
    ],
)
def test_confidential_computing_states(answers: dict[str, Any], state: str) -> None:
    seen = observe({**NODE, **answers})
    assert seen.cc_state == state
    labels = observation.publication(seen, NOW, "0.1.0").labels
    assert labels[inventory.OBSERVED_CC_LABEL] == state
    facts = inventory.gpu_facts({k: v for k, v in labels.items() if v is not None})
    assert facts is not None and facts.tee_observed is (state == "ready") and facts.tee is (state == "ready")


def test_cc_settings_give_the_multi_gpu_mode() -> None:
    assert observe({**NODE, **CC_READY}).cc.multi_gpu == "protected-pcie"
    assert observe({**NODE, **CC_READY, "cc_settings": NOT_SUPPORTED}).cc.multi_gpu is None


def test_mig_on_with_instances() -> None:
    mig = {**H100, "mig_mode": [nvml.MIG_ENABLED, nvml.MIG_ENABLED], "mig_devices": [
        {"name": "NVIDIA H100 80GB HBM3 MIG 3g.40gb", "memory_total": 40 * GIB},
        {"name": "NVIDIA H100 80GB HBM3 MIG 1g.10gb", "memory_total": 10 * GIB},
    ]}
    (gpu,) = observe({**NODE, "devices": [mig]}).gpus
    assert gpu.mig_enabled is True
    assert gpu.mig_devices == (observation.MIGDevice("NVIDIA H100 80GB HBM3 MIG 3g.40gb", 40960),
                               observation.MIGDevice("NVIDIA H100 80GB HBM3 MIG 1g.10gb", 10240))


@pytest.mark.parametrize(
    ("device", "enabled", "capable"),
    [
        pytest.param({**H100, "mig_mode": [0, 0]}, False, "true", id="mig-off"),
        pytest.param({**H100, "mig_mode": NOT_SUPPORTED}, None, "false", id="mig-not-supported"),
    ],
)
def test_mig_off_or_unsupported(device: dict[str, Any], enabled: bool | None, capable: str) -> None:
    seen = observe({**NODE, "devices": [device]})
    assert seen.gpus[0].mig_enabled is enabled and seen.gpus[0].mig_devices == ()
    assert observation.publication(seen, NOW, "x").labels["nvidia.com/mig.capable"] == capable


def test_not_supported_health_counters_leave_facts_unknown_not_unhealthy() -> None:
    device = {**H100, "uncorrected_ecc": NOT_SUPPORTED, "retired_pages_pending": NOT_SUPPORTED,
              "remapped_rows": NOT_SUPPORTED}
    (gpu,) = observe({**NODE, "devices": [device]}).gpus
    assert (gpu.uncorrected_ecc_errors, gpu.retired_pages_pending, gpu.row_remap_failed) == (None, None, None)
    assert gpu.healthy


@pytest.mark.parametrize(
    ("xid", "fatal"),
    [
        pytest.param(79, True, id="xid79-fallen-off-the-bus"),
        pytest.param(48, True, id="xid48-double-bit-ecc"),
        pytest.param(13, False, id="xid13-application-fault"),
    ],
)
def test_an_xid_event(xid: int, fatal: bool) -> None:
    answers = {**NODE, "xid_events": [{"device": 1, "xid": xid}]}
    reader = reading.Reader(nvml.Recorded(answers))
    seen = reader.observe()
    assert reader.new_xids == [(1, xid)] and seen.gpus[1].xids == {xid: 1}
    assert seen.healthy_gpus == (1 if fatal else 2)
    published = observation.publication(seen, NOW, "0.1.0")
    if fatal:
        assert published.taint == {"key": inventory.FAULT_TAINT, "value": f"Xid{xid}", "effect": "NoExecute"}
        assert published.condition["status"] == "False" and published.condition["reason"] == "FatalGPUFault"
        assert published.condition["message"] == f"GPU 1: Xid{xid}"
    else:
        assert published.taint is None and published.condition["status"] == "True"
    # remembered: the next pass sees no new event but keeps the fault
    again = reader.observe()
    assert reader.new_xids == [] and again.gpus[1].xids == {xid: 1}


def test_xid_events_unavailable_is_not_fatal_to_the_agent() -> None:
    assert observe({**NODE, "xid_watch": NOT_SUPPORTED}).healthy_gpus == 2


def test_a_lost_gpu() -> None:
    seen = observe({**NODE, "devices": [H100, {**H100, "uuid": "GPU-1", "name": LOST}]})
    assert seen.gpus[1].lost and seen.healthy_gpus == 1
    assert observation.publication(seen, NOW, "x").taint == {"key": inventory.FAULT_TAINT, "value": "GPULost",
                                                             "effect": "NoExecute"}


@pytest.mark.parametrize(
    ("device", "reason", "tainted"),
    [
        pytest.param({**H100, "remapped_rows": [0, 1, 0, 1]}, "FatalGPUFault", True, id="row-remap-failed"),
        pytest.param({**H100, "remapped_rows": [0, 1, 1, 0]}, "GPUResetRequired", False, id="row-remap-pending"),
        pytest.param({**H100, "retired_pages_pending": True}, "GPUResetRequired", False, id="pages-pending"),
    ],
)
def test_memory_faults(device: dict[str, Any], reason: str, tainted: bool) -> None:
    seen = observe({**NODE, "devices": [device]})
    published = observation.publication(seen, NOW, "x")
    assert seen.healthy_gpus == 0 and published.condition["reason"] == reason
    assert (published.taint is not None) is tainted


def test_recorded_answers_are_reread_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "node.json"
    path.write_text(json.dumps(NODE))
    reader = reading.Reader(nvml.Recorded(path=path))
    assert reader.observe().healthy_gpus == 2
    path.write_text(json.dumps({**NODE, "xid_events": [{"device": 0, "xid": 79}]}))
    assert reader.observe().fatal_faults == ("GPU 0: Xid79",)


def test_unknown_failures_are_not_swallowed() -> None:
    with pytest.raises(nvml.NVMLFailure):
        observe({**NODE, "devices": [{**H100, "name": {"error": "UNKNOWN"}}]})


def test_label_values_are_valid() -> None:
    assert observation.label_value("NVIDIA A100-SXM4-40GB (rev a1)") == "NVIDIA-A100-SXM4-40GB-rev-a1"
    assert len(observation.label_value("x" * 100)) == 63
