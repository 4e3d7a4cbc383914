"""The NVML boundary: the only module in samizdat that imports `pynvml` (nvidia-ml-py).

Everything above it reads GPUs through `Library`, a narrow set of calls in plain Python values that
raise `NVMLFailure(code)` with NVML's own return codes. Two libraries answer them:

- `Driver`: the real NVIDIA driver through pynvml. A machine without the driver is an ordinary answer
  (`LIBRARY_NOT_FOUND` or `DRIVER_NOT_LOADED` from `init`), not a crash.
- `Recorded`: answers recorded as JSON, error codes included (`{"error": "NOT_SUPPORTED"}`), for the
  unit tests and the sandbox's kwok GPU nodes, which have no hardware. It re-reads its file when the
  file changes, so a test can inject an XID or switch confidential computing off under a running agent.

The recorded format (every key optional; an absent call answers `FUNCTION_NOT_FOUND`, as an old driver
does; any value may be `{"error": "<NVML_ERROR_ name without the prefix>"}`):

    {"init": null, "driver_version": "550.54.15", "cuda_driver_version": 12040,
     "cc_state": [environment, ccFeature, devToolsMode], "cc_gpus_ready": 1,
     "cc_settings": [environment, ccFeature, devToolsMode, multiGpuMode],
     "devices": [{"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-...", "memory_total": 85520809984,
                  "mig_mode": [current, pending], "mig_devices": [{"name": ..., "memory_total": ...}],
                  "uncorrected_ecc": 0, "retired_pages_pending": false,
                  "remapped_rows": [corrected, uncorrected, pending, failed]}],
     "xid_events": [{"device": 0, "xid": 79}], "xid_watch": null}
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pynvml

# NVML return codes by name (the constant without its NVML_ERROR_ prefix), for recorded answers.
CODES: Mapping[str, int] = {
    name.removeprefix("NVML_ERROR_"): value
    for name, value in vars(pynvml).items()
    if name.startswith("NVML_ERROR_") and isinstance(value, int)
}
NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
FUNCTION_NOT_FOUND = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
GPU_IS_LOST = pynvml.NVML_ERROR_GPU_IS_LOST
TIMEOUT = pynvml.NVML_ERROR_TIMEOUT
# No NVML at all on this machine: no library, no driver, or a driver that does not match the library.
NO_DRIVER = frozenset({
    pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED,
    pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, pynvml.NVML_ERROR_NO_PERMISSION,
})
# The feature is absent on this GPU or driver: a normal answer, the fact is simply unknown.
UNAVAILABLE = frozenset({NOT_SUPPORTED, FUNCTION_NOT_FOUND, pynvml.NVML_ERROR_NOT_FOUND})
# Confidential-computing values, as `nvmlSystemGetConfComputeState` reports them.
CC_ENVIRONMENT_PROD = pynvml.NVML_CC_SYSTEM_ENVIRONMENT_PROD
CC_ENVIRONMENT_SIM = pynvml.NVML_CC_SYSTEM_ENVIRONMENT_SIM
CC_FEATURE_ENABLED = pynvml.NVML_CC_SYSTEM_FEATURE_ENABLED
CC_DEVTOOLS_ON = pynvml.NVML_CC_SYSTEM_DEVTOOLS_MODE_ON
CC_ACCEPTING_WORK = pynvml.NVML_CC_ACCEPTING_CLIENT_REQUESTS_TRUE
MULTI_GPU_MODES: Mapping[int, str] = {
    pynvml.NVML_CC_SYSTEM_MULTIGPU_NONE: "none",
    pynvml.NVML_CC_SYSTEM_MULTIGPU_PROTECTED_PCIE: "protected-pcie",
    pynvml.NVML_CC_SYSTEM_MULTIGPU_NVLE: "nvle",
}
MIG_ENABLED = pynvml.NVML_DEVICE_MIG_ENABLE


class NVMLFailure(Exception):
    """An NVML call returned `code` (one of NVML's `NVML_ERROR_*`)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

    @property
    def name(self) -> str:
        return next((name for name, value in CODES.items() if value == self.code), str(self.code))

    def __str__(self) -> str:
        return f"NVML error {self.name}"


Handle = Any  # a GPU or MIG device, opaque to the caller


class Library(Protocol):
    """The NVML calls the agent makes, in plain values; each may raise `NVMLFailure`."""

    def init(self) -> None: ...
    def driver_version(self) -> str: ...
    def cuda_driver_version(self) -> int: ...
    def device_count(self) -> int: ...
    def device(self, index: int) -> Handle: ...
    def name(self, device: Handle) -> str: ...
    def uuid(self, device: Handle) -> str: ...
    def memory_total(self, device: Handle) -> int: ...
    def mig_mode(self, device: Handle) -> tuple[int, int]: ...
    def mig_devices(self, device: Handle) -> tuple[Handle, ...]: ...
    def uncorrected_ecc(self, device: Handle) -> int: ...
    def retired_pages_pending(self, device: Handle) -> bool: ...
    def remapped_rows(self, device: Handle) -> tuple[int, int, bool, bool]: ...
    def cc_state(self) -> tuple[int, int, int]: ...
    def cc_gpus_ready(self) -> int: ...
    def cc_settings(self) -> tuple[int, int, int, int]: ...
    def watch_xids(self) -> None: ...
    def next_xid(self) -> tuple[str, int] | None: ...


class Driver:
    """NVML through pynvml, against whatever driver this machine has (or has not)."""

    def __init__(self) -> None:
        self._events: Any = None

    @staticmethod
    def _call(function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except pynvml.NVMLError as error:
            raise NVMLFailure(int(error.value)) from None

    def init(self) -> None:
        self._call(pynvml.nvmlInit)

    def driver_version(self) -> str:
        return str(self._call(pynvml.nvmlSystemGetDriverVersion))

    def cuda_driver_version(self) -> int:
        return int(self._call(pynvml.nvmlSystemGetCudaDriverVersion))

    def device_count(self) -> int:
        return int(self._call(pynvml.nvmlDeviceGetCount))

    def device(self, index: int) -> Handle:
        return self._call(pynvml.nvmlDeviceGetHandleByIndex, index)

    def name(self, device: Handle) -> str:
        return str(self._call(pynvml.nvmlDeviceGetName, device))

    def uuid(self, device: Handle) -> str:
        return str(self._call(pynvml.nvmlDeviceGetUUID, device))

    def memory_total(self, device: Handle) -> int:
        return int(self._call(pynvml.nvmlDeviceGetMemoryInfo, device).total)

    def mig_mode(self, device: Handle) -> tuple[int, int]:
        current, pending = self._call(pynvml.nvmlDeviceGetMigMode, device)
        return int(current), int(pending)

    def mig_devices(self, device: Handle) -> tuple[Handle, ...]:
        found = []
        for index in range(int(self._call(pynvml.nvmlDeviceGetMaxMigDeviceCount, device))):
            try:
                found.append(self._call(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, device, index))
            except NVMLFailure as failure:
                if failure.code != pynvml.NVML_ERROR_NOT_FOUND:  # an empty slot
                    raise
        return tuple(found)

    def uncorrected_ecc(self, device: Handle) -> int:
        return int(self._call(pynvml.nvmlDeviceGetTotalEccErrors, device,
                              pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC))

    def retired_pages_pending(self, device: Handle) -> bool:
        return bool(self._call(pynvml.nvmlDeviceGetRetiredPagesPendingStatus, device))

    def remapped_rows(self, device: Handle) -> tuple[int, int, bool, bool]:
        corrected, uncorrected, pending, failed = self._call(pynvml.nvmlDeviceGetRemappedRows, device)
        return int(corrected), int(uncorrected), bool(pending), bool(failed)

    def cc_state(self) -> tuple[int, int, int]:
        state = self._call(pynvml.nvmlSystemGetConfComputeState)
        return int(state.environment), int(state.ccFeature), int(state.devToolsMode)

    def cc_gpus_ready(self) -> int:
        return int(self._call(pynvml.nvmlSystemGetConfComputeGpusReadyState))

    def cc_settings(self) -> tuple[int, int, int, int]:
        settings = pynvml.c_nvmlSystemConfComputeSettings_v1_t()
        # pynvml hands this one call's return code back unchecked
        code = self._call(pynvml.nvmlSystemGetConfComputeSettings, ctypes.byref(settings))
        if code != pynvml.NVML_SUCCESS:
            raise NVMLFailure(int(code))
        return (int(settings.environment), int(settings.ccFeature), int(settings.devToolsMode),
                int(settings.multiGpuMode))

    def watch_xids(self) -> None:
        events = self._call(pynvml.nvmlEventSetCreate)
        for index in range(self.device_count()):
            self._call(pynvml.nvmlDeviceRegisterEvents, self.device(index),
                       pynvml.nvmlEventTypeXidCriticalError, events)
        self._events = events

    def next_xid(self) -> tuple[str, int] | None:
        if self._events is None:
            return None
        try:
            event = self._call(pynvml.nvmlEventSetWait_v2, self._events, 0)  # never block the agent
        except NVMLFailure as failure:
            if failure.code == TIMEOUT:
                return None
            raise
        return self.uuid(event.device), int(event.eventData)


class Recorded:
    """NVML answers recorded as JSON (see the module docstring), from a dict or a file."""

    def __init__(self, answers: Mapping[str, Any] | None = None, path: Path | None = None) -> None:
        self._answers: Mapping[str, Any] = answers or {}
        self._path = path
        self._version: tuple[int, int] | None = None  # (inode, mtime) of the file last read
        self._xids_delivered = 0

    def _current(self) -> Mapping[str, Any]:
        if self._path is not None:
            stat = self._path.stat()
            # a rewrite by rename changes the inode even within one tick of the file system's clock
            version = (stat.st_ino, stat.st_mtime_ns)
            if version != self._version:
                self._answers, self._version = json.loads(self._path.read_text(encoding="utf-8")), version
        return self._answers

    @staticmethod
    def _answer(answers: Mapping[str, Any], key: str) -> Any:
        if key not in answers:
            raise NVMLFailure(FUNCTION_NOT_FOUND)
        value = answers[key]
        if isinstance(value, Mapping) and "error" in value:
            raise NVMLFailure(CODES[str(value["error"])])
        return value

    def _system(self, key: str) -> Any:
        return self._answer(self._current(), key)

    def _device(self, device: Handle, key: str) -> Any:
        index, mig = device
        entry = self._current().get("devices", [])[index]
        if mig is not None:
            entry = self._answer(entry, "mig_devices")[mig]
        return self._answer(entry, key)

    def init(self) -> None:
        self._system("init")

    def driver_version(self) -> str:
        return str(self._system("driver_version"))

    def cuda_driver_version(self) -> int:
        return int(self._system("cuda_driver_version"))

    def device_count(self) -> int:
        return len(self._current().get("devices", []))

    def device(self, index: int) -> Handle:
        if not 0 <= index < self.device_count():
            raise NVMLFailure(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return (index, None)

    def name(self, device: Handle) -> str:
        return str(self._device(device, "name"))

    def uuid(self, device: Handle) -> str:
        return str(self._device(device, "uuid"))

    def memory_total(self, device: Handle) -> int:
        return int(self._device(device, "memory_total"))

    def mig_mode(self, device: Handle) -> tuple[int, int]:
        current, pending = self._device(device, "mig_mode")
        return int(current), int(pending)

    def mig_devices(self, device: Handle) -> tuple[Handle, ...]:
        return tuple((device[0], mig) for mig in range(len(self._device(device, "mig_devices"))))

    def uncorrected_ecc(self, device: Handle) -> int:
        return int(self._device(device, "uncorrected_ecc"))

    def retired_pages_pending(self, device: Handle) -> bool:
        return bool(self._device(device, "retired_pages_pending"))

    def remapped_rows(self, device: Handle) -> tuple[int, int, bool, bool]:
        corrected, uncorrected, pending, failed = self._device(device, "remapped_rows")
        return int(corrected), int(uncorrected), bool(pending), bool(failed)

    def cc_state(self) -> tuple[int, int, int]:
        environment, feature, devtools = self._system("cc_state")
        return int(environment), int(feature), int(devtools)

    def cc_gpus_ready(self) -> int:
        return int(self._system("cc_gpus_ready"))

    def cc_settings(self) -> tuple[int, int, int, int]:
        environment, feature, devtools, multi_gpu = self._system("cc_settings")
        return int(environment), int(feature), int(devtools), int(multi_gpu)

    def watch_xids(self) -> None:
        answers = self._current()
        if "xid_watch" in answers:
            self._answer(answers, "xid_watch")

    def next_xid(self) -> tuple[str, int] | None:
        events = self._current().get("xid_events", [])
        if self._xids_delivered >= len(events):
            return None
        event = events[self._xids_delivered]
        self._xids_delivered += 1
        return self.uuid((int(event["device"]), None)), int(event["xid"])
