"""localcloud.rds: moto's RDS served over HTTP, with real PostgreSQL servers behind it.

Unlike the other adapter tests (in-process ``mock_aws``), these run moto's ThreadedMotoServer on
a loopback port and talk to it with boto3, as the Lambda handlers do in the local cloud.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pg8000.native
import pytest
from botocore.exceptions import ClientError
from moto.rds.models import DBInstance, RDSBackend
from moto.server import ThreadedMotoServer

from localcloud import postgres
from localcloud.clinic import create_master_user, load_clinic
from localcloud.postgres import PostgresServer, init_cluster, make_parent_dir
from localcloud.rds import LocalRds, RdsFaults

ACCOUNT = "123456789012"
REGION = "us-east-1"
MASTER = "clinic_admin"
MASTER_PASSWORD = "source-Passw0rd"
SOURCE_TAGS = {"team": "clinic", "restoredrill:drill": "enabled"}
SAMPLES = Path("/work/shared/aws-events")
SAMPLE_0091 = "rds-db-snapshot-event_automated-created_RDS-EVENT-0091.json"
PATIENTS = 300


class Events:
    """Thread-safe sink for emit_event, with waiting."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def __call__(self, event: dict[str, Any]) -> None:
        with self._changed:
            self._events.append(json.loads(json.dumps(event)))  # must be JSON as-is
            self._changed.notify_all()

    @property
    def ids(self) -> list[str]:
        with self._changed:
            return [event["detail"]["EventID"] for event in self._events]

    def for_instance(self, identifier: str) -> list[dict[str, Any]]:
        with self._changed:
            return [e for e in self._events if e["detail"]["SourceIdentifier"] == identifier]

    def wait_for(self, identifier: str, event_id: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events:
                    detail = event["detail"]
                    if detail["SourceIdentifier"] == identifier and detail["EventID"] == event_id:
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {event_id} for {identifier}; got {self._events}")
                self._changed.wait(remaining)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def rds(moto_endpoint: str) -> Any:
    return boto3.client(
        "rds",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def pg_dir() -> Iterator[Path]:
    path = make_parent_dir("restoredrill-rds-tests-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def source_server(pg_dir: Path) -> Iterator[PostgresServer]:
    """The production database: the clinic, owned by the master user."""
    server = init_cluster(pg_dir, "source")
    server.start()
    admin = server.admin_connect()
    create_master_user(admin, MASTER, MASTER_PASSWORD)
    admin.run(f'CREATE DATABASE clinic OWNER "{MASTER}"')
    admin.close()
    conn = server.admin_connect("clinic")
    load_clinic(conn, patients=PATIENTS, owner=MASTER)
    conn.close()
    yield server
    server.destroy()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def faults() -> RdsFaults:
    return RdsFaults()


@pytest.fixture
def local_rds(
    moto_endpoint: str, pg_dir: Path, events: Events, faults: RdsFaults
) -> Iterator[LocalRds]:
    local = LocalRds(
        state_dir=pg_dir / f"state-{uuid.uuid4().hex[:8]}",
        account_id=ACCOUNT,
        region=REGION,
        emit_event=events,
        faults=faults,
    )
    local.install()
    yield local
    local.shutdown()
    local.uninstall()


@pytest.fixture
def source_id(local_rds: LocalRds, source_server: PostgresServer) -> str:
    """A fresh source instance in moto for this test, served by the module's server."""
    identifier = f"clinic-db-{uuid.uuid4().hex[:6]}"
    local_rds.register_source_instance(
        db_instance_identifier=identifier,
        server=source_server,
        master_username=MASTER,
        master_password=MASTER_PASSWORD,
        tags=SOURCE_TAGS,
        db_name="clinic",
    )
    return identifier


@pytest.fixture
def snapshot_id(local_rds: LocalRds, source_id: str) -> str:
    event = local_rds.create_automated_snapshot(source_id)
    return str(event["detail"]["SourceIdentifier"])


def _describe(rds: Any, identifier: str) -> dict[str, Any]:
    return dict(rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])


def _wait_status(
    rds: Any, identifier: str, until: Callable[[str], bool], timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        instance = _describe(rds, identifier)
        if until(instance["DBInstanceStatus"]) or time.monotonic() > deadline:
            return instance
        time.sleep(0.05)


def _wait_gone(rds: Any, identifier: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _describe(rds, identifier)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "DBInstanceNotFound":
                return True
            raise
        time.sleep(0.05)
    return False


def _restore(rds: Any, snapshot_id: str, **extra: Any) -> str:
    identifier = f"restoredrill-{uuid.uuid4().hex[:10]}"
    rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier=identifier,
        DBSnapshotIdentifier=snapshot_id,
        DBInstanceClass="db.t3.micro",
        **extra,
    )
    return identifier


def _connect(instance: dict[str, Any], password: str) -> pg8000.native.Connection:
    return pg8000.native.Connection(
        MASTER,
        host=instance["Endpoint"]["Address"],
        port=instance["Endpoint"]["Port"],
        password=password,
        database="clinic",
        ssl_context=True,
        timeout=10,
    )


def _error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# ---------------------------------------------------------------------------------------------


def test_whole_lifecycle_restore_reset_delete_with_events(
    rds: Any, local_rds: LocalRds, events: Events, snapshot_id: str
) -> None:
    tags = [{"Key": "restoredrill:run-id", "Value": "run-1"}]

    # When the snapshot is restored
    identifier = f"restoredrill-{uuid.uuid4().hex[:10]}"
    answer = rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier=identifier,
        DBSnapshotIdentifier=snapshot_id,
        DBInstanceClass="db.t3.micro",
        Tags=tags,
        BackupRetentionPeriod=0,
    )["DBInstance"]

    # Then RDS answers "creating" without an endpoint, as AWS does
    assert answer["DBInstanceStatus"] == "creating"
    assert "Endpoint" not in answer
    arn = answer["DBInstanceArn"]

    # And it becomes available on a real loopback server, announced by RDS-EVENT-0043
    restored = events.wait_for(identifier, "RDS-EVENT-0043")
    instance = _describe(rds, identifier)
    assert instance["DBInstanceStatus"] == "available"
    assert instance["Endpoint"]["Address"] == "127.0.0.1"
    assert instance["MasterUsername"] == MASTER
    assert restored["detail"]["Message"] == f"Restored from snapshot {snapshot_id}"
    assert restored["detail"]["SourceArn"] == arn
    assert restored["resources"] == [arn]
    assert restored["detail"]["Tags"] == {"restoredrill:run-id": "run-1"}
    # BackupRetentionPeriod=0: no automated backup of the drill instance (moto would make one)
    assert (
        rds.describe_db_snapshots(DBInstanceIdentifier=identifier, SnapshotType="automated")[
            "DBSnapshots"
        ]
        == []
    )
    # the source's password works (a physical copy keeps the roles), the data is there
    conn = _connect(instance, MASTER_PASSWORD)
    assert conn.run("SELECT count(*) FROM clinic.patients") == [[PATIENTS]]
    conn.close()

    # When the master password is reset
    modified = rds.modify_db_instance(
        DBInstanceIdentifier=identifier, MasterUserPassword="Drill-pass-123", ApplyImmediately=True
    )["DBInstance"]

    # Then RDS answers "resetting-master-credentials", then RDS-EVENT-0016 follows
    assert modified["DBInstanceStatus"] == "resetting-master-credentials"
    reset = events.wait_for(identifier, "RDS-EVENT-0016")
    assert reset["detail"]["SourceArn"] == arn
    assert reset["detail"]["Message"] == "Reset master credentials."
    assert _describe(rds, identifier)["DBInstanceStatus"] == "available"
    # and only the new password opens the database
    _connect(instance, "Drill-pass-123").close()
    with pytest.raises(pg8000.native.DatabaseError):
        _connect(instance, MASTER_PASSWORD)

    # When it is deleted
    server = local_rds.running_servers()[0]
    pid = server.pid
    assert pid is not None
    deleting = rds.delete_db_instance(
        DBInstanceIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
    )["DBInstance"]

    # Then RDS answers "deleting", the instance goes away with its server, RDS-EVENT-0003 says so
    assert deleting["DBInstanceStatus"] == "deleting"
    deleted = events.wait_for(identifier, "RDS-EVENT-0003")
    assert _wait_gone(rds, identifier)
    assert not postgres._pid_alive(pid)
    assert not server.data_dir.exists()
    assert local_rds.running_servers() == []
    assert deleted["detail"]["SourceArn"] == arn
    assert "Tags" not in deleted["detail"]
    # And the events came in the order AWS sends them, in EventBridge's envelope
    assert [e["detail"]["EventID"] for e in events.for_instance(identifier)] == [
        "RDS-EVENT-0043",
        "RDS-EVENT-0016",
        "RDS-EVENT-0003",
    ]
    for event in (restored, reset, deleted):
        assert event["detail-type"] == "RDS DB Instance Event"
        assert event["source"] == "aws.rds"
        assert (event["account"], event["region"]) == (ACCOUNT, REGION)
        assert event["detail"]["SourceType"] == "DB_INSTANCE"
        assert event["time"].endswith("Z")
        assert event["detail"]["Date"].endswith("Z")
        uuid.UUID(event["id"])


def test_restored_instance_holds_the_data_as_of_the_snapshot(
    rds: Any,
    local_rds: LocalRds,
    events: Events,
    source_id: str,
    source_server: PostgresServer,
) -> None:
    # Given a snapshot, and a row added to the source afterwards
    snapshot_id = local_rds.create_automated_snapshot(source_id)["detail"]["SourceIdentifier"]
    source = source_server.connect(MASTER, MASTER_PASSWORD, "clinic")
    source.run("CREATE TABLE clinic.after_snapshot (n int)")
    source.close()
    try:
        # When the snapshot is restored (by ARN, as a handler may pass it)
        snapshot_arn = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][
            0
        ]["DBSnapshotArn"]
        identifier = _restore(rds, snapshot_arn)
        events.wait_for(identifier, "RDS-EVENT-0043")

        # Then the copy lacks the later change and has its own server
        instance = _describe(rds, identifier)
        assert instance["Endpoint"]["Port"] != source_server.port
        conn = _connect(instance, MASTER_PASSWORD)
        assert conn.run("SELECT to_regclass('clinic.after_snapshot')") == [[None]]
        conn.close()
    finally:
        source = source_server.connect(MASTER, MASTER_PASSWORD, "clinic")
        source.run("DROP TABLE clinic.after_snapshot")
        source.close()


def test_automated_snapshot_event_has_the_aws_shape(
    rds: Any, local_rds: LocalRds, source_id: str
) -> None:
    # When two automated snapshots are taken within the same minute
    first = local_rds.create_automated_snapshot(source_id)
    second = local_rds.create_automated_snapshot(source_id)

    # Then the event has exactly the keys of the AWS sample, at every level
    sample = json.loads((SAMPLES / SAMPLE_0091).read_text())
    assert first.keys() == sample.keys()
    assert first["detail"].keys() == sample["detail"].keys()
    assert {k: first[k] for k in ("detail-type", "source", "version")} == {
        k: sample[k] for k in ("detail-type", "source", "version")
    }
    detail = first["detail"]
    assert detail["EventID"] == "RDS-EVENT-0091"
    assert detail["SourceType"] == "SNAPSHOT"
    assert detail["Message"] == "Automated snapshot created"
    assert detail["EventCategories"] == ["creation"]
    assert detail["Tags"] == SOURCE_TAGS
    assert detail["SourceIdentifier"].startswith(f"rds:{source_id}-")
    assert detail["SourceArn"] == (
        f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:{detail['SourceIdentifier']}"
    )
    assert first["resources"] == [detail["SourceArn"]]
    # And the ids differ, both snapshots being in RDS as automated and available
    ids = {first["detail"]["SourceIdentifier"], second["detail"]["SourceIdentifier"]}
    assert len(ids) == 2
    listed = rds.describe_db_snapshots(DBInstanceIdentifier=source_id, SnapshotType="automated")[
        "DBSnapshots"
    ]
    assert {s["DBSnapshotIdentifier"] for s in listed} == ids
    assert {s["Status"] for s in listed} == {"available"}
    assert {s["Engine"] for s in listed} == {"postgres"}


def test_source_instance_endpoint_is_the_real_server(
    rds: Any, source_id: str, source_server: PostgresServer
) -> None:
    instance = _describe(rds, source_id)
    assert instance["Endpoint"] == {"Address": "127.0.0.1", "Port": source_server.port}
    assert instance["Engine"] == "postgres"
    tags = rds.list_tags_for_resource(ResourceName=instance["DBInstanceArn"])["TagList"]
    assert {t["Key"]: t["Value"] for t in tags} == SOURCE_TAGS
    # moto's own data-less "automated snapshot" of a new instance is not left behind
    assert (
        rds.describe_db_snapshots(DBInstanceIdentifier=source_id, SnapshotType="automated")[
            "DBSnapshots"
        ]
        == []
    )
    conn = _connect(instance, MASTER_PASSWORD)
    conn.close()


def test_restore_delay_holds_the_instance_in_creating(
    rds: Any, local_rds: LocalRds, events: Events, faults: RdsFaults, snapshot_id: str
) -> None:
    # Given restores take a while
    faults.restore_delay_seconds = 1.0

    # When a snapshot is restored
    started = time.monotonic()
    identifier = _restore(rds, snapshot_id)

    # Then it stays "creating", with no endpoint and no server, until the delay is over
    time.sleep(0.4)
    waiting = _describe(rds, identifier)
    assert waiting["DBInstanceStatus"] == "creating"
    assert "Endpoint" not in waiting
    assert local_rds.running_servers() == []
    events.wait_for(identifier, "RDS-EVENT-0043")
    assert time.monotonic() - started >= 1.0
    assert _describe(rds, identifier)["DBInstanceStatus"] == "available"


def test_failed_restore_leaves_an_incompatible_instance_and_no_server(
    rds: Any, local_rds: LocalRds, events: Events, faults: RdsFaults, snapshot_id: str
) -> None:
    # Given restores fail
    faults.fail_restore = True

    # When a snapshot is restored
    identifier = _restore(rds, snapshot_id, Tags=[{"Key": "restoredrill:run-id", "Value": "x"}])

    # Then RDS-EVENT-0031 comes, the instance is incompatible-restore, and no server runs
    failed = events.wait_for(identifier, "RDS-EVENT-0031")
    assert failed["detail"]["EventCategories"] == ["failure"]
    assert failed["detail"]["Message"].startswith("DB instance put into failed state")
    assert failed["detail"]["SourceArn"].endswith(f":db:{identifier}")
    assert _describe(rds, identifier)["DBInstanceStatus"] == "incompatible-restore"
    assert local_rds.running_servers() == []
    assert list(local_rds.instances_dir.iterdir()) == []

    # And the password cannot be reset, but the instance can be deleted (skipping the snapshot)
    with pytest.raises(ClientError) as excinfo:
        rds.modify_db_instance(DBInstanceIdentifier=identifier, MasterUserPassword="Another-pass-1")
    assert _error_code(excinfo) == "InvalidDBInstanceState"
    rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
    events.wait_for(identifier, "RDS-EVENT-0003")
    assert _wait_gone(rds, identifier)
    assert [e["detail"]["EventID"] for e in events.for_instance(identifier)] == [
        "RDS-EVENT-0031",
        "RDS-EVENT-0003",
    ]


def test_delete_errors_are_the_ones_aws_gives(
    rds: Any, local_rds: LocalRds, events: Events, snapshot_id: str
) -> None:
    # An unknown instance
    with pytest.raises(ClientError) as unknown:
        rds.delete_db_instance(DBInstanceIdentifier="no-such-db", SkipFinalSnapshot=True)
    assert _error_code(unknown) == "DBInstanceNotFound"

    identifier = _restore(rds, snapshot_id)
    events.wait_for(identifier, "RDS-EVENT-0043")

    # Neither a final snapshot nor SkipFinalSnapshot
    with pytest.raises(ClientError) as no_final:
        rds.delete_db_instance(DBInstanceIdentifier=identifier)
    assert _error_code(no_final) == "InvalidParameterCombination"
    assert _describe(rds, identifier)["DBInstanceStatus"] == "available"


def test_delete_with_a_final_snapshot_keeps_a_restorable_copy(
    rds: Any, local_rds: LocalRds, events: Events, snapshot_id: str
) -> None:
    # Given a restored instance whose data was changed
    identifier = _restore(rds, snapshot_id)
    events.wait_for(identifier, "RDS-EVENT-0043")
    conn = _connect(_describe(rds, identifier), MASTER_PASSWORD)
    conn.run("DELETE FROM clinic.prescriptions")
    conn.close()

    # When it is deleted with a final snapshot
    final_id = f"final-{identifier}"
    rds.delete_db_instance(DBInstanceIdentifier=identifier, FinalDBSnapshotIdentifier=final_id)
    events.wait_for(identifier, "RDS-EVENT-0003")

    # Then the final snapshot is a manual snapshot that restores to the changed data
    snapshot = rds.describe_db_snapshots(DBSnapshotIdentifier=final_id)["DBSnapshots"][0]
    assert snapshot["SnapshotType"] == "manual"
    again = _restore(rds, final_id)
    events.wait_for(again, "RDS-EVENT-0043")
    conn = _connect(_describe(rds, again), MASTER_PASSWORD)
    assert conn.run("SELECT count(*) FROM clinic.prescriptions") == [[0]]
    assert conn.run("SELECT count(*) FROM clinic.patients") == [[PATIENTS]]
    conn.close()


def test_second_delete_while_deleting_is_invalid_state(
    rds: Any, local_rds: LocalRds, events: Events, snapshot_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    identifier = _restore(rds, snapshot_id)
    events.wait_for(identifier, "RDS-EVENT-0043")
    # Given the server takes a moment to go away
    release = threading.Event()
    original_destroy = PostgresServer.destroy

    def slow_destroy(self: PostgresServer) -> None:
        release.wait(10)
        original_destroy(self)

    monkeypatch.setattr(PostgresServer, "destroy", slow_destroy)

    # When it is deleted twice
    first = rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
    try:
        with pytest.raises(ClientError) as twice:
            rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
        described = _describe(rds, identifier)
    finally:
        release.set()

    # Then the first answers deleting, the second fails like AWS, describe shows deleting
    assert first["DBInstance"]["DBInstanceStatus"] == "deleting"
    assert _error_code(twice) == "InvalidDBInstanceState"
    assert described["DBInstanceStatus"] == "deleting"
    events.wait_for(identifier, "RDS-EVENT-0003")
    assert _wait_gone(rds, identifier)


def test_delete_while_creating_never_starts_a_server(
    rds: Any, local_rds: LocalRds, events: Events, faults: RdsFaults, snapshot_id: str
) -> None:
    # Given a slow restore under way
    faults.restore_delay_seconds = 0.5
    identifier = _restore(rds, snapshot_id)

    # When the instance is deleted while creating
    answer = rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)

    # Then it is deleted without ever being restored or leaving a server behind
    assert answer["DBInstance"]["DBInstanceStatus"] == "deleting"
    events.wait_for(identifier, "RDS-EVENT-0003")
    time.sleep(0.7)
    assert [e["detail"]["EventID"] for e in events.for_instance(identifier)] == ["RDS-EVENT-0003"]
    assert local_rds.running_servers() == []
    assert list(local_rds.instances_dir.iterdir()) == []


def test_password_reset_is_refused_while_creating_or_when_invalid(
    rds: Any, local_rds: LocalRds, events: Events, faults: RdsFaults, snapshot_id: str
) -> None:
    faults.restore_delay_seconds = 0.5
    identifier = _restore(rds, snapshot_id)

    # While creating
    with pytest.raises(ClientError) as creating:
        rds.modify_db_instance(DBInstanceIdentifier=identifier, MasterUserPassword="Valid-pass-1")
    assert _error_code(creating) == "InvalidDBInstanceState"

    events.wait_for(identifier, "RDS-EVENT-0043")
    # Passwords RDS for PostgreSQL rejects: '@', '/', '"', space, too short
    for bad in ("with@sign1", "with/slash1", 'with"quote', "with space1", "short"):
        with pytest.raises(ClientError) as invalid:
            rds.modify_db_instance(DBInstanceIdentifier=identifier, MasterUserPassword=bad)
        assert _error_code(invalid) == "InvalidParameterValue", bad
    assert _describe(rds, identifier)["DBInstanceStatus"] == "available"
    assert "RDS-EVENT-0016" not in [e["detail"]["EventID"] for e in events.for_instance(identifier)]


def test_a_copied_snapshot_restores_like_the_original(
    rds: Any, local_rds: LocalRds, events: Events, snapshot_id: str
) -> None:
    # Given a copy of the automated snapshot (what a drill does with a shared snapshot)
    copy_id = f"copy-{uuid.uuid4().hex[:8]}"
    rds.copy_db_snapshot(SourceDBSnapshotIdentifier=snapshot_id, TargetDBSnapshotIdentifier=copy_id)

    # When the copy is restored
    identifier = _restore(rds, copy_id)

    # Then it is a real restore of the same data
    restored = events.wait_for(identifier, "RDS-EVENT-0043")
    assert restored["detail"]["Message"] == f"Restored from snapshot {copy_id}"
    conn = _connect(_describe(rds, identifier), MASTER_PASSWORD)
    assert conn.run("SELECT count(*) FROM clinic.patients") == [[PATIENTS]]
    conn.close()


def test_restore_without_tags_copies_the_source_tags(
    rds: Any, local_rds: LocalRds, events: Events, snapshot_id: str
) -> None:
    identifier = _restore(rds, snapshot_id)
    restored = events.wait_for(identifier, "RDS-EVENT-0043")
    assert restored["detail"]["Tags"] == SOURCE_TAGS


def test_shutdown_stops_every_restored_server_but_not_the_source(
    rds: Any,
    local_rds: LocalRds,
    events: Events,
    snapshot_id: str,
    source_server: PostgresServer,
) -> None:
    identifiers = [_restore(rds, snapshot_id) for _ in range(2)]
    for identifier in identifiers:
        events.wait_for(identifier, "RDS-EVENT-0043")
    pids = [server.pid for server in local_rds.running_servers()]
    assert len(pids) == 2

    # When the local RDS shuts down
    local_rds.shutdown()

    # Then the drill servers are gone and the source still runs
    assert all(pid is not None and not postgres._pid_alive(pid) for pid in pids)
    assert local_rds.running_servers() == []
    assert source_server.running


def test_uninstall_gives_moto_back_exactly(moto_endpoint: str, pg_dir: Path, rds: Any) -> None:
    # Given moto's classes before
    before = {
        "backend": dict(RDSBackend.__dict__),
        "instance": dict(DBInstance.__dict__),
    }
    local = LocalRds(
        state_dir=pg_dir / f"state-{uuid.uuid4().hex[:8]}",
        account_id=ACCOUNT,
        region=REGION,
        emit_event=lambda event: None,
    )

    # When a LocalRds is installed
    local.install()
    patched = RDSBackend.__dict__["delete_db_instance"]
    # Then it patched moto, and a second one for the same region is refused
    assert patched is not before["backend"]["delete_db_instance"]
    other = LocalRds(
        state_dir=pg_dir / "other", account_id=ACCOUNT, region=REGION, emit_event=print
    )
    with pytest.raises(RuntimeError, match="another LocalRds"):
        other.install()

    # When it is uninstalled
    local.uninstall()

    # Then every attribute of moto's classes is the very object it was
    after = {
        "backend": dict(RDSBackend.__dict__),
        "instance": dict(DBInstance.__dict__),
    }
    assert after.keys() == before.keys()
    for key, attrs in before.items():
        assert after[key].keys() == attrs.keys()
        assert all(after[key][name] is value for name, value in attrs.items())
    # And plain moto is back: a new instance is available at once, at moto's fake host
    identifier = f"plain-{uuid.uuid4().hex[:6]}"
    created = rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="x",
        MasterUserPassword="password1",
        AllocatedStorage=20,
    )["DBInstance"]
    assert created["DBInstanceStatus"] == "available"
    assert created["Endpoint"]["Address"].endswith(".rds.amazonaws.com")


def test_a_source_that_keeps_no_logs_cannot_be_restored_to_a_point_in_time(
    rds: Any, local_rds: LocalRds, snapshot_id: str, source_id: str
) -> None:
    # Given a source with an automated snapshot but no WAL archive (logs never shipped)
    described = _describe(rds, source_id)
    # Then RDS shows it with no LatestRestorableTime ...
    assert "LatestRestorableTime" not in described
    # ... and refuses a point-in-time restore of it, creating nothing
    identifier = f"restoredrill-{uuid.uuid4().hex[:10]}"
    with pytest.raises(ClientError) as refused:
        rds.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier=source_id,
            TargetDBInstanceIdentifier=identifier,
            UseLatestRestorableTime=True,
        )
    assert _error_code(refused) == "PointInTimeRestoreNotEnabled"
    assert _wait_gone(rds, identifier, timeout=1)
    assert local_rds.running_servers() == []
