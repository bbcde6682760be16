"""In-memory adapters for the domain's ports: what the unit tests run the drill against."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from restoredrill.adapters.aws import new_password
from restoredrill.domain.drill import DrillContext
from restoredrill.ports.config import DrillSettings
from restoredrill.ports.gateways import EffectRejected, counts_for_schedule, latest_published
from restoredrill.ports.records import (
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
    SnapshotInfo,
    SourceDatabase,
)

STACK = "restoredrill-test"
START = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def settings(**overrides: Any) -> DrillSettings:
    values: dict[str, Any] = {
        "stack_name": STACK,
        "run_table_name": "runs",
        "poll_queue_url": "https://sqs/poll",
        "drill_bus_name": "drills",
        "report_bucket": "reports-bucket",
        "check_runner_function_name": "check-runner",
        "opt_in_tag_key": "restoredrill:drill",
        "opt_in_tag_value": "enabled",
        "drill_instance_class": "db.t4g.micro",
        "db_subnet_group_name": "private",
        "drill_security_group_id": "sg-1",
        "drill_deadline_minutes": 240,
        "poll_delay_seconds": 60,
        "credentials_settle_seconds": 30,
        "checker_timeout_seconds": 900,
        "password_parameter_prefix": "/restoredrill/test/runs",
    }
    values.update(overrides)
    return DrillSettings.model_validate(values)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class InMemoryRunStore:
    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self.writes = 0

    def get(self, run_id: str) -> RunRecord | None:
        return self.runs.get(run_id)

    def create(self, run: RunRecord) -> bool:
        if run.run_id in self.runs:
            return False
        self.runs[run.run_id] = run
        self.writes += 1
        return True

    def replace(self, run: RunRecord, expected_version: int) -> bool:
        stored = self.runs.get(run.run_id)
        if stored is None or stored.version != expected_version:
            return False
        self.runs[run.run_id] = run
        self.writes += 1
        return True

    def active_runs(self) -> list[RunRecord]:
        return [run for run in self.runs.values() if not run.is_finished]

    def last_passing(self, source_db: str) -> RunRecord | None:
        passed = [
            run
            for run in self.runs.values()
            if run.source_db == source_db
            and run.verdict is not None
            and run.verdict.value == "PASSED"
        ]
        return max(passed, key=lambda run: run.created_at, default=None)

    def latest_report(self, source_db: str, *, excluding_run_id: str) -> ReportLink | None:
        return latest_published(
            run
            for run in self.runs.values()
            if run.source_db == source_db and run.run_id != excluding_run_id
        )

    def last_drill(self, source_db: str, *, excluding_run_id: str) -> RunRecord | None:
        counted = [
            run
            for run in self.runs.values()
            if run.source_db == source_db
            and run.run_id != excluding_run_id
            and counts_for_schedule(run)
        ]
        return max(counted, key=lambda run: run.created_at, default=None)


class InMemorySlotStore:
    """The drill slots with the adapter's conditions: a slot is taken only when free, expired or
    already the run's, together with the run's record, or not at all."""

    def __init__(self, runs: InMemoryRunStore) -> None:
        self.runs = runs
        self.slots: dict[int, Lease] = {}
        self.admissions = 0
        self.releases = 0

    def leases(self) -> list[Lease]:
        return sorted(self.slots.values(), key=lambda lease: lease.slot)

    def admit(self, run: RunRecord, expected_version: int, lease: Lease, now: datetime) -> bool:
        held = self.slots.get(lease.slot)
        if held is not None and held.run_id != lease.run_id and held.expires_at >= now:
            return False
        stored = self.runs.runs.get(run.run_id)
        if stored is None or stored.version != expected_version:
            return False
        self.slots[lease.slot] = lease
        self.runs.runs[run.run_id] = run
        self.admissions += 1
        return True

    def release(self, lease: Lease) -> bool:
        if self.slots.get(lease.slot) != lease:
            return False
        del self.slots[lease.slot]
        self.releases += 1
        return True


class FakeRds:
    """RDS as the drill sees it. Tests move instances between statuses themselves."""

    def __init__(self) -> None:
        self.sources: dict[str, SourceDatabase] = {}
        self.snapshots: dict[str, tuple[SnapshotInfo, str]] = {}
        self.instances: dict[str, InstanceView] = {}
        self.calls: list[tuple[str, str]] = []
        self.passwords: dict[str, str] = {}
        self.refuse_restore: EffectRejected | None = None
        self.refuse_create_instance: EffectRejected | None = None
        self.restorable: dict[str, RestorableSource] = {}
        self.point_in_time_restores: list[tuple[str, datetime]] = []
        self.source_clusters: dict[str, SourceDatabase] = {}
        self.cluster_snapshots: dict[str, tuple[SnapshotInfo, str]] = {}
        self.clusters: dict[str, ClusterView] = {}
        # (engine, engine version, class) RDS offers: DescribeOrderableDBInstanceOptions
        self.orderable = {("aurora-postgresql", "16.4", "db.serverless")}
        self.quotas = [
            AccountQuota(name="DBInstances", used=0, max=40),
            AccountQuota(name="DBClusters", used=0, max=40),
            AccountQuota(name="AllocatedStorage", used=0, max=100000),
        ]

    def add_source(self, db: str, tags: dict[str, str], snapshot_id: str) -> None:
        self.sources[db] = SourceDatabase(instance_id=db, engine="postgres", tags=tags)
        self.snapshots[snapshot_id] = (
            SnapshotInfo(
                snapshot_id=snapshot_id,
                snapshot_arn=f"arn:aws:rds:us-east-1:123456789012:snapshot:{snapshot_id}",
                snapshot_type="automated",
                snapshot_created_at=START - timedelta(minutes=15),
                engine="postgres",
                engine_version="15.5",
                master_username="clinic_admin",
                region="us-east-1",
                account_id="123456789012",
            ),
            db,
        )

    def describe_source(self, instance_id: str) -> SourceDatabase | None:
        return self.sources.get(instance_id)

    def add_restorable_source(
        self, db: str, tags: dict[str, str], latest_restorable_time: datetime | None
    ) -> None:
        """A DB instance a point-in-time drill may restore (DescribeDBInstances' view)."""
        self.sources[db] = SourceDatabase(instance_id=db, engine="postgres", tags=tags)
        self.restorable[db] = RestorableSource(
            instance_id=db,
            arn=f"arn:aws:rds:us-east-1:123456789012:db:{db}",
            engine="postgres",
            engine_version="15.5",
            encrypted=True,
            kms_key_id="arn:aws:kms:us-east-1:123456789012:key/source-key",
            master_username="clinic_admin",
            allocated_storage_gib=20,
            tags=tags,
            latest_restorable_time=latest_restorable_time,
        )

    def describe_restorable_source(self, instance_id: str) -> RestorableSource | None:
        found = self.restorable.get(instance_id)
        return found if found is not None and found.engine == "postgres" else None

    def add_restorable_cluster(
        self, cluster: str, tags: dict[str, str], latest_restorable_time: datetime | None
    ) -> None:
        """An Aurora DB cluster a point-in-time drill may restore (DescribeDBClusters' view)."""
        self.source_clusters[cluster] = SourceDatabase(
            instance_id=cluster, engine="aurora-postgresql", tags=tags
        )
        self.restorable[cluster] = RestorableSource(
            instance_id=cluster,
            arn=f"arn:aws:rds:us-east-1:123456789012:cluster:{cluster}",
            engine="aurora-postgresql",
            engine_version="16.4",
            encrypted=True,
            kms_key_id="arn:aws:kms:us-east-1:123456789012:key/source-key",
            master_username="orders_admin",
            tags=tags,
            latest_restorable_time=latest_restorable_time,
        )

    def describe_restorable_cluster(self, cluster_id: str) -> RestorableSource | None:
        found = self.restorable.get(cluster_id)
        return found if found is not None and found.engine == "aurora-postgresql" else None

    def describe_snapshot(self, snapshot_id: str) -> tuple[SnapshotInfo, str] | None:
        return self.snapshots.get(snapshot_id)

    def latest_automated_snapshot(self, instance_id: str) -> str | None:
        found = [sid for sid, (_, db) in self.snapshots.items() if db == instance_id]
        return max(found) if found else None

    def describe_drill_instance(self, instance_id: str) -> InstanceView | None:
        return self.instances.get(instance_id)

    def set_status(self, instance_id: str, status: str, **changes: Any) -> None:
        self.instances[instance_id] = self.instances[instance_id].model_copy(
            update={"status": status, **changes}
        )

    def restore(self, run: RunRecord) -> None:
        self.calls.append(("restore", run.instance_id))
        if run.point_in_time is not None:
            self.point_in_time_restores.append((run.source_db, run.point_in_time.restore_time))
        if self.refuse_restore is not None:
            raise self.refuse_restore
        self.instances.setdefault(
            run.instance_id,
            InstanceView(
                instance_id=run.instance_id,
                status="creating",
                master_username="clinic_admin",
                tags={OWNER_TAG: STACK, RUN_ID_TAG: run.run_id, SOURCE_DB_TAG: run.source_db},
            ),
        )

    def set_master_password(self, run: RunRecord, password: str) -> None:
        self.calls.append(("set_master_password", run.instance_id))
        self.passwords[run.instance_id] = password
        self.set_status(run.instance_id, "resetting-master-credentials")

    def delete_drill_instance(self, run_id: str, instance_id: str) -> None:
        self.calls.append(("delete", instance_id))
        view = self.instances.get(instance_id)
        if view is None:
            return
        assert view.owned_by(STACK, run_id), "the drill tried to delete an instance it does not own"
        self.set_status(instance_id, "deleting")

    def list_drill_instances(self) -> list[InstanceView]:
        return [view for view in self.instances.values() if view.tags.get(OWNER_TAG) == STACK]

    def account_quotas(self) -> list[AccountQuota]:
        self.calls.append(("account_quotas", ""))
        return list(self.quotas)

    # Aurora: clusters hold the password; instances are created into them.

    def add_source_cluster(self, cluster: str, tags: dict[str, str], snapshot_id: str) -> None:
        self.source_clusters[cluster] = SourceDatabase(
            instance_id=cluster, engine="aurora-postgresql", tags=tags
        )
        self.cluster_snapshots[snapshot_id] = (
            SnapshotInfo(
                snapshot_id=snapshot_id,
                snapshot_arn=f"arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{snapshot_id}",
                snapshot_type="automated",
                snapshot_created_at=START - timedelta(minutes=15),
                engine="aurora-postgresql",
                engine_version="16.4",
                master_username="orders_admin",
                region="us-east-1",
                account_id="123456789012",
            ),
            cluster,
        )

    def describe_source_cluster(self, cluster_id: str) -> SourceDatabase | None:
        return self.source_clusters.get(cluster_id)

    def describe_cluster_snapshot(self, snapshot_id: str) -> tuple[SnapshotInfo, str] | None:
        return self.cluster_snapshots.get(snapshot_id)

    def latest_automated_cluster_snapshot(self, cluster_id: str) -> str | None:
        found = [sid for sid, (_, c) in self.cluster_snapshots.items() if c == cluster_id]
        return max(found) if found else None

    def describe_drill_cluster(self, cluster_id: str) -> ClusterView | None:
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            return None
        members = tuple(i for i, v in self.instances.items() if v.cluster_id == cluster_id)
        return cluster.model_copy(update={"members": members})

    def set_cluster_status(self, cluster_id: str, status: str, **changes: Any) -> None:
        self.clusters[cluster_id] = self.clusters[cluster_id].model_copy(
            update={"status": status, **changes}
        )

    def restore_cluster(self, run: RunRecord) -> None:
        assert run.cluster_id is not None
        self.calls.append(("restore_cluster", run.cluster_id))
        if run.point_in_time is not None:
            self.point_in_time_restores.append((run.source_db, run.point_in_time.restore_time))
        if self.refuse_restore is not None:
            raise self.refuse_restore
        self.clusters.setdefault(
            run.cluster_id,
            ClusterView(
                cluster_id=run.cluster_id,
                status="creating",
                master_username="orders_admin",
                engine="aurora-postgresql",
                tags={OWNER_TAG: STACK, RUN_ID_TAG: run.run_id, SOURCE_DB_TAG: run.source_db},
            ),
        )

    def create_cluster_instance(self, run: RunRecord) -> None:
        assert run.cluster_id is not None
        self.calls.append(("create_instance", run.instance_id))
        if self.refuse_create_instance is not None:
            raise self.refuse_create_instance
        assert run.cluster_id in self.clusters, "instance created into a cluster that is gone"
        self.instances.setdefault(
            run.instance_id,
            InstanceView(
                instance_id=run.instance_id,
                status="creating",
                cluster_id=run.cluster_id,
                tags={OWNER_TAG: STACK, RUN_ID_TAG: run.run_id, SOURCE_DB_TAG: run.source_db},
            ),
        )

    def set_cluster_master_password(self, run: RunRecord, password: str) -> None:
        assert run.cluster_id is not None
        self.calls.append(("set_cluster_master_password", run.cluster_id))
        self.passwords[run.cluster_id] = password
        self.set_cluster_status(run.cluster_id, "resetting-master-credentials")

    def delete_drill_cluster(self, run_id: str, cluster_id: str) -> None:
        self.calls.append(("delete_cluster", cluster_id))
        view = self.describe_drill_cluster(cluster_id)
        if view is None:
            return
        assert view.owned_by(STACK, run_id), "the drill tried to delete a cluster it does not own"
        assert not view.members, "DeleteDBCluster while the cluster still has instances"
        self.set_cluster_status(cluster_id, "deleting")

    def offers_instance_class(self, engine: str, engine_version: str, instance_class: str) -> bool:
        self.calls.append(("offers_instance_class", instance_class))
        return (engine, engine_version, instance_class) in self.orderable

    def list_drill_clusters(self) -> list[ClusterView]:
        return [
            view
            for cluster_id in self.clusters
            if (view := self.describe_drill_cluster(cluster_id)) is not None
            and view.tags.get(OWNER_TAG) == STACK
        ]

    def count(self, call: str) -> int:
        return sum(1 for name, _ in self.calls if name == call)


class FakeVault:
    def __init__(self) -> None:
        self.params: dict[str, str] = {}

    def get_or_create(self, name: str) -> str:
        return self.params.setdefault(name, new_password())

    def delete(self, name: str) -> None:
        self.params.pop(name, None)


@dataclass
class Recorder:
    items: list[Any] = field(default_factory=list)


class FakePolls(Recorder):
    def schedule(self, run_id: str, delay_seconds: int) -> None:
        self.items.append((run_id, delay_seconds))


class FakeChecker(Recorder):
    def invoke(self, payload: dict[str, Any]) -> None:
        self.items.append(payload)


class FakeReports:
    """Keeps every object as stored (bytes and content type); JSON reports also parsed."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.documents: dict[str, dict[str, Any]] = {}
        self.fail_next = 0  # writes that fail the way an S3 outage does, after retries

    def put(self, key: str, body: bytes, content_type: str) -> str:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("S3 unreachable")
        self.objects[key] = (body, content_type)
        if content_type == "application/json":
            self.documents[key] = json.loads(body)
        return f"s3://reports-bucket/{key}"


class FakeEvents(Recorder):
    def drill_finished(self, detail: dict[str, Any]) -> None:
        self.items.append(detail)


@dataclass
class World:
    ctx: DrillContext
    clock: Clock
    runs: InMemoryRunStore
    rds: FakeRds
    vault: FakeVault
    polls: FakePolls
    checker: FakeChecker
    reports: FakeReports
    events: FakeEvents
    slots: InMemorySlotStore


def world(**setting_overrides: Any) -> World:
    clock = Clock()
    runs, rds, vault = InMemoryRunStore(), FakeRds(), FakeVault()
    polls, checker, reports, events = FakePolls(), FakeChecker(), FakeReports(), FakeEvents()
    slots = InMemorySlotStore(runs)
    ctx = DrillContext(
        settings=settings(**setting_overrides),
        clock=clock,
        runs=runs,
        rds=rds,
        vault=vault,
        polls=polls,
        checker=checker,
        reports=reports,
        events=events,
        slots=slots,
    )
    return World(
        ctx=ctx,
        clock=clock,
        runs=runs,
        rds=rds,
        vault=vault,
        polls=polls,
        checker=checker,
        reports=reports,
        events=events,
        slots=slots,
    )


class MemoryWorkStore:
    """The check runner's work store (checks in rounds), as S3 would keep it: every document
    written and read back as JSON; a claim taken once."""

    def __init__(self) -> None:
        self.work: dict[str, dict[str, Any]] = {}
        self.claims: dict[tuple[str, int, int], dict[str, list[str]]] = {}
        self.coverage: dict[tuple[str, str], dict[str, Any]] = {}
        self.baselines: dict[str, dict[str, Any]] = {}

    def load(self, run_id: str) -> dict[str, Any] | None:
        return self.work.get(run_id)

    def save(self, run_id: str, document: dict[str, Any]) -> None:
        self.work[run_id] = json.loads(json.dumps(document))

    def claim(self, run_id: str, round_: int, attempt: int, tasks: dict[str, list[str]]) -> bool:
        if (run_id, round_, attempt) in self.claims:
            return False
        self.claims[(run_id, round_, attempt)] = tasks
        return True

    def claimed(self, run_id: str, round_: int, attempt: int) -> dict[str, list[str]] | None:
        return self.claims.get((run_id, round_, attempt))

    def load_coverage(self, source_db: str, database: str) -> dict[str, Any] | None:
        return self.coverage.get((source_db, database))

    def save_coverage(self, source_db: str, database: str, document: dict[str, Any]) -> None:
        self.coverage[(source_db, database)] = json.loads(json.dumps(document))

    def save_baseline(self, source_db: str, run_id: str, document: dict[str, Any]) -> str:
        key = f"baselines/{source_db}/{run_id}.json.gz"
        self.baselines[key] = json.loads(json.dumps(document))
        return key

    def load_baseline(self, key: str) -> dict[str, Any] | None:
        return self.baselines.get(key)
