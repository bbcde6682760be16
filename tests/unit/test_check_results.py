"""Check results: verdicts, JSON, and no password anywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pg8000.exceptions import DatabaseError, InterfaceError
from pydantic import SecretStr
from restoredrill.checksuite import (
    CheckResult,
    CheckStatus,
    CheckSuiteResult,
    ConnectionTarget,
    SuiteVerdict,
)
from restoredrill.checksuite.connection import classify_error, redact
from restoredrill.checksuite.results import verdict_of, worst_status

PASSWORD = "Zr7-very-secret-Q"


def result(*statuses: CheckStatus) -> list[CheckResult]:
    return [CheckResult(name=f"c{i}", level=0, status=s) for i, s in enumerate(statuses)]


@pytest.mark.parametrize(
    ("statuses", "verdict"),
    [
        ((CheckStatus.PASS, CheckStatus.PASS), SuiteVerdict.PASSED),
        ((CheckStatus.PASS, CheckStatus.WARN, CheckStatus.SKIPPED), SuiteVerdict.PASSED),
        ((CheckStatus.PASS, CheckStatus.FAIL), SuiteVerdict.FAILED),
        ((CheckStatus.ERROR, CheckStatus.FAIL), SuiteVerdict.FAILED),
        ((CheckStatus.PASS, CheckStatus.ERROR), SuiteVerdict.ERROR),
        ((), SuiteVerdict.ERROR),
    ],
)
def test_verdict_failed_beats_error_beats_passed(
    statuses: tuple[CheckStatus, ...], verdict: SuiteVerdict
) -> None:
    # Given check statuses / When the verdict is computed / Then a failure wins, then an error
    assert verdict_of(result(*statuses)) is verdict


def test_worst_status_orders_fail_error_warn_skipped_pass() -> None:
    # Given statuses / Then the most severe one wins
    assert worst_status([CheckStatus.PASS, CheckStatus.SKIPPED]) is CheckStatus.SKIPPED
    assert worst_status([CheckStatus.SKIPPED, CheckStatus.WARN]) is CheckStatus.WARN
    assert worst_status([CheckStatus.WARN, CheckStatus.ERROR]) is CheckStatus.ERROR
    assert worst_status([CheckStatus.ERROR, CheckStatus.FAIL]) is CheckStatus.FAIL
    assert worst_status([]) is CheckStatus.PASS


def test_the_target_never_dumps_its_password() -> None:
    # Given a connection target / When dumped as JSON or printed / Then the password is hidden
    target = ConnectionTarget(host="db", user="u", password=SecretStr(PASSWORD))
    assert PASSWORD not in target.model_dump_json()
    assert PASSWORD not in repr(target) and PASSWORD not in str(target)
    assert target.password.get_secret_value() == PASSWORD


def test_a_suite_result_round_trips_through_json() -> None:
    # Given a suite result
    now = datetime(2024, 1, 1, tzinfo=UTC)
    suite = CheckSuiteResult(
        verdict=SuiteVerdict.FAILED,
        checks=[
            CheckResult(
                name="row_counts",
                level=2,
                status=CheckStatus.FAIL,
                database="app",
                evidence={"problems": [{"rows": 1}]},
            )
        ],
        started_at=now,
        finished_at=now,
        duration_ms=1.5,
        server_version="15.4",
        baseline=None,
    )
    # When dumped and read back / Then nothing is lost, and the display name says where
    again = CheckSuiteResult.model_validate(json.loads(json.dumps(suite.model_dump(mode="json"))))
    assert again == suite
    assert again.checks[0].display_name == "row_counts[app]"
    assert [c.name for c in again.failed()] == ["row_counts"]


def test_redaction_removes_the_password_and_dsn_passwords() -> None:
    # Given text that contains a password and a DSN
    text = f"auth failed for {PASSWORD} via postgresql://bob:{PASSWORD}x@h:5432/db"
    # When redacted / Then neither the password nor the DSN's password survive
    clean = redact(text, PASSWORD)
    assert PASSWORD not in clean
    assert "postgresql://bob:***@h:5432/db" in clean


def test_server_errors_are_classified_and_redacted() -> None:
    # Given errors as pg8000 raises them
    corrupt = DatabaseError({"S": "ERROR", "C": "XX001", "M": "invalid page in block 0"})
    auth = DatabaseError({"S": "FATAL", "C": "28P01", "M": f"password {PASSWORD} rejected"})
    network = InterfaceError("network error")
    # When classified
    corrupt_e, auth_e, network_e = (classify_error(e, PASSWORD) for e in (corrupt, auth, network))
    # Then corruption, lost connections and the SQLSTATE are recognised, secrets removed
    assert corrupt_e.corruption and not corrupt_e.connection_lost
    assert auth_e.sqlstate == "28P01" and PASSWORD not in str(auth_e) and auth_e.connection_lost
    assert network_e.connection_lost and network_e.sqlstate is None


def test_large_results_travel_compressed_and_come_back_whole() -> None:
    # Given a result with a lot of evidence (a big schema) and a small one
    now = datetime(2024, 1, 1, tzinfo=UTC)
    checks = [
        CheckResult(
            name="catalog",
            level=1,
            status=CheckStatus.PASS,
            evidence={"tables": [f"table_{i}" * 5 for i in range(20000)]},
        ),
        CheckResult(name="row_counts", level=2, status=CheckStatus.FAIL, database="app"),
    ]
    big = CheckSuiteResult(
        verdict=SuiteVerdict.FAILED, checks=checks, started_at=now, finished_at=now, duration_ms=1
    )
    small = big.model_copy(update={"checks": checks[1:]})
    # When turned into payloads for a 256 KB channel
    big_payload, small_payload = big.to_payload(), small.to_payload()
    # Then the big one is compressed under the limit, still naming the verdict and failures
    assert big_payload["encoding"] == "gzip+base64"
    assert len(json.dumps(big_payload)) < 200_000
    assert big_payload["failed_checks"] == ["row_counts[app]"]
    # And the small one stays plain; both read back to the same result
    assert small_payload["verdict"] == "FAILED" and "encoding" not in small_payload
    assert CheckSuiteResult.from_payload(big_payload) == big
    assert CheckSuiteResult.from_payload(small_payload) == small
