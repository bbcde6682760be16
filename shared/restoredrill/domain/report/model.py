"""The drill report and the Drill Finished event, as models: the report builder and the event's
builder write them, the HTML page and the Slack notifier read them, and the published JSON
Schema of the report is generated from :class:`DrillReport` (``scripts/generate-schemas.py``;
``tests/unit/test_report_schema.py`` fails when the checked-in schema drifts from the model).

Timestamps are written as Python's ``isoformat()`` writes them (``+00:00``), as reports of
earlier versions were.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from restoredrill.ports.messages import CheckStatus, CheckSuiteResult
from restoredrill.ports.records import Verdict

REPORT_SCHEMA_VERSION = "1.6"
REPORT_SCHEMA_ID = f"urn:restoredrill:schema:drill-report:{REPORT_SCHEMA_VERSION}"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REPORT_KIND = "restoredrill.drill-report"
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
RUN_ID_PATTERN = r"^[0-9a-f]{20}$"
REPORT_KEY_PATTERN = r"^reports/[^/]+/[^/]+/[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9a-f]{20}\.json$"
HTML_KEY_PATTERN = r"^reports/[^/]+/[^/]+/[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9a-f]{20}\.html$"
CONSOLE_URL_PATTERN = r"^https://[a-z0-9.-]+/s3/object/"

# The S3 console's host in each partition: the standard partition's console is regional.
CONSOLE_HOSTS = {
    "aws": "{region}.console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def _isoformat(moment: datetime) -> str:
    return moment.isoformat()


Timestamp = Annotated[
    AwareDatetime,
    PlainSerializer(_isoformat, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": TIMESTAMP_PATTERN,
            "format": "date-time",
            "description": "ISO 8601 / RFC 3339 with a UTC offset.",
        }
    ),
]
Seconds = Annotated[float, Field(ge=0)]


def s3_console_url(bucket: str, key: str, region: str, partition: str = "aws") -> str | None:
    """The S3 console's page of one object, e.g. ``https://us-east-1.console.aws.amazon.com/s3/
    object/<bucket>?region=us-east-1&bucketType=general&prefix=<key, URL-encoded>``. None in a
    partition whose console this does not know."""
    host = CONSOLE_HOSTS.get(partition)
    if host is None:
        return None
    return (
        f"https://{host.format(region=region)}/s3/object/{quote(bucket, safe='')}"
        f"?region={quote(region, safe='')}&bucketType=general&prefix={quote(key, safe='')}"
    )


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


# ------------------------------------------------------------------------------ the report


class ReportRun(_Document):
    """The drill run: its id, what started it and when."""

    run_id: str = Field(
        pattern=RUN_ID_PATTERN,
        description=(
            "Derived from what triggered the drill (one run per snapshot event or per request); "
            "the restored instance is restoredrill-<run id>."
        ),
    )
    trigger: str = Field(
        min_length=1,
        description=(
            "What started the drill: 'RDS-EVENT-0091 automated snapshot created' (the automated "
            "snapshot event) or 'Drill Requested' (a request published on the drill bus)."
        ),
    )
    requested_by: str | None = Field(
        description=(
            "Who asked for the drill, as the Drill Requested event named them. Null when the "
            "drill was started by an automated snapshot event, or the request named nobody."
        )
    )
    created_at: Timestamp = Field(description="When the run was created.")
    finished_at: Timestamp = Field(
        description=(
            "When the drill was over: the restored instance gone (or never created) and the "
            "verdict final."
        )
    )
    deadline: Timestamp = Field(description="After this the drill is torn down as TIMED_OUT.")


class ReportSource(_Document):
    """The database whose backup was drilled."""

    db_instance_identifier: str = Field(min_length=1)
    engine: str = Field(min_length=1, description="As RDS names it (postgres).")
    engine_version: str | None = Field(
        min_length=1,
        description=(
            "The engine version of the snapshot (the source's at snapshot time). Null only when "
            "RDS did not report it."
        ),
    )
    region: str | None = Field(
        pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]+$",
        description=(
            "The AWS region of the snapshot, from its ARN. Null only when the ARN did not name one."
        ),
    )
    account_id: str | None = Field(
        pattern=r"^[0-9]{12}$",
        description=(
            "The AWS account of the snapshot, from its ARN. Null only when the ARN did not name "
            "one."
        ),
    )


class ReportSnapshot(_Document):
    """The backup under test, as RDS described it when the drill started."""

    snapshot_id: str = Field(min_length=1)
    snapshot_arn: str = Field(pattern=r"^arn:aws[a-z-]*:rds:")
    snapshot_type: str | None = Field(
        description="automated, manual, ... Null only when RDS did not report it."
    )
    created_at: Timestamp | None = Field(
        description=(
            "When the snapshot was taken (the reference time of the freshness checks). Null "
            "while RDS had not yet reported it (a snapshot still being created)."
        )
    )
    encrypted: bool | None = Field(
        description="Whether the snapshot is encrypted. Null only when RDS did not report it."
    )
    kms_key_id: str | None = Field(
        min_length=1,
        description=(
            "The KMS key that encrypts the snapshot. Null when the snapshot is not encrypted."
        ),
    )
    allocated_storage_gib: int | None = Field(
        ge=0, description="Storage of the snapshot in GiB. Null only when RDS did not report it."
    )


class ReportRecoveryPoint(_Document):
    """The AWS Backup recovery point the drill restored, as its Backup Job (or Copy Job) State
    Change event described it. For RDS and Aurora it is the snapshot under `snapshot`."""

    kind: Literal["backup", "copy"] = Field(
        description=(
            "backup: made by a backup job; copy: a copy job's copy of a recovery point, in the "
            "destination vault (possibly in another Region or account)."
        )
    )
    recovery_point_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:rds:", description="The recovery point (the snapshot's ARN)."
    )
    vault_name: str | None = Field(
        description="The backup vault holding it (a copy's destination vault). Null when unknown."
    )
    vault_arn: str | None = Field(description="The vault's ARN. Null when unknown.")
    backup_job_id: str | None = Field(
        description=(
            "The backup job that made it (for a copy, the job whose recovery point was copied, "
            "when AWS Backup said). Null when unknown."
        )
    )
    copy_job_id: str | None = Field(description="The copy job that made it. Null for a backup.")
    backup_plan_id: str | None = Field(
        description="The backup plan that started the job. Null for an on-demand job."
    )
    resource_arn: str | None = Field(
        description="The database that was backed up. Null when the event did not name it."
    )
    source_recovery_point_arn: str | None = Field(
        description="A copy's original recovery point. Null for a backup or when unknown."
    )
    source_region: str | None = Field(
        description="The Region a copy was made from. Null for a backup or when unknown."
    )
    opted_in_by: str | None = Field(
        description=(
            "Why it was drilled: the source's opt-in tag, or its vault or backup plan listed in "
            "the stack's configuration. Null only in a run recorded without it."
        )
    )


class ReportRestoredInstance(_Document):
    """The throwaway instance the snapshot was restored into."""

    db_instance_identifier: str = Field(pattern=r"^restoredrill-")
    instance_class: str = Field(pattern=r"^db\.")
    deleted: bool = Field(
        description=(
            "True when the report was written: it is written only once the instance is gone (or "
            "was never created)."
        )
    )


class ReportTopologyInstance(_Document):
    db_instance_identifier: str = Field(pattern=r"^restoredrill-")
    instance_class: str = Field(pattern=r"^db\.")
    role: Literal["instance", "writer"] = Field(
        description="instance: a DB instance restored on its own; writer: an Aurora cluster's."
    )


class ReportTopology(_Document):
    """What the drill restored: a DB instance from a DB snapshot, or an Aurora DB cluster from a
    cluster snapshot with one instance created into it."""

    kind: Literal["db-instance", "aurora-cluster"]
    engine: str = Field(min_length=1, description="As RDS names it (postgres, aurora-postgresql).")
    engine_version: str | None = Field(
        min_length=1, description="The snapshot's engine version. Null only when RDS did not say."
    )
    db_cluster_identifier: str | None = Field(
        pattern=r"^restoredrill-",
        description="The restored cluster. Null exactly when kind is db-instance.",
    )
    instances: list[ReportTopologyInstance] = Field(min_length=1)
    serverless_v2_min_acu: float | None = Field(
        ge=0,
        description=(
            "The cluster's Aurora Serverless v2 capacity range, lower end in ACUs. Null unless "
            "its instance is db.serverless."
        ),
    )
    serverless_v2_max_acu: float | None = Field(
        ge=0,
        description=(
            "The cluster's Aurora Serverless v2 capacity range, upper end in ACUs. Null unless "
            "its instance is db.serverless."
        ),
    )
    cluster_restore_seconds: Seconds | None = Field(
        description=(
            "From the restore request until the cluster was seen available. Null for a "
            "db-instance, or when the cluster never became available."
        )
    )
    instance_create_seconds: Seconds | None = Field(
        description=(
            "From the cluster seen available until its instance was (the rest of the RTO). "
            "Null for a db-instance, or when the instance never became available."
        )
    )


class ReportPhase(_Document):
    phase: Literal["request", "restore", "secure", "check", "teardown"] = Field(
        description=(
            "request: from the trigger to the restore call; restore: until the instance is "
            "available (the RTO); secure: a fresh master password; check: the check suite; "
            "teardown: until the instance is gone."
        )
    )
    started_at: Timestamp
    ended_at: Timestamp | None = Field(
        description="Null only for a phase that never ended (not expected in a finished drill)."
    )
    seconds: Seconds | None = Field(
        description="ended_at - started_at; null when ended_at is null."
    )


class ReportTimings(_Document):
    """Each phase the drill went through, in order, with its start, end and duration."""

    phases: list[ReportPhase] = Field(min_length=1)
    restore_seconds: Seconds | None = Field(
        description="Same as recovery.rto_seconds (kept from version 1.0); null when it is null."
    )
    total_seconds: Seconds | None = Field(
        description=(
            "From the run's creation until it finished. Null only if the run has no finish time."
        )
    )


class RpoMeasurement(_Document):
    """The freshness check that gave the measured RPO."""

    seconds: Seconds = Field(description="Same as recovery.rpo_seconds.")
    check: str = Field(
        pattern=r"^freshness",
        description="The freshness check, named for people: freshness[<database>/<rule>].",
    )
    column: str | None = Field(
        description=(
            'The column whose newest value was measured ("schema"."table"."column"); null only '
            "if the check's evidence did not name it."
        )
    )
    newest: str | None = Field(
        description=(
            "Its newest value, as the server printed it; null only if the evidence did not hold it."
        )
    )
    reference: str | None = Field(
        description=(
            "The time it was compared with, as the server printed it; null only if the evidence "
            "did not hold it."
        )
    )
    reference_is: str | None = Field(
        description=(
            "What that reference is: 'snapshot time', or 'server now()' when the snapshot time "
            "was unknown; null only if the evidence did not say."
        )
    )


class ReportRecovery(_Document):
    """What the drill measured of recovery: time to restore (RTO) and the age of the restored
    data (RPO)."""

    rto_seconds: Seconds | None = Field(
        description=(
            "Measured RTO: seconds from the restore request until RDS reported the restored "
            "instance available. Null when the restore never became available (it failed, was "
            "refused, or the drill timed out or broke before)."
        )
    )
    rpo_seconds: Seconds | None = Field(
        description=(
            "Measured RPO: the largest age, among the freshness checks, of the newest value of a "
            "timestamp column relative to the snapshot time (evidence.rpo_s of the `freshness` "
            "checks; a newest value after the snapshot counts as 0). Null when no freshness rule "
            "ran (none in the policy, a level below 2, or no checks ran) or none could measure "
            "an age (empty table, missing column, error, skipped for the time budget)."
        )
    )
    rpo_measured_by: RpoMeasurement | None = Field(
        description=(
            "The freshness check that gave rpo_seconds. Null exactly when rpo_seconds is null."
        )
    )
    freshness_checks: int = Field(
        ge=0, description="How many freshness checks ran (one per freshness rule)."
    )


class ReportPointInTime(_Document):
    """A point-in-time drill: the database was restored from its automated backup and
    transaction logs to a time requested (RestoreDBInstanceToPointInTime), not from a snapshot.
    Its RPO is the gap between the requested time and the newest data found in the restored
    database: data up to the requested time being there shows that the logs replayed."""

    requested_time: Timestamp = Field(
        description=(
            "The RestoreTime asked for: the source's LatestRestorableTime when the drill "
            "started (also snapshot.created_at, the freshness checks' reference)."
        )
    )
    newest_data: str | None = Field(
        description=(
            "The newest value the freshness checks found in the restored database, as the "
            "server printed it. Null when no freshness check measured one (the restore failed, "
            "no checks ran, or the tables were empty)."
        )
    )
    rpo_seconds: Seconds | None = Field(
        description=(
            "Seconds from the newest data found to the requested time (0 when the newest data "
            "is at or after it). Null exactly when newest_data is null."
        )
    )
    max_rpo_seconds: Seconds | None = Field(
        description=(
            "The policy's pitr.max_rpo: a larger RPO fails the drill. Null when the policy "
            "sets none."
        )
    )


class FailedCheckSummary(_Document):
    name: str
    status: Literal["fail", "error"]
    message: str | None = Field(description="The check's message; null when it had none.")


class CheckSummary(_Document):
    """Counts of checks per status and the checks that failed or could not run."""

    total: int = Field(ge=0)
    by_status: dict[CheckStatus, Annotated[int, Field(ge=1)]]
    failed: list[FailedCheckSummary]


class PreviousReport(_Document):
    """The previous published report of this database."""

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    key: str = Field(pattern=r"^reports/.+\.json$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ReportChain(_Document):
    """Tamper evidence: this report's link to the previous report of the same database (region
    and DB instance identifier). `restoredrill verify-chain DB` recomputes the SHA-256 of each
    stored report and follows the links."""

    algorithm: Literal["sha256"] = Field(
        description="The digest over the previous report's stored bytes."
    )
    previous: PreviousReport | None = Field(
        description="The previous published report of this database; null for its first report."
    )


class ReportLocation(_Document):
    """Where this report is stored, and the S3 console's pages of it and of its HTML page."""

    bucket: str = Field(min_length=1)
    key: str = Field(pattern=REPORT_KEY_PATTERN)
    html_key: str = Field(
        pattern=HTML_KEY_PATTERN,
        description="The self-contained HTML rendering of this report, stored beside it.",
    )
    console_url: str | None = Field(
        pattern=CONSOLE_URL_PATTERN,
        description=(
            "The S3 console's page of this report (in the report's region), one click from "
            "Slack. Null only when the report's partition has no console this knows of."
        ),
    )
    html_console_url: str | None = Field(
        pattern=CONSOLE_URL_PATTERN,
        description=(
            "The S3 console's page of the HTML rendering. Null exactly when console_url is null."
        ),
    )


class InstanceUsage(_Document):
    """The restored instance: billed per second from available until deleted, 10 minutes at
    least."""

    instance_class: str = Field(pattern=r"^db\.")
    seconds: Seconds = Field(
        description=(
            "From available (the secure phase's start) until deleted; 0 when never available."
        )
    )
    billed_seconds: Seconds = Field(
        description="seconds, raised to RDS's 10-minute minimum (0 when seconds is 0)."
    )
    price_per_hour: Annotated[float, Field(ge=0)] | None = Field(
        description="On-demand USD per hour of the class; null when the price table has none."
    )
    usd: Annotated[float, Field(ge=0)] | None = Field(
        description="billed_seconds / 3600 x price_per_hour; null when the price is missing."
    )


class StorageUsage(_Document):
    """The restored volume: the snapshot's allocated storage and storage type."""

    storage_type: str = Field(
        min_length=1, description="The snapshot's storage type (gp2 when RDS did not say)."
    )
    allocated_gib: int = Field(ge=0)
    seconds: Seconds = Field(
        description="From the restore request until the instance was gone (conservative)."
    )
    gib_seconds: Seconds = Field(description="allocated_gib x seconds.")
    price_per_gib_month: Annotated[float, Field(ge=0)] | None = Field(
        description="USD per GiB-month of the storage type; null when the price table has none."
    )
    usd: Annotated[float, Field(ge=0)] | None = Field(
        description=(
            "gib_seconds / (730 h x 3600) x price_per_gib_month; null when the price is missing."
        )
    )


class LambdaUsage(_Document):
    """The drill's Lambda invocations, estimated from its timeline (not measured)."""

    requests: int = Field(ge=0)
    gb_seconds: Seconds
    price_per_gb_second: Annotated[float, Field(ge=0)]
    price_per_million_requests: Annotated[float, Field(ge=0)]
    usd: Annotated[float, Field(ge=0)]
    basis: str = Field(min_length=1, description="How requests and GB-seconds were estimated.")


class PriceBasis(_Document):
    """Which prices the estimate used."""

    table: str = Field(min_length=1, description="The price table shipped with restoredrill.")
    region: str = Field(min_length=1, description="The region whose list prices the table has.")
    as_of: str = Field(min_length=1, description="When the table's prices were read.")
    note: str = Field(min_length=1, description="What the prices are, and what they leave out.")
    overridden_by_policy: bool = Field(
        description="True when the drill policy's `prices` replaced some of the table's."
    )
    policy_source: str | None = Field(
        description="Where the policy says its prices come from; null when it does not say."
    )


class ReportCost(_Document):
    """The estimated cost of this drill at on-demand list prices: an estimate, not a bill."""

    estimate: Literal[True] = Field(description="Always true: list prices, not the bill.")
    currency: Literal["USD"]
    total_usd: Annotated[float, Field(ge=0)] = Field(
        description="The sum of the lines whose price is known."
    )
    complete: bool = Field(description="False when a price was missing (see missing_prices).")
    missing_prices: list[str] = Field(
        description="The price table entries the estimate needed and did not find."
    )
    instance: InstanceUsage
    storage: StorageUsage
    lambda_invocations: LambdaUsage
    prices: PriceBasis


# The rules between fields that one field's model cannot say.
REPORT_RULES: list[dict[str, Any]] = [
    {
        "if": {"properties": {"verdict": {"const": "PASSED"}}},
        "then": {
            "properties": {
                "reason": {"type": "null"},
                "checks": {"type": "object"},
                "recovery": {"properties": {"rto_seconds": {"type": "number"}}},
            }
        },
        "else": {"properties": {"reason": {"type": "string"}}},
    },
    {
        "if": {"properties": {"checks": {"type": "null"}}},
        "then": {"properties": {"check_summary": {"type": "null"}}},
        "else": {"properties": {"check_summary": {"type": "object"}}},
    },
    {
        "if": {"properties": {"recovery": {"properties": {"rpo_seconds": {"type": "null"}}}}},
        "then": {"properties": {"recovery": {"properties": {"rpo_measured_by": {"type": "null"}}}}},
        "else": {
            "properties": {"recovery": {"properties": {"rpo_measured_by": {"type": "object"}}}}
        },
    },
]


def _with_rules(schema: dict[str, Any]) -> None:
    schema["allOf"] = REPORT_RULES


class DrillReport(_Document):
    """The audit evidence of one restore drill: which backup was restored, where, by whom or
    what, how long the restore took (measured RTO), how fresh the restored data was (measured
    RPO), every check with its evidence, the verdict and why. One report per run, written to
    s3://BUCKET/reports/<region>/<database>/<yyyy>/<mm>/<dd>/<run id>.json when the drill
    finishes, after the restored instance was deleted. Every field is present in every report; a
    field that does not apply is null, and its description says when. Version 1.1 adds
    `recovery` and `check_summary` to 1.0 and guarantees every check carries its message and
    evidence. Version 1.2 adds `chain` (the SHA-256 of the previous report of the same database)
    and the HTML report's key in `location`. Version 1.3 is generated from the code's model: it
    adds the S3 console's pages of the report and of its HTML page in `location`
    (`console_url`, `html_console_url`) and describes the check suite and its baseline field by
    field. Version 1.4 adds `cost`, the drill's estimated cost at on-demand list prices.
    Version 1.5 adds `topology`: what was restored (a DB instance, or an Aurora cluster with its
    instance) and, for a cluster, the restore time split into the cluster's restore and the
    instance's creation. Version 1.6 adds `point_in_time`: for a point-in-time drill, the time
    requested, the newest data found and the RPO between them; and `recovery_point`: the AWS
    Backup recovery point a drill of one restored (its vault, jobs and backup plan), null for any
    other drill."""

    model_config = ConfigDict(title="restoredrill drill report", json_schema_extra=_with_rules)

    schema_version: Literal["1.6"] = Field(
        description="The version of this schema the report follows (the end of `$id`)."
    )
    kind: Literal["restoredrill.drill-report"]
    run: ReportRun
    verdict: Verdict = Field(
        description=(
            "PASSED: restored and every check passed. FAILED: the backup or its data is bad (the "
            "restore failed or was refused for the snapshot, or a check failed). ERROR: the drill "
            "itself broke (permissions, network, configuration, the checker). TIMED_OUT: the "
            "deadline passed; everything was torn down anyway."
        )
    )
    reason: str | None = Field(
        min_length=1,
        description=(
            "Why the verdict is not PASSED (the failed checks, the restore status, the refusal, "
            "the deadline). Null exactly when the verdict is PASSED."
        ),
    )
    source: ReportSource
    snapshot: ReportSnapshot
    recovery_point: ReportRecoveryPoint | None = Field(
        description=(
            "The AWS Backup recovery point restored, when the drill was started by a Backup Job "
            "or Copy Job State Change. Null for any other drill."
        )
    )
    restored_instance: ReportRestoredInstance
    topology: ReportTopology
    timings: ReportTimings
    recovery: ReportRecovery
    point_in_time: ReportPointInTime | None = Field(
        description=(
            "The point-in-time restore (requested time, newest data found, RPO). Null when the "
            "drill restored a snapshot."
        )
    )
    policy: dict[str, Any] = Field(
        description=(
            "The drill policy used (policy/drill-policy.yaml for this database over the "
            "defaults, fully resolved): levels, thresholds, freshness rules, assertions, time "
            "budget. Described key by key in policies/example.yaml."
        )
    )
    checks: CheckSuiteResult | None = Field(
        description=(
            "The check suite's result, whole (expanded when it travelled compressed): every "
            "check with its evidence, the suite's verdict, and the baseline the next drill "
            "compares against. Null when no check ran: the restore failed, was refused or timed "
            "out, or the checker itself failed."
        )
    )
    check_summary: CheckSummary | None = Field(
        description=(
            "Counts of checks per status and the checks that failed or could not run. Null "
            "exactly when checks is null."
        )
    )
    chain: ReportChain
    location: ReportLocation
    cost: ReportCost = Field(
        description=(
            "The drill's estimated cost: instance-seconds by class, the restored volume's "
            "GiB-seconds by storage type, and its Lambda invocations (estimated), at the list "
            "prices shipped with restoredrill or the policy's `prices`."
        )
    )


class ReportSchemaGenerator(GenerateJsonSchema):
    """Draft 2020-12 with the report's ``$id``; property titles left out (the names say it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def generate(self, schema: Any, mode: Any = "validation") -> JsonSchemaValue:
        generated = super().generate(schema, mode=mode)
        return {"$schema": JSON_SCHEMA_DIALECT, "$id": REPORT_SCHEMA_ID, **generated}


def generated_report_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`DrillReport`, as published in ``schemas/drill-report/``."""
    return DrillReport.model_json_schema(
        mode="serialization", schema_generator=ReportSchemaGenerator
    )


# ------------------------------------------------------------------------------ the event


class PhaseSeconds(BaseModel):
    phase: str
    seconds: float | None = None


class FailedCheck(BaseModel):
    """A check that failed or could not run, as the event lists it (bounded in size)."""

    name: str | None = None
    status: str | None = None
    message: str | None = None
    check: str | None = None
    database: str | None = None
    object: str | None = None
    evidence_summary: list[str] = Field(default_factory=list)


class EventReportLocation(BaseModel):
    bucket: str
    key: str
    uri: str
    html_key: str | None = None
    sha256: str | None = None
    console_url: str | None = None
    html_console_url: str | None = None

    @property
    def html_uri(self) -> str | None:
        return f"s3://{self.bucket}/{self.html_key}" if self.html_key else None


class DrillFinished(BaseModel):
    """The detail of a Drill Finished event: what Slack (or any subscriber) needs without
    reading the report. Readers ignore fields they do not know, and every field added since the
    first version has a default, so that an event published by an earlier version still reads."""

    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(min_length=1)
    verdict: str | None = None
    reason: str | None = None
    source_db: str
    snapshot_id: str
    snapshot_created_at: str | None = None
    engine_version: str | None = None
    region: str | None = None
    account_id: str | None = None
    instance_id: str | None = None
    trigger: str | None = None
    requested_by: str | None = None
    phases: list[PhaseSeconds] = Field(default_factory=list)
    restore_seconds: float | None = None
    rpo_seconds: float | None = None
    rpo_check: str | None = None
    failed_checks: list[FailedCheck] = Field(default_factory=list)
    failed_checks_total: int | None = None  # more than listed when the event had to be bounded
    # What the drill did not verify of what its policy asks for (None: all of it).
    partly_verified: str | None = None
    # An AWS Backup recovery point's drill: which one, in a line (None: another drill).
    recovery_point: str | None = None
    estimated_cost_usd: float | None = None
    # A point-in-time drill: the time the database was restored to (None: a snapshot drill).
    point_in_time: str | None = None
    report: EventReportLocation
    created_at: str | None = None
    finished_at: str | None = None

    @property
    def failed_total(self) -> int:
        return max(self.failed_checks_total or 0, len(self.failed_checks))


def schema_text(schema: dict[str, Any]) -> str:
    """A schema as the published file holds it: two-space indent, UTF-8, a final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
