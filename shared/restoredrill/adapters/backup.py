"""boto3 adapters of the restore-testing validator: AWS Backup's restore jobs, the restored DB
instance as RDS describes it, and the checking credential in SSM. Read-only but for
PutRestoreValidationResult: nothing here modifies or deletes what AWS Backup restored."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from restoredrill.ports.restore_testing import (
    RestoredInstance,
    RestoreJob,
    ValidationStatus,
)

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_ssm import SSMClient


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _optional_text(value: Any) -> str | None:
    return str(value) if value else None


class BackupRestoreJobs:
    """DescribeRestoreJob and PutRestoreValidationResult. ``client`` is a boto3 ``backup`` client
    (typed Any: the project carries no stubs for it)."""

    def __init__(self, client: Any) -> None:
        self._backup = client

    def describe(self, restore_job_id: str) -> RestoreJob | None:
        try:
            found = self._backup.describe_restore_job(RestoreJobId=restore_job_id)
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return None
            raise
        created_at = found.get("RecoveryPointCreationDate")
        return RestoreJob(
            restore_job_id=str(found.get("RestoreJobId") or restore_job_id),
            status=str(found.get("Status") or "UNKNOWN"),
            created_resource_arn=_optional_text(found.get("CreatedResourceArn")),
            source_resource_arn=_optional_text(found.get("SourceResourceArn")),
            recovery_point_arn=_optional_text(found.get("RecoveryPointArn")),
            recovery_point_created_at=created_at if isinstance(created_at, datetime) else None,
            restore_testing_plan_arn=_optional_text(
                (found.get("CreatedBy") or {}).get("RestoreTestingPlanArn")
            ),
            validation_status=_optional_text(found.get("ValidationStatus")),
        )

    def put_validation_result(
        self, restore_job_id: str, status: ValidationStatus, message: str
    ) -> None:
        self._backup.put_restore_validation_result(
            RestoreJobId=restore_job_id,
            ValidationStatus=status.value,
            ValidationStatusMessage=message,
        )


class RdsRestoredInstances:
    """DescribeDBInstances of the instance a restore test created (read only)."""

    def __init__(self, client: RDSClient) -> None:
        self._rds = client

    def describe(self, instance_id: str) -> RestoredInstance | None:
        try:
            response = self._rds.describe_db_instances(DBInstanceIdentifier=instance_id)
        except ClientError as error:
            if _code(error) == "DBInstanceNotFound":
                return None
            raise
        instances = response.get("DBInstances", [])
        if not instances:
            return None
        found = instances[0]
        endpoint = found.get("Endpoint") or {}
        return RestoredInstance(
            instance_id=str(found.get("DBInstanceIdentifier") or instance_id),
            engine=str(found.get("Engine", "")),
            status=str(found.get("DBInstanceStatus", "unknown")),
            address=endpoint.get("Address"),
            port=endpoint.get("Port"),
            tags={str(tag["Key"]): str(tag.get("Value", "")) for tag in found.get("TagList", [])},
        )


class SsmCredentialReader:
    """A SecureString parameter, decrypted; None when there is none."""

    def __init__(self, client: SSMClient) -> None:
        self._ssm = client

    def get(self, name: str) -> str | None:
        try:
            stored = self._ssm.get_parameter(Name=name, WithDecryption=True)
        except ClientError as error:
            if _code(error) == "ParameterNotFound":
                return None
            raise
        return str(stored["Parameter"]["Value"])
