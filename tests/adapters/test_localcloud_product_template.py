"""The product's template.yaml provisions onto moto and its wiring is what the template says.

Expectations are read from the template itself (robust to it changing), plus the few facts the
design depends on (the checker's result comes back through CheckerResultsQueue).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from localcloud.provision import Stack, local_client, provision
from localcloud.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
OVERRIDES = {
    "DBSubnetGroupName": "drill-subnets",
    "DrillSecurityGroupId": "sg-0d0d0d0d0d0d0d0d0",
    "CheckerSecurityGroupId": "sg-0c0c0c0c0c0c0c0c0",
    "CheckerSubnetIds": "subnet-0a0a0a0a0a0a0a0a0,subnet-0b0b0b0b0b0b0b0b0",
}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(moto_url: str) -> Stack:
    return provision(
        TEMPLATE,
        moto_url=moto_url,
        stack_name="rd-product",
        parameter_overrides=OVERRIDES,
        visibility_timeout_override=5,
        project_root=ROOT,
    )


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_yaml(TEMPLATE)


def _resources(raw: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == rtype}


def _events(raw: dict[str, Any], etype: str) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for logical_id, resource in _resources(raw, "AWS::Serverless::Function").items():
        for name, event in (resource["Properties"].get("Events") or {}).items():
            if event["Type"] == etype:
                found.append((logical_id, name, event.get("Properties") or {}))
    return found


def _ref_target(node: Any) -> str:
    """The logical id an !Ref / !GetAtt in the raw template points at."""
    if "Ref" in node:
        return str(node["Ref"])
    return str(node["Fn::GetAtt"][0])


def test_every_queue_table_bucket_and_bus_of_the_template_exists_in_moto(
    stack: Stack, raw: dict[str, Any], moto_url: str
) -> None:
    sqs = local_client("sqs", endpoint_url=moto_url)
    # Queues: each one exists, redrive policies point at the right dead-letter queue
    for logical_id, resource in _resources(raw, "AWS::SQS::Queue").items():
        url = stack.physical_id(logical_id)
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["VisibilityTimeout"] == "5"
        redrive = (resource.get("Properties") or {}).get("RedrivePolicy")
        if redrive:
            policy = json.loads(attributes["RedrivePolicy"])
            target = stack.queues[_ref_target(redrive["deadLetterTargetArn"])]
            assert policy["deadLetterTargetArn"] == target.arn
            assert policy["maxReceiveCount"] == int(redrive["maxReceiveCount"])
    # Tables: key schema and indexes as declared
    dynamodb = local_client("dynamodb", endpoint_url=moto_url)
    for logical_id, resource in _resources(raw, "AWS::DynamoDB::Table").items():
        table = dynamodb.describe_table(TableName=stack.physical_id(logical_id))["Table"]
        assert table["KeySchema"] == resource["Properties"]["KeySchema"]
        declared = {
            i["IndexName"] for i in resource["Properties"].get("GlobalSecondaryIndexes", [])
        }
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == declared
    # The report bucket (created: ReportBucketName is empty by default), encrypted, and usable
    # over the local cloud's plain HTTP (its DenyInsecureTransport policy is recorded, not applied)
    s3 = local_client("s3", endpoint_url=moto_url)
    bucket = stack.outputs["ReportBucketName"]
    assert bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    s3.put_object(Bucket=bucket, Key="reports/probe.json", Body=b"{}")
    for logical_id in _resources(raw, "AWS::Events::EventBus"):
        assert stack.physical_id(logical_id) in stack.buses


def test_rules_event_sources_schedules_and_destinations_match_the_template(
    stack: Stack, raw: dict[str, Any]
) -> None:
    # EventBridge rules: one per EventBridgeRule event, same pattern, on the declared bus
    rules = {rule.logical_id: rule for rule in stack.rules}
    for function, name, props in _events(raw, "EventBridgeRule"):
        rule = rules[f"{function}{name}"]
        assert rule.pattern == props["Pattern"]
        bus = props.get("EventBusName")
        assert rule.bus_name == (stack.physical_id(_ref_target(bus)) if bus else "default")
        assert [t.function for t in rule.targets] == [function]
    # SQS event sources: the declared queue, batch size and partial-failure reporting
    sources = {source.logical_id: source for source in stack.sqs_sources}
    for function, name, props in _events(raw, "SQS"):
        source = sources[f"{function}{name}"]
        assert source.queue_arn == stack.queues[_ref_target(props["Queue"])].arn
        assert source.batch_size == int(props.get("BatchSize", 10))
        assert source.report_batch_item_failures == (
            "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
        )
    # Schedules
    schedules = {schedule.logical_id: schedule for schedule in stack.schedules}
    for function, name, _ in _events(raw, "Schedule"):
        assert schedules[f"{function}{name}"].rate_seconds is not None
    # Async destinations: as declared; the checker answers through CheckerResultsQueue
    for logical_id, resource in _resources(raw, "AWS::Serverless::Function").items():
        declared = (resource["Properties"].get("EventInvokeConfig") or {}).get(
            "DestinationConfig"
        ) or {}
        config = stack.functions[logical_id].invoke_config
        for key, destination in (
            ("OnSuccess", config.on_success),
            ("OnFailure", config.on_failure),
        ):
            if key in declared:
                assert destination is not None
                assert (
                    destination.arn == stack.queues[_ref_target(declared[key]["Destination"])].arn
                )
            else:
                assert destination is None
    # The check runner's result (and failure) goes to the results queue; the checker itself is
    # invoked synchronously and has no destination
    runner = stack.functions["CheckRunnerFunction"]
    for destination in (runner.invoke_config.on_success, runner.invoke_config.on_failure):
        assert destination is not None
        assert destination.arn == stack.queues["CheckerResultsQueue"].arn
    checker = stack.functions["CheckerFunction"]
    assert checker.invoke_config.on_success is None and checker.invoke_config.on_failure is None


def test_every_function_gets_the_globals_environment_fully_resolved(
    stack: Stack, raw: dict[str, Any]
) -> None:
    names = set(raw["Globals"]["Function"]["Environment"]["Variables"])
    for spec in stack.functions.values():
        assert names <= set(spec.environment)
        assert all(isinstance(v, str) for v in spec.environment.values())
        # The layer (shared/) is on every function's path
        assert (ROOT / "shared").resolve() in spec.layer_dirs
    start = stack.functions["StartDrillFunction"].environment
    assert start["RUN_TABLE_NAME"] == stack.physical_id("RunTable")
    assert start["DB_SUBNET_GROUP_NAME"] == OVERRIDES["DBSubnetGroupName"]
    assert all(
        value == stack.outputs[key] for key, value in [("PollQueueUrl", start["POLL_QUEUE_URL"])]
    )


def test_report_retention_days_makes_a_bucket_locked_in_compliance_mode(moto_url: str) -> None:
    # Given the product template deployed with ReportRetentionDays=30
    locked = provision(
        TEMPLATE,
        moto_url=moto_url,
        stack_name="rd-locked",
        parameter_overrides={**OVERRIDES, "ReportRetentionDays": "30"},
        visibility_timeout_override=5,
        project_root=ROOT,
    )
    s3 = local_client("s3", endpoint_url=moto_url)
    bucket = locked.outputs["ReportBucketName"]
    # When a report is written there (with the checksum Object Lock requires) and deleted
    s3.put_object(Bucket=bucket, Key="reports/r.json", Body=b"{}", ChecksumAlgorithm="SHA256")
    (version,) = s3.list_object_versions(Bucket=bucket, Prefix="reports/")["Versions"]
    with pytest.raises(s3.exceptions.ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key="reports/r.json", VersionId=version["VersionId"])
    # Then the bucket holds every report for 30 days in compliance mode, and says so
    rule = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    retention = rule["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 30)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert locked.outputs["ReportRetentionDays"] == "30"


def test_by_default_reports_are_not_locked_in_a_bucket_that_could_lock_them(
    stack: Stack, moto_url: str
) -> None:
    # Given the default deployment (ReportRetentionDays=0)
    s3 = local_client("s3", endpoint_url=moto_url)
    bucket = stack.outputs["ReportBucketName"]
    # When a report is written there and that version deleted
    key = "reports/lock-probe.json"
    s3.put_object(Bucket=bucket, Key=key, Body=b"{}", ChecksumAlgorithm="SHA256")
    (version,) = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
    # Then the version is gone (no default retention), while the bucket has Object Lock on, so
    # raising ReportRetentionDays later only sets a default retention on this same bucket
    assert "Versions" not in s3.list_object_versions(Bucket=bucket, Prefix=key)
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock == {"ObjectLockEnabled": "Enabled"}
    assert stack.outputs["ReportRetentionDays"] == "0"
