"""Advances drills. Three triggers, one `advance`: RDS instance events, the delayed poll queue
and the checker's results (the Lambda async destination, through SQS)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from restoredrill.composition.wiring import drill_context
from restoredrill.domain.drill import advance_drill, poll_drill
from restoredrill.ports.inbound_events import (
    InvalidEvent,
    parse_checker_record,
    parse_instance_event,
    parse_poll_body,
)

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def on_rds_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        seen = parse_instance_event(event)
    except InvalidEvent as invalid:
        logger.warning("ignored event", extra={"reason": str(invalid)})
        return {"status": "rejected", "reason": str(invalid)}
    if seen is None:
        return {"status": "ignored"}
    run_id, credentials_reset = seen
    logger.append_keys(run_id=run_id)
    run = advance_drill(run_id, drill_context(), credentials_reset_event=credentials_reset)
    return {"status": "advanced", "state": run.state.value if run else None}


def _poll(record: SQSRecord) -> None:
    run_id = parse_poll_body(record.body)
    logger.append_keys(run_id=run_id)
    poll_drill(run_id, drill_context())


def _checker_result(record: SQSRecord) -> None:
    outcome = parse_checker_record(record.body)
    logger.append_keys(run_id=outcome.run_id)
    advance_drill(outcome.run_id, drill_context(), checker_outcome=outcome)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def on_poll(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=_poll, processor=BatchProcessor(EventType.SQS), context=context
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def on_checker_result(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=_checker_result,
        processor=BatchProcessor(EventType.SQS),
        context=context,
    )
