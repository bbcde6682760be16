"""The operator CLI's adapter against moto: a deployed stack found through CloudFormation, Drill
Requested published with the run id StartDrill will derive, run records read through the
table's indexes, opted-in databases, and reports listed and read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from restoredrill.adapters.aws import DynamoRunStore
from restoredrill.domain.drill import run_id_for
from restoredrill.ports.inbound_events import parse_drill_requested
from restoredrill.ports.records import (
    OWNER_TAG,
    PhaseTiming,
    RunRecord,
    RunState,
    SnapshotInfo,
    Verdict,
)

from restoredrill_cli.main import build_parser
from restoredrill_cli.resolve import resolve_target
from restoredrill_cli.stack import StackClient, StackError
from restoredrill_cli.target import Target, TargetError

from .conftest import REGION, rds_instance

BUS = "restoredrill-drills"
BUCKET = "restoredrill-reports"
T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)

# A stand-in for template.yaml's stack: the resources exist outside it (moto's CloudFormation
# cannot Ref an event bus), the Outputs name them as the real stack's do.
TEMPLATE = {
    "Parameters": {
        "OptInTagKey": {"Type": "String", "Default": "restoredrill:drill"},
        "OptInTagValue": {"Type": "String", "Default": "enabled"},
    },
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    "Outputs": {
        "DrillBusName": {"Value": BUS},
        "RunTableName": {"Value": "runs"},
        "ReportBucketName": {"Value": BUCKET},
    },
}


@pytest.fixture
def stack(run_table: str) -> Target:
    """The stack deployed with a custom opt-in tag value, resolved by --stack-name/--region."""
    boto3.client("events", region_name=REGION).create_event_bus(Name=BUS)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="restoredrill",
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[{"ParameterKey": "OptInTagValue", "ParameterValue": "yes"}],
    )
    args = build_parser().parse_args(["status", "--stack-name", "restoredrill", "--region", REGION])
    return resolve_target(args)


def a_run(run_id: str, db: str, created: datetime, *, finished: bool) -> RunRecord:
    state = RunState.FINISHED if finished else RunState.RESTORING
    return RunRecord(
        run_id=run_id,
        state=state,
        source_db=db,
        snapshot=SnapshotInfo(
            snapshot_id=f"rds:{db}-x",
            snapshot_arn=f"arn:aws:rds:{REGION}:123456789012:snapshot:rds:{db}-x",
            master_username="postgres",
            region=REGION,
        ),
        instance_id=f"restoredrill-{run_id}",
        instance_class="db.t4g.micro",
        trigger="Drill Requested",
        created_at=created,
        deadline=created + timedelta(hours=4),
        phases={RunState.REQUESTED: PhaseTiming(started_at=created)},
        verdict=Verdict.PASSED if finished else None,
        finished_at=created + timedelta(minutes=20) if finished else None,
    )


def test_a_deployed_stack_is_found_with_its_outputs_and_parameters(stack: Target) -> None:
    assert (stack.stack_name, stack.region, stack.account_id) == (
        "restoredrill",
        REGION,
        "123456789012",
    )
    assert (stack.bus_name, stack.run_table, stack.report_bucket) == (BUS, "runs", BUCKET)
    assert stack.opt_in_tag == ("restoredrill:drill", "yes")
    assert not stack.is_local


def test_a_stack_that_does_not_exist_is_a_clear_error(aws: None) -> None:
    args = build_parser().parse_args(["status", "--stack-name", "nope", "--region", REGION])
    with pytest.raises(TargetError, match=f"no stack nope in {REGION}: deploy it"):
        resolve_target(args)


def test_no_credentials_is_a_clear_error(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no credentials anywhere boto3 looks
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    args = build_parser().parse_args(["status", "--stack-name", "s", "--region", REGION])
    # When the stack is looked up, Then the error says so in one line
    with pytest.raises(TargetError, match="no AWS credentials"):
        resolve_target(args)


def test_drill_requested_carries_the_run_id_startdrill_derives(stack: Target) -> None:
    # Given a queue that receives everything published on the stack's bus
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="seen")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(
        Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["restoredrill"]})
    )
    events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    # When a drill is requested twice
    client = StackClient(stack)
    first = client.request_drill("clinic-db", None, "arn:aws:iam::123456789012:user/ops")
    second = client.request_drill("clinic-db", "rds:clinic-db-2026-11-27-03-00", None)
    # Then each event is a Drill Requested StartDrill accepts, and its run id is the returned one
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    # moto's SQS target leaves the envelope's account out; EventBridge always sets it
    envelopes = [{"account": "123456789012", **json.loads(message["Body"])} for message in received]
    requests = [parse_drill_requested(envelope) for envelope in envelopes]
    assert sorted(run_id_for(r.idempotency_key) for r in requests) == sorted([first, second])
    assert first != second
    by_run = {run_id_for(r.idempotency_key): r for r in requests}
    assert by_run[first].source_db == "clinic-db"
    assert by_run[first].requested_by == "arn:aws:iam::123456789012:user/ops"
    assert by_run[second].snapshot_id == "rds:clinic-db-2026-11-27-03-00"
    assert {envelope["detail-type"] for envelope in envelopes} == {"Drill Requested"}
    # And a point-in-time request is one StartDrill reads as such (an earlier request's event
    # carries no point_in_time at all, as before)
    third = client.request_drill("clinic-db", None, None, point_in_time=True)
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    (envelope,) = [{"account": "123456789012", **json.loads(m["Body"])} for m in received]
    request = parse_drill_requested(envelope)
    assert run_id_for(request.idempotency_key) == third
    assert request.point_in_time is True and request.source_db == "clinic-db"
    assert all("point_in_time" not in e["detail"] for e in envelopes)


def test_publishing_on_a_bus_that_is_gone_is_a_stack_error(stack: Target) -> None:
    boto3.client("events", region_name=REGION).delete_event_bus(Name=BUS)
    with pytest.raises(StackError, match=f"Drill Requested on {BUS}"):
        StackClient(stack).request_drill("clinic-db", None, None)


def test_run_records_are_read_newest_first_per_database_and_overall(stack: Target) -> None:
    # Given five runs of two databases, two of them still active
    store = DynamoRunStore(boto3.client("dynamodb", region_name=REGION), "runs", 30)
    plan = [
        ("a" * 20, "clinic-db", 0, True),
        ("b" * 20, "orders-db", 1, True),
        ("c" * 20, "clinic-db", 2, True),
        ("d" * 20, "clinic-db", 3, False),
        ("e" * 20, "orders-db", 4, False),
    ]
    for run_id, db, day, finished in plan:
        store.create(a_run(run_id, db, T0 + timedelta(days=day), finished=finished))
    client = StackClient(stack)
    # When they are read per database, as the recent finished ones, and as the active ones
    clinic = client.runs_of("clinic-db", limit=2)
    recent = client.recent_runs(limit=2)
    active = client.active_runs()
    # Then each list is in the order and of the size asked for
    assert [run.run_id for run in clinic] == ["d" * 20, "c" * 20]
    assert [run.run_id for run in client.runs_of("clinic-db", limit=10)] == [
        "d" * 20,
        "c" * 20,
        "a" * 20,
    ]
    assert [run.run_id for run in recent] == ["c" * 20, "b" * 20]
    assert [run.run_id for run in active] == ["d" * 20, "e" * 20]
    assert client.run("c" * 20) == a_run(
        "c" * 20, "clinic-db", T0 + timedelta(days=2), finished=True
    )
    assert client.run("f" * 20) is None


def test_opted_in_databases_are_the_postgresql_instances_with_the_stacks_tag(stack: Target) -> None:
    opted_in = {"restoredrill:drill": "yes"}
    rds_instance("clinic-db", "postgres", opted_in)
    rds_instance("orders-db", "postgres", {"restoredrill:drill": "enabled"})  # not this stack's
    rds_instance("legacy-db", "mysql", opted_in)
    rds_instance("restoredrill-" + "a" * 20, "postgres", {**opted_in, OWNER_TAG: "x"})
    found = StackClient(stack).opted_in_databases()
    assert [(db.db_id, db.account_id, db.region) for db in found] == [
        ("clinic-db", "123456789012", REGION)
    ]
    db_id, engine_version, _, _ = found[0]
    assert db_id == "clinic-db" and engine_version


def test_opted_in_aurora_postgresql_clusters_are_databases_too(stack: Target) -> None:
    # Given an opted-in Aurora PostgreSQL cluster, one of another stack's opt-in, a drill cluster
    # and an opted-in PostgreSQL instance
    rds = boto3.client("rds", region_name=REGION)
    for name, tags in (
        ("orders-aurora", {"restoredrill:drill": "yes"}),
        ("audit-aurora", {"restoredrill:drill": "enabled"}),
        ("restoredrill-" + "b" * 20, {"restoredrill:drill": "yes", OWNER_TAG: "x"}),
    ):
        rds.create_db_cluster(
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            MasterUsername="orders_admin",
            MasterUserPassword="not-a-secret-1",
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )
    rds_instance("clinic-db", "postgres", {"restoredrill:drill": "yes"})
    # When the opted-in databases are listed, Then the cluster is among them, the others not
    found = StackClient(stack).opted_in_databases()
    assert [db.db_id for db in found] == ["clinic-db", "orders-aurora"]


def test_report_keys_are_listed_past_one_page_and_read_back(stack: Target) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    prefix = "reports/us-east-1/clinic-db/"
    for n in range(1003):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}2026/11/{n:04d}.json", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="reports/us-east-1/orders-db/x.json", Body=b'{"v": 1}')
    client = StackClient(stack)
    keys = client.report_keys(prefix)
    assert len(keys) == 1003
    assert keys[0] == f"{prefix}2026/11/0000.json" and keys[-1] == f"{prefix}2026/11/1002.json"
    assert client.report_bytes("reports/us-east-1/orders-db/x.json") == b'{"v": 1}'
    with pytest.raises(StackError, match=f"no report at s3://{BUCKET}/missing.json"):
        client.report_bytes("missing.json")


def test_the_drill_problem_check_mirrors_startdrills_refusals(stack: Target) -> None:
    # Given an opted-in PostgreSQL with a manual snapshot, one not opted in, and a MySQL
    rds = boto3.client("rds", region_name=REGION)
    for name, engine, value in (
        ("clinic-db", "postgres", "yes"),
        ("orders-db", "postgres", "enabled"),
        ("legacy-db", "mysql", "yes"),
    ):
        rds_instance(name, engine, {"restoredrill:drill": value})
    rds.create_db_snapshot(DBInstanceIdentifier="clinic-db", DBSnapshotIdentifier="manual-1")
    client = StackClient(stack)
    # When each request is checked before it is published, Then each refusal says why
    assert client.drill_problem("absent-db") == f"no RDS DB instance absent-db in {REGION}"
    assert client.drill_problem("legacy-db") == "legacy-db is mysql, not PostgreSQL"
    assert client.drill_problem("orders-db") == (
        "orders-db is not opted in (tag restoredrill:drill=yes)"
    )
    assert client.drill_problem("clinic-db", "manual-2") == f"no snapshot manual-2 in {REGION}"
    # And a point-in-time drill by the same rules (moto shows every instance restorable)
    assert client.drill_problem("absent-db", point_in_time=True) == "no RDS DB instance absent-db"
    assert client.drill_problem("legacy-db", point_in_time=True) == (
        "legacy-db is mysql, not PostgreSQL"
    )
    assert client.drill_problem("orders-db", point_in_time=True) == (
        "orders-db is not opted in (tag restoredrill:drill=yes)"
    )
    assert client.drill_problem("clinic-db", point_in_time=True) is None
    # And a snapshot of another database is refused, the database's own accepted
    rds.add_tags_to_resource(
        ResourceName=rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"][0][
            "DBInstanceArn"
        ],
        Tags=[{"Key": "restoredrill:drill", "Value": "yes"}],
    )
    assert client.drill_problem("orders-db", "manual-1") == (
        "snapshot manual-1 is of clinic-db, not orders-db"
    )
    assert client.drill_problem("clinic-db", "manual-1") is None


def test_run_on_a_cluster_name_checks_the_cluster_and_requests_a_cluster_drill(
    stack: Target,
) -> None:
    # Given an opted-in Aurora PostgreSQL cluster with an automated snapshot, and one not
    # opted in
    rds = boto3.client("rds", region_name=REGION)
    for name, value in (("orders-aurora", "yes"), ("audit-aurora", "no")):
        rds.create_db_cluster(
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            MasterUsername="orders_admin",
            MasterUserPassword="not-a-secret-1",
            Tags=[{"Key": "restoredrill:drill", "Value": value}],
        )
    client = StackClient(stack)
    # When each is checked, Then the cluster's own tag decides, by StartDrill's rules
    assert client.drill_problem("orders-aurora") is None
    assert client.drill_problem("audit-aurora") == (
        "audit-aurora is not opted in (tag restoredrill:drill=yes)"
    )
    # And the drill requested for the cluster is a cluster drill of it
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="seen")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(
        Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["restoredrill"]})
    )
    events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    run_id = client.request_drill("orders-aurora", None, None)
    (message,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    envelope = {"account": "123456789012", **json.loads(message["Body"])}
    assert envelope["detail"]["db_cluster_identifier"] == "orders-aurora"
    assert "db_instance_identifier" not in envelope["detail"]
    request = parse_drill_requested(envelope)
    assert request.cluster is True and request.source_db == "orders-aurora"
    assert run_id_for(request.idempotency_key) == run_id
    # And a point-in-time drill of the cluster is checked and requested as one
    assert client.drill_problem("orders-aurora", point_in_time=True) is None
    assert client.drill_problem("audit-aurora", point_in_time=True) == (
        "audit-aurora is not opted in (tag restoredrill:drill=yes)"
    )
    pitr_run = client.request_drill("orders-aurora", None, None, point_in_time=True)
    (message,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    pitr = parse_drill_requested({"account": "123456789012", **json.loads(message["Body"])})
    assert (pitr.cluster, pitr.point_in_time, pitr.source_db) == (True, True, "orders-aurora")
    assert run_id_for(pitr.idempotency_key) == pitr_run
