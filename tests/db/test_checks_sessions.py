"""The sessions the data and physical checks run in: JIT compilation off (it costs more than it
saves on single scans), on the first connection and on every connection opened later."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from restoredrill.checksuite import CheckStatus, SuiteVerdict, run_check_suite
from restoredrill.ports.policy import DrillPolicy

from localcloud.postgres import PostgresServer
from tests.db.checker import checker_target, ensure_checker, run_sql

JIT_OFF = "SELECT CASE WHEN current_setting('jit') = 'off' THEN 1 ELSE 0 END"


@pytest.fixture
def two_dbs(pg_server: PostgresServer) -> Iterator[tuple[str, str]]:
    ensure_checker(pg_server)
    names = (f"first_{uuid.uuid4().hex[:8]}", f"second_{uuid.uuid4().hex[:8]}")
    for name in names:
        run_sql(pg_server, "postgres", f"CREATE DATABASE {name}")
        run_sql(pg_server, name, "CREATE TABLE t (id int PRIMARY KEY)")
    yield names
    for name in names:
        run_sql(pg_server, "postgres", f"DROP DATABASE {name} WITH (FORCE)")


def test_level_2_and_3_checks_run_without_jit_on_every_connection(
    pg_server: PostgresServer, two_dbs: tuple[str, str]
) -> None:
    # Given assertions reading the session's jit setting in the target's database (the
    # connection the suite opened first) and in another database (a connection opened later)
    first, second = two_dbs
    policy = DrillPolicy(
        level=3,
        include_databases=[first, second],
        assertions=[
            {"name": "jit off, first", "sql": JIT_OFF, "expect": "== 1", "database": first},
            {"name": "jit off, second", "sql": JIT_OFF, "expect": "== 1", "database": second},
        ],
    )
    # When the suite runs
    result = run_check_suite(checker_target(pg_server, first), policy, install_amcheck=True)
    # Then both assertions saw JIT off, and the suite passed
    assertions = {c.object: c for c in result.checks if c.name == "assertion"}
    assert {name: c.status for name, c in assertions.items()} == {
        "jit off, first": CheckStatus.PASS,
        "jit off, second": CheckStatus.PASS,
    }
    assert result.verdict is SuiteVerdict.PASSED, [
        c.display_name for c in result.checks if c.status is not CheckStatus.PASS
    ]
