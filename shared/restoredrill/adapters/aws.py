"""boto3 adapters: the only code that talks to AWS. Each one is built from a client it is given."""

from __future__ import annotations

import gzip
import json
import re
import secrets
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import botocore
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    MissingParametersError,
    ParamValidationError,
    ValidationError,
)

from restoredrill.ports.gateways import (
    CheckerFailed,
    EffectRejected,
    counts_for_schedule,
    latest_published,
)
from restoredrill.ports.records import (
    DRILL_PORT,
    INSTANCE_PREFIX,
    OWNER_TAG,
    RUN_ID_TAG,
    SOURCE_DB_TAG,
    AccountQuota,
    ClusterView,
    InstanceView,
    Lease,
    ReportLink,
    RestorableSource,
    RunRecord,
    RunState,
    SnapshotInfo,
    SourceDatabase,
    Verdict,
    holds_data_before,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

# Errors worth retrying: the trigger (SQS, EventBridge, the poll chain) will deliver again.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "ProvisionedThroughputExceededException",
    }
)
# The oldest botocore that knows every parameter these adapters send: BackupRetentionPeriod of
# RestoreDBInstanceFromDBSnapshot is in botocore's RDS service model from 1.42.46 on.
# shared/requirements.txt ships at least this in the Lambda layer; pyproject.toml asks for it too.
BOTOCORE_FLOOR = "1.42.46"
# Errors botocore raises before sending anything, when this SDK cannot build the request (a
# parameter it does not know, a value of the wrong type): no retry can ever succeed.
INVALID_REQUEST_ERRORS = (ParamValidationError, ValidationError, MissingParametersError)
# Where a line of botocore's validation report starts quoting the value (it may be a password)
# or listing every valid parameter.
_REPORT_VALUE = re.compile(r", (?:value|must be one of):")
# Restores keep the snapshot's engine version even past its end of standard support (RDS bills
# Extended Support for the drill's minutes then): the disabled value would make RDS upgrade the
# restored instance, and the drill would test an upgrade instead of the backup as it is.
ENGINE_LIFECYCLE_SUPPORT = "open-source-rds-extended-support"
ACTIVE_INDEX = "active-by-deadline"
ACTIVE_MARK = "1"
BY_SOURCE_DB_INDEX = "by-source-db"


RESETTING = "resetting-master-credentials"
PASSWORD_ALPHABET = string.ascii_letters + string.digits


class TransientRdsState(Exception):
    """The instance is busy with something else; the next trigger will try again."""


class NotOurInstance(Exception):
    """Refused to change an instance that does not carry this drill's ownership tags."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _rejected_or_raise(error: ClientError) -> EffectRejected:
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
    code = _code(error)
    if code in TRANSIENT_CODES or status >= 500:
        raise error
    return EffectRejected(code, str(error.response.get("Error", {}).get("Message", "")))


def _invalid_request(operation: str, error: BotoCoreError) -> EffectRejected:
    """The refusal of a request botocore would not send, naming the parameters but never their
    values."""
    report = error.kwargs.get("report") if isinstance(error, ParamValidationError) else None
    if isinstance(report, str):
        problems = [
            _REPORT_VALUE.split(line, maxsplit=1)[0] for line in report.splitlines() if line.strip()
        ]
    else:
        problems = [f"{type(error).__name__} for parameter {error.kwargs.get('param', '?')}"]
    return EffectRejected(
        type(error).__name__,
        f"botocore {botocore.__version__} cannot send {operation}: {'; '.join(problems)} "
        f"(restoredrill needs botocore >= {BOTOCORE_FLOOR}, which its Lambda layer ships)",
    )


def _restorable(identifier: str, found: dict[str, Any], arn_key: str) -> RestorableSource:
    """A DB instance or cluster as DescribeDBInstances/DescribeDBClusters show it, for a
    point-in-time drill."""
    return RestorableSource(
        instance_id=identifier,
        arn=str(found.get(arn_key, "")),
        engine=str(found.get("Engine", "")),
        engine_version=found.get("EngineVersion"),
        encrypted=found.get("StorageEncrypted"),
        kms_key_id=found.get("KmsKeyId"),
        master_username=str(found.get("MasterUsername", "postgres")),
        allocated_storage_gib=found.get("AllocatedStorage"),
        storage_type=found.get("StorageType"),
        tags=_tags(found.get("TagList")),
        latest_restorable_time=found.get("LatestRestorableTime"),
    )


def _tags(tag_list: list[Any] | None) -> dict[str, str]:
    return {str(tag["Key"]): str(tag.get("Value", "")) for tag in tag_list or []}


QUERY_PAGE_SIZE = 25
# The last drill that counts for a schedule is nearly always the newest run (an ERROR or the
# asking run itself may come first): small pages read a few records, not 25 of up to 14 KB.
LAST_DRILL_PAGE_SIZE = 3
# The newest-created runs among which the last published one is looked for: a drill created
# earlier can finish later (a slow restore), but not dozens of drills later.
LATEST_REPORT_WINDOW = 25


class DynamoRunStore:
    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int) -> None:
        self._client = client
        self._table = table_name
        self._retention = timedelta(days=retention_days)

    @property
    def table_name(self) -> str:
        return self._table

    def item(self, run: RunRecord) -> dict[str, Any]:
        item: dict[str, Any] = {
            "run_id": {"S": run.run_id},
            "version": {"N": str(run.version)},
            "state": {"S": run.state.value},
            "deadline": {"N": str(int(run.deadline.timestamp()))},
            "source_db": {"S": run.source_db},
            "created_at": {"S": run.created_at.isoformat()},
            "expires_at": {"N": str(int((run.created_at + self._retention).timestamp()))},
            "record": {"S": run.model_dump_json()},
        }
        if run.state is not RunState.FINISHED:
            item["active"] = {"S": ACTIVE_MARK}
        if run.verdict is not None:
            item["verdict"] = {"S": run.verdict.value}
        return item

    def get(self, run_id: str) -> RunRecord | None:
        response = self._client.get_item(
            TableName=self._table, Key={"run_id": {"S": run_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None or "record" not in item:
            return None  # no such run (a drill slot's key is no run either)
        return RunRecord.model_validate_json(str(item["record"]["S"]))

    def create(self, run: RunRecord) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self.item(run),
                ConditionExpression="attribute_not_exists(run_id)",
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def replace(self, run: RunRecord, expected_version: int) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self.item(run),
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _newest_of(self, source_db: str, attribute: str, value: str) -> Iterator[RunRecord]:
        """The database's runs whose ``attribute`` is ``value``, newest first."""
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=BY_SOURCE_DB_INDEX,
            KeyConditionExpression="source_db = :db",
            FilterExpression="#attribute = :value",
            ExpressionAttributeNames={"#attribute": attribute},
            ExpressionAttributeValues={":db": {"S": source_db}, ":value": {"S": value}},
            ScanIndexForward=False,
            # A few at a time: the answer is nearly always among the newest runs, and a filter
            # is applied after the read, so a full page would read up to 1 MB.
            PaginationConfig={"PageSize": QUERY_PAGE_SIZE},
        ):
            for item in page["Items"]:
                yield RunRecord.model_validate_json(str(item["record"]["S"]))

    def last_passing(
        self, source_db: str, *, data_as_of: datetime | None = None
    ) -> RunRecord | None:
        passing = self._newest_of(source_db, "verdict", Verdict.PASSED.value)
        return next((run for run in passing if holds_data_before(run, data_as_of)), None)

    def latest_report(self, source_db: str, *, excluding_run_id: str) -> ReportLink | None:
        published = []
        for run in self._newest_of(source_db, "state", RunState.FINISHED.value):
            if run.run_id != excluding_run_id and run.report_key and run.report_sha256:
                published.append(run)
                if len(published) == LATEST_REPORT_WINDOW:
                    break
        return latest_published(published)

    def last_drill(self, source_db: str, *, excluding_run_id: str) -> RunRecord | None:
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=BY_SOURCE_DB_INDEX,
            KeyConditionExpression="source_db = :db",
            ExpressionAttributeValues={":db": {"S": source_db}},
            ScanIndexForward=False,
            PaginationConfig={"PageSize": LAST_DRILL_PAGE_SIZE},
        ):
            for item in page["Items"]:
                run = RunRecord.model_validate_json(str(item["record"]["S"]))
                if run.run_id != excluding_run_id and counts_for_schedule(run):
                    return run
        return None

    def active_runs(self) -> list[RunRecord]:
        paginator = self._client.get_paginator("query")
        runs: list[RunRecord] = []
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=ACTIVE_INDEX,
            KeyConditionExpression="active = :active",
            ExpressionAttributeValues={":active": {"S": ACTIVE_MARK}},
        ):
            runs.extend(
                RunRecord.model_validate_json(str(item["record"]["S"])) for item in page["Items"]
            )
        return runs


# Drill slots are items of the run table keyed "slot#<n>": no run id has a "#", they carry neither
# "active" nor "source_db", so no index and no run query ever sees them.
SLOT_KEY_PREFIX = "slot#"
# The quotas DescribeAccountAttributes reports that admission reads (RDS API reference,
# AccountQuota): instances and storage bound a restore; clusters are read for the record.
ADMISSION_QUOTAS = frozenset({"DBInstances", "DBClusters", "AllocatedStorage"})


def _slot_key(slot: int) -> dict[str, Any]:
    return {"run_id": {"S": f"{SLOT_KEY_PREFIX}{slot}"}}


def _epoch(moment: datetime) -> str:
    return f"{moment.timestamp():.6f}"


class DynamoSlotStore:
    """The drill slots as leases in the run table; an admission writes its lease and its run
    record in one transaction, each under its own condition."""

    def __init__(self, client: DynamoDBClient, runs: DynamoRunStore, slots: int) -> None:
        self._client = client
        self._runs = runs
        self._slots = slots

    def leases(self) -> list[Lease]:
        keys = [_slot_key(slot) for slot in range(self._slots)]
        table = self._runs.table_name
        leases: list[Lease] = []
        request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = self._client.batch_get_item(RequestItems=request)
            leases.extend(
                Lease.model_validate_json(str(item["lease"]["S"]))
                for item in response["Responses"].get(table, [])
                if "lease" in item
            )
            request = dict(response.get("UnprocessedKeys") or {})
        return sorted(leases, key=lambda lease: lease.slot)

    def admit(self, run: RunRecord, expected_version: int, lease: Lease, now: datetime) -> bool:
        table = self._runs.table_name
        slot_item = {
            **_slot_key(lease.slot),
            "holder": {"S": lease.run_id},
            "lease_until": {"N": _epoch(lease.expires_at)},
            "lease": {"S": lease.model_dump_json()},
        }
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": slot_item,
                            "ConditionExpression": (
                                "attribute_not_exists(holder) OR holder = :run "
                                "OR lease_until < :now"
                            ),
                            "ExpressionAttributeValues": {
                                ":run": {"S": lease.run_id},
                                ":now": {"N": _epoch(now)},
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": table,
                            "Item": self._runs.item(run),
                            "ConditionExpression": "#version = :expected",
                            "ExpressionAttributeNames": {"#version": "version"},
                            "ExpressionAttributeValues": {
                                ":expected": {"N": str(expected_version)}
                            },
                        }
                    },
                ]
            )
        except ClientError as error:
            if _code(error) in ("TransactionCanceledException", "TransactionConflictException"):
                return False
            raise
        return True

    def release(self, lease: Lease) -> bool:
        try:
            self._client.delete_item(
                TableName=self._runs.table_name,
                Key=_slot_key(lease.slot),
                ConditionExpression="holder = :run AND lease_until = :until",
                ExpressionAttributeValues={
                    ":run": {"S": lease.run_id},
                    ":until": {"N": _epoch(lease.expires_at)},
                },
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _class_not_offered(rejected: EffectRejected, run: RunRecord) -> EffectRejected:
    """RDS's refusal of the instance class for this engine version (db.t4g.micro is not offered
    for old versions), with what to set instead."""
    engine = run.snapshot.engine
    version = run.snapshot.engine_version or "<version>"
    return EffectRejected(
        rejected.code,
        f"{rejected.message} {run.instance_class} is not offered for {engine} {version}: set "
        f"instance_class for {run.source_db} in the drill policy (or the stack's "
        f"DrillInstanceClass) to a class RDS offers for it, as listed by: aws rds "
        f"describe-orderable-db-instance-options --engine {engine} --engine-version {version} "
        f"--query 'OrderableDBInstanceOptions[].DBInstanceClass'",
    )


def _snapshot_info(found: Any, kind: str, *, encrypted: bool | None) -> SnapshotInfo:
    """A DB snapshot's or DB cluster snapshot's description (``kind``: ``DBSnapshot`` or
    ``DBClusterSnapshot``, the prefix of its identifier and ARN fields)."""
    arn = str(found.get(f"{kind}Arn", ""))
    arn_parts = arn.split(":")
    return SnapshotInfo(
        snapshot_id=str(found[f"{kind}Identifier"]),
        snapshot_arn=arn,
        snapshot_type=found.get("SnapshotType"),
        snapshot_created_at=found.get("SnapshotCreateTime"),
        engine=str(found.get("Engine", "")),
        engine_version=found.get("EngineVersion"),
        encrypted=encrypted,
        kms_key_id=found.get("KmsKeyId"),
        master_username=str(found.get("MasterUsername", "postgres")),
        allocated_storage_gib=found.get("AllocatedStorage"),
        storage_type=found.get("StorageType"),
        region=arn_parts[3] if len(arn_parts) > 4 else None,
        account_id=arn_parts[4] if len(arn_parts) > 4 else None,
    )


def _newest_available(snapshots: Iterator[Any], id_field: str) -> str | None:
    newest: tuple[datetime, str] | None = None
    for snapshot in snapshots:
        created = snapshot.get("SnapshotCreateTime")
        if snapshot.get("Status") != "available" or created is None:
            continue
        if newest is None or created > newest[0]:
            newest = (created, str(snapshot[id_field]))
    return newest[1] if newest else None


class RdsAdapter:
    def __init__(
        self,
        client: RDSClient,
        *,
        stack_name: str,
        db_subnet_group_name: str,
        security_group_id: str,
    ) -> None:
        self._rds = client
        self._stack = stack_name
        self._subnet_group = db_subnet_group_name
        self._security_group = security_group_id

    def _describe_instance(self, instance_id: str) -> dict[str, Any] | None:
        try:
            response = self._rds.describe_db_instances(DBInstanceIdentifier=instance_id)
        except ClientError as error:
            if _code(error) == "DBInstanceNotFound":
                return None
            raise
        instances = response.get("DBInstances", [])
        return dict(instances[0]) if instances else None

    def describe_source(self, instance_id: str) -> SourceDatabase | None:
        found = self._describe_instance(instance_id)
        if found is None:
            return None
        return SourceDatabase(
            instance_id=instance_id,
            engine=str(found.get("Engine", "")),
            tags=_tags(found.get("TagList")),
        )

    def describe_snapshot(self, snapshot_id: str) -> tuple[SnapshotInfo, str] | None:
        # Without a SnapshotType RDS returns automated and manual snapshots only; AWS Backup's
        # are of the type awsbackup (DescribeDBSnapshots, SnapshotType).
        name = snapshot_id.rsplit(":snapshot:", 1)[-1]
        kind = "awsbackup" if name.startswith("awsbackup:") else None
        try:
            response = (
                self._rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id, SnapshotType=kind)
                if kind
                else self._rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)
            )
        except ClientError as error:
            if _code(error) == "DBSnapshotNotFound":
                return None
            raise
        snapshots = response.get("DBSnapshots", [])
        if not snapshots:
            return None
        found = snapshots[0]
        info = _snapshot_info(found, "DBSnapshot", encrypted=found.get("Encrypted"))
        return info, str(found.get("DBInstanceIdentifier", ""))

    def latest_automated_snapshot(self, instance_id: str) -> str | None:
        paginator = self._rds.get_paginator("describe_db_snapshots")
        pages = paginator.paginate(DBInstanceIdentifier=instance_id, SnapshotType="automated")
        return _newest_available(
            (snapshot for page in pages for snapshot in page.get("DBSnapshots", [])),
            "DBSnapshotIdentifier",
        )

    def _view(self, found: dict[str, Any]) -> InstanceView:
        endpoint = found.get("Endpoint") or {}
        pending = found.get("PendingModifiedValues") or {}
        return InstanceView(
            instance_id=str(found["DBInstanceIdentifier"]),
            status=str(found.get("DBInstanceStatus", "unknown")),
            address=endpoint.get("Address"),
            port=endpoint.get("Port"),
            master_username=found.get("MasterUsername"),
            db_name=found.get("DBName"),
            tags=_tags(found.get("TagList")),
            pending_master_password="MasterUserPassword" in pending,
            cluster_id=found.get("DBClusterIdentifier"),
        )

    def describe_drill_instance(self, instance_id: str) -> InstanceView | None:
        found = self._describe_instance(instance_id)
        return self._view(found) if found is not None else None

    def _owned(self, run_id: str, instance_id: str) -> InstanceView | None:
        view = self.describe_drill_instance(instance_id)
        if view is not None and not view.owned_by(self._stack, run_id):
            raise NotOurInstance(f"{instance_id} does not carry this drill's ownership tags")
        return view

    def _restored_instance_settings(self, run: RunRecord) -> dict[str, Any]:
        """What every drill instance is restored with, from a snapshot or to a point in time:
        private, in the drill subnet group and security group, on the drill port, no backups,
        tagged as this stack's; encryption (and its KMS key) follows the backup's."""
        return {
            "DBInstanceClass": run.instance_class,
            "DBSubnetGroupName": self._subnet_group,
            "VpcSecurityGroupIds": [self._security_group],
            "PubliclyAccessible": False,
            "MultiAZ": False,
            "Port": DRILL_PORT,
            "EngineLifecycleSupport": ENGINE_LIFECYCLE_SUPPORT,
            "AutoMinorVersionUpgrade": False,
            "DeletionProtection": False,
            "CopyTagsToSnapshot": False,
            "BackupRetentionPeriod": 0,
            "Tags": [
                {"Key": OWNER_TAG, "Value": self._stack},
                {"Key": RUN_ID_TAG, "Value": run.run_id},
                {"Key": SOURCE_DB_TAG, "Value": run.source_db},
            ],
        }

    def restore(self, run: RunRecord) -> None:
        if run.point_in_time is not None:
            self._restore_to_point_in_time(run, run.point_in_time.restore_time)
            return
        try:
            self._rds.restore_db_instance_from_db_snapshot(
                DBInstanceIdentifier=run.instance_id,
                DBSnapshotIdentifier=run.snapshot.snapshot_id,
                **self._restored_instance_settings(run),
            )
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request("RestoreDBInstanceFromDBSnapshot", error) from None
        except ClientError as error:
            self._restore_refused(error, run)

    def _restore_to_point_in_time(self, run: RunRecord, restore_time: datetime) -> None:
        """RestoreDBInstanceToPointInTime to the time the drill asked for (never
        UseLatestRestorableTime: the RPO is measured against the time requested). The source is
        only read by RDS; nothing is asked of it."""
        try:
            self._rds.restore_db_instance_to_point_in_time(
                SourceDBInstanceIdentifier=run.source_db,
                TargetDBInstanceIdentifier=run.instance_id,
                RestoreTime=restore_time,
                **self._restored_instance_settings(run),
            )
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request("RestoreDBInstanceToPointInTime", error) from None
        except ClientError as error:
            self._restore_refused(error, run)

    @staticmethod
    def _restore_refused(error: ClientError, run: RunRecord) -> None:
        if _code(error) == "DBInstanceAlreadyExists":
            return  # an earlier attempt got through; the next observation checks its tags
        rejected = _rejected_or_raise(error)
        if rejected.code == "InvalidParameterCombination" and "DBInstanceClass" in (
            rejected.message
        ):
            raise _class_not_offered(rejected, run) from None
        raise rejected from None

    def describe_restorable_source(self, instance_id: str) -> RestorableSource | None:
        """The source of a point-in-time drill, with its LatestRestorableTime."""
        found = self._describe_instance(instance_id)
        return None if found is None else _restorable(instance_id, found, "DBInstanceArn")

    def set_master_password(self, run: RunRecord, password: str) -> None:
        if self._owned(run.run_id, run.instance_id) is None:
            raise EffectRejected("DBInstanceNotFound", f"{run.instance_id} is gone")
        try:
            self._rds.modify_db_instance(
                DBInstanceIdentifier=run.instance_id,
                MasterUserPassword=password,
                ApplyImmediately=True,
            )
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request("ModifyDBInstance", error) from None
        except ClientError as error:
            if _code(error) == "InvalidDBInstanceState":
                # A concurrent trigger's reset is under way; it sets this run's one password.
                current = self.describe_drill_instance(run.instance_id)
                if current is not None and current.status == RESETTING:
                    return
                raise TransientRdsState(f"{run.instance_id} cannot be modified now") from None
            # The request carried the password: never let the error's text travel further.
            raise _rejected_or_raise(error) from None

    def delete_drill_instance(self, run_id: str, instance_id: str) -> None:
        view = self._owned(run_id, instance_id)
        if view is None or view.status == "deleting":
            return
        # An Aurora instance has no snapshots or backups of its own: they are the cluster's.
        backups: dict[str, Any] = (
            {} if view.cluster_id else {"SkipFinalSnapshot": True, "DeleteAutomatedBackups": True}
        )
        try:
            self._rds.delete_db_instance(DBInstanceIdentifier=instance_id, **backups)
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request("DeleteDBInstance", error) from None
        except ClientError as error:
            if _code(error) in ("DBInstanceNotFound", "InvalidDBInstanceState"):
                return
            raise _rejected_or_raise(error) from None

    def account_quotas(self) -> list[AccountQuota]:
        try:
            response = self._rds.describe_account_attributes()
        except ClientError as error:
            raise _rejected_or_raise(error) from None
        return [
            AccountQuota(
                name=str(quota["AccountQuotaName"]),
                used=int(quota.get("Used", 0)),
                max=int(quota.get("Max", 0)),
            )
            for quota in response.get("AccountQuotas", [])
            if quota.get("AccountQuotaName") in ADMISSION_QUOTAS
        ]

    def list_drill_instances(self) -> list[InstanceView]:
        paginator = self._rds.get_paginator("describe_db_instances")
        views: list[InstanceView] = []
        for page in paginator.paginate():
            for found in page.get("DBInstances", []):
                view = self._view(dict(found))
                if (
                    view.instance_id.startswith(INSTANCE_PREFIX)
                    and view.tags.get(OWNER_TAG) == self._stack
                ):
                    views.append(view)
        return views

    # Aurora drills: the cluster restored from its snapshot, one instance created into it, the
    # cluster's password, and teardown of both.

    def describe_source_cluster(self, cluster_id: str) -> SourceDatabase | None:
        found = self._describe_cluster(cluster_id)
        if found is None:
            return None
        return SourceDatabase(
            instance_id=cluster_id,
            engine=str(found.get("Engine", "")),
            tags=_tags(found.get("TagList")),
        )

    def _describe_cluster(self, cluster_id: str) -> dict[str, Any] | None:
        try:
            response = self._rds.describe_db_clusters(DBClusterIdentifier=cluster_id)
        except ClientError as error:
            if _code(error) in ("DBClusterNotFoundFault", "DBClusterNotFound"):
                return None
            raise
        clusters = response.get("DBClusters", [])
        return dict(clusters[0]) if clusters else None

    def describe_cluster_snapshot(self, snapshot_id: str) -> tuple[SnapshotInfo, str] | None:
        try:
            response = self._rds.describe_db_cluster_snapshots(
                DBClusterSnapshotIdentifier=snapshot_id
            )
        except ClientError as error:
            if _code(error) in ("DBClusterSnapshotNotFoundFault", "DBClusterSnapshotNotFound"):
                return None
            raise
        snapshots = response.get("DBClusterSnapshots", [])
        if not snapshots:
            return None
        found = snapshots[0]
        info = _snapshot_info(found, "DBClusterSnapshot", encrypted=found.get("StorageEncrypted"))
        return info, str(found.get("DBClusterIdentifier", ""))

    def latest_automated_cluster_snapshot(self, cluster_id: str) -> str | None:
        paginator = self._rds.get_paginator("describe_db_cluster_snapshots")
        pages = paginator.paginate(DBClusterIdentifier=cluster_id, SnapshotType="automated")
        return _newest_available(
            (snapshot for page in pages for snapshot in page.get("DBClusterSnapshots", [])),
            "DBClusterSnapshotIdentifier",
        )

    def _cluster_view(self, found: dict[str, Any]) -> ClusterView:
        pending = found.get("PendingModifiedValues") or {}
        return ClusterView(
            cluster_id=str(found["DBClusterIdentifier"]),
            status=str(found.get("Status", "unknown")),
            address=found.get("Endpoint"),
            port=found.get("Port"),
            master_username=found.get("MasterUsername"),
            db_name=found.get("DatabaseName"),
            engine=found.get("Engine"),
            engine_version=found.get("EngineVersion"),
            members=tuple(
                str(member["DBInstanceIdentifier"]) for member in found.get("DBClusterMembers", [])
            ),
            tags=_tags(found.get("TagList")),
            pending_master_password="MasterUserPassword" in pending,
        )

    def describe_drill_cluster(self, cluster_id: str) -> ClusterView | None:
        found = self._describe_cluster(cluster_id)
        return self._cluster_view(found) if found is not None else None

    def _owned_cluster(self, run_id: str, cluster_id: str) -> ClusterView | None:
        view = self.describe_drill_cluster(cluster_id)
        if view is not None and not view.owned_by(self._stack, run_id):
            raise NotOurInstance(f"{cluster_id} does not carry this drill's ownership tags")
        return view

    def _drill_tags(self, run: RunRecord) -> list[Any]:
        return [
            {"Key": OWNER_TAG, "Value": self._stack},
            {"Key": RUN_ID_TAG, "Value": run.run_id},
            {"Key": SOURCE_DB_TAG, "Value": run.source_db},
        ]

    def _restored_cluster_settings(self, run: RunRecord) -> dict[str, Any]:
        """What every drill cluster is restored with, from a cluster snapshot or to a point in
        time: the drill subnet group and security group, the drill port, the least backup
        retention, the drill tags; the backup's engine version and KMS key; Serverless v2's
        capacity range when the drill has one."""
        options: dict[str, Any] = {}
        if run.acu_range is not None:
            options["ServerlessV2ScalingConfiguration"] = {
                "MinCapacity": run.acu_range[0],
                "MaxCapacity": run.acu_range[1],
            }
        if run.snapshot.kms_key_id:
            options["KmsKeyId"] = run.snapshot.kms_key_id
        return {
            "DBSubnetGroupName": self._subnet_group,
            "VpcSecurityGroupIds": [self._security_group],
            "Port": DRILL_PORT,
            "EngineLifecycleSupport": ENGINE_LIFECYCLE_SUPPORT,
            "DeletionProtection": False,
            "CopyTagsToSnapshot": False,
            # An Aurora cluster keeps at least one day of backups (0 is refused): the least.
            "BackupRetentionPeriod": 1,
            "Tags": self._drill_tags(run),
            **options,
        }

    def restore_cluster(self, run: RunRecord) -> None:
        assert run.cluster_id is not None
        operation = "RestoreDBClusterFromSnapshot"
        try:
            if run.point_in_time is not None:
                # The time asked for, never UseLatestRestorableTime (the RPO is measured
                # against it); the engine and its version are the source cluster's.
                operation = "RestoreDBClusterToPointInTime"
                self._rds.restore_db_cluster_to_point_in_time(
                    DBClusterIdentifier=run.cluster_id,
                    SourceDBClusterIdentifier=run.source_db,
                    RestoreType="full-copy",
                    RestoreToTime=run.point_in_time.restore_time,
                    **self._restored_cluster_settings(run),
                )
                return
            settings = self._restored_cluster_settings(run)
            if run.snapshot.engine_version:
                settings["EngineVersion"] = run.snapshot.engine_version
            self._rds.restore_db_cluster_from_snapshot(
                DBClusterIdentifier=run.cluster_id,
                SnapshotIdentifier=run.snapshot.snapshot_id,
                Engine=run.snapshot.engine,
                **settings,
            )
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request(operation, error) from None
        except ClientError as error:
            if _code(error) in ("DBClusterAlreadyExistsFault", "DBClusterAlreadyExists"):
                return  # an earlier attempt got through; the next observation checks its tags
            raise _rejected_or_raise(error) from None

    def describe_restorable_cluster(self, cluster_id: str) -> RestorableSource | None:
        """The source of an Aurora point-in-time drill, with its LatestRestorableTime."""
        found = self._describe_cluster(cluster_id)
        return None if found is None else _restorable(cluster_id, found, "DBClusterArn")

    def create_cluster_instance(self, run: RunRecord) -> None:
        assert run.cluster_id is not None
        if self._owned_cluster(run.run_id, run.cluster_id) is None:
            raise EffectRejected("DBClusterNotFoundFault", f"{run.cluster_id} is gone")
        try:
            self._rds.create_db_instance(
                DBInstanceIdentifier=run.instance_id,
                DBClusterIdentifier=run.cluster_id,
                DBInstanceClass=run.instance_class,
                Engine=run.snapshot.engine,
                PubliclyAccessible=False,
                AutoMinorVersionUpgrade=False,
                Tags=self._drill_tags(run),
            )
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request("CreateDBInstance", error) from None
        except ClientError as error:
            if _code(error) == "DBInstanceAlreadyExists":
                return
            rejected = _rejected_or_raise(error)
            if rejected.code == "InvalidParameterCombination" and "DBInstanceClass" in (
                rejected.message
            ):
                raise _class_not_offered(rejected, run) from None
            raise rejected from None

    def set_cluster_master_password(self, run: RunRecord, password: str) -> None:
        assert run.cluster_id is not None
        if self._owned_cluster(run.run_id, run.cluster_id) is None:
            raise EffectRejected("DBClusterNotFoundFault", f"{run.cluster_id} is gone")
        try:
            self._rds.modify_db_cluster(
                DBClusterIdentifier=run.cluster_id,
                MasterUserPassword=password,
                ApplyImmediately=True,
            )
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request("ModifyDBCluster", error) from None
        except ClientError as error:
            if _code(error) in ("InvalidDBClusterStateFault", "InvalidDBClusterState"):
                current = self.describe_drill_cluster(run.cluster_id)
                if current is not None and current.status == RESETTING:
                    return
                raise TransientRdsState(f"{run.cluster_id} cannot be modified now") from None
            # The request carried the password: never let the error's text travel further.
            raise _rejected_or_raise(error) from None

    def delete_drill_cluster(self, run_id: str, cluster_id: str) -> None:
        view = self._owned_cluster(run_id, cluster_id)
        if view is None or view.status == "deleting":
            return
        try:
            self._rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True)
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request("DeleteDBCluster", error) from None
        except ClientError as error:
            if _code(error) in ("DBClusterNotFoundFault", "DBClusterNotFound"):
                return
            if _code(error) in ("InvalidDBClusterStateFault", "InvalidDBClusterState"):
                # Its instance is still leaving the cluster: the next trigger tries again.
                raise TransientRdsState(f"{cluster_id} cannot be deleted yet") from None
            raise _rejected_or_raise(error) from None

    def offers_instance_class(self, engine: str, engine_version: str, instance_class: str) -> bool:
        try:
            response = self._rds.describe_orderable_db_instance_options(
                Engine=engine, EngineVersion=engine_version, DBInstanceClass=instance_class
            )
        except ClientError as error:
            raise _rejected_or_raise(error) from None
        return bool(response.get("OrderableDBInstanceOptions"))

    def list_drill_clusters(self) -> list[ClusterView]:
        paginator = self._rds.get_paginator("describe_db_clusters")
        views: list[ClusterView] = []
        for page in paginator.paginate():
            for found in page.get("DBClusters", []):
                view = self._cluster_view(dict(found))
                if (
                    view.cluster_id.startswith(INSTANCE_PREFIX)
                    and view.tags.get(OWNER_TAG) == self._stack
                ):
                    views.append(view)
        return views


def new_password() -> str:
    # RDS PostgreSQL: 8-128 printable characters without / " @; letters and digits suffice.
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(40))


class SsmPasswordVault:
    def __init__(self, client: SSMClient) -> None:
        self._ssm = client

    def get_or_create(self, name: str) -> str:
        password = new_password()
        try:
            self._ssm.put_parameter(
                Name=name,
                Value=password,
                Type="SecureString",
                Overwrite=False,
                Description="restoredrill: master password of one drill's throwaway instance",
            )
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request("PutParameter", error) from None
        except ClientError as error:
            if _code(error) != "ParameterAlreadyExists":
                raise _rejected_or_raise(error) from None
            stored = self._ssm.get_parameter(Name=name, WithDecryption=True)
            return str(stored["Parameter"]["Value"])
        return password

    def get(self, name: str) -> str | None:
        try:
            stored = self._ssm.get_parameter(Name=name, WithDecryption=True)
        except ClientError as error:
            if _code(error) == "ParameterNotFound":
                return None
            raise
        return str(stored["Parameter"]["Value"])

    def delete(self, name: str) -> None:
        try:
            self._ssm.delete_parameter(Name=name)
        except ClientError as error:
            if _code(error) != "ParameterNotFound":
                raise


class SqsPollQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def schedule(self, run_id: str, delay_seconds: int) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps({"run_id": run_id}),
            DelaySeconds=max(0, min(delay_seconds, 900)),
        )


class LambdaCheckerInvoker:
    def __init__(self, client: LambdaClient, function_name: str) -> None:
        self._lambda = client
        self._function = function_name

    def invoke(self, payload: dict[str, Any]) -> None:
        try:
            response = self._lambda.invoke(
                FunctionName=self._function,
                InvocationType="Event",
                Payload=json.dumps(payload).encode(),
            )
        except INVALID_REQUEST_ERRORS as error:
            raise _invalid_request("Invoke", error) from None
        except ClientError as error:
            raise _rejected_or_raise(error) from None
        if response.get("StatusCode") != 202:
            raise RuntimeError(f"checker invoke answered {response.get('StatusCode')}")


class LambdaSyncChecker:
    """Invokes the checker and waits for its answer (the client's read timeout must outlast it)."""

    def __init__(self, client: LambdaClient, function_name: str) -> None:
        self._lambda = client
        self._function = function_name

    def check(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = self._lambda.invoke(
            FunctionName=self._function,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload).encode(),
        )
        body = response["Payload"].read()
        answer = json.loads(body) if body else None
        if response.get("FunctionError"):
            error = answer if isinstance(answer, dict) else {}
            # The checker's own errors never quote its payload; keep only type and message.
            raise CheckerFailed(
                f"{error.get('errorType', 'Error')}: {error.get('errorMessage', 'no message')}"
            )
        if not isinstance(answer, dict):
            raise CheckerFailed("the checker returned no result")
        return answer


class S3ReportStore:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put(self, key: str, body: bytes, content_type: str) -> str:
        # S3 verifies the SHA-256 on receipt and keeps it with the object (a bucket with Object
        # Lock also requires an integrity checksum on every write).
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
        )
        return f"s3://{self._bucket}/{key}"


class S3CheckWorkStore:
    """A run's checks in rounds in the work bucket: ``checks/<run>/work.json.gz`` (gzip: a plan
    of 50,000 tables is several MB of JSON) and one object per claimed attempt at a round,
    written only if absent (S3 conditional writes), so that one trigger wins a round. And, kept
    across drills, ``coverage/<source>/<database>.json``: when each range was last verified."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    @staticmethod
    def _work_key(run_id: str) -> str:
        return f"checks/{run_id}/work.json.gz"

    @staticmethod
    def _claim_key(run_id: str, round_: int, attempt: int) -> str:
        return f"checks/{run_id}/round-{round_:05d}-attempt-{attempt}.json"

    def _get(self, key: str) -> bytes | None:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return response["Body"].read()

    def load(self, run_id: str) -> dict[str, Any] | None:
        body = self._get(self._work_key(run_id))
        if body is None:
            return None
        document: dict[str, Any] = json.loads(gzip.decompress(body))
        return document

    def save(self, run_id: str, document: dict[str, Any]) -> None:
        body = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)
        self._s3.put_object(
            Bucket=self._bucket,
            Key=self._work_key(run_id),
            Body=body,
            ContentType="application/json",
            ContentEncoding="gzip",
        )

    def claim(self, run_id: str, round_: int, attempt: int, tasks: dict[str, list[str]]) -> bool:
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self._claim_key(run_id, round_, attempt),
                Body=json.dumps(tasks).encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as error:
            # 412: the object exists (another trigger claimed the round); 409: a concurrent
            # conditional write to the same key is under way (it will win).
            code = error.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return False
            raise
        return True

    def claimed(self, run_id: str, round_: int, attempt: int) -> dict[str, list[str]] | None:
        body = self._get(self._claim_key(run_id, round_, attempt))
        if body is None:
            return None
        tasks: dict[str, list[str]] = json.loads(body)
        return tasks

    @staticmethod
    def _coverage_key(source_db: str, database: str) -> str:
        # A database name may hold any character but NUL: percent-encoded, it is one key part.
        return f"coverage/{quote(source_db, safe='')}/{quote(database, safe='')}.json"

    def load_coverage(self, source_db: str, database: str) -> dict[str, Any] | None:
        body = self._get(self._coverage_key(source_db, database))
        if body is None:
            return None
        document: dict[str, Any] = json.loads(body)
        return document

    def save_baseline(self, source_db: str, run_id: str, document: dict[str, Any]) -> str:
        key = f"baselines/{quote(source_db, safe='')}/{run_id}.json.gz"
        body = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ContentEncoding="gzip",
        )
        return key

    def load_baseline(self, key: str) -> dict[str, Any] | None:
        if not key.startswith("baselines/"):
            return None
        body = self._get(key)
        if body is None:
            return None
        document: dict[str, Any] = json.loads(gzip.decompress(body))
        return document

    def save_coverage(self, source_db: str, database: str, document: dict[str, Any]) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=self._coverage_key(source_db, database),
            Body=json.dumps(document).encode(),
            ContentType="application/json",
        )


class EventBridgeDrillEvents:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._events = client
        self._bus = bus_name

    def drill_finished(self, detail: dict[str, Any]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": "restoredrill",
                    "DetailType": "Drill Finished",
                    "Detail": json.dumps(detail),
                    "EventBusName": self._bus,
                    "Time": datetime.now(UTC),
                }
            ]
        )
        if response.get("FailedEntryCount", 0):
            failed = response["Entries"][0]
            code, message = failed.get("ErrorCode"), failed.get("ErrorMessage")
            raise RuntimeError(f"Drill Finished not published: {code} {message}")
