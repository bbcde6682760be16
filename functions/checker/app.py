"""Checks a restored instance from inside the VPC. No AWS calls: the check runner's synchronous
invoke carries the connection, the return value carries the aggregates."""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from restoredrill.domain.checker_side import parse_checker_request, run_checker

logger = Logger()


# The event holds the run's password: it is never logged (log_event stays off).
@logger.inject_lambda_context(clear_state=True, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_checker_request(event)
    logger.append_keys(run_id=request.run_id)
    answer = run_checker(
        request,
        ca_bundle_file=os.environ.get("RDS_CA_BUNDLE_FILE"),
        seconds_left=context.get_remaining_time_in_millis() / 1000,
    )
    verdict = (answer.get("result") or {}).get("verdict")
    logger.info("checks done", extra={"verdict": verdict, "mode": request.mode})
    return answer
