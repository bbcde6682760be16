"""Validates an AWS Backup restore test: when a restore testing job completes, checks the DB
instance it restored and gives AWS Backup the outcome (PutRestoreValidationResult), once."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from restoredrill.composition.wiring import restore_validator
from restoredrill.ports.inbound_events import InvalidEvent
from restoredrill.ports.restore_testing import parse_restore_job_event

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        test = parse_restore_job_event(event)
    except InvalidEvent as rejected:
        # Retrying cannot make a malformed event a restore test: say why and let it go.
        logger.warning("no validation", extra={"reason": str(rejected)})
        return {"status": "rejected", "reason": str(rejected)}
    if test is None:
        return {"status": "ignored"}
    logger.append_keys(restore_job_id=test.restore_job_id)
    outcome = restore_validator(context)(test=test)
    if outcome["status"] == "not_validated":
        logger.warning("restore test not validated", extra={"reason": outcome["reason"]})
    else:
        # "validated" (a status was set) or "already_validated" (the job had one: none is sent)
        logger.info(
            f"restore test {outcome['status'].replace('_', ' ')}",
            extra={"validation_status": outcome["validation_status"]},
        )
    return outcome
