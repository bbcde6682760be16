"""The drill's data: run records, what RDS shows of an instance, what the checker sent back."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from restoredrill.ports.messages import TravellingCheckSuite

OWNER_TAG = "restoredrill:owner"
RUN_ID_TAG = "restoredrill:run-id"
SOURCE_DB_TAG = "restoredrill:source-db"
INSTANCE_PREFIX = "restoredrill-"
# An Aurora drill's cluster is named like an instance drill's instance (INSTANCE_PREFIX + run id);
# the one DB instance created into it carries this suffix, so either name leads to the run.
CLUSTER_INSTANCE_SUFFIX = "-writer"
AURORA_POSTGRES_ENGINE = "aurora-postgresql"
# The smallest provisioned class Aurora PostgreSQL offers across its supported versions (Aurora
# has no micro or small classes); a policy's instance_class wins.
AURORA_DEFAULT_INSTANCE_CLASS = "db.t4g.medium"
# Aurora Serverless v2's instance class (the cluster then needs a capacity range).
SERVERLESS_V2_CLASS = "db.serverless"
_RUN_ID = re.compile(r"[0-9a-f]{20}")
# The port every drill instance is restored on: the only one the drill and checker security groups
# open (template.yaml). Without it RDS restores on the source instance's port.
DRILL_PORT = 5432


class RunState(StrEnum):
    QUEUED = "QUEUED"  # waiting for a drill slot and for quota headroom; holds nothing
    REQUESTED = "REQUESTED"
    RESTORING = "RESTORING"
    SECURING = "SECURING"
    CHECKING = "CHECKING"
    TEARING_DOWN = "TEARING_DOWN"
    REPORTING = "REPORTING"
    FINISHED = "FINISHED"


ACTIVE_STATES = frozenset(
    {RunState.REQUESTED, RunState.RESTORING, RunState.SECURING, RunState.CHECKING}
)
# The states in which a run holds a drill slot: from its admission until its instance is gone.
SLOT_HOLDING_STATES = ACTIVE_STATES | {RunState.TEARING_DOWN}


class Verdict(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"  # the backup or the data in it is bad
    ERROR = "ERROR"  # the drill itself broke: IAM, network, configuration
    TIMED_OUT = "TIMED_OUT"


class PhaseTiming(BaseModel):
    model_config = ConfigDict(frozen=True)

    started_at: datetime
    ended_at: datetime | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class SnapshotInfo(BaseModel):
    """What the report says about the backup under test, captured when the drill starts."""

    model_config = ConfigDict(frozen=True)

    snapshot_id: str
    snapshot_arn: str
    snapshot_type: str | None = None
    snapshot_created_at: datetime | None = None
    engine: str = "postgres"
    engine_version: str | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    master_username: str
    allocated_storage_gib: int | None = None
    storage_type: str | None = None
    region: str | None = None
    account_id: str | None = None


class RecoveryPoint(BaseModel):
    """An AWS Backup recovery point under test: what its Backup Job (or Copy Job) State Change
    event said about it. For RDS the recovery point is a DB snapshot (``awsbackup:job-...``) and
    its ARN is the snapshot's; a copy's is the copy's, in the destination vault and Region."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["backup", "copy"]
    recovery_point_arn: str
    vault_name: str | None = None
    vault_arn: str | None = None
    backup_job_id: str | None = None
    copy_job_id: str | None = None
    backup_plan_id: str | None = None
    # The resource that was backed up (the source DB instance or cluster).
    resource_arn: str | None = None
    # Copies: the recovery point copied, and the Region it was copied from.
    source_recovery_point_arn: str | None = None
    source_region: str | None = None
    # Why this recovery point was drilled: the source's opt-in tag, or its vault or plan.
    opted_in_by: str | None = None


class PointInTimeRestore(BaseModel):
    """A point-in-time drill: the database restored to ``restore_time`` from its automated
    backups and transaction logs (RestoreDBInstanceToPointInTime). ``restore_time`` is the
    source's LatestRestorableTime when the drill was started, asked for explicitly so that the
    RPO is measured against the time requested."""

    model_config = ConfigDict(frozen=True)

    restore_time: datetime
    # The policy's pitr.max_rpo: a larger measured RPO fails the drill.
    max_rpo_seconds: float | None = None


class RestorableSource(BaseModel):
    """What DescribeDBInstances shows of a source a point-in-time drill restores."""

    model_config = ConfigDict(frozen=True)

    instance_id: str
    arn: str
    engine: str
    engine_version: str | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    master_username: str = "postgres"
    allocated_storage_gib: int | None = None
    storage_type: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    # None: RDS shows none (automated backups off, or the instance is new).
    latest_restorable_time: datetime | None = None


class ReportLink(BaseModel):
    """Where a published report is and the SHA-256 of its stored bytes: one link of the chain."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ReportChain(BaseModel):
    """The run's place in its database's chain of reports, pinned once before the publish so
    that a repeated publish writes the same bytes. ``previous`` is None for a first report."""

    model_config = ConfigDict(frozen=True)

    previous: ReportLink | None = None


class CheckerOutcome(BaseModel):
    """The checker's answer as the Lambda async destination delivered it."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    succeeded: bool  # the function returned (whatever the checks found)
    verdict: Verdict | None = None  # PASSED / FAILED / ERROR from the check suite
    result: TravellingCheckSuite | None = None  # the check suite result, aggregates only
    error: str | None = None  # the function's error when it did not return
    # Checks in rounds: this round ended and the plan goes on (no verdict yet) ...
    round_finished: int | None = None
    # ... or another trigger had already claimed the round: nothing to do.
    duplicate_round: bool = False
    baseline_key: str | None = None  # the result's baseline, kept in the work bucket


class Lease(BaseModel):
    """One drill slot held by one run until it is released, or until `expires_at` at the
    latest (a holder that died without releasing it cannot keep it for ever)."""

    model_config = ConfigDict(frozen=True)

    slot: int = Field(ge=0)
    run_id: str
    expires_at: datetime


class RunRecord(BaseModel):
    """One drill. Every change is a new version written conditionally on the previous one."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    version: int = 0
    state: RunState = RunState.REQUESTED
    source_db: str
    snapshot: SnapshotInfo
    instance_id: str
    instance_class: str
    trigger: str
    requested_by: str | None = None
    policy: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    deadline: datetime
    phases: dict[RunState, PhaseTiming] = Field(default_factory=dict)
    verdict: Verdict | None = None
    reason: str | None = None
    password_parameter: str | None = None
    restore_requested_at: datetime | None = None
    credentials_reset_at: datetime | None = None
    credentials_confirmed: bool = False
    checker_invoked_at: datetime | None = None
    # Checks in rounds: the round asked for last, and how often it was asked (a lost round is
    # asked again once).
    check_round: int = 0
    check_attempt: int = 0
    effect_claimed_at: datetime | None = None
    # The checker's result; stored as it travelled (plain, or gzip+base64 when large).
    checks: TravellingCheckSuite | None = None
    # Where the check runner stored this drill's baseline when it kept it out of `checks` (the
    # work bucket: a baseline of 20,000 tables is megabytes, a run record at most 400 KB).
    baseline_key: str | None = None
    chain: ReportChain | None = None
    report_key: str | None = None
    report_sha256: str | None = None
    finished_at: datetime | None = None
    # Admission: while QUEUED, `deadline` is the end of the maximum wait; the drill's own deadline
    # starts when it is admitted, so time spent waiting never counts against it.
    queued_at: datetime | None = None
    # When the database last passed a drill (None: never): the longest without one goes first.
    last_passed_at: datetime | None = None
    admitted_at: datetime | None = None
    lease: Lease | None = None  # the slot it was admitted with (kept after it is released)
    # Restores refused for quota or capacity so far, and when the next admission may be tried.
    requeues: int = 0
    not_before: datetime | None = None
    wait_reason: str | None = None
    # Aurora: the drill restores this cluster first, then creates `instance_id` inside it. None
    # for an instance drill.
    cluster_id: str | None = None
    cluster_available_at: datetime | None = None
    instance_requested_at: datetime | None = None
    # Aurora Serverless v2: the cluster's capacity range in ACUs (min, max); None: provisioned.
    acu_range: tuple[float, float] | None = None
    # An AWS Backup recovery point's drill: which one, from which vault, job and plan.
    recovery_point: RecoveryPoint | None = None
    # A point-in-time drill: restored to this time from backups and logs (no snapshot).
    point_in_time: PointInTimeRestore | None = None

    @property
    def is_finished(self) -> bool:
        return self.state is RunState.FINISHED

    @property
    def published_at(self) -> datetime | None:
        """When its report was published: the run became FINISHED right after."""
        finished = self.phases.get(RunState.FINISHED)
        return finished.started_at if finished is not None else None

    @property
    def restore_seconds(self) -> float | None:
        """The measured RTO: from the restore request until the instance was seen available.
        None when the restore never became available: a failed restore has no RTO."""
        phase = self.phases.get(RunState.RESTORING)
        if phase is None or RunState.SECURING not in self.phases:
            return None
        return phase.duration_seconds

    @property
    def is_cluster(self) -> bool:
        return self.cluster_id is not None


def holds_data_before(run: RunRecord, data_as_of: datetime | None) -> bool:
    """``run`` restored a backup whose data is no newer than ``data_as_of`` (a snapshot's
    creation time, or a point-in-time drill's restore time; unknown on either side: yes)."""
    restored = run.snapshot.snapshot_created_at
    return data_as_of is None or restored is None or restored <= data_as_of


def drill_run_id(identifier: str) -> str | None:
    """The run id in a drill resource's name: a drill instance, a drill cluster or the instance
    created into one (``restoredrill-<run id>`` or ``restoredrill-<run id>-writer``)."""
    if not identifier.startswith(INSTANCE_PREFIX):
        return None
    run_id = identifier[len(INSTANCE_PREFIX) :].removesuffix(CLUSTER_INSTANCE_SUFFIX)
    return run_id if _RUN_ID.fullmatch(run_id) else None


class AccountQuota(BaseModel):
    """One of DescribeAccountAttributes' AccountQuotas: its name, the usage and the maximum."""

    model_config = ConfigDict(frozen=True)

    name: str
    used: int
    max: int


class InstanceView(BaseModel):
    """What DescribeDBInstances shows of a drill instance right now."""

    model_config = ConfigDict(frozen=True)

    instance_id: str
    status: str
    address: str | None = None
    port: int | None = None
    master_username: str | None = None
    db_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    pending_master_password: bool = False
    cluster_id: str | None = None  # the DB cluster it belongs to (Aurora)

    def owned_by(self, stack_name: str, run_id: str) -> bool:
        return self.tags.get(OWNER_TAG) == stack_name and self.tags.get(RUN_ID_TAG) == run_id


class ClusterView(BaseModel):
    """What DescribeDBClusters shows of a drill cluster right now; the address is the cluster's
    writer endpoint."""

    model_config = ConfigDict(frozen=True)

    cluster_id: str
    status: str
    address: str | None = None
    port: int | None = None
    master_username: str | None = None
    db_name: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    members: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    pending_master_password: bool = False

    def owned_by(self, stack_name: str, run_id: str) -> bool:
        return self.tags.get(OWNER_TAG) == stack_name and self.tags.get(RUN_ID_TAG) == run_id


class SourceDatabase(BaseModel):
    model_config = ConfigDict(frozen=True)

    instance_id: str
    engine: str
    tags: dict[str, str] = Field(default_factory=dict)


class DrillRequest(BaseModel):
    """Why a drill should start: a new automated snapshot, or someone asked."""

    model_config = ConfigDict(frozen=True)

    source_db: str | None = None
    snapshot_id: str | None = None
    # None: one drill per snapshot, keyed by the ARN RDS describes the snapshot with (events may
    # name the same snapshot by ARN or by id).
    idempotency_key: str | None = None
    trigger: str
    requested_by: str | None = None
    event_tags: dict[str, str] = Field(default_factory=dict)
    # An Aurora DB cluster (its cluster snapshot) rather than a DB instance.
    cluster: bool = False
    # An AWS Backup recovery point (its Backup or Copy Job State Change event).
    recovery_point: RecoveryPoint | None = None
    # Restore the DB instance to its latest restorable time rather than from a snapshot.
    point_in_time: bool = False


class RequestedDrill(DrillRequest):
    """A Drill Requested: one drill per request, keyed by its request id, so whoever published it
    knows the run id before StartDrill runs."""

    idempotency_key: str
