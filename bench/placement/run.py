"""Placement benchmark: decision latency, bulk re-placement throughput, speed against the MILP oracle.

    python bench/placement/run.py [--quick] [--seed N] [--fingerprint]

Prints one JSON object. `--fingerprint` times nothing: it prints a SHA-256 of every decision the
benchmark makes (assignments, feasibility, binding rule, explanation, moves, diagnosis) plus those
for the same workloads on a fleet cut to a twentieth (to reach the infeasible and binding-rule paths),
so that a change meant to keep behaviour can show it does. Method, in the JSON too:
* latency: one world of 1,000 members (100,000 GPU nodes in ~5 shapes per member, built-in alliance
  table, see `world.py`); each of N random workload specs is solved once against it, wall time of
  `placement.solve` (filter, search, rule check, diagnosis; infeasible ones include the binding-rule
  search) after a short warm-up; p50/p99/max over the N.
* bulk: 2,000 workloads are placed, then a random 10% of members vanish from the snapshot and every
  workload that had a replica on one of them is re-placed with its placement as `current`; throughput
  is re-placed workloads per second of wall time, single process. Members' free GPUs are not consumed
  between workloads (the solver is what is measured, not a capacity ledger).
* versus_oracle: the same instances solved by the solver and by two HiGHS MILP models of the tests
  (`tests/support/milp_oracle.py`, model build + solve). `same_objective` is the exact model of the problem the
  solver solves: every rule, and its whole lexicographic objective (kept replicas, spread, cost,
  latency, name) as five prioritised objectives of one run; `objective_agrees` counts instances where
  the solver's placement scores exactly the MILP optimum. `stability_only` is the quicker model the
  property tests use for feasibility, which maximises kept replicas only (an easier problem).
  `speedup` is the ratio of total times (the target's measure), `speedup_of_medians` of median times.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from support import milp_oracle  # noqa: E402
import world  # noqa: E402

from samizdat.core import placement  # noqa: E402

TARGETS = {"latency_p99_ms": 20.0, "replaced_per_second": 1000.0, "speedup_vs_milp": 10.0}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _timed(snapshot: placement.Snapshot, request: placement.Request) -> tuple[placement.Decision, float]:
    started = time.perf_counter()
    decision = placement.solve(snapshot, request)
    return decision, time.perf_counter() - started


def latency(snapshot: placement.Snapshot, requests: list[placement.Request]) -> dict[str, Any]:
    for request in requests[:5]:
        placement.solve(snapshot, request)
    seconds, feasible = [], 0
    for request in requests:
        decision, took = _timed(snapshot, request)
        seconds.append(took)
        feasible += decision.feasible
    return {
        "decisions": len(requests),
        "feasible": feasible,
        "p50_ms": round(1000 * statistics.median(seconds), 2),
        "p99_ms": round(1000 * _percentile(seconds, 0.99), 2),
        "max_ms": round(1000 * max(seconds), 2),
        "mean_ms": round(1000 * statistics.fmean(seconds), 2),
    }


def bulk(snapshot: placement.Snapshot, requests: list[placement.Request], rng: random.Random) -> dict[str, Any]:
    started = time.perf_counter()
    placed = [placement.solve(snapshot, request) for request in requests]
    placing = time.perf_counter() - started

    vanished = set(rng.sample([m.name for m in snapshot.members], len(snapshot.members) // 10))
    survivors = replace(snapshot, members=tuple(m for m in snapshot.members if m.name not in vanished))
    affected = [
        (request, decision)
        for request, decision in zip(requests, placed, strict=True)
        if decision.feasible and vanished & set(decision.assignments)
    ]
    lost = moved = only_lost_moved = infeasible = 0
    seconds = []
    started = time.perf_counter()
    for request, before in affected:
        decision, took = _timed(survivors, replace(request, current=dict(before.assignments)))
        seconds.append(took)
        gone = sum(n for name, n in before.assignments.items() if name in vanished)
        lost += gone
        if not decision.feasible:
            infeasible += 1
            continue
        moved += decision.moves
        only_lost_moved += decision.moves == gone
    replacing = time.perf_counter() - started
    return {
        "workloads": len(requests),
        "placed_feasible": sum(decision.feasible for decision in placed),
        "placed_per_second": round(len(requests) / placing, 1),
        "members_vanished": len(vanished),
        "workloads_replaced": len(affected),
        "replaced_per_second": round(len(affected) / replacing, 1) if affected else None,
        "replace_p50_ms": round(1000 * statistics.median(seconds), 2) if seconds else None,
        "replace_p99_ms": round(1000 * _percentile(seconds, 0.99), 2) if seconds else None,
        "replicas_lost": lost,
        "replicas_moved": moved,
        "workloads_moving_only_lost_replicas": only_lost_moved,
        "replaced_infeasible": infeasible,
    }


def versus_oracle(snapshot: placement.Snapshot, requests: list[placement.Request]) -> dict[str, Any]:
    solver_seconds: list[float] = []
    oracles: dict[str, list[float]] = {"same_objective": [], "stability_only": []}
    feasibility_agrees = objective_agrees = 0
    for request in requests:
        decision, took = _timed(snapshot, request)
        solver_seconds.append(took)
        exact = milp_oracle.solve_exact(snapshot, request)
        quick = milp_oracle.solve(snapshot, request)
        oracles["same_objective"].append(exact.seconds)
        oracles["stability_only"].append(quick.seconds)
        feasibility_agrees += decision.feasible == exact.feasible == quick.feasible
        mine = milp_oracle.score(snapshot, request, decision.assignments) if decision.feasible else None
        objective_agrees += mine == exact.objective
    solver_total, solver_median = sum(solver_seconds), statistics.median(solver_seconds)
    report: dict[str, Any] = {
        "instances": len(requests),
        "feasibility_agrees": feasibility_agrees,
        "objective_agrees": objective_agrees,
        "solver_total_s": round(solver_total, 3),
        "solver_median_ms": round(1000 * solver_median, 2),
    }
    for name, seconds in oracles.items():
        report[name] = {
            "oracle_total_s": round(sum(seconds), 3),
            "oracle_median_ms": round(1000 * statistics.median(seconds), 2),
            "speedup": round(sum(seconds) / solver_total, 1),
            "speedup_of_medians": round(statistics.median(seconds) / solver_median, 1),
        }
    return report


def _canonical(decision: placement.Decision) -> str:
    return repr((
        sorted(decision.assignments.items()),
        decision.feasible,
        decision.binding_rule,
        decision.explanation,
        decision.moves,
        sorted(decision.diagnosis.items()),
    ))


def fingerprint(snapshot: placement.Snapshot, requests: list[placement.Request], rng: random.Random) -> dict[str, Any]:
    """A digest of every decision over `requests`: placed, re-placed after 10% of members vanish (as
    `bulk` does), and placed on a twentieth of the fleet."""
    digest = hashlib.sha256()
    counts = {"decisions": 0, "feasible": 0}

    def record(decision: placement.Decision) -> placement.Decision:
        digest.update(_canonical(decision).encode())
        counts["decisions"] += 1
        counts["feasible"] += decision.feasible
        return decision

    placed = [record(placement.solve(snapshot, request)) for request in requests]
    vanished = set(rng.sample([m.name for m in snapshot.members], len(snapshot.members) // 10))
    survivors = replace(snapshot, members=tuple(m for m in snapshot.members if m.name not in vanished))
    for request, before in zip(requests, placed, strict=True):
        if before.feasible and vanished & set(before.assignments):
            record(placement.solve(survivors, replace(request, current=dict(before.assignments))))
    few = replace(snapshot, members=snapshot.members[::20])
    for request, before in zip(requests, placed, strict=True):
        record(placement.solve(few, replace(request, current=dict(before.assignments))))
    return {**counts, "sha256": digest.hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer decisions, for CI (< 60 s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fingerprint", action="store_true", help="a digest of every decision, no timings")
    args = parser.parse_args()
    counts = {"latency": 60, "bulk": 300, "oracle": 30}
    if not args.quick:
        counts = {"latency": 1000, "bulk": 2000, "oracle": 200}
    rng = random.Random(args.seed)
    snapshot = world.world(args.seed)
    specs = [world.workload(rng) for _ in range(max(counts.values()))]
    if args.fingerprint:
        json.dump({"seed": args.seed, "mode": "quick" if args.quick else "full", **fingerprint(snapshot, specs, rng)},
                  sys.stdout)
        sys.stdout.write("\n")
        return
    gc.collect()
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "world": {
            "members": len(snapshot.members),
            "gpu_nodes": sum(shape.nodes for member in snapshot.members for shape in member.shapes),
            "shapes": sum(len(member.shapes) for member in snapshot.members),
            "countries": len({member.country for member in snapshot.members}),
            "providers": len({member.provider for member in snapshot.members}),
            "alliances": sorted(snapshot.alliances),
        },
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "method": __doc__.split("Method, in the JSON too:\n", 1)[1].strip(),
        "targets": TARGETS,
    }
    report["latency"] = latency(snapshot, specs[: counts["latency"]])
    report["bulk"] = bulk(snapshot, specs[: counts["bulk"]], rng)
    report["versus_oracle"] = versus_oracle(snapshot, specs[: counts["oracle"]])
    report["meets_targets"] = {
        "latency_p99_ms": report["latency"]["p99_ms"] <= TARGETS["latency_p99_ms"],
        "replaced_per_second": (report["bulk"]["replaced_per_second"] or 0) >= TARGETS["replaced_per_second"],
        "speedup_vs_milp": report["versus_oracle"]["same_objective"]["speedup"] >= TARGETS["speedup_vs_milp"],
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
