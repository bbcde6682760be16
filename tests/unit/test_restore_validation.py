"""Validating an AWS Backup restore test (domain.restore_validation) with in-memory adapters: the
checks run against the instance restore testing restored, and AWS Backup gets one status, after
them, with a message that links the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from restoredrill.domain import checker_side
from restoredrill.domain.restore_validation import (
    VALIDATION_MESSAGE_LIMIT,
    ValidationContext,
    validate_restore,
    validation_message,
    validation_run_id,
    validation_status_of,
)
from restoredrill.ports.gateways import CheckerFailed
from restoredrill.ports.messages import (
    CheckerRequest,
    CheckResult,
    CheckStatus,
    CheckSuiteResult,
    ConnectionTarget,
    SuiteVerdict,
)
from restoredrill.ports.policy import PolicyDocument, PolicyError, parse_policy_text
from restoredrill.ports.restore_testing import (
    RestoredInstance,
    RestoreJob,
    RestoreTestCompleted,
    ValidationStatus,
)

from tests.unit.fakes import FakeReports

NOW = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)
JOB_ID = "7E1D3C5A-2B4F-4C6D-8E9F-0A1B2C3D4E5F"
PLAN_ARN = "arn:aws:backup:us-east-1:123456789012:restore-testing-plan:clinic_daily-5c2e"
INSTANCE = "awsbackup-restore-test-7e1d3c5a"
INSTANCE_ARN = f"arn:aws:rds:us-east-1:123456789012:db:{INSTANCE}"
SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:db:clinic-db"
PREFIX = "/restoredrill/stack/restore-validation"
CREDENTIAL = {"username": "restoredrill_check", "password": "checking-secret-4b1e"}
POLICY = """
version: 1
defaults:
  level: 1
databases:
  clinic-db:
    level: 3
    time_budget: 2m
"""


class FakeJobs:
    def __init__(self, job: RestoreJob | None) -> None:
        self.job = job
        self.results: list[tuple[str, ValidationStatus, str]] = []

    def describe(self, restore_job_id: str) -> RestoreJob | None:
        return self.job if self.job and self.job.restore_job_id == restore_job_id else None

    def put_validation_result(
        self, restore_job_id: str, status: ValidationStatus, message: str
    ) -> None:
        self.results.append((restore_job_id, status, message))


class FakeInstances:
    def __init__(self, instance: RestoredInstance | None) -> None:
        self.instance = instance

    def describe(self, instance_id: str) -> RestoredInstance | None:
        return self.instance if self.instance and self.instance.instance_id == instance_id else None


class FakeCredentials:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        return self.values.get(name)


class FakeSyncChecker:
    def __init__(self, verdict: SuiteVerdict = SuiteVerdict.PASSED, *, fails: bool = False) -> None:
        self.verdict = verdict
        self.fails = fails
        self.requests: list[dict[str, Any]] = []

    def check(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(payload)
        if self.fails:
            raise CheckerFailed("Task timed out after 900.00 seconds")
        return {"run_id": payload["run_id"], "result": suite(self.verdict).model_dump(mode="json")}


def suite(verdict: SuiteVerdict, failed: int = 1) -> CheckSuiteResult:
    checks = [CheckResult(name="connect", level=0, status=CheckStatus.PASS)]
    if verdict is SuiteVerdict.FAILED:
        checks += [
            CheckResult(
                name="row_counts",
                level=2,
                status=CheckStatus.FAIL,
                database="clinic",
                object=f"table_{n}",
            )
            for n in range(failed)
        ]
    if verdict is SuiteVerdict.ERROR:
        checks = [CheckResult(name="connect", level=0, status=CheckStatus.ERROR, message="refused")]
    summary: dict[str, int] = {}
    for check in checks:
        summary[check.status.value] = summary.get(check.status.value, 0) + 1
    return CheckSuiteResult(
        verdict=verdict,
        checks=checks,
        started_at=NOW,
        finished_at=NOW,
        duration_ms=5,
        summary=summary,
    )


def job(**changes: Any) -> RestoreJob:
    values: dict[str, Any] = {
        "restore_job_id": JOB_ID,
        "status": "COMPLETED",
        "created_resource_arn": INSTANCE_ARN,
        "source_resource_arn": SOURCE_ARN,
        "recovery_point_arn": "arn:aws:backup:us-east-1:123456789012:recovery-point:rp-1",
        "recovery_point_created_at": datetime(2026, 11, 28, 3, 10, tzinfo=UTC),
        "restore_testing_plan_arn": PLAN_ARN,
        "validation_status": None,
        **changes,
    }
    return RestoreJob(**values)


def instance(**changes: Any) -> RestoredInstance:
    values: dict[str, Any] = {
        "instance_id": INSTANCE,
        "engine": "postgres",
        "status": "available",
        "address": "awsbackup-restore-test-7e1d3c5a.abc.us-east-1.rds.amazonaws.com",
        "port": 5432,
        "tags": {"awsbackup-restore-test": "", "team": "clinic"},
        **changes,
    }
    return RestoredInstance(**values)


class Validation:
    def __init__(
        self,
        *,
        the_job: RestoreJob | None = None,
        the_instance: RestoredInstance | None = None,
        checker: FakeSyncChecker | None = None,
        credentials: dict[str, str] | None = None,
        policies: PolicyDocument | PolicyError | None = None,
    ) -> None:
        self.jobs = FakeJobs(the_job or job())
        self.instances = FakeInstances(the_instance or instance())
        self.checker = checker or FakeSyncChecker()
        self.reports = FakeReports()
        stored = {f"{PREFIX}/clinic-db": json.dumps(CREDENTIAL)}
        self.ctx = ValidationContext(
            jobs=self.jobs,
            instances=self.instances,
            credentials=FakeCredentials(stored if credentials is None else credentials),
            checker=self.checker,
            reports=self.reports,
            policies=policies or parse_policy_text(POLICY),
            credential_prefix=PREFIX,
            now=lambda: NOW,
        )

    def run(self) -> Any:
        test = RestoreTestCompleted(
            restore_job_id=JOB_ID, restore_testing_plan_arn=PLAN_ARN, instance_id=INSTANCE
        )
        return validate_restore(test, self.ctx)


REPORT_KEY = f"restore-validations/us-east-1/clinic-db/{JOB_ID}.json"


def test_a_good_restore_is_checked_reported_and_marked_successful_once() -> None:
    # Given a completed restore test of clinic-db and a checker that finds nothing wrong
    validation = Validation()
    # When it is validated
    outcome = validation.run()
    # Then the checker checked the restored instance with the checking credential and
    # clinic-db's policy, as of the recovery point's time
    [request] = validation.checker.requests
    assert request["run_id"] == validation_run_id(JOB_ID)
    assert request["target"]["host"] == instance().address
    assert request["target"]["user"] == "restoredrill_check"
    assert request["target"]["password"] == CREDENTIAL["password"]
    assert request["policy"]["level"] == 3
    assert request["snapshot_time"].startswith("2026-11-28T03:10")
    # And the checks may only read: nothing is installed in AWS Backup's instance
    assert request["install_amcheck"] is False
    # And the report is written, and AWS Backup got exactly one SUCCESSFUL naming it
    document = validation.reports.documents[REPORT_KEY]
    assert document["validation_status"] == "SUCCESSFUL"
    assert document["restore_job_id"] == JOB_ID
    assert document["checks"]["verdict"] == "PASSED"
    assert "baseline" not in document["checks"]
    [(job_id, status, message)] = validation.jobs.results
    assert (job_id, status) == (JOB_ID, ValidationStatus.SUCCESSFUL)
    console = (
        "https://us-east-1.console.aws.amazon.com/s3/object/reports-bucket?region=us-east-1"
        "&bucketType=general&prefix=restore-validations%2Fus-east-1%2Fclinic-db%2F"
        f"{JOB_ID}.json"
    )
    assert message.endswith(f"Report: s3://reports-bucket/{REPORT_KEY} ({console})")
    assert outcome.status == "validated" and outcome.validation_status == "SUCCESSFUL"
    # And the password is in neither the report nor the message
    assert CREDENTIAL["password"] not in json.dumps(document) + message


@pytest.mark.parametrize("verdict", [SuiteVerdict.FAILED, SuiteVerdict.ERROR])
def test_a_restore_whose_checks_do_not_pass_is_marked_failed(verdict: SuiteVerdict) -> None:
    # Given a checker that finds damage (FAILED) or cannot check at all (ERROR)
    validation = Validation(checker=FakeSyncChecker(verdict))
    # When the restore test is validated
    validation.run()
    # Then AWS Backup gets one FAILED, whose message names what did not pass
    [(_, status, message)] = validation.jobs.results
    assert status is ValidationStatus.FAILED
    expected = "row_counts[clinic/table_0]" if verdict is SuiteVerdict.FAILED else "connect"
    assert f"not passed: {expected}" in message
    assert validation.reports.documents[REPORT_KEY]["validation_status"] == "FAILED"


def test_a_job_that_already_has_a_status_is_left_alone() -> None:
    # Given a restore job whose validation status was set (it cannot change)
    validation = Validation(the_job=job(validation_status="FAILED"))
    # When its event arrives again
    outcome = validation.run()
    # Then nothing is checked, written or sent
    assert outcome.status == "already_validated"
    assert validation.checker.requests == []
    assert validation.reports.objects == {}
    assert validation.jobs.results == []


@pytest.mark.parametrize(
    ("the_job", "the_instance", "reason"),
    [
        (job(restore_testing_plan_arn=None), None, "not started by a restore testing plan"),
        (job(status="RUNNING"), None, "is RUNNING, not COMPLETED"),
        (job(created_resource_arn=SOURCE_ARN), None, "another resource"),
        (job(source_resource_arn=None), None, "no source RDS DB instance"),
        (None, instance(tags={"team": "clinic"}), "does not carry the awsbackup-restore-test"),
        (None, instance(engine="mysql"), "PostgreSQL only"),
        (None, instance(address=None, status="modifying"), "no endpoint (it is modifying)"),
    ],
)
def test_what_is_not_a_completed_restore_test_of_postgresql_is_not_validated(
    the_job: RestoreJob | None, the_instance: RestoredInstance | None, reason: str
) -> None:
    # Given a job or an instance that is not restoredrill's to check
    validation = Validation(the_job=the_job, the_instance=the_instance)
    # When the event is handled
    outcome = validation.run()
    # Then it says why, and nothing is checked, written or sent to AWS Backup
    assert outcome.status == "not_validated"
    assert reason in outcome.reason
    assert validation.checker.requests == []
    assert validation.reports.objects == {}
    assert validation.jobs.results == []


def test_a_job_aws_backup_does_not_know_is_not_validated() -> None:
    validation = Validation()
    validation.jobs.job = None
    outcome = validation.run()
    assert outcome.status == "not_validated"
    assert f"no restore job {JOB_ID}" in outcome.reason
    assert validation.jobs.results == []


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ({}, f"no checking credential in SSM at {PREFIX}/clinic-db"),
        (
            {f"{PREFIX}/clinic-db": "checking-secret-4b1e"},
            "not a JSON object with username and password",
        ),
        (
            {f"{PREFIX}/clinic-db": json.dumps({"password": "checking-secret-4b1e"})},
            "not a JSON object with username and password",
        ),
    ],
)
def test_without_a_usable_checking_credential_nothing_is_sent_and_no_secret_is_quoted(
    stored: dict[str, str], reason: str
) -> None:
    # Given no credential for clinic-db, or one that is not {"username", "password"}
    validation = Validation(credentials=stored)
    # When the restore test is handled
    outcome = validation.run()
    # Then it is not validated (the operator's setup is missing), says where it looked, and
    # never quotes what it found there
    assert outcome.status == "not_validated"
    assert outcome.reason == reason or reason in outcome.reason
    assert "checking-secret-4b1e" not in outcome.model_dump_json()
    assert validation.jobs.results == []


def test_an_invalid_drill_policy_validates_nothing() -> None:
    validation = Validation(policies=PolicyError([]))
    outcome = validation.run()
    assert outcome.status == "not_validated"
    assert "drill policy" in outcome.reason
    assert validation.checker.requests == []


def test_when_the_checker_fails_no_status_is_set_so_a_retry_can_still_set_one() -> None:
    # Given a checker that times out
    validation = Validation(checker=FakeSyncChecker(fails=True))
    # When the restore test is validated
    # Then the failure is raised (the invocation is retried) and AWS Backup got no status,
    # which could never be changed afterwards
    with pytest.raises(CheckerFailed):
        validation.run()
    assert validation.jobs.results == []
    assert validation.reports.objects == {}


def test_the_message_keeps_the_report_link_however_many_checks_failed() -> None:
    # Given a result with hundreds of failed checks and a long report location
    result = suite(SuiteVerdict.FAILED, failed=300)
    location = "s3://reports-bucket/" + "x" * 200 + ".json"
    # When the validation message is made
    message = validation_message(ValidationStatus.FAILED, result, location)
    # Then it fits the limit, names the first failures and how many more, and ends with the link
    assert len(message) <= VALIDATION_MESSAGE_LIMIT
    assert message.startswith("restoredrill FAILED: checks FAILED (")
    assert "row_counts[clinic/table_0]" in message and "and 295 more" in message
    assert message.endswith(f"Report: {location}")


@pytest.mark.parametrize("install", [True, False])
def test_the_checker_installs_amcheck_only_when_the_request_allows_it(
    monkeypatch: pytest.MonkeyPatch, install: bool
) -> None:
    # Given a checker request for a drill's own instance (install) or a restore test's (not)
    seen: dict[str, Any] = {}

    def suite_spy(*args: Any, **kwargs: Any) -> CheckSuiteResult:
        seen.update(kwargs)
        return suite(SuiteVerdict.PASSED)

    monkeypatch.setattr(checker_side, "run_check_suite", suite_spy)
    request = CheckerRequest(
        run_id=validation_run_id(JOB_ID),
        target=ConnectionTarget(host="db", user="u", password=SecretStr("p")),
        install_amcheck=install,
    )
    # When the checker runs it
    checker_side.run_checker(request)
    # Then the suite is told exactly that
    assert seen["install_amcheck"] is install
    # And a request that says nothing (every drill's) still installs it
    assert CheckerRequest.model_validate(
        {"run_id": "0" * 20, "target": {"host": "db", "user": "u", "password": "p"}}
    ).install_amcheck


def test_the_status_follows_the_verdict_a_drill_of_the_same_checks_would_get() -> None:
    # Given suites with skipped checks (amcheck not installed, or the time budget spent)
    passed = suite(SuiteVerdict.PASSED).model_copy(update={"complete": False})
    failed = suite(SuiteVerdict.FAILED).model_copy(update={"complete": False})
    # Then skipped checks alone do not fail a restore (nor a drill), damage found does, and a
    # suite that could not check is FAILED too (AWS Backup has no status for "not checked")
    assert validation_status_of(passed) is ValidationStatus.SUCCESSFUL
    assert validation_status_of(failed) is ValidationStatus.FAILED
    assert validation_status_of(suite(SuiteVerdict.ERROR)) is ValidationStatus.FAILED
