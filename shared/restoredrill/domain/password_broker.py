"""The password broker (the check runner function's logic): the only code that hands the run's
password to the checker.

`advance` invokes the runner asynchronously with the run id and the *name* of the password
parameter (:class:`~restoredrill.ports.messages.CheckRunRequest`). The runner reads the password
from SSM and invokes the in-VPC checker synchronously
(:class:`~restoredrill.ports.messages.CheckerRequest`).
A Lambda async destination record carries the whole request payload; because the runner's
request holds no password, neither does the record that brings the result back to `advance`
(nor the results queue, nor its dead-letter queue). A synchronous invoke is recorded nowhere.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from restoredrill.domain.check_rounds import keep_baseline, run_check_round, with_kept_baseline
from restoredrill.ports.gateways import CheckerFailed, CheckWorkStore, PasswordReader, SyncChecker
from restoredrill.ports.inbound_events import InvalidEvent
from restoredrill.ports.messages import CheckerAnswer, CheckerRequest, CheckRunRequest
from restoredrill.ports.policy import DrillPolicy


def parse_check_run(event: Any) -> CheckRunRequest:
    try:
        return CheckRunRequest.model_validate(event)
    except ValidationError as error:
        raise InvalidEvent.naming_fields("check run request", error) from None


def run_check(
    request: CheckRunRequest,
    vault: PasswordReader,
    checker: SyncChecker,
    work_store: CheckWorkStore | None = None,
) -> dict[str, Any]:
    """The checker's answer for this run, as `advance` reads it from the destination record:
    a :class:`CheckerAnswer`, within the size its way back allows. With the policy's
    ``rounds``, one round of the plan (:func:`run_check_round`): a :class:`RoundAnswer` while
    the plan goes on, the final :class:`CheckerAnswer` when it ends."""
    password = vault.get(request.password_parameter)
    if password is None:
        raise CheckerFailed("the run's password is gone: the drill has moved on")
    request = with_kept_baseline(request, work_store)
    if DrillPolicy.model_validate(request.policy).in_rounds:
        if work_store is None:
            raise CheckerFailed("the policy asks for rounds but no work store is configured")
        return run_check_round(request, password, checker, work_store)
    checker_request = CheckerRequest.for_run(request, password).model_copy(
        update={"whole_answer": work_store is not None}
    )
    reply = checker.check(checker_request.to_payload())
    try:
        answer = CheckerAnswer.model_validate(reply)
    except ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in problem["loc"]) for problem in error.errors())
        raise CheckerFailed(f"the checker's answer is malformed: {fields}") from None
    if answer.run_id != request.run_id:
        raise CheckerFailed("the checker answered for another run")
    return keep_baseline(answer, work_store, request.source_db).model_dump(mode="json")
