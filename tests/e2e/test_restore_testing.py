"""AWS Backup restore testing through the local cloud: the test plays AWS Backup (a restore of the
source's snapshot, named and tagged as restore testing does, and its Restore Job State Change);
the stack's validator checks the restored instance on real PostgreSQL and calls
PutRestoreValidationResult exactly once. restoredrill deletes nothing it did not create."""

from __future__ import annotations

import json
import time

import pytest
from restoredrill.ports.records import INSTANCE_PREFIX

from drillharness.invariants import check_dead_letters
from localcloud.backup import ValidationCall
from localcloud.cloud import LocalCloud
from localcloud.postgres import PostgresServer

pytestmark = pytest.mark.e2e


def validations(cloud: LocalCloud, job_id: str, timeout: float = 120) -> list[ValidationCall]:
    """Every PutRestoreValidationResult of the job, once the first arrived and deliveries are
    done (a duplicate event's invocation included)."""
    assert cloud.aws is not None and cloud.backup is not None
    deadline = time.monotonic() + timeout
    while not cloud.backup.validations_of(job_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    cloud.aws.delivery.wait_idle(timeout=60)
    return cloud.backup.validations_of(job_id)


def instance_ids(cloud: LocalCloud) -> list[str]:
    assert cloud.aws is not None
    found = cloud.aws.client("rds").describe_db_instances()["DBInstances"]
    return sorted(str(instance["DBInstanceIdentifier"]) for instance in found)


def report_of(cloud: LocalCloud, message: str) -> dict[str, object]:
    assert cloud.aws is not None
    location = message.rsplit("Report: ", 1)[1].split(" ", 1)[0]
    bucket, key = location.removeprefix("s3://").split("/", 1)
    body = cloud.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return dict(json.loads(body))


def assert_left_to_aws_backup(cloud: LocalCloud, restored: str) -> None:
    """restoredrill deleted and created nothing: the restored instance and the source are there,
    no drill instance was made, and a sweep right now deletes nothing."""
    assert cloud.aws is not None
    assert restored in instance_ids(cloud)
    assert "clinic-db" in instance_ids(cloud)
    assert not [i for i in instance_ids(cloud) if i.startswith(INSTANCE_PREFIX)]
    swept = json.loads(cloud.aws.invoke("SweeperFunction", {}).payload)
    assert swept["orphans_deleted"] == []
    assert restored in instance_ids(cloud)
    # And no invocation failed for good (a duplicate delivery included)
    assert [str(v) for v in check_dead_letters(cloud)] == []


def test_a_good_restore_test_is_marked_successful_once_even_when_its_event_comes_twice(
    cloud: LocalCloud,
) -> None:
    assert cloud.aws is not None
    # Given clinic-db, with amcheck, whose read-only checking role's login is in SSM
    cloud.create_source_database("clinic-db")
    password = cloud.store_checking_credential("clinic-db", amcheck=True)
    # When AWS Backup restore testing restores its snapshot and the job's COMPLETED event
    # arrives, then arrives again (at-least-once delivery)
    job_id, event = cloud.run_restore_test("clinic-db")
    cloud.aws.emit(event)
    # Then AWS Backup got exactly one PutRestoreValidationResult: SUCCESSFUL
    [call] = validations(cloud, job_id)
    assert (call.status, call.accepted) == ("SUCCESSFUL", True), call.message
    assert call.message.startswith("restoredrill SUCCESSFUL: checks PASSED (")
    # And its message links the validation report, which holds the checks that ran
    report = report_of(cloud, call.message)
    assert report["restore_job_id"] == job_id
    assert report["validation_status"] == "SUCCESSFUL"
    checks = report["checks"]
    assert isinstance(checks, dict)
    statuses = {(check["name"], check["database"]): check["status"] for check in checks["checks"]}
    assert {statuses.get((name, "clinic")) for name in ("row_counts", "assertion")} == {"pass"}
    # (level 3 too: the role runs the amcheck installed in the source, read only)
    assert statuses[("amcheck_heap", "clinic")] == "pass"
    assert statuses[("amcheck_btree", "clinic")] == "pass"
    # And the restored instance is AWS Backup's to delete: restoredrill touched nothing
    restored = str(event["detail"]["createdResourceArn"]).rsplit(":", 1)[1]
    assert_left_to_aws_backup(cloud, restored)
    # And the checking password is in no log and no report
    logs = "\n".join(p.read_text() for p in (cloud.work_dir / "logs").glob("*.log"))
    # (both deliveries were handled: the second found the first's outcome and sent nothing)
    assert cloud.aws.log_text("ValidateRestoreFunction").count("restore test validated") == 2
    assert password not in logs + json.dumps(report)


def truncate_patients(server: PostgresServer) -> None:
    clinic = server.admin_connect("clinic")
    try:
        clinic.run("TRUNCATE clinic.patients CASCADE")
    finally:
        clinic.close()


def test_a_restore_test_with_planted_damage_is_marked_failed_naming_what_failed(
    cloud: LocalCloud,
) -> None:
    # Given clinic-db and its checking credential
    cloud.create_source_database("clinic-db")
    cloud.store_checking_credential("clinic-db")
    # When restore testing restores a copy that has lost its patients
    job_id, event = cloud.run_restore_test("clinic-db", damage=truncate_patients)
    # Then AWS Backup got exactly one FAILED, naming the policy's assertion that found it
    [call] = validations(cloud, job_id)
    assert (call.status, call.accepted) == ("FAILED", True), call.message
    assert "patients on file" in call.message
    assert report_of(cloud, call.message)["validation_status"] == "FAILED"
    # And restoredrill left the damaged copy to AWS Backup
    restored = str(event["detail"]["createdResourceArn"]).rsplit(":", 1)[1]
    assert_left_to_aws_backup(cloud, restored)
