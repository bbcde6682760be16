"""Check suite results as the checker writes them (:class:`CheckSuiteResult`), for tests that
need one but not a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from restoredrill.messages import CheckResult, CheckStatus, CheckSuiteResult, SuiteVerdict

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
