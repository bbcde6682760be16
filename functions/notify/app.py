"""Announces a finished drill on Slack, once per run however often Drill Finished arrives."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.envelopes import EventBridgeEnvelope
from aws_lambda_powertools.utilities.typing import LambdaContext
from restoredrill.composition.wiring import announcer
from restoredrill.domain.announcement import DrillFinished

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        finished = parse(event=event, model=DrillFinished, envelope=EventBridgeEnvelope)
        if not isinstance(finished, DrillFinished):
            raise TypeError(f"the event's detail parsed to {type(finished).__name__}")
    except (ValidationError, TypeError, ValueError, AttributeError) as malformed:
        # Retrying cannot make a malformed event announceable: say why and let it go.
        reason = f"malformed Drill Finished event ({type(malformed).__name__})"
        logger.warning("no announcement", extra={"reason": reason})
        return {"status": "rejected", "reason": reason}
    logger.append_keys(run_id=finished.run_id)
    announcer(context)(finished=finished)
    logger.info("drill announced", extra={"verdict": finished.verdict})
    return {"status": "announced", "run_id": finished.run_id}
