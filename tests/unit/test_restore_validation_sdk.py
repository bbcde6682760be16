"""The restore-testing validator's requests, checked against the installed botocore's Backup model
(the Stubber validates every parameter), and the answers it reads back."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.client import BaseClient
from botocore.stub import Stubber
from restoredrill.adapters.backup import BackupRestoreJobs
from restoredrill.ports.restore_testing import ValidationStatus

JOB_ID = "7E1D3C5A-2B4F-4C6D-8E9F-0A1B2C3D4E5F"


@pytest.fixture
def backup() -> BaseClient:
    client: BaseClient = boto3.client(
        "backup",
        region_name="us-east-1",
        aws_access_key_id="stubbed",
        aws_secret_access_key="stubbed",
    )
    return client


def test_the_validation_result_is_sent_as_the_backup_model_defines_it(backup: BaseClient) -> None:
    with Stubber(backup) as stub:
        stub.add_response(
            "put_restore_validation_result",
            {},
            {
                "RestoreJobId": JOB_ID,
                "ValidationStatus": "FAILED",
                "ValidationStatusMessage": "restoredrill FAILED: checks FAILED. Report: s3://b/k",
            },
        )
        BackupRestoreJobs(backup).put_validation_result(
            JOB_ID, ValidationStatus.FAILED, "restoredrill FAILED: checks FAILED. Report: s3://b/k"
        )
        stub.assert_no_pending_responses()


def test_describe_restore_job_is_read_with_its_restore_testing_plan_and_source(
    backup: BaseClient,
) -> None:
    created = datetime(2026, 11, 28, 3, 10, tzinfo=UTC)
    with Stubber(backup) as stub:
        stub.add_response(
            "describe_restore_job",
            {
                "RestoreJobId": JOB_ID,
                "Status": "COMPLETED",
                "CreatedResourceArn": "arn:aws:rds:us-east-1:123456789012:db:awsbackup-x",
                "SourceResourceArn": "arn:aws:rds:us-east-1:123456789012:db:clinic-db",
                "RecoveryPointArn": "arn:aws:backup:us-east-1:123456789012:recovery-point:rp",
                "RecoveryPointCreationDate": created,
                "CreatedBy": {"RestoreTestingPlanArn": "arn:aws:backup:plan"},
                "ValidationStatus": "VALIDATING",
            },
            {"RestoreJobId": JOB_ID},
        )
        stub.add_client_error(
            "describe_restore_job",
            service_error_code="ResourceNotFoundException",
            expected_params={"RestoreJobId": "0000-GONE"},
        )
        jobs = BackupRestoreJobs(backup)
        job = jobs.describe(JOB_ID)
        assert job is not None
        assert job.source_resource_arn == "arn:aws:rds:us-east-1:123456789012:db:clinic-db"
        assert job.restore_testing_plan_arn == "arn:aws:backup:plan"
        assert job.recovery_point_created_at == created
        assert job.validation_status == "VALIDATING"
        assert jobs.describe("0000-GONE") is None
