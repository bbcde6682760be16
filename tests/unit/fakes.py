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
    InstanceView,
    Lease,
    ReportLink,
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
