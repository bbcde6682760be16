"""The fleet: many opted-in databases in two Regions, every automated snapshot within one
simulated backup window, against admission control and the Region's instance quota.

    python -m drillharness.fleet      (or: make fleet)

Each Region is its own stack (``MaxConcurrentDrills`` and the quota are per account and Region),
so each runs in its own process with its own local cloud; both start together. In each, one
small PostgreSQL serves every source instance of the Region (a fleet of identical tiny
databases without a server each), the Region's DB instance quota is ``--quota`` with
``--production`` instances used by production (the fleet's sources among them), and the stack
keeps ``QuotaReserveInstances`` free. Every database gets an automated snapshot at a random
moment of a window of ``--window-seconds`` (one simulated five-minute backup window). Every
drill is then checked against every invariant of :mod:`drillharness.invariants`.

It prints, per Region and in all: databases drilled, the most drills admitted and the most
restored instances at once (never above the cap), restores refused for quota, drills FAILED,
the time to drain the queue, and the order in which databases were served. Exit 0 when every
database was drilled, PASSED, and no invariant was violated.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from restoredrill.ports.records import RunRecord, Verdict

from drillharness.invariants import (
    check_admission_cap,
    check_drill,
    check_nothing_running,
    max_admitted_at_once,
)
from localcloud.cloud import LocalCloud
from localcloud.rds import AccountLimits

REGIONS = ("us-east-1", "eu-west-1")
# The line of a Region process's output that carries its summary (the rest is the cloud's).
RESULT_PREFIX = "fleet-result: "
# A drill of a tiny database takes seconds; a fleet still queued after this has stalled.
DRAIN_TIMEOUT_SECONDS = 1200


def database_names(region: str, count: int) -> list[str]:
    return [f"{region}-db-{n:03d}" for n in range(1, count + 1)]


def run_region(args: argparse.Namespace, region: str, log: TextIO = sys.stderr) -> dict[str, Any]:
    """One Region's fleet, start to finish: what the table shows, and the violations found."""
    names = database_names(region, args.databases)
    cloud = LocalCloud(
        parameter_overrides={
            "MaxConcurrentDrills": str(args.cap),
            "QuotaReserveInstances": str(args.reserve),
        },
        patients=args.patients,
        pool_size=args.pool,
        region=region,
    )
    violations: list[str] = []
    with cloud:
        assert cloud.rds is not None
        cloud.rds.account_limits = AccountLimits(
            instance_quota=args.quota,
            production_instances=args.production,
            sources_are_production=True,
        )
        cloud.create_source_database(names[0], aliases=names[1:])
        arrivals = _snapshot_all(cloud, names, args.window_seconds, random.Random(args.seed))  # noqa: S311 - arrival times, not a secret
        print(f"fleet {region}: {len(arrivals)} snapshots taken, draining...", file=log)
        runs = _drain(cloud, list(arrivals.values()))
        for name, run_id in arrivals.items():
            violations += [f"{name}: {v}" for v in check_drill(cloud, run_id, Verdict.PASSED)]
        violations += [str(v) for v in check_admission_cap(cloud, args.cap)]
        quota_errors = cloud.rds.quota_refusals_made
        restored_peak = cloud.rds.restored_peak
    violations += [str(v) for v in check_nothing_running(cloud)]
    return _summary(region, names, arrivals, runs, quota_errors, restored_peak, violations)


def _snapshot_all(
    cloud: LocalCloud, names: list[str], window: float, rng: random.Random
) -> dict[str, str]:
    """Every database's automated snapshot at a random moment of the window, in arrival order:
    database -> run id."""
    moments = sorted(rng.uniform(0, window) for _ in names)
    started = time.monotonic()
    arrivals: dict[str, str] = {}
    for moment, name in zip(moments, rng.sample(names, len(names)), strict=True):
        time.sleep(max(0.0, started + moment - time.monotonic()))
        arrivals[name] = cloud.start_drill(name)
    return arrivals


def _drain(cloud: LocalCloud, run_ids: list[str]) -> list[RunRecord]:
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while True:
        runs = cloud.runs(run_ids)
        done = [run for run in runs.values() if run.is_finished]
        if len(done) == len(run_ids) or time.monotonic() > deadline:
            return list(runs.values())
        time.sleep(1)


def _summary(
    region: str,
    names: list[str],
    arrivals: dict[str, str],
    runs: list[RunRecord],
    quota_errors: int,
    restored_peak: int,
    violations: list[str],
) -> dict[str, Any]:
    by_id = {run.run_id: run for run in runs}
    verdicts = Counter(run.verdict.value if run.verdict else "unfinished" for run in runs)
    served = sorted(
        (run for run in runs if run.admitted_at is not None),
        key=lambda run: run.admitted_at or run.created_at,
    )
    arrival_order = list(arrivals)
    served_order = [run.source_db for run in served]
    started = min(run.created_at for run in runs)
    finished = [run.finished_at for run in runs if run.finished_at is not None]
    return {
        "region": region,
        "databases": len(names),
        "drilled": sum(1 for run in runs if run.is_finished),
        "verdicts": dict(verdicts),
        "max_admitted": max_admitted_at_once(runs),
        "restored_peak": restored_peak,
        "quota_errors": quota_errors,
        "requeues": sum(run.requeues for run in runs),
        "failed": verdicts.get(Verdict.FAILED.value, 0),
        "drain_seconds": (max(finished) - started).total_seconds() if finished else None,
        "arrival_order": arrival_order,
        "served_order": served_order,
        "out_of_arrival_order": sum(
            1 for a, b in zip(arrival_order, served_order, strict=False) if a != b
        ),
        "never_admitted": sorted(
            name for name, run_id in arrivals.items() if by_id[run_id].admitted_at is None
        ),
        "violations": violations,
    }


def print_table(results: list[dict[str, Any]], args: argparse.Namespace, out: TextIO) -> None:
    header = (
        f"{'region':<11}{'databases':>10}{'drilled':>9}{'PASSED':>8}{'max at once':>13}"
        f"{'quota errors':>14}{'FAILED':>8}{'drain s':>9}{'violations':>12}"
    )
    lines = [
        f"fleet: {sum(r['databases'] for r in results)} databases in {len(results)} Regions, "
        f"snapshots within {args.window_seconds:g} s (one simulated 5-minute window), "
        f"MaxConcurrentDrills={args.cap}, instance quota {args.quota} with {args.production} "
        f"used by production, QuotaReserveInstances={args.reserve}",
        header,
    ]
    for r in results:
        at_once = f"{max(r['max_admitted'], r['restored_peak'])} (cap {args.cap})"
        drain = f"{r['drain_seconds']:.1f}" if r["drain_seconds"] is not None else "-"
        lines.append(
            f"{r['region']:<11}{r['databases']:>10}{r['drilled']:>9}"
            f"{r['verdicts'].get('PASSED', 0):>8}{at_once:>13}{r['quota_errors']:>14}"
            f"{r['failed']:>8}{drain:>9}{len(r['violations']):>12}"
        )
    lines.append(
        "order served (first 10 of each Region; fair order: never passed, then queued "
        "longest, which here is arrival order):"
    )
    for r in results:
        first = ", ".join(name.rsplit("-", 1)[-1] for name in r["served_order"][:10])
        lines.append(
            f"  {r['region']}: {first}, ... ({r['out_of_arrival_order']} served out of arrival "
            f"order; {len(r['never_admitted'])} never admitted)"
        )
    for r in results:
        lines += [f"  violation in {r['region']}: {v}" for v in r["violations"][:20]]
    lines.append("command: python -m drillharness.fleet " + " ".join(_argv(args)))
    print("\n".join(lines), file=out, flush=True)


def _argv(args: argparse.Namespace) -> list[str]:
    return [
        "--databases", str(args.databases), "--cap", str(args.cap), "--quota", str(args.quota),
        "--production", str(args.production), "--reserve", str(args.reserve),
        "--window-seconds", f"{args.window_seconds:g}", "--patients", str(args.patients),
        "--pool", str(args.pool), "--seed", str(args.seed),
    ]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m drillharness.fleet",
        description="A fleet of tiny databases in two Regions, snapshotted in one window, "
        "against admission control and the instance quota. Exit 0 when all were drilled and "
        "PASSED and no invariant was violated.",
    )
    parser.add_argument("--databases", type=int, default=50, help="per Region (50)")
    parser.add_argument("--cap", type=int, default=5, help="MaxConcurrentDrills (5)")
    parser.add_argument("--quota", type=int, default=40, help="DB instance quota per Region (40)")
    parser.add_argument("--production", type=int, default=30, help="instances production uses")
    parser.add_argument("--reserve", type=int, default=5, help="QuotaReserveInstances (5)")
    parser.add_argument(
        "--window-seconds", type=float, default=5.0, help="the snapshot window, real seconds (5)"
    )
    parser.add_argument("--patients", type=int, default=50, help="size of the source (50)")
    parser.add_argument("--pool", type=int, default=4, help="warm workers per function (4)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrival draw (1)")
    parser.add_argument("--region", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    if args.region:  # one Region, in a process of its own: its summary as JSON
        print(RESULT_PREFIX + json.dumps(run_region(args, args.region)), file=out, flush=True)
        return 0
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "drillharness.fleet", *_argv(args), "--region", region],
            stdout=subprocess.PIPE,
            cwd=Path.cwd(),
        )
        for region in REGIONS
    ]
    results = []
    for region, child in zip(REGIONS, children, strict=True):
        output, _ = child.communicate()
        if child.returncode != 0:
            print(f"fleet: the {region} process exited {child.returncode}", file=sys.stderr)
            return 1
        [line] = [x for x in output.decode().splitlines() if x.startswith(RESULT_PREFIX)]
        results.append(json.loads(line.removeprefix(RESULT_PREFIX)))
    print_table(results, args, out)
    healthy = all(
        r["drilled"] == r["databases"] == r["verdicts"].get("PASSED", 0) and not r["violations"]
        for r in results
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
