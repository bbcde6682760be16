"""The check runner: the only code that hands the run's password to the checker.

`advance` invokes the runner asynchronously with the run id and the *name* of the password
parameter. The runner reads the password from SSM and invokes the in-VPC checker synchronously.
A Lambda async destination record carries the whole request payload; because the runner's
request holds no password, neither does the record that brings the result back to `advance`
(nor the results queue, nor its dead-letter queue). A synchronous invoke is recorded nowhere.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from restoredrill.events import RUN_ID_PATTERN, InvalidEvent


class CheckerFailed(Exception):
    """The checker did not return a result (it raised, timed out or crashed)."""


class PasswordReader(Protocol):
    def get(self, name: str) -> str | None: ...


class SyncChecker(Protocol):
    def check(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The checker's answer; raises CheckerFailed when the function errored."""
        ...


class TargetWithoutPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    user: str = Field(min_length=1, max_length=63)
    database: str = Field(default="postgres", min_length=1, max_length=63)


class CheckRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(pattern=RUN_ID_PATTERN.pattern)
    password_parameter: str = Field(pattern=r"^/[A-Za-z0-9_./-]+$")
    target: TargetWithoutPassword
    policy: dict[str, Any] = Field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    snapshot_time: str | None = None
    vcpus: int | None = Field(default=None, ge=1, le=128)
    deadline: str | None = None


def parse_check_run(event: Any) -> CheckRunRequest:
    try:
        return CheckRunRequest.model_validate(event)
    except ValidationError as error:
        raise InvalidEvent.naming_fields("check run request", error) from None


def run_check(
    request: CheckRunRequest, vault: PasswordReader, checker: SyncChecker
) -> dict[str, Any]:
    """The checker's result for this run, as `advance` expects it from the destination."""
    password = vault.get(request.password_parameter)
    if password is None:
        raise CheckerFailed("the run's password is gone: the drill has moved on")
    payload = request.model_dump(mode="json", exclude={"password_parameter"})
    payload["target"]["password"] = password
    answer = checker.check(payload)
    if not isinstance(answer, dict) or answer.get("run_id") != request.run_id:
        raise CheckerFailed("the checker answered for another run or not at all")
    return {"run_id": request.run_id, "result": answer.get("result")}
