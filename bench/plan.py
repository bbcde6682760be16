"""``make bench`` (plan part): level 3 cut into a check plan and run in rounds, against the
unsplit level 3 and ``pg_amcheck --jobs=2``, side by side in one run.

The split contender does what the checker does for a database too large for one invocation,
here in one process: the checks that run once (level 0 and 1: connect, catalog, schema), then
the plan (row counts and heap verification in block ranges of ``--task-mib``, one index per
task) run as a series of rounds of at most ``--round-seconds`` each, every round opening its own
``--jobs`` connections as a fresh invocation would, then the results merged. The unsplit
contender is ``run_check_suite`` at level 3 (one invocation with time enough).

It prints each median, the number of rounds and tasks, and the ratios against issue 10's
targets: split <= 1.3x unsplit and <= 1.6x pg_amcheck. The cluster is cached under ``.bench``
for the default scale and ``.bench-<scale>`` for another, so the other benches keep theirs.

    python -m bench.plan [--scale 50] [--rounds 3] [--round-seconds 1.0] [--task-mib 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from restoredrill.checksuite import CheckStatus, run_check_suite
from restoredrill.checksuite.connection import connect
from restoredrill.checksuite.database_catalog import read_catalog
from restoredrill.checksuite.plan import plan_results, read_database_plan, run_in_rounds
from restoredrill.ports.policy import DrillPolicy

from bench.run import (
    BENCH_DIR,
    DATABASE,
    REPO,
    Series,
    pg_amcheck,
    prepare_cluster,
    suite_run,
    target_for,
    verdict,
)
from localcloud.postgres import PostgresServer

SPLIT_VS_UNSPLIT_MAX = 1.3
SPLIT_VS_AMCHECK_MAX = 1.6


def split_run(
    server: PostgresServer, jobs: int, round_seconds: float, task_bytes: int, series: Series
) -> float:
    """Level 3 through the plan, in rounds: the wall time from the first login to the merged
    results."""
    target = target_for(server)
    policy = DrillPolicy(level=3, include_databases=[DATABASE], parallelism=jobs)
    started = time.perf_counter()
    once = run_check_suite(target, policy.model_copy(update={"level": 1}))
    connection = connect(target, DATABASE, 600)
    try:
        catalog = read_catalog(connection)
        plan = read_database_plan(
            connection, catalog, policy, install_amcheck=False, secrets=[], task_bytes=task_bytes
        )
    finally:
        connection.close()
    progress, rounds = run_in_rounds(target, plan, policy, round_seconds=round_seconds, jobs=jobs)
    results, _ = plan_results(plan, progress, catalog, policy, None)
    elapsed = time.perf_counter() - started
    bad = [
        f"{c.display_name}: {c.message}"
        for c in [*once.checks, *results]
        if c.status is not CheckStatus.PASS
    ]
    if bad:
        raise SystemExit(f"the split level 3 did not pass: {bad}")
    series.add_extra("rounds", rounds)
    series.add_extra("tasks", len(plan.tasks))
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.plan", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="connections / pg_amcheck jobs")
    parser.add_argument(
        "--round-seconds",
        type=float,
        default=1.0,
        help="the per-invocation limit of the split run (default 1.0 s)",
    )
    parser.add_argument(
        "--task-mib", type=int, default=64, help="block range of one task (default 64 MiB)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    directory = BENCH_DIR if args.scale == 50 else REPO / f".bench-{args.scale}"
    server = prepare_cluster(args.scale, rebuild=False, directory=directory)
    try:
        amcheck = Series(f"pg_amcheck --jobs={args.jobs}")
        unsplit = Series("level 3 unsplit (in-process)")
        split = Series(f"level 3 split, rounds of {args.round_seconds:g} s (in-process)")
        contenders: list[tuple[Series, Callable[[], float]]] = [
            (amcheck, lambda: pg_amcheck(server, args.jobs)),
            (unsplit, lambda: suite_run(server, 3, args.jobs, unsplit)),
            (
                split,
                lambda: split_run(
                    server, args.jobs, args.round_seconds, args.task_mib << 20, split
                ),
            ),
        ]
        print("warming up (one unmeasured round)...", flush=True)
        for _, run in contenders:
            run()
        split.extra.clear()
        for round_no in range(1, args.rounds + 1):
            turn = round_no % len(contenders)
            for series, run in contenders[turn:] + contenders[:turn]:
                series.seconds.append(run())
            print(
                f"round {round_no}/{args.rounds}: "
                + ", ".join(f"{s.name.split(',')[0]} {s.seconds[-1]:.3f}s" for s, _ in contenders),
                flush=True,
            )
    finally:
        server.stop()

    print()
    print(
        f"pgbench scale {args.scale}, {args.rounds} rounds, warm cache, jobs={args.jobs},"
        f" {os.cpu_count()} CPUs; split: tasks of {args.task_mib} MiB,"
        f" {split.extra_median('tasks'):.0f} tasks in {min(split.extra['rounds']):.0f}"
        f"-{max(split.extra['rounds']):.0f} rounds"
    )
    print(f"{'contender':<52}{'median s':>10}{'min s':>9}{'max s':>9}")
    for series, _ in contenders:
        print(
            f"{series.name:<52}{series.median:>10.3f}{min(series.seconds):>9.3f}"
            f"{max(series.seconds):>9.3f}"
        )
    print()
    vs_unsplit = split.median / unsplit.median
    vs_amcheck = split.median / amcheck.median
    rows = [
        ("split / unsplit level 3", vs_unsplit, SPLIT_VS_UNSPLIT_MAX),
        ("split / pg_amcheck", vs_amcheck, SPLIT_VS_AMCHECK_MAX),
    ]
    print(f"{'target':<38}{'measured':>10}  {'goal':<10}")
    for name, ratio, goal in rows:
        print(f"{name:<38}{ratio:>9.2f}x  <= {goal:<7}{verdict(ratio <= goal):>6}")
    missed = [name for name, ratio, goal in rows if ratio > goal]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
