"""``make bench`` (CLI part): what an operator waits for, whole processes side by side in one run.

The CLI is measured as an operator installs it (``pipx install .``): a virtualenv under
``.bench/operator-venv`` holding the project and its runtime dependencies only (no moto; the
project is reinstalled on every run), and, for ``--help``, as ``make venv`` installs it too
(editable, with the development dependencies). On the bench database of :mod:`bench.run`
(pgbench scale 50 plus tables with secondary indexes and timestamps, cached under ``.bench/``),
interleaved for N rounds, each contender a fresh process started the way a shell starts it:

- ``python -c pass``: the interpreter alone (the floor of any Python command),
- ``restoredrill --help``: the CLI's start-up (every command's parser is built),
- ``restoredrill check --level 3 --jobs 2``: the whole command, start-up and checks,
- ``pg_amcheck --jobs=2`` on the same database,
- the level 3 suite in this process (``run_check_suite``): the checks without the start-up.

It prints each median, every round's own ratio check / pg_amcheck (both ran within seconds of
each other, under about the same load), the load average before and after, and the ratios
against issue 9's targets: ``restoredrill --help`` under
0.3 s, the whole ``restoredrill check --level 3`` within 1.6x of ``pg_amcheck --jobs=2``; and
which heavy modules ``restoredrill --help`` imports (none is the goal).

    python -m bench.cli [--scale 50] [--rounds 7] [--jobs 2] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.run import (
    BENCH_DIR,
    DATABASE,
    PASSWORD,
    USER,
    Series,
    pg_amcheck,
    prepare_cluster,
    suite_run,
    verdict,
)

HELP_SECONDS_MAX = 0.3
CHECK_VS_AMCHECK_MAX = 1.6
# What `restoredrill --help` must not import: each costs tens to thousands of milliseconds, and
# moto is not even installed where the operator installed the CLI alone.
HEAVY_MODULES = (
    "boto3",
    "botocore",
    "moto",
    "localcloud",
    "pydantic",
    "rich",
    "jinja2",
    "aws_lambda_powertools",
    "pg8000",
    "yaml",
    "restoredrill.domain.report.document",
    "restoredrill.checksuite",
)


REPO = Path(__file__).resolve().parents[1]
OPERATOR_VENV = BENCH_DIR / "operator-venv"


def operator_install() -> Path:
    """The bin directory of a virtualenv with the project installed as an operator installs it:
    no extras, so no moto. Like pipx, the virtualenv has no pip or setuptools of its own (the
    pip of this one installs into it), so nothing but the CLI's needs is loaded at start-up.
    Built once (pip resolves the runtime dependencies); the project itself is reinstalled every
    time, so that the measurement is of the code as it is now."""
    python = OPERATOR_VENV / "bin" / "python"
    pip = [
        sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
        "--disable-pip-version-check",
    ]  # fmt: skip
    if not python.exists():
        print(f"building the operator's install in {OPERATOR_VENV}...", flush=True)
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "venv", "--without-pip", str(OPERATOR_VENV)], check=True
        )
        subprocess.run([*pip, str(REPO)], check=True)  # noqa: S603
    else:
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(REPO)], check=True)  # noqa: S603
    absent = subprocess.run(  # noqa: S603
        [str(python), "-c", "import moto"], capture_output=True, check=False
    )
    if absent.returncode == 0:
        raise SystemExit(f"{OPERATOR_VENV} has moto: it is not an operator's install")
    return python.parent


def timed_process(argv: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} exited {result.returncode}: {result.stderr}")
    return elapsed


def heavy_modules_of_help(python: Path) -> list[str]:
    """The heavy modules imported while building every command's parser, as `--help` does."""
    probe = (
        "import json, sys\n"
        "from restoredrill_cli.main import build_parser\n"
        "build_parser().format_help()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(
        subprocess.run(  # noqa: S603
            [str(python), "-c", probe], capture_output=True, text=True, check=True
        ).stdout
    )
    return sorted(
        {
            heavy
            for heavy in HEAVY_MODULES
            for module in loaded
            if module == heavy or module.startswith(heavy + ".")
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cli", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale (default 50)")
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument("--jobs", type=int, default=2, help="connections / pg_amcheck jobs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    # The cluster first: building it starts .bench/ afresh, the operator's install included.
    server = prepare_cluster(args.scale, rebuild=False)
    operator_bin = operator_install()
    restoredrill = str(operator_bin / "restoredrill")
    dev_restoredrill = str(Path(sys.executable).with_name("restoredrill"))
    heavy = heavy_modules_of_help(operator_bin / "python")
    load_before = os.getloadavg()
    try:
        admin = server.admin_connect(DATABASE)
        [[size]] = admin.run("SELECT pg_size_pretty(pg_database_size(current_database()))")
        admin.close()
        policy = BENCH_DIR / "policy.yaml"
        policy.write_text(f"defaults:\n  include_databases: [{DATABASE}]\n")
        check_argv = [
            restoredrill,
            "check",
            "--dsn",
            server.dsn(USER, PASSWORD, DATABASE),
            "--level",
            "3",
            "--jobs",
            str(args.jobs),
            "--policy",
            str(policy),
        ]
        floor = Series("python -c pass (interpreter)")
        help_ = Series("restoredrill --help")
        dev_help = Series("restoredrill --help, make venv (editable, dev deps)")
        check = Series(f"restoredrill check --level 3 --jobs {args.jobs}")
        amcheck = Series(f"pg_amcheck --jobs={args.jobs}")
        suite = Series("level 3 suite in-process (no start-up)")
        contenders: list[tuple[Series, Callable[[], float]]] = [
            (floor, lambda: timed_process([str(operator_bin / "python"), "-c", "pass"])),
            (help_, lambda: timed_process([restoredrill, "--help"])),
            (dev_help, lambda: timed_process([dev_restoredrill, "--help"])),
            (check, lambda: timed_process(check_argv)),
            (amcheck, lambda: pg_amcheck(server, args.jobs)),
            (suite, lambda: suite_run(server, 3, args.jobs, suite)),
        ]
        print("warming up (one unmeasured round)...", flush=True)
        for _, run in contenders:
            run()
        for round_no in range(1, args.rounds + 1):
            # interleaved, in a rotating order so that no contender always runs first
            turn = round_no % len(contenders)
            for series, run in contenders[turn:] + contenders[:turn]:
                series.seconds.append(run())
            print(
                f"round {round_no}/{args.rounds}: "
                + ", ".join(f"{s.name.split(' (')[0]} {s.seconds[-1]:.3f}s" for s, _ in contenders),
                flush=True,
            )
    finally:
        server.stop()
    load_after = os.getloadavg()

    print()
    print(
        f"database {DATABASE} ({size}, pgbench scale {args.scale}), {args.rounds} rounds, warm"
        f" cache, jobs={args.jobs}, {os.cpu_count()} CPUs; the CLI as installed in {OPERATOR_VENV}"
    )
    print(f"{'contender':<50}{'median s':>10}{'min s':>9}{'max s':>9}")
    for series, _ in contenders:
        print(
            f"{series.name:<50}{series.median:>10.3f}{min(series.seconds):>9.3f}"
            f"{max(series.seconds):>9.3f}"
        )
    print()
    ratio = check.median / amcheck.median
    # Each round runs both within seconds of each other: the machine's load changes less between
    # them than across the whole run.
    pairs = zip(check.seconds, amcheck.seconds, strict=True)
    round_ratios = [c / a for c, a in pairs]
    per_round = statistics.median(round_ratios)
    start_up = check.median - suite.median
    rows = [
        (
            "restoredrill --help",
            f"{help_.median:.3f} s",
            f"< {HELP_SECONDS_MAX} s",
            help_.median < HELP_SECONDS_MAX,
        ),
        (
            "check --level 3 process / pg_amcheck",
            f"{ratio:.2f}x",
            f"<= {CHECK_VS_AMCHECK_MAX}x",
            ratio <= CHECK_VS_AMCHECK_MAX,
        ),
        ("heavy modules imported by --help", ", ".join(heavy) or "none", "none", not heavy),
    ]
    print(f"{'target':<38}{'measured':>22}  {'goal':<10}{'':>6}")
    for name, measured, goal, ok in rows:
        print(f"{name:<38}{measured:>22}  {goal:<10}{verdict(ok):>6}")
    print(
        f"\ncheck --level 3: {check.median:.3f} s whole process = {suite.median:.3f} s of checks "
        f"+ {start_up:.3f} s of start-up, imports and output; the checks alone are "
        f"{suite.median / amcheck.median:.2f}x pg_amcheck"
    )
    print(
        "each round's check / pg_amcheck: "
        + " ".join(f"{r:.2f}x" for r in round_ratios)
        + f"; their median {per_round:.2f}x ({verdict(per_round <= CHECK_VS_AMCHECK_MAX)} against"
        f" {CHECK_VS_AMCHECK_MAX}x)"
    )
    print(
        "load average (1, 5, 15 min): before "
        + "/".join(f"{v:.2f}" for v in load_before)
        + ", after "
        + "/".join(f"{v:.2f}" for v in load_after)
    )
    missed = [name for name, *_, ok in rows if not ok]
    if missed:
        print(f"\n{len(missed)} target(s) missed on this run: " + "; ".join(missed))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
