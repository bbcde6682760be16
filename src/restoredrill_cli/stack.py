"""The operator commands' adapter: the only module of the CLI that talks to AWS (boto3).

:class:`StackClient` reads and requests what an operator needs from one restoredrill stack: it
publishes Drill Requested on the stack's bus, reads run records from its table, lists opted-in
databases and reads reports from its bucket. AWS's errors leave this module as
:class:`StackError` (one readable line, exit status 2), never as botocore exceptions.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from pydantic import ValidationError
from restoredrill.adapters.aws import BY_SOURCE_DB_INDEX, DynamoRunStore, RdsAdapter
from restoredrill.domain.chain import StoredVersion, sha256_hex
from restoredrill.domain.drill import run_id_for
from restoredrill.domain.eligibility import DrillRejected, eligible_snapshot
from restoredrill.domain.point_in_time import restorable_snapshot
from restoredrill.ports.inbound_events import (
    DrillRequestedDetail,
    InvalidEvent,
    parse_drill_requested,
)
from restoredrill.ports.records import OWNER_TAG, RunRecord

from restoredrill_cli.target import (
    USABLE_STACK_STATES,
    CliError,
    SessionFactory,
    Target,
    TargetError,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# The local cloud accepts any credentials; these keep a real profile's from ever reaching it.
LOCAL_ACCESS_KEY_ID = "testing"
LOCAL_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - moto's placeholder, not a secret
# The CLI only reads run records; the retention only shapes the items DynamoRunStore writes.
_READ_ONLY_RETENTION_DAYS = 1
BATCH_GET_MAX_KEYS = 100
REQUESTED_BY_MAX_CHARS = 200
_ACCESS_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
_EXPIRED = ("ExpiredToken", "ExpiredTokenException", "RequestExpired")


class StackError(CliError):
    """An AWS call on the stack failed; the message says which and why."""


class OptedInDatabase(NamedTuple):
    db_id: str
    engine_version: str | None
    account_id: str | None
    region: str | None


@dataclass(frozen=True)
class StackDescription:
    """What CloudFormation says about a deployed stack."""

    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    account_id: str | None = None


def new_session(profile: str | None, region: str | None) -> boto3.session.Session:
    return boto3.session.Session(profile_name=profile, region_name=region)


def session_or_error(
    factory: SessionFactory, profile: str | None, region: str | None
) -> boto3.session.Session:
    try:
        return factory(profile, region)  # type: ignore[no-any-return]
    except ProfileNotFound:
        raise TargetError(f"no AWS profile {profile!r} in the AWS config files") from None
    except BotoCoreError as error:
        raise TargetError(f"cannot set up the AWS session: {error}") from None


@contextlib.contextmanager
def aws_errors(what: str, error_type: type[CliError] = StackError) -> Iterator[None]:
    """Turn botocore's exceptions into one readable line about ``what``."""
    try:
        yield
    except NoCredentialsError:
        raise error_type(
            f"{what}: no AWS credentials (give --profile, or set AWS_PROFILE or the AWS_* keys)"
        ) from None
    except PartialCredentialsError as error:
        raise error_type(f"{what}: incomplete AWS credentials ({error})") from None
    except NoRegionError:
        raise error_type(f"{what}: no region (give --region)") from None
    except EndpointConnectionError as error:
        raise error_type(f"{what}: cannot reach {error.kwargs.get('endpoint_url')}") from None
    except ClientError as error:
        details = error.response.get("Error", {})
        code, message = str(details.get("Code", "Unknown")), str(details.get("Message", ""))
        if code in _EXPIRED:
            raise error_type(f"{what}: the AWS credentials have expired ({message})") from None
        if code in _ACCESS_DENIED:
            raise error_type(f"{what}: access denied ({message})") from None
        raise error_type(f"{what}: {code}: {message}") from None
    except BotoCoreError as error:
        raise error_type(f"{what}: {error}") from None


def describe_stack(session: Any, stack_name: str, *, region: str) -> StackDescription:
    """The stack's status, Outputs and Parameters; a :class:`TargetError` if it is not usable."""
    where = f"stack {stack_name} ({region})"
    with aws_errors(f"cannot describe {where}", TargetError):
        try:
            response = session.client("cloudformation").describe_stacks(StackName=stack_name)
        except ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") == "ValidationError" and "does not exist" in str(
                details.get("Message", "")
            ):
                raise TargetError(
                    f"no stack {stack_name} in {region}: deploy it (sam deploy), or check "
                    "--config-env, --stack-name and --region"
                ) from None
            raise
    stacks = response.get("Stacks") or []
    if not stacks:
        raise TargetError(f"no stack {stack_name} in {region}")
    found = stacks[0]
    status = str(found.get("StackStatus", "UNKNOWN"))
    if status not in USABLE_STACK_STATES:
        raise TargetError(
            f"{where} is {status}, not ready to use (wanted one of "
            f"{', '.join(sorted(USABLE_STACK_STATES))})"
        )
    arn_parts = str(found.get("StackId", "")).split(":")
    return StackDescription(
        status=status,
        outputs={
            str(output["OutputKey"]): str(output.get("OutputValue", ""))
            for output in found.get("Outputs") or []
        },
        parameters={
            str(parameter["ParameterKey"]): str(
                parameter.get("ResolvedValue", parameter.get("ParameterValue", ""))
            )
            for parameter in found.get("Parameters") or []
        },
        account_id=arn_parts[4] if len(arn_parts) > 5 else None,
    )


def _record(item: dict[str, Any]) -> RunRecord:
    return RunRecord.model_validate_json(str(item["record"]["S"]))


def _newest_first(runs: list[RunRecord]) -> list[RunRecord]:
    return sorted(runs, key=lambda run: (run.created_at, run.run_id), reverse=True)


class StackClient:
    """One restoredrill stack, as the operator commands see it. Clients are made on first use."""

    def __init__(self, target: Target, *, session_factory: SessionFactory | None = None) -> None:
        self.target = target
        self._session_factory = session_factory or new_session
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._cluster_names: dict[str, bool] = {}  # source name -> is an Aurora DB cluster

    @property
    def _where(self) -> str:
        return f"stack {self.target.stack_name} ({self.target.region})"

    def _client(self, service: str) -> Any:
        found = self._clients.get(service)
        if found is not None:
            return found
        target = self.target
        if self._session is None:
            if target.is_local and target.profile is None:
                self._session = boto3.session.Session(
                    aws_access_key_id=LOCAL_ACCESS_KEY_ID,
                    aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
                    region_name=target.region,
                )
            else:
                self._session = session_or_error(
                    self._session_factory, target.profile, target.region
                )
        config = Config(
            retries={"mode": "standard", "max_attempts": 2 if target.is_local else 5},
            connect_timeout=5,
            read_timeout=30,
        )
        with aws_errors(f"cannot make a {service} client for {self._where}"):
            found = self._session.client(
                service, endpoint_url=target.endpoint_for(service), config=config
            )
        self._clients[service] = found
        return found

    def _run_store(self) -> DynamoRunStore:
        client: DynamoDBClient = self._client("dynamodb")
        return DynamoRunStore(client, self.target.run_table, _READ_ONLY_RETENTION_DAYS)

    # ------------------------------------------------------------------ requesting a drill

    def request_drill(
        self,
        db: str,
        snapshot_id: str | None = None,
        requested_by: str | None = None,
        *,
        point_in_time: bool = False,
    ) -> str:
        """Publish Drill Requested for ``db`` (or its snapshot ``snapshot_id``; or, with
        ``point_in_time``, the instance or cluster to its latest restorable time) on the stack's
        bus; the run id
        StartDrill will give the drill."""
        request_id = str(uuid.uuid4())
        cluster = self._names_a_cluster(db)
        try:
            detail = DrillRequestedDetail(
                db_instance_identifier=None if cluster else db,
                db_cluster_identifier=db if cluster else None,
                snapshot_id=snapshot_id,
                requested_by=requested_by[:REQUESTED_BY_MAX_CHARS] if requested_by else None,
                request_id=request_id,
                point_in_time=point_in_time,
            )
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
                for problem in error.errors()
            )
            raise CliError(f"cannot request a drill: {problems}") from None
        # (point_in_time: false is the default; left out, as earlier versions sent it)
        detail_json = detail.model_dump_json(exclude_none=True, exclude_defaults=True)
        # The run id comes from StartDrill's own parser of the event, so it is the one the
        # handler derives (from request_id, which this request always carries).
        try:
            request = parse_drill_requested(
                {
                    "version": "0",
                    "id": request_id,
                    "detail-type": "Drill Requested",
                    "source": "restoredrill",
                    "account": self.target.account_id or "000000000000",
                    "time": datetime.now(UTC).isoformat(),
                    "region": self.target.region,
                    "resources": [],
                    "detail": json.loads(detail_json),
                }
            )
        except InvalidEvent as error:
            raise CliError(f"cannot request a drill: {error}") from None
        run_id = run_id_for(request.idempotency_key)
        bus = self.target.bus_name
        with aws_errors(f"cannot publish Drill Requested on {bus} of {self._where}"):
            response = self._client("events").put_events(
                Entries=[
                    {
                        "Source": "restoredrill",
                        "DetailType": "Drill Requested",
                        "Detail": detail_json,
                        "EventBusName": bus,
                    }
                ]
            )
        if response.get("FailedEntryCount", 0):
            entry = (response.get("Entries") or [{}])[0]
            raise StackError(
                f"bus {bus} of {self._where} refused Drill Requested: "
                f"{entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )
        return run_id

    def _rds(self) -> RdsAdapter:
        return RdsAdapter(
            self._client("rds"),
            stack_name=self.target.stack_name,
            db_subnet_group_name="",
            security_group_id="",
        )

    def _names_a_cluster(self, db: str) -> bool:
        """``db`` is an Aurora DB cluster (and no DB instance has that name): its drill is a
        cluster drill. False when this caller may not describe RDS."""
        if db not in self._cluster_names:
            rds = self._rds()
            with aws_errors(f"cannot describe {db} in {self._where}"):
                try:
                    found = rds.describe_source(db) is None and (
                        rds.describe_source_cluster(db) is not None
                    )
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") not in _ACCESS_DENIED:
                        raise
                    found = False
            self._cluster_names[db] = found
        return self._cluster_names[db]

    def drill_problem(
        self, db: str, snapshot_id: str | None = None, *, point_in_time: bool = False
    ) -> str | None:
        """Why StartDrill would refuse to drill ``db`` (a DB instance or an Aurora DB cluster:
        not found, not PostgreSQL, not opted in, no snapshot, a snapshot of another database;
        to a point in time: no restorable time), by StartDrill's own rules; or None. None too
        when this caller may not describe RDS: the drill's own functions may, so the request is
        worth sending."""
        rds = self._rds()
        with aws_errors(f"cannot describe {db} in {self._where}"):
            try:
                if point_in_time:
                    cluster = self._names_a_cluster(db)
                    restorable_snapshot(rds, db, self.target.opt_in_tag, None, cluster=cluster)
                    return None
                eligible_snapshot(
                    rds,
                    source_db=db,
                    snapshot_id=snapshot_id,
                    opt_in_tag=self.target.opt_in_tag,
                    region=self.target.region,
                    cluster=self._names_a_cluster(db),
                )
            except DrillRejected as rejected:
                return str(rejected)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in _ACCESS_DENIED:
                    return None
                raise
        return None

    def caller(self) -> str:
        """Who is asking (the ARN of the credentials' principal), for the report's requested_by."""
        with aws_errors(f"cannot identify the caller for {self._where}"):
            return str(self._client("sts").get_caller_identity()["Arn"])

    # ------------------------------------------------------------------ run records

    def run(self, run_id: str) -> RunRecord | None:
        with aws_errors(f"cannot read run {run_id} of {self._where}"):
            return self._run_store().get(run_id)

    def active_runs(self) -> list[RunRecord]:
        """Unfinished runs, oldest first (from the sparse active-by-deadline index)."""
        with aws_errors(f"cannot list the active drills of {self._where}"):
            runs = self._run_store().active_runs()
        return sorted(runs, key=lambda run: (run.created_at, run.run_id))

    def runs_of(self, db: str, limit: int) -> list[RunRecord]:
        """The newest ``limit`` runs of one source database (by-source-db index), newest first."""
        runs: list[RunRecord] = []
        if limit <= 0:
            return runs
        with aws_errors(f"cannot list the drills of {db} in {self._where}"):
            paginator = self._client("dynamodb").get_paginator("query")
            for page in paginator.paginate(
                TableName=self.target.run_table,
                IndexName=BY_SOURCE_DB_INDEX,
                KeyConditionExpression="source_db = :db",
                ExpressionAttributeValues={":db": {"S": db}},
                ScanIndexForward=False,
                PaginationConfig={"PageSize": min(limit, 100)},
            ):
                runs.extend(_record(item) for item in page.get("Items", []))
                if len(runs) >= limit:
                    break
        return _newest_first(runs)[:limit]

    def recent_runs(self, limit: int) -> list[RunRecord]:
        """The newest ``limit`` finished runs of every database, newest first.

        No index orders every run by time, so this scans the keys and creation times only
        (finished runs, the ones without the active mark), then reads the newest records.
        """
        if limit <= 0:
            return []
        keys: list[tuple[str, str]] = []
        with aws_errors(f"cannot list the recent drills of {self._where}"):
            client = self._client("dynamodb")
            paginator = client.get_paginator("scan")
            for page in paginator.paginate(
                TableName=self.target.run_table,
                ProjectionExpression="run_id, created_at",
                # Finished runs only: drill slots ("slot#<n>") carry no record.
                FilterExpression="attribute_not_exists(active) AND attribute_exists(#record)",
                ExpressionAttributeNames={"#record": "record"},
            ):
                keys.extend(
                    (str(item["created_at"]["S"]), str(item["run_id"]["S"]))
                    for item in page.get("Items", [])
                )
            newest = [run_id for _, run_id in sorted(keys, reverse=True)[:limit]]
            runs = self._batch_get(client, newest)
        return _newest_first(runs)

    def _batch_get(self, client: Any, run_ids: list[str]) -> list[RunRecord]:
        table = self.target.run_table
        found: list[RunRecord] = []
        for start in range(0, len(run_ids), BATCH_GET_MAX_KEYS):
            keys = [
                {"run_id": {"S": run_id}} for run_id in run_ids[start : start + BATCH_GET_MAX_KEYS]
            ]
            request: dict[str, Any] = {table: {"Keys": keys}}
            while request:
                response = client.batch_get_item(RequestItems=request)
                found.extend(_record(item) for item in response["Responses"].get(table, []))
                request = response.get("UnprocessedKeys") or {}
        return found

    # ------------------------------------------------------------------ databases

    def opted_in_databases(self) -> list[OptedInDatabase]:
        """RDS PostgreSQL instances and Aurora PostgreSQL clusters carrying the stack's opt-in
        tag (drill instances and clusters excluded)."""
        found = self._opted_in_instances() + self._opted_in_clusters()
        return sorted(found)

    def _opted_in_clusters(self) -> list[OptedInDatabase]:
        key, value = self.target.opt_in_tag
        found: list[OptedInDatabase] = []
        with aws_errors(f"cannot list the Aurora DB clusters of {self._where}"):
            paginator = self._client("rds").get_paginator("describe_db_clusters")
            for page in paginator.paginate():
                for cluster in page.get("DBClusters", []):
                    tags = {
                        str(tag["Key"]): str(tag.get("Value", ""))
                        for tag in cluster.get("TagList") or []
                    }
                    if (
                        cluster.get("Engine") != "aurora-postgresql"
                        or OWNER_TAG in tags
                        or tags.get(key) != value
                    ):
                        continue
                    arn = str(cluster.get("DBClusterArn", "")).split(":")
                    found.append(
                        OptedInDatabase(
                            db_id=str(cluster["DBClusterIdentifier"]),
                            engine_version=cluster.get("EngineVersion"),
                            account_id=arn[4] if len(arn) > 5 else self.target.account_id,
                            region=arn[3] if len(arn) > 5 else self.target.region,
                        )
                    )
        return found

    def _opted_in_instances(self) -> list[OptedInDatabase]:
        key, value = self.target.opt_in_tag
        found: list[OptedInDatabase] = []
        with aws_errors(f"cannot list the RDS instances of {self._where}"):
            paginator = self._client("rds").get_paginator("describe_db_instances")
            for page in paginator.paginate():
                for instance in page.get("DBInstances", []):
                    tags = {
                        str(tag["Key"]): str(tag.get("Value", ""))
                        for tag in instance.get("TagList") or []
                    }
                    if (
                        not str(instance.get("Engine", "")).startswith("postgres")
                        or OWNER_TAG in tags
                        or tags.get(key) != value
                    ):
                        continue
                    arn = str(instance.get("DBInstanceArn", "")).split(":")
                    found.append(
                        OptedInDatabase(
                            db_id=str(instance["DBInstanceIdentifier"]),
                            engine_version=instance.get("EngineVersion"),
                            account_id=arn[4] if len(arn) > 5 else self.target.account_id,
                            region=arn[3] if len(arn) > 5 else self.target.region,
                        )
                    )
        return found

    # ------------------------------------------------------------------ reports

    def report_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` in the stack's report bucket, in S3's (lexical) order."""
        bucket = self.target.report_bucket
        keys: list[str] = []
        with aws_errors(f"cannot list s3://{bucket}/{prefix}"):
            paginator = self._client("s3").get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(str(item["Key"]) for item in page.get("Contents", []))
        return keys

    def report_history(self, prefix: str) -> dict[str, list[StoredVersion]]:
        """Every version of each key under ``prefix`` that has more than one, oldest first, with
        the digest of its bytes (the bucket is versioned: an overwrite keeps the original)."""
        bucket = self.target.report_bucket
        found: dict[str, list[tuple[str, str]]] = {}
        with aws_errors(f"cannot list the versions under s3://{bucket}/{prefix}"):
            s3 = self._client("s3")
            paginator = s3.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    found.setdefault(str(version["Key"]), []).append(
                        (str(version["LastModified"].isoformat()), str(version["VersionId"]))
                    )
            history: dict[str, list[StoredVersion]] = {}
            for key, versions in found.items():
                if len(versions) < 2:
                    continue
                history[key] = [
                    StoredVersion(
                        version_id=version_id,
                        written_at=written_at,
                        sha256=sha256_hex(
                            s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)[
                                "Body"
                            ].read()
                        ),
                    )
                    for written_at, version_id in sorted(versions)
                ]
        return history

    def report_bytes(self, key: str) -> bytes:
        bucket = self.target.report_bucket
        with aws_errors(f"cannot read s3://{bucket}/{key}"):
            try:
                response = self._client("s3").get_object(Bucket=bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    raise StackError(f"no report at s3://{bucket}/{key}") from None
                raise
            body: bytes = response["Body"].read()
        return body
