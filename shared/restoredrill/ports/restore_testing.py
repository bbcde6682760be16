"""AWS Backup restore testing: the completed restore job's event, what AWS Backup and RDS say about
the job and the instance it restored, and the validator's settings.

AWS Backup restores a recovery point on its restore testing plan's schedule, keeps the restored
resource for the selection's validation window, then deletes it itself. restoredrill only checks
that resource and reports the outcome (PutRestoreValidationResult); it never modifies or deletes
it (docs/restore-testing.md).

Everything that arrives is untrusted: a malformed event raises InvalidEvent; an event that is well
formed but not a completed restore test of an RDS DB instance returns None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from restoredrill.ports.config import _from_environ
from restoredrill.ports.inbound_events import InvalidEvent, is_instance_identifier

RESTORE_JOB_STATE_CHANGE = "Restore Job State Change"
# The tag AWS Backup puts on every resource a restore testing plan restores (AWS Backup Developer
# Guide, "Restore testing", Data deletion). restoredrill checks nothing that lacks it.
RESTORE_TEST_TAG = "awsbackup-restore-test"
# AWS Backup's restore job ids travel in a URL path (GET /restore-jobs/{id}): anything but
# letters, digits and hyphens could point the call elsewhere ("../", "/", "?").
_RESTORE_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_DB_INSTANCE_ARN = re.compile(r"arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:db:(.+)")


class ValidationStatus(StrEnum):
    """PutRestoreValidationResult's statuses. Once set, a status does not change."""

    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    VALIDATING = "VALIDATING"


FINAL_VALIDATION_STATUSES = frozenset(
    {ValidationStatus.SUCCESSFUL, ValidationStatus.FAILED, ValidationStatus.TIMED_OUT}
)


class RestoreJobDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    restoreJobId: str = Field(min_length=1, max_length=100)
    status: str = Field(min_length=1, max_length=40)
    createdResourceArn: str | None = Field(default=None, max_length=2048)
    restoreTestingPlanArn: str | None = Field(default=None, max_length=2048)
    resourceType: str | None = Field(default=None, max_length=100)


class RestoreJobEvent(EventBridgeModel):
    source: Literal["aws.backup"]
    detail_type: Literal["Restore Job State Change"] = Field(alias="detail-type")
    detail: RestoreJobDetail


class RestoreTestCompleted(BaseModel):
    """A restore testing job that completed, restoring an RDS DB instance: what to validate."""

    model_config = ConfigDict(frozen=True)

    restore_job_id: str
    restore_testing_plan_arn: str
    instance_id: str


def instance_id_from_arn(arn: str | None) -> str | None:
    """``orders-db`` from ``arn:aws:rds:...:db:orders-db``; None for anything else (a cluster, a
    snapshot, another service, or an identifier RDS would refuse)."""
    match = _DB_INSTANCE_ARN.fullmatch(arn or "")
    if match is None or not is_instance_identifier(match.group(1)):
        return None
    return match.group(1)


def parse_restore_job_event(event: Any) -> RestoreTestCompleted | None:
    """The restore test to validate; None for a restore job event that is not a completed restore
    test of an RDS DB instance. Raises InvalidEvent when the event is malformed."""
    try:
        parsed: RestoreJobEvent = parse(event=event, model=RestoreJobEvent)
    except ValidationError as error:
        raise InvalidEvent.naming_fields("Restore Job State Change event", error) from None
    except (TypeError, ValueError) as error:
        raise InvalidEvent(
            f"malformed Restore Job State Change event: {type(error).__name__}"
        ) from None
    detail = parsed.detail
    if not _RESTORE_JOB_ID.fullmatch(detail.restoreJobId):
        raise InvalidEvent("malformed Restore Job State Change event: detail.restoreJobId")
    if detail.status != "COMPLETED" or not detail.restoreTestingPlanArn:
        return None
    instance_id = instance_id_from_arn(detail.createdResourceArn)
    if instance_id is None:
        return None
    return RestoreTestCompleted(
        restore_job_id=detail.restoreJobId,
        restore_testing_plan_arn=detail.restoreTestingPlanArn,
        instance_id=instance_id,
    )


class RestoreJob(BaseModel):
    """What DescribeRestoreJob says about a restore job right now."""

    model_config = ConfigDict(frozen=True)

    restore_job_id: str
    status: str
    created_resource_arn: str | None = None
    source_resource_arn: str | None = None
    recovery_point_arn: str | None = None
    recovery_point_created_at: datetime | None = None
    restore_testing_plan_arn: str | None = None
    validation_status: str | None = None


class RestoredInstance(BaseModel):
    """What DescribeDBInstances shows of the instance a restore test created."""

    model_config = ConfigDict(frozen=True)

    instance_id: str
    engine: str
    status: str
    address: str | None = None
    port: int | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class CheckingCredential(BaseModel):
    """The PostgreSQL login restoredrill checks a restored copy with: a role of the source
    database (the copy has the source's roles), kept in SSM as ``{"username", "password"}``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    username: str = Field(min_length=1, max_length=63)
    password: str = Field(min_length=1, max_length=1024, repr=False)


class RestoreJobs(Protocol):
    def describe(self, restore_job_id: str) -> RestoreJob | None:
        """The job; None when AWS Backup has no such job."""
        ...

    def put_validation_result(
        self, restore_job_id: str, status: ValidationStatus, message: str
    ) -> None: ...


class RestoredInstances(Protocol):
    def describe(self, instance_id: str) -> RestoredInstance | None: ...


class CredentialReader(Protocol):
    def get(self, name: str) -> str | None:
        """The SecureString parameter's value; None when there is none."""
        ...


class RestoreValidationSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    report_bucket: str = Field(min_length=1)
    checker_function_name: str = Field(min_length=1)
    checker_timeout_seconds: int = Field(ge=1, le=900)
    # Where the checking credentials are: <prefix>/<source DB instance identifier>.
    validation_credential_prefix: str = Field(pattern=r"^/[A-Za-z0-9_./-]+$")
    idempotency_table_name: str = Field(min_length=1)
    drill_policy_file: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RestoreValidationSettings:
        return _from_environ(cls, environ)
