"""Validating an AWS Backup restore test: run the drill's checks against the DB instance a restore
testing plan restored, write a validation report, and tell AWS Backup (PutRestoreValidationResult)
once, after the checks: SUCCESSFUL or FAILED.

The event is a hint; DescribeRestoreJob and DescribeDBInstances are the truth. A job that is not a
completed restore test of this instance, that already has a final validation status, or whose
instance lacks the ``awsbackup-restore-test`` tag is left alone. restoredrill neither modifies nor
deletes the restored instance: AWS Backup owns it and deletes it after the validation window. It
logs in with the checking credential the operator keeps in SSM for the source database (a role of
the source, which the restored copy has too) and reaches the instance through the in-VPC checker.

A status cannot change once set, so nothing is set before the checks are done: when the checker
fails to answer, the invocation fails (and is retried) without a status.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, ValidationError

from restoredrill.domain.report.model import s3_console_url
from restoredrill.ports.gateways import CheckerFailed, ReportStore, SyncChecker
from restoredrill.ports.messages import (
    CheckerAnswer,
    CheckerRequest,
    CheckSuiteResult,
    ConnectionTarget,
    SuiteVerdict,
    not_passed,
)
from restoredrill.ports.policy import DrillPolicy, PolicyDocument, PolicyError
from restoredrill.ports.restore_testing import (
    FINAL_VALIDATION_STATUSES,
    RESTORE_TEST_TAG,
    CheckingCredential,
    CredentialReader,
    RestoredInstance,
    RestoredInstances,
    RestoreJob,
    RestoreJobs,
    RestoreTestCompleted,
    ValidationStatus,
    instance_id_from_arn,
)

VALIDATION_REPORT_KIND = "restoredrill restore-testing validation"
VALIDATION_REPORTS_PREFIX = "restore-validations/"
# AWS Backup documents no length for ValidationStatusMessage: kept short enough for any console.
VALIDATION_MESSAGE_LIMIT = 1000
FAILED_NAMES_IN_MESSAGE = 5


@dataclass(frozen=True)
class ValidationContext:
    jobs: RestoreJobs
    instances: RestoredInstances
    credentials: CredentialReader
    checker: SyncChecker
    reports: ReportStore
    policies: PolicyDocument | PolicyError
    credential_prefix: str
    now: Callable[[], datetime]


class ValidationOutcome(BaseModel):
    """``validated``: a status was set now; ``already_validated``: the job had a final status;
    ``not_validated``: restoredrill may not or cannot check this job (``reason`` says why)."""

    status: Literal["validated", "already_validated", "not_validated"]
    restore_job_id: str
    validation_status: str | None = None
    reason: str | None = None
    report: str | None = None


class NotValidated(Exception):
    """This restore test is not restoredrill's to check; the message says why."""


def validation_run_id(restore_job_id: str) -> str:
    """The checker's run id for a restore job (the checker speaks in 20-hex run ids)."""
    return hashlib.sha256(f"restore-job:{restore_job_id}".encode()).hexdigest()[:20]


def validation_report_key(created_resource_arn: str, source_db: str, restore_job_id: str) -> str:
    """``restore-validations/<region>/<source db>/<restore job id>.json``: apart from the drill
    reports (``reports/``), whose chain it is not part of."""
    parts = created_resource_arn.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else "unknown-region"
    return f"{VALIDATION_REPORTS_PREFIX}{region}/{source_db}/{restore_job_id}.json"


def validate_restore(test: RestoreTestCompleted, ctx: ValidationContext) -> ValidationOutcome:
    try:
        job = _restore_test_job(ctx.jobs.describe(test.restore_job_id), test)
        if job.validation_status in FINAL_VALIDATION_STATUSES:
            return ValidationOutcome(
                status="already_validated",
                restore_job_id=test.restore_job_id,
                validation_status=job.validation_status,
            )
        instance = _restored_instance(ctx.instances.describe(test.instance_id), test)
        source_db = instance_id_from_arn(job.source_resource_arn)
        if source_db is None:
            raise NotValidated("the restore job names no source RDS DB instance")
        policy = _policy(ctx.policies, source_db)
        credential = _credential(ctx.credentials, f"{ctx.credential_prefix}/{source_db}")
    except NotValidated as refused:
        return ValidationOutcome(
            status="not_validated", restore_job_id=test.restore_job_id, reason=str(refused)
        )
    result = _check(ctx.checker, job, instance, credential, policy)
    status = validation_status_of(result)
    assert job.created_resource_arn is not None  # _restore_test_job made sure
    key = validation_report_key(job.created_resource_arn, source_db, job.restore_job_id)
    document = validation_report(job, source_db, status, result, ctx.now())
    location = ctx.reports.put(key, report_bytes(document), "application/json")
    link = report_link(location, job.created_resource_arn)
    ctx.jobs.put_validation_result(
        job.restore_job_id, status, validation_message(status, result, link)
    )
    return ValidationOutcome(
        status="validated",
        restore_job_id=job.restore_job_id,
        validation_status=status.value,
        report=location,
    )


def validation_status_of(result: CheckSuiteResult) -> ValidationStatus:
    """SUCCESSFUL exactly when a drill of the same checks would pass: skipped checks (the time
    budget, amcheck not installed) are counted in the message and listed in the report, as in a
    drill's; FAILED when a check found a problem or could not run."""
    if result.verdict is SuiteVerdict.PASSED:
        return ValidationStatus.SUCCESSFUL
    return ValidationStatus.FAILED


def _restore_test_job(job: RestoreJob | None, test: RestoreTestCompleted) -> RestoreJob:
    if job is None:
        raise NotValidated(f"AWS Backup has no restore job {test.restore_job_id}")
    if not job.restore_testing_plan_arn:
        raise NotValidated("the restore job was not started by a restore testing plan")
    if job.status != "COMPLETED":
        raise NotValidated(f"the restore job is {job.status}, not COMPLETED")
    if instance_id_from_arn(job.created_resource_arn) != test.instance_id:
        raise NotValidated("the restore job created another resource than the event names")
    return job


def _restored_instance(
    instance: RestoredInstance | None, test: RestoreTestCompleted
) -> RestoredInstance:
    if instance is None:
        raise NotValidated(f"the restored instance {test.instance_id} is gone")
    if RESTORE_TEST_TAG not in instance.tags:
        raise NotValidated(
            f"{test.instance_id} does not carry the {RESTORE_TEST_TAG} tag: restoredrill checks "
            "only what restore testing restored"
        )
    if instance.engine != "postgres":
        raise NotValidated(
            f"{test.instance_id} runs {instance.engine}: restoredrill checks PostgreSQL only"
        )
    if instance.address is None or instance.port is None:
        raise NotValidated(f"{test.instance_id} has no endpoint (it is {instance.status})")
    return instance


def _policy(policies: PolicyDocument | PolicyError, source_db: str) -> DrillPolicy:
    if isinstance(policies, PolicyError):
        raise NotValidated("the drill policy deployed with the stack is invalid")
    return policies.for_database(source_db)


def _credential(credentials: CredentialReader, name: str) -> CheckingCredential:
    stored = credentials.get(name)
    if stored is None:
        raise NotValidated(f"no checking credential in SSM at {name}")
    try:
        return CheckingCredential.model_validate_json(stored)
    except ValidationError:
        # Never quoted: the value is a password.
        raise NotValidated(
            f"the checking credential at {name} is not a JSON object with username and password"
        ) from None


def _check(
    checker: SyncChecker,
    job: RestoreJob,
    instance: RestoredInstance,
    credential: CheckingCredential,
    policy: DrillPolicy,
) -> CheckSuiteResult:
    assert instance.address is not None and instance.port is not None
    run_id = validation_run_id(job.restore_job_id)
    request = CheckerRequest(
        run_id=run_id,
        target=ConnectionTarget(
            host=instance.address,
            port=instance.port,
            user=credential.username,
            password=SecretStr(credential.password),
        ),
        policy=policy,
        snapshot_time=job.recovery_point_created_at,
        # AWS Backup's instance: read it, never write to it.
        install_amcheck=False,
    )
    reply = checker.check(request.to_payload())
    try:
        answer = CheckerAnswer.model_validate(reply)
    except ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in problem["loc"]) for problem in error.errors())
        raise CheckerFailed(f"the checker's answer is malformed: {fields}") from None
    if answer.run_id != run_id:
        raise CheckerFailed("the checker answered for another run")
    return answer.result


def validation_report(
    job: RestoreJob,
    source_db: str,
    status: ValidationStatus,
    result: CheckSuiteResult,
    validated_at: datetime,
) -> dict[str, Any]:
    """The validation report: the job, the status given to AWS Backup, and the checks (without
    the baseline, which only drills compare against)."""
    return {
        "kind": VALIDATION_REPORT_KIND,
        "restore_job_id": job.restore_job_id,
        "restore_testing_plan_arn": job.restore_testing_plan_arn,
        "created_resource_arn": job.created_resource_arn,
        "source_resource_arn": job.source_resource_arn,
        "source_db": source_db,
        "recovery_point_arn": job.recovery_point_arn,
        "recovery_point_created_at": (
            job.recovery_point_created_at.isoformat() if job.recovery_point_created_at else None
        ),
        "validation_status": status.value,
        "validated_at": validated_at.isoformat(),
        "checks": result.model_dump(mode="json", exclude={"baseline"}),
    }


def report_link(location: str, created_resource_arn: str) -> str:
    """The report's S3 URI, with its S3 console page when there is one (in the region and
    partition of the restored instance, where the stack and its bucket are)."""
    bucket, _, key = location.removeprefix("s3://").partition("/")
    parts = created_resource_arn.split(":")
    partition = parts[1] if len(parts) > 1 and parts[1] else "aws"
    region = parts[3] if len(parts) > 3 and parts[3] else "us-east-1"
    console = s3_console_url(bucket, key, region, partition)
    return f"{location} ({console})" if console else location


def report_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode()


def validation_message(status: ValidationStatus, result: CheckSuiteResult, location: str) -> str:
    """What the AWS Backup console shows: the status, the checks in numbers, the first checks
    that did not pass, and where the report is (always, however long the rest)."""
    counts = ", ".join(f"{n} {name}" for name, n in sorted(result.summary.items()) if n)
    names = [check.display_name for check in not_passed(result)]
    shown = ", ".join(names[:FAILED_NAMES_IN_MESSAGE])
    if len(names) > FAILED_NAMES_IN_MESSAGE:
        shown += f" and {len(names) - FAILED_NAMES_IN_MESSAGE} more"
    head = f"restoredrill {status.value}: checks {result.verdict.value} ({counts})"
    if shown:
        head += f"; not passed: {shown}"
    tail = f". Report: {location}"
    room = VALIDATION_MESSAGE_LIMIT - len(tail)
    if len(head) > room:
        head = head[: room - 1] + "…"
    return head + tail
