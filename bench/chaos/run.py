"""Chaos benchmark on the real sandbox: compound faults for minutes, judged from the members themselves.

Method: a hub + 8 member sandbox with the operator running (quarantine 10 s). Each seed draws 10
AIWorkloads (2–3 replicas of 1–4 GPUs; minJurisdictions 2–3, maxPerJurisdiction 1–2, some denying the
Five Eyes; default start and schedule deadlines) and a schedule of faults every 10–20 s from every action the sandbox
has (kill, partition, heal and every censor action), at most 2 members faulted at once (`e2e.chaos`).
Every 2 s the members' pods are read over HTTPS: a workload is short while fewer of its replicas are
Running and Ready, and the pure solver, given the members healthy by ground truth as their nodes and pods
really are, says whether there was room for it under its rules. At the end every member is healed and
the fleet has 90 s to be whole. Prints JSON: per seed the figures, the failures against the bounds
(short with room ≤ 30 s, every lastFailover ≤ 15 s, limits broken only ≤ 5 s after a heal, operator RSS
growth < 20 %), and the timeline of every shortfall.

    python bench/chaos/run.py --seeds 1 2 3 --minutes 15      # the long form
    python bench/chaos/run.py --quick                          # one seed, 3 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from e2e import chaos  # noqa: E402
from e2e.operator import OperatorProcess  # noqa: E402
from e2e.sandbox.world import Sandbox  # noqa: E402
from e2e.workloads import install_samizdat  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--workloads", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="one seed, 3 minutes")
    parser.add_argument("--timeline", action="store_true", help="print each seed's timeline to stderr")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.minutes = args.seeds[:1], 3.0
    sandbox = Sandbox()
    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as cleanup:
        if not sandbox.running():
            # Stopped on any way out, a failed start included: a bench never leaves a sandbox behind.
            cleanup.callback(sandbox.down)
            sandbox.up(args.members)
        install_samizdat(sandbox)
        operator = OperatorProcess(sandbox, quarantine_seconds=10)
        operator.start()
        cleanup.callback(operator.stop)
        assert operator.process is not None
        for seed in args.seeds:
            plan = chaos.draw(seed, sandbox.member_names, args.minutes * 60, workloads=args.workloads)
            run = chaos.Chaos(sandbox, plan, operator.process.pid, log=lambda line: print(line, file=sys.stderr))
            try:
                verdict = run.run()
            finally:
                run.remove()
            report = run.report(verdict)
            results.append(report)
            if args.timeline:
                print(verdict.timeline(run.done), file=sys.stderr)
    print(json.dumps({
        "benchmark": "chaos",
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "bounds": {"short_with_room_s": chaos.ROOM_BOUND_S, "last_failover_s": chaos.FAILOVER_BOUND_S,
                   "limit_after_heal_s": chaos.HEAL_BOUND_S, "rss_growth": chaos.RSS_GROWTH_BOUND},
        "results": results,
        "passed": all(not r["failures"] for r in results),
    }, indent=2))
    return 0 if all(not r["failures"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
