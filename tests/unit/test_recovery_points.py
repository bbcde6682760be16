"""AWS Backup recovery points as drill triggers: the Backup Job and Copy Job State Change samples
in events/start_drill/, everything malformed or foreign, the opt-in by tag, vault or plan, one
drill per recovery point, copies of other Regions, a refused restore, and what the report, its
page and Slack say."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from restoredrill.domain.announcement import render
from restoredrill.domain.drill import DrillRejected, advance_drill, start_drill
from restoredrill.domain.report.document import build_report
from restoredrill.domain.report.html import render_report_html
from restoredrill.domain.report.model import DrillFinished
from restoredrill.domain.report.schema import report_schema
from restoredrill.ports.gateways import EffectRejected
from restoredrill.ports.inbound_events import InvalidEvent
from restoredrill.ports.records import DrillRequest, RunState, Verdict
from restoredrill.ports.recovery_points import (
    is_recovery_point_event,
    parse_backup_job_event,
    parse_copy_job_event,
    parse_recovery_point_event,
)

from tests.unit.fakes import World, world

EVENTS = Path(__file__).resolve().parents[2] / "events"
BACKUP_SAMPLE = "start_drill/backup-job-completed.json"
COPY_SAMPLE = "start_drill/copy-job-completed.json"
RECOVERY_POINT = "awsbackup:job-5c1a2b3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
RECOVERY_POINT_ARN = f"arn:aws:rds:us-east-1:123456789012:snapshot:{RECOVERY_POINT}"
COPY = "awsbackup:copyjob-0175de71-5784-589f-d8ac-541accb4cac8"
OPTED_IN = {"restoredrill:drill": "enabled"}
PLAN = "8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d"


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def given_a_backed_up_database(tags: dict[str, str], **settings: Any) -> World:
    w = world(aws_region="us-east-1", **settings)
    w.rds.add_source("clinic-db", tags, RECOVERY_POINT)
    return w


# -- parsing ------------------------------------------------------------------------------------


def test_a_completed_backup_job_is_a_drill_of_its_recovery_point() -> None:
    # Given the completed backup job of an RDS DB instance
    event = sample(BACKUP_SAMPLE)
    # When it is parsed
    request = parse_recovery_point_event(event)
    # Then the drill names the awsbackup snapshot, and the recovery point says where it is from
    assert is_recovery_point_event(event)
    assert request.snapshot_id == RECOVERY_POINT and not request.cluster
    point = request.recovery_point
    assert point is not None
    assert point.kind == "backup" and point.recovery_point_arn == RECOVERY_POINT_ARN
    assert point.vault_name == "clinic-vault"
    assert point.vault_arn == "arn:aws:backup:us-east-1:123456789012:backup-vault:clinic-vault"
    assert point.backup_job_id == "5C1A2B3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"
    assert point.backup_plan_id == PLAN and point.copy_job_id is None
    assert point.resource_arn == "arn:aws:rds:us-east-1:123456789012:db:clinic-db"
    assert "Backup Job State Change" in request.trigger


def test_a_completed_copy_job_is_a_drill_of_the_copy_not_of_the_original() -> None:
    request = parse_recovery_point_event(sample(COPY_SAMPLE))
    point = request.recovery_point
    assert point is not None and request.snapshot_id == COPY
    assert point.kind == "copy"
    assert point.recovery_point_arn == f"arn:aws:rds:us-west-2:123456789012:snapshot:{COPY}"
    assert point.vault_name == "clinic-dr-vault" and point.copy_job_id == (
        "0175DE71-5784-589F-D8AC-541ACCB4CAC8"
    )
    assert point.source_recovery_point_arn == RECOVERY_POINT_ARN
    assert point.source_region == "us-east-1" and point.backup_plan_id == PLAN


def test_an_aurora_backup_job_is_a_cluster_drill_of_its_cluster_snapshot() -> None:
    event = sample(BACKUP_SAMPLE)
    event["detail"]["resourceType"] = "Aurora"
    event["resources"] = [
        "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:awsbackup:job-4ece7121-d60e"
    ]
    request = parse_backup_job_event(event)
    assert request.cluster and request.snapshot_id == "awsbackup:job-4ece7121-d60e"


def test_an_on_demand_backup_has_no_plan() -> None:
    event = sample(BACKUP_SAMPLE)
    del event["detail"]["createdBy"]
    point = parse_backup_job_event(event).recovery_point
    assert point is not None and point.backup_plan_id is None


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mangle(event: dict[str, Any]) -> None:
        target = event
        *parents, last = path.split(".")
        for part in parents:
            target = target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return mangle


_DELETE = object()


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (_set("detail.state", "FAILED"), "state 'FAILED' is not COMPLETED"),
        (_set("detail.state", "RUNNING"), "state 'RUNNING' is not COMPLETED"),
        (_set("detail.resourceType", "EC2"), "resourceType 'EC2' is not RDS or Aurora"),
        (_set("detail.resourceType", "DynamoDB"), "resourceType 'DynamoDB' is not RDS"),
        (_set("detail.resourceType", _DELETE), "resourceType None is not RDS"),
        (_set("resources", []), "resources must hold the recovery point's ARN, it holds 0"),
        (_set("resources", [RECOVERY_POINT_ARN] * 2), "it holds 2 entries"),
        (
            _set("resources", ["arn:aws:backup:us-east-1:123456789012:recovery-point:f1d9"]),
            "is not an AWS Backup recovery point of an RDS DB instance",
        ),
        (
            _set("resources", ["arn:aws:rds:us-east-1:123456789012:snapshot:rds:clinic-db-1"]),
            "is not an AWS Backup recovery point",
        ),
        (
            _set("resources", ["arn:aws:rds:us-east-1:123456789012:cluster-snapshot:awsbackup:x"]),
            "of an RDS DB instance",
        ),
        (
            _set("resources", ["arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job--x"]),
            "names no valid RDS snapshot identifier",
        ),
        (_set("detail.backupJobId", "../backup-jobs/other"), "malformed Backup Job State Change"),
        (_set("detail.backupJobId", ""), "malformed Backup Job State Change event: detail"),
        (_set("detail.backupJobId", 12), "malformed Backup Job State Change event: detail"),
        (_set("detail.backupJobId", _DELETE), "malformed Backup Job State Change event: detail"),
        (_set("detail.backupVaultName", "vault\nINJECTED"), "detail.backupVaultName"),
        (_set("detail.createdBy.backupPlanId", "<script>"), "detail.createdBy.backupPlanId"),
        (_set("source", "aws.rds"), "malformed Backup Job State Change event: source"),
        (_set("detail", _DELETE), "malformed Backup Job State Change event: detail"),
        (_set("resources", "not a list"), "malformed Backup Job State Change event: resources"),
    ],
)
def test_foreign_or_malformed_backup_job_events_are_refused_saying_why(
    mangle: Callable[[dict[str, Any]], None], why: str
) -> None:
    event = copy.deepcopy(sample(BACKUP_SAMPLE))
    mangle(event)
    with pytest.raises(InvalidEvent) as refused:
        parse_backup_job_event(event)
    assert why in str(refused.value)
    # The refusal never repeats a hostile value
    assert "INJECTED" not in str(refused.value) and "<script>" not in str(refused.value)


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (_set("detail.state", "FAILED"), "state 'FAILED' is not COMPLETED"),
        (_set("detail.resourceType", "EBS"), "resourceType 'EBS' is not RDS or Aurora"),
        # AWS's own examples of unfinished copies carry {} as the destination
        (_set("detail.destinationRecoveryPointArn", {}), "detail.destinationRecoveryPointArn"),
        (_set("detail.destinationRecoveryPointArn", _DELETE), "detail.destinationRecovery"),
        (
            _set("detail.destinationRecoveryPointArn", "arn:aws:ec2:us-west-2::snapshot/snap-1"),
            "is not an AWS Backup recovery point",
        ),
        (_set("detail.copyJobId", "a/b"), "malformed Copy Job State Change event: detail"),
        (_set("detail-type", "Backup Job State Change"), "malformed Copy Job State Change"),
    ],
)
def test_foreign_or_malformed_copy_job_events_are_refused_saying_why(
    mangle: Callable[[dict[str, Any]], None], why: str
) -> None:
    event = copy.deepcopy(sample(COPY_SAMPLE))
    mangle(event)
    with pytest.raises(InvalidEvent) as refused:
        parse_copy_job_event(event)
    assert why in str(refused.value)


@pytest.mark.parametrize("event", [None, [], "text", 12, {"detail-type": "Copy Job State Change"}])
def test_garbage_is_an_invalid_event_not_a_crash(event: Any) -> None:
    with pytest.raises(InvalidEvent):
        parse_recovery_point_event(event)


# -- the drill ----------------------------------------------------------------------------------


def test_an_opted_in_database_s_recovery_point_is_drilled_once() -> None:
    # Given a database opted in by its tag, and its completed backup job's event
    w = given_a_backed_up_database(OPTED_IN)
    request = parse_recovery_point_event(sample(BACKUP_SAMPLE))
    # When the event arrives twice
    first = start_drill(request, w.ctx)
    second = start_drill(parse_recovery_point_event(sample(BACKUP_SAMPLE)), w.ctx)
    # Then one drill restores the awsbackup snapshot, keyed by the recovery point
    assert first.run_id == second.run_id
    assert len(w.runs.runs) == 1
    assert w.rds.calls.count(("restore", first.instance_id)) == 1
    run = w.runs.get(first.run_id)
    assert run is not None and run.snapshot.snapshot_id == RECOVERY_POINT
    assert run.recovery_point is not None
    assert run.recovery_point.opted_in_by == (
        "clinic-db carries the tag restoredrill:drill=enabled"
    )


def test_a_recovery_point_is_its_own_drill_not_its_snapshot_s() -> None:
    # Given the same snapshot drilled once as a recovery point
    w = given_a_backed_up_database(OPTED_IN)
    point = start_drill(parse_recovery_point_event(sample(BACKUP_SAMPLE)), w.ctx)
    # When its copy in this Region is drilled too
    event = sample(COPY_SAMPLE)
    event["detail"]["destinationRecoveryPointArn"] = RECOVERY_POINT_ARN.replace("job-", "copyjob-")
    w.rds.add_source("clinic-db", OPTED_IN, RECOVERY_POINT.replace("job-", "copyjob-"))
    copied = start_drill(parse_recovery_point_event(event), w.ctx)
    # Then they are two drills
    assert point.run_id != copied.run_id and len(w.runs.runs) == 2


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"backup_opt_in_vaults": "other-vault, clinic-vault"}, "vault clinic-vault is listed"),
        ({"backup_opt_in_plans": PLAN}, f"backup plan {PLAN} is listed in BackupOptInPlanIds"),
    ],
)
def test_a_listed_vault_or_plan_opts_a_recovery_point_in_without_the_tag(
    settings: dict[str, str], why: str
) -> None:
    # Given a database without the opt-in tag, whose vault or plan the stack lists
    w = given_a_backed_up_database({"team": "clinic"}, **settings)
    # When its backup job completes
    run = start_drill(parse_recovery_point_event(sample(BACKUP_SAMPLE)), w.ctx)
    # Then it is drilled, and the run says why
    assert run.recovery_point is not None and why in (run.recovery_point.opted_in_by or "")
    assert w.rds.count("restore") == 1


def test_a_recovery_point_of_a_database_not_opted_in_is_refused() -> None:
    # Given a database without the tag, and other vaults and plans listed
    w = given_a_backed_up_database(
        {"team": "clinic"}, backup_opt_in_vaults="prod-vault", backup_opt_in_plans="plan-1"
    )
    # When its backup job completes, then no drill starts, saying why
    with pytest.raises(DrillRejected, match=r"clinic-db is not opted in"):
        start_drill(parse_recovery_point_event(sample(BACKUP_SAMPLE)), w.ctx)
    assert w.runs.runs == {} and w.rds.count("restore") == 0


def test_a_copy_into_another_region_is_left_to_the_stack_there() -> None:
    # Given a stack in us-east-1 and a copy made into us-west-2, of a listed vault
    w = given_a_backed_up_database(OPTED_IN, backup_opt_in_vaults="clinic-dr-vault")
    # When the copy job completes, then this stack starts nothing and says whose it is
    with pytest.raises(DrillRejected, match=r"is in us-west-2, not in this stack's Region"):
        start_drill(parse_recovery_point_event(sample(COPY_SAMPLE)), w.ctx)
    assert w.runs.runs == {}


def test_the_stack_of_the_copy_s_region_drills_it_by_its_vault() -> None:
    # Given the stack in us-west-2, where the copy is, with the DR vault listed (the source
    # database is in us-east-1: its tag cannot be read here)
    w = world(aws_region="us-west-2", backup_opt_in_vaults="clinic-dr-vault")
    w.rds.add_source("clinic-db", {}, COPY)
    del w.rds.sources["clinic-db"]
    # When the copy job completes
    run = start_drill(parse_recovery_point_event(sample(COPY_SAMPLE)), w.ctx)
    # Then the copy is drilled
    assert run.snapshot.snapshot_id == COPY and w.rds.count("restore") == 1
    assert run.recovery_point is not None and run.recovery_point.source_region == "us-east-1"


def test_a_refused_restore_of_a_recovery_point_names_it_and_the_alternative() -> None:
    # Given RDS refuses to restore the awsbackup snapshot directly
    w = given_a_backed_up_database(OPTED_IN)
    w.rds.refuse_restore = EffectRejected(
        "InvalidParameterCombination", "snapshot managed by AWS Backup"
    )
    # When the drill starts
    run = start_drill(parse_recovery_point_event(sample(BACKUP_SAMPLE)), w.ctx)
    final = advance_drill(run.run_id, w.ctx)
    # Then it ends ERROR (the backup is not proven bad), naming the refusal, the recovery
    # point and where the StartRestoreJob alternative is described, reported and announced
    assert final is not None and final.state is RunState.FINISHED
    assert final.verdict is Verdict.ERROR
    reason = final.reason or ""
    assert "InvalidParameterCombination: snapshot managed by AWS Backup" in reason
    assert RECOVERY_POINT_ARN in reason and "StartRestoreJob" in reason
    assert "docs/aws-backup.md" in reason
    assert len(w.reports.documents) == 1 and len(w.events.items) == 1


def test_a_refused_restore_for_quota_still_goes_back_to_the_queue() -> None:
    w = given_a_backed_up_database(OPTED_IN)
    w.rds.refuse_restore = EffectRejected("InstanceQuotaExceeded", "quota")
    run = start_drill(parse_recovery_point_event(sample(BACKUP_SAMPLE)), w.ctx)
    again = w.runs.get(run.run_id)
    assert again is not None and again.state is RunState.QUEUED and again.verdict is None
    assert "StartRestoreJob" not in (again.wait_reason or "")


# -- what the report, its page and Slack say -----------------------------------------------------


def finished_recovery_point_drill() -> tuple[dict[str, Any], dict[str, Any]]:
    w = given_a_backed_up_database(OPTED_IN)
    w.rds.refuse_restore = EffectRejected("InvalidParameterCombination", "refused")
    run = start_drill(parse_recovery_point_event(sample(BACKUP_SAMPLE)), w.ctx)
    final = advance_drill(run.run_id, w.ctx)
    assert final is not None and final.is_finished
    report = build_report(final, bucket="reports-bucket", key=str(final.report_key))
    return report, w.events.items[0]


def test_the_report_records_the_vault_recovery_point_jobs_and_plan() -> None:
    report, _ = finished_recovery_point_drill()
    point = report["recovery_point"]
    assert point == {
        "kind": "backup",
        "recovery_point_arn": RECOVERY_POINT_ARN,
        "vault_name": "clinic-vault",
        "vault_arn": "arn:aws:backup:us-east-1:123456789012:backup-vault:clinic-vault",
        "backup_job_id": "5C1A2B3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D",
        "copy_job_id": None,
        "backup_plan_id": PLAN,
        "resource_arn": "arn:aws:rds:us-east-1:123456789012:db:clinic-db",
        "source_recovery_point_arn": None,
        "source_region": None,
        "opted_in_by": "clinic-db carries the tag restoredrill:drill=enabled",
    }
    validator = Draft202012Validator(report_schema())
    assert [error.message for error in validator.iter_errors(report)] == []
    assert report["schema_version"] == "1.6"


def test_the_page_and_slack_say_it_was_an_aws_backup_recovery_point() -> None:
    report, event = finished_recovery_point_drill()
    page = render_report_html(report)
    assert "AWS Backup recovery point" in page and "clinic-vault" in page and PLAN in page
    text, blocks = render(DrillFinished.model_validate(event))
    expected = (
        f"AWS Backup recovery point in vault clinic-vault (backup job "
        f"5C1A2B3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D, plan {PLAN})"
    )
    assert expected in text
    assert expected in json.dumps(blocks)


def test_a_drill_of_an_automated_snapshot_has_no_recovery_point() -> None:
    w = given_a_backed_up_database(OPTED_IN)
    w.rds.add_source("clinic-db", OPTED_IN, "rds:clinic-db-2026-11-27-03-10")
    w.rds.refuse_restore = EffectRejected("InvalidParameterCombination", "refused")
    run = start_drill(
        DrillRequest(snapshot_id="rds:clinic-db-2026-11-27-03-10", trigger="RDS-EVENT-0091"), w.ctx
    )
    final = advance_drill(run.run_id, w.ctx)
    assert final is not None and final.recovery_point is None
    assert "StartRestoreJob" not in (final.reason or "")
    report = build_report(final, bucket="reports-bucket", key=str(final.report_key))
    assert report["recovery_point"] is None
    assert "AWS Backup" not in render_report_html(report)


def test_an_aurora_recovery_point_is_drilled_as_a_cluster_and_its_refusal_names_it() -> None:
    # Given an opted-in Aurora cluster and its completed backup job
    w = world(aws_region="us-east-1")
    name = "awsbackup:job-4ece7121-d60e-00c2-5c3b-49960142d03b"
    w.rds.add_source_cluster("orders-aurora", OPTED_IN, name)
    event = sample(BACKUP_SAMPLE)
    event["detail"]["resourceType"] = "Aurora"
    event["resources"] = [f"arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{name}"]
    # When the drill starts
    run = start_drill(parse_recovery_point_event(event), w.ctx)
    # Then the cluster snapshot is restored as a drill cluster, the recovery point recorded
    assert run.is_cluster and run.source_db == "orders-aurora"
    assert w.rds.count("restore_cluster") == 1 and w.rds.count("restore") == 0
    assert run.recovery_point is not None and run.recovery_point.recovery_point_arn.endswith(name)
    # And a refused restore of another one names the cluster restore and the recovery point
    other = "awsbackup:job-5fd8a1b2-0000-4c3b-8d9e-0a1b2c3d4e5f"
    w.rds.add_source_cluster("orders-aurora", OPTED_IN, other)
    w.rds.refuse_restore = EffectRejected("InvalidParameterValue", "not restorable")
    event["resources"] = [f"arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{other}"]
    refused = start_drill(parse_recovery_point_event(event), w.ctx)
    final = w.runs.get(refused.run_id)
    assert final is not None and final.verdict is Verdict.ERROR
    assert "RestoreDBClusterFromSnapshot of AWS Backup recovery point" in (final.reason or "")


def test_a_copy_into_this_account_from_another_account_is_drilled_by_its_vault() -> None:
    # Given the stack of a recovery account (123456789012, us-east-1) listing its vault, and a
    # copy job that copied a recovery point of account 210987654321 into that vault
    w = world(aws_region="us-east-1", backup_opt_in_vaults="recovery-vault")
    copied = "awsbackup:copyjob-9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    w.rds.add_source("orders-db", {}, copied)
    del w.rds.sources["orders-db"]  # the source database is in the other account
    event = sample(COPY_SAMPLE)
    detail = event["detail"]
    other = "arn:aws:rds:us-east-1:210987654321"
    event["resources"] = [f"{other}:snapshot:awsbackup:job-5c1a2b3d"]
    detail["resourceArn"] = f"{other}:db:orders-db"
    detail["sourceBackupVaultArn"] = "arn:aws:backup:us-east-1:210987654321:backup-vault:prod"
    detail["destinationBackupVaultArn"] = (
        "arn:aws:backup:us-east-1:123456789012:backup-vault:recovery-vault"
    )
    detail["destinationRecoveryPointArn"] = f"arn:aws:rds:us-east-1:123456789012:snapshot:{copied}"
    # When the copy job completes
    run = start_drill(parse_recovery_point_event(event), w.ctx)
    # Then the copy in this account is drilled, and the report can say where it came from
    assert run.snapshot.snapshot_id == copied and w.rds.count("restore") == 1
    point = run.recovery_point
    assert point is not None and point.vault_name == "recovery-vault"
    assert point.source_recovery_point_arn == f"{other}:snapshot:awsbackup:job-5c1a2b3d"
    assert point.resource_arn == f"{other}:db:orders-db"
    assert point.opted_in_by == "vault recovery-vault is listed in BackupOptInVaults"
