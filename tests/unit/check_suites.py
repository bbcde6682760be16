"""Check suite results as the checker writes them (:class:`CheckSuiteResult`), for tests that
need one but not a database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from restoredrill.ports.baseline import Baseline, DatabaseBaseline, TableShape
from restoredrill.ports.messages import CheckResult, CheckStatus, CheckSuiteResult, SuiteVerdict

CHECKED_AT = datetime(2026, 11, 27, 3, 12, tzinfo=UTC)


def check(name: str, status: str, level: int = 0, **fields: Any) -> CheckResult:
    return CheckResult(name=name, level=level, status=CheckStatus(status), **fields)


def suite_of(verdict: str, *checks: CheckResult) -> CheckSuiteResult:
    return CheckSuiteResult(
        verdict=SuiteVerdict(verdict),
        checks=list(checks),
        started_at=CHECKED_AT,
        finished_at=CHECKED_AT + timedelta(seconds=14),
        duration_ms=14_000,
    )


def passed_suite() -> CheckSuiteResult:
    return suite_of("PASSED", check("connect", "pass"))


# ------------------------------------------------------------------------------ realistic sizes
# A schema as applications have them: tables of ten columns with a primary key, a foreign key
# and a second index, names of realistic length; row counts that do not compress to nothing.

COLUMNS = {
    "id": "bigint not null",
    "account_id": "bigint not null",
    "created_at": "timestamp with time zone not null",
    "updated_at": "timestamp with time zone not null",
    "status": "text not null",
    "amount": "numeric(12,2)",
    "currency": "character(3)",
    "reference": "character varying(64)",
    "payload": "jsonb",
    "deleted_at": "timestamp with time zone",
}


def realistic_table(index: int) -> tuple[str, TableShape]:
    name = f"customer_order_items_{index:05d}"
    shape = TableShape(
        kind="table",
        columns=dict(COLUMNS),
        constraints={
            f"{name}_pkey": "PRIMARY KEY (id)",
            f"{name}_account_id_fkey": "FOREIGN KEY (account_id) REFERENCES app.accounts(id)",
        },
        indexes={
            f"{name}_pkey": f"CREATE UNIQUE INDEX {name}_pkey ON app.{name} USING btree (id)",
            f"{name}_created_at_idx": (
                f"CREATE INDEX {name}_created_at_idx ON app.{name} USING btree (created_at)"
            ),
        },
    )
    return f'"app"."{name}"', shape


def realistic_baseline(tables: int, seed: int = 9) -> Baseline:
    rows = random.Random(seed)
    shapes = dict(realistic_table(index) for index in range(tables))
    database = DatabaseBaseline(
        schema_fingerprint="sha256:" + "ab" * 32,
        schemas=["app", "public"],
        extensions={"plpgsql": "1.0", "pg_stat_statements": "1.10"},
        tables=shapes,
        row_counts={key: rows.randrange(0, 50_000_000) for key in shapes},
        size_bytes=rows.randrange(10**9, 10**12),
    )
    return Baseline(
        taken_at=CHECKED_AT,
        server_version="16.4",
        level=3,
        database_names=["app", "postgres"],
        roles=["app_owner", "app_reader", "rds_superuser"],
        databases={"app": database},
    )


def realistic_suite(tables: int, *, rows_lost: bool = False) -> CheckSuiteResult:
    """A level-3 suite over one database of ``tables`` tables, with its baseline. With
    ``rows_lost`` every table lost rows: each is a problem in the row counts' evidence."""
    baseline = realistic_baseline(tables)
    counts = baseline.databases["app"].row_counts
    problems = [
        {
            "table": key,
            "status": "fail",
            "baseline_rows": rows + 1000,
            "rows": rows,
            "message": f"{rows + 1000} -> {rows} rows: more than the 0% the policy allows",
        }
        for key, rows in counts.items()
        if rows_lost
    ]
    checks = [
        check("connect", "pass", evidence={"host": "10.0.0.9", "port": 5432, "ssl": "require"}),
        check("tls", "pass", evidence={"version": "TLSv1.3"}),
        check("server_version", "pass", evidence={"server_version": "16.4"}),
        check("not_in_recovery", "pass", evidence={"in_recovery": False}),
        check("catalog", "pass", level=1, database="app", evidence={"relations": tables}),
        check("schema_fingerprint", "pass", level=1, database="app"),
        check(
            "row_counts",
            "fail" if rows_lost else "pass",
            level=2,
            database="app",
            message=f"{tables} table(s) counted",
            evidence={"tables_counted": tables, "problems": problems, "skipped": []},
        ),
        check("amcheck_heap", "pass", level=3, database="app", evidence={"checked": tables}),
        check("amcheck_btree", "pass", level=3, database="app", evidence={"checked": 2 * tables}),
    ]
    result = suite_of("FAILED" if rows_lost else "PASSED", *checks)
    return result.model_copy(update={"baseline": baseline})
