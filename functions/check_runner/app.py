"""Hands one run's connection to the in-VPC checker and returns its result. Invoked
asynchronously by advance; its destination carries the result back, without the password."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from restoredrill.composition.wiring import check_runner_adapters
from restoredrill.domain.password_broker import parse_check_run, run_check

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_check_run(event)
    logger.append_keys(run_id=request.run_id)
    vault, checker, work_store = check_runner_adapters()
    answer = run_check(request, vault, checker, work_store)
    verdict = (answer.get("result") or {}).get("verdict")
    logger.info("checks returned", extra={"verdict": verdict, "round": answer.get("round")})
    return answer
