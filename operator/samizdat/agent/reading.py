"""The agent's read path: NVML's answers (through `nvml.Library`) into one `Observation`.

Every call may fail, and most failures are answers: `NOT_SUPPORTED` or `FUNCTION_NOT_FOUND` leave that
fact unknown (None), a missing driver makes an observation with `nvml_error` set, and `GPU_IS_LOST`
from any call about a GPU marks that GPU lost. Only failures NVML has no meaning for here propagate.

`Reader` keeps what must outlive one pass: whether NVML is initialised, the XID event subscription, and
the XIDs seen per GPU since the agent started.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from samizdat.agent import nvml
from samizdat.agent.observation import GPU, ConfidentialComputing, MIGDevice, Observation

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_EVENTS_PER_PASS = 1000  # a GPU in an XID storm must not keep the agent from publishing
MIB = 1024 * 1024
_ENVIRONMENTS = {nvml.CC_ENVIRONMENT_PROD: "prod", nvml.CC_ENVIRONMENT_SIM: "sim"}


class GPULost(Exception):
    """NVML answered GPU_IS_LOST for the GPU being read."""


def _optional(call: Callable[[], T]) -> T | None:
    """The answer, or None where the driver or GPU does not support the call."""
    try:
        return call()
    except nvml.NVMLFailure as failure:
        if failure.code == nvml.GPU_IS_LOST:
            raise GPULost from None
        if failure.code in nvml.UNAVAILABLE:
            return None
        raise


def cuda_version(encoded: int) -> str:
    """NVML's CUDA driver version (1000 × major + 10 × minor) as "major.minor"."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


class Reader:
    def __init__(self, library: nvml.Library) -> None:
        self.library = library
        self._initialised = False
        self._xids: dict[str, Counter[int]] = {}  # by GPU UUID
        self.new_xids: list[tuple[int, int]] = []  # (GPU index, XID) seen in the last pass

    def observe(self) -> Observation:
        """One pass over the node's GPUs; a driver that is missing now may be there next pass."""
        if not self._initialised:
            try:
                self.library.init()
            except nvml.NVMLFailure as failure:
                if failure.code in nvml.NO_DRIVER:
                    return Observation(nvml_error=failure.name)
                raise
            self._initialised = True
            try:
                self.library.watch_xids()
            except nvml.NVMLFailure as failure:
                logger.warning("XID events unavailable (%s): faults are seen only through other calls", failure)
        uuids = self._uuids()
        self.new_xids = self._drain_xids(uuids)
        gpus = tuple(self._gpu(index, uuid) for index, uuid in enumerate(uuids))
        driver = _optional(self.library.driver_version)
        cuda = _optional(self.library.cuda_driver_version)
        return Observation(
            driver_version=driver,
            cuda_version=cuda_version(cuda) if cuda is not None else None,
            gpus=gpus,
            cc=self._confidential_computing(),
        )

    def _uuids(self) -> list[str | None]:
        uuids: list[str | None] = []
        for index in range(self.library.device_count()):
            try:
                uuids.append(_optional(lambda: self.library.uuid(self.library.device(index))))
            except GPULost:
                uuids.append(None)
        return uuids

    def _drain_xids(self, uuids: list[str | None]) -> list[tuple[int, int]]:
        seen = []
        for _ in range(MAX_EVENTS_PER_PASS):
            try:
                event = self.library.next_xid()
            except nvml.NVMLFailure as failure:
                logger.warning("reading XID events failed: %s", failure)
                break
            if event is None:
                break
            uuid, xid = event
            self._xids.setdefault(uuid, Counter())[xid] += 1
            seen.append((uuids.index(uuid) if uuid in uuids else -1, xid))
        return seen

    def _gpu(self, index: int, uuid: str | None) -> GPU:
        xids = dict(self._xids.get(uuid, {})) if uuid else {}
        library = self.library
        try:
            device = library.device(index)
            name = _optional(lambda: library.name(device))
            memory = _optional(lambda: library.memory_total(device))
            mig_mode = _optional(lambda: library.mig_mode(device))
            mig_enabled = None if mig_mode is None else mig_mode[0] == nvml.MIG_ENABLED
            remapped = _optional(lambda: library.remapped_rows(device))
            return GPU(
                index=index, uuid=uuid, name=name, memory_mib=memory // MIB if memory is not None else None,
                mig_enabled=mig_enabled,
                mig_devices=self._mig_devices(device) if mig_enabled else (),
                uncorrected_ecc_errors=_optional(lambda: library.uncorrected_ecc(device)),
                retired_pages_pending=_optional(lambda: library.retired_pages_pending(device)),
                row_remap_pending=remapped[2] if remapped else None,
                row_remap_failed=remapped[3] if remapped else None,
                xids=xids,
            )
        except GPULost:
            return GPU(index=index, uuid=uuid, name=None, memory_mib=None, lost=True, xids=xids)

    def _mig_devices(self, device: nvml.Handle) -> tuple[MIGDevice, ...]:
        found = []
        for mig in _optional(lambda: self.library.mig_devices(device)) or ():
            name = _optional(lambda: self.library.name(mig))
            memory = _optional(lambda: self.library.memory_total(mig))
            found.append(MIGDevice(name=name or "?", memory_mib=memory // MIB if memory is not None else None))
        return tuple(found)

    def _confidential_computing(self) -> ConfidentialComputing:
        library = self.library
        try:
            state = _optional(library.cc_state)
            if state is None:
                return ConfidentialComputing(supported=False)
            environment, feature, devtools = state
            ready = _optional(library.cc_gpus_ready)
            settings = _optional(library.cc_settings)
        except GPULost:
            return ConfidentialComputing(supported=False)
        return ConfidentialComputing(
            supported=True,
            environment=_ENVIRONMENTS.get(environment, "unavailable"),
            enabled=feature == nvml.CC_FEATURE_ENABLED,
            devtools=devtools == nvml.CC_DEVTOOLS_ON,
            gpus_ready=None if ready is None else ready == nvml.CC_ACCEPTING_WORK,
            multi_gpu=nvml.MULTI_GPU_MODES.get(settings[3]) if settings else None,
        )
