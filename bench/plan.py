"""``make bench`` (plan part): level 3 in rounds, against the unsplit level 3 and
``pg_amcheck --jobs=2``, side by side in one run.

The rounds contender runs the code the check runner and the checker run on AWS for a database
too large for one invocation (the policy's ``rounds``), with the Lambda transport taken out:
round 0 is one checker call in ``plan`` mode (levels 0 and 1, the plan, then the first tasks on
``--jobs`` connections); every later round is a fresh call of the check runner, as ``advance``
triggers it, which loads the stored work (JSON, as through S3) and calls ``--jobs`` checkers at
once, one connection each, on shares of at most ``--tasks-per-invocation`` tasks, each call
given ``--round-seconds``. The unsplit contender is ``run_check_suite`` at level 3 (one
invocation with time enough).

It prints each median, the GiB planned, the rounds and invocations, and the ratios against
issue 10's targets: rounds <= 1.3x unsplit and <= 1.6x pg_amcheck. The cluster is cached under
``.bench`` for the default scale and ``.bench-<scale>`` for another.

    python -m bench.plan [--scale 50] [--rounds 3] [--round-seconds 60] [--task-mib 64]
                         [--tasks-per-invocation 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from restoredrill.domain.check_rounds import run_planning_checker, run_share_checker
from restoredrill.domain.checker_side import round_seconds
from restoredrill.domain.password_broker import run_check
from restoredrill.ports.messages import CheckerRequest, CheckerTarget, CheckRunRequest
from restoredrill.ports.policy import DrillPolicy, RoundsPolicy

from bench.run import (
    BENCH_DIR,
    DATABASE,
    PASSWORD,
    REPO,
    USER,
    Series,
    pg_amcheck,
    prepare_cluster,
    suite_run,
    target_for,
    verdict,
)
from localcloud.postgres import PostgresServer
from tests.unit.fakes import MemoryWorkStore

SPLIT_VS_UNSPLIT_MAX = 1.3
SPLIT_VS_AMCHECK_MAX = 1.6
BENCH_RUN_ID = "be4c4be4c4be4c4be4c4"


class InProcessChecker:
    """The checker function without Lambda: each call is one invocation of ``seconds``."""

    def __init__(self, server: PostgresServer, seconds: float) -> None:
        self.target = target_for(server)
        self.seconds = seconds

    def check(self, payload: dict[str, Any]) -> dict[str, Any]:
        # The bench cluster has no TLS; the checker would insist on it.
        request = CheckerRequest.model_validate(payload).model_copy(update={"target": self.target})
        if request.mode == "plan":
            return run_planning_checker(request, round_seconds(self.seconds, request.policy))
        return run_share_checker(request, round_seconds(self.seconds, request.policy))


class _Vault:
    def get(self, name: str) -> str | None:
        return PASSWORD


def split_run(
    server: PostgresServer,
    jobs: int,
    round_seconds: float,
    task_bytes: int,
    tasks_per_invocation: int,
    series: Series,
) -> float:
    """Level 3 in rounds, through the code the check runner and the checker run on AWS
    (:func:`run_check`, the plan and share modes), each round a fresh call as ``advance``
    would trigger it: the wall time from the first login to the final result."""
    policy = DrillPolicy(
        level=3,
        include_databases=[DATABASE],
        parallelism=jobs,
        rounds=RoundsPolicy(
            enabled=True,
            task_mib=max(1, task_bytes >> 20),
            tasks_per_invocation=tasks_per_invocation,
            max_rounds=10000,
        ),
        time_budget=3600,
    )
    checker, store = InProcessChecker(server, round_seconds), MemoryWorkStore()
    request = CheckRunRequest(
        run_id=BENCH_RUN_ID,
        password_parameter="/bench/password",  # noqa: S106 - an SSM parameter name
        target=CheckerTarget(host=server.host, port=server.port, user=USER, database=DATABASE),
        policy=policy.model_dump(mode="json"),
    )
    started = time.perf_counter()
    answer = run_check(request, _Vault(), checker, store)
    while "result" not in answer:
        request = request.model_copy(update={"round": answer["round"] + 1})
        answer = run_check(request, _Vault(), checker, store)
    elapsed = time.perf_counter() - started
    result = answer["result"]
    bad = [f"{c['name']}: {c['message']}" for c in result["checks"] if c["status"] != "pass"]
    if bad:
        raise SystemExit(f"the split level 3 did not pass: {bad}")
    rounds = next(c for c in result["checks"] if c["name"] == "check_rounds")["evidence"]
    series.add_extra("rounds", rounds["rounds"])
    series.add_extra("invocations", rounds["invocations"])
    series.add_extra("tasks", rounds["tasks_planned"])
    series.add_extra("gib", rounds["bytes_planned"] / (1 << 30))
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
        default=60.0,
        help="each checker invocation's time in the rounds run (default 60 s)",
    )
    parser.add_argument(
        "--task-mib", type=int, default=64, help="block range of one task (default 64 MiB)"
    )
    parser.add_argument(
        "--tasks-per-invocation",
        type=int,
        default=30,
        help="the policy's rounds.tasks_per_invocation (default 30)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    directory = BENCH_DIR if args.scale == 50 else REPO / f".bench-{args.scale}"
    server = prepare_cluster(args.scale, rebuild=False, directory=directory)
    try:
        amcheck = Series(f"pg_amcheck --jobs={args.jobs}")
        unsplit = Series("level 3 unsplit (in-process)")
        split = Series(
            f"level 3 in rounds, invocations of {args.round_seconds:g} s"
            f" and {args.tasks_per_invocation} tasks (in-process)"
        )
        contenders: list[tuple[Series, Callable[[], float]]] = [
            (amcheck, lambda: pg_amcheck(server, args.jobs)),
            (unsplit, lambda: suite_run(server, 3, args.jobs, unsplit)),
            (
                split,
                lambda: split_run(
                    server,
                    args.jobs,
                    args.round_seconds,
                    args.task_mib << 20,
                    args.tasks_per_invocation,
                    split,
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
        f" {os.cpu_count()} CPUs; in rounds: {split.extra_median('gib'):.2f} GiB planned in"
        f" tasks of {args.task_mib} MiB, {split.extra_median('tasks'):.0f} tasks in"
        f" {min(split.extra['rounds']):.0f}-{max(split.extra['rounds']):.0f} rounds of"
        f" {args.jobs} checker invocations ({split.extra_median('invocations'):.0f} in all)"
    )
    print(f"{'contender':<70}{'median s':>10}{'min s':>9}{'max s':>9}")
    for series, _ in contenders:
        print(
            f"{series.name:<70}{series.median:>10.3f}{min(series.seconds):>9.3f}"
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
