"""The local AWS Backup: restore testing (restore jobs, DescribeRestoreJob and
PutRestoreValidationResult, which moto 5.2's Backup lacks), and the Backup Job and Copy Job State
Change events of recovery points (:func:`recovery_point_event`; the recovery point itself is an
``awsbackup:`` DB snapshot in the local RDS, see :meth:`localcloud.cloud.LocalCloud.backup_job`).

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
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


BACKUP_ROLE = "AWSBackupDefaultServiceRole"


@dataclass(frozen=True)
class RecoveryPointJob:
    """A completed backup job (``copy_job_id`` None) or copy job of an RDS DB instance, as its
    State Change event tells it (the shapes of "Monitoring AWS Backup events using Amazon
    EventBridge"; events/start_drill/ holds samples)."""

    account_id: str
    region: str  # where the recovery point is (a copy's destination Region)
    job_id: str
    snapshot_id: str  # awsbackup:job-... (or awsbackup:copyjob-...)
    source_db: str
    vault: str
    plan_id: str | None
    copy_job_id: str | None = None
    source_region: str | None = None  # a copy's origin
    source_snapshot_id: str | None = None

    def arn(self, region: str, kind: str, name: str) -> str:
        service = "backup" if kind == "backup-vault" else "rds"
        return f"arn:aws:{service}:{region}:{self.account_id}:{kind}:{name}"

    @property
    def recovery_point_arn(self) -> str:
        return self.arn(self.region, "snapshot", self.snapshot_id)


def recovery_point_event(job: RecoveryPointJob) -> dict[str, Any]:
    """The job's COMPLETED event, as AWS Backup sends it to the default bus."""
    origin = job.source_region or job.region
    detail: dict[str, Any] = {
        "resourceArn": job.arn(origin, "db", job.source_db),
        "resourceType": "RDS",
        "state": "COMPLETED",
        "iamRoleArn": f"arn:aws:iam::{job.account_id}:role/service-role/{BACKUP_ROLE}",
        "percentDone": 100,
    }
    if job.plan_id is not None:
        detail["createdBy"] = {"backupPlanId": job.plan_id}
    if job.copy_job_id is None:
        detail_type, resources = "Backup Job State Change", [job.recovery_point_arn]
        detail |= {
            "backupJobId": job.job_id,
            "backupVaultName": job.vault,
            "backupVaultArn": job.arn(job.region, "backup-vault", job.vault),
        }
    else:
        source = job.arn(origin, "snapshot", job.source_snapshot_id or job.snapshot_id)
        detail_type, resources = "Copy Job State Change", [source]
        detail |= {
            "copyJobId": job.copy_job_id,
            "sourceBackupVaultArn": job.arn(origin, "backup-vault", "clinic-vault"),
            "destinationBackupVaultArn": job.arn(job.region, "backup-vault", job.vault),
            "destinationRecoveryPointArn": job.recovery_point_arn,
        }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "source": "aws.backup",
        "detail-type": detail_type,
        "account": job.account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": job.region,
        "resources": resources,
        "detail": detail,
    }
