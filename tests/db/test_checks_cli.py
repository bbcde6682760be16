"""`restoredrill check` as a user runs it, against a real server: exit statuses, JSON, the human
table, a saved result used as the next baseline, and no password in any output."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.postgres import PostgresServer
from tests.db.checker import ensure_checker, run_sql

CHECKER = "rd_cli_checker"
PASSWORD = "Cli-Pass-51c!x"


@pytest.fixture
def app_db(pg_server: PostgresServer) -> Iterator[str]:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    ensure_checker(pg_server, CHECKER, PASSWORD)
    run_sql(pg_server, "postgres", f"CREATE DATABASE {name}")
    run_sql(
        pg_server,
        name,
        "CREATE TABLE items (id int PRIMARY KEY, at timestamptz DEFAULT now())",
        "INSERT INTO items (id) SELECT generate_series(1, 1000)",
    )
    yield name
    run_sql(pg_server, "postgres", f"DROP DATABASE {name} WITH (FORCE)")


def restoredrill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restoredrill_cli.check_cmd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def dsn(server: PostgresServer, database: str, password: str = PASSWORD) -> str:
    return server.dsn(CHECKER, password, database)


def test_check_passes_then_fails_against_its_own_saved_baseline(
    pg_server: PostgresServer, app_db: str, tmp_path: Path
) -> None:
    # Given a policy file limited to the app database
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"defaults:\n  include_databases: [{app_db}]\n")
    # When `check --json` runs on the clean database
    clean = restoredrill(
        "check",
        "--dsn",
        dsn(pg_server, app_db),
        "--level",
        "3",
        "--install-amcheck",
        "--policy",
        str(policy),
        "--json",
    )
    # Then it exits 0 and prints a passing CheckSuiteResult
    assert clean.returncode == 0, clean.stdout + clean.stderr
    document = json.loads(clean.stdout)
    assert document["verdict"] == "PASSED"
    saved = tmp_path / "last.json"
    saved.write_text(clean.stdout)
    # When half the rows go and `check` runs against the saved result as baseline
    connection = pg_server.admin_connect(app_db)
    connection.run("DELETE FROM items WHERE id > 500")
    connection.close()
    failed = restoredrill(
        "check", "--dsn", dsn(pg_server, app_db), "--policy", str(policy), "--baseline", str(saved)
    )
    # Then it exits 1 and the human table names the failing check and the table
    assert failed.returncode == 1, failed.stdout + failed.stderr
    row = next(line for line in failed.stdout.splitlines() if "row_counts" in line)
    assert "FAIL" in row and '"public"."items": 1000 -> 500' in row
    assert "verdict: FAILED" in failed.stdout
    # And no password is printed anywhere
    assert PASSWORD not in clean.stdout + failed.stdout + clean.stderr + failed.stderr


def test_check_exits_2_when_it_cannot_connect_and_hides_the_password(
    pg_server: PostgresServer, app_db: str
) -> None:
    # Given a wrong password in the DSN
    wrong = "Not-The-Pass-123"
    # When `check` runs / Then it exits 2, says why, and never prints the password
    result = restoredrill("check", "--dsn", dsn(pg_server, app_db, wrong), "--json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["verdict"] == "ERROR"
    assert "password authentication failed" in document["checks"][0]["message"]
    assert wrong not in result.stdout + result.stderr


def test_policy_validate_from_the_command_line(tmp_path: Path) -> None:
    # Given the shipped example and a broken file
    example = Path(__file__).resolve().parents[2] / "policies" / "example.yaml"
    broken = tmp_path / "broken.yaml"
    broken.write_text("defaults:\n  freshness:\n    - {table: t, column: c, max_age: soon}\n")
    # Then validate exits 0 for the example and 1 for the broken file, naming line and field
    assert restoredrill("policy", "validate", str(example)).returncode == 0
    result = restoredrill("policy", "validate", str(broken))
    assert result.returncode == 1
    assert f"{broken}:3: defaults.freshness[0].max_age: invalid duration" in result.stderr
