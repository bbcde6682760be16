"""How the suite behaves when things go wrong around the data: refused logins, TLS it cannot
verify, statement timeouts, the time budget, amcheck missing, several databases."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from restoredrill.checksuite import (
    CheckResult,
    CheckStatus,
    CheckSuiteResult,
    SuiteVerdict,
    run_check_suite,
)
from restoredrill.ports.policy import DrillPolicy

from localcloud.postgres import PostgresServer, free_port
from tests.db.checker import PASSWORD, checker_target, ensure_checker, run_sql


@pytest.fixture
def two_dbs(pg_server: PostgresServer) -> Iterator[tuple[str, str]]:
    ensure_checker(pg_server)
    suffix = uuid.uuid4().hex[:8]
    names = (f"alpha_{suffix}", f"beta_{suffix}")
    for index, name in enumerate(names):
        run_sql(pg_server, "postgres", f"CREATE DATABASE {name}")
        run_sql(
            pg_server,
            name,
            "CREATE TABLE t (id int PRIMARY KEY, v text)",
            f"INSERT INTO t SELECT g, 'x' FROM generate_series(1, {100 * (index + 1)}) g",
        )
    yield names
    for name in names:
        run_sql(pg_server, "postgres", f"DROP DATABASE {name} WITH (FORCE)")


def only(result: CheckSuiteResult, name: str, database: str | None = None) -> CheckResult:
    found = [
        c for c in result.checks if c.name == name and (database is None or c.database == database)
    ]
    assert len(found) == 1, [c.display_name for c in found]
    return found[0]


def test_a_refused_login_is_an_error_verdict_with_the_servers_message_and_no_password(
    pg_server: PostgresServer, two_dbs: tuple[str, str]
) -> None:
    # Given a wrong password
    wrong = "Wrong-Pass-99-xyz"
    # When the suite runs
    result = run_check_suite(
        checker_target(pg_server, two_dbs[0], password=SecretStr(wrong)), DrillPolicy()
    )
    # Then the verdict is ERROR with a single level-0 connect check quoting the server
    assert result.verdict is SuiteVerdict.ERROR
    [check] = result.checks
    assert (check.name, check.level, check.status) == ("connect", 0, CheckStatus.ERROR)
    assert "password authentication failed" in check.message
    assert check.evidence["sqlstate"] == "28P01"
    assert result.baseline is None and result.server_version is None
    # And neither password appears anywhere in the result
    text = json.dumps(result.model_dump(mode="json"))
    assert wrong not in text and PASSWORD not in text


def test_nothing_listening_is_an_error_verdict(pg_server: PostgresServer) -> None:
    # Given a port nobody listens on / When the suite runs / Then ERROR, saying it could not connect
    result = run_check_suite(
        checker_target(pg_server, "postgres", port=free_port(), connect_timeout_s=3), DrillPolicy()
    )
    assert result.verdict is SuiteVerdict.ERROR
    assert result.checks[0].name == "connect" and "could not" in result.checks[0].message


def test_verify_full_refuses_a_certificate_it_cannot_verify(pg_server: PostgresServer) -> None:
    # Given the local server's self-signed certificate and sslmode verify-full
    result = run_check_suite(
        checker_target(pg_server, "postgres", ssl="verify-full"), DrillPolicy(level=0)
    )
    # Then the connection is refused by the client: ERROR, certificate named as the reason
    assert result.verdict is SuiteVerdict.ERROR
    assert "certificate" in result.checks[0].message.lower()


def test_every_database_of_the_instance_is_checked(
    pg_server: PostgresServer, two_dbs: tuple[str, str]
) -> None:
    # Given two databases with 100 and 200 rows
    alpha, beta = two_dbs
    policy = DrillPolicy(include_databases=[alpha, beta], level=2)
    # When the suite connects to one of them
    result = run_check_suite(checker_target(pg_server, alpha), policy)
    # Then both are catalogued and counted, each on its own
    assert result.verdict is SuiteVerdict.PASSED
    assert {c.database for c in result.checks if c.name == "catalog"} == {alpha, beta}
    assert result.baseline is not None
    counts = {name: db.row_counts for name, db in result.baseline.databases.items()}
    assert counts == {alpha: {'"public"."t"': 100}, beta: {'"public"."t"': 200}}
    assert set(only(result, "databases").evidence["checked"]) == {alpha, beta}
    # And a database named in the policy but absent fails the databases check
    missing = DrillPolicy(include_databases=[alpha, "nope"], level=1)
    failed = run_check_suite(checker_target(pg_server, alpha), missing)
    assert only(failed, "databases").status is CheckStatus.FAIL
    assert "nope" in only(failed, "databases").message


def test_a_statement_past_its_timeout_is_an_error_not_a_pass(
    pg_server: PostgresServer, two_dbs: tuple[str, str]
) -> None:
    # Given a 0.5 s statement timeout and an assertion that takes 5 s
    policy = DrillPolicy.model_validate(
        {
            "level": 2,
            "include_databases": [two_dbs[0]],
            "statement_timeout": 0.5,
            "assertions": [
                {"name": "slow", "sql": "SELECT pg_sleep(5) IS NULL", "expect": "is true"}
            ],
        }
    )
    started = time.monotonic()
    # When the suite runs
    result = run_check_suite(checker_target(pg_server, two_dbs[0]), policy)
    # Then the assertion errors with the timeout, quickly, and the verdict says it could not check
    slow = only(result, "assertion")
    assert slow.status is CheckStatus.ERROR and "statement timeout" in slow.message
    assert time.monotonic() - started < 4
    assert result.verdict is SuiteVerdict.ERROR


def test_the_time_budget_cuts_checks_short_as_skipped_not_lost(
    pg_server: PostgresServer, two_dbs: tuple[str, str]
) -> None:
    # Given a 1.5 s budget and an assertion that would take 20 s
    alpha, beta = two_dbs
    policy = DrillPolicy.model_validate(
        {
            "include_databases": [alpha, beta],
            "time_budget": 1.5,
            "parallelism": 1,
            "assertions": [
                {
                    "name": "slow",
                    "sql": "SELECT pg_sleep(20) IS NULL",
                    "expect": "is true",
                    "database": alpha,
                }
            ],
            "freshness": [{"table": "t", "column": "v", "max_age": "1h", "database": beta}],
        }
    )
    started = time.monotonic()
    # When the suite runs
    result = run_check_suite(checker_target(pg_server, alpha), policy)
    elapsed = time.monotonic() - started
    # Then it stops at the budget, the cut statement and everything after it are skipped
    assert elapsed < 5
    assert only(result, "assertion").status is CheckStatus.SKIPPED
    assert "time budget" in only(result, "assertion").message
    skipped_beta = {
        c.name for c in result.checks if c.database == beta and c.status is CheckStatus.SKIPPED
    }
    assert {"catalog", "row_counts", "amcheck_heap", "amcheck_btree"} <= skipped_beta
    assert only(result, "freshness").status is CheckStatus.SKIPPED
    # And the run is marked incomplete but not failed (nothing bad was found)
    assert result.complete is False
    assert result.verdict is SuiteVerdict.PASSED


def test_without_permission_to_install_amcheck_level_3_is_skipped_with_a_reason(
    pg_server: PostgresServer, two_dbs: tuple[str, str]
) -> None:
    # Given a database without amcheck, and a run not allowed to install it
    policy = DrillPolicy(include_databases=[two_dbs[1]])
    # When the suite runs
    result = run_check_suite(checker_target(pg_server, two_dbs[1]), policy, install_amcheck=False)
    # Then both amcheck checks are skipped, saying how to enable them, and nothing was installed
    for name in ("amcheck_heap", "amcheck_btree"):
        check = only(result, name)
        assert check.status is CheckStatus.SKIPPED and "--install-amcheck" in check.message
    connection = pg_server.admin_connect(two_dbs[1])
    assert connection.run("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'") == [[0]]
    connection.close()
    # And once installed by the drill (install_amcheck=True), level 3 runs
    installed = run_check_suite(checker_target(pg_server, two_dbs[1]), policy)
    assert only(installed, "amcheck_btree").status is CheckStatus.PASS
    assert only(installed, "amcheck_btree").evidence["amcheck_installed_by_restoredrill"] is True


def test_the_server_version_and_recovery_state_are_reported(pg_server: PostgresServer) -> None:
    # Given the session server / When level 0 runs
    result = run_check_suite(checker_target(pg_server, "postgres"), DrillPolicy(level=0))
    # Then the version is the server's and it is out of recovery; no level 1 check ran
    assert result.verdict is SuiteVerdict.PASSED
    assert result.server_version and result.server_version[0].isdigit()
    assert only(result, "not_in_recovery").evidence["pg_is_in_recovery"] is False
    assert {c.level for c in result.checks} == {0}
    assert result.baseline is not None and "postgres" in result.baseline.database_names
