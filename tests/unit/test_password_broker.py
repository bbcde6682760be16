"""The check runner: the password goes from the vault to the checker and nowhere else."""

import json
from pathlib import Path
from typing import Any

import pytest
from restoredrill.domain.password_broker import parse_check_run, run_check
from restoredrill.ports.gateways import CheckerFailed
from restoredrill.ports.inbound_events import InvalidEvent
from restoredrill.ports.messages import (
    CheckResult,
    CheckRunRequest,
    CheckStatus,
    CheckSuiteResult,
    SuiteVerdict,
)

RUN_ID = "0123456789abcdef0123"
PARAMETER = f"/restoredrill/test/runs/{RUN_ID}"


def request(**changes: Any) -> CheckRunRequest:
    event: dict[str, Any] = {
        "run_id": RUN_ID,
        "password_parameter": PARAMETER,
        "target": {
            "host": "10.0.0.9",
            "port": 5432,
            "user": "clinic_admin",
            "database": "postgres",
        },
        "policy": {"level": 3},
        "baseline": None,
        "snapshot_time": "2026-11-27T03:10:00+00:00",
        "vcpus": 2,
        "deadline": "2026-11-27T07:10:00+00:00",
    }
    event.update(changes)
    return parse_check_run(event)


class Vault:
    def __init__(self, stored: dict[str, str]) -> None:
        self.stored = stored

    def get(self, name: str) -> str | None:
        return self.stored.get(name)


def passed_result() -> dict[str, Any]:
    return CheckSuiteResult(
        verdict=SuiteVerdict.PASSED,
        checks=[CheckResult(name="connect", level=0, status=CheckStatus.PASS)],
        started_at="2026-11-27T03:12:00+00:00",
        finished_at="2026-11-27T03:12:14+00:00",
        duration_ms=14_000,
    ).to_payload()


class Checker:
    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.answer = answer

    def check(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.payloads.append(payload)
        return (
            self.answer
            if self.answer is not None
            else {"run_id": payload["run_id"], "result": passed_result()}
        )


def test_the_checker_gets_the_password_from_the_vault_and_the_answer_carries_none() -> None:
    # Given the run's password in the vault
    checker = Checker()
    # When the runner runs the checks
    answer = run_check(request(), Vault({PARAMETER: "s3cret-password-value"}), checker)
    # Then the checker got the connection with the password, the policy and the rest
    (payload,) = checker.payloads
    target = payload["target"]
    assert {key: target[key] for key in ("host", "port", "user", "database", "password")} == {
        "host": "10.0.0.9",
        "port": 5432,
        "user": "clinic_admin",
        "database": "postgres",
        "password": "s3cret-password-value",
    }
    assert target["ssl"] == "require"
    assert payload["policy"]["level"] == 3 and payload["vcpus"] == 2
    assert "password_parameter" not in payload
    # And the answer (what the destination record carries back) is the checker's result, with
    # no password
    assert answer == {"run_id": RUN_ID, "result": passed_result(), "baseline_key": None}
    assert "s3cret-password-value" not in json.dumps(answer)


def test_a_request_that_carries_a_password_is_refused() -> None:
    # A request with a password in it would put the password into the destination record
    with pytest.raises(InvalidEvent, match=r"target\.password"):
        request(target={"host": "h", "port": 5432, "user": "u", "password": "leak"})


def test_without_the_password_the_checker_is_not_invoked() -> None:
    checker = Checker()
    with pytest.raises(CheckerFailed, match=r"password is gone"):
        run_check(request(), Vault({}), checker)
    assert checker.payloads == []


def test_an_answer_for_another_run_is_a_failure() -> None:
    checker = Checker(answer={"run_id": "ffffffffffffffffffff", "result": passed_result()})
    with pytest.raises(CheckerFailed, match="another run"):
        run_check(request(), Vault({PARAMETER: "pw-123456789"}), checker)


def test_a_malformed_answer_is_a_failure_that_names_the_fields_not_their_values() -> None:
    # Given a checker whose result lacks the suite's verdict and checks
    checker = Checker(answer={"run_id": RUN_ID, "result": {"verdict": "MAYBE-secret-ish"}})
    # When the runner relays it
    # Then it fails, naming what is wrong without quoting it
    with pytest.raises(CheckerFailed, match=r"malformed: result\.verdict") as failure:
        run_check(request(), Vault({PARAMETER: "pw-123456789"}), checker)
    assert "MAYBE-secret-ish" not in str(failure.value)


def test_the_sample_event_is_a_valid_request_without_a_password() -> None:
    # Given the sample in events/ (for `sam local invoke CheckRunnerFunction -e ...`)
    path = Path(__file__).resolve().parents[2] / "events" / "check_runner" / "run-checks.json"
    event = json.loads(path.read_text())
    # Then it parses, and names the password parameter instead of carrying a password
    parsed = parse_check_run(event)
    assert parsed.password_parameter.endswith(parsed.run_id)
    assert "password" not in event["target"]
