"""The composition root: builds the adapters from the function's environment, once per cold start.

Handlers call these functions inside an invocation (never at import time), so tests can set the
environment and clear the caches instead of reloading modules.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from restoredrill.adapters.aws import (
    DynamoRunStore,
    DynamoSlotStore,
    EventBridgeDrillEvents,
    LambdaCheckerInvoker,
    LambdaSyncChecker,
    RdsAdapter,
    S3CheckWorkStore,
    S3ReportStore,
    SqsPollQueue,
    SsmPasswordVault,
)
from restoredrill.adapters.backup import (
    BackupRestoreJobs,
    RdsRestoredInstances,
    SsmCredentialReader,
)
from restoredrill.adapters.slack import SlackWebhookNotifier
from restoredrill.composition.telemetry import record_finished, record_skipped, record_started
from restoredrill.domain.announcement import DrillFinished, announce
from restoredrill.domain.drill import DrillContext
from restoredrill.domain.restore_validation import ValidationContext, validate_restore
from restoredrill.ports.config import CheckRunnerSettings, DrillSettings, NotifySettings
from restoredrill.ports.policy import PolicyDocument, PolicyError, load_policy_file
from restoredrill.ports.restore_testing import RestoreTestCompleted, RestoreValidationSettings

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

logger = Logger(child=True)

AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30
)
ANNOUNCEMENT_TTL_SECONDS = 7 * 24 * 3600
# A restore test's instance is kept at most 168 hours (the selection's validation window): no
# duplicate of its event can arrive later than that and still find something to check.
VALIDATION_TTL_SECONDS = 8 * 24 * 3600
# The check runner waits for the checker's answer past the checker's own timeout by this much.
CHECKER_READ_MARGIN_SECONDS = 30
# The check runner's connection carries nothing while the checker runs (up to 840 s), and some AWS
# network paths drop a flow idle for 350 s. botocore's tcp_keepalive sets SO_KEEPALIVE only, and
# the kernel then waits tcp_keepalive_time (7200 s on Linux by default) before its first probe:
# these set the probes' timing on the socket itself, well inside 350 s.
KEEPALIVE_IDLE_SECONDS = 60
KEEPALIVE_INTERVAL_SECONDS = 20
KEEPALIVE_PROBE_COUNT = 5
KEEPALIVE_TIMING = tuple(
    (socket.IPPROTO_TCP, getattr(socket, name), value)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_SECONDS),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_SECONDS),
        ("TCP_KEEPCNT", KEEPALIVE_PROBE_COUNT),
    )
    if hasattr(socket, name)
)


@cache
def drill_context() -> DrillContext:
    settings = DrillSettings.from_environ(os.environ)
    session = boto3.session.Session()

    def client(name: str):  # type: ignore[no-untyped-def]
        return session.client(name, config=AWS_CONFIG)  # type: ignore[call-overload]

    dynamodb = client("dynamodb")
    runs = DynamoRunStore(dynamodb, settings.run_table_name, settings.run_retention_days)
    return DrillContext(
        settings=settings,
        runs=runs,
        slots=DynamoSlotStore(dynamodb, runs, settings.max_concurrent_drills),
        rds=RdsAdapter(
            client("rds"),
            stack_name=settings.stack_name,
            db_subnet_group_name=settings.db_subnet_group_name,
            security_group_id=settings.drill_security_group_id,
        ),
        vault=SsmPasswordVault(client("ssm")),
        polls=SqsPollQueue(client("sqs"), settings.poll_queue_url),
        checker=LambdaCheckerInvoker(client("lambda"), settings.check_runner_function_name),
        reports=S3ReportStore(client("s3"), settings.report_bucket),
        events=EventBridgeDrillEvents(client("events"), settings.drill_bus_name),
        policies=_policy_document(settings.drill_policy_file),
        on_started=record_started,
        on_finished=record_finished,
        on_skipped=record_skipped,
    )


def _policy_document(path: str | None) -> PolicyDocument | PolicyError:
    """The drill policy deployed with the stack (its own layer); the defaults when there is none.

    An invalid policy is kept as the error: it refuses new drills (loudly) while runs under way,
    polls and the sweeper go on.
    """
    if not path or not Path(path).is_file():
        return PolicyDocument()
    try:
        return load_policy_file(path)
    except PolicyError as error:
        logger.error(
            f"invalid drill policy {path}: new drills are refused", extra={"error": str(error)}
        )
        return error


@cache
def check_runner_adapters() -> tuple[SsmPasswordVault, LambdaSyncChecker, S3CheckWorkStore | None]:
    settings = CheckRunnerSettings.from_environ(os.environ)
    session = boto3.session.Session()
    work_store = None
    if settings.check_work_bucket:
        s3 = session.client("s3", config=AWS_CONFIG)
        work_store = S3CheckWorkStore(s3, settings.check_work_bucket)
    return (
        SsmPasswordVault(session.client("ssm", config=AWS_CONFIG)),
        LambdaSyncChecker(
            checker_lambda_client(session, settings.checker_timeout_seconds),
            settings.checker_function_name,
        ),
        work_store,
    )


def checker_lambda_client(
    session: boto3.session.Session, checker_timeout_seconds: int
) -> LambdaClient:
    """The client of the check runner's synchronous invoke: one attempt only (a retried invoke
    would run the checks twice), a read timeout that outlasts the checker, and TCP keep-alive
    probes that keep the silent connection open meanwhile."""
    config = Config(
        # total_max_attempts counts the first attempt; max_attempts would count retries only.
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=checker_timeout_seconds + CHECKER_READ_MARGIN_SECONDS,
        tcp_keepalive=True,
    )
    client = session.client("lambda", config=config)
    # botocore takes no socket options of its own; its HTTP session hands this list to every
    # connection it opens, so the timing is added there (the adapter tests read it back from a
    # real socket, should botocore ever change this).
    http_session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    options = getattr(http_session, "_socket_options", None)
    if isinstance(options, list):
        options.extend(KEEPALIVE_TIMING)
    else:
        logger.warning("TCP keep-alive timing not set: the kernel's own applies to the invoke")
    return client


def announcer(context: LambdaContext | None = None) -> Callable[..., str]:
    """`announce` for Slack, at most once per run even when Drill Finished arrives again."""
    announce_once, config = _announcer()
    if context is not None:
        # Lets an invocation that times out mid-send expire its in-progress mark, so the
        # retry announces instead of waiting for the record to expire.
        config.register_lambda_context(context)
    return announce_once


@cache
def _announcer() -> tuple[Callable[..., str], IdempotencyConfig]:
    settings = NotifySettings.from_environ(os.environ)
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table_name,
        boto3_session=boto3.session.Session(),
    )
    config = IdempotencyConfig(
        event_key_jmespath="run_id",
        expires_after_seconds=ANNOUNCEMENT_TTL_SECONDS,
        raise_on_no_idempotency_key=True,
    )

    def announce_with_webhook(*, finished: DrillFinished) -> str:
        webhook_url = parameters.get_parameter(
            settings.slack_webhook_parameter, decrypt=True, max_age=300
        )
        return announce(finished, SlackWebhookNotifier(str(webhook_url)))

    announce_once: Callable[..., str] = idempotent_function(
        announce_with_webhook,
        data_keyword_argument="finished",
        persistence_store=persistence,
        config=config,
    )
    return announce_once, config


def restore_validator(context: LambdaContext | None = None) -> Callable[..., dict[str, Any]]:
    """`validate_restore`, at most once per restore job however often its event arrives: AWS
    Backup keeps the first validation status it is given."""
    validate_once, config = _restore_validator()
    if context is not None:
        config.register_lambda_context(context)
    return validate_once


@cache
def _restore_validator() -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    settings = RestoreValidationSettings.from_environ(os.environ)
    session = boto3.session.Session()
    context = ValidationContext(
        jobs=BackupRestoreJobs(session.client("backup", config=AWS_CONFIG)),
        instances=RdsRestoredInstances(session.client("rds", config=AWS_CONFIG)),
        credentials=SsmCredentialReader(session.client("ssm", config=AWS_CONFIG)),
        checker=LambdaSyncChecker(
            checker_lambda_client(session, settings.checker_timeout_seconds),
            settings.checker_function_name,
        ),
        reports=S3ReportStore(session.client("s3", config=AWS_CONFIG), settings.report_bucket),
        policies=_policy_document(settings.drill_policy_file),
        credential_prefix=settings.validation_credential_prefix,
        now=lambda: datetime.now(UTC),
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table_name, boto3_session=session
    )
    config = IdempotencyConfig(
        event_key_jmespath="restore_job_id",
        expires_after_seconds=VALIDATION_TTL_SECONDS,
        raise_on_no_idempotency_key=True,
    )

    def validate(*, test: RestoreTestCompleted) -> dict[str, Any]:
        return validate_restore(test, context).model_dump(mode="json")

    validate_once: Callable[..., dict[str, Any]] = idempotent_function(
        validate,
        data_keyword_argument="test",
        persistence_store=persistence,
        config=config,
    )
    return validate_once, config
