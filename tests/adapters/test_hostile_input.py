"""Hostile input at every handler, in process, under moto, with the environment template.yaml
gives the functions.

For each handler and anything thrown at it: a clear outcome (a returned status, or for an SQS
batch exactly the garbage records in batchItemFailures while the good ones are processed), no
retry storm (an EventBridge-triggered handler that raises is invoked twice more), and no AWS call
that changes anything. Secrets (the run's password, the Slack webhook URL) never reach the logs
or an exception.

The world under moto holds nothing a hostile event could legitimately drill: a PostgreSQL
database that is not opted in, an opted-in MySQL database, another stack's drill instance, an
untagged instance named like one of ours, and an instance carrying our ownership tag without our
name prefix. Any change to AWS is therefore a defect.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import http.server
import importlib.util
import json
import logging
import re
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.client
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from restoredrill.composition import wiring
from restoredrill.ports.inbound_events import InvalidEvent
from restoredrill.ports.payload_transport import pack_document

from localcloud.backup import LocalBackup, RestoreJob
from localcloud.template import load_yaml
from tests.adapters.conftest import REGION, TEMPLATE, template_resource
from tests.unit.test_hostile_parsing import (
    RDS_NAME,
    RUN_ID,
    SNAPSHOT_ARN,
    all_events,
    checker_record,
    drill_requests_with_bad_fields,
    garbage_checker_bodies,
    hostile_strings,
    json_scalars,
    json_values,
    mutated,
    poll_bodies,
    poll_body_is_valid,
    rds_instance_events_for_others,
    restore_job_events_with_bad_fields,
    run_ids,
    sample,
    snapshot_events_with_bad_identifiers,
)

ROOT = Path(__file__).resolve().parents[2]
STACK = "restoredrill-hostile"
ACCOUNT = "123456789012"
WEBHOOK_PARAMETER = "/restoredrill/slack-webhook-url"
WEBHOOK_SECRET = "T0HOSTILE/B0HOSTILE/webhook-secret-token-3b1f"
PASSWORD = "Pw-never-logged-7f3a9c2e"

# The fake values of the environment template.yaml's Globals give every function. Queue URLs
# are filled in once moto has created the queue.
FAKE_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "restoredrill",
    "POWERTOOLS_METRICS_NAMESPACE": "restoredrill",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "STACK_NAME": STACK,
    "RUN_TABLE_NAME": f"{STACK}-runs",
    "POLL_QUEUE_URL": "set when the queue exists",
    "DRILL_BUS_NAME": f"{STACK}-drills",
    "REPORT_BUCKET": f"{STACK}-reports",
    "CHECKER_FUNCTION_NAME": f"{STACK}-checker",
    "CHECK_RUNNER_FUNCTION_NAME": f"{STACK}-check-runner",
    "OPT_IN_TAG_KEY": "restoredrill:drill",
    "OPT_IN_TAG_VALUE": "enabled",
    "DRILL_INSTANCE_CLASS": "db.t4g.micro",
    "DB_SUBNET_GROUP_NAME": "drill-private",
    "DRILL_SECURITY_GROUP_ID": "sg-0123456789abcdef0",
    "DRILL_DEADLINE_MINUTES": "240",
    "MAX_CONCURRENT_DRILLS": "3",
    "QUOTA_RESERVE_INSTANCES": "5",
    "QUOTA_RESERVE_STORAGE_GIB": "0",
    "MAX_QUEUE_WAIT_MINUTES": "720",
    "POLL_DELAY_SECONDS": "60",
    "CREDENTIALS_SETTLE_SECONDS": "30",
    "CHECKER_TIMEOUT_SECONDS": "900",
    "PASSWORD_PARAMETER_PREFIX": f"/restoredrill/{STACK}/runs",
    "SLACK_WEBHOOK_PARAMETER": WEBHOOK_PARAMETER,
    "IDEMPOTENCY_TABLE_NAME": f"{STACK}-idempotency",
    "DRILL_POLICY_FILE": str(ROOT / "policy" / "drill-policy.yaml"),
    "RDS_CA_BUNDLE_FILE": str(ROOT / "policy" / "rds-ca-bundle.pem"),
    # ValidateRestoreFunction's own
    "VALIDATION_CREDENTIAL_PREFIX": f"/restoredrill/{STACK}/restore-validation",
}

# Calls that only read. Every other operation changes something.
READ_ONLY = ("Describe", "Get", "List", "Query", "Scan", "BatchGet", "Head")

HOSTILE = settings(
    max_examples=50,
    deadline=None,
    # The moto world is built once per test and every example runs in it: no example can
    # change it (that is what the tests assert), so sharing it is sound.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


# ------------------------------------------------------------------------------ handlers


@functools.cache
def function_module(function: str) -> ModuleType:
    """functions/<function>/app.py, loaded once under a name of its own (they are all app.py).
    Loaded only once the environment is set: Powertools reads it when the module is imported."""
    name = f"restoredrill_function_{function}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


HANDLERS = {
    "StartDrill": ("start_drill", "handler"),
    "AdvanceOnRdsEvent": ("advance", "on_rds_event"),
    "AdvanceOnPoll": ("advance", "on_poll"),
    "AdvanceOnCheckerResult": ("advance", "on_checker_result"),
    "Checker": ("checker", "handler"),
    "CheckRunner": ("check_runner", "handler"),
    "Notify": ("notify", "handler"),
    "Sweeper": ("sweeper", "handler"),
    "ValidateRestore": ("validate_restore", "handler"),
}


@dataclass(frozen=True)
class LambdaContextStub:
    """What Powertools reads from the Lambda context."""

    function_name: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = "8ea123e4-1db7-4aca-ad10-d9ca1234c1fd"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# ------------------------------------------------------------------------------ AWS calls


def _rds_identifier_refused(operation: str, params: dict[str, Any]) -> str | None:
    """The parameter RDS would answer with InvalidParameterValue, if any.

    moto answers "not found" to any identifier; RDS refuses one that cannot be an identifier
    ("... is not a valid identifier. Identifiers must begin with a letter; must contain only
    ASCII letters, digits, and hyphens; and must not end with a hyphen or contain two consecutive
    hyphens"), on Describe calls too (aws/aws-cli#8296, panther-labs/panther#2240). Automated
    and AWS Backup snapshot ids (rds:..., awsbackup:...) and ARNs are accepted."""
    checks = {"DBInstanceIdentifier": 63, "DBSnapshotIdentifier": 255}
    for name, max_length in checks.items():
        value = params.get(name)
        if not isinstance(value, str):
            continue
        arn = SNAPSHOT_ARN.fullmatch(value) or re.fullmatch(r"arn:aws[a-z-]*:rds:.*:db:(.+)", value)
        bare = arn.group(1) if arn else value
        for prefix in ("rds:", "awsbackup:"):
            if name == "DBSnapshotIdentifier" and bare.startswith(prefix):
                bare = bare[len(prefix) :]
                break
        if len(bare) > max_length or RDS_NAME.fullmatch(bare) is None:
            return name
    return None


@dataclass
class AwsCalls:
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def changes(self) -> list[tuple[str, str]]:
        return [(svc, op) for svc, op, _ in self.calls if not op.startswith(READ_ONLY)]

    def run_keys_read(self) -> list[str]:
        """Run ids the handlers looked up in the run table."""
        table = FAKE_ENVIRONMENT["RUN_TABLE_NAME"]
        return [
            params["Key"]["run_id"]["S"]
            for svc, op, params in self.calls
            if svc == "dynamodb" and op == "GetItem" and params.get("TableName") == table
        ]


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> AwsCalls:
    """Records every AWS call any boto3 client makes, and answers malformed RDS identifiers the
    way RDS does."""
    recorded = AwsCalls()
    # Every client's calls funnel through this private method, which the stubs leave out.
    real = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        recorded.calls.append((service, operation, copy.deepcopy(params)))
        refused = _rds_identifier_refused(operation, params) if service == "rds" else None
        if refused is not None:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidParameterValue",
                        "Message": f"The parameter {refused} is not a valid identifier.",
                    },
                    "ResponseMetadata": {
                        "HTTPStatusCode": 400,
                        "RequestId": "hostile-input",
                        "HostId": "",
                        "HTTPHeaders": {},
                        "RetryAttempts": 0,
                    },
                },
                operation,
            )
        return real(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return recorded


# ------------------------------------------------------------------------------ Slack


class SlackStub:
    """A webhook receiver on loopback that answers every POST with `status`."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.posts: list[str] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                stub.posts.append(self.rfile.read(length).decode())
                self.send_response(stub.status)
                self.end_headers()
                self.wfile.write(b"no_service" if stub.status != 200 else b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test server stays quiet

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{WEBHOOK_SECRET}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    stub = SlackStub(status=500)
    yield stub
    stub.close()


# ------------------------------------------------------------------------------ the world


def template_environment_names() -> list[str]:
    template = load_yaml(TEMPLATE)
    return list(template["Globals"]["Function"]["Environment"]["Variables"])


@dataclass
class Outcome:
    result: Any = None
    error: BaseException | None = None
    logs: str = ""
    changes: list[tuple[str, str]] = field(default_factory=list)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    run_keys_read: list[str] = field(default_factory=list)

    @property
    def error_text(self) -> str:
        if self.error is None:
            return ""
        return "".join(traceback.format_exception(self.error)) + repr(self.error)


@dataclass
class World:
    calls: AwsCalls
    capsys: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture
    slack: SlackStub
    snapshots: dict[str, str]

    def invoke(self, handler: str, event: Any) -> Outcome:
        function, name = HANDLERS[handler]
        func = getattr(function_module(function), name)
        self.calls.calls.clear()
        self.capsys.readouterr()
        self.caplog.clear()
        outcome = Outcome()
        with _powertools_logs_to(sys.stdout):
            try:
                outcome.result = func(copy.deepcopy(event), LambdaContextStub(handler))
            except Exception as error:  # the tests judge what escaped
                outcome.error = error
        captured = self.capsys.readouterr()
        outcome.logs = captured.out + captured.err + self.caplog.text
        outcome.changes = self.calls.changes()
        outcome.calls = list(self.calls.calls)
        outcome.run_keys_read = self.calls.run_keys_read()
        return outcome


@contextlib.contextmanager
def _powertools_logs_to(stream: Any) -> Iterator[None]:
    """Powertools' handler keeps the stream it was created with; point it at capsys's."""
    previous: list[tuple[logging.StreamHandler[Any], Any]] = []
    for name in ("restoredrill", "service_undefined"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                # Not setStream(): it flushes the old stream, which may be closed by now.
                previous.append((handler, handler.stream))
                handler.stream = stream
    try:
        yield
    finally:
        for handler, old in previous:
            handler.stream = old


def _create_world(slack_url: str) -> tuple[str, dict[str, str]]:
    """The stack's resources as template.yaml declares them, plus the RDS estate. Returns the
    poll queue's URL and each database's automated snapshot."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    runs = template_resource("RunTable")
    dynamodb.create_table(
        TableName=FAKE_ENVIRONMENT["RUN_TABLE_NAME"],
        AttributeDefinitions=runs["AttributeDefinitions"],
        KeySchema=runs["KeySchema"],
        GlobalSecondaryIndexes=runs["GlobalSecondaryIndexes"],
        BillingMode=runs["BillingMode"],
    )
    idempotency = template_resource("IdempotencyTable")
    dynamodb.create_table(
        TableName=FAKE_ENVIRONMENT["IDEMPOTENCY_TABLE_NAME"],
        AttributeDefinitions=idempotency["AttributeDefinitions"],
        KeySchema=idempotency["KeySchema"],
        BillingMode=idempotency["BillingMode"],
    )
    sqs = boto3.client("sqs", region_name=REGION)
    poll_url = sqs.create_queue(QueueName=f"{STACK}-poll")["QueueUrl"]
    sqs.create_queue(QueueName=f"{STACK}-checker-results")
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=FAKE_ENVIRONMENT["REPORT_BUCKET"])
    boto3.client("events", region_name=REGION).create_event_bus(
        Name=FAKE_ENVIRONMENT["DRILL_BUS_NAME"]
    )
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=WEBHOOK_PARAMETER, Value=slack_url, Type="SecureString"
    )

    rds = boto3.client("rds", region_name=REGION)

    def instance(name: str, engine: str, tags: dict[str, str]) -> None:
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            Engine=engine,
            DBInstanceClass="db.t4g.micro",
            MasterUsername="admin",
            MasterUserPassword="not-the-drill-password",
            AllocatedStorage=20,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )

    instance("orders-db", "postgres", {"team": "orders"})  # not opted in
    instance("legacy-db", "mysql", {"restoredrill:drill": "enabled"})  # opted in, not PostgreSQL
    instance(  # another stack's drill
        f"restoredrill-{'ab' * 10}",
        "postgres",
        {"restoredrill:owner": "someone-else", "restoredrill:run-id": "ab" * 10},
    )
    instance(f"restoredrill-{'cd' * 10}", "postgres", {})  # our name, no ownership tag
    instance("orders-replica", "postgres", {"restoredrill:owner": STACK})  # our tag, not our name
    snapshots = {
        str(snap["DBInstanceIdentifier"]): str(snap["DBSnapshotIdentifier"])
        for snap in rds.describe_db_snapshots(SnapshotType="automated")["DBSnapshots"]
    }
    return poll_url, snapshots


def _reset_caches() -> None:
    wiring.drill_context.cache_clear()
    wiring._announcer.cache_clear()
    wiring._restore_validator.cache_clear()
    # The providers hold the cached SSM values (Powertools' clear_caches() does just this).
    DEFAULT_PROVIDERS.clear()


@pytest.fixture
def world(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    aws_calls: AwsCalls,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    slack: SlackStub,
) -> Iterator[World]:
    missing = [name for name in template_environment_names() if name not in FAKE_ENVIRONMENT]
    assert not missing, f"template.yaml sets {missing}: give them fake values here"
    for name, value in FAKE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    # The recorder sees the world being built; the handlers' calls are recorded from clean.
    poll_url, snapshots = _create_world(slack.url)
    monkeypatch.setenv("POLL_QUEUE_URL", poll_url)
    _reset_caches()
    for function, _ in HANDLERS.values():
        function_module(function)
    yield World(aws_calls, capsys, caplog, slack, snapshots)
    _reset_caches()


def assert_nothing_changed(outcome: Outcome) -> None:
    assert outcome.changes == [], f"hostile input changed AWS: {outcome.changes}"
    assert outcome.run_keys_read == [
        key for key in outcome.run_keys_read if RUN_ID.fullmatch(key)
    ], f"the run table was read with malformed run ids: {outcome.run_keys_read}"


def json_lines(logs: str) -> list[dict[str, Any]]:
    lines = []
    for line in logs.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            lines.append(parsed)
    return lines


# ------------------------------------------------------------------------------ control


def opted_in_snapshot_event() -> dict[str, Any]:
    """An opted-in PostgreSQL database in moto, and the automated-snapshot event of its snapshot
    (named by ARN and identifier as RDS sends it)."""
    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_instance(
        DBInstanceIdentifier="clinic-db",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        MasterUsername="admin",
        MasterUserPassword="not-the-drill-password",
        AllocatedStorage=20,
        Tags=[{"Key": "restoredrill:drill", "Value": "enabled"}],
    )
    snapshot = rds.describe_db_snapshots(DBInstanceIdentifier="clinic-db")["DBSnapshots"][0]
    event = sample("start_drill/automated-snapshot-created.json")
    event["detail"]["SourceArn"] = snapshot["DBSnapshotArn"]
    event["detail"]["SourceIdentifier"] = snapshot["DBSnapshotIdentifier"]
    return event


def test_the_recorder_sees_a_genuine_drill_change_aws(world: World) -> None:
    # Given an opted-in PostgreSQL database and its new automated snapshot (the one case in
    # which a trigger may change AWS): without this, the other tests could pass by seeing nothing
    event = opted_in_snapshot_event()
    # When StartDrill gets the event
    outcome = world.invoke("StartDrill", event)
    # Then the drill starts and the recorder saw the run written, the restore and the poll
    assert outcome.error is None, outcome.error_text
    assert outcome.result["status"] == "started"
    assert {
        ("dynamodb", "PutItem"),
        ("rds", "RestoreDBInstanceFromDBSnapshot"),
        ("sqs", "SendMessage"),
    } <= set(outcome.changes)


def test_one_snapshot_in_repeated_and_id_form_events_starts_logs_and_counts_one_drill(
    world: World,
) -> None:
    # Given an opted-in PostgreSQL database and its new automated snapshot
    by_arn = opted_in_snapshot_event()
    by_id = copy.deepcopy(by_arn)
    del by_id["detail"]["SourceArn"]
    # When StartDrill gets its event, the same event again, and the event naming it by id only
    outcomes = [world.invoke("StartDrill", event) for event in (by_arn, by_arn, by_id)]
    # Then all three name one drill, restored once
    assert all(outcome.error is None for outcome in outcomes), outcomes[0].error_text
    assert len({outcome.result["run_id"] for outcome in outcomes}) == 1
    restores = [
        change
        for outcome in outcomes
        for change in outcome.changes
        if change == ("rds", "RestoreDBInstanceFromDBSnapshot")
    ]
    assert len(restores) == 1
    # And only the first logged "drill started" and emitted DrillsStarted
    assert ["drill started" in outcome.logs for outcome in outcomes] == [True, False, False]
    assert ["DrillsStarted" in outcome.logs for outcome in outcomes] == [True, False, False]


def test_the_recorder_answers_malformed_rds_identifiers_as_rds_does(world: World) -> None:
    # Given a malformed DB instance identifier
    rds = boto3.client("rds", region_name=REGION)
    # When it is described
    with pytest.raises(ClientError) as refused:
        rds.describe_db_instances(DBInstanceIdentifier="0-not--valid-")
    # Then RDS's answer is InvalidParameterValue, not "not found"
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    # while well-formed ones (automated snapshot ids included) are merely not found
    with pytest.raises(ClientError) as missing:
        rds.describe_db_snapshots(DBSnapshotIdentifier="rds:gone-db-2026-11-27-03-10")
    assert missing.value.response["Error"]["Code"] == "DBSnapshotNotFound"


# ------------------------------------------------------------------------------ StartDrill


def assert_rejection_logged(outcome: Outcome) -> None:
    """A rejected event is logged as a warning carrying the same reason the handler returns."""
    if outcome.result["status"] == "rejected":
        assert outcome.result["reason"]
        warnings = [line for line in json_lines(outcome.logs) if line.get("level") == "WARNING"]
        assert any(line.get("reason") == outcome.result["reason"] for line in warnings), (
            f"rejection not logged: {outcome.logs}"
        )


def assert_turned_away(outcome: Outcome) -> None:
    """An EventBridge-triggered handler's answer to input it cannot act on."""
    assert outcome.error is None, f"raised (EventBridge retries twice):\n{outcome.error_text}"
    assert isinstance(outcome.result, dict)
    assert outcome.result["status"] in ("ignored", "rejected"), outcome.result
    assert_rejection_logged(outcome)
    assert_nothing_changed(outcome)


@HOSTILE
@given(event=all_events)
def test_start_drill_turns_hostile_events_away_without_changing_anything(
    world: World, event: Any
) -> None:
    # Given any JSON value, mangled snapshot/Drill Requested events, or foreign events
    # When StartDrill is invoked with it (as EventBridge would)
    outcome = world.invoke("StartDrill", event)
    # Then it answers ignored or rejected (logged with the reason), raises nothing, and changes
    # nothing in AWS
    assert_turned_away(outcome)


@HOSTILE
@given(event=st.one_of(drill_requests_with_bad_fields(), snapshot_events_with_bad_identifiers()))
def test_start_drill_rejects_requests_naming_malformed_databases_or_snapshots(
    world: World, event: dict[str, Any]
) -> None:
    # Given a Drill Requested event or snapshot event whose database or snapshot is hostile
    # text (huge, unicode, SQL, empty, the wrong type)
    # When StartDrill is invoked with it
    outcome = world.invoke("StartDrill", event)
    # Then it is turned away with a reason, never retried, and nothing changes
    assert_turned_away(outcome)


@HOSTILE
@given(
    target=st.sampled_from(["orders-db", "legacy-db"]),
    how=st.sampled_from(["snapshot event", "request by database", "request by snapshot"]),
    forged_tags=st.dictionaries(
        st.sampled_from(["restoredrill:drill", "team", "Restoredrill:Drill"]),
        st.sampled_from(["enabled", "ENABLED", "", "yes"]),
        max_size=3,
    ),
    request_id=st.text(min_size=1, max_size=30),
)
def test_snapshots_of_databases_that_are_not_opted_in_start_nothing(
    world: World, target: str, how: str, forged_tags: dict[str, str], request_id: str
) -> None:
    # Given the newest automated snapshot of a PostgreSQL database that is not opted in, or of
    # an opted-in MySQL database, announced with tags that may claim an opt-in
    snapshot_id = world.snapshots[target]
    if how == "snapshot event":
        event = sample("start_drill/automated-snapshot-created.json")
        event["detail"]["SourceArn"] = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:{snapshot_id}"
        event["detail"]["SourceIdentifier"] = snapshot_id
        event["detail"]["Tags"] = forged_tags
    else:
        event = sample("start_drill/drill-requested.json")
        event["detail"] = {"request_id": request_id}
        if how == "request by database":
            event["detail"]["db_instance_identifier"] = target
        else:
            event["detail"]["snapshot_id"] = snapshot_id
    # When StartDrill is invoked with it
    outcome = world.invoke("StartDrill", event)
    # Then it is rejected, saying why, and nothing is restored or written
    assert_turned_away(outcome)
    assert outcome.result["status"] == "rejected"
    expected = "not opted in" if target == "orders-db" else "not PostgreSQL"
    assert expected in outcome.result["reason"]


# ------------------------------------------------------------------------------ AdvanceOnRdsEvent


@HOSTILE
@given(event=rds_instance_events_for_others())
def test_rds_events_about_other_instances_are_ignored_without_a_single_call(
    world: World, event: dict[str, Any]
) -> None:
    # Given an RDS instance event about an instance that is not ours (other names, rds:
    # prefixes, huge or unicode or SQL-ish identifiers) or about a snapshot or cluster that
    # merely carries one of our instance names
    # When AdvanceOnRdsEvent is invoked with it
    outcome = world.invoke("AdvanceOnRdsEvent", event)
    # Then it is ignored before any AWS call
    assert outcome.error is None, outcome.error_text
    assert outcome.result == {"status": "ignored"}
    assert outcome.calls == []


@HOSTILE
@given(
    event=st.one_of(
        all_events,
        mutated(sample("advance/rds-instance-deleted.json")),
        mutated(sample("advance/rds-master-credentials-reset.json")),
    )
)
def test_advance_on_rds_event_never_raises_or_changes_anything_for_hostile_events(
    world: World, event: Any
) -> None:
    # Given any JSON value or mangled RDS instance event (none names a live run)
    # When AdvanceOnRdsEvent is invoked with it
    outcome = world.invoke("AdvanceOnRdsEvent", event)
    # Then it raises nothing, answers with a status, reads the run table only with well-formed
    # run ids, and changes nothing
    assert outcome.error is None, f"raised (EventBridge retries twice):\n{outcome.error_text}"
    assert outcome.result["status"] in ("ignored", "rejected", "advanced")
    assert_rejection_logged(outcome)
    if outcome.result["status"] == "advanced":
        assert outcome.result["state"] is None  # no such run
        assert len(outcome.run_keys_read) == 1
    else:
        assert outcome.run_keys_read == []
    assert_nothing_changed(outcome)


# ------------------------------------------------------------------------------ SQS batches


def sqs_batch(bodies: list[str], queue: str) -> tuple[dict[str, Any], list[str]]:
    template = sample("advance/poll.json")["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"00000000-0000-4000-8000-{index:012d}"
        record["body"] = body
        record["eventSourceARN"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-{queue}"
        records.append(record)
    return {"Records": records}, [record["messageId"] for record in records]


def assert_exactly_the_garbage_reported(
    outcome: Outcome, ids: list[str], good: list[bool], good_run_ids: list[str]
) -> None:
    garbage = {message_id for message_id, ok in zip(ids, good, strict=True) if not ok}
    if garbage == set(ids):
        # Every record failed: Powertools fails the invocation and SQS redelivers the whole
        # batch, which reaches the DLQ after maxReceiveCount like individually reported records.
        assert isinstance(outcome.error, BatchProcessingError), outcome.error_text
        assert all(isinstance(e[1], InvalidEvent) for e in outcome.error.child_exceptions)
    else:
        assert outcome.error is None, outcome.error_text
        reported = [item["itemIdentifier"] for item in outcome.result["batchItemFailures"]]
        assert sorted(reported) == sorted(garbage)
    # The good records were processed (their run looked up); the garbage never reached a lookup
    assert sorted(outcome.run_keys_read) == sorted(good_run_ids)
    assert_nothing_changed(outcome)


@HOSTILE
@given(bodies=st.lists(poll_bodies, min_size=1, max_size=10))
def test_poll_batches_report_exactly_the_garbage_records(world: World, bodies: list[str]) -> None:
    # Given a poll batch mixing well-formed poll messages and garbage bodies
    event, ids = sqs_batch(bodies, "poll")
    good = [poll_body_is_valid(body) for body in bodies]
    good_run_ids = [json.loads(b)["run_id"] for b, ok in zip(bodies, good, strict=True) if ok]
    # When AdvanceOnPoll processes it
    outcome = world.invoke("AdvanceOnPoll", event)
    # Then exactly the garbage is reported back (to reach the DLQ), the good records are
    # processed, and nothing changes
    assert_exactly_the_garbage_reported(outcome, ids, good, good_run_ids)


good_checker_bodies = st.builds(
    lambda run_id, condition: json.dumps(
        {
            **checker_record(run_id, password=PASSWORD),
            "requestContext": {"condition": condition, "approximateInvokeCount": 1},
        }
    ),
    run_ids,
    st.sampled_from(["Success", "RetriesExhausted"]),
)


@HOSTILE
@given(
    records=st.lists(
        st.one_of(
            good_checker_bodies.map(lambda body: (body, True)),
            garbage_checker_bodies().map(lambda body: (body, False)),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_checker_result_batches_report_exactly_the_garbage_records(
    world: World, records: list[tuple[str, bool]]
) -> None:
    # Given a batch of destination records mixing good ones (whose requestPayload carries the
    # run's password, as Lambda delivers it) and records of the wrong shape
    bodies = [body for body, _ in records]
    good = [ok for _, ok in records]
    event, ids = sqs_batch(bodies, "checker-results")
    good_run_ids = [json.loads(body)["requestPayload"]["run_id"] for body, ok in records if ok]
    # When AdvanceOnCheckerResult processes it
    outcome = world.invoke("AdvanceOnCheckerResult", event)
    # Then exactly the garbage is reported, the good ones are processed, nothing changes, and
    # the password appears nowhere in the logs, the answer or the error
    assert_exactly_the_garbage_reported(outcome, ids, good, good_run_ids)
    if good_run_ids:  # the logs looked at are the advance path's own
        assert "no such drill" in outcome.logs
    assert PASSWORD not in outcome.logs
    assert PASSWORD not in json.dumps(outcome.result)
    assert PASSWORD not in outcome.error_text


@HOSTILE
@given(
    handler=st.sampled_from(["AdvanceOnPoll", "AdvanceOnCheckerResult"]),
    event=st.one_of(json_values, all_events),
)
def test_sqs_handlers_change_nothing_for_events_that_are_not_sqs_batches(
    world: World, handler: str, event: Any
) -> None:
    # Given something that is not an SQS batch at all (SQS never sends one; a misdirected
    # synchronous invoke might)
    # When an SQS handler is invoked with it
    outcome = world.invoke(handler, event)
    # Then it either answers an (empty) batch response or fails that one synchronous invoke
    # (Powertools: "Invalid event format" / "Unexpected batch event type"), and changes nothing
    if outcome.error is None:
        assert outcome.result == {"batchItemFailures": []}
    assert_nothing_changed(outcome)


# ------------------------------------------------------------------------------ Checker


@pytest.fixture
def closed_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A loopback port nothing listens on; every other address is unreachable (no DNS, no
    network: a mangled host must not send the checker anywhere)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused at once
    port = int(sock.getsockname()[1])
    real = socket.getaddrinfo

    def only_the_closed_port(host: Any, service: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "127.0.0.1" and str(service) == str(port):
            return real(host, service, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "unreachable in this test")

    monkeypatch.setattr(socket, "getaddrinfo", only_the_closed_port)
    yield port
    sock.close()


BASELINE = {
    "format": "restoredrill.baseline/1",
    "taken_at": "2026-11-26T03:10:00+00:00",
    "level": 3,
    "databases": {
        "postgres": {"schema_fingerprint": "sha256:ab12", "row_counts": {"public.orders": 10}}
    },
}


def checker_payload(port: int, *, packed: bool = False) -> dict[str, Any]:
    """The sample request plus what advance also sends (policy, baseline, vcpus), pointed at a
    port that refuses connections."""
    payload = sample("checker/check-restored-instance.json")
    payload["target"].update(host="127.0.0.1", port=port, password=PASSWORD, connect_timeout_s=2)
    payload["policy"] = {"level": 3}
    payload["baseline"] = pack_document(BASELINE, max_plain_bytes=0) if packed else BASELINE
    payload["vcpus"] = 2
    return payload


@HOSTILE
@given(data=st.data())
def test_checker_answers_malformed_requests_with_invalid_event_and_never_the_password(
    world: World, closed_port: int, data: st.DataObject
) -> None:
    # Given a checker payload carrying the run's password, mangled (fields removed, retyped,
    # replaced by hostile text), or any JSON value at all
    event = data.draw(
        st.one_of(
            mutated(checker_payload(closed_port)),
            mutated(checker_payload(closed_port, packed=True)),
            json_values,
        )
    )
    # When the checker is invoked with it
    outcome = world.invoke("Checker", event)
    # Then a malformed request fails with InvalidEvent naming the bad fields (the failure
    # travels to advance through the async destination; the checker is never retried), a
    # well-formed one gets a verdict; it never calls AWS; the password is nowhere
    if outcome.error is not None:
        assert type(outcome.error) is InvalidEvent, outcome.error_text
        assert str(outcome.error).startswith("malformed checker request")
    else:
        assert outcome.result["result"]["verdict"] in ("PASSED", "FAILED", "ERROR")
    assert outcome.calls == []
    assert PASSWORD not in outcome.error_text
    assert PASSWORD not in outcome.logs
    assert PASSWORD not in json.dumps(outcome.result, default=str)


@HOSTILE
@given(event=st.one_of(json_values, all_events))
def test_check_runner_refuses_malformed_requests_before_reading_any_password(
    world: World, event: Any
) -> None:
    # Given anything but a well-formed check run request
    # When the check runner is invoked with it
    outcome = world.invoke("CheckRunner", event)
    # Then it fails with InvalidEvent (its failure goes to advance through the destination),
    # before it reads a password or invokes the checker
    assert type(outcome.error) is InvalidEvent, outcome.error_text
    assert str(outcome.error).startswith("malformed check run request")
    assert outcome.calls == []


def test_a_well_formed_checker_request_never_returns_or_logs_the_password(
    world: World, closed_port: int
) -> None:
    # Given a valid checker request with the run's password, for an instance that refuses
    outcome = world.invoke("Checker", checker_payload(closed_port))
    # Then the answer is a verdict (ERROR: it could not connect) without the password
    assert outcome.error is None, outcome.error_text
    assert outcome.result["result"]["verdict"] == "ERROR"
    assert PASSWORD not in json.dumps(outcome.result) + outcome.logs
    assert any(line.get("message") == "checks done" for line in json_lines(outcome.logs))


# ------------------------------------------------------------------------------ Notify

REQUIRED_IN_DRILL_FINISHED = [
    ("version",),
    ("id",),
    ("source",),
    ("account",),
    ("time",),
    ("region",),
    ("resources",),
    ("detail-type",),
    ("detail",),
    ("detail", "run_id"),
    ("detail", "source_db"),
    ("detail", "snapshot_id"),
    ("detail", "report"),
    ("detail", "report", "bucket"),
    ("detail", "report", "key"),
    ("detail", "report", "uri"),
]
# Values no required field of a Drill Finished event accepts.
never_valid_there = st.one_of(
    st.none(),
    st.lists(json_scalars, max_size=2),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=2),
)


@st.composite
def malformed_drill_finished(draw: st.DrawFn) -> Any:
    event = copy.deepcopy(sample("notify/drill-finished.json"))
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        return draw(json_values.filter(lambda v: not isinstance(v, dict) or "detail" not in v))
    path = draw(st.sampled_from(REQUIRED_IN_DRILL_FINISHED))
    parent: Any = event
    for part in path[:-1]:
        parent = parent[part]
    how = draw(st.sampled_from(["remove", "retype"]))
    if how == "remove":
        del parent[path[-1]]
    elif path[-1] in ("detail", "report", "resources"):
        parent[path[-1]] = draw(st.one_of(st.none(), st.integers(), hostile_strings))
    else:
        parent[path[-1]] = draw(never_valid_there)
    return event


@HOSTILE
@given(event=malformed_drill_finished())
def test_notify_never_announces_a_malformed_drill_finished(world: World, event: Any) -> None:
    # Given a Drill Finished event with a required field missing or of the wrong type, or any
    # other JSON value
    # When Notify is invoked with it
    outcome = world.invoke("Notify", event)
    # Then nothing reaches Slack, no idempotency record is written, nothing changes, and
    # whatever it says does not carry the webhook URL
    assert world.slack.posts == []
    assert_nothing_changed(outcome)
    assert WEBHOOK_SECRET not in outcome.error_text + outcome.logs


@HOSTILE
@given(event=malformed_drill_finished())
def test_notify_turns_a_malformed_drill_finished_away_without_raising(
    world: World, event: Any
) -> None:
    # Given a malformed Drill Finished event
    # When Notify is invoked with it
    outcome = world.invoke("Notify", event)
    # Then it answers rejected (logged) instead of raising into EventBridge's retries
    assert_turned_away(outcome)


# ------------------------------------------------------------------------------ Sweeper


@HOSTILE
@given(event=st.one_of(json_values, all_events, st.just(sample("sweeper/scheduled.json"))))
def test_sweeper_ignores_its_input_and_never_touches_instances_it_does_not_own(
    world: World, event: Any
) -> None:
    # Given any input at all, and RDS holding another stack's drill instance, an untagged
    # instance named like ours, an instance tagged ours without our name, and production DBs
    # When the sweeper runs
    outcome = world.invoke("Sweeper", event)
    # Then it sweeps normally: nothing to advance, no orphan of ours, nothing deleted
    assert outcome.error is None, outcome.error_text
    assert outcome.result == {
        "runs_advanced": 0,
        "runs_timed_out": 0,
        "runs_failed": 0,
        "orphans_deleted": [],
        "point_in_time_started": [],
    }
    assert_nothing_changed(outcome)


# ------------------------------------------------------------------------------ secrets: Slack


def drill_finished(run_id: str = "3f9a2c71d0b84e5fa613") -> dict[str, Any]:
    event = sample("notify/drill-finished.json")
    event["detail"]["run_id"] = run_id
    return event


def test_the_webhook_url_stays_out_of_logs_and_errors_when_slack_answers_500(world: World) -> None:
    # Given a Slack webhook (its URL a SecureString) that answers 500 to everything
    # When Notify announces a finished drill
    outcome = world.invoke("Notify", drill_finished())
    # Then Slack was tried (and retried once), the failure is raised for EventBridge to retry,
    # and neither the error nor any log line carries the URL or its secret path
    assert len(world.slack.posts) == 2
    assert outcome.error is not None
    assert "HTTP 500" in str(outcome.error)
    assert WEBHOOK_SECRET not in outcome.error_text
    assert WEBHOOK_SECRET not in outcome.logs
    assert world.slack.url not in outcome.error_text + outcome.logs


def test_the_webhook_url_stays_out_of_logs_at_info_level_when_slack_answers_500(
    world: World,
) -> None:
    # Given Lambda's JSON log format (application log level INFO for every logger) and a
    # Slack that answers 500
    world.caplog.set_level(logging.INFO)
    # When Notify announces a finished drill
    outcome = world.invoke("Notify", drill_finished("0123456789abcdef0123"))
    # Then no log line carries the webhook's secret path
    assert len(world.slack.posts) == 2
    assert WEBHOOK_SECRET not in outcome.logs


def test_a_webhook_url_without_scheme_stays_out_of_logs(world: World) -> None:
    # Given the webhook parameter holds the URL without its scheme (a copy-paste slip: urllib
    # then refuses it with "unknown url type: '<the url>'")
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=WEBHOOK_PARAMETER,
        Value=f"hooks.slack.com/services/{WEBHOOK_SECRET}",
        Type="SecureString",
        Overwrite=True,
    )
    _reset_caches()
    # When Notify announces a finished drill
    outcome = world.invoke("Notify", drill_finished("abcdef0123456789abcd"))
    # Then it fails, and neither the error nor the logs carry the secret
    assert outcome.error is not None
    assert WEBHOOK_SECRET not in outcome.error_text
    assert WEBHOOK_SECRET not in outcome.logs


# ------------------------------------------------------------------------------ bad policy


def test_a_bad_policy_file_does_not_stop_the_sweeper(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a drill policy file that does not validate
    bad = tmp_path / "drill-policy.yaml"
    bad.write_text("version: 1\ndefaults:\n  level: eleven\n  no_such_key: true\n")
    monkeypatch.setenv("DRILL_POLICY_FILE", str(bad))
    _reset_caches()
    # When the sweeper runs
    outcome = world.invoke("Sweeper", sample("sweeper/scheduled.json"))
    # Then it still sweeps, and the policy problem is reported in the logs
    assert outcome.error is None, outcome.error_text
    assert outcome.result["orphans_deleted"] == []
    assert "drill-policy.yaml" in outcome.logs


# ------------------------------------------------------------------------------ ValidateRestore

# What the validator may write when it declines a well-formed event: its idempotency record.
IDEMPOTENCY_WRITES = {("dynamodb", "PutItem"), ("dynamodb", "UpdateItem")}


@pytest.fixture
def restore_jobs(world: World) -> Iterator[LocalBackup]:
    """AWS Backup's restore jobs (the local cloud's emulation; moto has none)."""
    local = LocalBackup(ACCOUNT, REGION)
    local.install()
    yield local
    local.uninstall()


def assert_validation_declined(outcome: Outcome) -> None:
    """The validator's answer to what it may not or cannot validate: no exception, a reason,
    nothing sent to AWS Backup, no check run, no report, nothing changed but its own record."""
    assert outcome.error is None, f"raised (EventBridge retries twice):\n{outcome.error_text}"
    assert isinstance(outcome.result, dict)
    assert outcome.result["status"] in ("ignored", "rejected", "not_validated"), outcome.result
    if outcome.result["status"] != "ignored":
        assert outcome.result["reason"]
    assert set(outcome.changes) <= IDEMPOTENCY_WRITES, outcome.changes
    if outcome.changes:
        assert outcome.result["status"] == "not_validated"


@HOSTILE
@given(
    event=st.one_of(
        all_events,
        restore_job_events_with_bad_fields(),
        mutated(sample("validate_restore/restore-test-completed.json")),
    )
)
def test_validate_restore_turns_hostile_events_away_without_sending_or_checking_anything(
    world: World, restore_jobs: LocalBackup, event: Any
) -> None:
    # Given any JSON value, mangled Restore Job State Change (or other) events, and AWS Backup
    # knowing no such restore job
    # When the validator is invoked with it (as EventBridge would)
    outcome = world.invoke("ValidateRestore", event)
    # Then it declines without raising, calls PutRestoreValidationResult never, invokes no
    # checker, writes no report and changes nothing but its idempotency record
    assert_validation_declined(outcome)
    assert restore_jobs.validation_calls == []


def test_a_restore_test_naming_a_production_instance_is_not_checked(
    world: World, restore_jobs: LocalBackup
) -> None:
    # Given a completed restore testing job that names orders-db, a production instance
    # (it lacks the awsbackup-restore-test tag every restore testing resource carries)
    event = sample("validate_restore/restore-test-completed.json")
    arn = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-db"
    event["detail"]["createdResourceArn"] = arn
    job_id = event["detail"]["restoreJobId"]
    restore_jobs.add_job(
        RestoreJob(
            restore_job_id=job_id,
            created_resource_arn=arn,
            source_resource_arn=arn,
            recovery_point_arn=f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:rp-1",
            recovery_point_created_at=datetime.now(UTC),
            restore_testing_plan_arn=event["detail"]["restoreTestingPlanArn"],
        )
    )
    # When the validator handles the event
    outcome = world.invoke("ValidateRestore", event)
    # Then it declines, says why, and neither checks nor touches the instance nor sets a status
    assert_validation_declined(outcome)
    assert "awsbackup-restore-test" in outcome.result["reason"]
    assert restore_jobs.validation_calls == []
    called = {(svc, op) for svc, op, _ in outcome.calls}
    assert ("backup", "DescribeRestoreJob") in called
    assert ("rds", "DescribeDBInstances") in called
    assert not {op for svc, op in called if svc in ("rds", "lambda", "s3", "ssm")} - {
        "DescribeDBInstances"
    }


def test_a_restore_test_event_naming_a_job_aws_backup_does_not_know_is_declined(
    world: World, restore_jobs: LocalBackup
) -> None:
    # Given the sample event, well formed, of a restore job AWS Backup has no record of
    event = sample("validate_restore/restore-test-completed.json")
    # When the validator handles it
    outcome = world.invoke("ValidateRestore", event)
    # Then AWS Backup's own answer is what counts: declined, nothing sent, nothing looked up
    assert_validation_declined(outcome)
    assert outcome.result["reason"].startswith("AWS Backup has no restore job")
    called = {(svc, op) for svc, op, _ in outcome.calls}
    assert ("backup", "DescribeRestoreJob") in called
    assert not {svc for svc, _ in called} - {"backup", "dynamodb"}
    assert restore_jobs.validation_calls == []
