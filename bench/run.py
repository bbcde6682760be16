"""``make bench``: the check suite against the floor (count(*) of every table) and pg_amcheck.

Builds (once, cached under ``.bench/``) a throwaway PostgreSQL cluster with data checksums and
TLS holding a pgbench database (scale 50 by default, ~750 MiB) plus a few tables with secondary
indexes and timestamp columns, then runs side by side, interleaved, for N rounds (warm cache):

- ``count(*)`` of every table, one connection, one after the other (the floor),
- ``pg_amcheck --jobs=2`` on the database,
- ``restoredrill check`` at level 2 and level 3, in-process (``run_check_suite``), measuring
  Python CPU with ``time.process_time``,
- ``restoredrill check --level 3`` as a subprocess, for the peak RSS of the whole command
  (``os.wait4``'s rusage of that one child).

It prints each median and the ratios against issue 3's targets: level 3 <= 1.6x pg_amcheck -j2,
level 2 <= 1.5x the count(*) floor, Python CPU <= 2% of wall time, peak RSS <= 100 MB.

    python -m bench.run [--scale 50] [--rounds 5] [--jobs 2] [--rebuild] [--cold] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr
from restoredrill.checksuite import ConnectionTarget, SuiteVerdict, run_check_suite
from restoredrill.checksuite.connection import connect
from restoredrill.checksuite.sql import count_sql
from restoredrill.ports.policy import DrillPolicy

from localcloud.postgres import PostgresServer, init_cluster, postgres_bin_dir

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / ".bench"
CLUSTER = "cluster"
DATABASE = "bench"
USER = "bench"
PASSWORD = "bench-Pass-2718"  # noqa: S105 - a throwaway local cluster
META = "bench-meta.json"

EXTRA_TABLES = [
    "CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL UNIQUE,"
    " name text NOT NULL, created_at timestamptz NOT NULL)",
    "INSERT INTO customers SELECT g, 'user' || g || '@example.com', 'name ' || g,"
    " now() - make_interval(secs => g * 7) FROM generate_series(1, {customers}) g",
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL,"
    " amount numeric(12,2) NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL)",
    "INSERT INTO orders SELECT g, 1 + (g::bigint * 7919) % {customers}, (g % 10000) / 100.0,"
    " (ARRAY['new','paid','shipped','returned'])[1 + g % 4],"
    " now() - make_interval(secs => g) FROM generate_series(1, {orders}) g",
    "CREATE INDEX orders_customer ON orders (customer_id)",
    "CREATE INDEX orders_created_at ON orders (created_at)",
    "CREATE INDEX orders_status_created ON orders (status, created_at)",
    "CREATE TABLE events (id bigserial PRIMARY KEY, at timestamp NOT NULL, kind text NOT NULL,"
    " payload jsonb)",
    "INSERT INTO events (at, kind, payload) SELECT now() - make_interval(secs => g * 3),"
    " 'kind' || (g % 50), jsonb_build_object('n', g, 'tag', md5(g::text))"
    " FROM generate_series(1, {events}) g",
    "CREATE INDEX events_at ON events (at)",
    "CREATE INDEX events_kind_at ON events (kind, at)",
]


@dataclass
class Series:
    name: str
    seconds: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def add_extra(self, key: str, value: float) -> None:
        self.extra.setdefault(key, []).append(value)

    def extra_median(self, key: str) -> float:
        return statistics.median(self.extra[key])


# --------------------------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------------------------


def _server_from_meta(meta: dict[str, object], directory: Path = BENCH_DIR) -> PostgresServer:
    return PostgresServer(
        data_dir=directory / CLUSTER,
        port=int(str(meta["port"])),
        socket_dir=Path(str(meta["socket_dir"])),
        log_file=directory / f"{CLUSTER}.log",
        auto_port=True,
    )


def prepare_cluster(scale: int, rebuild: bool, directory: Path = BENCH_DIR) -> PostgresServer:
    """The bench cluster of ``scale`` cached in ``directory`` (built when missing or of another
    scale), started."""
    meta_file = directory / META
    if not rebuild and meta_file.exists() and (directory / CLUSTER / "PG_VERSION").exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("scale") == scale and meta.get("complete"):
            server = _server_from_meta(meta, directory)
            server.start()
            print(f"reusing the cached cluster in {directory} (scale {scale})", flush=True)
            return server
    if directory.exists():
        stale = directory / CLUSTER
        if (stale / "postmaster.pid").exists():
            try:
                _server_from_meta(json.loads(meta_file.read_text()), directory).stop("immediate")
            except Exception as exc:  # best effort before removing it
                print(f"could not stop the old bench cluster: {exc}", file=sys.stderr)
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.chmod(directory, 0o755)  # noqa: S103 - the server user must reach its data dir
    print(f"building the bench cluster in {directory} (pgbench scale {scale})...", flush=True)
    started = time.monotonic()
    server = init_cluster(directory, CLUSTER, data_checksums=True, ssl=True)
    meta = {
        "scale": scale,
        "port": server.port,
        "socket_dir": str(server.socket_dir),
        "complete": False,
    }
    meta_file.write_text(json.dumps(meta))
    server.start()
    admin = server.admin_connect()
    admin.run(f"CREATE ROLE {USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    admin.run(f"CREATE DATABASE {DATABASE} OWNER {USER}")
    admin.close()
    pgbench = [
        str(postgres_bin_dir() / "pgbench"),
        "-i",
        "-q",
        "-s",
        str(scale),
        "-h",
        str(server.socket_dir),
        "-p",
        str(server.port),
        "-U",
        server.superuser,
        DATABASE,
    ]
    subprocess.run(pgbench, check=True, capture_output=True, timeout=3600)  # noqa: S603
    connection = server.admin_connect(DATABASE, timeout=3600)
    sizes = {
        "customers": 20_000 * scale // 50 * 10,
        "orders": 20_000 * scale,
        "events": 10_000 * scale,
    }
    for statement in EXTRA_TABLES:
        connection.run(statement.format(**sizes))
    connection.run("CREATE EXTENSION IF NOT EXISTS amcheck")
    connection.run("VACUUM (FREEZE, ANALYZE)")
    connection.run("CHECKPOINT")
    [[size]] = connection.run("SELECT pg_size_pretty(pg_database_size(current_database()))")
    connection.close()
    meta["complete"] = True
    meta["port"] = server.port
    meta_file.write_text(json.dumps(meta))
    print(f"built in {time.monotonic() - started:.0f} s: database {DATABASE} is {size}", flush=True)
    return server


def target_for(server: PostgresServer) -> ConnectionTarget:
    return ConnectionTarget(
        host=server.host,
        port=server.port,
        user=USER,
        password=SecretStr(PASSWORD),
        database=DATABASE,
    )


# --------------------------------------------------------------------------------------------
# the contenders
# --------------------------------------------------------------------------------------------


def count_floor(server: PostgresServer) -> float:
    """count(*) of every table on one TLS connection, one after the other (the floor). The
    connection is opened like the checker's own (TCP_NODELAY, no trust store to load), so the
    floor is not slowed by connection details."""
    started = time.perf_counter()
    connection = connect(target_for(server), DATABASE, 600)
    tables = connection.run(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    )
    for schema, table in tables:
        connection.run(count_sql(schema, table))
    connection.close()
    return time.perf_counter() - started


def pg_amcheck(server: PostgresServer, jobs: int) -> float:
    env = dict(os.environ, PGPASSWORD=PASSWORD, PGSSLMODE="require")
    argv = [
        str(postgres_bin_dir() / "pg_amcheck"),
        f"--jobs={jobs}",
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-U",
        USER,
        "-d",
        DATABASE,
    ]
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"pg_amcheck failed ({result.returncode}): {result.stdout}{result.stderr}")
    return elapsed


def suite_run(server: PostgresServer, level: int, jobs: int, series: Series) -> float:
    policy = DrillPolicy(level=level, include_databases=[DATABASE], parallelism=jobs)
    cpu = time.process_time()
    started = time.perf_counter()
    result = run_check_suite(target_for(server), policy)
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu
    if result.verdict is not SuiteVerdict.PASSED:
        bad = [f"{c.display_name}: {c.message}" for c in result.checks if c.status != "pass"]
        raise SystemExit(f"level {level} did not pass: {bad}")
    series.add_extra("cpu_s", cpu_s)
    series.add_extra("cpu_pct", 100 * cpu_s / elapsed)
    return elapsed


def cli_run(server: PostgresServer, jobs: int, series: Series) -> float:
    """``restoredrill check --level 3`` in its own process: wall time and peak RSS (MiB)."""
    dsn = server.dsn(USER, PASSWORD, DATABASE)
    policy = BENCH_DIR / "policy.yaml"
    policy.write_text(f"defaults:\n  include_databases: [{DATABASE}]\n")
    argv = [
        sys.executable,
        "-m",
        "restoredrill_cli.check_cmd",
        "check",
        "--dsn",
        dsn,
        "--level",
        "3",
        "--jobs",
        str(jobs),
        "--policy",
        str(policy),
        "--json",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"restoredrill check exited {process.returncode}: {stderr}")
    if process.stderr:
        process.stderr.close()
    series.add_extra("rss_mib", usage.ru_maxrss / 1024)  # Linux: KiB
    return elapsed


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale (default 50)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--jobs", type=int, default=2, help="connections / pg_amcheck jobs")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached cluster")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="drop the OS page cache before every measured run (root only; slows the whole "
        "machine for a moment) - closer to a fresh restore, whose blocks are loaded lazily",
    )
    args = parser.parse_args(argv)

    server = prepare_cluster(args.scale, args.rebuild)
    try:
        floor = Series("count(*) of every table (floor)")
        amcheck = Series(f"pg_amcheck --jobs={args.jobs}")
        level2 = Series("restoredrill level 2 (in-process)")
        level3 = Series("restoredrill level 3 (in-process)")
        cli = Series("restoredrill check --level 3 (CLI process)")
        contenders: list[tuple[Series, Callable[[], float]]] = [
            (floor, lambda: count_floor(server)),
            (amcheck, lambda: pg_amcheck(server, args.jobs)),
            (level2, lambda: suite_run(server, 2, args.jobs, level2)),
            (level3, lambda: suite_run(server, 3, args.jobs, level3)),
            (cli, lambda: cli_run(server, args.jobs, cli)),
        ]
        print("warming up (one unmeasured round)...", flush=True)
        for _, run in contenders:
            run()
        for series in (level2, level3, cli):
            series.extra.clear()
        for round_no in range(1, args.rounds + 1):
            # interleaved, and in a rotating order so no contender always runs first
            order = (
                contenders[round_no % len(contenders) :] + contenders[: round_no % len(contenders)]
            )
            for series, run in order:
                if args.cold:
                    drop_caches()
                series.seconds.append(run())
            print(
                f"round {round_no}/{args.rounds}: "
                + ", ".join(f"{s.name.split(' (')[0]} {s.seconds[-1]:.3f}s" for s, _ in contenders),
                flush=True,
            )
    finally:
        server.stop()

    print()
    print(
        f"pgbench scale {args.scale}, {args.rounds} rounds, warm cache, jobs={args.jobs},"
        f" {os.cpu_count()} CPUs"
    )
    print(f"{'contender':<46}{'median s':>10}{'min s':>9}{'max s':>9}")
    for series, _ in contenders:
        print(
            f"{series.name:<46}{series.median:>10.3f}{min(series.seconds):>9.3f}"
            f"{max(series.seconds):>9.3f}"
        )
    print()
    ratio3 = level3.median / amcheck.median
    ratio2 = level2.median / floor.median
    cpu2, cpu3 = level2.extra_median("cpu_pct"), level3.extra_median("cpu_pct")
    rss = max(cli.extra["rss_mib"])
    rows = [
        ("level 3 / pg_amcheck -j2", f"{ratio3:.2f}x", "<= 1.6x", ratio3 <= 1.6),
        ("level 2 / count(*) floor", f"{ratio2:.2f}x", "<= 1.5x", ratio2 <= 1.5),
        (
            "Python CPU, level 2 (of wall)",
            f"{cpu2:.2f}% ({level2.extra_median('cpu_s') * 1000:.0f} ms)",
            "<= 2%",
            cpu2 <= 2,
        ),
        (
            "Python CPU, level 3 (of wall)",
            f"{cpu3:.2f}% ({level3.extra_median('cpu_s') * 1000:.0f} ms)",
            "<= 2%",
            cpu3 <= 2,
        ),
        (
            "peak RSS, restoredrill check (CLI)",
            f"{rss:.0f} MiB",
            "<= 100 MB",
            rss <= 100 / 1.048576,
        ),
    ]
    print(f"{'target':<38}{'measured':>22}  {'goal':<10}{'':>6}")
    for name, measured, goal, ok in rows:
        print(f"{name:<38}{measured:>22}  {goal:<10}{verdict(ok):>6}")
    missed = [name for name, *_, ok in rows if not ok]
    if missed:
        print(f"\n{len(missed)} target(s) missed on this run: " + "; ".join(missed))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
