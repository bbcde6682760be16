"""template.yaml's security and reliability properties, read from the template itself.

IAM is not enforced by the local cloud, so these tests are what stops a later edit from silently
widening a permission, dropping an encryption, a dead-letter queue or an alarm. No sockets: the
template is parsed, never deployed; the code side (which AWS calls the adapters make, which tags
a restore carries) is read from the source or driven with a recording fake client.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.session
import pytest
from restoredrill.adapters.aws import RdsAdapter
from restoredrill.composition.telemetry import ORPHANS_DELETED, RUNS_TIMED_OUT, SWEEP_RUNS_FAILED
from restoredrill.ports.records import (
    INSTANCE_PREFIX,
    OWNER_TAG,
    RUN_ID_TAG,
    SOURCE_DB_TAG,
    Verdict,
)

from localcloud.template import load_yaml, merge_globals

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
AWS_ADAPTERS = ROOT / "shared" / "restoredrill" / "adapters" / "aws.py"
FUNCTIONS = ROOT / "functions"

STACK = {"Ref": "AWS::StackName"}
DRILL_TAG_KEYS = {OWNER_TAG, RUN_ID_TAG, SOURCE_DB_TAG}
# The only calls allowed on Resource "*": DescribeDBInstances has no resource-level permissions,
# and both are made in their list forms (every instance; the snapshots of one instance);
# DescribeAccountAttributes (the admission's quota headroom) takes no resource at all.
NO_RESOURCE_LEVEL = {
    "rds:DescribeDBInstances",
    "rds:DescribeDBSnapshots",
    "rds:DescribeAccountAttributes",
    # AWS's own restore testing role (AWSServiceRolePolicyForBackupRestoreTesting) grants
    # DescribeRestoreJob on "*"; PutRestoreValidationResult is taken to have no resource type
    # either (docs/restore-testing.md lists it among the assumptions to check).
    "backup:DescribeRestoreJob",
    "backup:PutRestoreValidationResult",
    # Aurora: every cluster (the sweeper's orphan scan) and the snapshots of one cluster.
    "rds:DescribeDBClusters",
    "rds:DescribeDBClusterSnapshots",
    # Whether db.serverless is offered for an engine version: no resource at all.
    "rds:DescribeOrderableDBInstanceOptions",
}
# Authorized by AWS on the drill's behalf, never called by the code itself: the Tags of the
# restore (rds:AddTagsToResource), the snapshot keys RDS uses for the restore (KMS), and the data
# key S3 asks for when a report goes to a bucket encrypted with SSE-KMS.
IMPLIED_BY_AWS = {
    "rds:AddTagsToResource",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKey",
}
# boto3 method -> IAM action, where the two differ by more than the casing. TransactWriteItems
# has no IAM action of its own: each Put in it is authorized as PutItem (DynamoDB developer
# guide, "Using IAM with DynamoDB transactions"); the adapters' transactions hold Puts only.
IAM_ACTION_OF = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "dynamodb:TransactWriteItems": "dynamodb:PutItem",
}
CLIENT_SERVICES = {
    "DynamoDBClient": "dynamodb",
    "RDSClient": "rds",
    "SSMClient": "ssm",
    "SQSClient": "sqs",
    "LambdaClient": "lambda",
    "S3Client": "s3",
    "EventBridgeClient": "events",
}
# The Notify function's calls are made by Powertools (idempotency) and its parameters utility.
NOTIFY_CALLS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "ssm:GetParameter",
}
ASYNC_EVENT_TYPES = {"EventBridgeRule", "CloudWatchEvent", "Schedule", "ScheduleV2"}
NO_VALUE = {"Ref": "AWS::NoValue"}
# CloudFormation: a stack name has up to 128 characters (letters, digits, hyphens).
LONGEST_STACK_NAME = "s" * 128
# The limits AWS sets on the names this template may spell out, by resource type and property.
NAME_LIMITS = {
    ("AWS::Serverless::Function", "FunctionName"): 64,
    ("AWS::Lambda::Function", "FunctionName"): 64,
    ("AWS::Serverless::LayerVersion", "LayerName"): 140,
    ("AWS::Lambda::LayerVersion", "LayerName"): 140,
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    ("AWS::CloudWatch::Alarm", "AlarmName"): 255,
    ("AWS::Events::EventBus", "Name"): 256,
    ("AWS::Events::Rule", "Name"): 64,
    ("AWS::SQS::Queue", "QueueName"): 80,
    ("AWS::S3::Bucket", "BucketName"): 63,
    ("AWS::DynamoDB::Table", "TableName"): 255,
    ("AWS::IAM::Role", "RoleName"): 64,
    ("AWS::IAM::ManagedPolicy", "ManagedPolicyName"): 128,
    ("AWS::EC2::SecurityGroup", "GroupName"): 255,
}
SAM_EVENT_NAME_LIMITS = {"RuleName": 64, "Name": 64}
TAG_VALUE_LIMIT = 256
# SSM: a parameter's name, counted with its full ARN, has at most 1011 characters and 15 levels.
SSM_NAME_WITH_ARN_LIMIT = 1011
SSM_LEVELS_LIMIT = 15
LONGEST_SSM_ARN_PREFIX = "arn:aws-iso-b:ssm:us-isob-east-1:123456789012:parameter"
# Longer than any run id the drill makes (a 20-character digest today).
RUN_ID_BOUND = 64


# ----------------------------------------------------------------------------- reading


@pytest.fixture(scope="module")
def t() -> dict[str, Any]:
    return load_yaml(TEMPLATE)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def text(node: Any) -> str:
    """A Sub's template string, or a literal; what ARN patterns are compared against."""
    if isinstance(node, dict) and "Fn::Sub" in node:
        sub = node["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    return node if isinstance(node, str) else repr(node)


def target(node: Any) -> str | None:
    """The logical id a Ref or GetAtt points at."""
    if isinstance(node, dict) and "Ref" in node:
        return str(node["Ref"])
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return str(node["Fn::GetAtt"][0])
    return None


def resources(t: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in t["Resources"].items() if v["Type"] == rtype}


def functions(t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(t, "AWS::Serverless::Function")


def fn_prop(t: dict[str, Any], logical_id: str, name: str, default: Any = None) -> Any:
    """A function property as SAM sees it: Globals.Function's merged with the function's own
    (maps merged, lists appended, else the function's)."""
    own = t["Resources"][logical_id].get("Properties") or {}
    global_ = (t.get("Globals") or {}).get("Function", {})
    if name in own and name in global_:
        return merge_globals(global_[name], own[name])
    return own[name] if name in own else global_.get(name, default)


def worst_case_number(t: dict[str, Any], value: Any) -> int:
    """A number, or a Ref to a Number parameter at its MaxValue (the least favourable value)."""
    if isinstance(value, dict) and "Ref" in value:
        parameter = t["Parameters"][value["Ref"]]
        return int(parameter.get("MaxValue", parameter["Default"]))
    return int(value)


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every statement of a Statement list, both branches of each Fn::If included."""
    for item in as_list(node):
        if isinstance(item, dict) and "Fn::If" in item:
            yield from statements(item["Fn::If"][1:])
        elif isinstance(item, dict) and item != {"Ref": "AWS::NoValue"}:
            yield item


def statement_lists(resource: dict[str, Any]) -> list[Any]:
    """The Statement list of each identity policy one resource holds (none for other types)."""
    props = resource.get("Properties") or {}
    if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
        return [props["PolicyDocument"]["Statement"]]
    if resource["Type"] == "AWS::IAM::Role":
        return [policy["PolicyDocument"]["Statement"] for policy in props.get("Policies") or []]
    if resource["Type"] == "AWS::Serverless::Function":
        return [
            policy["Statement"]
            for policy in props.get("Policies") or []
            if isinstance(policy, dict) and "Statement" in policy
        ]
    return []


def policy_statements(t: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every identity policy in the template."""
    for logical_id, resource in t["Resources"].items():
        for statement_list in statement_lists(resource):
            for statement in statements(statement_list):
                yield logical_id, statement


def allows(t: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, statement in policy_statements(t):
        if statement.get("Effect") == "Allow":
            yield where, statement


def actions(statement: dict[str, Any]) -> set[str]:
    return set(as_list(statement.get("Action", [])))


def granting(t: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for _, s in allows(t) if action in actions(s)]


def drill_policy(t: dict[str, Any]) -> list[dict[str, Any]]:
    document = t["Resources"]["DrillControlPolicy"]["Properties"]["PolicyDocument"]
    return [s for s in statements(document["Statement"]) if s.get("Effect") == "Allow"]


def queue_of(node: Any) -> str:
    logical_id = target(node)
    assert logical_id is not None, f"not a reference to a queue: {node!r}"
    return logical_id


def sqs_events(t: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in functions(t).items():
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "SQS":
                yield logical_id, event["Properties"]


def dead_letter_queues(t: dict[str, Any]) -> set[str]:
    """Redrive targets, and OnFailure destinations that no function consumes."""
    consumed = {queue_of(props["Queue"]) for _, props in sqs_events(t)}
    dlqs = {
        queue_of(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in resources(t, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in (q.get("Properties") or {})
    }
    for resource in functions(t).values():
        destinations = (resource["Properties"].get("EventInvokeConfig") or {}).get(
            "DestinationConfig"
        ) or {}
        if "OnFailure" in destinations:
            queue = queue_of(destinations["OnFailure"]["Destination"])
            if queue not in consumed:
                dlqs.add(queue)
    return dlqs


def alarms(t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resources(t, "AWS::CloudWatch::Alarm").items()}


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm watches: its own, or those of its metric math."""
    if "MetricName" in alarm:
        return [alarm]
    return [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]


def raises_on_any_occurrence(alarm: dict[str, Any]) -> bool:
    return (
        alarm["ComparisonOperator"] == "GreaterThanThreshold"
        and float(alarm["Threshold"]) == 0
        and int(alarm["EvaluationPeriods"]) == 1
    )


def with_longest_stack_name(node: Any) -> str | None:
    """A name as deployed under the longest stack name; None when it does not use the stack name.

    Anything else a name could refer to fails the test: its length would be unknown."""
    if isinstance(node, dict) and "Fn::Sub" in node:
        sub = node["Fn::Sub"]
        template = sub if isinstance(sub, str) else sub[0]
        if "${AWS::StackName}" not in template:
            return None
        resolved = template.replace("${AWS::StackName}", LONGEST_STACK_NAME)
        assert "${" not in resolved, f"a name with a reference of unknown length: {template}"
        return resolved
    if isinstance(node, str):
        return None
    raise AssertionError(f"a name this test cannot measure: {node!r}")


def names_under_the_stack_name(t: dict[str, Any]) -> Iterator[tuple[str, int, str]]:
    """(where, limit, name) of every name in the template built from the stack's name."""
    for logical_id, resource in t["Resources"].items():
        props = resource.get("Properties") or {}
        for key, value in props.items():
            # A Ref or GetAtt names another resource or a parameter, not this one.
            if not key.endswith("Name") or target(value) is not None:
                continue
            name = with_longest_stack_name(value)
            if name is not None:
                where = f"{logical_id}.{key}"
                assert (resource["Type"], key) in NAME_LIMITS, f"{where}: no known limit"
                yield where, NAME_LIMITS[(resource["Type"], key)], name
        for tag in props.get("Tags") or []:
            name = with_longest_stack_name(tag["Value"])
            if name is not None:
                yield f"{logical_id}.Tags.{tag['Key']}", TAG_VALUE_LIMIT, name
        for event_id, event in (props.get("Events") or {}).items():
            for key, limit in SAM_EVENT_NAME_LIMITS.items():
                name = with_longest_stack_name((event.get("Properties") or {}).get(key, ""))
                if name is not None:
                    yield f"{logical_id}.Events.{event_id}.{key}", limit, name


def handler_imports(source: Path) -> set[str]:
    """Every module and every name a source file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
            found.update(alias.name for alias in node.names)
    return found


# ----------------------------------------------------------------------------- IAM


def test_every_permission_of_a_function_is_written_out_in_this_template(t: dict[str, Any]) -> None:
    # Given the functions of the template
    managed = set(resources(t, "AWS::IAM::ManagedPolicy"))
    for logical_id, resource in functions(t).items():
        props = resource["Properties"]
        # Then none brings its own role, and every policy is a statement list or a managed
        # policy of this template: no SAM policy template or AWS managed policy, whose actions
        # the template would not show (and these tests could not check)
        assert "Role" not in props, logical_id
        for policy in props.get("Policies") or []:
            assert (isinstance(policy, dict) and set(policy) == {"Statement"}) or (
                target(policy) in managed
            ), f"{logical_id}: policy {policy!r} is not written out in the template"


def test_no_allow_statement_grants_a_wildcard_action(t: dict[str, Any]) -> None:
    # Given every Allow statement of every policy
    found = list(allows(t))
    assert found
    for where, statement in found:
        # Then each names its actions one by one: no "*", no "service:*", no "service:Get*",
        # and no NotAction (which grants everything else)
        assert "NotAction" not in statement, where
        wild = [a for a in actions(statement) if "*" in a]
        assert not wild, f"{where} {statement.get('Sid')}: wildcard actions {wild}"


def test_resource_star_only_for_calls_without_resource_level_permissions(t: dict[str, Any]) -> None:
    # Given every Allow statement on Resource "*"
    for where, statement in allows(t):
        if "*" in as_list(statement.get("Resource")):
            # Then it only allows the describe calls that cannot be scoped to a resource
            extra = actions(statement) - NO_RESOURCE_LEVEL
            assert not extra, f"{where} {statement.get('Sid')}: {extra} on Resource '*'"


def test_modify_and_delete_only_instances_tagged_as_this_stacks(t: dict[str, Any]) -> None:
    # Given the statements that allow changing or deleting an RDS instance
    found = granting(t, "rds:ModifyDBInstance") + granting(t, "rds:DeleteDBInstance")
    assert found
    for statement in found:
        # Then each is limited to drill instances that carry this stack's ownership tag
        assert all(
            text(r).endswith(f":db:{INSTANCE_PREFIX}*") for r in as_list(statement["Resource"])
        ), statement.get("Sid")
        condition = statement.get("Condition", {}).get("StringEquals", {})
        assert condition.get(f"rds:db-tag/{OWNER_TAG}") == STACK, statement.get("Sid")


def test_restore_into_an_instance_only_with_this_stacks_ownership_tags(t: dict[str, Any]) -> None:
    # Given the statements that allow a restore into a DB instance resource
    found = [
        s
        for s in granting(t, "rds:RestoreDBInstanceFromDBSnapshot")
        if any(":db:" in text(r) for r in as_list(s["Resource"]))
    ]
    assert found
    for statement in found:
        condition = statement.get("Condition", {})
        # Then the new instance must be a drill instance, tagged as this stack's, with its run
        # and source tags present and no other tag
        assert all(
            text(r).endswith(f":db:{INSTANCE_PREFIX}*") for r in as_list(statement["Resource"])
        )
        assert condition.get("StringEquals", {}).get(f"aws:RequestTag/{OWNER_TAG}") == STACK
        assert condition.get("Null", {}) == {
            f"aws:RequestTag/{RUN_ID_TAG}": "false",
            f"aws:RequestTag/{SOURCE_DB_TAG}": "false",
        }
        tag_keys = condition.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
        assert set(as_list(tag_keys)) == DRILL_TAG_KEYS


def test_add_tags_only_the_drill_tag_keys_with_this_stack_as_owner(t: dict[str, Any]) -> None:
    # Given the statements that allow tagging
    found = granting(t, "rds:AddTagsToResource")
    assert found
    for statement in found:
        condition = statement.get("Condition", {})
        # Then only the three drill tag keys, with this stack as owner, on drill instances and
        # drill clusters
        tag_keys = condition.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
        assert set(as_list(tag_keys)) == DRILL_TAG_KEYS, statement.get("Sid")
        assert condition.get("StringEquals", {}).get(f"aws:RequestTag/{OWNER_TAG}") == STACK
        assert all(
            text(r).endswith((f":db:{INSTANCE_PREFIX}*", f":cluster:{INSTANCE_PREFIX}*"))
            for r in as_list(statement["Resource"])
        )


def test_modify_and_delete_only_clusters_tagged_as_this_stacks(t: dict[str, Any]) -> None:
    # Given the statements that allow changing (the master password) or deleting a DB cluster
    found = granting(t, "rds:ModifyDBCluster") + granting(t, "rds:DeleteDBCluster")
    assert found
    for statement in found:
        # Then each is limited to drill clusters that carry this stack's ownership tag
        assert all(
            text(r).endswith(f":cluster:{INSTANCE_PREFIX}*") for r in as_list(statement["Resource"])
        ), statement.get("Sid")
        condition = statement.get("Condition", {}).get("StringEquals", {})
        assert condition.get(f"rds:cluster-tag/{OWNER_TAG}") == STACK, statement.get("Sid")


def _requires_the_drill_tags(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition", {})
    tag_keys = condition.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
    return (
        condition.get("StringEquals", {}).get(f"aws:RequestTag/{OWNER_TAG}") == STACK
        and condition.get("Null", {})
        == {f"aws:RequestTag/{RUN_ID_TAG}": "false", f"aws:RequestTag/{SOURCE_DB_TAG}": "false"}
        and set(as_list(tag_keys)) == DRILL_TAG_KEYS
    )


def test_restore_a_cluster_only_as_a_drill_cluster_with_the_drill_tags(t: dict[str, Any]) -> None:
    # Given the statements that allow RestoreDBClusterFromSnapshot on a cluster resource
    found = granting(t, "rds:RestoreDBClusterFromSnapshot")
    on_clusters = [s for s in found if any(":cluster:" in text(r) for r in as_list(s["Resource"]))]
    assert on_clusters
    for statement in on_clusters:
        # Then the new cluster is a drill cluster, carrying the drill tags and no other
        assert all(
            text(r).endswith(f":cluster:{INSTANCE_PREFIX}*") for r in as_list(statement["Resource"])
        )
        assert _requires_the_drill_tags(statement), statement.get("Sid")
    # And the statements without conditions name no cluster or instance at all
    for statement in found:
        if "Condition" not in statement:
            assert not any(
                ":cluster:" in text(r) or ":db:" in text(r) for r in as_list(statement["Resource"])
            )


def test_create_an_instance_only_into_this_stacks_clusters_with_the_drill_tags(
    t: dict[str, Any],
) -> None:
    # Given the statements that allow CreateDBInstance
    found = granting(t, "rds:CreateDBInstance")
    assert found
    for statement in found:
        resources = [text(r) for r in as_list(statement["Resource"])]
        # Then a new instance is a drill instance with the drill tags only
        if any(":db:" in r for r in resources):
            assert all(r.endswith(f":db:{INSTANCE_PREFIX}*") for r in resources)
            assert _requires_the_drill_tags(statement), statement.get("Sid")
        # And the cluster it goes into is one carrying this stack's ownership tag
        elif any(":cluster:" in r for r in resources):
            assert all(r.endswith(f":cluster:{INSTANCE_PREFIX}*") for r in resources)
            condition = statement.get("Condition", {}).get("StringEquals", {})
            assert condition.get(f"rds:cluster-tag/{OWNER_TAG}") == STACK, statement.get("Sid")
        # And nothing else but parameter, option and the drill's subnet groups
        else:
            assert all(
                r.endswith((":pg:*", ":og:*", ":subgrp:${DBSubnetGroupName}")) for r in resources
            ), statement.get("Sid")


def test_restore_to_a_point_in_time_only_with_the_drill_tags_into_the_drill_network(
    t: dict[str, Any],
) -> None:
    # Given the statements that allow RestoreDBInstanceToPointInTime
    found = granting(t, "rds:RestoreDBInstanceToPointInTime")
    assert found
    for statement in found:
        # Then every one requires the drill tags with this stack as owner (the request's tags:
        # they hold for the source and the new instance alike)
        assert _requires_the_drill_tags(statement), statement.get("Sid")
        # And names DB instances, the drill's subnet group and default groups, nothing else
        resources = [text(r) for r in as_list(statement["Resource"])]
        assert any(r.endswith(":subgrp:${DBSubnetGroupName}") for r in resources)
        assert all(
            r.endswith((":db:*", ":pg:*", ":og:*", ":subgrp:${DBSubnetGroupName}"))
            for r in resources
        ), statement.get("Sid")


def test_restore_a_cluster_to_a_point_in_time_only_with_the_drill_tags(t: dict[str, Any]) -> None:
    # Given the statements that allow RestoreDBClusterToPointInTime
    found = granting(t, "rds:RestoreDBClusterToPointInTime")
    assert found
    for statement in found:
        # Then every one requires the drill tags with this stack as owner
        assert _requires_the_drill_tags(statement), statement.get("Sid")
        # And names clusters, the drill's subnet group and default groups, nothing else
        resources = [text(r) for r in as_list(statement["Resource"])]
        assert any(r.endswith(":subgrp:${DBSubnetGroupName}") for r in resources)
        assert all(
            r.endswith((":cluster:*", ":cluster-pg:*", ":og:*", ":subgrp:${DBSubnetGroupName}"))
            for r in resources
        ), statement.get("Sid")


class _RecordingRds:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def restore_db_instance_from_db_snapshot(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}

    def restore_db_instance_to_point_in_time(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


def test_the_restore_the_adapter_sends_is_one_the_policy_allows(t: dict[str, Any]) -> None:
    # Given the RDS adapter, configured as the template configures it
    client = _RecordingRds()
    adapter = RdsAdapter(
        client,  # type: ignore[arg-type]
        stack_name="stack-1",
        db_subnet_group_name="private-subnets",
        security_group_id="sg-0d0d0d0d0d0d0d0d0",
    )
    run = SimpleNamespace(
        run_id="0123456789abcdef0123",
        instance_id=f"{INSTANCE_PREFIX}0123456789abcdef0123",
        snapshot=SimpleNamespace(snapshot_id="rds:orders-db-2026-11-27-03-00"),
        instance_class="db.t4g.micro",
        source_db="orders-db",
        point_in_time=None,
    )
    # When it restores a drill's instance
    adapter.restore(run)  # type: ignore[arg-type]
    (request,) = client.calls
    # Then the request carries exactly the tag keys the policy allows, with the stack as owner
    restore = next(
        s
        for s in granting(t, "rds:RestoreDBInstanceFromDBSnapshot")
        if "ForAllValues:StringEquals" in s.get("Condition", {})
    )
    allowed_keys = set(restore["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
    tags = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    assert set(tags) == allowed_keys
    assert tags[OWNER_TAG] == "stack-1"
    assert tags[RUN_ID_TAG] == run.run_id and tags[SOURCE_DB_TAG] == run.source_db
    # And the instance is private, in the drill network, with a name the policy covers
    assert request["DBInstanceIdentifier"].startswith(INSTANCE_PREFIX)
    assert request["PubliclyAccessible"] is False
    assert request["DBSubnetGroupName"] == "private-subnets"
    assert request["VpcSecurityGroupIds"] == ["sg-0d0d0d0d0d0d0d0d0"]
    # And the template hands the adapter the subnet group the policy lets it restore into
    assert fn_prop(t, "StartDrillFunction", "Environment")["Variables"]["DB_SUBNET_GROUP_NAME"] == {
        "Ref": "DBSubnetGroupName"
    }
    network = next(
        s for s in granting(t, "rds:RestoreDBInstanceFromDBSnapshot") if "Condition" not in s
    )
    assert any(text(r).endswith(":subgrp:${DBSubnetGroupName}") for r in network["Resource"])


def test_the_point_in_time_restore_the_adapter_sends_is_one_the_policy_allows(
    t: dict[str, Any],
) -> None:
    # Given the RDS adapter, configured as the template configures it
    client = _RecordingRds()
    adapter = RdsAdapter(
        client,  # type: ignore[arg-type]
        stack_name="stack-1",
        db_subnet_group_name="private-subnets",
        security_group_id="sg-0d0d0d0d0d0d0d0d0",
    )
    run = SimpleNamespace(
        run_id="0123456789abcdef0123",
        instance_id=f"{INSTANCE_PREFIX}0123456789abcdef0123",
        instance_class="db.t4g.micro",
        source_db="orders-db",
        point_in_time=SimpleNamespace(restore_time=datetime(2026, 11, 27, 3, tzinfo=UTC)),
    )
    # When it restores a point-in-time drill's instance
    adapter.restore(run)  # type: ignore[arg-type]
    (request,) = client.calls
    # Then the request carries exactly the tag keys the policy allows, with the stack as owner
    (statement,) = granting(t, "rds:RestoreDBInstanceToPointInTime")
    allowed_keys = set(statement["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
    tags = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    assert set(tags) == allowed_keys and tags[OWNER_TAG] == "stack-1"
    # And the new instance is a drill instance, private, in the drill network
    assert request["TargetDBInstanceIdentifier"].startswith(INSTANCE_PREFIX)
    assert request["SourceDBInstanceIdentifier"] == "orders-db"
    assert request["PubliclyAccessible"] is False
    assert request["DBSubnetGroupName"] == "private-subnets"
    assert request["VpcSecurityGroupIds"] == ["sg-0d0d0d0d0d0d0d0d0"]


def test_the_checker_can_do_nothing_but_check(t: dict[str, Any]) -> None:
    # Given the checker, the one function that touches restored data
    props = t["Resources"]["CheckerFunction"]["Properties"]
    # Then its role is SAM's bare one: no policies, no role of its own, no tracing (X-Ray
    # writes), so it gets only logging and the VPC ENI permissions
    assert "Policies" not in props
    assert "Role" not in props
    assert props.get("Tracing") == "Disabled"
    assert "VpcConfig" in props
    # And it has no destinations (they would need send rights) and no trigger of its own
    assert "EventInvokeConfig" not in props
    assert not props.get("Events")
    # And no policy of the template is attached to its generated role
    for logical_id, resource in t["Resources"].items():
        assert "CheckerFunctionRole" not in repr(resource), logical_id


def test_the_check_runner_reads_run_passwords_invokes_the_checker_and_nothing_else(
    t: dict[str, Any],
) -> None:
    # Given the check runner, which hands the run's password to the checker
    props = t["Resources"]["CheckRunnerFunction"]["Properties"]
    statements = [s for policy in props["Policies"] for s in policy["Statement"]]
    # Then it may read run passwords (only this stack's) and invoke the checker, nothing more
    granted = {
        (a, target(r) or text(r))
        for s in statements
        for a in actions(s)
        for r in as_list(s["Resource"])
    }
    assert granted == {
        (
            "ssm:GetParameter",
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
            "/restoredrill/${AWS::StackName}/runs/*",
        ),
        ("lambda:InvokeFunction", "CheckerFunction"),
    } | {
        (action, f"${{CheckWorkBucket.Arn}}/{prefix}/*")
        for action in ("s3:GetObject", "s3:PutObject")
        for prefix in ("checks", "coverage", "baselines")
    }
    # And the work store's calls are exactly the two it is granted on the work bucket
    assert _adapter_calls(CHECK_RUNNER_ADAPTERS) == {"s3:GetObject", "s3:PutObject"}
    # And its result (success or failure) goes back to advance through the results queue
    destinations = props["EventInvokeConfig"]["DestinationConfig"]
    assert set(destinations) == {"OnSuccess", "OnFailure"}
    for destination in destinations.values():
        assert destination["Type"] == "SQS"
        assert queue_of(destination["Destination"]) == "CheckerResultsQueue"
    assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    # And it outlasts the longest checker it may wait for
    assert props["Timeout"] == 900
    assert t["Parameters"]["CheckerTimeoutSeconds"]["MaxValue"] + 30 <= props["Timeout"]


def test_secrets_only_under_this_stacks_run_prefix_and_the_webhook(t: dict[str, Any]) -> None:
    # Given where the functions keep the run passwords
    prefix = text(
        fn_prop(t, "StartDrillFunction", "Environment")["Variables"]["PASSWORD_PARAMETER_PREFIX"]
    )
    assert "${AWS::StackName}" in prefix
    runs = f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{prefix}/*"
    webhook = (
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:"
        "parameter${SlackWebhookParameterName}"
    )
    validation = (
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:"
        "parameter/restoredrill/${AWS::StackName}/restore-validation/*"
    )
    for where, statement in allows(t):
        ssm = {a for a in actions(statement) if a.startswith("ssm:")}
        if not ssm:
            continue
        # Then only the three calls the vault and notify make, never by path or in bulk
        assert ssm <= {"ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter"}, where
        resources_ = {text(r) for r in as_list(statement["Resource"])}
        if ssm & {"ssm:PutParameter", "ssm:DeleteParameter"}:
            # And writing and deleting only this stack's run passwords
            assert resources_ == {runs}, where
        else:
            # And reading only those, the Slack webhook and the restore-testing checking
            # credentials under this stack's own prefix
            assert resources_ <= {runs, webhook, validation}, where
    # And only the notify function may read the webhook, only the validator the credentials
    readers = {w for w, s in allows(t) if webhook in {text(r) for r in as_list(s["Resource"])}}
    assert readers == {"NotifyFunction"}
    readers = {w for w, s in allows(t) if validation in {text(r) for r in as_list(s["Resource"])}}
    assert readers == {"ValidateRestoreFunction"}


def test_kms_only_through_the_service_that_owns_the_data(t: dict[str, Any]) -> None:
    # Given every statement that lets a function use a KMS key
    found = [(w, s) for w, s in allows(t) if any(a.startswith("kms:") for a in actions(s))]
    assert found
    for where, statement in found:
        condition = statement.get("Condition", {})
        via = text(
            condition.get("StringEquals", {}).get("kms:ViaService")
            or condition.get("StringLike", {}).get("kms:ViaService")
        )
        # Then the key is used only through RDS (snapshots), SSM (the webhook) or S3 (reports)
        assert via in (
            "rds.${AWS::Region}.${AWS::URLSuffix}",
            "ssm.${AWS::Region}.${AWS::URLSuffix}",
            "s3.*.${AWS::URLSuffix}",
        )
        if via.startswith("s3."):
            # And through S3 only the report bucket's key, for that bucket's reports
            assert statement["Resource"] == {"Ref": "ReportBucketKmsKeyArn"}, where
            assert actions(statement) == {"kms:GenerateDataKey"}, where
            contexts = {
                text(c) for c in condition["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
            }
            # (the validator's key for its own reports only)
            objects = "restore-validations" if where == "ValidateRestoreFunction" else "reports"
            assert contexts == {
                f"arn:${{AWS::Partition}}:s3:::${{ReportBucketName}}/{objects}/*",
                "arn:${AWS::Partition}:s3:::${ReportBucketName}",
            }, where
        elif via.startswith("rds."):
            # And only the snapshot keys the operator listed
            assert statement["Resource"] == {"Ref": "SnapshotKmsKeyArns"}, where
        else:
            # And through SSM only for the one webhook parameter
            context = condition["StringEquals"].get("kms:EncryptionContext:PARAMETER_ARN")
            assert text(context).endswith(":parameter${SlackWebhookParameterName}"), where
        if "kms:CreateGrant" in actions(statement):
            # And grants only for an AWS resource (the restored instance)
            assert condition.get("Bool", {}).get("kms:GrantIsForAWSResource") == "true", where
    # And the snapshot keys and the report key are granted only when the operator gives some
    drill = t["Resources"]["DrillControlPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    guards = {
        "SnapshotKmsKeyArns": "HasSnapshotKmsKeys",
        "ReportBucketKmsKeyArn": "HasReportBucketKmsKey",
    }
    for item in drill:
        if "kms" in repr(item):
            assert "Fn::If" in item, item.get("Sid")
            granted_on = item["Fn::If"][1]["Resource"]["Ref"]
            assert item["Fn::If"][0] == guards[granted_on]
            assert item["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    for parameter in guards:
        assert t["Parameters"][parameter]["Default"] == ""


def test_the_report_bucket_key_is_granted_only_when_given_and_only_for_that_buckets_reports(
    t: dict[str, Any],
) -> None:
    # Given the optional key of a report bucket the operator brings (SSE-KMS)
    parameter = t["Parameters"]["ReportBucketKmsKeyArn"]
    assert parameter["Default"] == ""
    assert t["Conditions"]["HasReportBucketKmsKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReportBucketKmsKeyArn"}, ""]}]
    }
    # Then the policy of the functions that write reports carries a grant on it only when given
    writers = {where for where, s in allows(t) if "s3:PutObject" in actions(s)}
    assert writers == {"DrillControlPolicy", "ValidateRestoreFunction", "CheckRunnerFunction"}
    runner = t["Resources"]["CheckRunnerFunction"]["Properties"]["Policies"][0]["Statement"]
    [work] = [s for s in runner if "s3:PutObject" in actions(s)]
    assert {text(r) for r in as_list(work["Resource"])} == {
        "${CheckWorkBucket.Arn}/checks/*",
        "${CheckWorkBucket.Arn}/coverage/*",
        "${CheckWorkBucket.Arn}/baselines/*",
    }
    drill = t["Resources"]["DrillControlPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [validator] = fn_prop(t, "ValidateRestoreFunction", "Policies")
    for statement_list in (drill, validator["Statement"]):
        (guarded,) = [
            i for i in statement_list if "Fn::If" in i and i["Fn::If"][0] == "HasReportBucketKmsKey"
        ]
        granted, otherwise = guarded["Fn::If"][1:]
        assert otherwise == NO_VALUE
        # And the grant is what S3 needs to encrypt a single PutObject with that key, no more
        assert actions(granted) == {"kms:GenerateDataKey"}
        assert granted["Resource"] == {"Ref": "ReportBucketKmsKeyArn"}
    # And the key is taken as an ARN (IAM matches key ARNs, not aliases)
    pattern = parameter["AllowedPattern"]
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert re.fullmatch(pattern, key) and re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "arn:aws:kms:eu-west-1:123456789012:alias/reports")
    # And it is refused for the bucket the stack creates (SSE-S3, no key to grant)
    rule = t["Rules"]["ReportBucketKeyOnlyWithOwnBucket"]
    assert rule["RuleCondition"] == t["Conditions"]["HasReportBucketKmsKey"]
    assert [a["Assert"] for a in rule["Assertions"]] == [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReportBucketName"}, ""]}]}
    ]
    (created,) = t["Resources"]["ReportBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert created["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("restoredrill-private", True),
        ("drill.subnets_2 private", True),
        ("Restoredrill-Private", False),
        ("PRIVATE-SUBNETS", False),
        ("1-private", False),
        ("", False),
    ],
)
def test_the_subnet_group_is_given_as_the_lowercase_name_rds_authorizes(
    t: dict[str, Any], name: str, accepted: bool
) -> None:
    # Given the restore permission, built from DBSubnetGroupName as given, while RDS stores the
    # name (and so authorizes the restore's subnet group ARN) in lowercase
    network = next(
        s for s in granting(t, "rds:RestoreDBInstanceFromDBSnapshot") if "Condition" not in s
    )
    assert any(text(r).endswith(":subgrp:${DBSubnetGroupName}") for r in network["Resource"])
    parameter = t["Parameters"]["DBSubnetGroupName"]
    assert "Default" not in parameter
    # When CloudFormation checks a name against the parameter's pattern
    allowed = re.fullmatch(parameter["AllowedPattern"], name) is not None
    # Then only a name that RDS stores unchanged is accepted: the ARN the policy names is the one
    # RDS checks
    assert allowed is accepted


def test_no_function_is_traced_and_no_code_creates_a_tracer(t: dict[str, Any]) -> None:
    # Given every function of the template
    assert functions(t)
    for logical_id in functions(t):
        # Then none is traced (so no role gets X-Ray writes and no drill pays for traces)
        assert fn_prop(t, logical_id, "Tracing") == "Disabled", logical_id
    # And the checker says so itself, so that tracing turned on in Globals would not reach it
    assert t["Resources"]["CheckerFunction"]["Properties"]["Tracing"] == "Disabled"
    # And no handler or layer module creates a Powertools Tracer or uses the X-Ray SDK, which
    # would record nothing with tracing off
    sources = [*FUNCTIONS.glob("*/app.py"), *(ROOT / "shared" / "restoredrill").rglob("*.py")]
    assert len(sources) > len(functions(t)) // 2
    for source in sources:
        imported = handler_imports(source)
        assert "Tracer" not in imported, source
        assert not any(name.startswith("aws_xray_sdk") for name in imported), source


# ----------------------------------------------------------------------------- data at rest


def test_the_report_bucket_is_private_encrypted_versioned_and_tls_only(t: dict[str, Any]) -> None:
    # Given the bucket the stack creates for reports
    bucket = t["Resources"]["ReportBucket"]["Properties"]
    # Then public access is blocked in all four ways
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    # And objects are encrypted by default and every version is kept
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    # And its policy denies every request that does not use TLS, on the bucket and its objects
    policies = [
        p["Properties"]
        for p in resources(t, "AWS::S3::BucketPolicy").values()
        if target(p["Properties"]["Bucket"]) == "ReportBucket"
    ]
    denies = [
        s
        for p in policies
        for s in statements(p["PolicyDocument"]["Statement"])
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert denies
    deny = denies[0]
    assert deny["Principal"] == "*" and "s3:*" in as_list(deny["Action"])
    covered = {text(r) for r in as_list(deny["Resource"])} | {
        target(r) for r in as_list(deny["Resource"])
    }
    assert "ReportBucket" in covered and "${ReportBucket.Arn}/*" in covered


def test_object_lock_never_changes_and_only_the_default_retention_follows_the_parameter(
    t: dict[str, Any],
) -> None:
    # Given the bucket the stack creates and its Object Lock settings
    bucket = t["Resources"]["ReportBucket"]["Properties"]
    # Then Object Lock is on whatever the parameters say: no update can ask S3 to turn it off
    # (it cannot), nor make CloudFormation replace the bucket for it
    assert bucket["ObjectLockEnabled"] is True
    lock = bucket["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    # And the default retention, in compliance mode, is there exactly while ReportRetentionDays
    # is more than 0, so setting it back to 0 only stops locking new reports
    condition, retention, otherwise = lock["Rule"]["Fn::If"]
    assert condition == "LockReports" and otherwise == NO_VALUE
    assert retention == {
        "DefaultRetention": {"Mode": "COMPLIANCE", "Days": {"Ref": "ReportRetentionDays"}}
    }
    assert t["Conditions"]["LockReports"] == {
        "Fn::And": [
            {"Condition": "CreateReportBucket"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReportRetentionDays"}, 0]}]},
        ]
    }
    # And nothing else of the bucket depends on a parameter or a condition
    rest = {k: v for k, v in bucket.items() if k != "ObjectLockConfiguration"}
    assert "Ref" not in repr(rest) and "Fn::If" not in repr(rest)
    assert t["Parameters"]["ReportRetentionDays"]["Default"] == 0


def test_queues_are_encrypted_and_every_working_queue_redrives_to_a_dlq(t: dict[str, Any]) -> None:
    # Given every queue of the template
    queues = resources(t, "AWS::SQS::Queue")
    dlqs = dead_letter_queues(t)
    assert dlqs and set(queues) - dlqs
    for logical_id, queue in queues.items():
        props = queue.get("Properties") or {}
        # Then each is encrypted at rest (SSE-SQS or SSE-KMS)
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id
        if logical_id in dlqs:
            continue
        # And each queue that is not a DLQ gives up on a message after a few receives, into a
        # DLQ of this template
        redrive = props.get("RedrivePolicy")
        assert redrive, f"{logical_id} has no RedrivePolicy"
        assert queue_of(redrive["deadLetterTargetArn"]) in queues
        assert 1 <= int(redrive["maxReceiveCount"]) <= 10, logical_id


def test_sqs_event_sources_report_partial_failures_and_outlast_six_timeouts(
    t: dict[str, Any],
) -> None:
    # Given every SQS event source
    found = list(sqs_events(t))
    assert found
    for function, props in found:
        # Then a failed record is retried alone, not with the whole batch
        assert props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], function
        # And the queue hides a received message for at least six function timeouts
        queue = t["Resources"][queue_of(props["Queue"])]["Properties"]
        timeout = worst_case_number(t, fn_prop(t, function, "Timeout", 3))
        assert int(queue["VisibilityTimeout"]) >= 6 * timeout, function


def test_every_asynchronously_triggered_function_has_an_on_failure_destination(
    t: dict[str, Any],
) -> None:
    # Given the functions EventBridge (rules and schedules) invokes asynchronously
    found = [
        logical_id
        for logical_id, resource in functions(t).items()
        if any(
            event["Type"] in ASYNC_EVENT_TYPES
            for event in (resource["Properties"].get("Events") or {}).values()
        )
    ]
    assert "SweeperFunction" in found and "NotifyFunction" in found
    queues = resources(t, "AWS::SQS::Queue")
    for logical_id in found:
        config = t["Resources"][logical_id]["Properties"].get("EventInvokeConfig") or {}
        on_failure = (config.get("DestinationConfig") or {}).get("OnFailure")
        # Then an event that fails every retry lands in a queue of this template
        assert on_failure, f"{logical_id} drops events that fail every retry"
        assert on_failure["Type"] == "SQS" and queue_of(on_failure["Destination"]) in queues


# ----------------------------------------------------------------------------- alarms, logs


def test_every_dead_letter_queue_raises_an_alarm(t: dict[str, Any]) -> None:
    # Given the dead-letter queues (redrive targets and unconsumed OnFailure destinations)
    dlqs = dead_letter_queues(t)
    assert {"EventsDeadLetterQueue", "PollDeadLetterQueue", "CheckerResultsDeadLetterQueue"} <= dlqs
    watched = set()
    for alarm in alarms(t).values():
        for metric in alarm_metrics(alarm):
            if (
                metric.get("Namespace") == "AWS/SQS"
                and metric.get("MetricName") == "ApproximateNumberOfMessagesVisible"
                and raises_on_any_occurrence(alarm)
            ):
                for dimension in metric.get("Dimensions", []):
                    if dimension["Name"] == "QueueName":
                        assert dimension["Value"]["Fn::GetAtt"][1] == "QueueName"
                        watched.add(target(dimension["Value"]))
    # Then one message in any of them raises an alarm
    assert dlqs <= watched, f"no alarm on {dlqs - watched}"


def test_orphans_errors_timeouts_and_sweep_failures_raise_alarms_on_the_metrics_emitted(
    t: dict[str, Any],
) -> None:
    # Given the metrics the functions emit (Powertools: namespace and service from Globals; the
    # sweeper's names are telemetry's, whose emission tests/unit/test_sweeper_metrics.py checks)
    variables = t["Globals"]["Function"]["Environment"]["Variables"]
    namespace = variables["POWERTOOLS_METRICS_NAMESPACE"]
    service = [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}]
    telemetry = (
        FUNCTIONS.parent / "shared" / "restoredrill" / "composition" / "telemetry.py"
    ).read_text()
    assert 'name=f"DrillsFinished{verdict}"' in telemetry
    assert {"ERROR", "TIMED_OUT"} <= {v.value for v in Verdict}
    watched: dict[str, set[str]] = {}
    for logical_id, alarm in alarms(t).items():
        for metric in alarm_metrics(alarm):
            if (
                metric.get("Namespace") == namespace
                and metric.get("Dimensions") == service
                and raises_on_any_occurrence(alarm)
            ):
                watched.setdefault(metric["MetricName"], set()).add(logical_id)
    # Then one orphan deleted, one drill in ERROR or TIMED_OUT, or one run the sweep could not
    # advance raises an alarm
    for metric_name in (
        ORPHANS_DELETED,
        "DrillsFinishedERROR",
        "DrillsFinishedTIMED_OUT",
        SWEEP_RUNS_FAILED,
    ):
        assert watched.get(metric_name), f"no alarm on {metric_name}"
    # And a deadline the sweeper enforces counts as a timeout even if it finishes the run itself
    assert watched[RUNS_TIMED_OUT] & watched["DrillsFinishedTIMED_OUT"]
    # And the sweep failures have an alarm of their own, named as docs/operations.md says
    (sweep_alarm,) = watched[SWEEP_RUNS_FAILED]
    assert text(alarms(t)[sweep_alarm]["AlarmName"]) == "${AWS::StackName}-sweep-failures"
    for alarm in alarms(t).values():
        if "Metrics" in alarm:
            (returned,) = [m for m in alarm["Metrics"] if m.get("ReturnData", True)]
            ids = {m["Id"] for m in alarm["Metrics"] if "MetricStat" in m}
            assert all(f"FILL({i}, 0)" in returned["Expression"] for i in ids)


def test_alarms_notify_the_topic_only_when_one_is_given(t: dict[str, Any]) -> None:
    # Given the optional topic parameter
    assert t["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert t["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    notify = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert alarms(t)
    for logical_id, alarm in alarms(t).items():
        # Then every alarm notifies it on ALARM and on OK, and has no action without it
        assert alarm.get("AlarmActions") == notify, logical_id
        assert alarm.get("OKActions") == notify, logical_id
        # And a quiet period is not an alarm
        assert alarm.get("TreatMissingData") == "notBreaching", logical_id


def test_every_function_logs_to_a_group_of_its_own_with_the_retention_parameter(
    t: dict[str, Any],
) -> None:
    # Given the functions and the log groups of the template
    groups = resources(t, "AWS::Logs::LogGroup")
    used = []
    for logical_id in functions(t):
        config = fn_prop(t, logical_id, "LoggingConfig") or {}
        group = target(config.get("LogGroup"))
        # Then each logs to a group the stack creates (so it has a retention)...
        assert group in groups, f"{logical_id} logs to a group without retention"
        used.append(group)
    # ...of its own...
    assert len(used) == len(set(used))
    for group in used:
        props = groups[group]["Properties"]
        # ...kept for LogRetentionInDays (90 by default)
        assert props["RetentionInDays"] == {"Ref": "LogRetentionInDays"}, group
        assert text(props["LogGroupName"]).startswith("/aws/lambda/${AWS::StackName}/")
    assert int(t["Parameters"]["LogRetentionInDays"]["Default"]) == 90


# ----------------------------------------------------------------------------- names


def test_every_name_fits_its_limit_under_the_longest_stack_name(t: dict[str, Any]) -> None:
    # Given every name the template builds from the stack's name, under a 128-character one
    found = list(names_under_the_stack_name(t))
    assert {where.split(".")[1] for where, _, _ in found} >= {
        "LayerName",
        "LogGroupName",
        "AlarmName",
        "Name",
    }
    # Then each fits the limit AWS sets for it
    too_long = {where: (len(name), limit) for where, limit, name in found if len(name) > limit}
    assert not too_long, f"(length, limit) over the limit: {too_long}"
    # And no function is named here: CloudFormation generates names of at most 64 characters
    for logical_id in functions(t):
        assert "FunctionName" not in t["Resources"][logical_id]["Properties"], logical_id
    # And the longest run password parameter fits SSM's limits
    prefix = text(
        fn_prop(t, "StartDrillFunction", "Environment")["Variables"]["PASSWORD_PARAMETER_PREFIX"]
    )
    parameter = prefix.replace("${AWS::StackName}", LONGEST_STACK_NAME) + "/" + "r" * RUN_ID_BOUND
    assert len(LONGEST_SSM_ARN_PREFIX + parameter) <= SSM_NAME_WITH_ARN_LIMIT
    assert parameter.count("/") <= SSM_LEVELS_LIMIT


def test_each_function_finds_the_function_it_invokes_by_reference(t: dict[str, Any]) -> None:
    # Given the functions that invoke another one: the drill functions the check runner (their
    # policy allows it), the check runner the checker
    drill_functions = [
        logical_id
        for logical_id in functions(t)
        if {"Ref": "DrillControlPolicy"} in (fn_prop(t, logical_id, "Policies") or [])
    ]
    assert len(drill_functions) == 5
    invoked = {
        **dict.fromkeys(drill_functions, ("CHECK_RUNNER_FUNCTION_NAME", "CheckRunnerFunction")),
        "CheckRunnerFunction": ("CHECKER_FUNCTION_NAME", "CheckerFunction"),
        "ValidateRestoreFunction": ("CHECKER_FUNCTION_NAME", "CheckerFunction"),
    }
    for logical_id, (variable, callee) in invoked.items():
        own = t["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
        # Then each gets the callee's generated name by Ref, in its own environment
        assert own[variable] == {"Ref": callee}, logical_id
    # And no function is handed a name it could not resolve (Globals apply to the callees too)
    globals_ = t["Globals"]["Function"]["Environment"]["Variables"]
    assert not {"CHECK_RUNNER_FUNCTION_NAME", "CHECKER_FUNCTION_NAME"} & set(globals_)


# ----------------------------------------------------------------------------- network


def _rules(t: dict[str, Any], group: str, direction: str) -> list[dict[str, Any]]:
    inline = "SecurityGroupIngress" if direction == "ingress" else "SecurityGroupEgress"
    standalone = f"AWS::EC2::{inline}"
    found = list(t["Resources"][group]["Properties"].get(inline) or [])
    for resource in resources(t, standalone).values():
        if target(resource["Properties"]["GroupId"]) == group:
            found.append(resource["Properties"])
    return found


def test_created_security_groups_let_only_the_checker_reach_postgres(t: dict[str, Any]) -> None:
    # Given the security groups the stack creates when none are given
    created = resources(t, "AWS::EC2::SecurityGroup")
    assert set(created) == {"DrillSecurityGroup", "CheckerSecurityGroup"}
    for kind in ("AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress"):
        for logical_id, resource in resources(t, kind).items():
            assert resource.get("Condition") == "CreateSecurityGroups", logical_id
    assert not resources(t, "AWS::EC2::SecurityGroupEgress")
    postgres = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432}

    def shape(rule: dict[str, Any]) -> dict[str, Any]:
        return {k: rule.get(k) for k in postgres}

    # Then the restored instance accepts 5432 from the checker's group and nothing else
    (ingress,) = _rules(t, "DrillSecurityGroup", "ingress")
    assert shape(ingress) == postgres
    assert target(ingress.get("SourceSecurityGroupId")) == "CheckerSecurityGroup"
    assert "CidrIp" not in ingress and "CidrIpv6" not in ingress
    # And sends nothing (one rule to 127.0.0.1/32 replaces EC2's default allow-all)
    for egress in _rules(t, "DrillSecurityGroup", "egress"):
        assert egress.get("CidrIp") == "127.0.0.1/32", egress
    assert _rules(t, "DrillSecurityGroup", "egress")
    # And the checker accepts nothing and sends 5432 to the restored instance only
    assert not _rules(t, "CheckerSecurityGroup", "ingress")
    (egress,) = _rules(t, "CheckerSecurityGroup", "egress")
    assert shape(egress) == postgres
    assert target(egress.get("DestinationSecurityGroupId")) == "DrillSecurityGroup"
    # And both are what the restore and the checker use when created, the parameters otherwise
    assert fn_prop(t, "StartDrillFunction", "Environment")["Variables"][
        "DRILL_SECURITY_GROUP_ID"
    ] == {
        "Fn::If": [
            "CreateSecurityGroups",
            {"Fn::GetAtt": ["DrillSecurityGroup", "GroupId"]},
            {"Ref": "DrillSecurityGroupId"},
        ]
    }
    assert t["Resources"]["CheckerFunction"]["Properties"]["VpcConfig"]["SecurityGroupIds"] == [
        {
            "Fn::If": [
                "CreateSecurityGroups",
                {"Fn::GetAtt": ["CheckerSecurityGroup", "GroupId"]},
                {"Ref": "CheckerSecurityGroupId"},
            ]
        }
    ]


# ----------------------------------------------------------------------------- code vs template


# Adapters only the check runner uses (its own role, tested on its own).
CHECK_RUNNER_ADAPTERS = frozenset({"S3CheckWorkStore"})


def _adapter_calls(classes: frozenset[str] | None = None) -> set[str]:
    """IAM actions of every boto3 call in the drill's adapters (client methods and paginators),
    or in the adapter classes named in ``classes``."""
    tree = ast.parse(AWS_ADAPTERS.read_text())
    session = botocore.session.get_session()
    found: set[str] = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        wanted = (
            cls.name in classes if classes is not None else cls.name not in CHECK_RUNNER_ADAPTERS
        )
        if not wanted:
            continue
        init = next(
            (f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None
        )
        if init is None:
            continue
        client_params = {
            a.arg: CLIENT_SERVICES[ast.unparse(a.annotation)]
            for a in init.args.args + init.args.kwonlyargs
            if a.annotation is not None and ast.unparse(a.annotation).endswith("Client")
        }
        if not client_params:
            continue
        attributes = {
            f"self.{node.targets[0].attr}": client_params[node.value.id]
            for node in ast.walk(init)
            if isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in client_params
        }
        for node in ast.walk(cls):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            if receiver not in attributes:
                continue
            service = attributes[receiver]
            method = node.func.attr
            if method == "get_paginator":
                method = ast.literal_eval(node.args[0])
            model = session.get_service_model(service)
            operations = {botocore.xform_name(op): op for op in model.operation_names}
            assert method in operations, f"{service}.{method} is not a boto3 operation"
            prefix = model.metadata.get("signingName", model.endpoint_prefix)
            action = f"{prefix}:{operations[method]}"
            found.add(IAM_ACTION_OF.get(action, action))
    return found


def test_the_drill_policy_allows_every_call_the_adapters_make_and_nothing_else(
    t: dict[str, Any],
) -> None:
    # Given every AWS call the drill's adapters make (StartDrill, Advance* and the sweeper run
    # the same advance, so they share DrillControlPolicy)
    calls = _adapter_calls()
    assert {"rds:RestoreDBInstanceFromDBSnapshot", "dynamodb:Query", "lambda:InvokeFunction"} <= (
        calls
    )
    granted = {a for s in drill_policy(t) for a in actions(s)}
    # Then the policy allows each one (IAM is not enforced locally: a missing grant would only
    # show in AWS)
    assert calls <= granted, f"not allowed: {calls - granted}"
    # And allows nothing the code does not call, except what AWS checks for the restore
    assert granted - calls <= IMPLIED_BY_AWS, f"unused: {granted - calls}"
    for logical_id in (
        "StartDrillFunction",
        "AdvanceOnRdsEventFunction",
        "AdvanceOnPollFunction",
        "AdvanceOnCheckerResultFunction",
        "SweeperFunction",
    ):
        assert {"Ref": "DrillControlPolicy"} in fn_prop(t, logical_id, "Policies"), logical_id


def test_notify_may_make_its_calls_and_nothing_else(t: dict[str, Any]) -> None:
    # Given what the notify function is allowed (Powertools idempotency, the webhook parameter)
    found = [s for where, s in allows(t) if where == "NotifyFunction"]
    granted = {a for s in found for a in actions(s)}
    # Then exactly the calls it makes, plus decrypting the webhook
    assert granted == NOTIFY_CALLS | {"kms:Decrypt"}
    # And its table calls only on the idempotency table
    for statement in found:
        if any(a.startswith("dynamodb:") for a in actions(statement)):
            assert [target(r) for r in as_list(statement["Resource"])] == ["IdempotencyTable"]


def test_every_checkov_skip_says_why(t: dict[str, Any]) -> None:
    # Given every checkov skip in the template
    skips = [
        (logical_id, skip)
        for logical_id, resource in t["Resources"].items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        # Then it names one check and gives a reason
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), logical_id
        assert len(str(skip.get("comment", "")).split()) >= 6, f"{logical_id} {skip['id']}"


def test_the_adapters_transactions_hold_puts_only_so_put_item_authorizes_them() -> None:
    # Given every TransactWriteItems call of the adapters
    tree = ast.parse(AWS_ADAPTERS.read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "transact_write_items"
    ]
    assert calls
    for call in calls:
        (items,) = [k.value for k in call.keywords if k.arg == "TransactItems"]
        assert isinstance(items, ast.List)
        # Then each action is a Put: DynamoDB authorizes it as dynamodb:PutItem, which is what
        # IAM_ACTION_OF maps TransactWriteItems to (an Update, Delete or ConditionCheck would
        # need its own action granted)
        kinds = {
            ast.literal_eval(key)
            for entry in items.elts
            if isinstance(entry, ast.Dict)
            for key in entry.keys
            if key is not None
        }
        assert kinds == {"Put"} and len(items.elts) == 2


# ----------------------------------------------------------------------------- restore testing

VALIDATOR_CALLS = {
    "kms:GenerateDataKey",  # only with a report bucket key (see the report bucket key test)
    "backup:DescribeRestoreJob",
    "backup:PutRestoreValidationResult",
    "rds:DescribeDBInstances",
    "ssm:GetParameter",
    "lambda:InvokeFunction",
    "s3:PutObject",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
}


def test_the_restore_test_validator_may_check_and_report_but_never_change_what_it_checks(
    t: dict[str, Any],
) -> None:
    # Given the validator of AWS Backup restore tests
    found = [s for where, s in allows(t) if where == "ValidateRestoreFunction"]
    granted = {
        (a, target(r) or text(r)) for s in found for a in actions(s) for r in as_list(s["Resource"])
    }
    # Then it makes exactly its calls: it reads the restore job and the restored instance, sets
    # the job's validation, reads its credentials, invokes the checker, writes validation
    # reports and keeps its idempotency records; it can modify or delete no instance
    assert {a for a, _ in granted} == VALIDATOR_CALLS
    assert not {a for a, _ in granted if a.startswith("rds:")} - {"rds:DescribeDBInstances"}
    assert ("lambda:InvokeFunction", "CheckerFunction") in granted
    reports = {r for a, r in granted if a == "s3:PutObject"}
    assert len(reports) == 1 and next(iter(reports)).endswith("/restore-validations/*")
    tables = {r for a, r in granted if a.startswith("dynamodb:")}
    assert tables == {"IdempotencyTable"}
    # And no policy of the drill (which may modify and delete drill instances) is attached
    assert fn_prop(t, "ValidateRestoreFunction", "Policies")[0].keys() == {"Statement"}
    assert len(fn_prop(t, "ValidateRestoreFunction", "Policies")) == 1
    # And it outlasts the longest checker it waits for, like the check runner
    assert fn_prop(t, "ValidateRestoreFunction", "Timeout") == 900
    assert t["Parameters"]["CheckerTimeoutSeconds"]["MaxValue"] + 30 <= 900


def test_the_validator_hears_only_completed_restore_tests_on_the_default_bus(
    t: dict[str, Any],
) -> None:
    # Given the validator's trigger
    [event] = fn_prop(t, "ValidateRestoreFunction", "Events").values()
    # Then it is a rule on the default bus (AWS Backup sends there) for a restore job that
    # completed and was started by a restore testing plan
    assert event["Type"] == "EventBridgeRule"
    assert "EventBusName" not in event["Properties"]
    assert event["Properties"]["Pattern"] == {
        "source": ["aws.backup"],
        "detail-type": ["Restore Job State Change"],
        "detail": {"status": ["COMPLETED"], "restoreTestingPlanArn": [{"exists": True}]},
    }
    # And a failed invocation (after EventBridge's two retries) lands in the events DLQ
    config = fn_prop(t, "ValidateRestoreFunction", "EventInvokeConfig")
    assert config["MaximumRetryAttempts"] == 2
    assert queue_of(config["DestinationConfig"]["OnFailure"]["Destination"]) == (
        "EventsDeadLetterQueue"
    )


def test_start_drill_hears_completed_backup_and_copy_jobs_of_databases_on_the_default_bus(
    t: dict[str, Any],
) -> None:
    # Given StartDrill's triggers
    events = fn_prop(t, "StartDrillFunction", "Events")
    # Then completed backup and copy jobs of RDS and Aurora reach it from the default bus (AWS
    # Backup sends there), and nothing else of AWS Backup's
    for name, detail_type in (
        ("BackupJobCompleted", "Backup Job State Change"),
        ("CopyJobCompleted", "Copy Job State Change"),
    ):
        event = events[name]
        assert event["Type"] == "EventBridgeRule" and "EventBusName" not in event["Properties"]
        assert event["Properties"]["Pattern"] == {
            "source": ["aws.backup"],
            "detail-type": [detail_type],
            "detail": {"state": ["COMPLETED"], "resourceType": ["RDS", "Aurora"]},
        }
    backup_rules = [e for e in events.values() if "aws.backup" in str(e["Properties"])]
    assert len(backup_rules) == 2


def test_only_start_drill_reads_the_vault_and_plan_opt_in_lists(t: dict[str, Any]) -> None:
    # Given the two opt-in lists of AWS Backup recovery points
    for parameter, variable in (
        ("BackupOptInVaults", "BACKUP_OPT_IN_VAULTS"),
        ("BackupOptInPlanIds", "BACKUP_OPT_IN_PLANS"),
    ):
        declared = t["Parameters"][parameter]
        # Then each is empty by default (only the tag opts in) and holds names only
        assert declared["Default"] == ""
        assert re.fullmatch(declared["AllowedPattern"], "clinic-vault,aws/backup/default")
        assert not re.fullmatch(declared["AllowedPattern"], "vault name; rm -rf")
        # And StartDrill, and no other function, gets it
        readers = [
            name
            for name, resource in t["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
            and variable in (resource["Properties"].get("Environment") or {}).get("Variables", {})
        ]
        assert readers == ["StartDrillFunction"]
        assert fn_prop(t, "StartDrillFunction", "Environment")["Variables"][variable] == {
            "Ref": parameter
        }


def test_the_restore_statement_covers_aws_backup_snapshots_of_this_account_and_region(
    t: dict[str, Any],
) -> None:
    # Given the statement that lets the drill restore from snapshots
    statements = t["Resources"]["DrillControlPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [restore] = [s for s in statements if s.get("Sid") == "RestoreFromAnySnapshotIntoDrillNetwork"]
    # Then an awsbackup snapshot of this account and Region is among its resources (no new
    # permission: a recovery point of RDS is a DB snapshot)
    [snapshots] = [r for r in restore["Resource"] if isinstance(r, dict) and ":snapshot:" in str(r)]
    pattern = str(snapshots["Fn::Sub"]).replace("${AWS::Partition}", "aws")
    pattern = pattern.replace("${AWS::Region}", "us-east-1")
    pattern = pattern.replace("${AWS::AccountId}", "123456789012")
    arn = "arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-5c1a2b3d"
    assert re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), arn)
