"""Point-in-time restore drills: which time a drill restores to, which run a schedule starts, and
what the measured RPO says.

A point-in-time drill restores a DB instance to the LatestRestorableTime RDS shows when the drill
starts (asked for explicitly as RestoreTime, so the RPO is measured against the time requested),
from its automated backup and transaction logs: it proves that the logs replay. Its RPO is the gap
between the requested time and the newest row the policy's freshness rules find in the restored
database (the check suite's ``freshness`` checks measure it against the run's snapshot time, which
for these drills is the requested time).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from restoredrill.domain.eligibility import POSTGRES_ENGINE_PREFIX, DrillRejected
from restoredrill.domain.report.text import duration_text
from restoredrill.ports.gateways import RdsGateway
from restoredrill.ports.messages import CheckSuiteResult
from restoredrill.ports.policy import DrillPolicy
from restoredrill.ports.records import (
    AURORA_POSTGRES_ENGINE,
    PointInTimeRestore,
    RunRecord,
    SnapshotInfo,
)

POINT_IN_TIME_SNAPSHOT_TYPE = "point-in-time"
POINT_IN_TIME_TRIGGER = "point-in-time schedule"


def point_in_time_key(source_db: str, every_seconds: float, now: datetime) -> str:
    """The idempotency key of a scheduled point-in-time drill: one per source per UTC window of
    ``every`` (24h: one per UTC day), however often the sweeper asks."""
    window = math.floor(now.timestamp() / every_seconds)
    return f"pitr:{source_db}:{int(every_seconds)}:{window}"


def restorable_snapshot(
    rds: RdsGateway,
    source_db: str,
    opt_in_tag: tuple[str, str],
    policy: DrillPolicy | None,
    *,
    cluster: bool = False,
) -> tuple[SnapshotInfo, PointInTimeRestore]:
    """What a point-in-time drill of ``source_db`` restores: the source described as its
    "snapshot" (the backup under test is its automated backup and logs, up to the requested
    time) and the time requested. Raises DrillRejected saying why there is no such drill.
    ``policy`` None (the operator CLI, which has no policy): its freshness rule is not asked
    for; StartDrill asks."""
    key, value = opt_in_tag
    if cluster:
        source = rds.describe_restorable_cluster(source_db)
        kind, engine_prefix = "DB cluster", AURORA_POSTGRES_ENGINE
    else:
        source = rds.describe_restorable_source(source_db)
        kind, engine_prefix = "DB instance", POSTGRES_ENGINE_PREFIX
    if source is None:
        raise DrillRejected(f"no RDS {kind} {source_db}")
    if not source.engine.startswith(engine_prefix):
        raise DrillRejected(f"{source_db} is {source.engine}, not PostgreSQL")
    if source.tags.get(key) != value:
        raise DrillRejected(f"{source_db} is not opted in (tag {key}={value})")
    if policy is not None and not policy.freshness:
        raise DrillRejected(
            f"a point-in-time drill of {source_db} needs a freshness rule in its drill policy: "
            "the RPO is the age of the newest row the freshness rules find"
        )
    restore_time = source.latest_restorable_time
    if restore_time is None:
        raise DrillRejected(
            f"{source_db} has no LatestRestorableTime: automated backups are off (backup "
            "retention 0) or its first backup is not finished; point-in-time restore is not "
            "possible"
        )
    arn_parts = source.arn.split(":")
    snapshot = SnapshotInfo(
        snapshot_id=f"{source_db}@{restore_time.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        snapshot_arn=source.arn,
        snapshot_type=POINT_IN_TIME_SNAPSHOT_TYPE,
        snapshot_created_at=restore_time,
        engine=source.engine,
        engine_version=source.engine_version,
        encrypted=source.encrypted,
        kms_key_id=source.kms_key_id,
        master_username=source.master_username,
        allocated_storage_gib=source.allocated_storage_gib,
        storage_type=source.storage_type,
        region=arn_parts[3] if len(arn_parts) > 4 else None,
        account_id=arn_parts[4] if len(arn_parts) > 4 else None,
    )
    max_rpo = policy.pitr.max_rpo if policy is not None and policy.pitr is not None else None
    return snapshot, PointInTimeRestore(restore_time=restore_time, max_rpo_seconds=max_rpo)


def newest_data_age(checks: CheckSuiteResult | None) -> tuple[float, str | None] | None:
    """The largest age the freshness checks measured (seconds the newest row is older than the
    requested time; negative when it is newer), with the newest value that check found. None
    when no freshness check measured one."""
    worst: tuple[float, str | None] | None = None
    for check in checks.checks if checks else []:
        age = check.evidence.get("rpo_s")
        if check.name != "freshness" or isinstance(age, bool) or not isinstance(age, int | float):
            continue
        if worst is None or age > worst[0]:
            newest = check.evidence.get("newest")
            worst = (float(age), None if newest is None else str(newest))
    return worst


def rpo_exceeded(point_in_time: PointInTimeRestore, checks: CheckSuiteResult | None) -> str | None:
    """Why the drill fails on its RPO (larger than the policy's max_rpo, or not measured at
    all: then the logs' replay is not shown), or None."""
    limit = point_in_time.max_rpo_seconds
    if limit is None:
        return None
    measured = newest_data_age(checks)
    requested = f"{point_in_time.restore_time.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    if measured is None:
        return (
            "the point-in-time RPO could not be measured (no freshness check found a row); the "
            f"policy's max_rpo is {duration_text(limit)}"
        )
    age = max(measured[0], 0.0)
    if age <= limit:
        return None
    return (
        f"point-in-time RPO {age:.0f} s ({duration_text(age)}) exceeds the policy's max_rpo "
        f"of {limit:.0f} s: requested {requested}, newest data found {measured[1]}"
    )


def restore_failed_reason(run: RunRecord, status: str) -> str:
    """A point-in-time restore that ended in a failed status: the backup and logs could not be
    brought to the requested time."""
    assert run.point_in_time is not None
    requested = run.point_in_time.restore_time.astimezone(UTC)
    return (
        f"the point-in-time restore to {requested:%Y-%m-%d %H:%M:%S} UTC ended in status "
        f"{status}: the transaction logs (WAL) could not be replayed to the requested time"
    )
