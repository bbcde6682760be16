"""The cloud invariant on dead-letter queues: only the poison sent, or the failure record of a
single attempt that an injected crash killed (a function that is not retried, like the sweeper,
sends it there by design); anything else is a violation."""

from __future__ import annotations

import json
from typing import Any, cast

from drillharness.invariants import check_dead_letters, is_unretried_crash
from localcloud.cloud import LocalCloud

KILLED = "b006995f-a565-4945-a332-485f6eecc317"
SWEEPER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:restoredrill-local-SweeperFunction-x"


def failure_record(
    request_id: str = KILLED, attempts: int = 1, error_type: str = "Runtime.ExitError"
) -> str:
    return json.dumps(
        {
            "version": "1.0",
            "requestContext": {
                "requestId": request_id,
                "functionArn": f"{SWEEPER_ARN}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "responsePayload": {"errorType": error_type, "errorMessage": "exit status 1"},
        }
    )


class DeadLetterCloud:
    """What check_dead_letters reads of a local cloud."""

    def __init__(self, letters: list[str], poison: list[str], crashed: set[str]) -> None:
        self.letters, self.poison, self.crashed = letters, poison, crashed

    def poison_sent(self) -> list[tuple[str, str]]:
        return [("run", body) for body in self.poison]

    def crashed_requests(self) -> set[str]:
        return self.crashed

    def dead_letters(self) -> dict[str, list[str]]:
        return {"EventsDeadLetterQueue": self.letters}


def violations(letters: list[str], *, poison: tuple[str, ...] = (), crashed: set[str]) -> list[Any]:
    return check_dead_letters(cast(LocalCloud, DeadLetterCloud(letters, list(poison), crashed)))


def test_the_failure_record_of_a_killed_unretried_invocation_is_expected() -> None:
    # Given the sweeper's invocation was killed by an injected crash and not retried
    # When the dead letters are checked, Then its failure record is no violation
    assert violations([failure_record()], crashed={KILLED}) == []
    assert is_unretried_crash(failure_record(), {KILLED})


def test_a_failure_record_no_injected_crash_explains_is_a_violation() -> None:
    # Given a failure record of an invocation that no fault killed
    found = violations([failure_record()], crashed={"another-request"})
    # Then it is reported, naming the function and the error
    assert len(found) == 1
    assert "restoredrill-local-SweeperFunction-x (RetriesExhausted)" in str(found[0])
    assert "Runtime.ExitError: exit status 1" in str(found[0])


def test_a_killed_invocation_that_was_retried_or_failed_otherwise_is_a_violation() -> None:
    # A retried function's crash is retried and must not end in the queue; a handler error is
    # not the crash.
    assert not is_unretried_crash(failure_record(attempts=3), {KILLED})
    assert not is_unretried_crash(failure_record(error_type="ValueError"), {KILLED})
    assert len(violations([failure_record(attempts=3)], crashed={KILLED})) == 1


def test_poison_is_expected_and_anything_unreadable_is_a_violation() -> None:
    poison = '{"poison": true}'
    found = violations([poison, "not json at all"], poison=(poison,), crashed={KILLED})
    assert [str(v) for v in found] == [
        "only poison in DLQs: EventsDeadLetterQueue holds 'not json at all'"
    ]
    assert not is_unretried_crash("not json at all", {KILLED})
