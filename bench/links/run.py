"""Far members on a bad link for long, nothing wrong with them: does samizdat ever call one Down?

Method: the hub + 6 member sandbox with its links (Toxiproxy, docs/links.md) and the operator; one
AIWorkload with one replica on each of three members (gb-london, ch-zurich, fr-paris: their countries
only, one a country), then `--profile` (wan by default) on those three links for `--minutes` (30),
the other three clean. Every 10 s the members' own API servers are asked for the workload's Running
pods (their admins' direct links); at the end the operator's `samizdat_member_phase_changes_total`
gives how often each far member went Suspect, Down or Quarantined, and each member's status.link the
link as samizdat measured it. The same measurement as `e2e/test_far_members.py` (10 minutes), made
longer. Prints JSON.

    python bench/links/run.py                  # wan, 30 minutes
    python bench/links/run.py --profile throttled --minutes 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from e2e.far import keep_on_link  # noqa: E402
from e2e.operator import OperatorProcess  # noqa: E402
from e2e.sandbox import links  # noqa: E402
from e2e.sandbox.world import Sandbox  # noqa: E402
from e2e.workloads import install_samizdat  # noqa: E402

FAR = ("gb-london", "ch-zurich", "fr-paris")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=links.PROFILES, default="wan")
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    sandbox = Sandbox()
    started = time.monotonic()
    with contextlib.ExitStack() as cleanup:
        if sandbox.running() and not sandbox.links.running():
            parser.error("a sandbox without links is running: `python -m e2e.sandbox down` it, or `up --links`")
        if not sandbox.running():
            cleanup.callback(sandbox.down)  # a bench never leaves a sandbox behind
            sandbox.up(6, links=True)
        install_samizdat(sandbox)
        operator = OperatorProcess(sandbox)
        operator.start()
        cleanup.callback(operator.stop)
        report = keep_on_link(sandbox, operator, FAR, args.profile, args.minutes)
    print(json.dumps({
        "benchmark": "links",
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "wall_s": round(time.monotonic() - started, 1),
        **report,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
