"""The local cloud reads templates the way CloudFormation and SAM do (no sockets here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localcloud.provision import parse_rate, provision, validate_pattern
from localcloud.template import NO_VALUE, Template, TemplateError, load_yaml

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "localcloud" / "template.yaml"


def template(text: str, **overrides: Any) -> Template:
    return Template(load_yaml(text), stack_name="st", parameter_overrides=overrides or None)


BASE = """
Parameters:
  Env:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Subnets:
    Type: List<AWS::EC2::Subnet::Id>
    Default: "subnet-1, subnet-2"
  Count:
    Type: Number
    Default: 5
    MinValue: 1
    MaxValue: 10
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Not [!Condition IsProd]
  Both: !And [!Condition IsDev, !Equals [!Ref Count, 5]]
  Either: !Or [!Condition IsProd, !Equals ["a", "b"]]
Resources:
  Queue:
    Type: AWS::SQS::Queue
  ProdOnly:
    Type: AWS::SQS::Queue
    Condition: IsProd
"""


def test_short_and_long_forms_resolve_like_cloudformation() -> None:
    # Given a template whose resources were "created" (bound to physical ids)
    t = template(BASE)
    t.bind("Queue", "https://q/url", {"Arn": "arn:aws:sqs:us-east-1:123456789012:q-1"})
    node = load_yaml(
        """
        sub_string: !Sub "${AWS::StackName}-${Env}-${Queue}-${Queue.Arn}-${!Literal}"
        sub_list: !Sub ["${Name}/${AWS::Region}", {Name: !Ref Env}]
        getatt_dotted: !GetAtt Queue.Arn
        getatt_list: !GetAtt [Queue, Arn]
        long_getatt: {"Fn::GetAtt": ["Queue", "Arn"]}
        long_ref: {"Ref": "AWS::AccountId"}
        if_dev: !If [IsDev, dev-value, prod-value]
        if_novalue: !If [IsProd, "x", !Ref AWS::NoValue]
        join: !Join [",", !Ref Subnets]
        select: !Select [1, !Split [",", "a,b,c"]]
        both: !If [Both, yes-both, no-both]
        either: !If [Either, yes-either, no-either]
        partition: !Sub "arn:${AWS::Partition}:s3:::${AWS::URLSuffix}"
        list: [!Ref Queue, !If [IsProd, "gone", !Ref AWS::NoValue]]
        """
    )
    # When it is resolved
    resolved = t.resolve(node)
    # Then every intrinsic has CloudFormation's value and NoValue removes keys and items
    assert resolved == {
        "sub_string": "st-dev-https://q/url-arn:aws:sqs:us-east-1:123456789012:q-1-${Literal}",
        "sub_list": "dev/us-east-1",
        "getatt_dotted": "arn:aws:sqs:us-east-1:123456789012:q-1",
        "getatt_list": "arn:aws:sqs:us-east-1:123456789012:q-1",
        "long_getatt": "arn:aws:sqs:us-east-1:123456789012:q-1",
        "long_ref": "123456789012",
        "if_dev": "dev-value",
        "join": "subnet-1,subnet-2",
        "select": "b",
        "both": "yes-both",
        "either": "no-either",
        "partition": "arn:aws:s3:::amazonaws.com",
        "list": ["https://q/url"],
    }


def test_parameter_overrides_win_over_defaults_and_are_validated() -> None:
    # Given overrides, like `sam deploy --parameter-overrides`
    t = template(BASE, Env="prod", Count="7", Subnets="subnet-9")
    # Then they replace the defaults, conditions follow, and list parameters are lists
    assert t.parameters["Env"] == "prod"
    assert t.parameters["Subnets"] == ["subnet-9"]
    assert t.condition("IsProd") is True
    assert t.resource_enabled("ProdOnly")
    # And values the template forbids are refused, as CloudFormation refuses them
    with pytest.raises(TemplateError, match="AllowedValues"):
        template(BASE, Env="staging")
    with pytest.raises(TemplateError, match="MaxValue"):
        template(BASE, Count="11")
    with pytest.raises(TemplateError, match="undeclared"):
        template(BASE, Typo="x")


def test_a_required_parameter_without_value_is_a_clear_error() -> None:
    # Given a parameter without Default
    text = "Parameters:\n  Needed: {Type: String}\n" + BASE.split("Parameters:\n", 1)[1]
    # When nobody gives it, Then the error names it
    with pytest.raises(TemplateError, match="Needed"):
        template(text)
    # And with an override it resolves
    assert template(text, Needed="v").parameters["Needed"] == "v"


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("      Name: !Ref Missing\n", "'Missing'"),
        ("      Name: !GetAtt Missing.Arn\n", "'Missing'"),
        ('      Name: !Sub "${Missing.Arn}-x"\n', "'Missing'"),
        ("      Name: !If [NoSuchCondition, a, b]\n", "NoSuchCondition"),
        ("      Name: !Frobnicate [a]\n", "Fn::Frobnicate"),
        ("      Name: !ImportValue other-stack-output\n", "not supported locally"),
    ],
)
def test_a_wiring_mistake_fails_when_the_template_loads(snippet: str, message: str) -> None:
    # Given a reference to something the template does not declare (or cannot be evaluated)
    text = BASE + "  Bus:\n    Type: AWS::Events::EventBus\n    Properties:\n" + snippet
    # When it loads, Then it fails, naming the culprit
    with pytest.raises(TemplateError, match=message):
        template(text)


def test_refs_to_resources_whose_condition_is_false_fail_only_in_taken_branches() -> None:
    # Given a resource that is not created (its condition is false)
    t = template(BASE)
    assert not t.resource_enabled("ProdOnly")
    # Then a reference inside an untaken Fn::If branch is fine
    assert t.resolve(load_yaml("v: !If [IsProd, !Ref ProdOnly, none]")) == {"v": "none"}
    # And a direct reference is an error
    with pytest.raises(TemplateError, match="ProdOnly"):
        t.resolve(load_yaml("v: !Ref ProdOnly"))
    # And it is left out of the creation order
    assert t.creation_order() == ["Queue"]


def test_creation_order_follows_dependencies_and_refuses_cycles() -> None:
    # Given B needs A (GetAtt) and C needs B (Sub) and A DependsOn nothing
    t = template(
        """
Resources:
  C: {Type: AWS::SQS::Queue, Properties: {QueueName: !Sub "${B}-c"}}
  B: {Type: AWS::SQS::Queue, Properties: {QueueName: !GetAtt A.QueueName}}
  A: {Type: AWS::SQS::Queue}
"""
    )
    assert t.creation_order() == ["A", "B", "C"]
    # When a function's Globals refer to the function itself (a self-reference)
    cyclic = template(
        """
Globals:
  Function:
    Environment:
      Variables:
        CHECKER: !Ref Checker
Resources:
  Checker:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: x/, Handler: app.handler, Runtime: python3.12}
"""
    )
    # Then CloudFormation's "circular dependency" is reported, naming the resource
    with pytest.raises(TemplateError, match=r"circular dependency.*Checker -> Checker"):
        cyclic.creation_order()


def test_globals_merge_onto_functions_with_sam_rules() -> None:
    # Given the fixture template: Globals set Timeout, Layers and environment variables
    t = Template.load(FIXTURE, stack_name="st", parameter_overrides={"Prefix": "p"})
    # When SAM's transform has made the caller function (own Environment, MemorySize) a
    # CloudFormation function
    props = t.resources["CallerFunction"]["Properties"]
    # Then maps merge (global and own variables), scalars are replaced, lists append
    variables = props["Environment"]["Variables"]
    assert {"TABLE_NAME", "BUS_NAME", "MODE", "GREETING", "ASYNC_FUNCTION"} <= set(variables)
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 10
    (layer,) = (k for k, v in t.resources.items() if v["Type"] == "AWS::Lambda::LayerVersion")
    assert layer.startswith("FixtureLayer")
    assert props["Layers"] == [{"Ref": layer}]
    # And a function's own scalar beats the global one
    assert t.resources["SleepyFunction"]["Properties"]["Timeout"] == 1


def test_no_value_sentinel_is_a_singleton() -> None:
    assert NO_VALUE is type(NO_VALUE)()


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 days)", 172800),
    ],
)
def test_schedule_rates_parse(expression: str, seconds: int) -> None:
    assert parse_rate(expression) == seconds


@pytest.mark.parametrize("expression", ["rate(1 minutes)", "rate(5 minute)", "every 5 minutes"])
def test_schedule_expressions_eventbridge_refuses_are_refused(expression: str) -> None:
    with pytest.raises(TemplateError):
        parse_rate(expression)


def test_event_patterns_with_operators_eventbridge_does_not_know_are_refused() -> None:
    # moto's matcher treats an unknown operator as a match: a typo would match everything
    validate_pattern({"detail": {"SourceIdentifier": [{"prefix": "restoredrill-"}]}}, where="p")
    with pytest.raises(TemplateError, match="unknown filter"):
        validate_pattern({"detail": {"SourceIdentifier": [{"prefx": "restoredrill-"}]}}, where="p")
    with pytest.raises(TemplateError, match="object or an array"):
        validate_pattern({"source": "aws.rds"}, where="p")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ("AWS_REGION: eu-west-1", "reserves"),
        (f"BIG: {'x' * 4100}", "4 KB"),
    ],
)
def test_function_environments_lambda_would_refuse_are_refused(
    tmp_path: Path, variables: str, message: str
) -> None:
    # Given a function whose environment Lambda refuses (reserved key, over 4 KB)
    (tmp_path / "code").mkdir()
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: code/\n"
        "      Handler: app.handler\n"
        "      Runtime: python3.12\n"
        "      Environment:\n"
        "        Variables:\n"
        f"          {variables}\n"
    )
    # When it is provisioned (a function touches no AWS API), Then it fails like a deploy would
    with pytest.raises(TemplateError, match=message):
        provision(path, moto_url="http://127.0.0.1:9", stack_name="st")


def sam_function(tmp_path: Path, properties: str) -> Path:
    """A one-function SAM template in tmp_path, with the function's code directory."""
    (tmp_path / "code").mkdir(exist_ok=True)
    path = tmp_path / "template.yaml"
    path.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      Handler: app.handler\n"
        "      Runtime: python3.12\n" + properties
    )
    return path


def test_a_template_sams_transform_refuses_fails_naming_the_event(tmp_path: Path) -> None:
    # Given a function SAM cannot expand (an SQS event without its queue)
    path = sam_function(
        tmp_path,
        "      CodeUri: code/\n"
        "      Events:\n"
        "        Work:\n"
        "          Type: SQS\n"
        "          Properties: {BatchSize: 5}\n",
    )
    # When it loads, Then the translator's reason is the error, naming the event and property
    with pytest.raises(TemplateError, match=r"(?s)SAM transform refused.*\[FnWork\].*'Queue'"):
        Template.load(path, stack_name="st")


@pytest.mark.parametrize(
    "code", ["      CodeUri: s3://bucket/key.zip\n", "      InlineCode: 'def handler(e, c): 0'\n"]
)
def test_a_function_whose_code_is_not_a_local_directory_is_refused(
    tmp_path: Path, code: str
) -> None:
    # Given a function whose code is on S3 or inline (nothing the local runtime can run)
    path = sam_function(tmp_path, code)
    # When it is provisioned, Then it fails naming the function's Code
    with pytest.raises(TemplateError, match=r"Resources\.Fn\.Code: only a local directory"):
        provision(path, moto_url="http://127.0.0.1:9", stack_name="st")


def test_sam_events_become_the_stacks_rules_sources_and_destinations() -> None:
    # Given the fixture template (EventBridgeRule, SQS, Schedule events; async destinations)
    t = Template.load(FIXTURE, stack_name="st", parameter_overrides={"Prefix": "p"})
    # Then SAM's expansion is plain CloudFormation the local cloud wires: no SAM type is left
    types = {resource["Type"] for resource in t.resources.values()}
    assert not [kind for kind in types if kind.startswith("AWS::Serverless::")]
    assert {
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Events::Rule",
        "AWS::Lambda::EventInvokeConfig",
    } <= types
    # And each event keeps SAM's logical id (function + event name)
    mapping = t.resources["BatchFunctionWork"]["Properties"]
    assert mapping["FunctionName"] == {"Ref": "BatchFunction"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert t.resources["ScheduledFunctionTick"]["Properties"]["ScheduleExpression"] == (
        "rate(1 minute)"
    )


def test_a_schedule_v2_event_runs_on_the_local_scheduler(tmp_path: Path) -> None:
    # Given a function with an EventBridge Scheduler event (SAM's ScheduleV2) and its own input
    path = sam_function(
        tmp_path,
        "      CodeUri: code/\n"
        "      Events:\n"
        "        Tick:\n"
        "          Type: ScheduleV2\n"
        "          Properties:\n"
        "            ScheduleExpression: rate(5 minutes)\n"
        '            Input: \'{"source": "tick"}\'\n',
    )
    # When it is provisioned (functions and schedules touch no AWS API)
    stack = provision(path, moto_url="http://127.0.0.1:9", stack_name="st")
    # Then the stack has the schedule, every 300 s, invoking the function with that input
    (schedule,) = stack.schedules
    assert (schedule.logical_id, schedule.rate_seconds, schedule.enabled) == ("FnTick", 300, True)
    (target,) = schedule.targets
    assert (target.kind, target.function, target.input) == ("lambda", "Fn", '{"source": "tick"}')
