"""The local cloud deploys a (fixture) template onto moto and delivers events as AWS does.

One LocalAws for the module: moto server, the local Lambda/EventBridge endpoint and the fixture
stack's handlers (tests/fixtures/localcloud). Every test uses its own unique keys.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.aws import EventFaults, LocalAws

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "localcloud"
SAMPLES = FIXTURES / "aws-events"
STACK = "lcfx"
ENVIRON_BEFORE: dict[str, str] = {}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    local = LocalAws(
        template_path=FIXTURES / "template.yaml",
        project_root=FIXTURES,
        work_dir=tmp_path_factory.mktemp("localcloud"),
        stack_name=STACK,
        parameter_overrides={"Prefix": "px"},
        function_env={"EXTRA_FROM_CALLER": "from-the-caller"},
        visibility_timeout_override=1,
        schedule_period_seconds=1.0,
        async_retry_delay_seconds=0.2,
    )
    ENVIRON_BEFORE.update({k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"})
    with local:
        yield local


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def items(cloud: LocalAws, prefix: str) -> list[dict[str, str]]:
    pages = (
        cloud.client("dynamodb").get_paginator("scan").paginate(TableName=cloud.output("TableName"))
    )
    found = []
    for page in pages:
        for item in page["Items"]:
            if item["pk"]["S"].startswith(prefix):
                row = {k: next(iter(v.values())) for k, v in item.items()}
                row["pk"] = row["pk"].split("@", 1)[0]  # the layer appends @<uid>
                found.append(row)
    return sorted(found, key=lambda row: float(row["at"]))


def receive_all(
    cloud: LocalAws, logical_id: str, *, expect: int, timeout: float = 10
) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    url = cloud.physical_id(logical_id)
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        )
        for message in response.get("Messages", []):
            got.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return got


def key_shape(value: Any) -> Any:
    """The nested key structure of a JSON value (what a consumer's parser depends on)."""
    if isinstance(value, dict):
        return {k: key_shape(v) for k, v in value.items()}
    return type(value).__name__ if value is not None else None


# ----------------------------------------------------------------------------------- provisioning


def test_resources_are_created_in_moto_with_cloudformation_names_and_wiring(
    cloud: LocalAws,
) -> None:
    # Given the fixture stack started
    sqs = cloud.client("sqs")
    # Then queues exist with CloudFormation-like physical names and the redrive policy is real
    work_url = cloud.physical_id("WorkQueue")
    assert f"/{STACK}-WorkQueue-" in work_url
    attributes = sqs.get_queue_attributes(QueueUrl=work_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=cloud.physical_id("WorkDeadLetterQueue"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert redrive == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
    # And the visibility timeout is the local override, not the template's 60 s
    assert attributes["VisibilityTimeout"] == "1"
    # And the conditional table exists with its TTL, the never-created queue does not
    table = cloud.output("TableName")
    assert table.startswith(f"{STACK}-RecordTable-")
    ttl = cloud.client("dynamodb").describe_time_to_live(TableName=table)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    assert "NeverCreated" not in cloud.stack.resources
    assert "NeverOutput" not in cloud.stack.outputs
    # And outputs resolve (Join, Select/Split, GetAtt of the bus)
    assert cloud.output("QueueList") == f"{work_url},{cloud.physical_id('WorkDeadLetterQueue')}"
    assert cloud.output("Second") == "b"
    assert cloud.output("BusArn") == f"arn:aws:events:us-east-1:123456789012:event-bus/{STACK}-bus"


def test_functions_get_their_resolved_environment_and_a_lambda_like_context(
    cloud: LocalAws,
) -> None:
    # When the caller function is invoked through boto3's Lambda client at the local endpoint
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.physical_id("CallerFunction"), Payload=b'{"key": "ctx"}'
    )
    answer = json.loads(response["Payload"].read())
    # Then it ran (its big stdout print did not break the protocol) and no error is flagged
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    # And the environment is the template's, resolved, plus the local endpoints and caller extras
    name = cloud.physical_id("CallerFunction")
    env = answer["env"]
    assert env["TABLE_NAME"] == cloud.output("TableName")
    assert env["BUS_NAME"] == f"{STACK}-bus"
    assert env["MODE"] == "fast-mode"
    assert env["GREETING"] == f"hello px from {STACK} in us-east-1"
    assert env["ASYNC_FUNCTION"] == cloud.physical_id("AsyncFunction")
    assert env["AWS_ENDPOINT_URL"] == cloud.moto_url
    assert (
        env["AWS_ENDPOINT_URL_LAMBDA"] == env["AWS_ENDPOINT_URL_EVENTBRIDGE"] == cloud.endpoint_url
    )
    assert env["EXTRA_FROM_CALLER"] == "from-the-caller"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    # And the context looks like Lambda's
    context = answer["context"]
    assert context["function_name"] == name
    assert context["function_version"] == "$LATEST"
    assert (
        context["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    )
    assert context["memory_limit_in_mb"] == "512"
    assert context["log_group_name"] == f"/aws/lambda/{name}"
    assert 0 < context["remaining_ms"] <= 10_000
    # And the print and Powertools' structured log line went to the function's log file
    log = cloud.log_text("CallerFunction")
    assert "caller printing to stdout" in log
    assert '"message":"caller running"' in log and context["aws_request_id"] in log


def test_the_parent_process_environment_is_untouched(cloud: LocalAws) -> None:
    # Given the environment as it was before the local cloud started
    # Then starting it and running functions changed nothing in it
    now = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    assert now == ENVIRON_BEFORE


# ----------------------------------------------------------------------------------- EventBridge


def test_put_events_reaches_only_the_rules_whose_pattern_matches(cloud: LocalAws) -> None:
    # Given the record function's rule: source fixture, "Thing Happened", detail.name prefix keep-
    token = uuid.uuid4().hex[:8]
    events = cloud.client("events")
    # When three events are put on the custom bus through boto3's EventBridge client
    response = events.put_events(
        Entries=[
            {
                "Source": "fixture",
                "DetailType": "Thing Happened",
                "Detail": json.dumps({"name": f"keep-{token}"}),
                "EventBusName": f"{STACK}-bus",
            },
            {
                "Source": "fixture",
                "DetailType": "Thing Happened",
                "Detail": json.dumps({"name": f"drop-{token}"}),
                "EventBusName": cloud.output("BusArn"),
            },
            {  # same content on the default bus: the rule is on the custom bus
                "Source": "fixture",
                "DetailType": "Thing Happened",
                "Detail": json.dumps({"name": f"keep-{token}-default"}),
            },
        ]
    )
    # Then all are accepted with ids
    assert response["FailedEntryCount"] == 0
    ids = [entry["EventId"] for entry in response["Entries"]]
    # And only the first reached the function, as a full EventBridge envelope
    recorded = wait_until(lambda: items(cloud, f"event#{ids[0]}"))
    assert recorded
    envelope = json.loads(recorded[0]["envelope"])
    assert envelope["detail"] == {"name": f"keep-{token}"}
    assert envelope["detail-type"] == "Thing Happened"
    assert set(envelope) == {
        "version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"
    }  # fmt: skip
    assert cloud.delivery.wait_idle(10)
    assert items(cloud, f"event#{ids[1]}") == [] and items(cloud, f"event#{ids[2]}") == []
    # And every event put on a bus is logged with its bus
    logged = {envelope["id"]: bus for bus, envelope in cloud.delivery.events_log}
    assert logged[ids[0]] == f"{STACK}-bus" and logged[ids[2]] == "default"


def test_put_events_errors_have_aws_shapes(cloud: LocalAws) -> None:
    events = cloud.client("events")
    # An unknown bus is a ClientError (stricter than AWS, which may accept it silently)
    with pytest.raises(ClientError) as error:
        events.put_events(
            Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "nope"}]
        )
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # Bad entries fail one by one: aws.* sources are reserved, Detail must be a JSON object
    response = events.put_events(
        Entries=[
            {"Source": "aws.rds", "DetailType": "RDS DB Instance Event", "Detail": "{}"},
            {"Source": "fixture", "DetailType": "d", "Detail": "[1]"},
            {"Source": "fixture", "DetailType": "d", "Detail": "{}"},
        ]
    )
    assert response["FailedEntryCount"] == 2
    codes = [entry.get("ErrorCode") for entry in response["Entries"]]
    assert codes == ["NotAuthorizedForSourceException", "MalformedDetail", None]


def test_emitted_rds_events_match_prefix_patterns(cloud: LocalAws) -> None:
    # Given the default-bus rule: SourceIdentifier prefix "drill-" or "rds:drill-"
    def rds_event(identifier: str) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "RDS DB Instance Event",
            "source": "aws.rds",
            "account": "123456789012",
            "time": "2024-05-01T03:41:07Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:rds:us-east-1:123456789012:db:{identifier}"],
            "detail": {"SourceIdentifier": identifier, "EventID": "RDS-EVENT-0043"},
        }

    bare, prefixed, production = (
        rds_event("drill-1"),
        rds_event("rds:drill-2"),
        rds_event("prod-db"),
    )
    # When the local RDS emits them
    for event in (bare, prefixed, production):
        cloud.emit(event)
    # Then both drill instances' events arrive, the production one does not
    assert wait_until(lambda: items(cloud, f"event#{bare['id']}"))
    assert wait_until(lambda: items(cloud, f"event#{prefixed['id']}"))
    assert cloud.delivery.wait_idle(10)
    assert items(cloud, f"event#{production['id']}") == []


def test_event_faults_drop_by_predicate_and_duplicate_to_every_rule(cloud: LocalAws) -> None:
    def rds_event(event_id: str, identifier: str) -> dict[str, Any]:
        return {
            "id": event_id,
            "source": "aws.rds",
            "detail-type": "RDS DB Instance Event",
            "detail": {"SourceIdentifier": identifier},
        }

    saved = cloud.delivery.faults
    try:
        # Given faults: drop drill-9 events, deliver everything twice
        cloud.delivery.faults = EventFaults(
            drop=lambda e: e["detail"].get("SourceIdentifier") == "drill-9", duplicate=2
        )
        dropped, doubled = str(uuid.uuid4()), str(uuid.uuid4())
        # When both are emitted
        cloud.emit(rds_event(dropped, "drill-9"))
        cloud.emit(rds_event(doubled, "drill-10"))
        # Then the dropped one is logged but never delivered; the other is delivered twice
        assert wait_until(lambda: len(items(cloud, f"event#{doubled}")) == 2)
        assert cloud.delivery.wait_idle(10)
        assert items(cloud, f"event#{dropped}") == []
        assert len(items(cloud, f"event#{doubled}")) == 2
        assert dropped in [e["id"] for _, e in cloud.delivery.events_log]
        assert dropped in [e["id"] for _, e in cloud.delivery.dropped_events]
    finally:
        cloud.delivery.faults = saved


# ----------------------------------------------------------------------------------- SQS


def test_a_partial_batch_failure_redelivers_only_the_failed_record_then_dead_letters_it(
    cloud: LocalAws,
) -> None:
    # Given the batch function (Powertools BatchProcessor, ReportBatchItemFailures) on WorkQueue
    # with maxReceiveCount 2; it fails every body containing "poison"
    token = uuid.uuid4().hex[:8]
    good_a, poison, good_b = f"ok-a-{token}", f"poison-{token}", f"ok-b-{token}"
    sqs = cloud.client("sqs")
    sqs.send_message_batch(
        QueueUrl=cloud.physical_id("WorkQueue"),
        Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate((good_a, poison, good_b))],
    )
    # When the poller runs: the poison message ends in the dead-letter queue
    dead = receive_all(cloud, "WorkDeadLetterQueue", expect=1, timeout=15)
    # Then exactly that message is dead-lettered after two receives
    assert [m["Body"] for m in dead] == [poison]
    assert [i["pk"] for i in items(cloud, f"sqs#{poison}#")] == [
        f"sqs#{poison}#1",
        f"sqs#{poison}#2",
    ]
    # And the good ones were processed once: deleted, never redelivered
    assert [i["pk"] for i in items(cloud, f"sqs#{good_a}#")] == [f"sqs#{good_a}#1"]
    assert [i["pk"] for i in items(cloud, f"sqs#{good_b}#")] == [f"sqs#{good_b}#1"]


def test_the_sqs_event_has_lambdas_shape(cloud: LocalAws) -> None:
    # Given a message with an attribute on the shape queue
    body = f"shape-{uuid.uuid4().hex[:8]}"
    cloud.client("sqs").send_message(
        QueueUrl=cloud.physical_id("ShapeQueue"),
        MessageBody=body,
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
    )
    # When the function receives it
    recorded = wait_until(lambda: items(cloud, f"sqsevent#{body}"))
    record = json.loads(recorded[0]["event"])["Records"][0]
    # Then its keys are those of the Lambda documentation's SQS event
    sample = json.loads((SAMPLES / "sqs-event-batch.VERBATIM-lambda-doc.json").read_text())
    expected = sample["Records"][0]
    assert set(record) == set(expected)
    assert set(expected["attributes"]) <= set(record["attributes"])
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(
        ":" + cloud.physical_id("ShapeQueue").rsplit("/", 1)[1]
    )
    assert record["body"] == body
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "test",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }


def test_sqs_delay_seconds_is_honoured(cloud: LocalAws) -> None:
    # Given a message sent with DelaySeconds=2
    body = f"shape-delayed-{uuid.uuid4().hex[:8]}"
    sent = time.monotonic()
    cloud.client("sqs").send_message(
        QueueUrl=cloud.physical_id("ShapeQueue"), MessageBody=body, DelaySeconds=2
    )
    # Then it is delivered, but not before the delay
    assert wait_until(lambda: items(cloud, f"sqsevent#{body}"), timeout=10)
    assert time.monotonic() - sent >= 2.0


# ----------------------------------------------------------------------------------- async invokes


def test_async_invokes_go_to_their_destinations_in_aws_record_shapes(cloud: LocalAws) -> None:
    # Given AsyncFunction: MaximumRetryAttempts 1, OnSuccess ResultsQueue, OnFailure FailuresQueue
    ok_key, bad_key = f"ok-{uuid.uuid4().hex[:8]}", f"bad-{uuid.uuid4().hex[:8]}"
    lambda_client = cloud.client("lambda")
    name = cloud.physical_id("AsyncFunction")
    # When it is invoked asynchronously once to succeed and once to fail
    for payload in ({"key": ok_key}, {"key": bad_key, "fail": True}):
        response = lambda_client.invoke(
            FunctionName=name, InvocationType="Event", Payload=json.dumps(payload)
        )
        assert response["StatusCode"] == 202
    success = receive_all(cloud, "ResultsQueue", expect=1)
    failure = receive_all(cloud, "FailuresQueue", expect=1)
    # Then the success record has exactly the shape of AWS's sample
    sample_ok = json.loads(
        (SAMPLES / "lambda-async-destination-record_success.VERBATIM-aws-blog.json").read_text()
    )
    record = json.loads(success[0]["Body"])
    assert set(record) == set(sample_ok)
    assert key_shape(record["requestContext"]) == key_shape(sample_ok["requestContext"])
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"] == (
        f"arn:aws:lambda:us-east-1:123456789012:function:{name}:$LATEST"
    )
    assert record["requestPayload"] == {"key": ok_key}
    assert record["responsePayload"] == {"echo": {"key": ok_key}, "function": name}
    # And the failure came after 1 retry (2 attempts, same request id), in the failure shape
    sample_bad = json.loads(
        (SAMPLES / "lambda-async-destination-record_failure.VERBATIM-aws-blog.json").read_text()
    )
    record = json.loads(failure[0]["Body"])
    assert set(record) == set(sample_bad)
    assert set(record["responseContext"]) == set(sample_bad["responseContext"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "asked to fail"
    attempts = items(cloud, f"attempt#{bad_key}")
    assert len(attempts) == 2
    assert {a["request_id"] for a in attempts} == {record["requestContext"]["requestId"]}


def test_a_failed_async_invoke_without_destination_is_recorded_not_lost(cloud: LocalAws) -> None:
    # Given a function with no destination and no retries
    key = f"lost-{uuid.uuid4().hex[:8]}"
    cloud.client("lambda").invoke(
        FunctionName=cloud.physical_id("NoDestinationFunction"),
        InvocationType="Event",
        Payload=json.dumps({"key": key, "fail": True}),
    )
    # When it fails, Then the local cloud keeps it in `undelivered`, with the error
    found = wait_until(
        lambda: [u for u in cloud.delivery.undelivered if u.payload.get("key") == key]
    )
    assert found and found[0].condition == "RetriesExhausted" and found[0].attempts == 1
    assert found[0].function == "NoDestinationFunction"
    assert found[0].response["errorMessage"] == "asked to fail"


def test_a_handler_can_call_put_events_and_invoke_through_boto3_and_its_environment(
    cloud: LocalAws,
) -> None:
    # Given the caller function, which uses plain boto3 clients (no endpoint_url in its code)
    token = uuid.uuid4().hex[:8]
    # When it puts an event on the bus and invokes AsyncFunction synchronously
    result = cloud.invoke(
        "CallerFunction", {"put_event": f"keep-{token}", "invoke": f"sync-{token}"}
    )
    # Then both calls reached the local cloud
    assert result.ok, result.payload
    answer = result.json()
    assert answer["invoked"]["echo"] == {"key": f"sync-{token}"}
    event_id = answer["put_events"][0]["EventId"]
    assert wait_until(lambda: items(cloud, f"event#{event_id}"))


# ----------------------------------------------------------------------------------- runtime


def test_a_handler_past_its_timeout_is_killed_and_the_next_invoke_gets_a_fresh_worker(
    cloud: LocalAws,
) -> None:
    # Given SleepyFunction with Timeout 1
    started = time.monotonic()
    # When it sleeps 5 s
    result = cloud.invoke("SleepyFunction", {"seconds": 5})
    # Then the invocation ends at the timeout with Lambda's message
    assert time.monotonic() - started < 3
    assert result.function_error == "Unhandled"
    assert "Task timed out after 1.00 seconds" in result.json()["errorMessage"]
    # And the next invocation works
    assert cloud.invoke("SleepyFunction", {"seconds": 0}).ok


def test_a_worker_that_exits_is_an_error_and_is_replaced(cloud: LocalAws) -> None:
    # Given a warm CrashFunction worker
    before = cloud.invoke("CrashFunction", {}).json()["pid"]
    # When the handler calls os._exit(3)
    result = cloud.invoke("CrashFunction", {"crash": True})
    # Then the invoke reports Runtime.ExitError with the exit status
    assert result.error_type == "Runtime.ExitError"
    assert "exit status 3" in result.json()["errorMessage"]
    # And the next one runs in a new process
    after = cloud.invoke("CrashFunction", {})
    assert after.ok and after.json()["pid"] != before


def test_function_errors_reach_boto3_like_lambdas(cloud: LocalAws) -> None:
    lambda_client = cloud.client("lambda")
    # A handler exception: 200 with X-Amz-Function-Error, the error document as payload
    response = lambda_client.invoke(
        FunctionName=cloud.physical_id("AsyncFunction"), Payload=b'{"fail": true}'
    )
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "ValueError" and error["stackTrace"]
    # An unknown function: ResourceNotFoundException
    with pytest.raises(ClientError) as raised:
        lambda_client.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # A payload that is not JSON: InvalidRequestContentException
    with pytest.raises(ClientError) as raised:
        lambda_client.invoke(FunctionName=cloud.physical_id("AsyncFunction"), Payload=b"{nope")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestContentException"
    # By ARN, and DryRun
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{cloud.physical_id('CrashFunction')}"
    assert lambda_client.invoke(FunctionName=arn, InvocationType="DryRun")["StatusCode"] == 204


def test_invocations_of_one_function_run_concurrently(cloud: LocalAws) -> None:
    # Given two warm-able workers per function
    results: list[Any] = []

    def call() -> None:
        results.append(cloud.invoke("SleepyFunction", {"seconds": 0.7}))

    cloud.invoke("SleepyFunction", {"seconds": 0})  # warm one
    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then both finished together rather than one after the other
    assert all(r.ok for r in results)
    assert time.monotonic() - started < 1.3
    assert len({r.json()["pid"] for r in results}) == 2


# ----------------------------------------------------------------------------------- schedules


def test_a_schedule_invokes_its_function_with_the_scheduled_event_shape(cloud: LocalAws) -> None:
    # Given ScheduledFunction on rate(1 minute), scaled to 1 s locally
    def scheduled() -> list[dict[str, Any]]:
        return [
            json.loads(i["envelope"])
            for i in items(cloud, "event#")
            if i.get("function") == cloud.physical_id("ScheduledFunction")
        ]

    # Then it runs, with the event EventBridge Scheduler sends
    events = wait_until(scheduled, timeout=10)
    assert events
    sample = json.loads(
        (SAMPLES / "eventbridge-scheduled-event.VERBATIM-lambda-doc.json").read_text()
    )
    assert set(events[0]) == set(sample)
    assert events[0]["detail-type"] == "Scheduled Event" and events[0]["source"] == "aws.events"
    assert events[0]["resources"][0].startswith("arn:aws:events:us-east-1:123456789012:rule/")
