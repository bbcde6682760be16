"""AWS Backup recovery points as drill triggers: the Backup Job State Change and Copy Job State
Change events (AWS Backup Developer Guide, "Monitoring AWS Backup events using Amazon
EventBridge") of RDS DB instances and Aurora DB clusters.

For RDS and Aurora a recovery point is a DB (cluster) snapshot that AWS Backup names
``awsbackup:...``: a backup job's is the event's ``resources`` entry, a copy job's is
``detail.destinationRecoveryPointArn`` (its ``resources`` entry is the recovery point copied).

Everything that arrives is untrusted: an event that cannot be a completed recovery point of an
RDS or Aurora database raises InvalidEvent saying why (the rules in template.yaml let only
completed RDS and Aurora jobs through, so anything else reaching the function is foreign).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from restoredrill.ports.inbound_events import InvalidEvent, is_snapshot_identifier
from restoredrill.ports.records import DrillRequest, RecoveryPoint

BACKUP_JOB_STATE_CHANGE = "Backup Job State Change"
COPY_JOB_STATE_CHANGE = "Copy Job State Change"
# AWS Backup's resource types of the databases restoredrill drills (an Aurora cluster's is
# "Aurora": the Recovery Point State Change example of the same guide page).
RESOURCE_TYPES = {"RDS": False, "Aurora": True}  # resource type -> is a cluster
AWS_BACKUP_SNAPSHOT_PREFIX = "awsbackup:"
# Job ids, vault names and plan ids: letters, digits and the separators AWS Backup uses (the
# automated vaults and plans carry slashes: aws/backup/..., aws/efs/...). Nothing else is let
# through into the run record, the report or a log line.
_JOB_ID = r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,99}$"
_RECOVERY_POINT_ARN = re.compile(
    r"arn:aws[a-z-]*:rds:(?P<region>[a-z0-9-]+):[0-9]{12}:"
    r"(?P<type>snapshot|cluster-snapshot):(?P<name>awsbackup:.+)"
)
_VAULT_ARN = re.compile(r"arn:aws[a-z-]*:backup:(?P<region>[a-z0-9-]+):[0-9]{12}:backup-vault:(.+)")
# Printable ASCII only: an ARN is carried into the run record, the report and log lines.
_ANY_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:(?P<region>[a-z0-9-]*):[0-9]{0,12}:[!-~]{1,1500}")


class _CreatedBy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    backupPlanId: str | None = Field(default=None, pattern=_NAME)


class _JobDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    state: str = Field(min_length=1, max_length=40)
    resourceType: str | None = Field(default=None, max_length=100)
    resourceArn: str | None = Field(default=None, max_length=2048)
    createdBy: _CreatedBy | None = None


class BackupJobDetail(_JobDetail):
    backupJobId: str = Field(pattern=_JOB_ID)
    backupVaultName: str | None = Field(default=None, pattern=_NAME)
    backupVaultArn: str | None = Field(default=None, max_length=2048)


class CopyJobDetail(_JobDetail):
    copyJobId: str = Field(pattern=_JOB_ID)
    sourceBackupVaultArn: str | None = Field(default=None, max_length=2048)
    destinationBackupVaultArn: str | None = Field(default=None, max_length=2048)
    # AWS's own examples of failed and running copy jobs carry {} here.
    destinationRecoveryPointArn: str | dict[str, Any] | None = None
    sourceRecoveryPointArn: str | None = Field(default=None, max_length=2048)
    createdByBackupJobId: str | None = Field(default=None, pattern=_JOB_ID)


class BackupJobEvent(EventBridgeModel):
    source: Literal["aws.backup"]
    detail_type: Literal["Backup Job State Change"] = Field(alias="detail-type")
    detail: BackupJobDetail


class CopyJobEvent(EventBridgeModel):
    source: Literal["aws.backup"]
    detail_type: Literal["Copy Job State Change"] = Field(alias="detail-type")
    detail: CopyJobDetail


def is_recovery_point_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("detail-type") in (
        BACKUP_JOB_STATE_CHANGE,
        COPY_JOB_STATE_CHANGE,
    )


def _parsed(model: type[EventBridgeModel], event: Any, what: str) -> Any:
    try:
        return parse(event=event, model=model)
    except ValidationError as error:
        raise InvalidEvent.naming_fields(f"{what} event", error) from None
    except (TypeError, ValueError) as error:
        raise InvalidEvent(f"malformed {what} event: {type(error).__name__}") from None


def _drillable(detail: _JobDetail, what: str) -> bool:
    """Whether the job's resource is an Aurora cluster (else an RDS DB instance); InvalidEvent
    when the job is not a completed backup of either."""
    if detail.state != "COMPLETED":
        raise InvalidEvent(
            f"{what} event: state {detail.state!r} is not COMPLETED, nothing to drill"
        )
    if detail.resourceType not in RESOURCE_TYPES:
        raise InvalidEvent(
            f"{what} event: resourceType {detail.resourceType!r} is not RDS or Aurora, "
            "not a database restoredrill drills"
        )
    return RESOURCE_TYPES[detail.resourceType]


def _recovery_point(arn: Any, cluster: bool, what: str, where: str) -> tuple[str, str]:
    """(snapshot id, Region) of an RDS or Aurora recovery point's ARN."""
    text = arn if isinstance(arn, str) and len(arn) <= 2048 else ""
    match = _RECOVERY_POINT_ARN.fullmatch(text)
    kind = "cluster-snapshot" if cluster else "snapshot"
    if match is None or match.group("type") != kind:
        raise InvalidEvent(
            f"{what} event: {where} is not an AWS Backup recovery point of an RDS "
            f"{'DB cluster' if cluster else 'DB instance'} (arn:aws:rds:...:{kind}:awsbackup:...)"
        )
    if not is_snapshot_identifier(match.group("name")):
        raise InvalidEvent(f"{what} event: {where} names no valid RDS snapshot identifier")
    return match.group("name"), match.group("region")


def _only_resource(resources: list[str], what: str) -> str:
    if len(resources) != 1:
        raise InvalidEvent(
            f"{what} event: resources must hold the recovery point's ARN, it holds "
            f"{len(resources)} entries"
        )
    return resources[0]


def _vault_name(vault_arn: str | None) -> str | None:
    match = _VAULT_ARN.fullmatch(vault_arn or "")
    if match is None or re.fullmatch(_NAME, match.group(2)) is None:
        return None
    return match.group(2)


def _region_of(arn: str | None) -> str | None:
    match = _ANY_ARN.fullmatch(arn or "")
    return match.group("region") or None if match else None


def _plan_id(detail: _JobDetail) -> str | None:
    return detail.createdBy.backupPlanId if detail.createdBy is not None else None


def parse_backup_job_event(event: Any) -> DrillRequest:
    """The drill of the recovery point a completed backup job of an RDS DB instance or Aurora
    cluster made. Raises InvalidEvent saying why an event is not one."""
    what = BACKUP_JOB_STATE_CHANGE
    parsed: BackupJobEvent = _parsed(BackupJobEvent, event, what)
    detail = parsed.detail
    cluster = _drillable(detail, what)
    arn = _only_resource(parsed.resources, what)
    snapshot_id, _ = _recovery_point(arn, cluster, what, "its resource")
    vault_arn = detail.backupVaultArn if _vault_name(detail.backupVaultArn) else None
    recovery_point = RecoveryPoint(
        kind="backup",
        recovery_point_arn=arn,
        vault_name=detail.backupVaultName or _vault_name(vault_arn),
        vault_arn=vault_arn,
        backup_job_id=detail.backupJobId,
        backup_plan_id=_plan_id(detail),
        resource_arn=detail.resourceArn if _ANY_ARN.fullmatch(detail.resourceArn or "") else None,
    )
    return DrillRequest(
        snapshot_id=snapshot_id,
        trigger=f"{what} COMPLETED (AWS Backup recovery point)",
        cluster=cluster,
        recovery_point=recovery_point,
    )


def parse_copy_job_event(event: Any) -> DrillRequest:
    """The drill of the copy a completed copy job made of an RDS or Aurora recovery point (in
    the destination vault, possibly in another Region). Raises InvalidEvent saying why an event
    is not one."""
    what = COPY_JOB_STATE_CHANGE
    parsed: CopyJobEvent = _parsed(CopyJobEvent, event, what)
    detail = parsed.detail
    cluster = _drillable(detail, what)
    arn = detail.destinationRecoveryPointArn
    snapshot_id, _ = _recovery_point(arn, cluster, what, "detail.destinationRecoveryPointArn")
    assert isinstance(arn, str)
    source_arn = detail.sourceRecoveryPointArn or (
        parsed.resources[0] if len(parsed.resources) == 1 else None
    )
    source_arn = source_arn if _ANY_ARN.fullmatch(source_arn or "") else None
    destination_vault = detail.destinationBackupVaultArn
    recovery_point = RecoveryPoint(
        kind="copy",
        recovery_point_arn=arn,
        vault_name=_vault_name(destination_vault),
        vault_arn=destination_vault if _vault_name(destination_vault) else None,
        backup_job_id=detail.createdByBackupJobId,
        copy_job_id=detail.copyJobId,
        backup_plan_id=_plan_id(detail),
        resource_arn=detail.resourceArn if _ANY_ARN.fullmatch(detail.resourceArn or "") else None,
        source_recovery_point_arn=source_arn,
        source_region=_region_of(source_arn) or _region_of(detail.sourceBackupVaultArn),
    )
    return DrillRequest(
        snapshot_id=snapshot_id,
        trigger=f"{what} COMPLETED (AWS Backup copy)",
        cluster=cluster,
        recovery_point=recovery_point,
    )


def parse_recovery_point_event(event: Any) -> DrillRequest:
    """A Backup Job or Copy Job State Change, whichever the event is."""
    if isinstance(event, dict) and event.get("detail-type") == COPY_JOB_STATE_CHANGE:
        return parse_copy_job_event(event)
    return parse_backup_job_event(event)


def recovery_point_region(recovery_point: RecoveryPoint) -> str | None:
    """The Region the recovery point is in (the copy's, for a copy)."""
    match = _RECOVERY_POINT_ARN.fullmatch(recovery_point.recovery_point_arn)
    return match.group("region") if match else None
