"""GPU check: the agent's read path against this machine's real NVIDIA driver, printed as JSON.

    python bench/gpu-check/run.py [--xid-wait SECONDS]

Runs exactly what `samizdat agent` runs on a GPU node (`samizdat.agent.reading.Reader` over
`samizdat.agent.nvml.Driver`), twice `--xid-wait` seconds apart so XID events in between are caught, and
prints one JSON object (format in docs/agent.md):

* `gpu`: whether NVML answered with at least one GPU; `nvml_error` says why not (e.g. LIBRARY_NOT_FOUND
  on a machine without the driver). Without a GPU the check says so and exits 0: no driver is an answer.
* `observation`: everything read (driver and CUDA versions, per GPU: UUID, name, memory, MIG mode and
  instances, ECC and retired-page/row-remap state, XIDs; confidential-computing state and settings).
* `publication`: the labels, annotations, GPUHealthy condition and taint the agent would write on the
  node, so one run shows what samizdat would conclude from this hardware.
* `seconds`: wall time of one read pass; `host`, `python`, `nvidia_ml_py`: where it ran.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from importlib import metadata

import samizdat
from samizdat.agent import nvml, observation, reading


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xid-wait", type=float, default=1.0, help="seconds between the two read passes")
    args = parser.parse_args()
    reader = reading.Reader(nvml.Driver())
    reader.observe()
    time.sleep(args.xid_wait)
    started = time.perf_counter()
    seen = reader.observe()
    seconds = time.perf_counter() - started
    published = observation.publication(seen, datetime.now(UTC), samizdat.__version__)
    gpu = seen.nvml_error is None and bool(seen.gpus)
    result = {
        "gpu": gpu,
        "nvml_error": seen.nvml_error,
        "message": "NVML answered" if gpu else f"no NVIDIA GPU here ({seen.nvml_error or 'no devices'}): nothing to check",
        "observation": seen.to_json(),
        "publication": {"labels": published.labels, "annotations": published.annotations,
                        "condition": published.condition, "taint": published.taint},
        "seconds": round(seconds, 4),
        "host": platform.node(),
        "python": platform.python_version(),
        "nvidia_ml_py": metadata.version("nvidia-ml-py"),
    }
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
