"""The composition root: builds the adapters from the function's environment, once per cold start.

Handlers call these functions inside an invocation (never at import time), so tests can set the
environment and clear the caches instead of reloading modules.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

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
    EventBridgeDrillEvents,
    LambdaCheckerInvoker,
    LambdaSyncChecker,
    RdsAdapter,
    S3ReportStore,
    SqsPollQueue,
    SsmPasswordVault,
)
from restoredrill.adapters.slack import SlackWebhookNotifier
from restoredrill.config import CheckRunnerSettings, DrillSettings, NotifySettings
from restoredrill.drill import DrillContext
from restoredrill.notify import DrillFinished, announce
from restoredrill.policy import PolicyDocument, PolicyError, load_policy_file
from restoredrill.telemetry import record_finished

logger = Logger(child=True)

AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30
)
ANNOUNCEMENT_TTL_SECONDS = 7 * 24 * 3600


@cache
def drill_context() -> DrillContext:
    settings = DrillSettings.from_environ(os.environ)
    session = boto3.session.Session()

    def client(name: str):  # type: ignore[no-untyped-def]
        return session.client(name, config=AWS_CONFIG)  # type: ignore[call-overload]

    return DrillContext(
        settings=settings,
        runs=DynamoRunStore(
            client("dynamodb"), settings.run_table_name, settings.run_retention_days
        ),
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
        on_finished=record_finished,
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
def check_runner_adapters() -> tuple[SsmPasswordVault, LambdaSyncChecker]:
    settings = CheckRunnerSettings.from_environ(os.environ)
    session = boto3.session.Session()
    # One attempt only (a retried invoke would run the checks twice), and a read timeout that
    # outlasts the checker's own timeout.
    lambda_config = Config(
        retries={"mode": "standard", "max_attempts": 1},
        connect_timeout=5,
        read_timeout=settings.checker_timeout_seconds + 30,
    )
    return (
        SsmPasswordVault(session.client("ssm", config=AWS_CONFIG)),
        LambdaSyncChecker(
            session.client("lambda", config=lambda_config), settings.checker_function_name
        ),
    )


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
