"""Parsing what arrives: the samples in events/, and everything malformed or foreign."""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from restoredrill.ports.inbound_events import (
    InvalidEvent,
    parse_checker_record,
    parse_drill_requested,
    parse_instance_event,
    parse_poll_body,
    parse_snapshot_event,
    resource_id_from_arn,
)
from restoredrill.ports.restore_testing import parse_restore_job_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
RUN_ID = "3f9a2c71d0b84e5fa613"


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def test_an_automated_snapshot_event_becomes_a_drill_request_for_the_snapshot() -> None:
    request = parse_snapshot_event(sample("start_drill/automated-snapshot-created.json"))
    assert request is not None
    assert request.snapshot_id == "rds:clinic-db-2026-11-27-03-10"
    # No key from the event: StartDrill keys the run by the ARN RDS describes the snapshot with
    assert request.idempotency_key is None
    assert request.event_tags["restoredrill:drill"] == "enabled"


@pytest.mark.parametrize(
    "source_arn",
    [
        "garbage",
        "arn:aws:rds:us-east-1:123456789012:db:clinic-db",
        "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:rds:clinic-2026",
        "arn:aws:s3:::bucket/rds:clinic-db-2026-11-27-03-10",
        "",
    ],
)
def test_a_snapshot_event_whose_source_arn_is_unreadable_is_rejected(source_arn: str) -> None:
    # Given an automated-snapshot event whose SourceArn is there but names no DB snapshot (its
    # SourceIdentifier still a good snapshot id)
    event = sample("start_drill/automated-snapshot-created.json")
    event["detail"]["SourceArn"] = source_arn
    # When it is parsed, Then it is rejected instead of read from SourceIdentifier
    with pytest.raises(InvalidEvent, match="SourceArn is not an RDS DB snapshot ARN"):
        parse_snapshot_event(event)


def test_a_snapshot_event_without_source_arn_names_the_snapshot_by_its_identifier() -> None:
    event = sample("start_drill/automated-snapshot-created.json")
    del event["detail"]["SourceArn"]
    request = parse_snapshot_event(event)
    assert request is not None and request.snapshot_id == "rds:clinic-db-2026-11-27-03-10"


def test_a_manual_snapshot_event_is_not_a_drill() -> None:
    event = sample("start_drill/automated-snapshot-created.json")
    event["detail"]["EventID"] = "RDS-EVENT-0042"
    assert parse_snapshot_event(event) is None


def test_a_snapshot_event_without_tags_still_parses() -> None:
    event = sample("start_drill/automated-snapshot-created.json")
    del event["detail"]["Tags"]
    request = parse_snapshot_event(event)
    assert request is not None and request.event_tags == {}


def test_a_drill_requested_event_is_keyed_by_its_request_id() -> None:
    request = parse_drill_requested(sample("start_drill/drill-requested.json"))
    assert (request.source_db, request.requested_by) == ("clinic-db", "alice@example.com")
    assert request.idempotency_key == "request:cli-20261127-0900"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e["detail"].clear(),
        lambda e: e["detail"].update(db_instance_identifier=""),
        lambda e: e["detail"].update(unexpected="field"),
        lambda e: e.update(source="someone.else"),
        lambda e: e.pop("detail"),
    ],
)
@pytest.mark.parametrize(
    "name", ["start_drill/drill-requested.json", "start_drill/drill-requested-point-in-time.json"]
)
def test_a_malformed_drill_request_is_rejected_clearly(
    mutate: Callable[[dict[str, Any]], object], name: str
) -> None:
    event = sample(name)
    mutate(event)
    with pytest.raises(InvalidEvent, match="Drill Requested"):
        parse_drill_requested(event)


@pytest.mark.parametrize(
    ("name", "reset"),
    [
        ("advance/rds-restored-from-snapshot.json", False),
        ("advance/rds-master-credentials-reset.json", True),
        ("advance/rds-instance-deleted.json", False),
    ],
)
def test_instance_events_of_our_instances_name_the_run(name: str, reset: bool) -> None:
    assert parse_instance_event(sample(name)) == (RUN_ID, reset)


def test_the_run_is_found_from_the_arn_even_when_source_identifier_has_the_rds_prefix() -> None:
    event = sample("advance/rds-restored-from-snapshot.json")
    event["detail"]["SourceIdentifier"] = "rds:" + event["detail"]["SourceIdentifier"]
    assert parse_instance_event(event) == (RUN_ID, False)


@pytest.mark.parametrize(
    "instance_id",
    [
        "orders-db",
        "restoredrill-",
        "restoredrill-not-a-run-id",
        "restoredrill-3F9A2C71D0B84E5FA613",
    ],
)
def test_events_for_instances_that_are_not_drill_instances_are_ignored(instance_id: str) -> None:
    event = copy.deepcopy(sample("advance/rds-restored-from-snapshot.json"))
    arn = f"arn:aws:rds:us-east-1:123456789012:db:{instance_id}"
    event["detail"].update(SourceArn=arn, SourceIdentifier=instance_id)
    assert parse_instance_event(event) is None


@pytest.mark.parametrize("event", [None, [], "text", {"detail": "not a dict"}, {"version": "0"}])
def test_garbage_is_an_invalid_event_not_a_crash(event: object) -> None:
    with pytest.raises(InvalidEvent):
        parse_instance_event(event)


def test_poll_bodies_are_validated() -> None:
    assert parse_poll_body(json.dumps({"run_id": RUN_ID})) == RUN_ID
    for body in ["", "{}", "not json", json.dumps({"run_id": "../../etc"})]:
        with pytest.raises(InvalidEvent, match="poll message"):
            parse_poll_body(body)


def test_a_failure_record_becomes_a_failed_outcome_with_the_error() -> None:
    body = sample("advance/checker-failure.json")["Records"][0]["body"]
    outcome = parse_checker_record(body)
    assert not outcome.succeeded
    assert outcome.error == "Sandbox.Timedout: Task timed out after 900.00 seconds"


def test_a_checker_record_never_keeps_the_request_payload() -> None:
    # Given a destination record whose request payload carries the connection password
    record = json.loads(sample("advance/checker-result.json")["Records"][0]["body"])
    record["requestPayload"]["target"] = {"password": "hunter2-secret"}
    # When it is parsed
    outcome = parse_checker_record(json.dumps(record))
    # Then nothing of the request survives in the outcome
    assert "hunter2-secret" not in outcome.model_dump_json()


def test_an_unknown_verdict_from_the_checker_is_a_failed_outcome() -> None:
    record = json.loads(sample("advance/checker-result.json")["Records"][0]["body"])
    record["responsePayload"]["result"]["verdict"] = "MAYBE"
    assert not parse_checker_record(json.dumps(record)).succeeded


def test_arns_give_the_resource_id() -> None:
    assert resource_id_from_arn("arn:aws:rds:eu-west-1:1:snapshot:rds:db-2026") == "rds:db-2026"
    assert resource_id_from_arn("arn:aws:rds:eu-west-1:1:db:orders") == "orders"
    assert resource_id_from_arn("arn:aws:s3:::bucket") is None


# ------------------------------------------------------------------------------ restore testing

RESTORE_TEST_SAMPLE = "validate_restore/restore-test-completed.json"


def test_a_completed_restore_test_event_names_the_job_and_the_instance_it_restored() -> None:
    test = parse_restore_job_event(sample(RESTORE_TEST_SAMPLE))
    assert test is not None
    assert test.restore_job_id == "7E1D3C5A-2B4F-4C6D-8E9F-0A1B2C3D4E5F"
    assert test.instance_id == "awsbackup-restore-test-7e1d3c5a"
    assert test.restore_testing_plan_arn.startswith("arn:aws:backup:us-east-1:123456789012:")


@pytest.mark.parametrize(
    "change",
    [
        {"status": "RUNNING"},
        {"status": "FAILED"},
        {"restoreTestingPlanArn": None},  # an ordinary restore, not a restore test
        {"restoreTestingPlanArn": ""},
        {"createdResourceArn": "arn:aws:rds:us-east-1:123456789012:cluster:awsbackup-restore-t"},
        {"createdResourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/awsbackup-x"},
        {"createdResourceArn": "arn:aws:rds:us-east-1:123456789012:db:bad--name"},
        {"createdResourceArn": None},
    ],
)
def test_restore_job_events_that_are_not_completed_restore_tests_of_an_instance_are_ignored(
    change: dict[str, Any],
) -> None:
    event = sample(RESTORE_TEST_SAMPLE)
    event["detail"].update(change)
    event["detail"] = {k: v for k, v in event["detail"].items() if v is not None}
    assert parse_restore_job_event(event) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda e: e["detail"].pop("restoreJobId"),
        lambda e: e["detail"].update(restoreJobId="../backup-vaults/prod"),
        lambda e: e["detail"].update(restoreJobId="7E1D3C5A/validations"),
        lambda e: e["detail"].update(restoreJobId=""),
        lambda e: e["detail"].update(restoreJobId=12),
        lambda e: e["detail"].update(status=None),
        lambda e: e.update(source="aws.rds"),
        lambda e: e.update({"detail-type": "Backup Job State Change"}),
        lambda e: e.pop("detail"),
    ],
)
def test_malformed_or_foreign_restore_job_events_are_invalid(
    mangle: Callable[[dict[str, Any]], Any],
) -> None:
    event = copy.deepcopy(sample(RESTORE_TEST_SAMPLE))
    mangle(event)
    with pytest.raises(InvalidEvent, match=r"^malformed Restore Job State Change event"):
        parse_restore_job_event(event)
