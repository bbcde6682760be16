"""Create the CloudFormation that SAM's transform made (:mod:`localcloud.sam`) the way
CloudFormation would: data resources really in moto, what moto cannot run (functions, buses,
rules, schedules, event source mappings) as records in a :class:`Stack`. Unknown types are errors.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import string
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from localcloud.sam import local_code_dir
from localcloud.template import Template, TemplateError, scalar_text

log = logging.getLogger(__name__)

# The local cloud's fake credentials (moto accepts anything; these never reach AWS).
LOCAL_ACCESS_KEY_ID = "testing"
LOCAL_SECRET_ACCESS_KEY = "testing"  # noqa: S105


def local_client(service: str, *, endpoint_url: str, region: str = "us-east-1") -> Any:
    """A boto3 client with explicit endpoint, region and fake credentials: nothing is read from
    ``os.environ`` or ~/.aws, so a real profile or endpoint cannot leak in."""
    session = boto3.session.Session(
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        region_name=region,
    )
    config = Config(
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=32,  # LocalAws shares one client per service between threads
    )
    # The stubs type client() per literal service name; the local cloud names services at run time.
    return session.client(service, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]


DEFAULT_BUS = "default"

# Types that exist only as records (nothing to run locally) or are ignored.
_RECORD_ONLY = frozenset(
    {
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::Lambda::Permission",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Alarm",
        "AWS::KMS::Key",
        "AWS::KMS::Alias",
        "AWS::SQS::QueuePolicy",
        "AWS::Events::EventBusPolicy",
    }
)


@dataclass(frozen=True)
class Destination:
    type: str  # SQS | Lambda | EventBridge
    arn: str


@dataclass(frozen=True)
class InvokeConfig:
    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int = 21600
    on_success: Destination | None = None
    on_failure: Destination | None = None


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    handler: str
    code_dir: Path
    layer_dirs: list[Path]
    environment: dict[str, str]
    timeout: int
    memory_size: int
    runtime: str
    invoke_config: InvokeConfig
    dead_letter_arn: str | None = None
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class RuleTarget:
    kind: str  # lambda | sqs
    arn: str
    function: str | None = None  # logical id of a lambda target
    input: str | None = None
    input_path: str | None = None


@dataclass
class EventRule:
    logical_id: str
    name: str
    arn: str
    bus_name: str
    pattern: dict[str, Any]
    targets: list[RuleTarget]
    enabled: bool = True


@dataclass
class SqsEventSource:
    logical_id: str
    function: str  # logical id
    queue_arn: str
    queue_url: str
    batch_size: int
    report_batch_item_failures: bool
    enabled: bool = True
    filters: list[dict[str, Any]] = field(default_factory=list)
    maximum_batching_window_seconds: float = 0.0


@dataclass
class ScheduleSource:
    logical_id: str
    name: str
    arn: str
    expression: str
    rate_seconds: float | None  # None for cron(...)
    targets: list[RuleTarget]
    enabled: bool = True


@dataclass
class QueueInfo:
    logical_id: str
    name: str
    url: str
    arn: str
    attributes: dict[str, str]
    template_visibility_timeout: int


@dataclass
class Stack:
    name: str
    region: str
    account_id: str
    template: Template
    project_root: Path
    moto_url: str
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    queues: dict[str, QueueInfo] = field(default_factory=dict)
    buses: dict[str, str] = field(default_factory=dict)  # name -> ARN
    rules: list[EventRule] = field(default_factory=list)
    sqs_sources: list[SqsEventSource] = field(default_factory=list)
    schedules: list[ScheduleSource] = field(default_factory=list)
    layers: dict[str, Path] = field(default_factory=dict)  # layer version ARN -> dir
    outputs: dict[str, str] = field(default_factory=dict)

    def physical_id(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise KeyError(f"no resource {logical_id!r} in stack {self.name}")
        return self.resources[logical_id]

    def function(self, name_or_arn: str) -> FunctionSpec | None:
        """Look a function up by logical id, name, or (partial) ARN with optional qualifier."""
        if name_or_arn in self.functions:
            return self.functions[name_or_arn]
        name, qualifier = _function_name_from(name_or_arn)
        if qualifier not in (None, "$LATEST"):
            return None
        for spec in self.functions.values():
            if spec.name == name:
                return spec
        return None

    def queue_by_arn(self, arn: str) -> QueueInfo | None:
        for queue in self.queues.values():
            if queue.arn == arn:
                return queue
        return None

    def queue_url_for_arn(self, arn: str) -> str:
        queue = self.queue_by_arn(arn)
        if queue is not None:
            return queue.url
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise ValueError(f"not an SQS queue ARN: {arn}")
        return f"{self.moto_url}/{parts[4]}/{parts[5]}"

    def bus_name(self, name_or_arn: str) -> str | None:
        name = name_or_arn.rpartition(":event-bus/")[2]
        return name if name in self.buses else None

    def check_code(self) -> None:
        """Every function's code and layer directories exist (a wiring mistake otherwise)."""
        problems = []
        for spec in self.functions.values():
            if not spec.code_dir.is_dir():
                problems.append(f"{spec.logical_id}: CodeUri {spec.code_dir} is not a directory")
            module = spec.handler.rsplit(".", 1)[0].replace(".", "/")
            if spec.code_dir.is_dir() and not any(
                (base / f"{module}.py").exists() or (base / module / "__init__.py").exists()
                for base in [spec.code_dir, *spec.layer_dirs]
            ):
                problems.append(f"{spec.logical_id}: handler module {module!r} not found")
        if problems:
            raise TemplateError("functions cannot run:\n  " + "\n  ".join(problems))


def _function_name_from(name_or_arn: str) -> tuple[str, str | None]:
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:"):
        # arn:aws:lambda:region:account:function:name[:qualifier]
        if len(parts) < 7 or parts[5] != "function":
            return name_or_arn, None
        return parts[6], parts[7] if len(parts) > 7 else None
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2], parts[3] if len(parts) > 3 else None
    if len(parts) == 2:
        return parts[0], parts[1]
    return name_or_arn, None


_UPPER = string.ascii_uppercase + string.digits
_MIXED = string.ascii_letters + string.digits
_LOWER = string.ascii_lowercase + string.digits


def _suffix(alphabet: str, length: int = 12) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def physical_name(
    stack: str, logical_id: str, *, max_length: int, alphabet: str = _UPPER, suffix: str = ""
) -> str:
    """``<stack>-<LogicalId>-<RANDOM>`` truncated the way CloudFormation does."""
    random_part = _suffix(alphabet)
    budget = max_length - len(random_part) - 2 - len(suffix)
    stack_part, logical_part = stack, logical_id
    if len(stack_part) + len(logical_part) > budget:
        half = budget // 2
        if len(stack_part) > half and len(logical_part) > budget - half:
            stack_part, logical_part = stack_part[:half], logical_part[: budget - half]
        elif len(stack_part) > half:
            stack_part = stack_part[: budget - len(logical_part)]
        else:
            logical_part = logical_part[: budget - len(stack_part)]
    return f"{stack_part}-{logical_part}-{random_part}{suffix}"


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")


def parse_rate(expression: str) -> float | None:
    """Seconds between runs of ``rate(...)``; None for ``cron(...)``; else an error."""
    expression = expression.strip()
    if expression.startswith("cron(") and expression.endswith(")"):
        if len(expression[5:-1].split()) != 6:
            raise TemplateError(f"schedule {expression!r}: cron() needs 6 fields")
        return None
    match = _RATE.match(expression)
    if match is None:
        raise TemplateError(f"schedule {expression!r}: expected rate(N unit) or cron(...)")
    value, unit = int(match.group(1)), match.group(2)
    if value <= 0:
        raise TemplateError(f"schedule {expression!r}: the value must be positive")
    if (value == 1) != (not unit.endswith("s")):
        # AWS: rate(1 minute), rate(5 minutes); rate(1 minutes) and rate(5 minute) are invalid.
        raise TemplateError(f"schedule {expression!r}: use the singular unit for 1 only")
    return value * {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]


# CloudFormation's bucket properties in the S3 API's requests (applied after CreateBucket).
_BUCKET_SETTINGS: tuple[tuple[str, str, Callable[[Any], dict[str, Any]]], ...] = (
    (
        "VersioningConfiguration",
        "put_bucket_versioning",
        lambda value: {"VersioningConfiguration": {"Status": value["Status"]}},
    ),
    (
        "ObjectLockConfiguration",
        "put_object_lock_configuration",
        lambda value: {"ObjectLockConfiguration": _object_lock(value)},
    ),
    (
        "BucketEncryption",
        "put_bucket_encryption",
        lambda value: {"ServerSideEncryptionConfiguration": {"Rules": _encryption_rules(value)}},
    ),
    (
        "PublicAccessBlockConfiguration",
        "put_public_access_block",
        lambda value: {"PublicAccessBlockConfiguration": {k: bool(v) for k, v in value.items()}},
    ),
    ("OwnershipControls", "put_bucket_ownership_controls", lambda v: {"OwnershipControls": v}),
    ("Tags", "put_bucket_tagging", lambda value: {"Tagging": {"TagSet": value}}),
)

# Async destinations by the service in their ARN (CloudFormation's EventInvokeConfig has no Type).
_DESTINATION_TYPES = {"sqs": "SQS", "lambda": "Lambda", "events": "EventBridge"}


class _Provisioner:
    def __init__(
        self,
        template: Template,
        *,
        project_root: Path,
        moto_url: str,
        visibility_timeout_override: int | None,
    ) -> None:
        self.t = template
        self.pseudo = template.pseudo
        self.visibility_timeout_override = visibility_timeout_override
        self.stack = Stack(
            name=self.pseudo.stack_name,
            region=self.pseudo.region,
            account_id=self.pseudo.account_id,
            template=template,
            project_root=project_root,
            moto_url=moto_url,
        )
        self.stack.buses[DEFAULT_BUS] = self._bus_arn(DEFAULT_BUS)
        self._clients: dict[str, Any] = {}
        self._handlers: dict[str, Callable[[str, dict[str, Any]], str]] = {
            "AWS::SQS::Queue": self._queue,
            "AWS::DynamoDB::Table": self._table,
            "AWS::S3::Bucket": self._bucket,
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::SSM::Parameter": self._ssm_parameter,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Events::Rule": self._events_rule,
            "AWS::Scheduler::Schedule": self._scheduler_schedule,
            "AWS::Lambda::LayerVersion": self._layer,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::EventInvokeConfig": self._event_invoke_config,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
        }

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = local_client(
                service, endpoint_url=self.stack.moto_url, region=self.pseudo.region
            )
        return self._clients[service]

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        p = self.pseudo
        return f"arn:{p.partition}:{service}:{p.region if region else ''}:{p.account_id}:{resource}"

    def _bus_arn(self, name: str) -> str:
        return self._arn("events", f"event-bus/{name}")

    def _created(self, logical_id: str, ref: str, attributes: dict[str, Any]) -> str:
        self.t.bind(logical_id, ref, attributes)
        return ref

    def _code_dir(self, code: Any, *, where: str) -> Path:
        base = self.t.path.parent if self.t.path is not None else self.stack.project_root
        return local_code_dir(code, base=base, where=where)

    def run(self) -> Stack:
        for logical_id in self.t.creation_order():
            rtype = self.t.resources[logical_id]["Type"]
            where = f"Resources.{logical_id}"
            if rtype.startswith("AWS::CloudFormation::") or rtype.startswith("Custom::"):
                log.warning("%s: %s ignored locally", logical_id, rtype)
                self.t.bind(logical_id, logical_id, {})
                continue
            properties = self.t.resolve(
                self.t.resources[logical_id].get("Properties") or {}, where=where
            )
            handler = self._handlers.get(rtype)
            if handler is None and rtype not in _RECORD_ONLY:
                raise TemplateError(f"{where}: resource type {rtype} is not supported locally")
            self.stack.resources[logical_id] = (handler or self._record_only)(
                logical_id, properties
            )
        self.stack.outputs = self.t.outputs()
        return self.stack

    def _queue(self, logical_id: str, props: dict[str, Any]) -> str:
        fifo = str(props.get("FifoQueue", "false")).lower() == "true"
        name = props.get("QueueName") or physical_name(
            self.pseudo.stack_name, logical_id, max_length=80, suffix=".fifo" if fifo else ""
        )
        # Every other property of AWS::SQS::Queue is a queue attribute of the same name.
        attributes = {
            key: json.dumps(value)
            if isinstance(value, dict)
            else scalar_text(value, where=logical_id)
            for key, value in props.items()
            if key not in ("QueueName", "Tags")
        }
        template_vt = int(attributes.get("VisibilityTimeout", "30"))
        if self.visibility_timeout_override is not None:
            attributes["VisibilityTimeout"] = str(self.visibility_timeout_override)
        kwargs: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if props.get("Tags"):
            kwargs["tags"] = {t["Key"]: str(t["Value"]) for t in props["Tags"]}
        sqs = self.client("sqs")
        url = sqs.create_queue(**kwargs)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.stack.queues[logical_id] = QueueInfo(
            logical_id, name, url, arn, attributes, template_vt
        )
        return self._created(logical_id, url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _table(self, logical_id: str, props: dict[str, Any]) -> str:
        name = props.get("TableName") or physical_name(
            self.pseudo.stack_name, logical_id, max_length=255
        )
        ddb = self.client("dynamodb")
        try:
            description = ddb.create_table(**_create_table_request(name, props))
        except ClientError as error:
            raise TemplateError(f"Resources.{logical_id}: CreateTable failed: {error}") from error
        ttl = props.get("TimeToLiveSpecification")
        if ttl and str(ttl.get("Enabled", False)).lower() == "true":
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr:
            try:
                ddb.update_continuous_backups(
                    TableName=name,
                    PointInTimeRecoverySpecification={
                        "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled"))
                    },
                )
            except (ClientError, BotoCoreError) as error:
                log.warning("%s: point-in-time recovery not applied: %s", logical_id, error)
        table = description["TableDescription"]
        attributes = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        return self._created(logical_id, name, attributes)

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> str:
        p = self.pseudo
        name = props.get("BucketName") or physical_name(
            p.stack_name.lower(), logical_id.lower(), max_length=63, alphabet=_LOWER
        )
        s3 = self.client("s3")
        # Object Lock can only be chosen when a bucket is created, as in S3.
        request: dict[str, Any] = {
            "Bucket": name,
            "ObjectLockEnabledForBucket": str(props.get("ObjectLockEnabled")).lower() == "true",
        }
        if p.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": p.region}
        s3.create_bucket(**request)
        for key, method, settings in _BUCKET_SETTINGS:
            if props.get(key):
                try:
                    getattr(s3, method)(Bucket=name, **settings(props[key]))
                except (ClientError, BotoCoreError, KeyError, TypeError) as error:
                    log.warning("%s: %s not applied in moto: %s", logical_id, key, error)
        attributes = {
            "Arn": f"arn:{p.partition}:s3:::{name}",
            "DomainName": f"{name}.s3.{p.url_suffix}",
            "RegionalDomainName": f"{name}.s3.{p.region}.{p.url_suffix}",
            "DualStackDomainName": f"{name}.s3.dualstack.{p.region}.{p.url_suffix}",
            "WebsiteURL": f"http://{name}.s3-website-{p.region}.{p.url_suffix}",
        }
        return self._created(logical_id, name, attributes)

    def _bucket_policy(self, logical_id: str, props: dict[str, Any]) -> str:
        # Recorded, not applied: moto enforces bucket policies, and the local cloud talks plain
        # HTTP to it, so a (recommended) DenyInsecureTransport statement would deny every call
        # that HTTPS satisfies in AWS. IAM is not enforced locally either.
        if not isinstance(props.get("PolicyDocument"), dict):
            raise TemplateError(f"Resources.{logical_id}: PolicyDocument must be an object")
        return self._created(logical_id, props["Bucket"], {})

    def _ssm_parameter(self, logical_id: str, props: dict[str, Any]) -> str:
        name = props.get("Name") or f"CFN-{logical_id}-{_suffix(_MIXED)}"
        kwargs: dict[str, Any] = {
            "Name": name,
            "Value": str(props["Value"]),
            "Type": props.get("Type", "String"),
            "Overwrite": True,
        }
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        self.client("ssm").put_parameter(**kwargs)
        attributes = {"Type": kwargs["Type"], "Value": kwargs["Value"]}
        return self._created(logical_id, name, attributes)

    def _event_bus(self, logical_id: str, props: dict[str, Any]) -> str:
        name = props.get("Name")
        if not name:
            raise TemplateError(f"Resources.{logical_id}: AWS::Events::EventBus needs a Name")
        if name in self.stack.buses:
            raise TemplateError(f"Resources.{logical_id}: event bus {name!r} already exists")
        arn = self._bus_arn(name)
        self.stack.buses[name] = arn
        return self._created(logical_id, name, {"Arn": arn, "Name": name})

    def _resolve_bus(self, value: Any, *, where: str) -> str:
        name = str(value or DEFAULT_BUS)
        bus = self.stack.bus_name(name)
        if bus is None:
            raise TemplateError(f"{where}: event bus {name!r} does not exist in this stack")
        return bus

    def _rule_target(self, target: Mapping[str, Any], *, where: str) -> RuleTarget:
        arn = str(target["Arn"])
        if "InputTransformer" in target:
            raise TemplateError(f"{where}: InputTransformer is not supported locally")
        common = {"input": target.get("Input"), "input_path": target.get("InputPath")}
        if ":lambda:" in arn:
            spec = self.stack.function(arn)
            if spec is None:
                raise TemplateError(f"{where}: target {arn} is not a function of this stack")
            return RuleTarget(kind="lambda", arn=spec.arn, function=spec.logical_id, **common)
        if ":sqs:" in arn:
            return RuleTarget(kind="sqs", arn=arn, **common)
        raise TemplateError(f"{where}: target type of {arn} is not supported locally")

    def _events_rule(self, logical_id: str, props: dict[str, Any]) -> str:
        where = f"Resources.{logical_id}"
        name = props.get("Name") or physical_name(self.pseudo.stack_name, logical_id, max_length=64)
        bus = self._resolve_bus(props.get("EventBusName"), where=where)
        path = f"rule/{name}" if bus == DEFAULT_BUS else f"rule/{bus}/{name}"
        arn = self._arn("events", path)
        enabled = props.get("State", "ENABLED") == "ENABLED"
        targets = [self._rule_target(t, where=where) for t in props.get("Targets") or []]
        if "ScheduleExpression" in props:
            expression = str(props["ScheduleExpression"])
            self.stack.schedules.append(
                ScheduleSource(
                    logical_id, name, arn, expression, parse_rate(expression), targets, enabled
                )
            )
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            pattern = json.loads(pattern) if isinstance(pattern, str) else pattern
            validate_pattern(pattern, where=where)
            self.stack.rules.append(
                EventRule(logical_id, name, arn, bus, pattern, targets, enabled)
            )
        return self._created(logical_id, name, {"Arn": arn})

    def _scheduler_schedule(self, logical_id: str, props: dict[str, Any]) -> str:
        # SAM's ScheduleV2 event: EventBridge Scheduler, run by the same local scheduler as rules.
        where = f"Resources.{logical_id}"
        name = props.get("Name") or physical_name(self.pseudo.stack_name, logical_id, max_length=64)
        arn = self._arn("scheduler", f"schedule/{props.get('GroupName', 'default')}/{name}")
        expression = str(props.get("ScheduleExpression", ""))
        self.stack.schedules.append(
            ScheduleSource(
                logical_id,
                name,
                arn,
                expression,
                parse_rate(expression),
                [self._rule_target(props.get("Target") or {}, where=f"{where}.Target")],
                props.get("State", "ENABLED") == "ENABLED",
            )
        )
        return self._created(logical_id, name, {"Arn": arn})

    def _layer(self, logical_id: str, props: dict[str, Any]) -> str:
        where = f"Resources.{logical_id}.Content"
        directory = self._code_dir(props.get("Content"), where=where)
        if not directory.is_dir():
            raise TemplateError(f"{where}: {directory} is not a directory")
        arn = self._arn("lambda", f"layer:{props.get('LayerName') or logical_id}:1")
        self.stack.layers[arn] = directory
        return self._created(logical_id, arn, {})

    def _layer_dirs(self, logical_id: str, layers: list[str]) -> list[Path]:
        directories = []
        for layer in layers:
            if layer not in self.stack.layers:
                log.warning(
                    "%s: layer %s is not local; the venv stands in for it", logical_id, layer
                )
                continue
            directory = self.stack.layers[layer]
            directories.append(directory)
            if (directory / "python").is_dir():
                directories.append(directory / "python")
        return directories

    def _function(self, logical_id: str, props: dict[str, Any]) -> str:
        where = f"Resources.{logical_id}"
        if props.get("PackageType", "Zip") != "Zip":
            raise TemplateError(f"{where}: only Zip functions run locally")
        handler = str(props.get("Handler") or "")
        if "." not in handler:
            raise TemplateError(f"{where}: Handler must be 'module.function', got {handler!r}")
        name = props.get("FunctionName") or physical_name(
            self.pseudo.stack_name, logical_id, max_length=64, alphabet=_MIXED
        )
        arn = self._arn("lambda", f"function:{name}")
        concurrency = props.get("ReservedConcurrentExecutions")
        self.stack.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=arn,
            handler=handler,
            code_dir=self._code_dir(props.get("Code"), where=f"{where}.Code"),
            layer_dirs=self._layer_dirs(logical_id, props.get("Layers") or []),
            environment=_environment(props, where=f"{where}.Environment"),
            timeout=_timeout(props, where=where),
            memory_size=int(props.get("MemorySize", 128)),
            runtime=str(props.get("Runtime", "python3.12")),
            invoke_config=InvokeConfig(),
            dead_letter_arn=_dead_letter_arn(props, where=f"{where}.DeadLetterConfig"),
            reserved_concurrency=int(concurrency) if concurrency is not None else None,
        )
        return self._created(logical_id, name, {"Arn": arn})

    def _function_named(self, name: Any, *, where: str) -> FunctionSpec:
        spec = self.stack.function(str(name or ""))
        if spec is None:
            raise TemplateError(f"{where}: FunctionName {name!r} is not a function of this stack")
        return spec

    def _destination(self, node: Any, *, where: str) -> Destination | None:
        arn = str((node or {}).get("Destination") or "")
        if not node:
            return None
        dtype = _DESTINATION_TYPES.get(arn.split(":")[2] if arn.count(":") >= 5 else "")
        known = {
            "SQS": self.stack.queue_by_arn,
            "EventBridge": self.stack.bus_name,
            "Lambda": self.stack.function,
        }
        if dtype is None or known[dtype](arn) is None:
            raise TemplateError(
                f"{where}: destination {arn!r} is not a queue, bus or function here"
            )
        return Destination(dtype, arn)

    def _event_invoke_config(self, logical_id: str, props: dict[str, Any]) -> str:
        where = f"Resources.{logical_id}"
        spec = self._function_named(props.get("FunctionName"), where=where)
        retries = int(props.get("MaximumRetryAttempts", 2))
        if not 0 <= retries <= 2:
            raise TemplateError(f"{where}: MaximumRetryAttempts must be 0..2, got {retries}")
        age = int(props.get("MaximumEventAgeInSeconds", 21600))
        if not 60 <= age <= 21600:
            raise TemplateError(f"{where}: MaximumEventAgeInSeconds must be 60..21600")
        destinations = props.get("DestinationConfig") or {}
        spec.invoke_config = InvokeConfig(
            maximum_retry_attempts=retries,
            maximum_event_age_seconds=age,
            on_success=self._destination(destinations.get("OnSuccess"), where=f"{where}.OnSuccess"),
            on_failure=self._destination(destinations.get("OnFailure"), where=f"{where}.OnFailure"),
        )
        return self._created(logical_id, logical_id, {})

    def _event_source_mapping(self, logical_id: str, props: dict[str, Any]) -> str:
        where = f"Resources.{logical_id}"
        spec = self._function_named(props.get("FunctionName"), where=where)
        queue = self.stack.queue_by_arn(str(props.get("EventSourceArn", "")))
        if queue is None:
            raise TemplateError(f"{where}: EventSourceArn is not a queue of this stack")
        if queue.template_visibility_timeout < spec.timeout:
            # CreateEventSourceMapping refuses this in AWS.
            raise TemplateError(
                f"{where}: queue visibility timeout {queue.template_visibility_timeout} s is"
                f" less than the function timeout {spec.timeout} s"
            )
        batch_size, window = _batching(props, where=where)
        response_types = props.get("FunctionResponseTypes") or []
        unknown = set(response_types) - {"ReportBatchItemFailures"}
        if unknown:
            raise TemplateError(f"{where}: unknown FunctionResponseTypes {sorted(unknown)}")
        self.stack.sqs_sources.append(
            SqsEventSource(
                logical_id=logical_id,
                function=spec.logical_id,
                queue_arn=queue.arn,
                queue_url=queue.url,
                batch_size=batch_size,
                report_batch_item_failures="ReportBatchItemFailures" in response_types,
                enabled=bool(props.get("Enabled", True)),
                filters=_filters(props, where=f"{where}.FilterCriteria"),
                maximum_batching_window_seconds=window,
            )
        )
        mapping_id = str(uuid.uuid4())
        return self._created(logical_id, mapping_id, {"Id": mapping_id})

    def _record_only(self, logical_id: str, props: dict[str, Any]) -> str:
        rtype = self.t.resources[logical_id]["Type"]
        p = self.pseudo
        if rtype == "AWS::IAM::ManagedPolicy":
            name = props.get("ManagedPolicyName") or physical_name(
                p.stack_name, logical_id, max_length=128
            )
            arn = self._arn("iam", f"policy/{name}", region=False)
            return self._created(logical_id, arn, {"PolicyArn": arn})
        if rtype == "AWS::IAM::Role":
            name = props.get("RoleName") or physical_name(p.stack_name, logical_id, max_length=64)
            arn = self._arn("iam", f"role/{name}", region=False)
            return self._created(logical_id, name, {"Arn": arn, "RoleId": _suffix(_UPPER, 21)})
        if rtype == "AWS::Logs::LogGroup":
            name = props.get("LogGroupName") or physical_name(
                p.stack_name, logical_id, max_length=512
            )
            return self._created(
                logical_id, name, {"Arn": self._arn("logs", f"log-group:{name}:*")}
            )
        physical = physical_name(p.stack_name, logical_id, max_length=128)
        return self._created(logical_id, physical, {"Arn": self._arn("local", physical)})


# Lambda refuses these in a function's Environment (set by the runtime).
_RESERVED_ENVIRONMENT = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)

_KNOWN_PATTERN_OPERATORS = frozenset(
    {
        "prefix",
        "suffix",
        "anything-but",
        "numeric",
        "exists",
        "equals-ignore-case",
        "cidr",
        "wildcard",
    }
)


def validate_pattern(pattern: Any, *, where: str) -> None:
    """Reject patterns EventBridge would reject (moto matches unknown operators as True)."""
    if not isinstance(pattern, dict):
        raise TemplateError(f"{where}: an event pattern must be an object")
    for key, value in pattern.items():
        if key == "$or":
            if not isinstance(value, list) or not value:
                raise TemplateError(f"{where}.$or: must be a non-empty list of patterns")
            for item in value:
                validate_pattern(item, where=f"{where}.$or")
        elif isinstance(value, dict):
            validate_pattern(value, where=f"{where}.{key}")
        elif isinstance(value, list):
            _validate_matchers(value, where=f"{where}.{key}")
        else:
            raise TemplateError(f"{where}.{key}: must be an object or an array, got {value!r}")


def _validate_matchers(matchers: list[Any], *, where: str) -> None:
    if not matchers:
        raise TemplateError(f"{where}: empty arrays are not allowed")
    for item in matchers:
        if isinstance(item, dict) and (
            len(item) != 1 or next(iter(item)) not in _KNOWN_PATTERN_OPERATORS
        ):
            raise TemplateError(f"{where}: unknown filter {item!r}")
        if isinstance(item, list):
            raise TemplateError(f"{where}: nested arrays are not allowed")


def _object_lock(config: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's ObjectLockConfiguration in the S3 API's spelling (numbers as numbers)."""
    retention = dict(config.get("Rule", {}).get("DefaultRetention", {}))
    for unit in ("Days", "Years"):
        if unit in retention:
            retention[unit] = int(retention[unit])
    lock: dict[str, Any] = {"ObjectLockEnabled": config.get("ObjectLockEnabled", "Enabled")}
    if retention:
        lock["Rule"] = {"DefaultRetention": retention}
    return lock


def _encryption_rules(encryption: Mapping[str, Any]) -> list[dict[str, Any]]:
    """CloudFormation's BucketEncryption rules in the S3 API's spelling."""
    rules = []
    for rule in encryption["ServerSideEncryptionConfiguration"]:
        api_rule: dict[str, Any] = {}
        if "ServerSideEncryptionByDefault" in rule:
            api_rule["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
        if "BucketKeyEnabled" in rule:
            api_rule["BucketKeyEnabled"] = str(rule["BucketKeyEnabled"]).lower() == "true"
        rules.append(api_rule)
    return rules


def _int_values(node: Mapping[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in node.items()}


def _create_table_request(name: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's table properties as a CreateTable request (numbers as numbers)."""
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        if "ProvisionedThroughput" not in props:
            raise TemplateError(f"table {name}: PROVISIONED tables need ProvisionedThroughput")
        request["ProvisionedThroughput"] = _int_values(props["ProvisionedThroughput"])
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in props:
            request[key] = [
                {**index, "ProvisionedThroughput": _int_values(index["ProvisionedThroughput"])}
                if "ProvisionedThroughput" in index
                else index
                for index in props[key]
            ]
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    if "SSESpecification" in props:
        sse = dict(props["SSESpecification"])
        sse["Enabled"] = bool(sse.pop("SSEEnabled", sse.get("Enabled", False)))
        request["SSESpecification"] = sse
    if props.get("Tags"):
        request["Tags"] = props["Tags"]
    return request


def _environment(props: Mapping[str, Any], *, where: str) -> dict[str, str]:
    """A function's variables, refused where Lambda refuses them (reserved names, over 4 KB)."""
    variables = (props.get("Environment") or {}).get("Variables") or {}
    environment = {str(k): scalar_text(v, where=f"{where}.{k}") for k, v in variables.items()}
    reserved = sorted(set(environment) & _RESERVED_ENVIRONMENT)
    if reserved:
        raise TemplateError(f"{where}: Lambda reserves {reserved}; they cannot be set")
    size = sum(len(k) + len(v) for k, v in environment.items())
    if size > 4096:
        raise TemplateError(f"{where}: {size} bytes exceeds Lambda's 4 KB limit")
    return environment


def _timeout(props: Mapping[str, Any], *, where: str) -> int:
    timeout = int(props.get("Timeout", 3))
    if not 1 <= timeout <= 900:
        raise TemplateError(f"{where}: Timeout must be 1..900 seconds, got {timeout}")
    return timeout


def _dead_letter_arn(props: Mapping[str, Any], *, where: str) -> str | None:
    arn = (props.get("DeadLetterConfig") or {}).get("TargetArn")
    if arn is not None and ":sqs:" not in str(arn):
        raise TemplateError(f"{where}: only an SQS dead-letter queue is supported, got {arn}")
    return None if arn is None else str(arn)


def _batching(props: Mapping[str, Any], *, where: str) -> tuple[int, float]:
    batch_size = int(props.get("BatchSize", 10))
    window = float(props.get("MaximumBatchingWindowInSeconds", 0))
    if not 1 <= batch_size <= 10000 or (batch_size > 10 and window <= 0):
        raise TemplateError(
            f"{where}: BatchSize {batch_size} needs 1..10, or up to 10000 with a"
            " MaximumBatchingWindowInSeconds"
        )
    return batch_size, window


def _filters(props: Mapping[str, Any], *, where: str) -> list[dict[str, Any]]:
    filters = []
    for item in (props.get("FilterCriteria") or {}).get("Filters") or []:
        pattern = item.get("Pattern")
        pattern = json.loads(pattern) if isinstance(pattern, str) else pattern
        validate_pattern(pattern, where=where)
        filters.append(pattern)
    return filters


def provision(
    template_path: Path,
    *,
    moto_url: str,
    stack_name: str = "restoredrill-local",
    region: str = "us-east-1",
    account_id: str = "123456789012",
    parameter_overrides: Mapping[str, Any] | None = None,
    visibility_timeout_override: int | None = None,
    project_root: Path | None = None,
) -> Stack:
    template_path = Path(template_path).resolve()
    template = Template.load(
        template_path,
        stack_name=stack_name,
        region=region,
        account_id=account_id,
        parameter_overrides=parameter_overrides,
    )
    provisioner = _Provisioner(
        template,
        project_root=Path(project_root or template_path.parent).resolve(),
        moto_url=moto_url,
        visibility_timeout_override=visibility_timeout_override,
    )
    return provisioner.run()
