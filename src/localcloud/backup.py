"""The local AWS Backup restore testing: restore jobs, DescribeRestoreJob and
PutRestoreValidationResult, which moto 5.2's Backup lacks.

A test plays AWS Backup (see :meth:`localcloud.cloud.LocalCloud.run_restore_test`): it restores a
snapshot into an instance named and tagged as restore testing names and tags its instances,
records the job here, and emits the Restore Job State Change event. The validator then reads the
job and sets its validation through moto's endpoint, as it would through AWS's.

Every PutRestoreValidationResult is recorded, accepted or not, so a test can assert that exactly
one was made. A job keeps the first final status it is given: AWS Backup documents the statuses,
not what it answers a second call (an assumption: refused here with InvalidRequestException).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.backup import urls as backup_urls
from moto.backup.exceptions import InvalidRequestException, ResourceNotFoundException
from moto.backup.responses import BackupResponse
from moto.core.responses import ActionResult, EmptyResult

FINAL_STATUSES = ("SUCCESSFUL", "FAILED", "TIMED_OUT")
VALIDATION_STATUSES = (*FINAL_STATUSES, "VALIDATING")

# The two REST paths the emulation adds to moto's Backup service (GET and PUT respectively).
_URL_PATHS = {
    "{0}/restore-jobs/(?P<restoreJobId>[^/]+)$": BackupResponse.dispatch,
    "{0}/restore-jobs/(?P<restoreJobId>[^/]+)/validations$": BackupResponse.dispatch,
}

_installed: dict[tuple[str, str], LocalBackup] = {}


@dataclass
class RestoreJob:
    restore_job_id: str
    created_resource_arn: str
    source_resource_arn: str
    recovery_point_arn: str
    recovery_point_created_at: datetime
    restore_testing_plan_arn: str | None
    status: str = "COMPLETED"
    validation_status: str | None = None
    validation_status_message: str | None = None

    def described(self, account_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "AccountId": account_id,
            "RestoreJobId": self.restore_job_id,
            "Status": self.status,
            "CreatedResourceArn": self.created_resource_arn,
            "SourceResourceArn": self.source_resource_arn,
            "RecoveryPointArn": self.recovery_point_arn,
            "RecoveryPointCreationDate": self.recovery_point_created_at,
            "ResourceType": "RDS",
        }
        if self.restore_testing_plan_arn:
            answer["CreatedBy"] = {"RestoreTestingPlanArn": self.restore_testing_plan_arn}
        if self.validation_status:
            answer["ValidationStatus"] = self.validation_status
            answer["ValidationStatusMessage"] = self.validation_status_message or ""
        return answer


@dataclass(frozen=True)
class ValidationCall:
    restore_job_id: str
    status: str
    message: str
    accepted: bool


@dataclass
class LocalBackup:
    account_id: str
    region: str
    jobs: dict[str, RestoreJob] = field(default_factory=dict)
    validation_calls: list[ValidationCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> None:
        _add_routes()
        _installed[(self.account_id, self.region)] = self

    def uninstall(self) -> None:
        _installed.pop((self.account_id, self.region), None)

    def add_job(self, job: RestoreJob) -> None:
        with self._lock:
            self.jobs[job.restore_job_id] = job

    def describe(self, restore_job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self.jobs.get(restore_job_id)
            if job is None:
                raise ResourceNotFoundException(f"no restore job {restore_job_id}")
            return job.described(self.account_id)

    def put_validation(self, restore_job_id: str, status: str, message: str) -> None:
        with self._lock:
            job = self.jobs.get(restore_job_id)
            accepted = (
                job is not None
                and status in VALIDATION_STATUSES
                and job.validation_status not in FINAL_STATUSES
            )
            self.validation_calls.append(ValidationCall(restore_job_id, status, message, accepted))
            if job is None:
                raise ResourceNotFoundException(f"no restore job {restore_job_id}")
            if not accepted:
                raise InvalidRequestException(
                    f"restore job {restore_job_id} already has validation status "
                    f"{job.validation_status}"
                )
            job.validation_status = status
            job.validation_status_message = message

    def validations_of(self, restore_job_id: str) -> list[ValidationCall]:
        with self._lock:
            return [c for c in self.validation_calls if c.restore_job_id == restore_job_id]


def _local_for(response: BackupResponse) -> LocalBackup:
    local = _installed.get((response.current_account, response.region))
    if local is None:
        raise ResourceNotFoundException("no restore jobs in this account and region")
    return local


def _describe_restore_job(response: BackupResponse) -> ActionResult:
    return ActionResult(_local_for(response).describe(str(response._get_param("RestoreJobId"))))


def _put_restore_validation_result(response: BackupResponse) -> EmptyResult:
    _local_for(response).put_validation(
        str(response._get_param("RestoreJobId")),
        str(response._get_param("ValidationStatus")),
        str(response._get_param("ValidationStatusMessage") or ""),
    )
    return EmptyResult()


def _add_routes() -> None:
    """Teach moto's Backup service the two calls. Left in place once added: they change no answer
    moto gives, they only add two."""
    backup_urls.url_paths.update(_URL_PATHS)
    if "describe_restore_job" not in BackupResponse.__dict__:
        setattr(BackupResponse, "describe_restore_job", _describe_restore_job)  # noqa: B010
        setattr(BackupResponse, "put_restore_validation_result", _put_restore_validation_result)  # noqa: B010
