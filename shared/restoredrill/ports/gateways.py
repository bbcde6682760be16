"""What the domain needs from the outside world. Adapters implement these with boto3 and slack_sdk;
unit tests implement them in memory."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from restoredrill.ports.records import (
    AccountQuota,
    ClusterView,
    InstanceView,
    Lease,
    ReportLink,
    RestorableSource,
    RunRecord,
    SnapshotInfo,
    SourceDatabase,
    Verdict,
)


class EffectRejected(Exception):
    """AWS refused a request for good (validation, not found, denied): retrying will not help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RunStore(Protocol):
    def get(self, run_id: str) -> RunRecord | None: ...

    def create(self, run: RunRecord) -> bool:
        """Store a new run; False when a run with this id already exists."""
        ...

    def replace(self, run: RunRecord, expected_version: int) -> bool:
        """Store `run` only if the stored version is still `expected_version`."""
        ...

    def active_runs(self) -> list[RunRecord]: ...

    def last_passing(self, source_db: str) -> RunRecord | None:
        """The newest PASSED run of this database: what the next drill compares against."""
        ...

    def latest_report(self, source_db: str, *, excluding_run_id: str) -> ReportLink | None:
        """The newest published report of this database (any verdict), other than the given
        run's: the link the next report carries."""
        ...

    def last_drill(self, source_db: str, *, excluding_run_id: str) -> RunRecord | None:
        """The newest-created run of this database, other than the given run's, that counts for
        its schedule (:func:`counts_for_schedule`)."""
        ...


class RdsGateway(Protocol):
    def describe_source(self, instance_id: str) -> SourceDatabase | None: ...

    def describe_snapshot(self, snapshot_id: str) -> tuple[SnapshotInfo, str] | None:
        """The snapshot and the id of the instance it was taken from."""
        ...

    def latest_automated_snapshot(self, instance_id: str) -> str | None: ...

    def describe_drill_instance(self, instance_id: str) -> InstanceView | None: ...

    def restore(self, run: RunRecord) -> None:
        """From the run's snapshot, or (a point-in-time drill) RestoreDBInstanceToPointInTime to
        its requested time; the same drill settings either way."""
        ...

    def describe_restorable_source(self, instance_id: str) -> RestorableSource | None:
        """A point-in-time drill's source DB instance and its LatestRestorableTime."""
        ...

    def describe_restorable_cluster(self, cluster_id: str) -> RestorableSource | None:
        """A point-in-time drill's source Aurora DB cluster and its LatestRestorableTime."""
        ...

    def set_master_password(self, run: RunRecord, password: str) -> None: ...

    def delete_drill_instance(self, run_id: str, instance_id: str) -> None: ...

    def list_drill_instances(self) -> list[InstanceView]: ...

    def account_quotas(self) -> list[AccountQuota]:
        """The account's RDS quotas in this Region (DescribeAccountAttributes)."""
        ...

    # Aurora DB clusters: the cluster is restored first, its one instance created into it.

    def describe_source_cluster(self, cluster_id: str) -> SourceDatabase | None: ...

    def describe_cluster_snapshot(self, snapshot_id: str) -> tuple[SnapshotInfo, str] | None:
        """The cluster snapshot and the id of the cluster it was taken from."""
        ...

    def latest_automated_cluster_snapshot(self, cluster_id: str) -> str | None: ...

    def describe_drill_cluster(self, cluster_id: str) -> ClusterView | None: ...

    def restore_cluster(self, run: RunRecord) -> None:
        """From the run's cluster snapshot, or (a point-in-time drill)
        RestoreDBClusterToPointInTime to its requested time; the same drill settings either way."""
        ...

    def create_cluster_instance(self, run: RunRecord) -> None: ...

    def set_cluster_master_password(self, run: RunRecord, password: str) -> None: ...

    def delete_drill_cluster(self, run_id: str, cluster_id: str) -> None: ...

    def list_drill_clusters(self) -> list[ClusterView]: ...

    def offers_instance_class(self, engine: str, engine_version: str, instance_class: str) -> bool:
        """RDS offers ``instance_class`` for this engine version in this Region
        (DescribeOrderableDBInstanceOptions)."""
        ...


class SlotStore(Protocol):
    """The drill slots: at most one lease per slot, so never more holders than slots."""

    def leases(self) -> list[Lease]: ...

    def admit(self, run: RunRecord, expected_version: int, lease: Lease, now: datetime) -> bool:
        """In one transaction: take `lease.slot` (when it is free, its lease expired before
        `now`, or it is already this run's) and store `run` if the stored version is still
        `expected_version`. False, and nothing written, when either condition fails."""
        ...

    def release(self, lease: Lease) -> bool:
        """Free the slot if `lease.run_id` still holds it; False when it did not."""
        ...


class PasswordVault(Protocol):
    def get_or_create(self, name: str) -> str:
        """The password stored under `name`, created (and stored encrypted) if there is none."""
        ...

    def delete(self, name: str) -> None: ...


class PollQueue(Protocol):
    def schedule(self, run_id: str, delay_seconds: int) -> None: ...


class CheckerInvoker(Protocol):
    def invoke(self, payload: dict[str, Any]) -> None: ...


class ReportStore(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> str:
        """Store a report exactly as given (its SHA-256 is the chain's link); returns where it
        is (an s3:// URI)."""
        ...


class DrillEvents(Protocol):
    def drill_finished(self, detail: dict[str, Any]) -> None: ...


class ChatNotifier(Protocol):
    def post(self, text: str, blocks: list[dict[str, Any]]) -> None: ...


class CheckerFailed(Exception):
    """The checker did not return a result (it raised, timed out or crashed)."""


class PasswordReader(Protocol):
    def get(self, name: str) -> str | None: ...


class SyncChecker(Protocol):
    def check(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The checker's answer; raises CheckerFailed when the function errored."""
        ...


class CheckWorkStore(Protocol):
    """Where a run's checks in rounds keep their plan and progress between rounds, and claim
    rounds (a round triggered twice runs once)."""

    def load(self, run_id: str) -> dict[str, Any] | None:
        """The run's stored work, or None when there is none."""
        ...

    def save(self, run_id: str, document: dict[str, Any]) -> None: ...

    def claim(self, run_id: str, round_: int, attempt: int, tasks: dict[str, list[str]]) -> bool:
        """Claim one attempt at one round, naming the tasks it takes (per database); False when
        another trigger claimed it first."""
        ...

    def claimed(self, run_id: str, round_: int, attempt: int) -> dict[str, list[str]] | None:
        """The tasks an attempt claimed, or None when it was never claimed."""
        ...

    def load_coverage(self, source_db: str, database: str) -> dict[str, Any] | None:
        """When each range of one database was last verified (``coverage: rotate``)."""
        ...

    def save_coverage(self, source_db: str, database: str, document: dict[str, Any]) -> None: ...

    def save_baseline(self, source_db: str, run_id: str, document: dict[str, Any]) -> str:
        """Keep a drill's baseline for the drills after it; returns its key."""
        ...

    def load_baseline(self, key: str) -> dict[str, Any] | None:
        """A baseline kept by :meth:`save_baseline`, or None when it is gone."""
        ...


def counts_for_schedule(run: RunRecord) -> bool:
    """A drill that is still under way or said something about the backup (PASSED, FAILED).
    ERROR and TIMED_OUT say nothing about it: the next snapshot is drilled whatever ``every``
    says."""
    return run.verdict is None or run.verdict in (Verdict.PASSED, Verdict.FAILED)


def latest_published(runs: Iterable[RunRecord]) -> ReportLink | None:
    """The link to the report published last among ``runs``: the chain follows publish order,
    which is not creation order when a drill created earlier finishes later."""
    published = [run for run in runs if run.report_key and run.report_sha256 and run.published_at]
    if not published:
        return None
    last = max(published, key=lambda run: (run.published_at, run.created_at))
    assert last.report_key is not None and last.report_sha256 is not None
    return ReportLink(run_id=last.run_id, key=last.report_key, sha256=last.report_sha256)
