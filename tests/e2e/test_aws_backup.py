"""AWS Backup recovery points through the local cloud: the test plays AWS Backup (a recovery point
of the source, an awsbackup: DB snapshot taken like an automated one, and its Backup Job or Copy
Job State Change on the default bus); the stack drills it on real PostgreSQL, once per recovery
point, and the report says which recovery point, vault, jobs and plan it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from restoredrill.ports.records import RunRecord, Verdict

from drillharness.invariants import check_nothing_running
from localcloud.cloud import BACKUP_PLAN, BACKUP_VAULT, Fault, LocalCloud
from localcloud.postgres import running_servers
from localcloud.rds import RdsFaults
from tests.e2e.conftest import assert_invariants

pytestmark = pytest.mark.e2e

DR_REGION = "eu-west-1"
DR_VAULT = "clinic-dr-vault"
REFUSED = Fault(
    "refuse-awsbackup-restore",
    "RDS refuses RestoreDBInstanceFromDBSnapshot of the AWS Backup snapshot",
    verdict=Verdict.ERROR,
    rds=RdsFaults(
        refuse_restore=(
            "InvalidParameterCombination",
            "The snapshot is managed by AWS Backup and cannot be restored directly",
        )
    ),
)


def recovery_point_runs(cloud: LocalCloud) -> list[RunRecord]:
    return [run for run in cloud.all_runs() if run.recovery_point is not None]


def test_a_completed_backup_job_drills_its_recovery_point_once_and_a_refusal_is_clear(
    cloud: LocalCloud,
) -> None:
    # Given an opted-in database, and AWS Backup completing a backup job of it (the event
    # delivered twice)
    assert cloud.aws is not None
    cloud.create_source_database("clinic-db")
    run_id, event = cloud.backup_job("clinic-db")
    cloud.aws.emit(event)
    # When the drill runs
    run = cloud.wait_for_run(run_id, timeout=150)
    # Then the recovery point was restored, checked and torn down: PASSED, every promise kept
    assert run is not None and run.verdict is Verdict.PASSED, run and run.reason
    assert_invariants(cloud, run, Verdict.PASSED)
    assert run.snapshot.snapshot_id.startswith("awsbackup:job-")
    # And the duplicate event started nothing
    assert [r.run_id for r in recovery_point_runs(cloud)] == [run_id]
    # And the report says which recovery point, vault, job and plan it was
    assert run.report_key is not None
    point = cloud.report(run.report_key)["recovery_point"]
    assert point["kind"] == "backup"
    assert point["recovery_point_arn"] == event["resources"][0]
    assert point["vault_name"] == BACKUP_VAULT and point["backup_plan_id"] == BACKUP_PLAN
    assert point["backup_job_id"] == event["detail"]["backupJobId"]
    assert "carries the tag restoredrill:drill=enabled" in point["opted_in_by"]
    [message] = cloud.slack_messages_for(run_id)
    assert "AWS Backup recovery point in vault clinic-vault" in str(message)

    # Given RDS refuses to restore the next recovery point directly
    refused_id, _ = cloud.backup_job("clinic-db", fault=REFUSED)
    # When its drill runs
    refused = cloud.wait_for_run(refused_id, timeout=120)
    # Then it ends ERROR naming the refusal, the recovery point and the alternative, with its
    # report and message, and nothing of it is left
    assert refused is not None and refused.verdict is Verdict.ERROR
    reason = refused.reason or ""
    assert "InvalidParameterCombination" in reason and "managed by AWS Backup" in reason
    assert refused.recovery_point is not None
    assert refused.recovery_point.recovery_point_arn in reason
    assert "StartRestoreJob" in reason and "docs/aws-backup.md" in reason
    assert_invariants(cloud, refused, Verdict.ERROR)


@pytest.fixture
def dr_cloud() -> Iterator[LocalCloud]:
    """The stack in a second Region, opted in to the recovery points of the DR vault."""
    servers_before = set(map(id, running_servers()))
    local = LocalCloud(
        patients=300, region=DR_REGION, parameter_overrides={"BackupOptInVaults": DR_VAULT}
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()
    assert [s for s in running_servers() if id(s) not in servers_before] == []
    assert check_nothing_running(local) == []


def test_a_copy_completed_in_a_second_region_is_drilled_there_by_its_vault(
    dr_cloud: LocalCloud,
) -> None:
    # Given the stack in eu-west-1, a database there without the opt-in tag (its tag cannot
    # opt the copy in) and AWS Backup completing a copy from us-east-1 into the listed vault
    cloud = dr_cloud
    assert cloud.aws is not None
    cloud.create_source_database("clinic-db")
    rds = cloud.aws.client("rds")
    [source] = rds.describe_db_instances(DBInstanceIdentifier="clinic-db")["DBInstances"]
    rds.remove_tags_from_resource(
        ResourceName=source["DBInstanceArn"], TagKeys=["restoredrill:drill"]
    )
    run_id, event = cloud.backup_job("clinic-db", vault=DR_VAULT, copy_from="us-east-1")
    # When the drill runs
    run = cloud.wait_for_run(run_id, timeout=150)
    # Then the copy was drilled in eu-west-1 to PASSED
    assert run is not None and run.verdict is Verdict.PASSED, run and run.reason
    assert_invariants(cloud, run, Verdict.PASSED)
    assert run.snapshot.snapshot_id.startswith("awsbackup:copyjob-")
    assert run.snapshot.region == DR_REGION
    assert run.report_key is not None and run.report_key.startswith(f"reports/{DR_REGION}/")
    # And the report says it is a copy, from where, by which jobs, and why it was drilled
    point = cloud.report(run.report_key)["recovery_point"]
    assert point["kind"] == "copy" and point["source_region"] == "us-east-1"
    assert point["recovery_point_arn"] == event["detail"]["destinationRecoveryPointArn"]
    assert point["copy_job_id"] == event["detail"]["copyJobId"]
    assert point["vault_name"] == DR_VAULT
    assert point["opted_in_by"] == f"vault {DR_VAULT} is listed in BackupOptInVaults"

    # And the same event again starts nothing; a copy into a vault that is not listed (of a
    # database without the tag) starts no drill at all
    cloud.aws.emit(event)
    unlisted_id, _ = cloud.backup_job("clinic-db", vault="other-vault", copy_from="us-east-1")
    assert cloud.aws.delivery.wait_idle(timeout=60)
    assert cloud.run(unlisted_id) is None
    assert [r.run_id for r in cloud.all_runs() if r.recovery_point is not None] == [run_id]
