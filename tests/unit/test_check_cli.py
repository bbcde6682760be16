"""`restoredrill check` and `restoredrill policy validate` without a database: options, DSNs,
baselines, exit statuses, output."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from restoredrill.checksuite import CheckResult, CheckStatus, CheckSuiteResult, SuiteVerdict
from restoredrill.ports.baseline import Baseline

from restoredrill_cli import check_cmd

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="restoredrill")
    check_cmd.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def suite(verdict: SuiteVerdict, *statuses: CheckStatus) -> CheckSuiteResult:
    return CheckSuiteResult(
        verdict=verdict,
        checks=[
            CheckResult(name=f"check{i}", level=2, status=s, database="app", message=f"m{i}")
            for i, s in enumerate(statuses)
        ],
        started_at=NOW,
        finished_at=NOW,
        duration_ms=12.0,
        server_version="15.4",
        baseline=Baseline(taken_at=NOW),
        summary={"pass": 1},
    )


def test_a_dsn_becomes_a_target_with_decoded_parts() -> None:
    # Given a DSN with percent-encoded user, password and database
    target = check_cmd.parse_dsn(
        "postgresql://us%40er:p%2Fw%3Ax@db.example:6543/my%20db?sslmode=verify-full"
    )
    # Then every part is decoded and the TLS mode kept
    assert (target.host, target.port, target.user, target.database) == (
        "db.example",
        6543,
        "us@er",
        "my db",
    )
    assert target.password.get_secret_value() == "p/w:x"
    assert target.ssl == "verify-full"


def test_dsn_defaults_and_pgpassword(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a DSN without password, port, database or sslmode, and PGPASSWORD set
    monkeypatch.setenv("PGPASSWORD", "from-env")
    target = check_cmd.parse_dsn("postgres://u@h")
    # Then the usual defaults apply: TLS required, port 5432, database postgres
    assert (target.port, target.database, target.ssl) == (5432, "postgres", "require")
    assert target.password.get_secret_value() == "from-env"


@pytest.mark.parametrize(
    "dsn",
    [
        "mysql://u:p@h/db",
        "postgresql:///db",
        "postgresql://u:p@h/db?sslmode=bogus",
        "postgresql://u:p@h:notaport/db",
    ],
)
def test_bad_dsns_are_usage_errors(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a DSN that cannot be used / Then it is refused with a message
    monkeypatch.delenv("PGUSER", raising=False)
    with pytest.raises(check_cmd.UsageError):
        check_cmd.parse_dsn(dsn)


@pytest.mark.parametrize(
    ("verdict", "statuses", "code"),
    [
        (SuiteVerdict.PASSED, (CheckStatus.PASS, CheckStatus.WARN), 0),
        (SuiteVerdict.FAILED, (CheckStatus.PASS, CheckStatus.FAIL), 1),
        (SuiteVerdict.ERROR, (CheckStatus.ERROR,), 2),
    ],
)
def test_exit_status_follows_the_verdict(
    monkeypatch: pytest.MonkeyPatch,
    verdict: SuiteVerdict,
    statuses: tuple[CheckStatus, ...],
    code: int,
) -> None:
    # Given a suite that returns a verdict
    seen: dict[str, Any] = {}

    def fake_suite(target: Any, policy: Any, **kwargs: Any) -> CheckSuiteResult:
        seen.update(target=target, policy=policy, **kwargs)
        return suite(verdict, *statuses)

    monkeypatch.setattr("restoredrill.checksuite.run_check_suite", fake_suite)
    out = io.StringIO()
    # When `check` runs with a level, jobs and a time budget
    args = parse(
        [
            "check",
            "--dsn",
            "postgresql://u:p@h/db",
            "--level",
            "2",
            "--jobs",
            "3",
            "--time-budget",
            "90s",
        ]
    )
    status = check_cmd.run_check(args, out=out, err=io.StringIO())
    # Then the exit status maps the verdict, and the options reached the suite
    assert status == code
    assert seen["policy"].level == 2 and seen["policy"].parallelism == 3
    assert seen["policy"].time_budget == 90
    assert seen["install_amcheck"] is False  # never on someone's server unless asked
    assert verdict.value in out.getvalue()


def test_json_output_is_the_suite_result(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a failing suite
    monkeypatch.setattr(
        "restoredrill.checksuite.run_check_suite",
        lambda *a, **k: suite(SuiteVerdict.FAILED, CheckStatus.FAIL),
    )
    out = io.StringIO()
    # When run with --json
    status = check_cmd.run_check(
        parse(["check", "--dsn", "postgresql://u:p@h/db", "--json"]), out=out, err=io.StringIO()
    )
    # Then stdout is exactly a CheckSuiteResult
    document = json.loads(out.getvalue())
    assert status == 1
    assert CheckSuiteResult.model_validate(document).checks[0].status is CheckStatus.FAIL


def test_the_human_table_names_each_check_where_and_status() -> None:
    # Given a result with a failing check / When rendered
    text = check_cmd.render_table(suite(SuiteVerdict.FAILED, CheckStatus.PASS, CheckStatus.FAIL))
    lines = text.splitlines()
    # Then there is a header, one row per check and the verdict
    assert lines[0].split()[:4] == ["LVL", "CHECK", "WHERE", "STATUS"]
    assert any("check1" in line and "FAIL" in line and "app" in line for line in lines)
    assert "verdict: FAILED" in text


def test_baseline_from_a_saved_result_and_from_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a saved --json result and a drill report holding the result under "checks"
    saved = suite(SuiteVerdict.PASSED, CheckStatus.PASS).model_dump(mode="json")
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps(saved))
    report_file = tmp_path / "report.json"
    report_file.write_text(json.dumps({"kind": "restoredrill.drill-report", "checks": saved}))
    # When loaded / Then both give the baseline
    assert check_cmd.load_baseline_file(str(result_file)) == Baseline(taken_at=NOW)
    assert check_cmd.load_baseline_file(str(report_file)) == Baseline(taken_at=NOW)
    # And a file without a baseline is a usage error (exit 2), not a crash
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    monkeypatch.setattr(
        "restoredrill.checksuite.run_check_suite", lambda *a, **k: pytest.fail("ran")
    )
    err = io.StringIO()
    args = parse(["check", "--dsn", "postgresql://u:p@h/db", "--baseline", str(empty)])
    assert check_cmd.run_check(args, out=io.StringIO(), err=err) == 2
    assert "no baseline found" in err.getvalue()


def test_policy_validate_exit_status_and_messages(tmp_path: Path) -> None:
    # Given a valid and an invalid policy file
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\ndatabases:\n  orders: {level: 2}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ndefaults:\n  level: 9\n")
    out, err = io.StringIO(), io.StringIO()
    # When validated
    ok = check_cmd.run_policy_validate(parse(["policy", "validate", str(good)]), out=out, err=err)
    ko = check_cmd.run_policy_validate(parse(["policy", "validate", str(bad)]), out=out, err=err)
    # Then exit 0 / 1, and the error names the line and field
    assert (ok, ko) == (0, 1)
    assert "valid" in out.getvalue() and "orders" in out.getvalue()
    assert f"{bad}:3: defaults.level" in err.getvalue()


def test_a_policy_entry_is_selected_with_policy_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a policy file with an entry for one database
    path = tmp_path / "p.yaml"
    path.write_text("defaults: {level: 3}\ndatabases:\n  orders: {level: 1}\n")
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        "restoredrill.checksuite.run_check_suite",
        lambda target, policy, **k: (
            seen.setdefault("policy", policy) and suite(SuiteVerdict.PASSED)
        ),
    )
    # When run with --policy-db / Then that entry's policy is used
    args = parse(
        ["check", "--dsn", "postgresql://u:p@h/db", "--policy", str(path), "--policy-db", "orders"]
    )
    check_cmd.run_check(args, out=io.StringIO(), err=io.StringIO())
    assert seen["policy"].level == 1
    # And an unknown entry is a usage error
    args = parse(
        ["check", "--dsn", "postgresql://u:p@h/db", "--policy", str(path), "--policy-db", "nope"]
    )
    assert check_cmd.run_check(args, out=io.StringIO(), err=io.StringIO()) == 2
