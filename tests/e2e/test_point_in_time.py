"""Point-in-time drills end to end through the local cloud, on real PostgreSQL: the source
archives its WAL, its automated snapshot is the base backup, and the drill restores to the
LatestRestorableTime by replaying the archive; rows written after the snapshot are found (the
logs replayed) and the RPO is measured. With a segment missing from the archive, the restore fails
and the drill ends FAILED saying why, with nothing left running."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from restoredrill.domain.drill import run_id_for
from restoredrill.domain.point_in_time import point_in_time_key
from restoredrill.domain.report.location import report_key
from restoredrill.ports.records import RunRecord, Verdict

from localcloud.cloud import AURORA_SOURCE, LocalCloud, SourceDatabase

from .conftest import assert_invariants

pytestmark = pytest.mark.e2e

POLICY = """\
version: 1
databases:
  clinic-db:
    level: 2
    freshness:
      - {name: newest booking, database: clinic, schema: clinic, table: appointments,
         column: created_at, max_age: 26h}
    pitr: {every: 24h, max_rpo: 5m}
  ledger-db:
    level: 2
    freshness:
      - {name: newest booking, database: clinic, schema: clinic, table: appointments,
         column: created_at, max_age: 26h}
    pitr: on demand
  clinic-aurora:
    level: 2
    freshness:
      - {name: newest booking, database: clinic, schema: clinic, table: appointments,
         column: created_at, max_age: 26h}
    pitr: on demand
"""
DAY = 86400.0
WAL_SEGMENT_NAME_LENGTH = 24


def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "drill-policy.yaml"
    path.write_text(POLICY)
    return path


def write_bookings(source: SourceDatabase, count: int) -> datetime:
    """New appointments on the source, made now; the newest one's created_at."""
    clinic = source.server.admin_connect("clinic")
    try:
        clinic.run(
            "INSERT INTO clinic.appointments (appointment_id, patient_id, practitioner_id, "
            "scheduled_at, duration_minutes, status, created_at) "
            "SELECT (SELECT max(appointment_id) FROM clinic.appointments) + g, "
            "(SELECT min(patient_id) FROM clinic.patients), "
            "(SELECT min(practitioner_id) FROM clinic.practitioners), "
            "now() + interval '1 day', 30, 'scheduled', clock_timestamp() "
            "FROM generate_series(1, :count) g",
            count=count,
        )
        ((newest,),) = clinic.run("SELECT max(created_at) FROM clinic.appointments")
    finally:
        clinic.close()
    return newest  # type: ignore[no-any-return]


def switch_wal(source: SourceDatabase) -> None:
    admin = source.server.admin_connect()
    try:
        admin.run("SELECT pg_switch_wal()")
    finally:
        admin.close()


def wait_for_any(cloud: LocalCloud, run_ids: list[str], timeout: float) -> RunRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_id in run_ids:
            run = cloud.run(run_id)
            if run is not None:
                finished = cloud.wait_for_run(run_id, timeout=max(deadline - time.monotonic(), 1))
                assert finished is not None
                return finished
        time.sleep(0.2)
    raise AssertionError(f"none of {run_ids} was started")


def test_a_scheduled_point_in_time_drill_replays_the_logs_and_measures_the_rpo(
    tmp_path: Path,
) -> None:
    with LocalCloud(patients=300, policy_file=policy_file(tmp_path)) as cloud:
        assert cloud.aws is not None and cloud.rds is not None
        # Given a database that archives its WAL, its automated snapshot (the base backup; no
        # snapshot drill is started), and bookings written after it
        source = cloud.create_source_database("clinic-db", point_in_time=True)
        cloud.rds.create_automated_snapshot("clinic-db")
        snapshot_done = datetime.now(UTC)
        switch_wal(source)
        written = write_bookings(source, 5)
        assert written > snapshot_done
        # When RDS ships its logs (LatestRestorableTime moves past the bookings) and the
        # sweeper's schedule (pitr: every 24h) comes round
        restorable = cloud.rds.ship_logs("clinic-db")
        now = datetime.now(UTC)
        # (the next window's key too, should the drill start after midnight UTC)
        keys = {
            point_in_time_key("clinic-db", DAY, now),
            point_in_time_key("clinic-db", DAY, now + timedelta(minutes=3)),
        }
        run = wait_for_any(cloud, [run_id_for(key) for key in keys], timeout=180)
        # Then the drill restored to the LatestRestorableTime and passed
        assert run.verdict is Verdict.PASSED, run.reason
        assert run.trigger == "point-in-time schedule"
        assert run.point_in_time is not None and run.point_in_time.restore_time == restorable
        assert_invariants(cloud, run, Verdict.PASSED)
        # And its report says so: the bookings written after the snapshot were found (the logs
        # replayed), and the RPO is the gap from them to the requested time
        report = cloud.report(report_key(run))
        point_in_time = report["point_in_time"]
        assert datetime.fromisoformat(point_in_time["requested_time"]) == restorable
        newest = datetime.fromisoformat(point_in_time["newest_data"].replace(" ", "T"))
        assert newest == written > snapshot_done
        assert point_in_time["rpo_seconds"] == pytest.approx(
            (restorable - written).total_seconds(), abs=0.01
        )
        assert 0 <= point_in_time["rpo_seconds"] < 60
        assert point_in_time["max_rpo_seconds"] == 300
        assert report["snapshot"]["snapshot_type"] == "point-in-time"
        # And Slack says it was a point-in-time drill
        (message,) = cloud.slack_messages_for(run.run_id)
        assert "Point-in-time restore drill PASSED: clinic-db" in message["body"]["text"]
        # And the source was never touched: still there, still archiving
        assert cloud.instance_exists("clinic-db") and source.server.running
        # And the sweeps after it start no second drill in the same window
        time.sleep(12)
        finished = [r for r in cloud.all_runs() if r.point_in_time is not None]
        assert [r.run_id for r in finished] == [run.run_id]


def test_a_point_in_time_drill_with_a_wal_segment_missing_fails_and_says_why(
    tmp_path: Path,
) -> None:
    with LocalCloud(patients=300, policy_file=policy_file(tmp_path)) as cloud:
        assert cloud.aws is not None and cloud.rds is not None
        # Given a database whose base backup is followed by bookings in a WAL segment of their
        # own, and that segment lost from the archive
        source = cloud.create_source_database("ledger-db", point_in_time=True)
        event = cloud.rds.create_automated_snapshot("ledger-db")
        backup = cloud.rds.snapshot_data_dir(str(event["detail"]["SourceIdentifier"]))
        assert backup is not None
        # (a booking, then a switch: the bookings below start a segment after the backup's last,
        # whether or not the backup streamed the start of the next one)
        write_bookings(source, 1)
        switch_wal(source)
        write_bookings(source, 5)
        cloud.rds.ship_logs("ledger-db")
        archive = cloud.rds.wal_archive_dir("ledger-db")
        assert archive is not None
        last_in_backup = max(
            path.name
            for path in (backup / "pg_wal").iterdir()
            if len(path.name) == WAL_SEGMENT_NAME_LENGTH
        )
        after_backup = sorted(
            path
            for path in archive.iterdir()
            if len(path.name) == WAL_SEGMENT_NAME_LENGTH and path.name > last_in_backup
        )
        assert after_backup, "no WAL segment archived after the base backup"
        after_backup[0].unlink()
        # When a point-in-time drill is requested (restoredrill drill --point-in-time)
        cloud.aws.emit(
            {
                "source": "restoredrill",
                "detail-type": "Drill Requested",
                "detail": {
                    "db_instance_identifier": "ledger-db",
                    "point_in_time": True,
                    "requested_by": "e2e",
                    "request_id": "pitr-missing-wal",
                },
            },
            bus=cloud.aws.physical_id("DrillBus"),
        )
        run = cloud.wait_for_run(run_id_for("request:pitr-missing-wal"), timeout=180)
        # Then the drill is FAILED, saying the WAL could not be replayed to the requested time
        assert run is not None and run.verdict is Verdict.FAILED, run
        assert run.reason is not None
        assert "point-in-time restore to" in run.reason
        assert "WAL" in run.reason and "could not be replayed to the requested time" in run.reason
        assert run.checks is None
        # And every promise holds: instance and server gone, password deleted, report, one
        # Drill Finished, one Slack message; nothing of the drill left running
        assert_invariants(cloud, run, Verdict.FAILED)
        assert cloud.drill_servers_running() == 0
        report = cloud.report(report_key(run))
        assert report["point_in_time"]["newest_data"] is None
        assert report["point_in_time"]["rpo_seconds"] is None
        (message,) = cloud.slack_messages_for(run.run_id)
        assert "Point-in-time restore drill FAILED: ledger-db" in message["body"]["text"]


def test_an_aurora_point_in_time_drill_replays_the_logs_into_the_restored_cluster(
    tmp_path: Path,
) -> None:
    with LocalCloud(patients=300, policy_file=policy_file(tmp_path)) as cloud:
        assert cloud.aws is not None and cloud.rds is not None
        # Given an Aurora cluster that archives its WAL, its automated cluster snapshot, and
        # bookings written after it, shipped
        source = cloud.create_source_cluster(AURORA_SOURCE, point_in_time=True)
        cloud.rds.create_automated_cluster_snapshot(AURORA_SOURCE)
        switch_wal(source)
        written = write_bookings(source, 3)
        restorable = cloud.rds.ship_logs(AURORA_SOURCE)
        # When a point-in-time drill of the cluster is requested
        cloud.aws.emit(
            {
                "source": "restoredrill",
                "detail-type": "Drill Requested",
                "detail": {
                    "db_cluster_identifier": AURORA_SOURCE,
                    "point_in_time": True,
                    "request_id": "pitr-aurora",
                },
            },
            bus=cloud.aws.physical_id("DrillBus"),
        )
        run = cloud.wait_for_run(run_id_for("request:pitr-aurora"), timeout=180)
        # Then the cluster was restored to that time and the drill passed, cluster and instance
        # gone and nothing left running
        assert run is not None and run.verdict is Verdict.PASSED, run
        assert run.cluster_id is not None and run.point_in_time is not None
        assert run.point_in_time.restore_time == restorable
        assert_invariants(cloud, run, Verdict.PASSED)
        # And the bookings written after the snapshot were in it
        report = cloud.report(report_key(run))
        newest = datetime.fromisoformat(report["point_in_time"]["newest_data"].replace(" ", "T"))
        assert newest == written
        assert report["topology"]["kind"] == "aurora-cluster"
        assert cloud.cluster_exists(AURORA_SOURCE) and source.server.running
