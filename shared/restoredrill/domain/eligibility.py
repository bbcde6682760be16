"""Which snapshot a request may drill, and when: the one set of rules StartDrill and the operator
CLI share.

StartDrill refuses a request with these rules; the CLI runs the same ones before it publishes
Drill Requested, so an operator hears the refusal at once instead of finding no drill later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from restoredrill.domain.report.text import duration_text
from restoredrill.ports.gateways import RdsGateway
from restoredrill.ports.policy import EVERY_DRIFT_ALLOWANCE, DrillPolicy
from restoredrill.ports.records import AURORA_POSTGRES_ENGINE, SnapshotInfo

POSTGRES_ENGINE_PREFIX = "postgres"


class _Lookups:
    """The RDS calls a request uses: a DB instance's, or an Aurora DB cluster's."""

    def __init__(self, rds: RdsGateway, cluster: bool) -> None:
        self.cluster = cluster
        self.kind = "DB cluster" if cluster else "DB instance"
        self.engine_prefix = AURORA_POSTGRES_ENGINE if cluster else POSTGRES_ENGINE_PREFIX
        self.describe_source = rds.describe_source_cluster if cluster else rds.describe_source
        self.describe_snapshot = rds.describe_cluster_snapshot if cluster else rds.describe_snapshot
        self.latest_snapshot = (
            rds.latest_automated_cluster_snapshot if cluster else rds.latest_automated_snapshot
        )


class DrillRejected(Exception):
    """A request that can never become a drill (not opted in, not PostgreSQL, no snapshot)."""


@dataclass(frozen=True)
class EligibleSnapshot:
    snapshot: SnapshotInfo
    source_db: str


def eligible_snapshot(
    rds: RdsGateway,
    *,
    source_db: str | None,
    snapshot_id: str | None,
    opt_in_tag: tuple[str, str],
    event_tags: Mapping[str, str] | None = None,
    region: str | None = None,
    cluster: bool = False,
    opted_in: bool = False,
) -> EligibleSnapshot:
    """The snapshot to drill for a request naming a database, a snapshot, or both; raises
    DrillRejected saying why there is none.

    A named database must exist, be PostgreSQL and carry the opt-in tag, and a named snapshot
    must be of that database. A snapshot named alone is drilled when its database is opted in;
    when that database is gone, only the triggering event's tags (RDS copies the resource's
    tags into its events) can show the opt-in. ``opted_in``: the request is opted in otherwise
    (an AWS Backup recovery point whose vault or plan the stack lists): no tag is needed.
    """
    where = f" in {region}" if region else ""
    lookups = _Lookups(rds, cluster)
    if source_db is not None:
        _check_named_source(lookups, source_db, opt_in_tag, where)
    if snapshot_id is None:
        snapshot_id = _latest_snapshot(lookups, source_db)
    snapshot, snapshot_db = _described_snapshot(lookups, snapshot_id, source_db, where)
    if source_db is None and not opted_in:
        _check_snapshot_source(lookups, snapshot_db, snapshot_id, opt_in_tag, event_tags)
    return EligibleSnapshot(snapshot=snapshot, source_db=snapshot_db)


def _check_named_source(
    rds: _Lookups, source_db: str, opt_in_tag: tuple[str, str], where: str
) -> None:
    """A database named in the request exists, is PostgreSQL and is opted in."""
    key, value = opt_in_tag
    source = rds.describe_source(source_db)
    if source is None:
        raise DrillRejected(f"no RDS {rds.kind} {source_db}{where}")
    if not source.engine.startswith(rds.engine_prefix):
        raise DrillRejected(f"{source_db} is {source.engine}, not PostgreSQL")
    if source.tags.get(key) != value:
        raise DrillRejected(f"{source_db} is not opted in (tag {key}={value})")


def _latest_snapshot(rds: _Lookups, source_db: str | None) -> str:
    if source_db is None:
        raise DrillRejected("a drill needs a database or a snapshot")
    snapshot_id = rds.latest_snapshot(source_db)
    if snapshot_id is None:
        raise DrillRejected(f"{source_db} has no available automated snapshot yet")
    return snapshot_id


def _described_snapshot(
    rds: _Lookups, snapshot_id: str, source_db: str | None, where: str
) -> tuple[SnapshotInfo, str]:
    """The snapshot and its database: of the database named (if one is), PostgreSQL, with an
    ARN."""
    described = rds.describe_snapshot(snapshot_id)
    if described is None:
        raise DrillRejected(f"no snapshot {snapshot_id}{where}")
    snapshot, snapshot_db = described
    if source_db is not None and snapshot_db != source_db:
        raise DrillRejected(f"snapshot {snapshot_id} is of {snapshot_db}, not {source_db}")
    if not snapshot.engine.startswith(rds.engine_prefix):
        raise DrillRejected(f"snapshot {snapshot_id} is {snapshot.engine}, not PostgreSQL")
    if not snapshot.snapshot_arn:
        # The run id is derived from this ARN: without it every such snapshot would share one.
        raise DrillRejected(f"RDS described snapshot {snapshot_id} without its ARN")
    return snapshot, snapshot_db


def _check_snapshot_source(
    rds: _Lookups,
    snapshot_db: str,
    snapshot_id: str,
    opt_in_tag: tuple[str, str],
    event_tags: Mapping[str, str] | None,
) -> None:
    """The database of a snapshot named alone is opted in: by its own tags while it exists,
    else by the triggering event's."""
    key, value = opt_in_tag
    source = rds.describe_source(snapshot_db)
    if source is not None:
        if source.tags.get(key) != value:
            raise DrillRejected(f"{snapshot_db} is not opted in (tag {key}={value})")
    elif (event_tags or {}).get(key) != value:
        raise DrillRejected(
            f"{snapshot_db}, the database of snapshot {snapshot_id}, no longer exists, and "
            f"nothing else shows its opt-in tag {key}={value}"
        )


class DrillNotDue(DrillRejected):
    """An automated snapshot the database's schedule (``every``, ``window``) says not to drill.
    Not an error: the snapshot is skipped, said so in the log and counted
    (``DrillsSkippedBySchedule``); the next one is considered again."""

    def __init__(self, source_db: str, snapshot_id: str, why: str) -> None:
        super().__init__(f"snapshot {snapshot_id} of {source_db} skipped by its schedule: {why}")
        self.source_db = source_db
        self.snapshot_id = snapshot_id
        self.why = why


@dataclass(frozen=True)
class ScheduleDecision:
    """Whether an automated snapshot is drilled now; ``why`` says why not (None when due)."""

    due: bool
    why: str | None = None


DUE = ScheduleDecision(due=True)


def schedule_decision(
    policy: DrillPolicy,
    *,
    now: datetime,
    last_drill_started: datetime | None,
    on_demand: bool,
) -> ScheduleDecision:
    """The schedule's word on a snapshot arriving ``now``. On-demand drills are always due; an
    automated one only inside the policy's ``window`` and once the last drill that counts
    (``last_drill_started``, None for none) is ``every`` old, less the drift allowance."""
    if on_demand:
        return DUE
    window = policy.window
    if window is not None and not window.contains(now):
        return ScheduleDecision(
            due=False,
            why=f"it arrived at {now.astimezone(UTC):%H:%M} UTC, outside the drill window "
            f"{window.text} UTC",
        )
    if policy.every is not None and last_drill_started is not None:
        age = (now - last_drill_started).total_seconds()
        wanted = policy.every * (1 - EVERY_DRIFT_ALLOWANCE)
        if age < wanted:
            return ScheduleDecision(
                due=False,
                why=f"the last drill started {duration_text(age)} ago "
                f"({last_drill_started.astimezone(UTC):%Y-%m-%d %H:%M} UTC) and the policy "
                f"drills every {duration_text(policy.every)}",
            )
    return DUE
