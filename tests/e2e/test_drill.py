"""The whole drill through the local cloud: template.yaml on moto, the real handlers, a real
PostgreSQL per restored instance, Slack on loopback, and the faults the issue names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from restoredrill.domain.report.location import report_key
from restoredrill.ports.records import RunRecord, RunState, Verdict

from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.e2e


def drill(cloud: LocalCloud) -> tuple[str, RunRecord]:
    cloud.create_source_database("clinic-db")
    event = cloud.take_automated_snapshot("clinic-db")
    run_id = cloud.run_id_for_snapshot_event(event)
    run = cloud.wait_for_run(run_id, timeout=120)
    assert run is not None, "the drill never started"
    assert run.is_finished, f"the drill did not finish: {run.state} {run.reason}"
    return run_id, run


def assert_cleaned_up(cloud: LocalCloud, run: RunRecord) -> None:
    assert not cloud.instance_exists(run.instance_id)
    assert cloud.drill_servers_running() == 0
    assert cloud.aws is not None
    params = cloud.aws.client("ssm").describe_parameters()["Parameters"]
    assert [p["Name"] for p in params if "/runs/" in p["Name"]] == [], "the run's password is kept"


def all_logs(cloud: LocalCloud) -> str:
    assert cloud.aws is not None
    logs_dir = cloud.work_dir / "logs"
    return "\n".join(path.read_text(errors="replace") for path in sorted(logs_dir.glob("*.log")))


def test_a_drill_restores_checks_reports_cleans_up_and_tells_slack(cloud: LocalCloud) -> None:
    # Given an opted-in database with a new automated snapshot
    # When the snapshot event reaches the stack
    _, run = drill(cloud)
    # Then the drill passed and every phase was timed
    assert run.verdict is Verdict.PASSED, run.reason
    assert list(run.phases) == [
        RunState.QUEUED,
        RunState.REQUESTED,
        RunState.RESTORING,
        RunState.SECURING,
        RunState.CHECKING,
        RunState.TEARING_DOWN,
        RunState.REPORTING,
        RunState.FINISHED,
    ]
    assert run.restore_seconds is not None and run.restore_seconds > 0
    # And the report is in the bucket with the checks that ran against the restored data
    report = cloud.report(report_key(run))
    assert report["verdict"] == "PASSED"
    assert report["snapshot"]["snapshot_id"].startswith("rds:clinic-db-")
    check_names = {check["name"] for check in report["checks"]["checks"]}
    assert {"connect", "not_in_recovery"} <= check_names
    # And it carries the drill's estimated cost: the instance from available to deleted (10
    # minutes at least), the volume from the restore request on, and the Lambda invocations
    cost = report["cost"]
    assert cost["estimate"] is True and cost["complete"], cost["missing_prices"]
    assert cost["instance"]["instance_class"] == run.instance_class
    assert cost["instance"]["billed_seconds"] == max(cost["instance"]["seconds"], 600)
    assert cost["storage"]["allocated_gib"] == report["snapshot"]["allocated_storage_gib"]
    assert cost["lambda_invocations"]["requests"] > 0
    assert cost["total_usd"] == pytest.approx(
        cost["instance"]["usd"] + cost["storage"]["usd"] + cost["lambda_invocations"]["usd"],
        abs=1e-7,
    )
    # And everything the drill created is gone
    assert_cleaned_up(cloud, run)
    # And Slack got exactly one message, naming the verdict, the database and the report
    messages = cloud.wait_for_slack(1)
    assert len(messages) == 1
    text = messages[0]["body"]["text"]
    assert "PASSED" in text and "clinic-db" in text and report_key(run) in text
    assert f"Estimated cost: ≈ ${cost['total_usd']:.4f} at list prices" in text
    assert len(cloud.drill_finished_events()) == 1


def test_the_drill_password_never_reaches_logs_reports_events_or_queues(cloud: LocalCloud) -> None:
    # Given a drill that set a fresh master password on its restored instance
    _, run = drill(cloud)
    assert cloud.aws is not None and cloud.rds is not None
    passwords = cloud.rds.master_passwords_set()
    assert len(passwords) == 1 and len(passwords[0]) >= 32
    # When everything the drill wrote is gathered: every function's log, the report, every event,
    # every async destination record (they repeat the request payload) and the Slack message
    records = [record for _, record in cloud.aws.delivery.destinations_log]
    haystack = "\n".join(
        [
            all_logs(cloud),
            json.dumps(cloud.report(report_key(run))),
            json.dumps([envelope for _, envelope in cloud.aws.delivery.events_log]),
            json.dumps(records, default=str),
            json.dumps(cloud.aws.slack.messages),
        ]
    )
    # Then the logs and the check result's record are really there, and the password is in none
    assert "drill advanced" in haystack
    assert any(r["requestPayload"].get("password_parameter") for r in records)
    assert passwords[0] not in haystack


@pytest.mark.parametrize("cloud", ["lose-rds-events"], indirect=True)
def test_with_every_rds_event_lost_the_poll_fallback_finishes_the_drill(cloud: LocalCloud) -> None:
    _, run = drill(cloud)
    assert run.verdict is Verdict.PASSED, run.reason
    assert not run.credentials_confirmed  # no credentials event ever arrived
    assert_cleaned_up(cloud, run)
    assert len(cloud.wait_for_slack(1)) == 1


@pytest.mark.parametrize("cloud", ["duplicate-events"], indirect=True)
def test_with_every_event_delivered_three_times_there_is_one_drill_and_one_message(
    cloud: LocalCloud,
) -> None:
    run_id, run = drill(cloud)
    assert run.verdict is Verdict.PASSED, run.reason
    assert [r.run_id for r in cloud.all_runs()] == [run_id]
    cloud.wait_for_slack(3, timeout=5)  # give duplicates every chance to arrive
    assert cloud.aws is not None
    assert len(cloud.aws.slack.messages) == 1
    assert_cleaned_up(cloud, run)


@pytest.mark.parametrize("cloud", ["fail-restore"], indirect=True)
def test_a_failed_restore_is_reported_failed_deleted_and_explained_on_slack(
    cloud: LocalCloud,
) -> None:
    _, run = drill(cloud)
    assert run.verdict is Verdict.FAILED
    assert "incompatible-restore" in (run.reason or "")
    assert_cleaned_up(cloud, run)
    report = cloud.report(report_key(run))
    assert report["verdict"] == "FAILED" and report["checks"] is None
    messages = cloud.wait_for_slack(1)
    assert len(messages) == 1
    assert "FAILED" in messages[0]["body"]["text"]
    assert "incompatible-restore" in messages[0]["body"]["text"]


def test_a_database_that_is_not_opted_in_is_never_restored(cloud: LocalCloud) -> None:
    # Given a source database without the opt-in tag
    source = cloud.create_source_database("billing-db")
    assert cloud.aws is not None and source is not None
    arn = cloud.aws.client("rds").describe_db_instances(DBInstanceIdentifier="billing-db")[
        "DBInstances"
    ][0]["DBInstanceArn"]
    cloud.aws.client("rds").remove_tags_from_resource(
        ResourceName=arn, TagKeys=["restoredrill:drill"]
    )
    # When its automated snapshot appears
    cloud.take_automated_snapshot("billing-db")
    cloud.aws.delivery.wait_idle(timeout=15)
    # Then no run exists and no instance was restored
    assert cloud.all_runs() == []
    instances = cloud.aws.client("rds").describe_db_instances()["DBInstances"]
    assert [i["DBInstanceIdentifier"] for i in instances] == ["billing-db"]


def test_rows_lost_since_the_last_passing_drill_fail_the_next_one(cloud: LocalCloud) -> None:
    # Given a database whose first drill passed (and so left a baseline)
    source = cloud.create_source_database("clinic-db")
    first = cloud.take_automated_snapshot("clinic-db")
    first_run = cloud.wait_for_run(cloud.run_id_for_snapshot_event(first), timeout=120)
    assert first_run is not None and first_run.verdict is Verdict.PASSED, first_run
    # When a third of the prescriptions are lost before the next automated snapshot
    with source.server.admin_connect("clinic") as conn:
        conn.run("DELETE FROM clinic.prescriptions WHERE prescription_id % 3 = 0")
    second = cloud.take_automated_snapshot("clinic-db")
    run = cloud.wait_for_run(cloud.run_id_for_snapshot_event(second), timeout=120)
    # Then the second drill fails on the row counts of that table, and says so everywhere
    assert run is not None and run.is_finished and run.verdict is Verdict.FAILED
    assert "row_counts" in (run.reason or "")
    report = cloud.report(report_key(run))
    failing = [c for c in report["checks"]["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failing] == ["row_counts"]
    (problem,) = failing[0]["evidence"]["problems"]
    assert problem["table"] == '"clinic"."prescriptions"'
    assert problem["rows"] == problem["baseline_rows"] - 100
    messages = cloud.wait_for_slack(2)
    assert "row_counts[clinic]" in messages[-1]["body"]["text"]
    assert_cleaned_up(cloud, run)


@pytest.fixture
def failing_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "drill-policy.yaml"
    path.write_text(
        "version: 1\n"
        "databases:\n"
        "  clinic-db:\n"
        "    assertions:\n"
        "      - name: at least a million patients\n"
        "        database: clinic\n"
        "        sql: SELECT count(*) FROM clinic.patients\n"
        "        expect: '>= 1000000'\n"
    )
    return path


def test_a_failing_user_assertion_fails_the_drill_and_slack_names_it(failing_policy: Path) -> None:
    # Given a deployed policy whose assertion the data does not meet
    with LocalCloud(patients=300, policy_file=failing_policy) as cloud:
        # When the drill runs
        _, run = drill(cloud)
        # Then it failed on that assertion, and Slack names the failing check
        assert run.verdict is Verdict.FAILED
        report = cloud.report(report_key(run))
        failing = [c for c in report["checks"]["checks"] if c["status"] == "fail"]
        assert [c["name"] for c in failing] == ["assertion"]
        assert report["policy"]["assertions"][0]["name"] == "at least a million patients"
        text = cloud.wait_for_slack(1)[0]["body"]["text"]
        assert "FAILED" in text and "- check assertion[" in text
        assert_cleaned_up(cloud, run)
