"""The restore-testing validator's adapters under moto, with the local cloud's emulation of the
restore job calls moto lacks (DescribeRestoreJob, PutRestoreValidationResult)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from restoredrill.adapters.backup import (
    BackupRestoreJobs,
    RdsRestoredInstances,
    SsmCredentialReader,
)
from restoredrill.ports.restore_testing import ValidationStatus

from localcloud.backup import LocalBackup, RestoreJob
from tests.adapters.conftest import REGION, rds_instance

ACCOUNT = "123456789012"
JOB_ID = "7E1D3C5A-2B4F-4C6D-8E9F-0A1B2C3D4E5F"
CREATED = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:awsbackup-restore-test-7e1d3c5a"
SOURCE = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:clinic-db"
PLAN = f"arn:aws:backup:{REGION}:{ACCOUNT}:restore-testing-plan:clinic_daily-5c2e"
RECOVERY_POINT_TIME = datetime(2026, 11, 28, 3, 10, tzinfo=UTC)


@pytest.fixture
def backup(aws: None) -> Iterator[LocalBackup]:
    local = LocalBackup(ACCOUNT, REGION)
    local.install()
    local.add_job(
        RestoreJob(
            restore_job_id=JOB_ID,
            created_resource_arn=CREATED,
            source_resource_arn=SOURCE,
            recovery_point_arn=f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:rp-1",
            recovery_point_created_at=RECOVERY_POINT_TIME,
            restore_testing_plan_arn=PLAN,
        )
    )
    yield local
    local.uninstall()


def test_a_restore_job_is_read_as_aws_backup_describes_it(backup: LocalBackup) -> None:
    jobs = BackupRestoreJobs(boto3.client("backup", region_name=REGION))
    job = jobs.describe(JOB_ID)
    assert job is not None
    assert (job.status, job.created_resource_arn, job.source_resource_arn) == (
        "COMPLETED",
        CREATED,
        SOURCE,
    )
    assert job.restore_testing_plan_arn == PLAN
    assert job.recovery_point_created_at == RECOVERY_POINT_TIME
    assert job.validation_status is None
    assert jobs.describe("0000-UNKNOWN") is None


def test_a_validation_result_is_sent_once_and_the_status_then_stays(backup: LocalBackup) -> None:
    jobs = BackupRestoreJobs(boto3.client("backup", region_name=REGION))
    # When the validator sets the job's status
    jobs.put_validation_result(JOB_ID, ValidationStatus.FAILED, "restoredrill FAILED: report")
    # Then AWS Backup (here, its emulation) shows it, and the call was recorded once
    job = jobs.describe(JOB_ID)
    assert job is not None and job.validation_status == "FAILED"
    assert [(c.status, c.accepted) for c in backup.validations_of(JOB_ID)] == [("FAILED", True)]
    # And a second status is refused (it cannot change) but still counted as a call
    with pytest.raises(ClientError, match="InvalidRequestException"):
        jobs.put_validation_result(JOB_ID, ValidationStatus.SUCCESSFUL, "again")
    assert len(backup.validations_of(JOB_ID)) == 2
    assert jobs.describe(JOB_ID).validation_status == "FAILED"  # type: ignore[union-attr]


def test_the_restored_instance_is_described_with_its_tags_and_engine(aws: None) -> None:
    rds_instance(
        "awsbackup-restore-test-7e1d3c5a", tags={"awsbackup-restore-test": "", "team": "clinic"}
    )
    instances = RdsRestoredInstances(boto3.client("rds", region_name=REGION))
    found = instances.describe("awsbackup-restore-test-7e1d3c5a")
    assert found is not None
    assert found.engine == "postgres"
    assert found.tags == {"awsbackup-restore-test": "", "team": "clinic"}
    assert found.address and found.port
    assert instances.describe("awsbackup-restore-test-gone") is None


def test_the_checking_credential_is_read_decrypted_and_missing_is_none(aws: None) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    name = "/restoredrill/stack/restore-validation/clinic-db"
    value = json.dumps({"username": "restoredrill_check", "password": "s3cret-9f"})
    ssm.put_parameter(Name=name, Value=value, Type="SecureString")
    reader = SsmCredentialReader(ssm)
    assert reader.get(name) == value
    assert reader.get("/restoredrill/stack/restore-validation/orders-db") is None
